import re
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core import (
    CheckResult,
    Decision,
    Finding,
    Report,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    ThresholdResult,
    Verdict,
)
from garrison.report import MAX_MARKDOWN_BYTES, render_markdown

EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2705\u274c]")


def _table(md: str, header: str) -> list[list[str]]:
    """The rows of the table whose header line starts with ``header``, split on unescaped pipes."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_verdict_and_counts_come_first(report: Report) -> None:
    md = render_markdown(report)
    lines = md.splitlines()
    assert lines[0] == "## Garrison audit of credit-model (credit-scoring)"
    assert lines[2] == "**Verdict: FAILED** (exit code 1)"
    assert lines[4] == "Open findings by severity: 1 critical, 2 high, 1 medium, 1 low, 1 info"
    assert not EMOJI.search(md)


def test_findings_table(report: Report, findings: dict) -> None:
    rows = _table(render_markdown(report), "| Severity | Rule |")
    assert [r[0] for r in rows] == ["critical", "high", "high", "medium", "medium", "low", "info"]
    by_rule = {r[1]: r for r in rows}
    assert by_rule["PLUGIN-PKL-001"][3] == "models/bundle.zip\\!weights/model.pkl"
    assert by_rule["PLUGIN-PKL-001"][4] == "**new**, blocking"
    assert by_rule["GAR-FZ-001"][4] == ""  # in the baseline, not blocking
    assert by_rule["GAR-FZ-003"][4] == "**new**, accepted-risk"
    assert "GAR-FZ-004" not in by_rule  # fixed
    assert all(len(r) == 5 for r in rows)


def test_thresholds_table_and_checks(report: Report) -> None:
    md = render_markdown(report)
    assert _table(md, "| Metric | Bound |") == [
        ["fuzzing.crash\\_rate", "<= 0.05", "0.024", "pass"],
        ["performance.accuracy", ">= 0.9", "0.81", "**FAIL**"],
    ]
    checks = md[md.index("<summary>Checks (5)</summary>") :]
    assert checks.index("</details>") > 0
    rows = _table(checks, "| Check |")
    assert [r[0] for r in rows] == ["supplychain", "privacy", "fuzzing", "performance", "drift"]
    assert rows[1][2:4] == ["error", "0.75 s"]
    assert rows[4][4] == "no production data configured"


def test_untrusted_text_is_inert(report: Report) -> None:
    md = render_markdown(report)
    assert "<script>" not in md
    assert "<img" not in md
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;' in md
    assert "Rows do not sum to 1 \\| worst row" in md
    attacker = Finding(
        rule_id="X|Y",
        title="[click](https://evil.example) @everyone *bold* `code`",
        severity=Severity.LOW,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "m"),
        message="line1\n| injected | row |",
    )
    md = render_markdown(
        replace(report, decision=None, results=(CheckResult("c", Stage.MODEL, findings=(attacker,)),))
    )
    assert "\\[click\\](https://evil.example)" in md  # no link markup: the brackets are escaped
    assert "@everyone" not in md
    assert "&#64;everyone" in md
    assert "\n| injected" not in md
    rows = _table(md, "| Severity | Rule |")
    assert len(rows) == 1
    assert len(rows[0]) == 5


def test_sensitive_evidence_only_when_asked(report: Report) -> None:
    assert "078\\-05\\-1120" not in render_markdown(report)
    assert "078-05-1120" not in render_markdown(report)
    assert "1 sensitive value omitted" in render_markdown(report)
    assert "078-05-1120" in render_markdown(report, include_sensitive=True)


def test_unevaluated_report(report: Report) -> None:
    md = render_markdown(replace(report, decision=None))
    assert "**Verdict: NOT EVALUATED** (no policy applied)" in md
    assert "Policy thresholds" not in md
    assert "**new**" not in md


def _huge(n_findings: int, n_checks: int, n_thresholds: int, message: str) -> Report:
    subject = Subject(SubjectKind.MODEL, "m")
    found = tuple(
        Finding(
            rule_id=f"GAR-FZ-{i % 7:03d}",
            title=f"finding {i}",
            severity=list(Severity)[i % 5],
            stage=Stage.MODEL,
            subject=subject,
            message=message,
            location=f"probe:{i}",
        )
        for i in range(n_findings)
    )
    results = tuple(
        CheckResult(f"check-{i:04d}", Stage.MODEL, duration_s=0.1, reason="x" * 50) for i in range(n_checks)
    )
    results = (replace(results[0], findings=found), *results[1:])
    thresholds = tuple(
        ThresholdResult(f"check-{i:04d}.metric", "min", 0.5, 0.25, False, f"check-{i:04d}")
        for i in range(n_thresholds)
    )
    decision = Decision(Verdict.FAILED, Severity.HIGH, found, tuple(f.fingerprint for f in found), thresholds)
    return Report(report_run(), results, decision)


def report_run():
    from garrison.core import RunInfo

    return RunInfo("big", "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", 1, "0.1.0", "3.11", "linux")


def test_huge_reports_stay_under_the_limit_with_a_note() -> None:
    md = render_markdown(_huge(5000, 2000, 1000, "long message " * 200))
    assert len(md.encode()) <= MAX_MARKDOWN_BYTES
    assert re.search(r"\*\d+ more findings not shown here; see the full report\.\*", md)
    assert md.startswith("## Garrison audit of model (big)")
    assert md.count("<details>") == md.count("</details>")
    assert md.endswith("</sub>\n")
    rows = _table(md, "| Severity | Rule |")
    assert rows[0][0] == "critical"
    assert len(rows) > 50


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_findings=st.integers(0, 1500),
    n_checks=st.integers(1, 1500),
    n_thresholds=st.integers(0, 1500),
    message=st.text(max_size=300),
)
def test_any_size_fits(n_findings: int, n_checks: int, n_thresholds: int, message: str) -> None:
    md = render_markdown(_huge(n_findings, n_checks, n_thresholds, message))
    assert len(md.encode()) <= MAX_MARKDOWN_BYTES
    assert md.count("<details>") == md.count("</details>")
