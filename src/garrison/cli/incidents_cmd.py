"""``garrison incidents list|show|ack|resolve``: the incidents the guarded service opened, and their timelines."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING

import typer

from garrison.cli.console import err_console, info
from garrison.cli.state import store_url

if TYPE_CHECKING:
    from garrison.store import IncidentRecord

__all__ = ["register"]

incidents_app = typer.Typer(help="List, show, acknowledge and resolve incidents.", no_args_is_help=True)


@incidents_app.command("list")
def list_command(
    status: str | None = typer.Option(None, "--status", help="open | acknowledged | mitigated | resolved"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Incidents, newest first."""
    from garrison.store import Store

    with Store.open(store_url()) as store:
        rows = store.list_incidents(status=status)
    if as_json:
        typer.echo(json.dumps([_summary(r) for r in rows], indent=2, sort_keys=True, default=str))
        return
    from rich.table import Table

    table = Table()
    for col in ("id", "severity", "status", "title", "opened", "model"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id), r.severity.value, r.status, r.title, str(r.opened_at)[:19], r.model_name or ""
        )
    err_console().print(table) if rows else info("no incidents recorded")


@incidents_app.command("show")
def show_command(
    incident: int = typer.Argument(..., help="Incident id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One incident: its evidence and timeline (signals, actions, status changes)."""
    from garrison.respond import incident_timeline
    from garrison.store import Store

    with Store.open(store_url()) as store:
        record = next((r for r in store.list_incidents() if r.id == incident), None)
        if record is None:
            raise typer.BadParameter(f"no incident {incident}", param_hint="INCIDENT")
        timeline = incident_timeline(store, incident)
    doc = {**_summary(record), "details": record.details,
           "timeline": [{**t, "at": str(t["at"])[:19]} for t in timeline]}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(doc, indent=2, sort_keys=True, default=str))
        return
    lines = [f"#{record.id} [{record.severity.value}] {record.title}", f"status: {record.status}"]
    lines += [f"  {t['at']}  {t['what']:<22} {t['detail']}" for t in doc["timeline"]]
    typer.echo("\n".join(lines))


def _move(incident: int, status: str, note: str) -> None:
    from garrison.store import Store

    with Store.open(store_url()) as store:
        if not any(r.id == incident for r in store.list_incidents()):
            raise typer.BadParameter(f"no incident {incident}", param_hint="INCIDENT")
        store.update_incident(incident, status=status, actor=getpass.getuser(), note=note)
    info(f"incident {incident}: {status}")


@incidents_app.command("ack")
def ack_command(
    incident: int = typer.Argument(..., help="Incident id."),
    note: str = typer.Option("", "--note", help="Why, for the timeline."),
) -> None:
    """Acknowledge an incident (someone is on it)."""
    _move(incident, "acknowledged", note)


@incidents_app.command("resolve")
def resolve_command(
    incident: int = typer.Argument(..., help="Incident id."),
    note: str = typer.Option("", "--note", help="What was done, for the timeline."),
) -> None:
    """Resolve an incident."""
    _move(incident, "resolved", note)


def _summary(r: IncidentRecord) -> dict[str, object]:
    return {
        "id": r.id,
        "title": r.title,
        "severity": r.severity.value,
        "status": r.status,
        "model": r.model_name,
        "opened_at": str(r.opened_at)[:19],
    }


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
