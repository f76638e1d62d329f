from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as save_numpy
from safetensors.torch import save as save_torch

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.result import ScanResult
from garrison.supplychain.safetensors_files import HeaderProblem, check_safetensors, scan_safetensors

REAL_NUMPY = save_numpy(
    {
        "weight": np.ones((3, 4), dtype=np.float32),
        "bias": np.zeros(3, dtype=np.int64),
        "empty": np.zeros((0, 2), dtype=np.float16),
        "flag": np.array(True),
    },
    metadata={"format": "np"},
)
REAL_TORCH = save_torch(
    {
        "w": torch.zeros(2, 3, dtype=torch.bfloat16),
        "f8": torch.zeros(4, dtype=torch.float8_e4m3fn),
        "c": torch.zeros(2, dtype=torch.complex64),
    },
    metadata={"format": "pt"},
)


def build(header: dict[str, Any] | str | bytes, data: bytes = b"", *, length: int | None = None) -> bytes:
    raw = (
        header
        if isinstance(header, bytes)
        else (header if isinstance(header, str) else json.dumps(header)).encode()
    )
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def messages(data: bytes) -> list[str]:
    return [p.message for p in check_safetensors(data)]


def test_files_written_by_the_safetensors_library_are_clean() -> None:
    assert check_safetensors(REAL_NUMPY) == []
    assert check_safetensors(REAL_TORCH) == []
    ctx = ScanContext()
    scan_safetensors(Blob.from_bytes(REAL_TORCH, "m.safetensors"), ctx)
    assert ctx.result() == ScanResult((), (), ())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x01\x00", "too short"),
        (struct.pack("<Q", 200_000_000) + b"{}", "exceeds the 100000000-byte cap"),
        (struct.pack("<Q", 500) + b"{}", "runs past the end"),
        (build(b"[1, 2]"), "does not start with '{'"),
        (build(b'{"a": \xff}'), "not UTF-8"),
        (build('{"a": '), "not valid JSON"),
    ],
)
def test_header_framing_problems(data: bytes, expected: str) -> None:
    (problem,) = check_safetensors(data)
    assert expected in problem.message and problem.severity is Severity.HIGH


def test_duplicate_keys_are_found_even_though_json_keeps_the_last() -> None:
    header = (
        '{"t": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},'
        ' "t": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]}}'
    )
    found = check_safetensors(build(header, b"\0" * 8))
    assert found[0] == HeaderProblem(
        Severity.HIGH, "duplicate key 't' in the header (readers disagree on which wins)", "t"
    )


def test_tensor_problems_name_the_tensor() -> None:
    header = {
        "__metadata__": {"format": "pt", "n": 3},
        "bad_dtype": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]},
        "neg_shape": {"dtype": "U8", "shape": [-1], "data_offsets": [16, 17]},
        "outside": {"dtype": "U8", "shape": [10], "data_offsets": [20, 999]},
        "mismatch": {"dtype": "F32", "shape": [2, 2], "data_offsets": [17, 20]},
        "not_obj": [1, 2],
    }
    found = check_safetensors(build(header, b"\0" * 20))
    by_tensor = {p.tensor: p.message for p in found}
    assert "__metadata__ value of 'n' is not a string" in [p.message for p in found]
    assert "unknown dtype 'F128'" in by_tensor["bad_dtype"]
    assert "invalid shape" in by_tensor["neg_shape"]
    assert "lie outside the 20-byte data section" in by_tensor["outside"]
    assert by_tensor["mismatch"] == "tensor 'mismatch' holds 3 bytes but F32[2, 2] needs 16"
    assert "is not an object" in by_tensor["not_obj"]
    assert all(p.severity is Severity.HIGH for p in found)


def test_overlap_is_high_gaps_and_trailing_bytes_are_medium() -> None:
    header = {
        "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [4, 8]},
        "c": {"dtype": "U8", "shape": [4], "data_offsets": [12, 16]},
    }
    found = check_safetensors(build(header, b"\0" * 20))
    assert [(p.severity, p.message) for p in found] == [
        (Severity.HIGH, "tensor 'b' overlaps tensor 'a'"),
        (Severity.MEDIUM, "4 unaccounted bytes before tensor 'c'"),
        (Severity.MEDIUM, "4 bytes after the last tensor"),
    ]


def test_scan_reports_one_finding_with_the_worst_severity() -> None:
    header = {
        "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]},
    }
    ctx = ScanContext()
    ctx.begin_file("m.safetensors", None)
    scan_safetensors(Blob.from_bytes(build(header, b"\0" * 8), "m.safetensors"), ctx)
    (finding,) = ctx.result().findings
    assert finding.rule_id == "GAR-SC-008" and finding.severity is Severity.HIGH
    assert finding.location == "m.safetensors" and "overlaps" in finding.message


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([REAL_NUMPY, REAL_TORCH]),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 600),
)
def test_mutated_files_give_problems_never_an_exception(
    base: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for at, value in edits:
        data[at % len(data)] = value
    problems = check_safetensors(bytes(data[:cut] if cut else data))
    assert all(isinstance(p, HeaderProblem) for p in problems)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check_safetensors(data)
