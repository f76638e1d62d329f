"""Renderers of the canonical audit report: JSON (canonical, versioned), HTML, SARIF 2.1.0, JUnit XML and
Markdown, each in its own module reading the same immutable :class:`garrison.core.Report`; and the rule catalogue
as Markdown."""

from garrison.report.html import render_html
from garrison.report.json_report import load_report_schema, read_report, to_json, validate_report
from garrison.report.junit import render_junit
from garrison.report.markdown import MAX_MARKDOWN_BYTES, render_markdown
from garrison.report.rules_doc import render_rules_markdown
from garrison.report.sarif import render_sarif
from garrison.report.svg import sanitize_svg
from garrison.report.writer import FILE_NAMES, FORMATS, render, write_reports

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "MAX_MARKDOWN_BYTES",
    "load_report_schema",
    "read_report",
    "render",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_rules_markdown",
    "render_sarif",
    "sanitize_svg",
    "to_json",
    "validate_report",
    "write_reports",
]
