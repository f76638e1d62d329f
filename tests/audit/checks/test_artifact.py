from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from garrison.audit.checks.artifact import ArtifactScanCheck
from garrison.core.results import CheckStatus
from garrison.core.severity import Severity
from garrison.testing import assert_conforms, make_context

GETCWD_PICKLE = b"\x80\x02cos\ngetcwd\n)R."
# a global of a module nobody allowlisted: unknown, so high
UNKNOWN_PICKLE = b"\x80\x02cmylab.layers\nGatedUnit\n)R."


@pytest.fixture(scope="module")
def benign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("benign")
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(folder / "model.safetensors"))
    return folder / "model.safetensors"


def _run(tmp_path: Path, data: bytes, **options: object):
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    return ArtifactScanCheck(**options).run(make_context(artifacts=[path])), path


def test_conforms(benign: Path) -> None:
    assert_conforms(ArtifactScanCheck, lambda: make_context(artifacts=[benign]))


def test_clean_artifact_has_metrics_and_no_findings(benign: Path) -> None:
    result = ArtifactScanCheck().run(make_context(artifacts=[benign]))
    assert result.status is CheckStatus.OK and result.check_id == "artifact"
    assert result.findings == ()
    assert {m.name: m.value for m in result.metrics} == {
        "files_scanned": 1.0,
        "findings": 0.0,
        "incomplete": 0.0,
    }


def test_code_execution_is_a_critical_finding_of_this_check(tmp_path: Path) -> None:
    result, path = _run(tmp_path, GETCWD_PICKLE)
    assert result.status is CheckStatus.OK
    (finding,) = [f for f in result.findings if f.rule_id == "GAR-SC-001"]
    assert finding.severity is Severity.CRITICAL
    assert finding.check_id == "artifact"
    assert finding.location == str(path)
    assert result.metric("findings").value == len(result.findings)


def test_allowlist_option_clears_an_unknown_global(tmp_path: Path) -> None:
    unknown, _ = _run(tmp_path, UNKNOWN_PICKLE)
    assert any(f.rule_id == "GAR-SC-002" for f in unknown.findings)
    allowed, _ = _run(tmp_path, UNKNOWN_PICKLE, allowlist=["mylab.layers.GatedUnit"])
    assert allowed.findings == ()


def test_incomplete_scan_is_an_error_with_a_reason(tmp_path: Path) -> None:
    truncated = pickle.dumps({"weights": list(range(100))}, protocol=4)[:40]
    result, path = _run(tmp_path, truncated)
    assert result.status is CheckStatus.ERROR
    assert result.error and str(path) in result.error
    assert result.metric("incomplete").value >= 1


def test_no_artifacts_is_skipped() -> None:
    result = ArtifactScanCheck().run(make_context())
    assert result.status is CheckStatus.SKIPPED and result.reason
