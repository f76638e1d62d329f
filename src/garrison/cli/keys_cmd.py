"""``garrison keys create|list|revoke``: the API keys of the guarded inference service, kept in the store.

The secret of a new key is printed once, alone on stdout (so ``$(garrison keys create ...)`` captures it); the store
keeps only its hash. A running service sees new and revoked keys when it reloads its key ring.
"""

from __future__ import annotations

import datetime as dt
import json

import typer

from garrison.cli.console import info
from garrison.cli.state import store_url

__all__ = ["register"]

keys_app = typer.Typer(
    help="Create, list and revoke API keys of the inference service.", no_args_is_help=True
)

FORMATS = ("table", "json")
_STORE = typer.Option(
    None, "--store", help="Database URL (default: GARRISON_DB_URL, else .garrison/garrison.db)."
)


@keys_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="What the key is for (e.g. the client's name)."),
    scope: list[str] = typer.Option(..., "--scope", help="predict | explain | admin (repeat for several)."),
    expires: str | None = typer.Option(
        None, "--expires", help="YYYY-MM-DD (UTC): the key stops working then."
    ),
    store: str | None = _STORE,
) -> None:
    """Create a key and print its secret, once: the store keeps only a hash of it."""
    from garrison.store import KEY_SCOPES, Store

    unknown = sorted(set(scope) - set(KEY_SCOPES))
    if unknown:
        raise typer.BadParameter(
            f"must be among {', '.join(KEY_SCOPES)}, got {', '.join(unknown)}", param_hint="--scope"
        )
    try:
        expiry = dt.date.fromisoformat(expires) if expires else None
    except ValueError:
        raise typer.BadParameter(
            f"must be a date YYYY-MM-DD, got {expires!r}", param_hint="--expires"
        ) from None
    if expiry is not None and expiry <= dt.datetime.now(dt.UTC).date():
        raise typer.BadParameter(f"must be a date in the future, got {expires}", param_hint="--expires")
    with Store.open(store or store_url()) as st:
        key_id, secret = st.create_key(name, scope, expires=expiry)
    info(
        f"created key {key_id} ({name}; {', '.join(sorted(set(scope)))}): copy the secret now, it is not shown again"
    )
    typer.echo(secret)


@keys_app.command("list")
def list_command(
    fmt: str = typer.Option("table", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    active: bool = typer.Option(False, "--active", help="Leave out revoked keys."),
    store: str | None = _STORE,
) -> None:
    """The keys, oldest first (never their secrets)."""
    from garrison.store import Store

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    with Store.open(store or store_url()) as st:
        keys = st.list_keys(include_revoked=not active)
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "scopes": sorted(k.scopes),
            "created_at": k.created_at.isoformat(timespec="seconds"),
            "expires_at": None if k.expires_at is None else k.expires_at.isoformat(timespec="seconds"),
            "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(timespec="seconds"),
        }
        for k in keys
    ]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        info("no API keys")
        return
    typer.echo(f"{'id':<16}  {'name':<24}  {'scopes':<22}  {'expires':<10}  status")
    for r in rows:
        status = "revoked" if r["revoked_at"] else "active"
        expires = (r["expires_at"] or "never")[:10]
        typer.echo(
            f"{r['id']:<16}  {r['name'][:24]:<24}  {','.join(r['scopes']):<22}  {expires:<10}  {status}"
        )


@keys_app.command("revoke")
def revoke_command(
    key_id: str = typer.Argument(..., help="The key's id (see `garrison keys list`)."),
    store: str | None = _STORE,
) -> None:
    """Revoke a key (a running service refuses it once it reloads its keys)."""
    from garrison.store import Store

    with Store.open(store or store_url()) as st:
        key = st.revoke_key(key_id)
    info(f"revoked key {key.id} ({key.name})")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
