import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.supplychain import Blob, ScanContext, ScanLimits, scan_bytes
from garrison.supplychain.archives import decompress_limited, read_zip, unsafe_member_path

TEXT = b"just some notes, nothing to run\n"


@dataclass
class Member:
    name: str
    data: bytes = TEXT
    method: int = 0
    flags: int = 0
    local_name: str | None = None
    local_flags: int | None = None
    crc: int | None = None


def build_zip(members: list[Member], *, prefix: bytes = b"", extra_gap: bytes = b"") -> bytes:
    """A zip written by hand so that its headers can disagree with each other."""
    out = bytearray(prefix)
    central = bytearray()
    for m in members:
        payload = m.data if m.method == 0 else zlib.compress(m.data)[2:-4]
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        offset = len(out) - len(prefix)
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        lflags = m.flags if m.local_flags is None else m.local_flags
        out += (
            struct.pack(
                "<4s5H3L2H",
                b"PK\x03\x04",
                20,
                lflags,
                m.method,
                0,
                0,
                crc,
                len(payload),
                len(m.data),
                len(lname),
                0,
            )
            + lname
            + payload
            + extra_gap
        )
        name = m.name.encode()
        central += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                m.flags,
                m.method,
                0,
                0,
                crc,
                len(payload),
                len(m.data),
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    cd_offset = len(out) - len(prefix)
    out += central
    out += struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), cd_offset, 0
    )
    return bytes(out)


def findings(data: bytes, **kw: object) -> list[tuple[str, str, str]]:
    result = scan_bytes(data, name="a.zip", **kw)  # type: ignore[arg-type]
    return [(f.rule_id, f.location or "", f.message) for f in result.findings]


def test_hand_made_zip_matches_zipfile() -> None:
    data = build_zip([Member("a.txt"), Member("b.txt", method=8)])
    assert zipfile.ZipFile(io.BytesIO(data)).read("b.txt") == TEXT
    result = scan_bytes(data, name="a.zip")
    assert result.findings == ()
    assert result.incomplete == ()
    assert [f.location for f in result.files] == ["a.zip", "a.zip!a.txt", "a.zip!b.txt"]
    assert result.exit_code() == 0


def test_local_central_name_mismatch() -> None:
    found = findings(build_zip([Member("weights.txt", local_name="payload.pkl")]))
    assert [(r, loc) for r, loc, _ in found] == [("GAR-SC-004", "a.zip!weights.txt")]
    assert "payload.pkl" in found[0][2]


def test_bad_crc() -> None:
    found = findings(build_zip([Member("a.txt", crc=0x1234)]))
    assert found == [("GAR-SC-004", "a.zip!a.txt", "CRC of member 'a.txt' does not match its header")]
    deflated = findings(build_zip([Member("a.txt", method=8, crc=0x1234)]))
    assert [r for r, _, _ in deflated] == ["GAR-SC-004"]


def test_flag_bits() -> None:
    odd = findings(build_zip([Member("a.txt", flags=0x0010)]))
    assert any("unusual flag bits 0x0010" in m for _, _, m in odd)
    mismatch = findings(build_zip([Member("a.txt", flags=0x0800, local_flags=0)]))
    assert any("flag bits differ" in m for _, _, m in mismatch)
    encrypted = scan_bytes(build_zip([Member("a.txt", flags=0x0001)]), name="a.zip")
    assert any("encrypted flag bits" in f.message for f in encrypted.findings)
    assert encrypted.exit_code() == 3  # an encrypted member cannot be scanned


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "C:/evil.txt", "a\\..\\evil.txt"])
def test_path_traversal(name: str) -> None:
    found = findings(build_zip([Member(name)]))
    assert [r for r, _, _ in found] == ["GAR-SC-004"]
    assert unsafe_member_path(name)
    assert unsafe_member_path("dir/ok..txt") is None


def test_duplicate_names_and_hidden_local_header() -> None:
    dup = findings(build_zip([Member("a.txt"), Member("a.txt")]))
    assert any("appears more than once" in m for _, _, m in dup)
    hidden_member = (
        b"PK\x03\x04"
        + struct.pack("<5H3L2H", 20, 0, 0, 0, 0, zlib.crc32(TEXT), len(TEXT), len(TEXT), 5, 0)
        + b"h.txt"
        + TEXT
    )
    hidden = findings(build_zip([Member("a.txt")], extra_gap=hidden_member))
    assert any("not listed in the central directory" in m for _, _, m in hidden)


def test_prefixed_zip_is_read_and_reported() -> None:
    data = build_zip([Member("a.txt")], prefix=b"junk" * 10)
    found = findings(data)
    assert any("40 bytes precede" in m for _, _, m in found)


