"""The ORM schema of the store. Private to ``garrison.store``: callers get the frozen records of ``records.py``.

The migrations in ``migrations/versions``, applied in order, create exactly these tables; a test checks that the two
agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ApiKeyRow",
    "AuditLogRow",
    "AuditRow",
    "Base",
    "EventRow",
    "FindingRow",
    "IncidentRow",
    "IncidentUpdateRow",
    "ModelVersionRow",
    "TriageEntryRow",
    "TriageEventRow",
    "UTCDateTime",
    "UiSessionRow",
    "UserRow",
]

# Named constraints, so that later migrations can alter them on every backend (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that goes in as any aware datetime and always comes out aware, in UTC.

    PostgreSQL keeps the zone (``timestamp with time zone``); SQLite has none, so it stores naive UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given for a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class AuditRow(Base):
    """One recorded audit run: metadata, verdict and the canonical report JSON."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    seed: Mapped[int]
    garrison_version: Mapped[str] = mapped_column(String(50))
    schema_version: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[str | None] = mapped_column(String(20))
    exit_code: Mapped[int | None]
    finding_count: Mapped[int]
    counts: Mapped[dict[str, Any]]
    report: Mapped[dict[str, Any]]


class FindingRow(Base):
    """A finding across audits, keyed by fingerprint; its details are those of the latest audit that saw it."""

    __tablename__ = "findings"
    # The columns that order the findings list (severity, stage, rule, location, fingerprint): a page of it is
    # sorted on this narrow index instead of the table's rows (see ``Store.list_findings``).
    __table_args__ = (Index("ix_findings_order", "severity", "stage", "rule_id", "location", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(20))
    subject_kind: Mapped[str] = mapped_column(String(20))
    subject_name: Mapped[str] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    project: Mapped[str] = mapped_column(String(200), index=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    first_audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id"))
    last_audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id"))
    first_seen_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    times_seen: Mapped[int]


class TriageEntryRow(Base):
    """The mirror of one entry of ``.garrison/triage.yaml``."""

    __tablename__ = "triage_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))
    expires: Mapped[dt.date | None] = mapped_column(Date)
    rule_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[str | None] = mapped_column(String(50))
    synced_at: Mapped[dt.datetime]


class TriageEventRow(Base):
    """A change of a triage entry, as seen when the mirror was synced."""

    __tablename__ = "triage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime]
    old_status: Mapped[str | None] = mapped_column(String(20))
    new_status: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_name", "version"),
        # At most one serving version per model, enforced by the database on both backends.
        Index(
            "ix_model_versions_one_serving",
            "model_name",
            unique=True,
            sqlite_where=text("serving"),
            postgresql_where=text("serving"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    uri: Mapped[str] = mapped_column(Text)
    signature_status: Mapped[str] = mapped_column(String(20))
    audit_id: Mapped[int | None] = mapped_column(ForeignKey("audits.id"))
    serving: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    # the incidents list is newest first: a page of it reads this index instead of sorting the table
    __table_args__ = (Index("ix_incidents_opened", "opened_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(20))
    model_name: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    details: Mapped[dict[str, Any]]
    opened_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class IncidentUpdateRow(Base):
    __tablename__ = "incident_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime]
    old_status: Mapped[str] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text)


class ApiKeyRow(Base):
    """An API key of the inference service: only a hash of its secret is kept (see ``keys.py``)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200))  # sorted, comma-separated
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class AuditLogRow(Base):
    """One entry of the tamper-evident audit log: a hash chain per worker (see ``auditlog.py``)."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("worker", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    worker: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int]
    time: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class UserRow(Base):
    """A user of the team dashboard: a role and an Argon2id hash of the password (see ``users.py``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    disabled: Mapped[bool] = mapped_column(Boolean)


class UiSessionRow(Base):
    """A signed-in dashboard session: only the SHA-256 of its cookie token is kept."""

    __tablename__ = "ui_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
