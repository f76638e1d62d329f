from __future__ import annotations

import datetime as dt

from garrison.audit import evaluate
from garrison.core import (
    CheckResult,
    CheckStatus,
    Metric,
    Policy,
    Report,
    RunInfo,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    Threshold,
    Triage,
    TriageEntry,
    TriageStatus,
    Verdict,
    get_rule,
)

MODEL = Subject(SubjectKind.MODEL, "m")
TODAY = dt.date(2026, 11, 27)


def _run() -> RunInfo:
    return RunInfo("p", "t0", "t1", 0, "0.1.0", "3.11", "linux", model_name="m")


def _report(*results: CheckResult) -> Report:
    return Report(_run(), results)


def _perf(acc: float, status: CheckStatus = CheckStatus.OK) -> CheckResult:
    return CheckResult(
        "performance",
        Stage.MODEL,
        status,
        metrics=(Metric("accuracy", acc, n=100, ci_low=acc - 0.05, ci_high=min(1.0, acc + 0.05)),),
    )


def _fuzz(*severities: Severity) -> CheckResult:
    rule = get_rule("GAR-FZ-004")
    findings = tuple(
        rule.finding(subject=MODEL, message="x", location=f"fuzz:{i}", severity=s, check_id="fuzzing")
        for i, s in enumerate(severities)
    )
    return CheckResult("fuzzing", Stage.MODEL, findings=findings)


def test_passes_when_thresholds_met_and_findings_below_fail_on() -> None:
    policy = Policy(thresholds=(Threshold("performance.accuracy", min=0.9),))
    d = evaluate(_report(_perf(0.95), _fuzz(Severity.MEDIUM)), policy, today=TODAY)
    assert d.verdict is Verdict.PASSED and int(d.exit_code) == 0
    assert d.thresholds[0].passed and d.thresholds[0].value == 0.95
    assert d.counts()["medium"] == 1


def test_threshold_breach_becomes_finding_and_fails() -> None:
    policy = Policy(thresholds=(Threshold("performance.accuracy", min=0.9, severity=Severity.HIGH, line=12),))
    d = evaluate(_report(_perf(0.8)), policy, today=TODAY)
    assert d.verdict is Verdict.FAILED and int(d.exit_code) == 1
    breach = [f for f in d.findings if f.rule_id == "GAR-POL-001"]
    assert len(breach) == 1 and breach[0].line == 12 and "0.8 < min 0.9" in breach[0].message
    assert breach[0].fingerprint in d.blocking


def test_nan_metric_fails_threshold() -> None:
    policy = Policy(thresholds=(Threshold("performance.accuracy", max=0.5),))
    d = evaluate(_report(_perf(float("nan"))), policy, today=TODAY)
    assert not d.thresholds[0].passed and d.thresholds[0].value is None


def test_fail_on_severity_is_respected() -> None:
    report = _report(_fuzz(Severity.MEDIUM))
    assert evaluate(report, Policy(fail_on=Severity.HIGH), today=TODAY).verdict is Verdict.PASSED
    assert evaluate(report, Policy(fail_on=Severity.MEDIUM), today=TODAY).verdict is Verdict.FAILED


def test_errored_check_is_incomplete_and_wins_over_failed() -> None:
    errored = CheckResult("fuzzing", Stage.MODEL, CheckStatus.ERROR, error="RuntimeError: boom")
    policy = Policy(thresholds=(Threshold("performance.accuracy", min=0.99),))
    d = evaluate(_report(_perf(0.5), errored), policy, today=TODAY)
    assert d.verdict is Verdict.INCOMPLETE and int(d.exit_code) == 3
    assert d.incomplete_checks == ("fuzzing",)
    assert any(f.rule_id == "GAR-POL-003" for f in d.findings)


def test_required_checks_limit_incompleteness() -> None:
    errored = CheckResult("fuzzing", Stage.MODEL, CheckStatus.ERROR, error="x")
    skipped = CheckResult("performance", Stage.MODEL, CheckStatus.SKIPPED, reason="needs test")
    assert evaluate(_report(errored), Policy(required_checks=()), today=TODAY).verdict is Verdict.PASSED
    d = evaluate(_report(skipped), Policy(required_checks=("performance",)), today=TODAY)
    assert d.verdict is Verdict.INCOMPLETE
    assert evaluate(_report(skipped), Policy(), today=TODAY).verdict is Verdict.PASSED


def test_unmeasured_threshold_is_a_finding() -> None:
    policy = Policy(fail_on=Severity.MEDIUM, thresholds=(Threshold("robustness.accuracy", min=0.5),))
    d = evaluate(_report(_perf(0.9)), policy, today=TODAY)
    assert any(f.rule_id == "GAR-POL-004" for f in d.findings)
    assert d.verdict is Verdict.FAILED


def test_triage_suppresses_and_expired_acceptance_counts_again() -> None:
    report = _report(_fuzz(Severity.HIGH))
    fp = report.results[0].findings[0].fingerprint
    accepted = Triage.empty().with_entry(
        TriageEntry(fp, TriageStatus.ACCEPTED_RISK, "mitigated upstream", "alice", dt.date(2027, 1, 1))
    )
    d = evaluate(report, Policy(), accepted, today=TODAY)
    assert d.verdict is Verdict.PASSED
    assert d.findings[0].triage is TriageStatus.ACCEPTED_RISK
    expired = evaluate(report, Policy(), accepted, today=dt.date(2027, 1, 2))
    assert expired.verdict is Verdict.FAILED
    assert {f.rule_id for f in expired.findings} == {"GAR-FZ-004", "GAR-POL-002"}
    fp_only = Triage.empty().with_entry(TriageEntry(fp, TriageStatus.FALSE_POSITIVE, reason="n/a"))
    assert evaluate(report, Policy(), fp_only, today=TODAY).verdict is Verdict.PASSED


def test_baseline_fails_only_on_new_findings() -> None:
    old = _report(_fuzz(Severity.HIGH))
    new = _report(_fuzz(Severity.HIGH, Severity.HIGH))
    d = evaluate(new, Policy(), baseline=old, today=TODAY)
    assert d.verdict is Verdict.FAILED and len(d.blocking) == 1
    assert [d.is_new(f) for f in d.findings].count(True) == 1
    assert evaluate(old, Policy(), baseline=old, today=TODAY).verdict is Verdict.PASSED


def test_evaluate_is_pure_and_report_round_trips() -> None:
    report = _report(_perf(0.7), _fuzz(Severity.CRITICAL))
    policy = Policy(thresholds=(Threshold("performance.accuracy", min=0.9),))
    d1 = evaluate(report, policy, today=TODAY)
    d2 = evaluate(report, policy, today=TODAY)
    assert d1 == d2 and report.decision is None
    full = Report(report.run, report.results, d1)
    again = Report.from_dict(full.to_dict())
    assert again.to_dict() == full.to_dict()
