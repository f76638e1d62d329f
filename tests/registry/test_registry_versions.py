"""The model registry on a real SQLite store: digests, audit verdicts, signatures, promotion and rollback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from garrison.audit import evaluate
from garrison.core import (
    CheckResult,
    Policy,
    Report,
    RunInfo,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    get_rule,
)
from garrison.registry import ModelRegistry, RegistryRefusal
from garrison.store import Store


def _audit(store: Store, *, passed: bool) -> int:
    run = RunInfo("p", "2026-11-27T10:00:00+00:00", "2026-11-27T10:00:01+00:00", 0, "0.1.0", "3.11", "linux",
                  model_name="credit")  # fmt: skip
    findings = ()
    if not passed:
        rule = get_rule("GAR-FZ-004")
        findings = (rule.finding(subject=Subject(SubjectKind.MODEL, "credit"), message="x", location="fuzz:0",
                                 severity=Severity.CRITICAL, check_id="fuzzing"),)  # fmt: skip
    report = Report(run, (CheckResult("fuzzing", Stage.MODEL, findings=findings),))
    report = dataclasses.replace(report, decision=evaluate(report, Policy()))
    return store.record_audit(report)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    yield s  # type: ignore[misc]
    s.close()


def test_only_audited_unchanged_versions_serve_and_rollback_skips_bad_ones(
    tmp_path: Path, store: Store
) -> None:
    files = {}
    for v in ("1", "2", "3", "4"):
        files[v] = tmp_path / f"model-{v}.skops"
        files[v].write_bytes(f"weights {v}".encode())
    registry = ModelRegistry(store)
    registry.register("credit", "1", files["1"], audit_id=_audit(store, passed=True))
    registry.register("credit", "2", files["2"], audit_id=_audit(store, passed=False))
    registry.register("credit", "3", files["3"])  # never audited
    registry.register("credit", "4", files["4"], audit_id=_audit(store, passed=True))

    with pytest.raises(RegistryRefusal, match="audit #2 failed"):
        registry.promote("credit", "2")
    with pytest.raises(RegistryRefusal, match="no audit"):
        registry.promote("credit", "3")
    registry.promote("credit", "4")
    assert registry.serving("credit").version == "4"  # type: ignore[union-attr]
    # 3 has no audit and 2 failed: the rollback target is 1
    assert registry.rollback_target("credit").version == "1"  # type: ignore[union-attr]

    files["1"].write_bytes(b"tampered")
    assert registry.problems(registry.versions("credit")[0]) == [
        "the file changed since it was registered (SHA-256 differs)"
    ]
    assert registry.rollback_target("credit") is None
    with pytest.raises(RegistryRefusal, match="no such version"):
        registry.promote("credit", "9")


def test_without_required_audit_an_unaudited_version_may_serve(tmp_path: Path, store: Store) -> None:
    f = tmp_path / "m.onnx"
    f.write_bytes(b"onnx")
    registry = ModelRegistry(store, require_audit=False)
    registry.register("m", "a", f)
    registry.promote("m", "a")
    assert registry.serving("m").sha256 == registry.versions("m")[0].sha256  # type: ignore[union-attr]
