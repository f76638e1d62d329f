"""``garrison fl simulate``: federated learning with malicious clients on Flower's Simulation Engine, comparing
aggregation strategies; writes a JSON and Markdown report and SVG figures."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from garrison.cli.console import info

__all__ = ["fl_app", "register"]

FORMATS = ("json", "markdown")

fl_app = typer.Typer(
    name="fl",
    help="Federated learning that survives malicious clients (Flower simulation).\n\n"
    "Exit codes: 0 done, 2 bad config or input.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@fl_app.command("simulate")
def simulate_command(
    config: Path = typer.Option(..., "--config", "-c", help="The experiment (fl.yaml)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Directory for report.json, report.md and the SVG figures."
    ),
    fmt: str = typer.Option("markdown", "--format", "-f", help=f"What to print: {'|'.join(FORMATS)}."),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
) -> None:
    """Run every strategy of the config on the same clients and attack; print the comparison."""
    from garrison.core.atomic_write import write_atomic
    from garrison.federated import accuracy_svg, backdoor_svg, load_fl_config, simulate

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if seed is not None and seed < 0:
        raise typer.BadParameter(f"must be >= 0, got {seed}", param_hint="--seed")
    cfg = load_fl_config(config)
    if seed is not None:
        cfg = cfg.with_seed(seed)
    info(
        f"federated simulation: {cfg.clients} clients, {cfg.malicious} malicious ({cfg.attack.kind}), "
        f"{cfg.rounds} rounds, strategies: {', '.join(cfg.strategies)}"
    )
    result = simulate(cfg)
    payload = json.dumps(result.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    markdown = result.to_markdown()
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        write_atomic(output / "report.json", payload)
        write_atomic(output / "report.md", markdown)
        write_atomic(output / "accuracy.svg", accuracy_svg(result))
        backdoor = backdoor_svg(result)
        if backdoor is not None:
            write_atomic(output / "backdoor.svg", backdoor)
        info(f"report written to {output}")
    typer.echo(payload if fmt == "json" else markdown, nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(fl_app, name="fl")
