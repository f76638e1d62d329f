"""``garrison findings list|show|triage``: the shared list of findings (store) and their triage (the file)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path

import typer

from garrison.cli.console import err_console, info
from garrison.cli.state import store_url

__all__ = ["register"]

findings_app = typer.Typer(help="List, show and triage findings recorded by audits.", no_args_is_help=True)

_TRIAGE = typer.Option(Path(".garrison/triage.yaml"), "--triage", help="Triage decisions file (commit it).")


@findings_app.command("list")
def list_command(
    status: str | None = typer.Option(None, "--status", help="open | accepted-risk | false-positive | fixed"),
    severity: str | None = typer.Option(None, "--min-severity", help="info | low | medium | high | critical"),
    project: str | None = typer.Option(None, "--project", help="Only this project."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Findings across audits, most severe first."""
    from garrison.core import Severity, TriageStatus
    from garrison.store import Store

    st = TriageStatus(status) if status else None
    sev = Severity(severity) if severity else None
    with Store.open(store_url()) as store:
        rows = store.list_findings(status=st, min_severity=sev, project=project)
    if as_json:
        typer.echo(json.dumps([_row_dict(r) for r in rows], indent=2, sort_keys=True, default=str))
        return
    from rich.table import Table

    table = Table(show_lines=False)
    for col in ("fingerprint", "severity", "rule", "title", "location", "status", "last seen"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r.fingerprint[:12],
            r.severity.value,
            r.rule_id,
            r.title,
            r.location or "",
            r.status.value,
            str(r.last_seen_at)[:19],
        )
    err_console().print(table) if rows else info("no findings recorded")


@findings_app.command("show")
def show_command(
    fingerprint: str = typer.Argument(..., help="Fingerprint or a unique prefix (>= 6 chars)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with the triage history)."),
) -> None:
    """One finding with its triage history."""
    from garrison.store import Store

    with Store.open(store_url()) as store:
        row = store.get_finding(fingerprint)
        history = store.triage_history(row.fingerprint)
    events = [
        {
            "at": e.at.isoformat(timespec="seconds"),
            "actor": e.actor,
            "old_status": e.old_status.value if e.old_status else None,
            "new_status": e.new_status.value if e.new_status else None,
            "reason": e.reason,
        }
        for e in history
    ]
    data = _row_dict(row)
    if as_json:
        typer.echo(json.dumps({**data, "history": events}, indent=2, sort_keys=True, default=str))
        return
    for key in sorted(data):
        typer.echo(f"{key:>16}: {data[key]}")
    typer.echo("triage history:" if events else "triage history: none")
    for e in events:
        reason = f": {e['reason']}" if e["reason"] else ""
        typer.echo(
            f"  {e['at']} {e['actor']}: {e['old_status'] or '(none)'} -> {e['new_status'] or '(removed)'}{reason}"
        )


@findings_app.command("triage")
def triage_command(
    fingerprint: str = typer.Argument(..., help="Fingerprint or a unique prefix (>= 6 chars)."),
    status: str = typer.Option(..., "--status", help="open | accepted-risk | false-positive | fixed"),
    reason: str | None = typer.Option(None, "--reason", help="Why (required for accepted-risk)."),
    owner: str | None = typer.Option(None, "--owner", help="Who owns the risk (required for accepted-risk)."),
    expires: str | None = typer.Option(None, "--expires", help="YYYY-MM-DD (required for accepted-risk)."),
    triage_file: Path = _TRIAGE,
) -> None:
    """Record a triage decision in the triage file (the source of truth) and mirror it in the store."""
    from garrison.core import ConfigError, TriageEntry, TriageStatus, load_triage, save_triage
    from garrison.store import Store

    try:
        st = TriageStatus(status)
    except ValueError:
        raise ConfigError(
            f"`--status` must be one of {', '.join(s.value for s in TriageStatus)}, got {status!r}"
        ) from None
    try:
        expiry = dt.date.fromisoformat(expires) if expires else None
    except ValueError:
        raise ConfigError(f"`--expires` must be a date YYYY-MM-DD, got {expires!r}") from None
    with Store.open(store_url()) as store:
        row = store.get_finding(fingerprint)
        entry = TriageEntry(
            fingerprint=row.fingerprint,
            status=st,
            reason=reason,
            owner=owner,
            expires=expiry,
            rule_id=row.rule_id,
            title=row.title,
            updated_by=_user(),
            updated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        triage = load_triage(triage_file).with_entry(entry)
        save_triage(triage, triage_file)
        store.sync_triage(triage, actor=_user())
    info(f"{row.fingerprint[:12]} -> {st.value} (written to {triage_file})")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _row_dict(row: object) -> dict[str, object]:
    from dataclasses import asdict

    out = asdict(row)  # type: ignore[call-overload]
    return {k: (v.value if hasattr(v, "value") else v) for k, v in out.items()}


def register(app: typer.Typer) -> None:
    app.add_typer(findings_app, name="findings")
