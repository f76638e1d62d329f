"""Zip, tar and compressed wrappers, read by our own parsing and scanned member by member.

Zip files are parsed from both their local headers and their central directory, and the two are compared:
loaders disagree on which one to trust, which is how payloads hide from scanners. Every decompression is
bounded by the ratio and member-size limits; stored members are zero-copy slices of the file.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from garrison.core.rules import SC_ARCHIVE
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import MIN_DECOMPRESSION_ALLOWANCE, LimitHit, ScanContext

__all__ = [
    "ZipArchive",
    "ZipEntry",
    "ZipFormatError",
    "decompress_limited",
    "decompress_wrapper",
    "has_zip_directory",
    "iter_tar_members",
    "iter_zip_members",
    "list_zip_names",
    "read_zip",
    "scan_compressed",
    "scan_tar",
    "scan_zip",
    "tar_member_names",
    "unsafe_member_path",
]

_LOCAL_SIG = b"PK\x03\x04"
_CENTRAL_SIG = b"PK\x01\x02"
_EOCD_SIG = b"PK\x05\x06"
_EOCD64_SIG = b"PK\x06\x06"
_EOCD64_LOCATOR_SIG = b"PK\x06\x07"
_DESCRIPTOR_SIG = b"PK\x07\x08"
_EOCD = struct.Struct("<4s4H2LH")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")

_FLAG_ENCRYPTED = 0x0001
_FLAG_DESCRIPTOR = 0x0008
_FLAG_STRONG_ENCRYPTION = 0x0040
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_HEADERS = 0x2000
# Bits 1-2 carry the deflate level; 3 the data descriptor; 11 UTF-8 names. Anything else is odd in a model file.
_FLAGS_NORMAL = 0x0002 | 0x0004 | _FLAG_DESCRIPTOR | _FLAG_UTF8

_STORED, _DEFLATED, _BZIP2, _LZMA = 0, 8, 12, 14
_METHOD_NAMES = {1: "shrink", 6: "implode", 9: "deflate64", 93: "zstd", 95: "xz", 98: "ppmd", 99: "aes"}
_CHUNK = 1 << 20


class ZipFormatError(Exception):
    """The bytes are not a zip archive we can read."""


@dataclass(slots=True)
class ZipEntry:
    """One member: what the central directory says, and what its local header says."""

    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int = -1
    local_name: str | None = None
    local_flags: int | None = None
    local_method: int | None = None
    hidden: bool = False  # found as a local header that the central directory does not list

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") and self.size == 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION))

    @property
    def data_end(self) -> int:
        return self.data_offset + self.compressed_size


@dataclass(slots=True)
class ZipArchive:
    """A parsed zip: its entries (central directory order) and the structural problems found while parsing."""

    blob: Blob
    entries: list[ZipEntry]
    problems: list[tuple[str, str, dict[str, Any]]] = field(
        default_factory=list
    )  # (where, message, evidence)
    _crc_checked: set[int] = field(default_factory=set)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def find(self, name: str) -> ZipEntry | None:
        return next((e for e in self.entries if e.name == name and not e.hidden), None)

    def read(self, entry: ZipEntry, ctx: ScanContext) -> memoryview | bytes:
        """The member's content: a zero-copy slice when stored, else decompressed within the limits.

        A CRC that does not match is reported (once per member). Encrypted or unsupported members raise
        :class:`ZipFormatError`.
        """
        if entry.encrypted:
            raise ZipFormatError("member is encrypted")
        view = self.blob.view()
        raw = view[entry.data_offset : entry.data_end]
        if len(raw) != entry.compressed_size:
            raise ZipFormatError("member data runs past the end of the file")
        if entry.method == _STORED:
            data: memoryview | bytes = raw
        elif entry.method in (_DEFLATED, _BZIP2, _LZMA):
            try:
                data, complete = decompress_limited(
                    _zip_decompressor(entry.method, raw), raw, ctx, what=f"member {entry.name}"
                )
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                raise ZipFormatError(f"compressed data is corrupt: {exc}") from exc
            if not complete:
                raise ZipFormatError("compressed data is truncated")
        else:
            method = _METHOD_NAMES.get(entry.method, str(entry.method))
            raise ZipFormatError(f"compression method {method} is not supported")
        if id(entry) not in self._crc_checked:
            self._crc_checked.add(id(entry))
            actual = zlib.crc32(data)
            if actual != entry.crc:
                ctx.report(
                    SC_ARCHIVE,
                    f"{self.blob.location}!{entry.name}",
                    f"CRC of member {entry.name!r} does not match its header",
                    evidence={
                        "member": entry.name,
                        "crc_header": f"{entry.crc:08x}",
                        "crc_data": f"{actual:08x}",
                    },
                )
        return data


def _zip_decompressor(method: int, raw: memoryview) -> Any:
    if method == _DEFLATED:
        return zlib.decompressobj(-15)
    if method == _BZIP2:
        return bz2.BZ2Decompressor()
    # zip's LZMA: 2 bytes version, 2 bytes properties size, the properties, then a raw LZMA1 stream.
    if len(raw) < 4:
        raise ZipFormatError("LZMA member header is truncated")
    (psize,) = struct.unpack_from("<H", raw, 2)
    props = bytes(raw[4 : 4 + psize])
    try:
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    except (lzma.LZMAError, ValueError) as exc:
        raise ZipFormatError(f"bad LZMA properties: {exc}") from exc
    return _Skip(lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt]), 4 + psize)


class _Skip:
    """A decompressor that first drops a header of ``n`` bytes."""

    def __init__(self, inner: Any, n: int) -> None:
        self._inner = inner
        self._skip = n

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._skip:
            cut = min(self._skip, len(data))
            data, self._skip = data[cut:], self._skip - cut
        return self._inner.decompress(data, max_length)

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data

    @property
    def needs_input(self) -> bool:
        return self._inner.needs_input


def decompress_limited(
    decompressor: Any, raw: memoryview | bytes, ctx: ScanContext, *, what: str
) -> tuple[bytes, bool]:
    """Stream-decompress ``raw`` in chunks, stopping with :class:`LimitHit` beyond the ratio or member limit.

    Returns the data and whether the stream ended properly (``False``: truncated; what came out is returned).
    Works with zlib, bz2 and lzma decompressor objects.
    """
    limit = min(
        ctx.limits.max_member_bytes,
        max(int(ctx.limits.max_decompression_ratio * len(raw)), MIN_DECOMPRESSION_ALLOWANCE),
    )
    out: list[bytes] = []
    total = 0
    view = memoryview(raw)
    pos = 0
    is_zlib = not hasattr(decompressor, "needs_input")
    feed = b""
    while not decompressor.eof:
        ctx.check_deadline()
        need = not feed if is_zlib else decompressor.needs_input
        if need:
            if pos >= len(view):
                break
            feed = bytes(view[pos : pos + _CHUNK])
            pos += _CHUNK
        chunk = decompressor.decompress(feed, _CHUNK)
        leftover = decompressor.unconsumed_tail if is_zlib else b""
        if not chunk and leftover and len(leftover) == len(feed):
            break  # no progress: a decompressor that neither consumes nor produces
        feed = leftover
        if chunk:
            total += len(chunk)
            if total > limit:
                name = (
                    "max_member_bytes" if limit == ctx.limits.max_member_bytes else "max_decompression_ratio"
                )
                raise LimitHit(name, f"{what} decompresses to more than {limit} bytes")
            ctx.charge_decompressed(len(chunk))
            out.append(chunk)
    return b"".join(out), bool(decompressor.eof)


# --- zip structure ---------------------------------------------------------------------------------------------


def _find_eocd(view: memoryview) -> int:
    """Offset of the last end-of-central-directory record in the file's last 64 KiB, or -1."""
    start = max(0, len(view) - (_EOCD.size + 0xFFFF))
    tail = bytes(view[start:])
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0 and pos + _EOCD.size > len(tail):
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    return -1 if pos < 0 else start + pos


