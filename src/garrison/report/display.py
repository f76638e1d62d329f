"""How report values read in the human formats (HTML, Markdown, JUnit): one spelling for every renderer."""

from __future__ import annotations

import json
import math
from typing import Any

from garrison.core.audit_report import Report, ThresholdResult
from garrison.core.findings import Finding
from garrison.core.severity import Severity
from garrison.report.jsonable import jsonable

__all__ = [
    "SEVERITIES",
    "format_duration",
    "format_number",
    "format_value",
    "ordered_findings",
    "severity_counts",
    "threshold_bound",
    "threshold_failure",
    "where",
]

SEVERITIES: tuple[Severity, ...] = tuple(sorted(Severity, reverse=True))
"""Severities from the worst down."""


def format_number(x: float | None) -> str:
    """A number in at most four significant digits; ``n/a`` for a missing or non-finite one."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    return f"{x:.4g}"


def format_duration(seconds: float) -> str:
    return f"{seconds:.2f} s"


def format_value(value: Any) -> str:
    """Evidence and table cells: text as is, numbers via :func:`format_number`, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (int, float)):
        return format_number(value) if value is not None else "null"
    return json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def threshold_bound(t: ThresholdResult) -> str:
    return f"{'>=' if t.op == 'min' else '<='} {format_number(t.bound)}"


def threshold_failure(t: ThresholdResult) -> str:
    """Why a threshold failed, as one line: ``value 0.81 < min 0.9``."""
    if t.value is None or not math.isfinite(t.value):
        return f"no value measured for {t.metric} ({t.op} {format_number(t.bound)})"
    sign = "<" if t.op == "min" else ">"
    return f"value {format_number(t.value)} {sign} {t.op} {format_number(t.bound)}"


def where(finding: Finding) -> str:
    """Where a finding is: its location (with line) inside the subject, else the subject's uri, else its name."""
    if finding.location:
        return f"{finding.location}:{finding.line}" if finding.line is not None else finding.location
    return finding.subject.uri or finding.subject.name


def severity_counts(report: Report) -> dict[str, int]:
    """Active findings per severity, worst first; the decision's counts when the report was evaluated."""
    if report.decision is not None:
        counts = report.decision.counts()
    else:
        counts = {s.value: 0 for s in SEVERITIES}
        for f in report.findings:
            if f.is_active:
                counts[f.severity.value] += 1
    return {s.value: counts.get(s.value, 0) for s in SEVERITIES}


def ordered_findings(report: Report) -> list[Finding]:
    """The report's findings in the canonical order (worst first, then stage, rule, location)."""
    return sorted(report.findings, key=Finding.sort_key)
