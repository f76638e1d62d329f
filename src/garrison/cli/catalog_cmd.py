"""``garrison rules`` and ``garrison checks``: what Garrison can find and which checks are installed."""

from __future__ import annotations

import typer

__all__ = ["register"]


def rules_command() -> None:
    """List every rule id with its severity, stage and title."""
    import garrison.audit.checks  # noqa: F401  (checks register their rules on import)
    from garrison.core import all_rules

    for rule in all_rules():
        typer.echo(f"{rule.id}  {rule.severity.value:<8} {rule.stage.value:<10} {rule.title}")


def checks_command() -> None:
    """List installed checks (entry-point group garrison.checks) in the order they run."""
    from garrison.audit import default_registry

    registry = default_registry()
    for check_id in registry.ids():
        cls = registry.get(check_id)
        typer.echo(f"{check_id:<14} {cls.stage.value:<10} {getattr(cls, 'description', '')}")


def register(app: typer.Typer) -> None:
    app.command("rules")(rules_command)
    app.command("checks")(checks_command)
