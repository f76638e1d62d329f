"""The policy gate as the dashboard shows it: recomputed from a stored report with today's triage, and the
difference between an audit and the previous audit of the same model (new, fixed, still open)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from garrison.audit import evaluate
from garrison.core import Decision, Finding, Policy, Report, Severity, Stage
from garrison.core.triage import Triage

__all__ = ["AuditDiff", "audit_diff", "gate", "severity_stage_counts"]


@dataclass(frozen=True, slots=True)
class AuditDiff:
    """Findings by fingerprint: in this audit only (``new``), in the previous only (``fixed``), in both."""

    new: tuple[Finding, ...]
    fixed: tuple[Finding, ...]
    still_open: tuple[Finding, ...]


def gate(report: Report, policy: Policy, triage: Triage) -> Decision:
    """The verdict the CI gate would give this report today, with ``triage`` applied."""
    return evaluate(report, policy, triage)


def _by_fingerprint(report: Report) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in sorted((f for r in report.results for f in r.findings), key=Finding.sort_key):
        out.setdefault(f.fingerprint, f)
    return out


def audit_diff(current: Report, previous: Report | None) -> AuditDiff:
    """Compare the checks' findings of two audits; with no previous audit every finding is new."""
    now = _by_fingerprint(current)
    before = {} if previous is None else _by_fingerprint(previous)
    return AuditDiff(
        new=tuple(f for fp, f in now.items() if fp not in before),
        fixed=tuple(f for fp, f in before.items() if fp not in now),
        still_open=tuple(f for fp, f in now.items() if fp in before),
    )


def severity_stage_counts(findings: tuple[Finding, ...]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """A table of finding counts: stage names (columns) and one row per severity, most severe first."""
    stages = sorted(Stage, key=lambda s: s.order)
    counts = Counter((f.severity, f.stage) for f in findings)
    rows = [(sev.value, [counts[(sev, st)] for st in stages]) for sev in sorted(Severity, reverse=True)]
    return [s.value for s in stages], rows
