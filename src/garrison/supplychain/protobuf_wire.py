"""A small, bounded reader (and writer) of the protocol buffers wire format, for formats we parse without their
library (TensorFlow SavedModel). It knows no schema: a message is a list of ``(field number, value)`` pairs.

Reading never raises anything but :class:`WireFormatError`, whatever the bytes: varints are at most 10 bytes,
lengths are checked against the buffer, group nesting is bounded, and the number of fields one call reads is
capped. Length-delimited values come back as zero-copy ``memoryview`` slices.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from garrison.core.errors import GarrisonError

__all__ = [
    "I32",
    "I64",
    "LEN",
    "MAX_FIELDS",
    "MAX_GROUP_DEPTH",
    "VARINT",
    "Message",
    "WireFormatError",
    "encode_field",
    "encode_varint",
    "iter_fields",
    "parse_message",
    "read_varint",
]

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_FIELDS = 10_000_000
MAX_GROUP_DEPTH = 32
_MAX_FIELD_NUMBER = (1 << 29) - 1


class WireFormatError(GarrisonError, ValueError):
    """The bytes are not a well-formed protocol buffers message (``offset`` is where reading failed)."""

    def __init__(self, message: str, *, offset: int) -> None:
        self.offset = offset
        super().__init__(f"offset {offset}: {message}")


def read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return ``(value, next position)``. At most 10 bytes (64 bits)."""
    result = 0
    shift = 0
    end = len(buf)
    start = pos
    while True:
        if pos >= end:
            raise WireFormatError("truncated varint", offset=start)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise WireFormatError("varint longer than 10 bytes", offset=start)


def _as_view(data: bytes | bytearray | memoryview) -> memoryview:
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


