"""docs/rules.md is generated from the rule catalogue. After changing a rule, regenerate it:

GARRISON_UPDATE_GOLDEN=1 .venv/bin/pytest tests/report/test_rules_doc.py
"""

import os
import re
from pathlib import Path

from garrison.core import Rule, Severity, Stage, all_rules
from garrison.report import render_rules_markdown

RULES_DOC = Path(__file__).parents[2] / "docs" / "rules.md"


def test_committed_rules_doc_is_up_to_date() -> None:
    text = render_rules_markdown()
    if os.environ.get("GARRISON_UPDATE_GOLDEN") == "1":
        RULES_DOC.write_text(text, encoding="utf-8")
    assert RULES_DOC.read_text(encoding="utf-8") == text, (
        "regenerate docs/rules.md (see this test's docstring)"
    )


def test_every_rule_has_an_anchored_section_and_an_index_row() -> None:
    text = render_rules_markdown()
    for rule in all_rules():
        assert f'<a id="{rule.id.lower()}"></a>' in text
        assert f"## {rule.id}: {rule.title}" in text
        assert f"| [{rule.id}](#{rule.id.lower()}) |" in text
        assert rule.remediation.split()[0] in text
    headings = re.findall(r"^## (\S+):", text, flags=re.MULTILINE)
    assert headings == sorted(r.id for r in all_rules())


def test_references_are_links_and_table_cells_are_escaped() -> None:
    rule = Rule(
        id="GAR-XX-001",
        title="Pipes | in a title",
        severity=Severity.LOW,
        stage=Stage.DATA,
        description="Line one\nline two.",
        remediation="Do it.",
        references=("cwe:20", "vendor:thing"),
    )
    text = render_rules_markdown([rule])
    assert "| [GAR-XX-001](#gar-xx-001) | Pipes \\| in a title | low | data |" in text
    assert (
        "- **References:** [`cwe:20`](https://cwe.mitre.org/data/definitions/20.html), `vendor:thing`" in text
    )
    assert "\nLine one line two.\n" in text
