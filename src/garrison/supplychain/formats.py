"""Format detection by content (magic bytes and structure), never by file extension.

The one exception: a short protocol-0 pickle is indistinguishable from text, so a name ending in a pickle
extension tips text that parses as pickle opcodes towards ``pickle``.
"""

from __future__ import annotations

import pickletools
import re
import struct
import warnings
import zlib
from pathlib import Path

from garrison.supplychain.blob import Blob

__all__ = ["FORMATS", "detect_directory", "detect_format", "looks_like_pickle", "trailing_zip"]

FORMATS = (
    "pickle",
    "joblib",
    "zip",
    "torch-zip",
    "torchscript",
    "torch-export",
    "tar",
    "torch-legacy-tar",
    "torch-legacy",
    "gzip",
    "zlib",
    "bz2",
    "xz",
    "lzma",
    "7z",
    "zstd",
    "lz4",
    "rar",
    "npy",
    "npz",
    "keras-zip",
    "hdf5",
    "savedmodel-pb",
    "onnx",
    "safetensors",
    "gguf",
    "json",
    "python",
    "text",
    "empty",
    "unknown",
)

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TORCH_LEGACY_MAGIC = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_PICKLE_EXTENSIONS = (
    ".pkl",
    ".pickle",
    ".p",
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".joblib",
    ".jbl",
    ".dat",
    ".sav",
)
_PICKLE_PROBE = 1 << 16
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"GGUF", "gguf"),
    (b"\x93NUMPY", "npy"),
    (_HDF5_MAGIC, "hdf5"),
)