def iter_fields(
    data: bytes | bytearray | memoryview, *, max_fields: int = MAX_FIELDS
) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield ``(field number, wire type, value)`` for each field of one message.

    VARINT, I64 and I32 values are unsigned ints; LEN values are memoryviews. Groups (deprecated wire types 3/4)
    are skipped, bounded by :data:`MAX_GROUP_DEPTH`. Raises :class:`WireFormatError` on malformed bytes or when
    more than ``max_fields`` fields would be read.
    """
    buf = _as_view(data)
    pos = 0
    end = len(buf)
    count = 0
    while pos < end:
        count += 1
        if count > max_fields:
            raise WireFormatError(f"more than {max_fields} fields in one message", offset=pos)
        tag_at = pos
        tag, pos = read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise WireFormatError(f"invalid field number {number}", offset=tag_at)
        if wire_type == SGROUP:
            pos = _skip_group(buf, pos, number)
            continue
        value, pos = _read_value(buf, pos, wire_type, tag_at)
        yield number, wire_type, value


def _read_value(buf: memoryview, pos: int, wire_type: int, tag_at: int) -> tuple[int | memoryview, int]:
    end = len(buf)
    if wire_type == VARINT:
        return read_varint(buf, pos)
    if wire_type == I64:
        if pos + 8 > end:
            raise WireFormatError("truncated 64-bit value", offset=pos)
        return int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
    if wire_type == I32:
        if pos + 4 > end:
            raise WireFormatError("truncated 32-bit value", offset=pos)
        return int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
    if wire_type == LEN:
        length, pos = read_varint(buf, pos)
        if length > end - pos:
            raise WireFormatError(f"length {length} runs past the end of the message", offset=pos)
        return buf[pos : pos + length], pos + length
    raise WireFormatError(f"invalid wire type {wire_type}", offset=tag_at)


def _skip_group(buf: memoryview, pos: int, number: int) -> int:
    # Groups are iterative here (an explicit stack), so hostile nesting cannot exhaust Python's stack.
    stack = [number]
    end = len(buf)
    while stack:
        if pos >= end:
            raise WireFormatError("unterminated group", offset=pos)
        tag_at = pos
        tag, pos = read_varint(buf, pos)
        inner, wire_type = tag >> 3, tag & 7
        if wire_type == SGROUP:
            if len(stack) >= MAX_GROUP_DEPTH:
                raise WireFormatError(f"groups nested deeper than {MAX_GROUP_DEPTH}", offset=tag_at)
            stack.append(inner)
        elif wire_type == EGROUP:
            if stack.pop() != inner:
                raise WireFormatError("mismatched end of group", offset=tag_at)
        else:
            _, pos = _read_value(buf, pos, wire_type, tag_at)
    return pos


class Message:
    """The fields of one message, by number, in the order they appeared. Nested messages stay unparsed bytes
    until asked for (:meth:`messages`)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[int, list[int | memoryview]]) -> None:
        self._fields = fields

    def __contains__(self, number: int) -> bool:
        return number in self._fields

    def values(self, number: int) -> list[int | memoryview]:
        """Every value of field ``number`` (empty when absent)."""
        return self._fields.get(number, [])

    def ints(self, number: int) -> list[int]:
        """The integer values of field ``number``, packed repeated varints included."""
        out: list[int] = []
        for value in self.values(number):
            if isinstance(value, int):
                out.append(value)
            else:
                pos = 0
                while pos < len(value):
                    item, pos = read_varint(value, pos)
                    out.append(item)
        return out

    def blobs(self, number: int) -> list[memoryview]:
        """The length-delimited values of field ``number``."""
        return [v for v in self.values(number) if isinstance(v, memoryview)]

    def strings(self, number: int) -> list[str]:
        """The length-delimited values of field ``number`` as text (invalid UTF-8 replaced, never an error)."""
        return [bytes(v).decode("utf-8", "replace") for v in self.blobs(number)]

    def string(self, number: int, default: str = "") -> str:
        """The last value of a singular string field (protobuf semantics: the last one wins)."""
        found = self.strings(number)
        return found[-1] if found else default

    def messages(self, number: int, *, max_fields: int = MAX_FIELDS) -> list[Message]:
        """Field ``number`` parsed as nested messages."""
        return [parse_message(v, max_fields=max_fields) for v in self.blobs(number)]

    def message(self, number: int, *, max_fields: int = MAX_FIELDS) -> Message | None:
        """The singular nested message ``number``; several occurrences merge, as protobuf merges them."""
        parts = self.blobs(number)
        if not parts:
            return None
        merged: dict[int, list[int | memoryview]] = {}
        for part in parts:
            for key, values in parse_message(part, max_fields=max_fields)._fields.items():
                merged.setdefault(key, []).extend(values)
        return Message(merged)


def parse_message(data: bytes | bytearray | memoryview, *, max_fields: int = MAX_FIELDS) -> Message:
    """Read one message's fields. Raises :class:`WireFormatError` on malformed bytes."""
    fields: dict[int, list[int | memoryview]] = {}
    for number, _, value in iter_fields(data, max_fields=max_fields):
        fields.setdefault(number, []).append(value)
    return Message(fields)


def encode_varint(value: int) -> bytes:
    """The varint encoding of a non-negative int below 2**64 (negative int64s: add 2**64 first)."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"`value` must be in [0, 2**64), got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value: int | float | str | bytes, *, wire_type: int | None = None) -> bytes:
    """One encoded field: ints as VARINT (or I32/I64 when ``wire_type`` says), floats as I32, str/bytes as LEN."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return encode_varint(number << 3 | LEN) + encode_varint(len(value)) + bytes(value)
    if isinstance(value, float):
        return encode_varint(number << 3 | I32) + struct.pack("<f", value)
    if wire_type == I64:
        return encode_varint(number << 3 | I64) + struct.pack("<Q", value % (1 << 64))
    if wire_type == I32:
        return encode_varint(number << 3 | I32) + struct.pack("<I", value % (1 << 32))
    return encode_varint(number << 3 | VARINT) + encode_varint(value % (1 << 64))
