"""Incident response: playbooks declared in garrison.yaml, and the responder that opens incidents and acts."""

from __future__ import annotations

from garrison.respond.playbooks import ACTIONS, SIGNALS, Playbook, parse_playbooks
from garrison.respond.responder import IncidentResponder, ResponseActions, Signal, incident_timeline

__all__ = [
    "ACTIONS",
    "SIGNALS",
    "IncidentResponder",
    "Playbook",
    "ResponseActions",
    "Signal",
    "incident_timeline",
    "parse_playbooks",
]