def has_zip_directory(view: memoryview) -> bool:
    """Whether an end-of-central-directory record sits at the end (what ``zipfile`` looks for)."""
    return _find_eocd(view) >= 0


def _zip64_extra(extra: bytes, entry_values: list[int]) -> list[int]:
    """Replace 0xFFFFFFFF sizes/offset by the values of the zip64 extra field (in the order the spec gives)."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        if tag == 0x0001:
            values = list(entry_values)
            k = 0
            for i, value in enumerate(values):
                if value == 0xFFFFFFFF and k + 8 <= len(body):
                    (values[i],) = struct.unpack_from("<Q", body, k)
                    k += 8
            return values
        pos += 4 + size
    return entry_values


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & _FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")


def read_zip(blob: Blob, ctx: ScanContext) -> ZipArchive:
    """Parse the central directory and every local header; report structural problems as GAR-SC-004.

    Raises :class:`ZipFormatError` when there is no usable central directory, :class:`LimitHit` when the archive
    lists more than ``max_members`` members.
    """
    archive = _parse_zip(blob, ctx.limits.max_members)
    for where, message, evidence in archive.problems:
        ctx.report(SC_ARCHIVE, where, message, evidence=evidence)
    return archive


def list_zip_names(blob: Blob, *, max_members: int = 100_000) -> list[str] | None:
    """The member names of a zip (central directory), or ``None`` when it is not a readable zip."""
    try:
        return _parse_zip(blob, max_members).names()
    except (ZipFormatError, LimitHit):
        return None


def _parse_zip(blob: Blob, max_members: int) -> ZipArchive:
    view = blob.view()
    eocd = _find_eocd(view)
    if eocd < 0:
        raise ZipFormatError("no end of central directory record")
    _, disk, cd_disk, _, n_total, cd_size, cd_offset, _ = _EOCD.unpack_from(view, eocd)
    loc = eocd - _EOCD64_LOCATOR.size
    if loc >= 0 and bytes(view[loc : loc + 4]) == _EOCD64_LOCATOR_SIG:
        _, _, eocd64_offset, _ = _EOCD64_LOCATOR.unpack_from(view, loc)
        if 0 <= eocd64_offset <= len(view) - _EOCD64.size and bytes(
            view[eocd64_offset : eocd64_offset + 4]
        ) == (_EOCD64_SIG):
            rec = _EOCD64.unpack_from(view, eocd64_offset)
            n_total, cd_size, cd_offset = rec[7], rec[8], rec[9]
            eocd = eocd64_offset
    problems: list[tuple[str, str, dict[str, Any]]] = []
    where = blob.location
    if disk != 0 or cd_disk != 0:
        problems.append((where, "archive claims to span several disks", {"disk": disk}))
    if n_total > max_members:
        raise LimitHit("max_members", f"archive lists {n_total} members (limit {max_members})")
    # Data prepended to the archive shifts every offset; zipfile corrects for it the same way.
    shift = eocd - cd_size - cd_offset
    if shift < 0 or cd_offset + shift < 0:
        raise ZipFormatError("central directory offset points outside the file")
    if shift > 0:
        problems.append((where, f"{shift} bytes precede the zip archive", {"prefix_bytes": shift}))
    entries: list[ZipEntry] = []
    pos = cd_offset + shift
    end = pos + cd_size
    while pos + _CENTRAL.size <= end:
        if bytes(view[pos : pos + 4]) != _CENTRAL_SIG:
            break
        (_, _, _, flags, method, _, _, crc, csize, usize, nlen, xlen, clen, _, _, _, offset) = (
            _CENTRAL.unpack_from(view, pos)
        )
        name_raw = bytes(view[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen])
        extra = bytes(view[pos + _CENTRAL.size + nlen : pos + _CENTRAL.size + nlen + xlen])
        usize, csize, offset = _zip64_extra(extra, [usize, csize, offset])
        entries.append(
            ZipEntry(_decode_name(name_raw, flags), flags, method, crc, csize, usize, offset + shift)
        )
        if len(entries) > max_members:
            raise LimitHit("max_members", f"archive has more than {max_members} members")
        pos += _CENTRAL.size + nlen + xlen + clen
    if len(entries) != n_total:
        problems.append(
            (
                where,
                "central directory entry count disagrees with the end record",
                {"listed": len(entries), "declared": n_total},
            )
        )
    if not entries and n_total:
        raise ZipFormatError("central directory is unreadable")
    archive = ZipArchive(blob, entries, problems)
    for entry in entries:
        _read_local(view, entry, archive)
    _check_names(archive)
    _check_layout(view, archive, cd_start=cd_offset + shift, max_members=max_members)
    return archive


def _read_local(view: memoryview, entry: ZipEntry, archive: ZipArchive) -> None:
    member = f"{archive.blob.location}!{entry.name}"
    off = entry.header_offset
    if off < 0 or off + _LOCAL.size > len(view) or bytes(view[off : off + 4]) != _LOCAL_SIG:
        archive.problems.append(
            (
                member,
                f"member {entry.name!r} has no local header at its offset",
                {"member": entry.name, "offset": off},
            )
        )
        entry.data_offset = len(view)
        entry.compressed_size = 0
        return
    _, _, lflags, lmethod, _, _, lcrc, lcsize, lusize, nlen, xlen = _LOCAL.unpack_from(view, off)
    lname = _decode_name(bytes(view[off + _LOCAL.size : off + _LOCAL.size + nlen]), lflags)
    extra = bytes(view[off + _LOCAL.size + nlen : off + _LOCAL.size + nlen + xlen])
    lusize, lcsize = _zip64_extra(extra, [lusize, lcsize])
    entry.local_name, entry.local_flags, entry.local_method = lname, lflags, lmethod
    entry.data_offset = off + _LOCAL.size + nlen + xlen
    ev: dict[str, Any] = {"member": entry.name}
    if lname != entry.name:
        archive.problems.append(
            (
                member,
                f"local header names {lname!r} but the central directory names {entry.name!r}",
                {**ev, "local_name": lname, "central_name": entry.name},
            )
        )
    if lmethod != entry.method:
        archive.problems.append(
            (
                member,
                f"member {entry.name!r}: local and central compression methods differ",
                {**ev, "local_method": lmethod, "central_method": entry.method},
            )
        )
    if lflags != entry.flags:
        archive.problems.append(
            (
                member,
                f"member {entry.name!r}: local and central flag bits differ",
                {**ev, "local_flags": f"0x{lflags:04x}", "central_flags": f"0x{entry.flags:04x}"},
            )
        )
    odd = (entry.flags | lflags) & ~_FLAGS_NORMAL
    if odd:
        what = (
            "encrypted"
            if odd & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION | _FLAG_MASKED_HEADERS)
            else "unusual"
        )
        archive.problems.append(
            (
                member,
                f"member {entry.name!r} has {what} flag bits 0x{odd:04x}",
                {**ev, "flags": f"0x{entry.flags | lflags:04x}"},
            )
        )
    if lflags & _FLAG_DESCRIPTOR:
        _check_descriptor(view, entry, archive, member)
    elif (lcrc, lcsize, lusize) != (entry.crc, entry.compressed_size, entry.size):
        archive.problems.append(
            (
                member,
                f"member {entry.name!r}: local header CRC or sizes disagree with the central directory",
                {
                    **ev,
                    "local": [f"{lcrc:08x}", lcsize, lusize],
                    "central": [f"{entry.crc:08x}", entry.compressed_size, entry.size],
                },
            )
        )


def _check_descriptor(view: memoryview, entry: ZipEntry, archive: ZipArchive, member: str) -> None:
    pos = entry.data_end
    if bytes(view[pos : pos + 4]) == _DESCRIPTOR_SIG:
        pos += 4
    if pos + 12 > len(view):
        return
    crc, csize, usize = struct.unpack_from("<3L", view, pos)
    if crc != entry.crc:
        archive.problems.append(
            (
                member,
                f"member {entry.name!r}: data descriptor CRC disagrees with the central directory",
                {"member": entry.name},
            )
        )
    elif (csize, usize) != (entry.compressed_size & 0xFFFFFFFF, entry.size & 0xFFFFFFFF) and pos + 20 <= len(
        view
    ):
        csize64, usize64 = struct.unpack_from("<2Q", view, pos + 4)
        if (csize64, usize64) != (entry.compressed_size, entry.size):
            archive.problems.append(
                (
                    member,
                    f"member {entry.name!r}: data descriptor sizes disagree with the central directory",
                    {"member": entry.name},
                )
            )


_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_member_path(name: str) -> str | None:
    """Why extracting a member of this name could write outside the target directory, or ``None``."""
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "climbs out of the archive with '..'"
    return None


def _check_names(archive: ZipArchive) -> None:
    seen: set[str] = set()
    for entry in archive.entries:
        member = f"{archive.blob.location}!{entry.name}"
        if entry.name in seen:
            archive.problems.append(
                (member, f"member name {entry.name!r} appears more than once", {"member": entry.name})
            )
        seen.add(entry.name)
        for name in {entry.name, entry.local_name or entry.name}:
            why = unsafe_member_path(name)
            if why:
                archive.problems.append((member, f"member path {name!r} {why}", {"member": name}))


def _check_layout(view: memoryview, archive: ZipArchive, *, cd_start: int, max_members: int) -> None:
    """Overlapping members, and local headers that the central directory does not list (hidden members)."""
    spans = sorted((e.header_offset, e.data_end, e) for e in archive.entries if e.data_offset < len(view))
    prev_end = 0
    prev: ZipEntry | None = None
    for start, end, entry in spans:
        if prev is not None and start < prev_end:
            archive.problems.append(
                (
                    f"{archive.blob.location}!{entry.name}",
                    f"members {prev.name!r} and {entry.name!r} overlap",
                    {"member": entry.name, "other": prev.name},
                )
            )
        else:
            _find_hidden(view, prev_end, start, archive, max_members)
        if end > prev_end:
            prev_end, prev = end, entry
    _find_hidden(view, prev_end, min(cd_start, len(view)), archive, max_members)


def _find_hidden(view: memoryview, start: int, end: int, archive: ZipArchive, max_members: int) -> None:
    if end - start < _LOCAL.size:
        return
    gap = bytes(view[start:end]) if end - start <= (64 << 20) else bytes(view[start : start + (64 << 20)])
    pos = gap.find(_LOCAL_SIG)
    while pos >= 0 and pos + _LOCAL.size <= len(gap):
        off = start + pos
        _, _, flags, method, _, _, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(view, off)
        name = _decode_name(bytes(view[off + _LOCAL.size : off + _LOCAL.size + nlen]), flags)
        entry = ZipEntry(
            name,
            flags,
            method,
            crc,
            csize,
            usize,
            off,
            off + _LOCAL.size + nlen + xlen,
            name,
            flags,
            method,
            hidden=True,
        )
        archive.entries.append(entry)
        archive.problems.append(
            (
                f"{archive.blob.location}!{name}",
                f"local header for {name!r} is not listed in the central directory",
                {"member": name, "offset": off},
            )
        )
        if len(archive.entries) > max_members:
            raise LimitHit("max_members", f"archive has more than {max_members} members")
        pos = gap.find(_LOCAL_SIG, pos + _LOCAL.size)


# --- scanners --------------------------------------------------------------------------------------------------


def iter_zip_members(archive: ZipArchive, ctx: ScanContext) -> Iterator[tuple[ZipEntry, Blob]]:
    """Every file member as a child blob; unreadable members are recorded as incomplete and skipped."""
    for entry in archive.entries:
        if entry.is_dir:
            continue
        ctx.check_deadline()
        location = f"{archive.blob.location}!{entry.name}"
        try:
            data = archive.read(entry, ctx)
        except ZipFormatError as exc:
            ctx.incomplete(location, f"member cannot be read: {exc}")
            continue
        except LimitHit as hit:
            if hit.limit == "timeout_s":
                raise
            ctx.incomplete(location, hit.message, limit=hit.limit)
            continue
        yield entry, archive.blob.child(data, entry.name)


def scan_zip(blob: Blob, ctx: ScanContext) -> None:
    """Scan a zip archive: its structure, then every member by its own format."""
    try:
        archive = read_zip(blob, ctx)
    except ZipFormatError as exc:
        ctx.incomplete(blob.location, f"not a readable zip archive: {exc}")
        return
    for _, child in iter_zip_members(archive, ctx):
        ctx.scan_child(child)


class _ViewReader(io.RawIOBase):
    """A seekable read-only file over a memoryview, without copying it."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        buffer[:n] = chunk
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _open_tar(view: memoryview) -> tarfile.TarFile:
    return tarfile.open(fileobj=_ViewReader(view), mode="r:")  # type: ignore[arg-type]


