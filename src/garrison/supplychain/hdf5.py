"""A minimal HDF5 reader of our own: the root group's attributes, which is where legacy Keras ``.h5`` files keep
their ``model_config`` and ``training_config`` JSON.

libhdf5 itself crashes on crafted files, so Garrison never hands an untrusted file to it. This reader follows
the HDF5 file format specification (version 3.0) only as far as it must: superblock versions 0-3, object header
versions 1 and 2 with their continuation blocks, and attribute messages (versions 1-3) whose values are
fixed-length strings, variable-length strings (in the global heap), integers or floats. What it does not
understand - dense attribute storage (a fractal heap), shared attribute messages, other value types - is
reported as such, so the scanner records the file as incomplete instead of clean. Every read is bounds-checked;
the only exception it raises is :class:`HDF5FormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import GarrisonError
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.keras import (
    KerasIssue,
    analyze_keras_config,
    parse_json_bounded,
    report_keras_issues,
)

__all__ = ["HDF5_SIGNATURE", "HDF5Attribute", "HDF5FormatError", "read_root_attributes", "scan_hdf5"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MSG_CONTINUATION = 0x0010
_MSG_ATTRIBUTE = 0x000C
_MSG_ATTRIBUTE_INFO = 0x0015
_MAX_MESSAGES = 65_536
_MAX_BLOCKS = 4_096
_MAX_ELEMENTS = 1_000_000
_KERAS_ATTRIBUTES = ("model_config", "training_config")


class HDF5FormatError(GarrisonError, ValueError):
    """The bytes are not an HDF5 file this reader can follow, or are malformed."""


@dataclass(frozen=True, slots=True)
class HDF5Attribute:
    """One attribute: its decoded ``value`` (a str, bytes, int, float or a list of them) or, when the reader
    cannot decode it, ``value`` None and ``unsupported`` saying why."""

    name: str
    value: Any
    unsupported: str | None = None

    def text(self) -> str | None:
        """The value as one string (a list of strings is joined), or ``None`` when it is not text."""
        value = self.value
        if isinstance(value, list) and value and all(isinstance(v, str | bytes) for v in value):
            value = b"".join(v.encode() if isinstance(v, str) else v for v in value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value if isinstance(value, str) else None


class _Reader:
    __slots__ = ("base", "lengths", "offsets", "undefined", "view")

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.offsets = 8
        self.lengths = 8
        self.base = 0
        self.undefined = (1 << 64) - 1

    def take(self, at: int, n: int) -> memoryview:
        if at < 0 or n < 0 or at + n > len(self.view):
            raise HDF5FormatError(f"read of {n} bytes at offset {at} runs past the end of the file")
        return self.view[at : at + n]

    def uint(self, at: int, size: int) -> int:
        return int.from_bytes(self.take(at, size), "little")

    def address(self, at: int) -> int:
        return self.uint(at, self.offsets)

    def absolute(self, address: int) -> int:
        if address == self.undefined:
            raise HDF5FormatError("reference to an undefined address")
        return self.base + address


def _find_superblock(view: memoryview) -> int:
    at = 0
    while at + 8 <= len(view):
        if bytes(view[at : at + 8]) == HDF5_SIGNATURE:
            return at
        at = 512 if at == 0 else at * 2
    raise HDF5FormatError("no HDF5 superblock signature")


def _root_header(r: _Reader) -> int:
    sb = _find_superblock(r.view)
    version = r.uint(sb + 8, 1)
    if version in (0, 1):
        r.offsets, r.lengths = r.uint(sb + 13, 1), r.uint(sb + 14, 1)
        pos = sb + 24 + (4 if version == 1 else 0)
    elif version in (2, 3):
        r.offsets, r.lengths = r.uint(sb + 9, 1), r.uint(sb + 10, 1)
        pos = sb + 12
    else:
        raise HDF5FormatError(f"unknown superblock version {version}")
    if r.offsets not in (2, 4, 8) or r.lengths not in (2, 4, 8):
        raise HDF5FormatError(f"unsupported sizes of offsets/lengths ({r.offsets}/{r.lengths})")
    r.undefined = (1 << (8 * r.offsets)) - 1
    r.base = r.address(pos)
    if r.base > len(r.view):
        raise HDF5FormatError(f"base address {r.base} is past the end of the file")
    if version in (0, 1):
        # base, free-space info, end of file, driver info, then the root symbol table entry
        # (link name offset, object header address, ...).
        return r.absolute(r.address(pos + 5 * r.offsets))
    # base, superblock extension, end of file, root group object header.
    return r.absolute(r.address(pos + 3 * r.offsets))


def _messages(r: _Reader, header: int) -> list[tuple[int, int, memoryview]]:
    """Every message of the object header at ``header``: (type, flags, data)."""
    out: list[tuple[int, int, memoryview]] = []
    if bytes(r.take(header, 4)) == b"OHDR":
        version2 = True
        if r.uint(header + 4, 1) != 2:
            raise HDF5FormatError("unknown object header version")
        flags = r.uint(header + 5, 1)
        pos = header + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = r.uint(pos, width)
        blocks = [(pos + width, size)]
        creation_order = bool(flags & 0x04)
    else:
        version2 = False
        creation_order = False
        if r.uint(header, 1) != 1:
            raise HDF5FormatError(f"unknown object header version at offset {header}")
        blocks = [(header + 16, r.uint(header + 8, 4))]
    seen: set[int] = set()
    while blocks:
        start, length = blocks.pop(0)
        if start in seen or len(seen) >= _MAX_BLOCKS:
            raise HDF5FormatError("object header continuation blocks loop or are too many")
        seen.add(start)
        block = r.take(start, length)
        for msg_type, msg_flags, data in _block_messages(
            block, version2=version2, creation_order=creation_order
        ):
            if len(out) >= _MAX_MESSAGES:
                raise HDF5FormatError(f"object header has more than {_MAX_MESSAGES} messages")
            if msg_type == _MSG_CONTINUATION:
                target = r.absolute(int.from_bytes(_slice(data, 0, r.offsets), "little"))
                size = int.from_bytes(_slice(data, r.offsets, r.lengths), "little")
                if version2:
                    if bytes(r.take(target, 4)) != b"OCHK":
                        raise HDF5FormatError("continuation block without its OCHK signature")
                    blocks.append((target + 4, size - 8))
                else:
                    blocks.append((target, size))
            out.append((msg_type, msg_flags, data))
    return out


def _block_messages(
    block: memoryview, *, version2: bool, creation_order: bool
) -> list[tuple[int, int, memoryview]]:
    out: list[tuple[int, int, memoryview]] = []
    pos = 0
    head = (4 + (2 if creation_order else 0)) if version2 else 8
    while pos + head <= len(block):
        if version2:
            msg_type, size, flags = (
                block[pos],
                int.from_bytes(block[pos + 1 : pos + 3], "little"),
                block[pos + 3],
            )
        else:
            msg_type = int.from_bytes(block[pos : pos + 2], "little")
            size = int.from_bytes(block[pos + 2 : pos + 4], "little")
            flags = block[pos + 4]
        data_at = pos + head
        if data_at + size > len(block):
            raise HDF5FormatError("object header message runs past its block")
        out.append((msg_type, flags, block[data_at : data_at + size]))
        pos = data_at + size
    return out


def _slice(data: memoryview, at: int, n: int) -> memoryview:
    if at < 0 or n < 0 or at + n > len(data):
        raise HDF5FormatError("message field runs past the end of its message")
    return data[at : at + n]


def _u(data: memoryview, at: int, n: int) -> int:
    return int.from_bytes(_slice(data, at, n), "little")


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def read_root_attributes(data: bytes | bytearray | memoryview) -> dict[str, HDF5Attribute]:
    """The root group's attributes, by name. Raises :class:`HDF5FormatError` when the file cannot be followed
    or keeps its attributes where this reader does not look (dense storage, shared messages)."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    r = _Reader(view)
    attributes: dict[str, HDF5Attribute] = {}
    for msg_type, flags, body in _messages(r, _root_header(r)):
        if msg_type == _MSG_ATTRIBUTE_INFO:
            _check_attribute_info(r, body)
        elif msg_type == _MSG_ATTRIBUTE:
            if flags & 0x02:
                raise HDF5FormatError("root group attribute is a shared message (not supported)")
            attribute = _attribute(r, body)
            attributes[attribute.name] = attribute
    return attributes