def detect_format(blob: Blob) -> str:
    """The format of ``blob`` by its content: one of :data:`FORMATS`."""
    if blob.size == 0:
        return "empty"
    head = blob.head(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(blob)
    for magic, fmt in _MAGICS:
        if head.startswith(magic) and (fmt != "bz2" or _is_bz2(head)):
            return fmt
    if head.startswith(b"ZF") and re.match(rb"ZF\s*(0x)?[0-9a-fA-F]+", head):
        return "joblib"
    if _is_zlib(head) or _is_lzma_alone(head):
        return "zlib" if _is_zlib(head) else "lzma"
    if _is_safetensors(blob, head):
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return "torch-legacy" if _TORCH_LEGACY_MAGIC in blob.head(32) else "pickle"
    if blob.size >= 512 and head[257:262] == b"ustar":
        return _tar_kind(blob)
    if _hdf5_with_userblock(blob):
        return "hdf5"
    proto = _protobuf_kind(blob)
    if proto:
        return proto
    text = _as_text(head)
    if text is not None:
        stripped = text.lstrip("\ufeff \t\r\n")
        if stripped[:1] in ("{", "["):
            return "json"
    if looks_like_pickle(blob.view()[:_PICKLE_PROBE], lenient=_has_pickle_name(blob.location)):
        return "pickle"
    if text is not None:
        return "python" if _looks_like_python(blob.location, text) else "text"
    return "unknown"


def trailing_zip(blob: Blob) -> bool:
    """Whether a zip directory sits at the end of a blob that does not start as a zip (a polyglot)."""
    from garrison.supplychain.archives import has_zip_directory

    return blob.size >= 22 and has_zip_directory(blob.view())


def detect_directory(path: Path) -> tuple[str, ...]:
    """Directory layouts under ``path`` that mean more than their files: ``huggingface``, ``savedmodel``."""
    kinds = []
    if (path / "config.json").is_file() or (path / "tokenizer_config.json").is_file():
        kinds.append("huggingface")
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        kinds.append("savedmodel")
    return tuple(kinds)


# --- zip and tar kinds -----------------------------------------------------------------------------------------


def _zip_kind(blob: Blob) -> str:
    from garrison.supplychain.archives import list_zip_names

    names = list_zip_names(blob)
    if not names:
        return "zip"
    roots = {n.split("/", 1)[0] for n in names}
    rel = {n.split("/", 1)[1] if "/" in n else n for n in names}
    single_root = len(roots) == 1
    if single_root and ("archive_format" in rel or any(r.startswith("models/") for r in rel)):
        return "torch-export"
    if single_root and (any(r.startswith("code/") for r in rel) or "constants.pkl" in rel):
        return "torchscript"
    if single_root and "data.pkl" in rel:
        return "torch-zip"
    if "config.json" in names and "metadata.json" in names:
        return "keras-zip"
    files = [n for n in names if not n.endswith("/")]
    if files and all(n.endswith(".npy") for n in files):
        return "npz"
    return "zip"


def _tar_kind(blob: Blob) -> str:
    from garrison.supplychain.archives import tar_member_names

    names = tar_member_names(blob) or []
    if {"sys_info", "pickle", "storages", "tensors"} <= set(names):
        return "torch-legacy-tar"
    return "tar"


# --- small magic checks ----------------------------------------------------------------------------------------


def _is_zlib(head: bytes) -> bool:
    if len(head) < 2 or head[0] != 0x78 or (head[0] << 8 | head[1]) % 31 != 0:
        return False
    try:
        zlib.decompressobj().decompress(head[:64], 1)
    except zlib.error:
        return False
    return True


def _is_bz2(head: bytes) -> bool:
    # "BZh", the block size digit, then the magic of a block or of the end of the stream.
    return head[3:4] in tuple(b"123456789"[i : i + 1] for i in range(9)) and head[4:10] in (
        b"\x31\x41\x59\x26\x53\x59",
        b"\x17\x72\x45\x38\x50\x90",
    )


def _is_lzma_alone(head: bytes) -> bool:
    # .lzma ("alone"): properties byte (0x5d for the default lc/lp/pb), dictionary size, 64-bit length.
    if len(head) < 13 or head[0] != 0x5D or head[1] != 0x00:
        return False
    (dict_size,) = struct.unpack_from("<I", head, 1)
    return dict_size & (dict_size - 1) == 0 or dict_size == 0xFFFFFFFF or dict_size >= 1 << 12


def _is_safetensors(blob: Blob, head: bytes) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack_from("<Q", head, 0)
    if n == 0:
        return False
    if n > blob.size - 8:
        # A header length past the end is header abuse, not text ("var x = {" has no NUL in its first 8 bytes).
        return head[8:9] == b"{" and b"\x00" in head[:8]
    return head[8:9] == b"{" or (head[8:9] in (b" ", b"\t", b"\n", b"\r") and head[8:].lstrip()[:1] == b"{")


def _hdf5_with_userblock(blob: Blob) -> bool:
    # The HDF5 superblock may follow a user block of 512, 1024, 2048... bytes.
    offset = 512
    view = blob.view()
    while offset + 8 <= min(blob.size, 1 << 20):
        if bytes(view[offset : offset + 8]) == _HDF5_MAGIC:
            return True
        offset *= 2
    return False


def _as_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut by the head is fine
            return None
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return text if text and printable >= 0.95 * len(text) else None


def _looks_like_python(location: str, text: str) -> bool:
    if location.endswith(".py"):
        return True
    return bool(re.search(r"^(import \w|from [\w.]+ import |def \w+\(|class \w+[(:])", text, re.MULTILINE))


def _has_pickle_name(location: str) -> bool:
    return location.rsplit("!", 1)[-1].lower().endswith(_PICKLE_EXTENSIONS)


# --- protobuf (ONNX, SavedModel) -------------------------------------------------------------------------------


def _varint(view: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(view) and shift < 70:
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("bad varint")


def _protobuf_fields(
    view: memoryview, *, max_fields: int = 10_000
) -> dict[int, list[tuple[int, int, int]]] | None:
    """Top-level fields {number: [(wire type, value or start, length)]} when the whole blob parses, else None."""
    fields: dict[int, list[tuple[int, int, int]]] = {}
    pos = 0
    try:
        for _ in range(max_fields):
            if pos == len(view):
                return fields
            key, pos = _varint(view, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                return None
            if wire == 0:
                value, pos = _varint(view, pos)
                fields.setdefault(number, []).append((0, value, 0))
            elif wire == 2:
                length, pos = _varint(view, pos)
                if pos + length > len(view):
                    return None
                fields.setdefault(number, []).append((2, pos, length))
                pos += length
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
                if pos > len(view):
                    return None
                fields.setdefault(number, []).append((wire, 0, 0))
            else:
                return None
    except ValueError:
        return None
    return None


def _protobuf_kind(blob: Blob) -> str | None:
    view = blob.view()
    if blob.size < 4 or view[0] != 0x08:
        return None
    fields = _protobuf_fields(view)
    if not fields or 1 not in fields or fields[1][0][0] != 0:
        return None
    if set(fields) == {1, 2} and fields[1][0][1] == 1 and all(w == 2 for w, _, _ in fields[2]):
        return "savedmodel-pb"
    onnx_wire = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
    if 7 in fields and all(
        n in onnx_wire and all(w == onnx_wire[n] for w, _, _ in v) for n, v in fields.items()
    ):
        return "onnx"
    return None


# --- pickle probe ----------------------------------------------------------------------------------------------

_STARTERS = frozenset(b"(}])cNIJKLMFGSTUVXdlt\x80ipq")
_MARK = object()


def looks_like_pickle(data: memoryview | bytes, *, lenient: bool = False) -> bool:
    """Whether ``data`` (the first bytes of a stream) parses as pickle opcodes.

    True when the opcodes reach STOP with a consistent stack, or run on to the end of the probe, or import a
    well-formed global before breaking (a payload followed by garbage). ``lenient`` (the name says pickle) also
    accepts a shorter well-formed prefix.
    """
    raw = bytes(data)
    if not raw or raw[0] not in _STARTERS:
        return False
    with warnings.catch_warnings():
        # pickletools decodes escapes with codecs, which warns about odd ones; the probe must stay silent.
        warnings.simplefilter("ignore")
        return _probe(raw, lenient=lenient)


def _probe(raw: bytes, *, lenient: bool) -> bool:
    stack = 0
    marks: list[int] = []
    n_ops = 0
    saw_global = False
    try:
        for opcode, arg, _pos in pickletools.genops(raw):
            n_ops += 1
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if not (_IDENT.match(module) and _IDENT.match(name)):
                    return False
                saw_global = True
            before = opcode.stack_before
            if pickletools.markobject in before:
                if not marks:
                    return False
                stack = marks.pop()
                need = before.index(pickletools.markobject)  # items below the mark
            else:
                need = len(before)
            if stack < need:
                return False
            stack -= need
            for item in opcode.stack_after:
                if item is pickletools.markobject:
                    marks.append(stack)
                else:
                    stack += 1
            if opcode.name == "STOP":
                return n_ops >= 2
    except (ValueError, IndexError, KeyError, UnicodeDecodeError, struct.error, OverflowError):
        return saw_global or (lenient and n_ops >= 2)
    # Ran out of probe without breaking: a long, well-formed stream.
    return len(raw) >= _PICKLE_PROBE or saw_global or (lenient and n_ops >= 2)