def test_zip_bomb_beyond_the_ratio_is_incomplete() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\x00" * (20 << 20))
    result = scan_bytes(buf.getvalue(), name="bomb.zip")
    assert result.exit_code() == 3
    (item,) = result.incomplete
    assert item.location == "bomb.zip!zeros.bin"
    assert item.limit == "max_decompression_ratio"


def test_member_size_limit() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("a.txt", TEXT * 1000)
    result = scan_bytes(buf.getvalue(), name="a.zip", limits=ScanLimits(max_member_bytes=1000))
    assert [i.limit for i in result.incomplete] == ["max_member_bytes"]


def _nest(depth: int) -> bytes:
    data = TEXT
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"level{level}.zip" if level else "notes.txt", data)
        data = buf.getvalue()
    return data


def test_nested_zip_locations_and_depth_limit() -> None:
    result = scan_bytes(_nest(3), name="a.zip")
    assert result.incomplete == ()
    assert result.files[-1].location == "a.zip!level2.zip!level1.zip!notes.txt"
    deep = scan_bytes(_nest(4), name="a.zip", limits=ScanLimits(max_nesting_depth=2))
    assert deep.exit_code() == 3
    assert [i.limit for i in deep.incomplete] == ["max_nesting_depth"]


def test_too_many_members() -> None:
    data = build_zip([Member(f"{i}.txt") for i in range(5)])
    result = scan_bytes(data, name="a.zip", limits=ScanLimits(max_members=3))
    assert [i.limit for i in result.incomplete] == ["max_members"]


def test_lzma_and_bzip2_members_are_read() -> None:
    for method in (zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as zf:
            zf.writestr("a.txt", TEXT)
        ctx = ScanContext()
        archive = read_zip(Blob.from_bytes(buf.getvalue(), "a.zip"), ctx)
        assert bytes(archive.read(archive.entries[0], ctx)) == TEXT
        assert ctx.result().findings == ()


def test_corrupt_and_truncated_zips_are_incomplete() -> None:
    data = build_zip([Member("a.txt", method=8)])
    assert scan_bytes(data[:-10], name="a.zip").exit_code() == 3
    assert scan_bytes(b"PK\x03\x04" + b"\x00" * 40, name="a.zip").exit_code() == 3


def _tar(entries: list[tarfile.TarInfo], payload: bytes = TEXT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            if info.isfile():
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                tar.addfile(info)
    return buf.getvalue()


def test_tar_members_traversal_and_links() -> None:
    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    data = _tar([tarfile.TarInfo("ok.txt"), tarfile.TarInfo("../up.txt"), link])
    result = scan_bytes(gzip.compress(data), name="m.tar.gz")
    messages = sorted(f.message for f in result.findings)
    assert messages == [
        "member 'link' is a link to '/etc/passwd'",
        "member path '../up.txt' climbs out of the archive with '..'",
    ]
    assert "m.tar.gz!ok.txt" in [f.location for f in result.files]
    assert result.incomplete == ()


def test_compressed_wrappers_are_scanned_within_limits() -> None:
    for compress in (gzip.compress, bz2.compress, lzma.compress, zlib.compress):
        result = scan_bytes(compress(TEXT), name="notes.gz")
        assert result.exit_code() == 0, compress
        assert result.files[-1].format == "text"
    bomb = scan_bytes(gzip.compress(b"\x00" * (30 << 20)), name="bomb.gz")
    assert [i.limit for i in bomb.incomplete] == ["max_decompression_ratio"]
    truncated = scan_bytes(gzip.compress(TEXT * 100)[:-12], name="t.gz")
    assert [i.reason for i in truncated.incomplete] == ["gzip stream is truncated"]


def test_decompress_limited_reports_truncation() -> None:
    ctx = ScanContext()
    data, complete = decompress_limited(zlib.decompressobj(), zlib.compress(TEXT)[:-6], ctx, what="x")
    assert not complete
    assert TEXT.startswith(data)


def test_7z_is_unsupported_and_incomplete() -> None:
    result = scan_bytes(b"7z\xbc\xaf\x27\x1c" + bytes(40), name="m.7z")
    assert result.exit_code() == 3
    assert "7z" in result.incomplete[0].reason


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 10_000), st.data())
def test_mutated_zips_never_raise(noise: bytes, pos: int, data: st.DataObject) -> None:
    base = build_zip([Member("a.txt", method=8), Member("b/c.txt")])
    i = pos % (len(base) + 1)
    mode = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
    if mode == "flip":
        mutated = base[:i] + bytes(b ^ 0xFF for b in noise[:8]) + base[i + len(noise[:8]) :]
    elif mode == "insert":
        mutated = base[:i] + noise + base[i:]
    elif mode == "delete":
        mutated = base[:i] + base[i + len(noise) :]
    else:
        mutated = base[:i]
    result = scan_bytes(mutated, name="m.zip")
    assert result.exit_code() in (0, 1, 3)
    assert not any("failed" in item.reason for item in result.incomplete), result.incomplete
