"""GGUF files (llama.cpp): the header and metadata key/values, read by our own bounded parser, and the Jinja chat
templates among them (``tokenizer.chat_template``, ``tokenizer.chat_template.<name>``) analysed by
:mod:`garrison.supplychain.jinja_template` (GAR-SC-009).

Layout: ``GGUF`` magic, ``u32`` version (1-3), tensor count and key/value count (``u32`` in version 1, ``u64``
after), then each key/value: a string key, a ``u32`` value type and the value. Strings are a length (``u32`` in
version 1, ``u64`` after) and UTF-8 bytes; arrays an element type, a count and the elements (arrays of arrays
nest, bounded here). Big-endian files (version read byte-swapped) are read too. Every count and length is checked
against the bytes left before anything is allocated; the only exception raised is :class:`GGUFFormatError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from garrison.core.errors import GarrisonError
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.jinja_template import TemplateIssue, analyze_template, report_template_issues

__all__ = ["GGUFFile", "GGUFFormatError", "chat_templates", "read_gguf_metadata", "scan_gguf"]

GGUF_MAGIC = b"GGUF"
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_ARRAY_DEPTH = 4
_KEPT_STRING_CHARS = 4_000_000
_TEMPLATE_KEY = "tokenizer.chat_template"


class GGUFFormatError(GarrisonError, ValueError):
    """The bytes are not a GGUF file this parser can read, or are malformed."""


@dataclass(slots=True)
class GGUFFile:
    """A GGUF header and its metadata. Arrays are kept as their length only (``("array", type, n)``)."""

    version: int
    tensor_count: int
    kv_count: int
    byte_order: str
    metadata: dict[str, Any] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


class _Cursor:
    __slots__ = ("check", "count_fmt", "end", "items", "order", "pos", "view")

    def __init__(
        self, view: memoryview, order: str, count_fmt: str, check: Callable[[], None] | None
    ) -> None:
        self.check = check
        self.items = 0
        self.view = view
        self.pos = 0
        self.end = len(view)
        self.order = order
        self.count_fmt = count_fmt

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > self.end:
            raise GGUFFormatError(f"truncated at offset {self.pos}")
        (value,) = struct.unpack_from(self.order + fmt, self.view, self.pos)
        self.pos += size
        return value

    def count(self, what: str, min_item_size: int) -> int:
        n = self.unpack(self.count_fmt)
        if n * max(min_item_size, 1) > self.end - self.pos:
            raise GGUFFormatError(f"{what} count {n} at offset {self.pos} exceeds the bytes left in the file")
        return n

    def string(self, *, keep: bool = True) -> str | None:
        self.items += 1
        if self.check is not None and self.items % 65536 == 0:
            self.check()
        n = self.count("string length", 1)
        start = self.pos
        self.pos += n
        if not keep or n > _KEPT_STRING_CHARS:
            return None
        return bytes(self.view[start : start + n]).decode("utf-8", "replace")


def _value(cur: _Cursor, value_type: int, depth: int, *, keep: bool) -> Any:
    if value_type in _SCALARS:
        return cur.unpack(_SCALARS[value_type])
    if value_type == _STRING:
        return cur.string(keep=keep)
    if value_type == _ARRAY:
        if depth >= _MAX_ARRAY_DEPTH:
            raise GGUFFormatError(f"arrays nested deeper than {_MAX_ARRAY_DEPTH} at offset {cur.pos}")
        item_type = cur.unpack("I")
        if item_type in _SCALARS:
            size = struct.calcsize(_SCALARS[item_type])
            n = cur.count("array", size)
            cur.pos += n * size
        else:
            length_size = struct.calcsize(cur.count_fmt)
            n = cur.count("array", length_size if item_type == _STRING else 4 + length_size)
            for _ in range(n):
                _value(cur, item_type, depth + 1, keep=False)
        return ("array", item_type, n)
    raise GGUFFormatError(f"unknown value type {value_type} at offset {cur.pos - 4}")


def read_gguf_metadata(data: bytes | memoryview, *, check: Callable[[], None] | None = None) -> GGUFFile:
    """Parse a GGUF header and every metadata key/value. Raises :class:`GGUFFormatError` on malformed bytes.

    ``check`` is called every 65536 strings read (a deadline check that may raise, e.g. a scan's timeout)."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if bytes(view[:4]) != GGUF_MAGIC:
        raise GGUFFormatError("no GGUF magic")
    if len(view) < 8:
        raise GGUFFormatError("truncated header")
    version = int.from_bytes(view[4:8], "little")
    order = "<"
    if version > 0xFFFF and int.from_bytes(view[4:8], "big") in (1, 2, 3):
        version, order = int.from_bytes(view[4:8], "big"), ">"
    if version not in (1, 2, 3):
        raise GGUFFormatError(f"unsupported GGUF version {version}")
    cur = _Cursor(view, order, "I" if version == 1 else "Q", check)
    cur.pos = 8
    tensor_count = cur.unpack(cur.count_fmt)
    kv_count = cur.count("key/value", 8)
    gguf = GGUFFile(version, tensor_count, kv_count, "little" if order == "<" else "big")
    for _ in range(kv_count):
        key = cur.string() or ""
        value = _value(cur, cur.unpack("I"), 0, keep=True)
        if key in gguf.metadata:
            gguf.duplicates.append(key)
        gguf.metadata[key] = value
    return gguf


def chat_templates(gguf: GGUFFile) -> dict[str, str]:
    """The chat templates in the metadata, by key (``tokenizer.chat_template`` and its named variants)."""
    return {
        key: value
        for key, value in gguf.metadata.items()
        if (key == _TEMPLATE_KEY or key.startswith(_TEMPLATE_KEY + ".")) and isinstance(value, str)
    }


def scan_gguf(blob: Blob, ctx: ScanContext) -> None:
    """Scan a GGUF file's chat templates. A file whose metadata cannot be read to the end is incomplete."""
    try:
        gguf = read_gguf_metadata(blob.view(), check=ctx.check_deadline)
    except GGUFFormatError as exc:
        ctx.incomplete(blob.location, f"GGUF metadata cannot be read: {exc}")
        return
    templates: dict[str, list[TemplateIssue]] = {}
    for key, value in gguf.metadata.items():
        if (key == _TEMPLATE_KEY or key.startswith(_TEMPLATE_KEY + ".")) and not isinstance(value, str):
            if value is None:  # a string too long to keep
                ctx.incomplete(
                    blob.location, f"{key} is longer than {_KEPT_STRING_CHARS} bytes; not analysed"
                )
            else:
                templates[key] = [TemplateIssue(Severity.MEDIUM, f"{key} is not a string")]
    for key, source in chat_templates(gguf).items():
        ctx.check_deadline()
        templates[key] = analyze_template(source)
    if any(k == _TEMPLATE_KEY or k.startswith(_TEMPLATE_KEY + ".") for k in gguf.duplicates):
        templates.setdefault(_TEMPLATE_KEY, []).append(
            TemplateIssue(Severity.MEDIUM, "chat template key appears twice (readers disagree on which wins)")
        )
    report_template_issues(ctx, blob, templates, source="GGUF metadata")
