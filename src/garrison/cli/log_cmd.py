"""``garrison log verify|sign-head``: check the tamper-evident audit log of the inference service.

``verify`` exits 0 when every chain is intact (and reaches every signed head given), 1 when problems are found,
2 on usage errors (bad options, an unreadable heads file or key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from garrison.cli.console import info
from garrison.cli.state import store_url

__all__ = ["register"]

log_app = typer.Typer(help="Verify the audit log of the inference service.", no_args_is_help=True)

FORMATS = ("text", "json")
_STORE = typer.Option(
    None, "--store", help="Database URL (default: GARRISON_DB_URL, else .garrison/garrison.db)."
)


@log_app.command("verify")
def verify_command(
    heads: Path | None = typer.Option(None, "--heads", help="Signed chain heads, one JSON object per line."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="Ed25519 public key (PEM) of the heads."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(FORMATS)}."),
    store: str | None = _STORE,
    journal: Path | None = typer.Option(
        None,
        "--journal",
        help="The service's write-ahead journal directory: entries a stopped or killed service left there are "
        "moved into their chains first (default: .garrison/journal when it exists).",
    ),
) -> None:
    """Check every worker's hash chain, and that it still reaches each signed head."""
    from garrison.store import Store, load_heads, load_public_key, verify_log

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format")
    if heads is not None and public_key is None:
        raise typer.BadParameter(
            "--heads needs --public-key to check the heads' signatures", param_hint="--heads"
        )
    signed = None
    if heads is not None:
        from garrison.core import InputError

        try:
            signed = load_heads(_read(heads).decode("utf-8", "replace"))
        except InputError as exc:
            raise InputError(exc.reason, path=exc.path or heads) from None
    key = load_public_key(_read(public_key)) if public_key is not None else None
    if journal is None and Path(".garrison/journal").is_dir():
        journal = Path(".garrison/journal")
    with Store.open(store or store_url()) as st:
        if journal is not None:
            moved = _recover_journals(st, journal)
            if moved:
                info(
                    f"moved {moved} journalled entr{'y' if moved == 1 else 'ies'} from {journal} into the log"
                )
        result = verify_log(st, heads=signed, public_key=key)
    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        for worker, head in sorted(result.chains.items()):
            typer.echo(f"{worker}: {head.seq} entries, head {head.hash[:16]}")
        for p in result.problems:
            where = "" if p.seq is None else f" seq {p.seq}"
            typer.echo(f"PROBLEM {p.kind}: {p.worker}{where}: {p.message}")
        verdict = "intact" if result.ok else f"{len(result.problems)} problem(s)"
        info(
            f"audit log {verdict}; {len(result.chains)} chain(s), {result.heads_checked} signed head(s) checked"
        )
    raise typer.Exit(0 if result.ok else 1)


@log_app.command("sign-head")
def sign_head_command(
    worker: str = typer.Option(..., "--worker", help="Whose chain."),
    private_key: Path = typer.Option(..., "--private-key", help="Ed25519 private key (PEM, unencrypted)."),
    store: str | None = _STORE,
) -> None:
    """Print the signed head of a worker's chain as one JSON line (append it to a heads file kept elsewhere)."""
    from garrison.store import AuditLog, Store, load_private_key, sign_head

    key = load_private_key(_read(private_key))
    with Store.open(store or store_url()) as st:
        signed = sign_head(AuditLog(st, worker=worker).head(), key)
    typer.echo(json.dumps(signed.to_dict(), sort_keys=True))


def _read(path: Path) -> bytes:
    from garrison.core import InputError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None


def register(app: typer.Typer) -> None:
    app.add_typer(log_app, name="log")


def _recover_journals(store: Any, directory: Path) -> int:
    """Recover the journal of every worker with segments in ``directory`` (one that a live service holds is
    skipped: its own mover is at work)."""
    from garrison.core import WriterBusyError
    from garrison.store import AuditJournal, AuditLog

    if not directory.is_dir():
        raise typer.BadParameter(f"no such directory: {directory}", param_hint="--journal")
    workers = sorted({p.name.rsplit(".", 2)[0] for p in directory.glob("*.journal")})
    moved = 0
    for name in workers:
        log = AuditLog(store, worker=_unquote(name))
        try:
            journal = AuditJournal.open(log, directory)
        except WriterBusyError:
            info(f"note: worker {log.worker!r} is running; its journal is left to it")
            continue
        moved += journal.recovered
        journal.close()
        log.close()
    return moved


def _unquote(name: str) -> str:
    from urllib.parse import unquote

    return unquote(name)
