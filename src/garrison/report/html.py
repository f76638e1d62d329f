"""HTML output: one self-contained page (inline CSS, no scripts, no external resources) a non-expert can read."""

from __future__ import annotations

import functools
import json
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from garrison.core.audit_report import Report
from garrison.core.findings import Finding
from garrison.core.results import CheckResult, Figure
from garrison.core.rules import reference_url
from garrison.report.display import (
    SEVERITIES,
    format_duration,
    format_number,
    format_value,
    ordered_findings,
    severity_counts,
    threshold_bound,
    where,
)
from garrison.report.jsonable import jsonable
from garrison.report.svg import sanitize_svg

__all__ = ["render_html"]


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("garrison.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(report: Report, *, include_sensitive: bool = False) -> str:
    """``report`` as one HTML page: the verdict first, then findings by severity, thresholds, every check with
    its metrics and figures, and provenance. Everything from the report is escaped; figures' SVG is sanitised;
    sensitive evidence is left out unless ``include_sensitive``."""
    return (
        _environment()
        .get_template("report.html.j2")
        .render(_view(report, include_sensitive=include_sensitive))
    )


def _view(report: Report, *, include_sensitive: bool) -> dict[str, Any]:
    decision = report.decision
    findings = ordered_findings(report)
    groups = []
    for sev in SEVERITIES:
        members = [_finding_view(f, report, include_sensitive) for f in findings if f.severity is sev]
        if members:
            groups.append({"severity": sev.value, "findings": members})
    if decision is None:
        verdict = {"label": "Not evaluated", "css": "none", "exit_code": None, "fail_on": None}
    else:
        verdict = {
            "label": decision.verdict.value.capitalize(),
            "css": decision.verdict.value,
            "exit_code": int(decision.exit_code),
            "fail_on": decision.fail_on.value,
        }
    return {
        "run": report.run,
        "schema_version": report.schema_version,
        "verdict": verdict,
        "counts": severity_counts(report),
        "incomplete": [] if decision is None else sorted(decision.incomplete_checks),
        "baseline": decision is not None and decision.baseline_fingerprints is not None,
        "include_sensitive": include_sensitive,
        "groups": groups,
        "n_findings": len(findings),
        "thresholds": [
            {
                "metric": t.metric,
                "bound": threshold_bound(t),
                "value": format_number(t.value),
                "passed": t.passed,
                "check_id": t.check_id,
            }
            for t in ([] if decision is None else sorted(decision.thresholds, key=lambda t: (t.metric, t.op)))
        ],
        "checks": [_check_view(r) for r in sorted(report.results, key=lambda r: (r.stage.order, r.check_id))],
        "packages": sorted(report.run.packages.items()),
        "artifacts": sorted(report.run.artifacts, key=lambda a: (a.role, a.path)),
        "config": json.dumps(jsonable(report.run.config), sort_keys=True, indent=2, ensure_ascii=False),
    }


def _finding_view(finding: Finding, report: Report, include_sensitive: bool) -> dict[str, Any]:
    decision = report.decision
    evidence = finding.evidence_dict(include_sensitive=include_sensitive)
    return {
        "f": finding,
        "where": where(finding),
        "evidence": [(k, format_value(v)) for k, v in evidence.items()],
        "hidden": 0 if include_sensitive else sum(1 for e in finding.evidence if e.sensitive),
        "references": [(ref, reference_url(ref)) for ref in finding.references],
        "new": decision is not None
        and decision.baseline_fingerprints is not None
        and decision.is_new(finding),
        "blocking": decision is not None and finding.fingerprint in decision.blocking,
    }


def _check_view(result: CheckResult) -> dict[str, Any]:
    return {
        "r": result,
        "duration": format_duration(result.duration_s),
        "metrics": [
            {
                "name": m.name,
                "value": format_number(m.value) + (f" {m.unit}" if m.unit else ""),
                "ci": (
                    f"[{format_number(m.ci_low)}, {format_number(m.ci_high)}]"
                    if m.ci_low is not None or m.ci_high is not None
                    else "n/a"
                ),
                "n": "n/a" if m.n is None else str(m.n),
                "better": {True: "higher", False: "lower", None: ""}[m.higher_is_better],
                "description": m.description,
            }
            for m in sorted(result.metrics, key=lambda m: m.name)
        ],
        "figures": [_figure_view(fig) for fig in result.figures],
    }


def _figure_view(figure: Figure) -> dict[str, Any]:
    svg = None if figure.svg is None else sanitize_svg(figure.svg)
    table = [{str(k): v for k, v in row.items()} for row in figure.table]
    present = {k for row in table for k in row}
    columns = [c for c in figure.columns if c in present] + sorted(present - set(figure.columns))
    rows = [[format_value(row.get(c, "")) for c in columns] for row in table]
    return {
        "fig": figure,
        "svg": None if svg is None else Markup(svg),  # noqa: S704 - sanitised and re-serialised above
        "svg_rejected": figure.svg is not None and svg is None,
        "columns": columns,
        "rows": rows,
    }
