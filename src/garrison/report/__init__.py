"""Renderers of the canonical audit report: JSON (canonical, versioned), HTML, SARIF 2.1.0, JUnit XML and
Markdown, each in its own module reading the same immutable :class:`garrison.core.Report`; the CycloneDX 1.6 ML-BOM
(:func:`build_ml_bom`); and the rule catalogue as Markdown.

Names are resolved lazily (PEP 562): rendering SARIF does not import the ML-BOM's CycloneDX library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.core.lazy import lazy_exports

if TYPE_CHECKING:
    from garrison.report.bom import BOM_SPEC_VERSION, build_ml_bom, ml_bom_json, validate_ml_bom, write_ml_bom
    from garrison.report.html import render_html
    from garrison.report.json_report import load_report_schema, read_report, to_json, validate_report
    from garrison.report.junit import render_junit
    from garrison.report.markdown import MAX_MARKDOWN_BYTES, render_markdown
    from garrison.report.rules_doc import render_rules_markdown
    from garrison.report.sarif import render_sarif
    from garrison.report.svg import sanitize_svg
    from garrison.report.writer import FILE_NAMES, FORMATS, render, write_reports

# name -> module under garrison.report
_EXPORTS = {
    "BOM_SPEC_VERSION": "bom",
    "build_ml_bom": "bom",
    "ml_bom_json": "bom",
    "validate_ml_bom": "bom",
    "write_ml_bom": "bom",
    "render_html": "html",
    "load_report_schema": "json_report",
    "read_report": "json_report",
    "to_json": "json_report",
    "validate_report": "json_report",
    "render_junit": "junit",
    "MAX_MARKDOWN_BYTES": "markdown",
    "render_markdown": "markdown",
    "render_rules_markdown": "rules_doc",
    "render_sarif": "sarif",
    "sanitize_svg": "svg",
    "FILE_NAMES": "writer",
    "FORMATS": "writer",
    "render": "writer",
    "write_reports": "writer",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BOM_SPEC_VERSION",
    "FILE_NAMES",
    "FORMATS",
    "MAX_MARKDOWN_BYTES",
    "build_ml_bom",
    "load_report_schema",
    "ml_bom_json",
    "read_report",
    "render",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_rules_markdown",
    "render_sarif",
    "sanitize_svg",
    "to_json",
    "validate_ml_bom",
    "validate_report",
    "write_ml_bom",
    "write_reports",
]
