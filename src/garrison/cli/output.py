"""Rendering a report for the terminal and writing requested formats."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from garrison.cli.console import err_console, info, warn
from garrison.cli.state import STATE, store_url
from garrison.core.atomic_write import write_atomic

if TYPE_CHECKING:
    from garrison.core import Report

__all__ = ["FORMATS", "emit", "print_summary", "record_in_store"]

FORMATS = ("text", "json", "html", "sarif", "junit", "markdown")
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def repo_root(start: Path | None = None) -> Path:
    """The enclosing git work tree (SARIF paths are relative to it), else the working directory."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def print_summary(report: Report) -> None:
    """A human summary on stderr: verdict, counts, findings, thresholds, check status."""
    from rich.table import Table

    if STATE.quiet:
        return
    console = err_console()
    decision = report.decision
    for r in report.results:
        status = {"ok": "[green]ok[/green]", "error": "[red]error[/red]", "skipped": "[dim]skipped[/dim]"}
        detail = r.error or r.reason or f"{len(r.metrics)} metrics, {len(r.findings)} findings"
        console.print(f"  {r.check_id:<14} {status[r.status.value]:<24} {r.duration_s:6.2f}s  {detail}")
    if decision is None:
        return
    findings = [f for f in decision.findings if f.is_active]
    if findings:
        table = Table(title="Findings", show_lines=False, expand=False)
        for col in ("severity", "rule", "title", "location"):
            table.add_column(col)
        for f in findings[:30]:
            new = " (new)" if decision.baseline_fingerprints is not None and decision.is_new(f) else ""
            style = _STYLE[f.severity.value]
            table.add_row(
                f"[{style}]{f.severity.value}[/{style}]", f.rule_id, f.title + new, f.location or ""
            )
        console.print(table)
        if len(findings) > 30:
            console.print(f"  ... and {len(findings) - 30} more (see the report)")
    for t in decision.thresholds:
        mark = "[green]pass[/green]" if t.passed else "[red]FAIL[/red]"
        value = "not measured" if t.value is None else f"{t.value:.4g}"
        console.print(f"  threshold {t.metric} {t.op} {t.bound:g}: {value} {mark}")
    counts = ", ".join(f"{n} {s}" for s, n in decision.counts().items() if n)
    colour = {"passed": "green", "failed": "red", "incomplete": "yellow"}[decision.verdict.value]
    console.print(
        f"[bold {colour}]{decision.verdict.value.upper()}[/bold {colour}] "
        f"(exit {int(decision.exit_code)}; fail_on {decision.fail_on.value}; open findings: {counts or 'none'})"
    )


def emit(report: Report, fmt: str, output: Path | None, *, include_sensitive: bool = False) -> None:
    """Write the report in ``fmt`` to ``output`` (atomically) or stdout. ``text`` prints the summary."""
    if fmt == "text":
        print_summary(report)
        return
    from garrison.report import render

    options: dict[str, object] = (
        {"include_sensitive": include_sensitive} if fmt in ("html", "sarif", "markdown") else {}
    )
    if fmt == "sarif":
        options["repo_root"] = repo_root()
    text = render(report, fmt, **options)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text)
    info(f"wrote {output}")


def record_in_store(report: Report) -> int | None:
    """Record the audit in the store; a store failure is a warning, never a failed audit."""
    from garrison.core.errors import StoreError
    from garrison.store import Store

    try:
        with Store.open(store_url()) as store:
            return store.record_audit(report)
    except StoreError as exc:
        warn(f"audit not recorded in the store: {exc}")
        return None