def _check_attribute_info(r: _Reader, body: memoryview) -> None:
    flags = _u(body, 1, 1)
    pos = 2 + (2 if flags & 1 else 0)
    heap = _u(body, pos, r.offsets)
    if heap != r.undefined:
        raise HDF5FormatError("root group keeps attributes in dense storage (not supported)")


def _attribute(r: _Reader, body: memoryview) -> HDF5Attribute:
    version = _u(body, 0, 1)
    flags = _u(body, 1, 1) if version >= 2 else 0
    name_size, type_size, space_size = _u(body, 2, 2), _u(body, 4, 2), _u(body, 6, 2)
    pad = _pad8 if version == 1 else (lambda n: n)
    if version not in (1, 2, 3):
        raise HDF5FormatError(f"unknown attribute message version {version}")
    pos = 9 if version == 3 else 8
    name = bytes(_slice(body, pos, name_size)).split(b"\0", 1)[0].decode("utf-8", "replace")
    pos += pad(name_size)
    dtype = _slice(body, pos, type_size)
    pos += pad(type_size)
    space = _slice(body, pos, space_size)
    pos += pad(space_size)
    if flags & 0x03:
        return HDF5Attribute(name, None, "shared datatype or dataspace")
    count = _element_count(space, r.lengths)
    return _decode(r, name, dtype, body[pos:], count)


