"""``garrison demo``: the whole pipeline, offline, on data scikit-learn ships."""

from __future__ import annotations

from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["register"]


def demo_command(
    output: Path = typer.Option(Path("garrison-report"), "--output", "-o", help="Report directory."),
    workdir: Path = typer.Option(Path("demo-workdir"), "--workdir", help="Where model, data and config go."),
) -> None:
    """Train a small model, write a garrison.yaml, run the full audit and write every report format."""
    from garrison.audit import run_demo
    from garrison.cli.console import RichProgress
    from garrison.cli.output import print_summary

    info("Garrison demo: training a scikit-learn pipeline on the bundled breast-cancer data ...")
    with RichProgress() as progress:
        result = run_demo(workdir, report_dir=output, progress=progress)
    print_summary(result.report)
    info(f"config: {result.config_path}")
    for kind, path in sorted(result.files.items()):
        info(f"  {kind:<9} {path}")
    typer.echo(f"Report: {result.files.get('html', output)}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
