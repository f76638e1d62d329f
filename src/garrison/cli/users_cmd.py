"""``garrison users add|list|disable``: the users of the team dashboard (``garrison ui``), kept in the store.

Passwords are read without echo (asked twice) or, for scripts, from standard input with ``--password-stdin``; the
store keeps only their Argon2id hash.
"""

from __future__ import annotations

import json
import sys

import typer

from garrison.cli.console import info
from garrison.cli.state import store_url

__all__ = ["register"]

users_app = typer.Typer(help="Add, list and disable users of the team dashboard.", no_args_is_help=True)

FORMATS = ("table", "json")
_STORE = typer.Option(
    None, "--store", help="Database URL (default: GARRISON_DB_URL, else .garrison/garrison.db)."
)


@users_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Sign-in name (no spaces)."),
    role: str = typer.Option(..., "--role", help="viewer | triager | admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of standard input."
    ),
    store: str | None = _STORE,
) -> None:
    """Add a user; the password is asked twice (hidden) unless --password-stdin."""
    from garrison.store import Store
    from garrison.store.users import ROLES, add_user

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}, got {role!r}", param_hint="--role")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with Store.open(store or store_url()) as st:
        user = add_user(st, name, password, role=role)
    info(f"added user {user.name} ({user.role})")


@users_app.command("list")
def list_command(
    fmt: str = typer.Option("table", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    store: str | None = _STORE,
) -> None:
    """The users, by name (never their password hashes)."""
    from garrison.store import Store
    from garrison.store.users import list_users

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    with Store.open(store or store_url()) as st:
        users = list_users(st)
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "created_at": u.created_at.isoformat(timespec="seconds"),
            "disabled": u.disabled,
        }
        for u in users
    ]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not rows:
        info("no users: add one with `garrison users add NAME --role admin`")
        return
    typer.echo(f"{'name':<24}  {'role':<8}  {'created':<10}  status")
    for r in rows:
        status = "disabled" if r["disabled"] else "active"
        typer.echo(f"{r['name'][:24]:<24}  {r['role']:<8}  {r['created_at'][:10]:<10}  {status}")


@users_app.command("disable")
def disable_command(
    name: str = typer.Argument(..., help="The user to disable (their sessions end at once)."),
    store: str | None = _STORE,
) -> None:
    """Disable a user and end their sessions."""
    from garrison.store import Store
    from garrison.store.users import set_disabled

    with Store.open(store or store_url()) as st:
        user = set_disabled(st, name)
    info(f"disabled user {user.name}")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
