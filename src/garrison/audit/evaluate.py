"""The policy gate: ``evaluate(report, policy, triage) -> Decision``, a pure function.

Threshold breaches become findings (GAR-POL-001), a threshold on a metric nobody measured is itself a finding
(GAR-POL-004), a required check that errored makes the audit incomplete (GAR-POL-003), triage is applied by
fingerprint and an expired acceptance counts again (GAR-POL-002). With a baseline report, only findings that are
new since the baseline can fail the audit. ``garrison report`` and the UI recompute decisions without rerunning checks.
"""

from __future__ import annotations

import datetime as dt
import math

from garrison.core.audit_report import Decision, Report, ThresholdResult, Verdict
from garrison.core.findings import Finding, Subject, SubjectKind, TriageStatus
from garrison.core.policy import Policy, Threshold
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.rules import (
    POLICY_CHECK_INCOMPLETE,
    POLICY_EXPIRED_ACCEPTANCE,
    POLICY_THRESHOLD,
    POLICY_UNKNOWN_METRIC,
)
from garrison.core.severity import Stage
from garrison.core.triage import Triage

__all__ = ["evaluate"]


def evaluate(
    report: Report,
    policy: Policy,
    triage: Triage | None = None,
    *,
    today: dt.date | None = None,
    baseline: Report | None = None,
) -> Decision:
    """Judge ``report`` against ``policy`` with ``triage`` applied. Does not mutate its inputs."""
    triage = triage or Triage.empty()
    today = today or dt.datetime.now(dt.UTC).date()
    model = Subject(SubjectKind.MODEL, report.run.model_name)
    by_check = {r.check_id: r for r in report.results}

    findings: list[Finding] = [f for r in report.results for f in r.findings]
    thresholds: list[ThresholdResult] = []
    for t in policy.thresholds:
        outcome, finding = _test_threshold(t, by_check.get(t.check_id), model)
        thresholds.append(outcome)
        if finding is not None:
            findings.append(finding)

    required = policy.required_checks if policy.required_checks is not None else tuple(by_check)
    incomplete: list[str] = []
    for check_id in required:
        result = by_check.get(check_id)
        explicitly_required = policy.required_checks is not None
        if (
            result is None
            or result.status is CheckStatus.ERROR
            or (explicitly_required and result.status is CheckStatus.SKIPPED)
        ):
            incomplete.append(check_id)
            why = (
                "did not run"
                if result is None
                else (result.error or "errored")
                if result.status is CheckStatus.ERROR
                else f"was skipped: {result.reason}"
            )
            findings.append(
                POLICY_CHECK_INCOMPLETE.finding(
                    subject=model,
                    message=f"Check '{check_id}' {why}.",
                    location=f"check:{check_id}",
                    evidence={"check_id": check_id, "status": result.status.value if result else "missing"},
                    check_id=check_id,
                )
            )

    triaged: list[Finding] = []
    for f in findings:
        entry = triage.get(f.fingerprint)
        if entry is None or entry.status is TriageStatus.OPEN:
            triaged.append(f)
        elif entry.is_expired(today):
            triaged.append(f)
            triaged.append(
                POLICY_EXPIRED_ACCEPTANCE.finding(
                    subject=f.subject,
                    message=f"The acceptance of '{f.title}' ({f.fingerprint[:12]}) by {entry.owner} expired on "
                    f"{entry.expires}.",
                    location=f"triage:{f.fingerprint}",
                    evidence={
                        "fingerprint": f.fingerprint,
                        "owner": entry.owner,
                        "expired": str(entry.expires),
                    },
                )
            )
        else:
            triaged.append(f.with_triage(entry.status, entry.reason))

    unique = {f.fingerprint: f for f in sorted(triaged, key=Finding.sort_key, reverse=True)}
    final = tuple(sorted(unique.values(), key=Finding.sort_key))
    baseline_fps = None if baseline is None else tuple(sorted({f.fingerprint for f in baseline.findings}))
    blocking = tuple(
        f.fingerprint
        for f in final
        if f.is_active
        and f.severity >= policy.fail_on
        and (baseline_fps is None or f.fingerprint not in baseline_fps)
    )
    if incomplete:
        verdict = Verdict.INCOMPLETE
    elif blocking:
        verdict = Verdict.FAILED
    else:
        verdict = Verdict.PASSED
    return Decision(
        verdict=verdict,
        fail_on=policy.fail_on,
        findings=final,
        blocking=blocking,
        thresholds=tuple(thresholds),
        incomplete_checks=tuple(incomplete),
        baseline_fingerprints=baseline_fps,
    )


def _test_threshold(
    t: Threshold, result: CheckResult | None, model: Subject
) -> tuple[ThresholdResult, Finding | None]:
    op, bound = ("min", t.min) if t.min is not None else ("max", t.max)
    assert bound is not None
    metric = result.metric(t.metric_name) if result is not None else None
    stage = result.stage if result is not None else Stage.MODEL
    if metric is None:
        outcome = ThresholdResult(t.metric, op, bound, None, False, t.check_id)
        if result is not None and result.status is not CheckStatus.OK:
            return outcome, None  # the check's own failure is reported as incomplete
        return outcome, POLICY_UNKNOWN_METRIC.finding(
            subject=model,
            message=f"The policy sets a threshold on '{t.metric}', but no check measured it.",
            location=f"policy:{t.metric}",
            evidence={"metric": t.metric},
            line=t.line,
        )
    value = metric.value
    failures = []
    if t.min is not None and not (math.isfinite(value) and value >= t.min):
        failures.append(("min", t.min, f"{value:.4g} < min {t.min:g}"))
    if t.max is not None and not (math.isfinite(value) and value <= t.max):
        failures.append(("max", t.max, f"{value:.4g} > max {t.max:g}"))
    if failures:
        op, bound, text = failures[0]
    shown = value if math.isfinite(value) else None
    outcome = ThresholdResult(t.metric, op, bound, shown, not failures, t.check_id)
    if not failures:
        return outcome, None
    ci = (
        f" (95% CI {metric.ci_low:.4g}–{metric.ci_high:.4g}, n={metric.n})"
        if metric.ci_low is not None and metric.ci_high is not None
        else ""
    )
    return outcome, POLICY_THRESHOLD.finding(
        subject=model,
        message=f"{t.metric} = {text}{ci}",
        location=f"policy:{t.metric}",
        evidence={"metric": t.metric, "value": shown, "op": op, "bound": bound, "n": metric.n},
        severity=t.severity,
        stage=stage,
        check_id=t.check_id,
        line=t.line,
    )
