"""Markdown output: a pull-request comment that fits GitHub's size limit however large the audit."""

from __future__ import annotations

import re
from collections.abc import Sequence

from garrison.core.audit_report import Report, ThresholdResult
from garrison.core.findings import Finding, TriageStatus
from garrison.core.results import CheckStatus
from garrison.report.display import (
    format_duration,
    format_number,
    format_value,
    ordered_findings,
    severity_counts,
    threshold_bound,
    where,
)

__all__ = ["MAX_MARKDOWN_BYTES", "render_markdown"]

MAX_MARKDOWN_BYTES = 60_000
_MAX_CELL = 200
_NOTE_RESERVE = 200  # room kept for a truncation note

_SPECIAL = re.compile(r"([\\`*_\[\]{}|#!~])")


def _cell(text: str, limit: int = _MAX_CELL) -> str:
    """Text made inert for a Markdown table cell: one line, no HTML, no emphasis or links, no @mentions."""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = _SPECIAL.sub(r"\\\1", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("@", "&#64;")


def _size(lines: Sequence[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


def _bounded(
    header: list[str], rows: list[str], budget: int, what: str, trailer: Sequence[str] = ()
) -> list[str]:
    """``header``, as many ``rows`` as fit and ``trailer``, in at most ``budget`` bytes (with a note when rows were
    left out); nothing when not even the header fits."""
    fixed = _size(header) + _size(trailer) + _NOTE_RESERVE
    if fixed > budget:
        return []
    out = list(header)
    used = fixed
    for i, row in enumerate(rows):
        used += _size([row])
        if used > budget:
            return [*out, "", f"*{len(rows) - i} more {what} not shown here; see the full report.*", *trailer]
        out.append(row)
    return [*out, *trailer]


def render_markdown(report: Report, *, include_sensitive: bool = False) -> str:
    """``report`` as a pull-request comment: verdict, counts, findings, thresholds, checks. Sensitive evidence
    is left out unless ``include_sensitive``. The text stays under :data:`MAX_MARKDOWN_BYTES`."""
    findings = [f for f in ordered_findings(report) if f.triage is not TriageStatus.FIXED]
    thresholds = (
        [] if report.decision is None else sorted(report.decision.thresholds, key=lambda t: (t.metric, t.op))
    )
    head = _head(report)
    footer = [
        f"<sub>Garrison {_cell(report.run.garrison_version)}, seed {report.run.seed}, started "
        f"{_cell(report.run.started_at)}."
        + ("" if include_sensitive else " Evidence marked sensitive is not shown.")
        + "</sub>",
    ]
    if not findings:
        findings_header = ["### Findings", "", "No findings."]
    else:
        baseline = report.decision is not None and report.decision.baseline_fingerprints is not None
        findings_header = [
            "### Findings" + (" (new since the baseline are marked **new**)" if baseline else ""),
            "",
            "| Severity | Rule | Title | Location | Status |",
            "| --- | --- | --- | --- | --- |",
        ]
    thresholds_header = [
        "### Policy thresholds",
        "",
        "| Metric | Bound | Value | Result |",
        "| --- | --- | --- | --- |",
    ]
    checks_header = [
        "<details>",
        f"<summary>Checks ({len(report.results)})</summary>",
        "",
        "| Check | Stage | Status | Duration | Note |",
        "| --- | --- | --- | --- | --- |",
    ]
    details_header = ["<details>", f"<summary>Finding details ({len(findings)})</summary>", ""]
    closing = ("", "</details>")

    # Fill by priority (verdict, findings, thresholds, checks, details), then lay out in reading order. Each
    # block costs its lines plus the blank line after it.
    budget = MAX_MARKDOWN_BYTES - (_size(head) + 1) - (_size(footer) + 1)
    findings_part = _bounded(findings_header, _finding_rows(report, findings), budget - 1, "findings")
    budget -= _size(findings_part) + 1
    thresholds_part = []
    if thresholds:
        thresholds_part = _bounded(thresholds_header, _threshold_rows(thresholds), budget - 1, "thresholds")
        budget -= _size(thresholds_part) + 1
    checks_part = _bounded(checks_header, _check_rows(report), budget - 1, "checks", closing)
    budget -= _size(checks_part) + 1
    details_part = []
    if findings:
        rows = _detail_rows(findings, include_sensitive)
        details_part = _bounded(details_header, rows, budget - 1, "finding details", closing)

    lines: list[str] = []
    for block in (head, findings_part, thresholds_part, details_part, checks_part, footer):
        if block:
            lines += [*block, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _head(report: Report) -> list[str]:
    decision = report.decision
    if decision is None:
        verdict = "**Verdict: NOT EVALUATED** (no policy applied)"
    else:
        verdict = f"**Verdict: {decision.verdict.value.upper()}** (exit code {int(decision.exit_code)})"
    counts = severity_counts(report)
    head = [
        f"## Garrison audit of {_cell(report.run.model_name)} ({_cell(report.run.project)})",
        "",
        verdict,
        "",
        "Open findings by severity: " + ", ".join(f"{n} {sev}" for sev, n in counts.items()),
    ]
    if decision is not None and decision.incomplete_checks:
        incomplete = sorted(decision.incomplete_checks)
        more = f" and {len(incomplete) - 20} more" if len(incomplete) > 20 else ""
        head += ["", "Incomplete checks: " + ", ".join(_cell(c) for c in incomplete[:20]) + more]
    return head


def _finding_rows(report: Report, findings: list[Finding]) -> list[str]:
    decision = report.decision
    rows = []
    for f in findings:
        notes = []
        if decision is not None and decision.baseline_fingerprints is not None and decision.is_new(f):
            notes.append("**new**")
        if decision is not None and f.fingerprint in decision.blocking:
            notes.append("blocking")
        if not f.is_active:
            notes.append(f.triage.value)
        rows.append(
            f"| {f.severity.value} | {_cell(f.rule_id)} | {_cell(f.title)} | {_cell(where(f))} | {', '.join(notes)} |"
        )
    return rows


def _threshold_rows(thresholds: list[ThresholdResult]) -> list[str]:
    return [
        f"| {_cell(t.metric)} | {threshold_bound(t)} | {format_number(t.value)} | "
        f"{'pass' if t.passed else '**FAIL**'} |"
        for t in thresholds
    ]


def _check_rows(report: Report) -> list[str]:
    rows = []
    for r in sorted(report.results, key=lambda r: (r.stage.order, r.check_id)):
        note = {CheckStatus.ERROR: r.error, CheckStatus.SKIPPED: r.reason}.get(r.status) or ""
        if r.partial:
            note = f"partial (budget) {note}".strip()
        rows.append(
            f"| {_cell(r.check_id)} | {r.stage.value} | {r.status.value} | {format_duration(r.duration_s)} | "
            f"{_cell(note)} |"
        )
    return rows


def _detail_rows(findings: list[Finding], include_sensitive: bool) -> list[str]:
    """One list item per finding: its message and the evidence that may be shown."""
    rows = []
    for f in findings:
        evidence = f.evidence_dict(include_sensitive=include_sensitive)
        hidden = 0 if include_sensitive else sum(1 for e in f.evidence if e.sensitive)
        parts = [f"- **{_cell(f.rule_id)}** at {_cell(where(f))}: {_cell(f.message, 500)}"]
        parts += [f"  - {_cell(k)}: {_cell(format_value(v))}" for k, v in evidence.items()]
        if hidden:
            parts.append(f"  - {hidden} sensitive value{'s' if hidden != 1 else ''} omitted")
        rows.append("\n".join(parts))
    return rows
