"""The incident responder: turns detector signals into incidents and runs the matching playbooks' actions.

:class:`IncidentResponder` receives each :class:`Signal` (from the service's detectors and drift monitor), finds
the playbooks that match it, and for each:

1. opens an incident in the store (or, when one is already open for the same playbook and subject, adds the
   signal to that incident's timeline instead of opening another), with the signal as evidence;
2. runs the playbook's actions through the :class:`ResponseActions` the service provides (block, throttle,
   quarantine, ...), recording each one — and any that failed — on the incident's timeline as a store event
   ``incident.action``.

The timeline of an incident is its status history plus these events: :func:`incident_timeline`. Nothing here
knows HTTP: the service injects the actions, tests inject their own recording ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from garrison.core.severity import Severity

if TYPE_CHECKING:
    from garrison.respond.playbooks import Playbook

__all__ = ["IncidentResponder", "ResponseActions", "Signal", "incident_timeline"]


@dataclass(frozen=True)
class Signal:
    """Something a detector saw: ``kind`` (``probing``, ``ood``, ...), ``severity``, the ``subject`` (an API key
    id, ``model``), a one-line ``message`` and JSON ``details`` (never raw payloads)."""

    kind: str
    severity: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


class ResponseActions(Protocol):
    """What the service can do; each returns a short description for the timeline."""

    def notify(self, signal: Signal, incident: int) -> str: ...

    def block(self, subject: str) -> str: ...

    def throttle(self, subject: str, rate: float) -> str: ...

    def quarantine(self, subject: str, rows: np.ndarray | None, incident: int) -> str: ...

    def abstain(self, subject: str) -> str: ...

    def fallback(self) -> str: ...

    def rollback(self) -> str: ...


class IncidentResponder:
    """Matches signals to ``playbooks`` and acts (see the module docstring). ``store`` is a
    :class:`garrison.store.Store` (or anything with its ``open_incident``, ``list_incidents`` and ``add_event``)."""

    def __init__(
        self,
        playbooks: Sequence[Playbook],
        actions: ResponseActions,
        *,
        store: Any,
        model_name: str | None = None,
    ) -> None:
        self.playbooks = list(playbooks)
        self.actions = actions
        self.store = store
        self.model_name = model_name
        self._open: dict[tuple[str, str], int] = {}

    def handle(self, signal: Signal, rows: np.ndarray | None = None) -> list[tuple[int, str]]:
        """Run every matching playbook for ``signal``; the ``(incident id, action result)`` pairs, in order."""
        done: list[tuple[int, str]] = []
        for playbook in self.playbooks:
            if not playbook.matches(signal.kind, signal.severity):
                continue
            incident = self._incident(playbook, signal)
            for action in playbook.then:
                try:
                    result = self._run(action, playbook, signal, rows, incident)
                    ok = True
                except Exception as exc:  # one failing action must not stop the others
                    result, ok = f"{action} failed: {type(exc).__name__}", False
                self.store.add_event(kind="incident.action", source=playbook.name,
                                     payload={"incident": incident, "action": action, "ok": ok, "result": result,
                                              "subject": signal.subject})  # fmt: skip
                done.append((incident, result))
        return done

    def _incident(self, playbook: Playbook, signal: Signal) -> int:
        key = (playbook.name, signal.subject)
        incident = self._open.get(key)
        if incident is not None and self._still_open(incident):
            self.store.add_event(kind="incident.signal", source=playbook.name,
                                 payload={"incident": incident, "signal": _signal_dict(signal)})  # fmt: skip
            return incident
        incident = self.store.open_incident(
            title=f"{signal.kind}: {signal.message}"[:200],
            severity=Severity(signal.severity),
            model_name=self.model_name,
            details={"playbook": playbook.name, "signal": _signal_dict(signal)},
        )
        self._open[key] = incident
        return int(incident)

    def _still_open(self, incident: int) -> bool:
        return self.store.incident_status(incident) in ("open", "acknowledged")

    def _run(
        self, action: str, playbook: Playbook, signal: Signal, rows: np.ndarray | None, incident: int
    ) -> str:
        a = self.actions
        if action == "notify":
            return a.notify(signal, incident)
        if action == "block":
            return a.block(signal.subject)
        if action == "throttle":
            return a.throttle(signal.subject, playbook.throttle_rate)
        if action == "quarantine":
            return a.quarantine(signal.subject, rows, incident)
        if action == "abstain":
            return a.abstain(signal.subject)
        if action == "fallback":
            return a.fallback()
        if action == "rollback":
            return a.rollback()
        raise ValueError(f"unknown action {action!r}")


def incident_timeline(store: Any, incident: int) -> list[dict[str, Any]]:
    """The incident's timeline, oldest first: opened, signals, actions and status changes."""
    record = next((i for i in store.list_incidents() if i.id == incident), None)
    if record is None:
        return []
    items: list[dict[str, Any]] = [{"at": record.opened_at, "what": "opened", "detail": record.title}]
    for u in record.history:
        items.append(
            {"at": u.at, "what": f"{u.old_status} → {u.new_status}", "detail": f"{u.actor}: {u.note}"}
        )
    for kind in ("incident.signal", "incident.action"):
        for e in store.list_events(kind=kind, limit=10_000):
            if e.payload.get("incident") == incident:
                detail = e.payload.get("result") or e.payload.get("signal", {}).get("message", "")
                items.append({"at": e.created_at, "what": kind.split(".")[1], "detail": str(detail)})
    items.sort(key=lambda item: item["at"] if isinstance(item["at"], dt.datetime) else dt.datetime.min)
    return items


def _signal_dict(signal: Signal) -> dict[str, Any]:
    return {"kind": signal.kind, "severity": signal.severity, "subject": signal.subject, "message": signal.message,
            "details": signal.details}  # fmt: skip
