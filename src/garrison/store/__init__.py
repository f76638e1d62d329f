"""Persistence: audits, findings across audits, the triage mirror, model versions, events and incidents.

SQLAlchemy 2 with migrations (Alembic) shipped inside the package: a SQLite file by default
(:func:`default_url`), or any SQLAlchemy URL such as ``postgresql+psycopg://...``.
"""

from garrison.store.records import (
    INCIDENT_STATUSES,
    AuditSummary,
    EventRecord,
    FindingSummary,
    IncidentRecord,
    IncidentUpdate,
    ModelVersionRecord,
    TriageEvent,
)
from garrison.store.store import DEFAULT_DB_PATH, MIN_PREFIX_LENGTH, Store, default_url

__all__ = [
    "DEFAULT_DB_PATH",
    "INCIDENT_STATUSES",
    "MIN_PREFIX_LENGTH",
    "AuditSummary",
    "EventRecord",
    "FindingSummary",
    "IncidentRecord",
    "IncidentUpdate",
    "ModelVersionRecord",
    "Store",
    "TriageEvent",
    "default_url",
]
