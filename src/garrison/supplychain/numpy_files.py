"""NumPy ``.npy`` and ``.npz`` files. An array of object dtype is stored as a pickle after the header."""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass
from typing import Any

from garrison.supplychain.archives import scan_zip
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.pickle_files import analyze_blob, report_analysis

__all__ = ["NpyHeader", "NpyHeaderError", "parse_npy_header", "scan_npy", "scan_npz"]

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20


class NpyHeaderError(ValueError):
    """The ``.npy`` header cannot be read."""


@dataclass(frozen=True, slots=True)
class NpyHeader:
    version: tuple[int, int]
    descr: Any
    fortran_order: bool
    shape: tuple[int, ...]
    data_offset: int

    @property
    def has_object(self) -> bool:
        """Whether any field is of object dtype (numpy then pickles the whole array)."""
        return _has_object(self.descr)


def _has_object(descr: Any, depth: int = 0) -> bool:
    if depth > 32:
        raise NpyHeaderError("dtype description is nested too deeply")
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        for field in descr:
            if isinstance(field, tuple) and len(field) >= 2:
                if _has_object(field[1], depth + 1):
                    return True
            else:
                raise NpyHeaderError(f"malformed dtype field {field!r:.60}")
        return False
    raise NpyHeaderError(f"malformed dtype description {descr!r:.60}")


def parse_npy_header(data: memoryview | bytes) -> NpyHeader:
    """Read the header of a ``.npy`` stream (a Python literal, evaluated with ``ast.literal_eval`` only)."""
    view = memoryview(data)
    if bytes(view[:6]) != _MAGIC or len(view) < 10:
        raise NpyHeaderError("not a .npy file")
    major, minor = view[6], view[7]
    if major == 1:
        (length,) = struct.unpack_from("<H", view, 8)
        start = 10
    elif major in (2, 3) and len(view) >= 12:
        (length,) = struct.unpack_from("<I", view, 8)
        start = 12
    else:
        raise NpyHeaderError(f"unsupported .npy version {major}.{minor}")
    if length > _MAX_HEADER:
        raise NpyHeaderError(f"header of {length} bytes is larger than {_MAX_HEADER}")
    if start + length > len(view):
        raise NpyHeaderError("header runs past the end of the file")
    encoding = "utf-8" if major == 3 else "latin-1"
    try:
        text = bytes(view[start : start + length]).decode(encoding)
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise NpyHeaderError(f"header is not a Python literal: {type(exc).__name__}") from exc
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise NpyHeaderError("header lacks descr, fortran_order or shape")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise NpyHeaderError(f"bad shape {shape!r:.60}")
    return NpyHeader((major, minor), header["descr"], bool(header["fortran_order"]), shape, start + length)


def scan_npy(blob: Blob, ctx: ScanContext) -> None:
    """Scan a ``.npy`` file: an object array's pickle is analysed; plain arrays hold no code."""
    try:
        header = parse_npy_header(blob.view())
        has_object = header.has_object
    except NpyHeaderError as exc:
        ctx.incomplete(blob.location, f".npy header cannot be read: {exc}")
        return
    if not has_object:
        return
    payload = blob.view()[header.data_offset :]
    analysis = analyze_blob(payload, ctx)
    report_analysis(analysis, blob, ctx)


def scan_npz(blob: Blob, ctx: ScanContext) -> None:
    """Scan a ``.npz`` archive: its zip structure and every member (``.npy`` arrays)."""
    scan_zip(blob, ctx)