def tar_member_names(blob: Blob, *, max_members: int = 100_000) -> list[str] | None:
    """The member names of an uncompressed tar, or ``None`` when it is not a readable tar."""
    try:
        with _open_tar(blob.view()) as tar:
            names = []
            for info in tar:
                names.append(info.name)
                if len(names) > max_members:
                    return None
            return names
    except (tarfile.TarError, ValueError, EOFError, OSError, struct.error, UnicodeError):
        return None


def iter_tar_members(blob: Blob, ctx: ScanContext) -> Iterator[tuple[tarfile.TarInfo, Blob]]:
    """Every regular member of a tar as a zero-copy child blob; names and links checked (GAR-SC-004)."""
    view = blob.view()
    try:
        tar = _open_tar(view)
    except (tarfile.TarError, ValueError, EOFError, OSError, struct.error, UnicodeError) as exc:
        ctx.incomplete(blob.location, f"not a readable tar archive: {exc}")
        return
    count = 0
    seen: set[str] = set()
    with tar:
        while True:
            ctx.check_deadline()
            try:
                info = tar.next()
            except (tarfile.TarError, ValueError, EOFError, OSError, struct.error, UnicodeError) as exc:
                ctx.incomplete(blob.location, f"tar archive is corrupt after {count} members: {exc}")
                return
            if info is None:
                return
            count += 1
            if count > ctx.limits.max_members:
                raise LimitHit("max_members", f"archive has more than {ctx.limits.max_members} members")
            location = f"{blob.location}!{info.name}"
            why = unsafe_member_path(info.name)
            if why:
                ctx.report(
                    SC_ARCHIVE, location, f"member path {info.name!r} {why}", evidence={"member": info.name}
                )
            if info.name in seen:
                ctx.report(
                    SC_ARCHIVE,
                    location,
                    f"member name {info.name!r} appears more than once",
                    evidence={"member": info.name},
                )
            seen.add(info.name)
            if info.issym() or info.islnk():
                ctx.report(
                    SC_ARCHIVE,
                    location,
                    f"member {info.name!r} is a link to {info.linkname!r}",
                    evidence={"member": info.name, "target": info.linkname},
                )
                continue
            if info.isdev() or info.isfifo():
                ctx.report(
                    SC_ARCHIVE,
                    location,
                    f"member {info.name!r} is a device or FIFO",
                    evidence={"member": info.name},
                )
                continue
            if not info.isfile():
                continue
            if info.issparse():
                ctx.incomplete(location, "sparse tar members are not supported")
                continue
            start, end = info.offset_data, info.offset_data + info.size
            if end > len(view):
                ctx.incomplete(location, "member data runs past the end of the archive")
                data = view[start:]
            else:
                data = view[start:end]
            yield info, blob.child(data, info.name)


