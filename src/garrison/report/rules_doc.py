"""The rule catalogue as Markdown (``docs/rules.md``), generated from :func:`garrison.core.all_rules`."""

from __future__ import annotations

from collections.abc import Iterable

from garrison.core.rules import ATLAS_RELEASE, Rule, all_rules, reference_url

__all__ = ["render_rules_markdown", "rule_anchor"]


def rule_anchor(rule_id: str) -> str:
    """The anchor of a rule's section in ``docs/rules.md`` (``GAR-FZ-001`` -> ``gar-fz-001``)."""
    return rule_id.lower()


def _reference(ref: str) -> str:
    url = reference_url(ref)
    return f"[`{ref}`]({url})" if url else f"`{ref}`"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_rules_markdown(rules: Iterable[Rule] | None = None) -> str:
    """The catalogue of ``rules`` (default: every registered rule) as a Markdown page, sorted by rule id."""
    catalogue = sorted(all_rules() if rules is None else rules, key=lambda r: r.id)
    lines = [
        "# Rule catalogue",
        "",
        "<!-- Generated from garrison.core.all_rules() by garrison.report.render_rules_markdown(); do not edit.",
        "     Regenerate: GARRISON_UPDATE_GOLDEN=1 pytest tests/report/test_rules_doc.py -->",
        "",
        "Every finding Garrison raises carries one of these stable rule ids. The severity shown is the default;",
        "a check may raise or lower it for one finding. References are versioned: MITRE ATLAS technique ids",
        f"(checked against {ATLAS_RELEASE}), OWASP Machine Learning Security Top 10 ids with their edition, and CWE ids.",
        "",
        "| Rule | Title | Severity | Stage |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| [{r.id}](#{rule_anchor(r.id)}) | {_one_line(r.title)} | {r.severity.value} | {r.stage.value} |"
        for r in catalogue
    ]
    for r in catalogue:
        lines += ["", f'<a id="{rule_anchor(r.id)}"></a>', "", f"## {r.id}: {r.title}", ""]
        lines += [f"- **Severity:** {r.severity.value}", f"- **Stage:** {r.stage.value}"]
        if r.threat_model:
            lines.append(f"- **Threat model:** {_one_line(r.threat_model)}")
        if r.references:
            lines.append(f"- **References:** {', '.join(_reference(ref) for ref in r.references)}")
        lines += ["", _one_line(r.description), "", f"**Remediation:** {_one_line(r.remediation)}"]
    return "\n".join(lines) + "\n"
