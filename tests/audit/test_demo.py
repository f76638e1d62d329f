from __future__ import annotations

import json
from pathlib import Path

from garrison.audit import run_demo
from garrison.report import read_report


def test_demo_runs_every_check_and_writes_every_format(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "work", report_dir=tmp_path / "report")
    assert set(result.files) == {"json", "html", "sarif", "junit", "markdown"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in result.files.values())
    report = read_report(result.files["json"])  # validates against the shipped JSON Schema
    assert {r.check_id for r in report.results} >= {"fuzzing", "performance"}
    # every check runs except provenance, skipped because the demo data has no manifest
    assert {r.check_id: r.status.value for r in report.results if r.status.value != "ok"} == {
        "provenance": "skipped"
    }
    assert report.decision is not None
    accuracy = report.result("performance").metric("accuracy")
    assert accuracy is not None and accuracy.value > 0.9 and accuracy.n == 171
    # a scaled logistic regression accepts far-out-of-bounds inputs with confidence: the demo shows that finding
    assert any(f.rule_id == "GAR-FZ-004" for f in report.decision.findings)
    sarif = json.loads(result.files["sarif"].read_text())
    assert sarif["version"] == "2.1.0"
