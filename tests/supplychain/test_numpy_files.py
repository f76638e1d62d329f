import importlib.util
import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.supplychain import scan_bytes, scan_paths
from garrison.supplychain.numpy_files import NpyHeaderError, parse_npy_header

needs_pickle_machine = pytest.mark.xfail(
    importlib.util.find_spec("garrison.supplychain.pickle_machine") is None,
    reason="garrison.supplychain.pickle_machine has not landed yet",
    strict=False,
)


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo harmless",))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_header_parse() -> None:
    header = parse_npy_header(_npy(np.zeros((2, 3), dtype="<f4")))
    assert header.shape == (2, 3)
    assert header.descr == "<f4"
    assert not header.has_object
    assert parse_npy_header(_npy(np.array([None, 1], dtype=object))).has_object
    structured = np.zeros(2, dtype=[("a", "<i4"), ("b", "O")])
    assert parse_npy_header(_npy(structured)).has_object
    with pytest.raises(NpyHeaderError):
        parse_npy_header(b"\x93NUMPY\x01\x00\x10\x00__import__('os')")


def test_plain_arrays_are_clean_without_any_pickle_analysis(numpy_files: dict[str, Path]) -> None:
    result = scan_paths([numpy_files["plain"], numpy_files["npz_compressed"]])
    assert result.findings == ()
    assert result.incomplete == ()


def test_bad_header_is_incomplete() -> None:
    result = scan_bytes(b"\x93NUMPY\x01\x00\xff\xff{", name="a.npy")
    assert result.exit_code() == 3


@needs_pickle_machine
def test_object_arrays_are_analysed(numpy_files: dict[str, Path]) -> None:
    result = scan_paths([numpy_files["object"], numpy_files["npz"]])
    assert result.findings == ()
    assert result.incomplete == ()
    evil = scan_bytes(_npy(np.array([Evil(), 1], dtype=object)), name="evil.npy")
    assert [f.rule_id for f in evil.findings] == ["GAR-SC-001"]


@needs_pickle_machine
def test_malicious_member_of_npz(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, ok=np.arange(3), bad=np.array([Evil()], dtype=object))
    result = scan_paths([path])
    assert [(f.rule_id, f.location) for f in result.findings] == [("GAR-SC-001", f"{path}!bad.npy")]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_headers_never_raise(tail: bytes) -> None:
    assert scan_bytes(b"\x93NUMPY\x01\x00" + tail, name="a.npy").exit_code() in (0, 1, 3)
