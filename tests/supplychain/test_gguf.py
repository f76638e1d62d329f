"""GGUF files written by a spec-exact encoder (the layout llama.cpp's gguf-py writer produces: header, metadata,
tensor infos, alignment padding, tensor data)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import LimitHit, ScanContext
from garrison.supplychain.gguf import GGUFFormatError, chat_templates, read_gguf_metadata, scan_gguf
from garrison.supplychain.limits import ScanLimits
from garrison.supplychain.result import ScanResult

UINT32, FLOAT32, BOOL, STRING, ARRAY, UINT64 = 4, 6, 7, 8, 9, 10
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
EVIL = "{{ cycler.__init__.__globals__.os.getcwd() }}"


class Encoder:
    def __init__(self, *, version: int = 3, order: str = "<") -> None:
        self.version, self.order = version, order
        self.count = "I" if version == 1 else "Q"

    def pack(self, fmt: str, *values: object) -> bytes:
        return struct.pack(self.order + fmt, *values)

    def string(self, s: str) -> bytes:
        raw = s.encode()
        return self.pack(self.count, len(raw)) + raw

    def value(self, vtype: int, value: object) -> bytes:
        if vtype == STRING:
            return self.string(value)  # type: ignore[arg-type]
        if vtype == ARRAY:
            item_type, items = value  # type: ignore[misc]
            return (
                self.pack("I", item_type)
                + self.pack(self.count, len(items))
                + b"".join(self.value(item_type, i) for i in items)
            )
        return self.pack({UINT32: "I", FLOAT32: "f", BOOL: "?", UINT64: "Q"}[vtype], value)

    def file(self, kvs: list[tuple[str, int, object]]) -> bytes:
        out = (
            b"GGUF"
            + self.pack("I", self.version)
            + self.pack(self.count, 1)
            + self.pack(self.count, len(kvs))
        )
        for key, vtype, value in kvs:
            out += self.string(key) + self.pack("I", vtype) + self.value(vtype, value)
        # one tensor info: name, n_dims, dims, type (F32 = 0), offset; then alignment and data
        out += (
            self.string("token_embd.weight")
            + self.pack("I", 1)
            + self.pack(self.count, 4)
            + self.pack("I", 0)
        )
        out += self.pack("Q", 0)
        out += b"\0" * (-len(out) % 32) + b"\0" * 16
        return out


def metadata(template: str | None = CHATML, **named: str) -> list[tuple[str, int, object]]:
    kvs: list[tuple[str, int, object]] = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, "tiny"),
        ("llama.context_length", UINT32, 128),
        ("tokenizer.ggml.model", STRING, "gpt2"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, ["a", "b", "<|im_start|>", "<|im_end|>"])),
        ("tokenizer.ggml.scores", ARRAY, (FLOAT32, [0.0, 1.0, 2.0, 3.0])),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
    ]
    if template is not None:
        kvs.append(("tokenizer.chat_template", STRING, template))
    for name, text in named.items():
        kvs.append((f"tokenizer.chat_template.{name}", STRING, text))
    if named:
        kvs.append(("tokenizer.chat_templates", ARRAY, (STRING, list(named))))
    return kvs


def scan(data: bytes) -> ScanResult:
    ctx = ScanContext()
    ctx.begin_file("m.gguf", None)
    scan_gguf(Blob.from_bytes(data, "m.gguf"), ctx)
    return ctx.result()


@pytest.mark.parametrize(("version", "order"), [(3, "<"), (2, "<"), (1, "<"), (3, ">")])
def test_reads_every_version_and_byte_order(version: int, order: str) -> None:
    gguf = read_gguf_metadata(Encoder(version=version, order=order).file(metadata()))
    assert (gguf.version, gguf.tensor_count, gguf.kv_count) == (version, 1, 8)
    assert gguf.byte_order == ("little" if order == "<" else "big")
    assert gguf.metadata["llama.context_length"] == 128
    assert gguf.metadata["tokenizer.ggml.tokens"] == ("array", STRING, 4)
    assert chat_templates(gguf) == {"tokenizer.chat_template": CHATML}


def test_benign_gguf_has_no_finding() -> None:
    assert scan(Encoder().file(metadata(tool_use=CHATML))) == ScanResult((), (), ())


def test_template_injection_is_critical() -> None:
    (finding,) = scan(Encoder().file(metadata(EVIL))).findings
    assert finding.rule_id == "GAR-SC-009" and finding.severity is Severity.CRITICAL
    assert finding.location == "m.gguf"
    templates = {i["template"] for i in finding.evidence_dict()["issues"]}
    assert templates == {"tokenizer.chat_template"}


def test_named_template_variant_is_analysed() -> None:
    (finding,) = scan(Encoder().file(metadata(CHATML, tool_use=EVIL))).findings
    assert {i["template"] for i in finding.evidence_dict()["issues"]} == {"tokenizer.chat_template.tool_use"}


def test_duplicate_and_non_string_template_keys_are_medium() -> None:
    kvs = [*metadata(CHATML), ("tokenizer.chat_template", STRING, CHATML)]
    (finding,) = scan(Encoder().file(kvs)).findings
    assert finding.severity is Severity.MEDIUM and "appears twice" in finding.message
    (finding,) = scan(Encoder().file([*metadata(None), ("tokenizer.chat_template", UINT32, 7)])).findings
    assert "is not a string" in finding.message


def test_nested_arrays_are_read() -> None:
    kvs = [
        ("x", ARRAY, (ARRAY, [(UINT32, [1, 2]), (UINT32, [3])])),
        ("tokenizer.chat_template", STRING, EVIL),
    ]
    assert chat_templates(read_gguf_metadata(Encoder().file(kvs))) == {"tokenizer.chat_template": EVIL}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"GGUF", "truncated header"),
        (b"GGUF" + struct.pack("<I", 9) + b"\0" * 16, "unsupported GGUF version 9"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "key/value count"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**60) + b"k", "string length"),
        (
            b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<IIQ", ARRAY, UINT64, 2**50),
            "array count",
        ),
        (b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1) + b"k" + struct.pack("<I", 99), "unknown value type 99"),
        (b"NOPE" + b"\0" * 20, "no GGUF magic"),
    ],
)
def test_malformed_files_raise_our_error(data: bytes, match: str) -> None:
    with pytest.raises(GGUFFormatError, match=match):
        read_gguf_metadata(data)


def test_truncated_file_is_incomplete_never_clean() -> None:
    data = Encoder().file(metadata(EVIL))
    cut = data.index(b"tokenizer.chat_template") + 30
    result = scan(data[:cut])
    assert result.findings == () and "cannot be read" in result.incomplete[0].reason


BENIGN = Encoder().file(metadata(CHATML, tool_use=CHATML))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(BENIGN) - 1), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, len(BENIGN)),
)
def test_mutated_files_parse_or_raise_our_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(BENIGN)
    for at, value in edits:
        data[at] = value
    data = data[:cut] if cut else data
    with contextlib.suppress(GGUFFormatError):
        read_gguf_metadata(bytes(data))
    assert isinstance(scan(bytes(data)), ScanResult)


def test_long_metadata_respects_the_scan_deadline() -> None:
    data = Encoder().file([("tokenizer.ggml.tokens", ARRAY, (STRING, ["t"] * 70_000)), *metadata(EVIL)])
    ctx = ScanContext(limits=ScanLimits(timeout_s=1e-9))
    ctx.begin_file("m.gguf", None)
    with pytest.raises(LimitHit) as hit:
        scan_gguf(Blob.from_bytes(data, "m.gguf"), ctx)
    assert hit.value.limit == "timeout_s"