def scan_tar(blob: Blob, ctx: ScanContext) -> None:
    """Scan a tar archive member by member."""
    for _, child in iter_tar_members(blob, ctx):
        ctx.scan_child(child)


# --- compressed wrappers ---------------------------------------------------------------------------------------


def _wrapper_decompressor(fmt: str) -> Any:
    if fmt == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if fmt == "zlib":
        return zlib.decompressobj()
    if fmt == "bz2":
        return bz2.BZ2Decompressor()
    if fmt == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)
    if fmt == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    raise ValueError(f"not a compressed wrapper: {fmt}")


def decompress_wrapper(
    fmt: str, raw: memoryview | bytes, ctx: ScanContext, *, what: str
) -> tuple[bytes, str | None]:
    """Decompress a gzip/zlib/bz2/xz/lzma stream (concatenated streams too) within the limits.

    Returns the data and a problem (``None`` when the stream ended properly).
    """
    view = memoryview(raw)
    parts: list[bytes] = []
    problem: str | None = None
    total_in = len(view)
    while True:
        decompressor = _wrapper_decompressor(fmt)
        try:
            data, complete = decompress_limited(decompressor, view, ctx, what=what)
        except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
            return b"".join(parts), f"{fmt} stream is corrupt: {exc}"
        parts.append(data)
        if not complete:
            problem = f"{fmt} stream is truncated"
            break
        unused = getattr(decompressor, "unused_data", b"")
        if not unused or not _starts_stream(fmt, unused) or fmt in ("zlib", "lzma"):
            break
        view = memoryview(unused)
        if len(view) >= total_in:  # pragma: no cover - defensive: no progress
            break
    return b"".join(parts), problem


def _starts_stream(fmt: str, data: bytes) -> bool:
    return data.startswith(
        {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}.get(fmt, b"\x00\x00\x00\x00")
    )


def scan_compressed(blob: Blob, ctx: ScanContext) -> None:
    """Decompress a gzip/zlib/bz2/xz/lzma wrapper within the limits and scan what is inside.

    The content keeps the wrapper's location (it is the same file to a loader) one nesting level deeper.
    """
    from garrison.supplychain.formats import detect_format

    fmt = detect_format(blob)
    data, problem = decompress_wrapper(fmt, blob.view(), ctx, what=f"{fmt} content")
    inner = Blob.from_bytes(data, blob.location, depth=blob.depth + 1)
    if data:
        ctx.scan_child(inner)
    if problem:
        ctx.incomplete(blob.location, problem)
