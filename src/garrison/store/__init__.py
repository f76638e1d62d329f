"""Persistence: audits, findings across audits, the triage mirror, model versions, events, incidents, and for the
inference service its API keys (:class:`KeyRing`) and tamper-evident audit log (:class:`AuditLog`, written ahead through
:class:`AuditJournal`).

SQLAlchemy 2 with migrations (Alembic) shipped inside the package: a SQLite file by default
(:func:`default_url`), or any SQLAlchemy URL such as ``postgresql+psycopg://...``.
"""

from garrison.store.auditlog import (
    GENESIS_HASH,
    PROBLEM_KINDS,
    AuditLog,
    ChainHead,
    LogProblem,
    LogVerification,
    SignedHead,
    load_heads,
    load_private_key,
    load_public_key,
    payload_digest,
    sign_head,
    verify_head,
    verify_log,
)
from garrison.store.journal import AuditJournal, recover_journal
from garrison.store.keys import KeyRing
from garrison.store.records import (
    INCIDENT_STATUSES,
    KEY_SCOPES,
    AuditEntry,
    AuditSummary,
    EventRecord,
    FindingSummary,
    IncidentRecord,
    IncidentUpdate,
    KeyInfo,
    ModelVersionRecord,
    TriageEvent,
)
from garrison.store.store import DEFAULT_DB_PATH, MIN_PREFIX_LENGTH, Store, default_url

__all__ = [
    "DEFAULT_DB_PATH",
    "GENESIS_HASH",
    "INCIDENT_STATUSES",
    "KEY_SCOPES",
    "MIN_PREFIX_LENGTH",
    "PROBLEM_KINDS",
    "AuditEntry",
    "AuditJournal",
    "AuditLog",
    "AuditSummary",
    "ChainHead",
    "EventRecord",
    "FindingSummary",
    "IncidentRecord",
    "IncidentUpdate",
    "KeyInfo",
    "KeyRing",
    "LogProblem",
    "LogVerification",
    "ModelVersionRecord",
    "SignedHead",
    "Store",
    "TriageEvent",
    "default_url",
    "load_heads",
    "load_private_key",
    "load_public_key",
    "payload_digest",
    "recover_journal",
    "sign_head",
    "verify_head",
    "verify_log",
]
