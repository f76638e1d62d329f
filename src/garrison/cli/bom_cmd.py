"""``garrison bom``: the CycloneDX 1.6 ML-BOM of an audited model — the model with its model card, its datasets
and its Python dependencies — from a report JSON or from the latest audit of the config's model in the store.

The library call is :func:`garrison.report.bom.write_ml_bom`; the document is validated against the CycloneDX 1.6
schema before it is written. Exit codes: 0 written, 2 bad input (unreadable report, no recorded audit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from garrison.cli.console import info

if TYPE_CHECKING:
    from garrison.core.audit_report import Report
    from garrison.core.config import GarrisonConfig

__all__ = ["register"]


def bom_command(
    report_path: Path | None = typer.Option(
        None, "--report", "-r", help="A report.json written by `garrison audit` (instead of --config)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="A garrison.yaml: the latest audit of its model in the store (default: garrison.yaml).",
    ),
    output: Path = typer.Option(Path("bom.cdx.json"), "--output", "-o", help="Where to write the ML-BOM."),
    no_dependencies: bool = typer.Option(
        False, "--no-dependencies", help="Leave out the installed Python distributions."
    ),
) -> None:
    """Write the CycloneDX 1.6 ML-BOM (model, model card, datasets, dependencies) of an audited model."""
    from garrison.report import read_report
    from garrison.report.bom import write_ml_bom

    if report_path is not None and config is not None:
        raise typer.BadParameter("give --report or --config, not both", param_hint="--report")
    cfg: GarrisonConfig | None = None
    if report_path is not None:
        report = read_report(report_path)
    else:
        cfg, report = _latest_audit(config or Path("garrison.yaml"))
    written = write_ml_bom(report, output, config=cfg, dependencies=not no_dependencies)
    info(f"ML-BOM of {report.run.model_name} (CycloneDX 1.6) written to {written}")


def _latest_audit(config_path: Path) -> tuple[GarrisonConfig, Report]:
    from garrison.cli.state import store_url
    from garrison.core import load_config
    from garrison.core.errors import ConfigError, ReportError
    from garrison.store import Store

    cfg = load_config(config_path, env=dict(os.environ))
    if cfg.model is None:
        raise ConfigError(
            "`model` is required for a BOM (this config has no model section)", path=config_path
        )
    with Store.open(store_url()) as store:
        latest = store.latest_audit(project=cfg.project, model_name=cfg.model.name)
        if latest is None:
            raise ReportError(
                f"no audit of model {cfg.model.name!r} (project {cfg.project!r}) in the store; "
                "run `garrison audit` first or give --report"
            )
        return cfg, store.get_audit(latest.id)


def register(app: typer.Typer) -> None:
    app.command("bom")(bom_command)
