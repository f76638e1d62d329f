"""``garrison audit`` and ``garrison report``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from garrison.cli.console import info
from garrison.cli.output import FORMATS, emit, print_summary, record_in_store, repo_root

__all__ = ["register"]

_FORMAT_HELP = f"Output format: {'|'.join(FORMATS)} (text prints a summary)."


def audit_command(
    config: Path = typer.Option(Path("garrison.yaml"), "--config", "-c", help="The garrison.yaml to run."),
    fmt: str = typer.Option("text", "--format", "-f", help=_FORMAT_HELP),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write --format output here (default stdout)."
    ),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Directory for all report files (default: report.output in the config)."
    ),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="An earlier report.json: only findings new since it can fail the audit."
    ),
    triage_file: Path = typer.Option(
        Path(".garrison/triage.yaml"), "--triage", help="Triage decisions file."
    ),
    ci: bool = typer.Option(
        False, "--ci", help="CI mode: refuse `model.factory` (imports code) unless allowed."
    ),
    allow_factory: bool = typer.Option(False, "--allow-factory", help="With --ci: allow `model.factory`."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not record the audit in the store."),
    include_sensitive: bool = typer.Option(
        False, "--include-sensitive", help="Show sensitive evidence in reports."
    ),
) -> None:
    """Run every enabled check on the configured model and data, write reports, exit with the verdict."""
    from garrison.audit import audit
    from garrison.cli.console import RichProgress
    from garrison.core import load_config, load_triage
    from garrison.report import read_report, write_reports

    _check_format(fmt)
    cfg = load_config(config, env=dict(os.environ))
    triage = load_triage(triage_file)
    base = read_report(baseline) if baseline is not None else None
    with RichProgress() as progress:
        report = audit(
            cfg, progress=progress, triage=triage, baseline=base, allow_factory=allow_factory or not ci
        )
    out_dir = report_dir or cfg.resolve(cfg.report.output)
    files = write_reports(report, out_dir, cfg.report.formats, repo_root=repo_root())
    if not no_store:
        record_in_store(report)
    emit(report, fmt, output, include_sensitive=include_sensitive)
    if fmt != "text":
        print_summary(report)
    for kind, path in sorted(files.items()):
        info(f"  {kind:<9} {path}")
    assert report.decision is not None
    raise typer.Exit(int(report.decision.exit_code))


def report_command(
    report_path: Path = typer.Argument(..., help="A report.json written by `garrison audit`."),
    fmt: str = typer.Option("text", "--format", "-f", help=_FORMAT_HELP),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here (default stdout)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Re-evaluate with this config's policy."),
    triage_file: Path | None = typer.Option(None, "--triage", help="Re-evaluate with this triage file."),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Re-evaluate: fail only on findings new since this."
    ),
    include_sensitive: bool = typer.Option(False, "--include-sensitive", help="Show sensitive evidence."),
) -> None:
    """Re-render a report, or re-evaluate it against a policy, triage or baseline without rerunning checks."""
    from dataclasses import replace

    from garrison.audit import evaluate
    from garrison.core import Policy, load_config, load_triage
    from garrison.report import read_report

    _check_format(fmt)
    report = read_report(report_path)
    if config is not None or triage_file is not None or baseline is not None or report.decision is None:
        if config is not None:
            policy = load_config(config, env=dict(os.environ)).policy
        else:  # the policy the audit ran with travels in the report's (redacted) config
            policy = Policy.from_plain(report.run.config.get("policy") or {}, path=report_path)
        triage = load_triage(triage_file) if triage_file is not None else None
        base = read_report(baseline) if baseline is not None else None
        # re-evaluation starts from the checks' raw findings
        report = replace(
            report, decision=evaluate(replace(report, decision=None), policy, triage, baseline=base)
        )
    emit(report, fmt, output, include_sensitive=include_sensitive)
    assert report.decision is not None
    raise typer.Exit(int(report.decision.exit_code))


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_command)
    app.command("report")(report_command)
