"""``garrison models register|list|promote``: the model registry the guarded service serves from."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from garrison.cli.console import err_console, info
from garrison.cli.state import store_url

__all__ = ["register"]

models_app = typer.Typer(help="Register model versions and choose the one that serves.", no_args_is_help=True)

_KEY = typer.Option(None, "--public-key", help="PEM key the model's signature must verify with.")


@models_app.command("register")
def register_command(
    name: str = typer.Argument(..., help="Logical model name (model.name in garrison.yaml)."),
    version: str = typer.Argument(..., help="Version label, unique per model."),
    path: Path = typer.Argument(..., exists=True, help="Model file or directory."),
    audit: int | None = typer.Option(
        None, "--audit", help="Id of the audit of this file (garrison findings)."
    ),
    public_key: Path | None = _KEY,
) -> None:
    """Record a version: its SHA-256, its signature status and its audit. It does not serve until promoted."""
    from garrison.registry import ModelRegistry
    from garrison.store import Store

    with Store.open(store_url()) as store:
        ModelRegistry(store, public_key=public_key).register(name, version, path, audit_id=audit)
    info(f"registered {name} {version}")


@models_app.command("list")
def list_command(
    name: str = typer.Argument(..., help="Logical model name."),
    public_key: Path | None = _KEY,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Versions, oldest first, with why each may not serve."""
    from garrison.registry import ModelRegistry
    from garrison.store import Store

    with Store.open(store_url()) as store:
        registry = ModelRegistry(store, public_key=public_key)
        rows = [{"version": v.version, "serving": v.serving, "sha256": v.sha256[:12], "audit": v.audit_id,
                 "signature": v.signature_status, "problems": registry.problems(v)} for v in registry.versions(name)]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        info(f"no versions of {name} registered")
        return
    for r in rows:
        mark = "*" if r["serving"] else " "
        state = "ok" if not r["problems"] else "; ".join(r["problems"])  # type: ignore[arg-type]
        err_console().print(f"{mark} {r['version']:<12} {r['sha256']}  audit {r['audit']}  {state}")


@models_app.command("promote")
def promote_command(
    name: str = typer.Argument(..., help="Logical model name."),
    version: str = typer.Argument(..., help="The version to serve."),
    public_key: Path | None = _KEY,
) -> None:
    """Make a version the serving one: refused (exit 1) when its file changed, its audit failed or is missing, or
    its signature does not verify."""
    from garrison.registry import ModelRegistry, RegistryRefusal
    from garrison.store import Store

    with Store.open(store_url()) as store:
        try:
            ModelRegistry(store, public_key=public_key).promote(name, version)
        except RegistryRefusal as exc:
            err_console().print(f"refused: {'; '.join(exc.problems)}")
            raise typer.Exit(1) from None
    info(f"{name} {version} now serves")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
