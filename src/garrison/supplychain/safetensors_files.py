"""safetensors header validation (GAR-SC-008), by our own reading of the format: ``u64`` little-endian header
length N, N bytes of UTF-8 JSON (an object), then the data section.

Checked, each problem naming the tensor: the header length against the file and the reference library's
100 MB cap; UTF-8, JSON, an object, no duplicate keys at any level; ``__metadata__`` a str -> str map; every
tensor an object with a known ``dtype``, a ``shape`` of non-negative ints and ``data_offsets`` ``[begin, end]``
inside the data section whose length equals ``numel * dtype size``; no two tensors overlapping. Severity high,
except what a strict reader refuses but hides no data in another tensor's bytes - gaps between tensors and bytes
after the last one (readers that do not check may read them; the reference library refuses them) - medium.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from garrison.core.rules import SC_SAFETENSORS
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext

__all__ = ["DTYPE_BITS", "MAX_HEADER_BYTES", "HeaderProblem", "check_safetensors", "scan_safetensors"]

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}
_MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """One problem in a safetensors header; ``tensor`` names the tensor when there is one."""

    severity: Severity
    message: str
    tensor: str | None = None


class _DuplicateKeys:
    """``object_pairs_hook`` that builds dicts and remembers every key given twice."""

    def __init__(self) -> None:
        self.duplicates: list[str] = []

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                self.duplicates.append(key)
            out[key] = value
        return out


def check_safetensors(data: bytes | memoryview) -> list[HeaderProblem]:
    """Every problem of a safetensors file's header and layout; empty for a well-formed file. Never raises."""
    high = Severity.HIGH
    size = len(data)
    if size < 8:
        return [HeaderProblem(high, f"file of {size} bytes is too short for the 8-byte header length")]
    n = int.from_bytes(bytes(data[:8]), "little")
    if n > MAX_HEADER_BYTES:
        return [HeaderProblem(high, f"header length {n} exceeds the {MAX_HEADER_BYTES}-byte cap")]
    if n > size - 8:
        return [HeaderProblem(high, f"header length {n} runs past the end of the {size}-byte file")]
    raw = bytes(data[8 : 8 + n])
    if not raw.startswith(b"{"):
        return [HeaderProblem(high, "header does not start with '{'")]
    hook = _DuplicateKeys()
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=hook)
    except UnicodeDecodeError as exc:
        return [HeaderProblem(high, f"header is not UTF-8 ({exc.reason} at byte {exc.start})")]
    except json.JSONDecodeError as exc:
        return [HeaderProblem(high, f"header is not valid JSON ({exc.msg} at byte {exc.pos})")]
    except RecursionError:
        return [HeaderProblem(high, "header JSON is nested too deeply")]
    if not isinstance(header, dict):
        return [HeaderProblem(high, "header is not a JSON object")]
    problems = [
        HeaderProblem(high, f"duplicate key {key!r} in the header (readers disagree on which wins)", key)
        for key in hook.duplicates[:100]
    ]
    problems.extend(_check_metadata(header.get("__metadata__")))
    problems.extend(_check_tensors(header, size - 8 - n))
    return problems[:_MAX_PROBLEMS]


def _check_metadata(metadata: Any) -> list[HeaderProblem]:
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        return [HeaderProblem(Severity.HIGH, "__metadata__ is not an object")]
    bad = [k for k, v in metadata.items() if not isinstance(v, str)]
    return [HeaderProblem(Severity.HIGH, f"__metadata__ value of {k!r} is not a string") for k in bad[:20]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_tensors(header: dict[str, Any], data_size: int) -> list[HeaderProblem]:
    high = Severity.HIGH
    problems: list[HeaderProblem] = []
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if len(problems) >= _MAX_PROBLEMS:
            break
        if not isinstance(info, dict):
            problems.append(HeaderProblem(high, f"tensor {name!r} is not an object", name))
            continue
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BITS:
            problems.append(HeaderProblem(high, f"tensor {name!r} has unknown dtype {dtype!r}", name))
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            problems.append(HeaderProblem(high, f"tensor {name!r} has an invalid shape {shape!r:.80}", name))
            shape = None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            problems.append(
                HeaderProblem(high, f"tensor {name!r} has invalid data_offsets {offsets!r:.80}", name)
            )
            continue
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            problems.append(
                HeaderProblem(
                    high,
                    f"tensor {name!r} data_offsets [{begin}, {end}] lie outside the {data_size}-byte data "
                    "section",
                    name,
                )
            )
            continue
        spans.append((begin, end, name))
        if dtype in DTYPE_BITS and shape is not None:
            numel = math.prod(shape)
            bits = numel * DTYPE_BITS[dtype]
            if bits % 8 or bits // 8 != end - begin:
                problems.append(
                    HeaderProblem(
                        high,
                        f"tensor {name!r} holds {end - begin} bytes but {dtype}{shape} needs {bits / 8:g}",
                        name,
                    )
                )
    problems.extend(_check_layout(spans, data_size))
    return problems


def _check_layout(spans: list[tuple[int, int, str]], data_size: int) -> list[HeaderProblem]:
    problems: list[HeaderProblem] = []
    cursor, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin < cursor:
            problems.append(
                HeaderProblem(Severity.HIGH, f"tensor {name!r} overlaps tensor {previous!r}", name)
            )
        elif begin > cursor:
            problems.append(
                HeaderProblem(
                    Severity.MEDIUM, f"{begin - cursor} unaccounted bytes before tensor {name!r}", name
                )
            )
        if end >= cursor:
            cursor, previous = end, name
    if cursor < data_size and spans:
        problems.append(HeaderProblem(Severity.MEDIUM, f"{data_size - cursor} bytes after the last tensor"))
    elif not spans and data_size:
        problems.append(HeaderProblem(Severity.MEDIUM, f"{data_size} data bytes but no tensor"))
    return problems


def scan_safetensors(blob: Blob, ctx: ScanContext) -> None:
    """Scan a safetensors file: one GAR-SC-008 finding listing every header problem."""
    problems = check_safetensors(blob.view())
    if not problems:
        return
    worst = max((p.severity for p in problems), key=lambda s: s.rank)
    shown = "; ".join(p.message for p in problems[:5])
    more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
    ctx.report(
        SC_SAFETENSORS,
        blob,
        f"safetensors header is invalid: {shown}{more}",
        severity=worst,
        evidence={
            "problems": [
                {"severity": p.severity.value, "message": p.message, "tensor": p.tensor}
                for p in problems[:100]
            ],
            "count": len(problems),
        },
    )
