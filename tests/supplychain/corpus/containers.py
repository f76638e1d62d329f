"""Small writers for container formats, exact to the byte so that inconsistent files can be made on purpose:
zip (names, CRCs and flag bits chosen per member), 7z (stored, one file), protobuf fields, GGUF and safetensors.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ZipMember",
    "gguf_file",
    "pb_bytes",
    "pb_varint",
    "safetensors_file",
    "sevenzip_file",
    "zip_file",
]

_DOS_TIME, _DOS_DATE = (
    0,
    (2024 - 1980) << 9 | 1 << 5 | 1,
)  # fixed timestamp: generated files are deterministic


@dataclass(frozen=True)
class ZipMember:
    """One zip member. ``central_name``, ``crc`` and ``flags`` default to honest values; set them to lie."""

    name: str
    data: bytes
    central_name: str | None = None
    crc: int | None = None
    flags: int = 0
    deflate: bool = False


def zip_file(members: Sequence[ZipMember], *, comment: bytes = b"") -> bytes:
    """A zip archive written header by header."""
    out = bytearray()
    central = bytearray()
    for member in members:
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        if member.deflate:
            packer = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = packer.compress(member.data) + packer.flush()
        else:
            payload = member.data
        method = 8 if member.deflate else 0
        local_name = member.name.encode()
        central_name = (member.central_name if member.central_name is not None else member.name).encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            member.flags,
            method,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            len(payload),
            len(member.data),
            len(local_name),
            0,
        )
        out += local_name + payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            member.flags,
            method,
            _DOS_TIME,
            _DOS_DATE,
            crc,
            len(payload),
            len(member.data),
            len(central_name),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            offset,
        )
        central += central_name
    out += central
    out += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        len(members),
        len(members),
        len(central),
        len(out) - len(central),
        len(comment),
    )
    return bytes(out + comment)


def _7z_number(value: int) -> bytes:
    """7z's variable-length UINT64: leading one bits of the first byte count the extra bytes."""
    for extra in range(8):
        if value < 1 << (7 * (extra + 1)):
            high = value >> (8 * extra)
            first = (0xFF << (8 - extra)) & 0xFF | high
            return bytes([first]) + value.to_bytes(8, "little")[:extra]
    return b"\xff" + value.to_bytes(8, "little")


def sevenzip_file(name: str, data: bytes) -> bytes:
    """A 7z archive holding ``data`` as ``name`` with the Copy coder (stored, readable by 7-Zip and py7zr)."""
    n = _7z_number
    header = (
        b"\x01"  # Header
        + b"\x04"  # MainStreamsInfo
        + b"\x06"
        + n(0)
        + n(1)
        + b"\x09"
        + n(len(data))
        + b"\x00"  # PackInfo
        + b"\x07"
        + b"\x0b"
        + n(1)
        + b"\x00"  # UnPackInfo, one folder, not external
        + n(1)
        + b"\x01"
        + b"\x00"  # folder: one coder, id size 1, id 0x00 = Copy
        + b"\x0c"
        + n(len(data))  # CodersUnPackSize
        + b"\x0a"
        + b"\x01"
        + struct.pack("<I", zlib.crc32(data))  # CRCs, all defined
        + b"\x00"  # end UnPackInfo
        + b"\x08"
        + b"\x00"  # SubStreamsInfo: one stream per folder
        + b"\x00"  # end MainStreamsInfo
        + b"\x05"
        + n(1)  # FilesInfo, one file
        + b"\x11"
        + n(len(name) * 2 + 2 + 1)
        + b"\x00"
        + name.encode("utf-16-le")
        + b"\x00\x00"
        + b"\x00"  # end FilesInfo
        + b"\x00"  # end Header
    )
    start = struct.pack("<QQI", len(data), len(header), zlib.crc32(header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + data + header


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_varint(field_number: int, value: int) -> bytes:
    """A protobuf varint field."""
    return _varint(field_number << 3) + _varint(value)


def pb_bytes(field_number: int, value: bytes | str) -> bytes:
    """A protobuf length-delimited field (string, bytes or an embedded message)."""
    data = value.encode() if isinstance(value, str) else value
    return _varint(field_number << 3 | 2) + _varint(len(data)) + data


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_file(metadata: Mapping[str, str | int]) -> bytes:
    """A GGUF v3 file with string/uint32 metadata and no tensors."""
    body = bytearray()
    for key, value in metadata.items():
        body += _gguf_string(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + _gguf_string(value)
        else:
            body += struct.pack("<I", 4) + struct.pack("<I", value)
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata)) + bytes(body)
    return data + b"\x00" * (-len(data) % 32)


def safetensors_file(
    header: Mapping[str, object] | bytes, data: bytes, *, declared_size: int | None = None
) -> bytes:
    """A safetensors file: 8-byte little-endian header size, JSON header, tensor bytes. ``declared_size``
    overrides the size field (to lie about it)."""
    raw = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    size = len(raw) if declared_size is None else declared_size
    return struct.pack("<Q", size) + raw + data
