"""What the store returns: frozen records, detached from the database. Every timestamp is aware, in UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from garrison.core import Severity, Stage, TriageStatus, Verdict

__all__ = [
    "INCIDENT_STATUSES",
    "KEY_SCOPES",
    "AuditEntry",
    "AuditSummary",
    "EventRecord",
    "FindingSummary",
    "IncidentRecord",
    "IncidentUpdate",
    "KeyInfo",
    "ModelVersionRecord",
    "TriageEvent",
]

INCIDENT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "mitigated", "resolved")
KEY_SCOPES: tuple[str, ...] = ("predict", "explain", "admin")


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """One recorded audit. ``verdict`` and ``exit_code`` are None when the report was never evaluated."""

    id: int
    project: str
    model_name: str
    started_at: dt.datetime
    finished_at: dt.datetime
    recorded_at: dt.datetime
    seed: int
    garrison_version: str
    verdict: Verdict | None
    exit_code: int | None
    finding_count: int
    counts: dict[str, int]  # findings per severity (active ones when the report was evaluated)


@dataclass(frozen=True, slots=True)
class FindingSummary:
    """A finding across audits: where and when it was first and last seen, and its triage from the mirror.

    ``in_latest_audit`` is false once the latest audit of its project and model no longer reports it.
    """

    fingerprint: str
    rule_id: str
    title: str
    severity: Severity
    stage: Stage
    subject_name: str
    location: str | None
    message: str
    project: str
    model_name: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    first_audit_id: int
    last_audit_id: int
    times_seen: int
    in_latest_audit: bool
    triage_status: TriageStatus = TriageStatus.OPEN
    triage_reason: str | None = None
    triage_owner: str | None = None
    triage_expires: dt.date | None = None


@dataclass(frozen=True, slots=True)
class TriageEvent:
    """A change of one triage entry. ``old_status`` is None for a new entry, ``new_status`` for a removed one."""

    fingerprint: str
    actor: str
    at: dt.datetime
    old_status: TriageStatus | None
    new_status: TriageStatus | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class ModelVersionRecord:
    id: int
    model_name: str
    version: str
    sha256: str
    uri: str
    signature_status: str
    audit_id: int | None
    serving: bool
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    kind: str
    source: str
    payload: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    actor: str
    at: dt.datetime
    old_status: str
    new_status: str
    note: str


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident; ``history`` lists its status changes, oldest first."""

    id: int
    title: str
    severity: Severity
    model_name: str | None
    status: str
    details: dict[str, Any]
    opened_at: dt.datetime
    updated_at: dt.datetime
    history: tuple[IncidentUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as the store describes it: never its secret nor the secret's hash.

    ``expires_at`` is None for a key that never expires, ``revoked_at`` None for one still valid.
    """

    id: str
    name: str
    scopes: frozenset[str]
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def allows(self, scope: str) -> bool:
        """Whether the key grants ``scope`` (``admin`` grants every scope)."""
        return scope in self.scopes or "admin" in self.scopes

    def is_active(self, now: dt.datetime) -> bool:
        """Not revoked and not expired at ``now`` (an aware datetime)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def __repr__(self) -> str:
        # Written out so that nothing added later to the record can leak into logs by accident.
        expires = None if self.expires_at is None else self.expires_at.isoformat()
        revoked = None if self.revoked_at is None else self.revoked_at.isoformat()
        return (
            f"KeyInfo(id={self.id!r}, name={self.name!r}, scopes={sorted(self.scopes)!r}, "
            f"expires_at={expires!r}, revoked_at={revoked!r})"
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit log: ``hash = SHA-256(prev_hash || canonical JSON of the entry)``.

    ``seq`` counts from 1 within the chain of one ``worker``; the first entry's ``prev_hash`` is 64 zeros.
    """

    worker: str
    seq: int
    time: dt.datetime
    kind: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
