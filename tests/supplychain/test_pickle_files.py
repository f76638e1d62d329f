import importlib.util
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.supplychain import scan_bytes, scan_paths

needs_pickle_machine = pytest.mark.xfail(
    importlib.util.find_spec("garrison.supplychain.pickle_machine") is None,
    reason="garrison.supplychain.pickle_machine has not landed yet",
    strict=False,
)

PAYLOAD = b"cos\nsystem\n(S'echo hi'\ntR."


class Evil:
    """Pickles to a call of os.system; never unpickled by these tests."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo harmless",))


def rules(result) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f.rule_id for f in result.findings)


@needs_pickle_machine
def test_benign_pickles_and_joblib_files_are_clean(sklearn_files: dict[str, Path]) -> None:
    result = scan_paths(sorted(sklearn_files.values()))
    assert result.incomplete == ()
    assert result.findings == ()
    assert result.exit_code() == 0


@needs_pickle_machine
def test_dangerous_call_is_critical_with_evidence() -> None:
    result = scan_bytes(PAYLOAD, name="model.pkl")
    (finding,) = result.findings
    assert finding.rule_id == "GAR-SC-001"
    assert finding.location == "model.pkl"
    evidence = finding.evidence_dict()
    assert evidence["callable"] == "os.system"
    assert "system" in evidence["chain"]
    assert isinstance(evidence["offset"], int)
    assert result.exit_code() == 1


@needs_pickle_machine
def test_unknown_global_is_high() -> None:
    result = scan_bytes(b"\x80\x02cmy_private_pkg.models\nNet\n)\x81.", name="m.pkl")
    assert rules(result) == ["GAR-SC-002"]
    assert result.findings[0].evidence_dict()["callable"] == "my_private_pkg.models.Net"


@needs_pickle_machine
def test_payload_then_garbage_reports_both() -> None:
    result = scan_bytes(PAYLOAD + b"\xff\xfe garbage", name="m.pkl")
    assert "GAR-SC-001" in rules(result)
    assert "GAR-SC-003" in rules(result)


@needs_pickle_machine
def test_truncated_stream_is_also_incomplete() -> None:
    result = scan_bytes(PAYLOAD[:-3], name="m.pkl")
    assert "GAR-SC-001" in rules(result)
    assert result.exit_code() == 3


@needs_pickle_machine
@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_malicious_joblib_in_every_wrapper(tmp_path: Path, compress: object) -> None:
    path = tmp_path / "evil.joblib"
    joblib.dump({"weights": np.arange(1000.0), "hook": Evil()}, path, compress=compress)
    result = scan_paths([path])
    assert rules(result) == ["GAR-SC-001"]
    assert result.findings[0].location == str(path)
    assert result.incomplete == ()


@needs_pickle_machine
def test_joblib_with_arrays_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "arrays.joblib"
    joblib.dump({"a": np.arange(10_000.0), "b": np.ones((50, 7), dtype=np.int8)}, path)
    result = scan_paths([path])
    assert result.findings == ()
    assert result.incomplete == ()


@needs_pickle_machine
def test_memo_limit_is_incomplete() -> None:
    from garrison.supplychain import ScanLimits

    data = pickle.dumps([[i] for i in range(100)], protocol=2)
    result = scan_bytes(data, name="m.pkl", limits=ScanLimits(max_memo_entries=10))
    assert [i.limit for i in result.incomplete] == ["max_memo_entries"]


@needs_pickle_machine
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_pickles_never_raise(data: st.DataObject) -> None:
    base = pickle.dumps(
        {"w": [1.5, 2.5], "n": "x" * 20, "t": (1, None)}, protocol=data.draw(st.integers(0, 5))
    )
    i = data.draw(st.integers(0, len(base)))
    noise = data.draw(st.binary(max_size=16))
    mode = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if mode == "flip":
        mutated = base[:i] + bytes(b ^ 0x5A for b in noise) + base[i + len(noise) :]
    elif mode == "insert":
        mutated = base[:i] + noise + base[i:]
    else:
        mutated = base[:i] + base[i + len(noise) :]
    result = scan_bytes(mutated, name="m.pkl")
    assert result.exit_code() in (0, 1, 3)
    assert not any("failed" in item.reason for item in result.incomplete), result.incomplete


def test_each_callable_is_its_own_finding_with_its_own_fingerprint() -> None:
    from tests.supplychain import pickles

    result = scan_bytes(pickles.getattr_import("os", "getcwd"), name="evil.pkl")
    critical = [f for f in result.findings if f.rule_id == "GAR-SC-001"]
    assert {f.symbol for f in critical} == {"builtins.getattr", "builtins.__import__", "os.getcwd"}
    assert len({f.fingerprint for f in critical}) == 3