def _element_count(space: memoryview, lengths: int) -> int:
    version, rank = _u(space, 0, 1), _u(space, 1, 1)
    if version == 1:
        dims_at = 8
    elif version == 2:
        if _u(space, 3, 1) == 2:
            return 0
        dims_at = 4
    else:
        raise HDF5FormatError(f"unknown dataspace version {version}")
    count = 1
    for i in range(rank):
        count *= _u(space, dims_at + i * lengths, lengths)
        if count > _MAX_ELEMENTS:
            raise HDF5FormatError(f"attribute with more than {_MAX_ELEMENTS} elements")
    return count


def _decode(r: _Reader, name: str, dtype: memoryview, raw: memoryview, count: int) -> HDF5Attribute:
    cls = _u(dtype, 0, 1) & 0x0F
    bits = _u(dtype, 1, 3)
    size = _u(dtype, 4, 4)
    if cls == 3:  # fixed-length string
        values: list[Any] = [bytes(_slice(raw, i * size, size)).rstrip(b"\0 ") for i in range(count)]
    elif cls == 9 and (bits & 0x0F) == 1:  # variable-length string: length, global heap collection, index
        width = 4 + r.offsets + 4
        values = []
        for i in range(count):
            at = i * width
            length = _u(raw, at, 4)
            collection = _u(raw, at + 4, r.offsets)
            index = _u(raw, at + 4 + r.offsets, 4)
            values.append(bytes(_global_heap_object(r, collection, index)[:length]) if length else b"")
    elif cls in (0, 1) and size in (1, 2, 4, 8) and not (cls == 1 and size < 4):
        signed = bool(bits & 0x08)
        fmt = {4: "<f", 8: "<d"}.get(size) if cls == 1 else None
        values = []
        for i in range(count):
            chunk = _slice(raw, i * size, size)
            values.append(
                struct.unpack(fmt, chunk)[0] if fmt else int.from_bytes(chunk, "little", signed=signed)
            )
    else:
        return HDF5Attribute(name, None, f"datatype class {cls} is not decoded")
    if cls in (3, 9):
        utf8 = ((bits >> (8 if cls == 9 else 4)) & 0x0F) == 1
        values = [v.decode("utf-8", "replace") if utf8 else v for v in values]
    return HDF5Attribute(name, values[0] if count == 1 else values)


def _global_heap_object(r: _Reader, collection: int, index: int) -> memoryview:
    at = r.absolute(collection)
    if bytes(r.take(at, 4)) != b"GCOL":
        raise HDF5FormatError(f"no global heap collection at offset {at}")
    end = at + r.uint(at + 8, r.lengths)
    pos = at + 8 + r.lengths
    while pos + 8 + r.lengths <= end:
        object_index = r.uint(pos, 2)
        size = r.uint(pos + 8, r.lengths)
        data_at = pos + 8 + r.lengths
        if object_index == 0:
            break
        if object_index == index:
            return r.take(data_at, size)
        pos = data_at + _pad8(size)
    raise HDF5FormatError(f"global heap object {index} not found")


def scan_hdf5(blob: Blob, ctx: ScanContext) -> None:
    """Scan an HDF5 file: a legacy Keras ``model_config``/``training_config`` in its root attributes is analysed
    for Lambda layers and code references (GAR-SC-005). Anything the reader cannot follow is incomplete."""
    try:
        attributes = read_root_attributes(blob.view())
    except HDF5FormatError as exc:
        ctx.incomplete(blob.location, f"HDF5 root attributes cannot be read: {exc}")
        return
    issues: list[KerasIssue] = []
    for key in _KERAS_ATTRIBUTES:
        attribute = attributes.get(key)
        if attribute is None:
            continue
        text = attribute.text()
        if text is None:
            ctx.incomplete(
                blob.location, f"attribute {key} is not text ({attribute.unsupported or 'not a string'})"
            )
            continue
        try:
            found = analyze_keras_config(parse_json_bounded(text.encode("utf-8")))
        except ValueError as exc:
            ctx.incomplete(blob.location, f"attribute {key} cannot be analysed: {exc}")
            continue
        issues.extend(KerasIssue(i.severity, f"{key}:{i.path}", i.message) for i in found)
    report_keras_issues(ctx, blob, issues, source="HDF5 model")
