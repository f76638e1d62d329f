"""The store: audits, findings across audits, the triage mirror, model versions, events, incidents, the API keys of
the inference service and its audit log (``auditlog.py``).

Any SQLAlchemy URL works; the default is a SQLite file in ``.garrison/``. Errors are :class:`StoreError` with one
line that never contains the URL's password.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic.util import CommandError
from sqlalchemy import URL, Engine, and_, case, create_engine, event, func, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, defer, sessionmaker

from garrison.core import (
    Finding,
    MissingDependencyError,
    Report,
    Severity,
    Stage,
    StoreError,
    Triage,
    TriageEntry,
    TriageStatus,
    Verdict,
)
from garrison.store import migration
from garrison.store.keys import hash_secret, is_key_id, new_secret
from garrison.store.models import (
    ApiKeyRow,
    AuditRow,
    EventRow,
    FindingRow,
    IncidentRow,
    IncidentUpdateRow,
    ModelVersionRow,
    TriageEntryRow,
    TriageEventRow,
)
from garrison.store.records import (
    INCIDENT_STATUSES,
    KEY_SCOPES,
    AuditSummary,
    EventRecord,
    FindingSummary,
    IncidentRecord,
    IncidentUpdate,
    KeyInfo,
    ModelVersionRecord,
    TriageEvent,
)

__all__ = ["DEFAULT_DB_PATH", "MIN_PREFIX_LENGTH", "Store", "default_url"]

DEFAULT_DB_PATH = Path(".garrison/garrison.db")
MIN_PREFIX_LENGTH = 6
_HEX = frozenset("0123456789abcdef")
_CHUNK = 500  # bound parameters per IN (...) clause


def default_url(root: Path = Path(".")) -> str:
    """The SQLite URL of the store of the project at ``root``: ``sqlite:///<root>/.garrison/garrison.db``."""
    return f"sqlite:///{(Path(root) / DEFAULT_DB_PATH).as_posix()}"


class Store:
    """Garrison's persistence. ``Store.open(url)`` migrates the schema and returns a ready store."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        self.url = url
        self.durable = durable
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @classmethod
    def open(cls, url: str, *, durable: bool = True) -> Self:
        """Connect, create the SQLite file's folder, bring the schema to the latest migration.

        ``durable`` (SQLite): every commit is synced to disk (``synchronous=FULL``, survives a power cut);
        without it commits reach the OS and survive a killed process but not a power cut or kernel crash
        (``synchronous=NORMAL``, about 10× cheaper per commit: what the guarded service uses by default).
        """
        store = cls(url, durable=durable)
        store._start()
        return store

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._sessions = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, fit for messages and logs."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<invalid database URL>"

    # ----------------------------------------------------------------------------------------------- audits

    def record_audit(self, report: Report) -> int:
        """Store a report and update every finding it contains (by fingerprint); returns the audit id."""
        run = report.run
        started = _parse_time(run.started_at, "run.started_at")
        finished = _parse_time(run.finished_at, "run.finished_at")
        document = _as_json(report.to_dict(), "report")
        findings = _unique_findings(report.findings)
        if report.decision is not None:
            counts = report.decision.counts()
        else:
            counts = {s.value: 0 for s in reversed(Severity)}
            for f in findings:
                counts[f.severity.value] += 1
        with self._session() as s:
            audit = AuditRow(
                project=run.project,
                model_name=run.model_name,
                started_at=started,
                finished_at=finished,
                recorded_at=_now(),
                seed=run.seed,
                garrison_version=run.garrison_version,
                schema_version=report.schema_version,
                verdict=None if report.decision is None else report.decision.verdict.value,
                exit_code=None if report.decision is None else int(report.decision.exit_code),
                finding_count=len(findings),
                counts=counts,
                report=document,
            )
            s.add(audit)
            s.flush()
            existing: dict[str, FindingRow] = {}
            for chunk in _chunks([f.fingerprint for f in findings]):
                existing.update(
                    (r.fingerprint, r)
                    for r in s.scalars(select(FindingRow).where(FindingRow.fingerprint.in_(chunk)))
                )
            for f in findings:
                _upsert_finding(s, existing.get(f.fingerprint), f, audit, started)
            return audit.id

    def list_audits(
        self,
        *,
        project: str | None = None,
        model_name: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> list[AuditSummary]:
        """Recorded audits, newest first (by the run's start time).

        ``before``: only the audits that come before the audit of that id in this order (none when it does not
        exist), so ``list_audits(model_name=m, before=i, limit=1)`` is the audit of ``m`` preceding ``i``.
        """
        if limit < 1:
            raise StoreError(f"`limit` must be >= 1, got {limit}")
        query = (
            select(AuditRow)
            .options(defer(AuditRow.report))
            .order_by(AuditRow.started_at.desc(), AuditRow.id.desc())
            .limit(limit)
        )
        if project is not None:
            query = query.where(AuditRow.project == project)
        if model_name is not None:
            query = query.where(AuditRow.model_name == model_name)
        if before is not None:
            pivot = select(AuditRow.started_at).where(AuditRow.id == before).scalar_subquery()
            query = query.where(
                or_(AuditRow.started_at < pivot, and_(AuditRow.started_at == pivot, AuditRow.id < before))
            )
        with self._session() as s:
            return [_audit_summary(r) for r in s.scalars(query)]

    def recent_audits(self, *, per_model: int = 12) -> list[AuditSummary]:
        """The newest ``per_model`` audits of every (project, model name), in one query.

        Ordered by model name, project, then newest first: what an overview of all models needs, at a cost that
        grows with the number of models, not of audits.
        """
        if per_model < 1:
            raise StoreError(f"`per_model` must be >= 1, got {per_model}")
        rank = _audit_rank()
        ranked = select(AuditRow.id, rank).subquery()
        query = (
            select(AuditRow)
            .options(defer(AuditRow.report))
            .join(ranked, ranked.c.id == AuditRow.id)
            .where(ranked.c.rank <= per_model)
            .order_by(AuditRow.model_name, AuditRow.project, ranked.c.rank)
        )
        with self._session() as s:
            return [_audit_summary(r) for r in s.scalars(query)]

    def get_audit(self, audit_id: int) -> Report:
        """The report of an audit, exactly as recorded."""
        with self._session() as s:
            row = s.get(AuditRow, audit_id)
            if row is None:
                raise StoreError(f"no audit with id {audit_id}")
            document = row.report
        return Report.from_dict(document)

    def latest_audit(
        self, *, project: str | None = None, model_name: str | None = None
    ) -> AuditSummary | None:
        audits = self.list_audits(project=project, model_name=model_name, limit=1)
        return audits[0] if audits else None

    # --------------------------------------------------------------------------------------------- findings

    def list_findings(
        self,
        *,
        status: TriageStatus | None = None,
        min_severity: Severity | None = None,
        project: str | None = None,
        model_name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[FindingSummary]:
        """Every finding ever recorded, most severe first, with its triage (``open`` when not triaged).

        ``offset`` and ``limit`` page through that order in the database: ``list_findings(offset=50, limit=50)``
        is the second page of 50, read without loading the others.
        """
        _check_page(offset, limit)
        filters = _findings_filters(status, min_severity, project, model_name)
        order = _finding_sql_order(self._dialect())
        joined = select(FindingRow, TriageEntryRow).outerjoin(
            TriageEntryRow, TriageEntryRow.fingerprint == FindingRow.fingerprint
        )
        with self._session() as s:
            latest = _latest_audit_ids(s)
            if offset == 0 and limit is None:
                rows = s.execute(joined.where(*filters).order_by(*order)).all()
                return [_finding_summary(f, t, latest) for f, t in rows]
            # A page: first the ids, sorted on the narrow index ix_findings_order without touching the rows,
            # then those rows only.
            ids = list(
                s.scalars(select(FindingRow.id).where(*filters).order_by(*order).offset(offset).limit(limit))
            )
            found = {f.id: (f, t) for f, t in s.execute(joined.where(FindingRow.id.in_(ids)))} if ids else {}
            return [_finding_summary(*found[i], latest) for i in ids]

    def count_findings(
        self,
        *,
        status: TriageStatus | None = None,
        min_severity: Severity | None = None,
        project: str | None = None,
        model_name: str | None = None,
    ) -> int:
        """How many findings :meth:`list_findings` would return with the same filters (one COUNT query)."""
        query = select(func.count(FindingRow.id)).where(
            *_findings_filters(status, min_severity, project, model_name)
        )
        with self._session() as s:
            return int(s.scalar(query) or 0)

    def get_finding(self, fingerprint: str) -> FindingSummary:
        """One finding by its fingerprint or a unique prefix of it (at least 6 characters)."""
        with self._session() as s:
            full = _resolve_fingerprint(s, fingerprint, [FindingRow.fingerprint])
            if full is None:
                raise StoreError(f"no finding with fingerprint {fingerprint.strip()!r}")
            row = s.execute(
                select(FindingRow, TriageEntryRow)
                .outerjoin(TriageEntryRow, TriageEntryRow.fingerprint == FindingRow.fingerprint)
                .where(FindingRow.fingerprint == full)
            ).one()
            return _finding_summary(row[0], row[1], _latest_audit_ids(s))

    # ----------------------------------------------------------------------------------------------- triage

    def sync_triage(self, triage: Triage, *, actor: str = "file") -> int:
        """Make the mirror equal ``triage`` (the file is the source of truth); returns how many entries changed.

        Each change is recorded as a :class:`TriageEvent` by the entry's ``updated_by``, else by ``actor``.
        """
        now = _now()
        changed = 0
        with self._session() as s:
            rows = {r.fingerprint: r for r in s.scalars(select(TriageEntryRow))}
            for entry in triage:
                values = _entry_values(entry)
                row = rows.pop(entry.fingerprint, None)
                if row is None:
                    s.add(TriageEntryRow(fingerprint=entry.fingerprint, synced_at=now, **values))
                    old = None
                elif _row_values(row) != values:
                    old = row.status
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.synced_at = now
                else:
                    continue
                s.add(
                    TriageEventRow(
                        fingerprint=entry.fingerprint,
                        actor=entry.updated_by or actor,
                        at=now,
                        old_status=old,
                        new_status=entry.status.value,
                        reason=entry.reason,
                    )
                )
                changed += 1
            for fingerprint, row in rows.items():
                s.delete(row)
                s.add(
                    TriageEventRow(
                        fingerprint=fingerprint, actor=actor, at=now, old_status=row.status, new_status=None
                    )
                )
                changed += 1
        return changed

    def triage_history(self, fingerprint: str) -> list[TriageEvent]:
        """Every recorded triage change of a finding (fingerprint or unique prefix), oldest first."""
        with self._session() as s:
            full = _resolve_fingerprint(
                s,
                fingerprint,
                [TriageEventRow.fingerprint, FindingRow.fingerprint, TriageEntryRow.fingerprint],
            )
            if full is None:
                return []
            rows = s.scalars(
                select(TriageEventRow)
                .where(TriageEventRow.fingerprint == full)
                .order_by(TriageEventRow.at, TriageEventRow.id)
            )
            return [
                TriageEvent(
                    fingerprint=r.fingerprint,
                    actor=r.actor,
                    at=r.at,
                    old_status=None if r.old_status is None else TriageStatus(r.old_status),
                    new_status=None if r.new_status is None else TriageStatus(r.new_status),
                    reason=r.reason,
                )
                for r in rows
            ]

    # ---------------------------------------------------------------------------------------- model versions

    def add_model_version(
        self,
        *,
        model_name: str,
        version: str,
        sha256: str,
        uri: str,
        signature_status: str = "unsigned",
        audit_id: int | None = None,
    ) -> int:
        """Register a version of a model (not serving until :meth:`set_serving`); returns its id."""
        with self._session() as s:
            if s.scalar(_version_query(model_name, version)) is not None:
                raise StoreError(f"model {model_name!r} already has a version {version!r}")
            if audit_id is not None and s.get(AuditRow, audit_id) is None:
                raise StoreError(f"no audit with id {audit_id}")
            row = ModelVersionRow(
                model_name=model_name,
                version=version,
                sha256=sha256,
                uri=uri,
                signature_status=signature_status,
                audit_id=audit_id,
                serving=False,
                created_at=_now(),
            )
            s.add(row)
            s.flush()
            return row.id

    def list_model_versions(self, model_name: str) -> list[ModelVersionRecord]:
        """The versions of a model, oldest first."""
        query = (
            select(ModelVersionRow)
            .where(ModelVersionRow.model_name == model_name)
            .order_by(ModelVersionRow.created_at, ModelVersionRow.id)
        )
        with self._session() as s:
            return [_version_record(r) for r in s.scalars(query)]

    def count_model_versions(self) -> dict[str, int]:
        """How many versions each model has, by model name (one GROUP BY query)."""
        query = select(ModelVersionRow.model_name, func.count(ModelVersionRow.id)).group_by(
            ModelVersionRow.model_name
        )
        with self._session() as s:
            return {name: int(n) for name, n in s.execute(query)}

    def serving_versions(self) -> dict[str, ModelVersionRecord]:
        """The serving version of every model that has one, by model name (one query)."""
        query = select(ModelVersionRow).where(ModelVersionRow.serving.is_(True))
        with self._session() as s:
            return {r.model_name: _version_record(r) for r in s.scalars(query)}

    def set_serving(self, model_name: str, version: str) -> None:
        """Make ``version`` the one serving version of ``model_name``."""
        with self._session() as s:
            row = s.scalar(_version_query(model_name, version))
            if row is None:
                raise StoreError(f"model {model_name!r} has no version {version!r}")
            # Two statements, in this order: the unique index allows one serving row per model at any time.
            s.execute(
                update(ModelVersionRow)
                .where(ModelVersionRow.model_name == model_name, ModelVersionRow.serving.is_(True))
                .values(serving=False)
            )
            s.execute(update(ModelVersionRow).where(ModelVersionRow.id == row.id).values(serving=True))

    # ------------------------------------------------------------------------------------------------ events

    def add_event(self, *, kind: str, source: str, payload: dict[str, Any]) -> int:
        document = _as_json(payload, "event payload")
        with self._session() as s:
            row = EventRow(kind=kind, source=source, payload=document, created_at=_now())
            s.add(row)
            s.flush()
            return row.id

    def list_events(self, *, kind: str | None = None, limit: int = 100) -> list[EventRecord]:
        """Events, newest first."""
        if limit < 1:
            raise StoreError(f"`limit` must be >= 1, got {limit}")
        query = select(EventRow).order_by(EventRow.created_at.desc(), EventRow.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(EventRow.kind == kind)
        with self._session() as s:
            return [EventRecord(r.id, r.kind, r.source, r.payload, r.created_at) for r in s.scalars(query)]

    # --------------------------------------------------------------------------------------------- incidents

    def open_incident(
        self, *, title: str, severity: Severity, model_name: str | None, details: dict[str, Any]
    ) -> int:
        document = _as_json(details, "incident details")
        now = _now()
        with self._session() as s:
            row = IncidentRow(
                title=title,
                severity=Severity(severity).value,
                model_name=model_name,
                status=INCIDENT_STATUSES[0],
                details=document,
                opened_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            return row.id

    def incident_status(self, incident_id: int) -> str | None:
        """The status of one incident (``None`` when there is no such incident): one primary-key lookup."""
        with self._session() as s:
            return s.scalar(select(IncidentRow.status).where(IncidentRow.id == incident_id))

    def list_incidents(
        self, *, status: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[IncidentRecord]:
        """Incidents, newest first, each with its history of status changes.

        ``offset`` and ``limit`` page through that order in the database.
        """
        _check_page(offset, limit)
        query = select(IncidentRow).order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
        if status is not None:
            query = query.where(IncidentRow.status == _incident_status(status))
        query = query.offset(offset or None).limit(limit)
        with self._session() as s:
            return _incident_records(s, list(s.scalars(query)))

    def count_incidents(self, *, status: str | None = None) -> int:
        """How many incidents :meth:`list_incidents` would return with the same filter (one COUNT query)."""
        query = select(func.count(IncidentRow.id))
        if status is not None:
            query = query.where(IncidentRow.status == _incident_status(status))
        with self._session() as s:
            return int(s.scalar(query) or 0)

    def get_incident(self, incident_id: int) -> IncidentRecord:
        """One incident with its history; :class:`StoreError` when there is no such incident."""
        with self._session() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise StoreError(f"no incident with id {incident_id}")
            return _incident_records(s, [row])[0]

    def update_incident(self, incident_id: int, *, status: str, actor: str, note: str = "") -> None:
        """Move an incident to ``status`` (one of ``INCIDENT_STATUSES``), recording who did it and why."""
        new_status = _incident_status(status)
        now = _now()
        with self._session() as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise StoreError(f"no incident with id {incident_id}")
            s.add(
                IncidentUpdateRow(
                    incident_id=row.id,
                    actor=actor,
                    at=now,
                    old_status=row.status,
                    new_status=new_status,
                    note=note,
                )
            )
            row.status = new_status
            row.updated_at = now

    # ---------------------------------------------------------------------------------------------- API keys

    def create_key(
        self, name: str, scopes: Iterable[str], *, expires: dt.datetime | dt.date | None = None
    ) -> tuple[str, str]:
        """Create an API key; returns ``(key_id, secret)``. The secret is not kept: show it once, now.

        ``scopes`` are among ``KEY_SCOPES``; ``expires`` is an aware datetime, or a date (the key stops working at
        its start, UTC).
        """
        name = name.strip()
        if not name or len(name) > 200:
            raise StoreError(f"`name` must be 1 to 200 characters, got {len(name)}")
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in KEY_SCOPES]
        if not wanted or unknown:
            raise StoreError(
                f"`scopes` must be one or more of {', '.join(KEY_SCOPES)}, got {', '.join(wanted) or 'none'}"
            )
        now = _now()
        expires_at = _expiry(expires)
        if expires_at is not None and expires_at <= now:
            raise StoreError(f"`expires` must be in the future, got {expires_at.isoformat()}")
        key_id, secret = new_secret()
        with self._session() as s:
            s.add(
                ApiKeyRow(
                    id=key_id,
                    name=name,
                    scopes=",".join(wanted),
                    secret_hash=hash_secret(secret),
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
        return key_id, secret

    def list_keys(self, *, include_revoked: bool = True) -> list[KeyInfo]:
        """The API keys, oldest first: never their secrets nor the secrets' hashes."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with self._session() as s:
            return [_key_info(r) for r in s.scalars(query)]

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke a key (at once in the store; a running service refuses it after its ring reloads).

        Revoking a revoked key changes nothing. Returns the key as it now is.
        """
        wanted = key_id.strip()
        if not is_key_id(wanted):  # never echo it: it may be a secret pasted by mistake
            raise StoreError("not an API key id: expected 16 hexadecimal digits (see `garrison keys list`)")
        with self._session() as s:
            row = s.get(ApiKeyRow, wanted)
            if row is None:
                raise StoreError(f"no API key with id {wanted!r}")
            if row.revoked_at is None:
                row.revoked_at = _now()
            return _key_info(row)

    def _key_hashes(self) -> list[tuple[KeyInfo, str]]:
        """Every key not revoked, with the hash of its secret: for :class:`garrison.store.KeyRing` only."""
        with self._session() as s:
            rows = s.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
            return [(_key_info(r), r.secret_hash) for r in rows]

    # -------------------------------------------------------------------------------------------- machinery

    def _start(self) -> None:
        url = _parse_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {folder} of the store: {exc.strerror}") from None
        engine = _create_engine(url, durable=self.durable)
        try:
            migration.upgrade(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the store at {self.safe_url}: {_describe(exc, url)}") from None
        except CommandError as exc:  # e.g. the database's schema is newer than this Garrison
            engine.dispose()
            raise StoreError(f"cannot migrate the store at {self.safe_url}: {_describe(exc, url)}") from None
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _dialect(self) -> str:
        if self._engine is None:
            raise StoreError("the store is not open: use Store.open(url)")
        return self._engine.dialect.name

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._sessions is None:
            raise StoreError("the store is not open: use Store.open(url)")
        try:
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(f"store error at {self.safe_url}: {_describe(exc, make_url(self.url))}") from exc

    # ---------------------------------------------------------------------------------------- finding comments

    def list_finding_comments(self, fingerprint: str) -> list[EventRecord]:
        """The ``finding.comment`` events of one finding (its full fingerprint), oldest first.

        Filtering on a JSON field is not portable SQL, so this reads the newest 1,000 ``finding.comment`` events
        and keeps those whose payload names ``fingerprint``: older comments beyond that window are not returned.
        """
        events = self.list_events(kind="finding.comment", limit=1000)
        return [e for e in reversed(events) if e.payload.get("fingerprint") == fingerprint]


# -------------------------------------------------------------------------------------------------- engine


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        # The parser's message may quote the URL, password included: say nothing of it.
        raise StoreError(
            "invalid database URL: expected e.g. sqlite:///.garrison/garrison.db or "
            "postgresql+psycopg://user:password@host:5432/database"
        ) from None


def _create_engine(url: URL, *, durable: bool = True) -> Engine:
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    try:
        engine = create_engine(url, json_serializer=_dumps, connect_args=connect_args)
    except NoSuchModuleError:
        raise StoreError(f"unsupported database URL scheme {url.drivername!r}") from None
    except ImportError as exc:
        if (exc.name or "").startswith("psycopg"):
            raise MissingDependencyError(exc.name or "psycopg", extra="postgres") from None
        raise StoreError(f"the database driver for {url.drivername!r} is not installed: {exc.name}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas if durable else _sqlite_pragmas_fast)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Foreign keys on; write-ahead log with ``synchronous=FULL``.

    WAL lets the service's workers read while one writes. FULL syncs the WAL to disk at every commit, so a
    committed audit-log entry survives not only a killed process (NORMAL would too: the WAL is in the OS's page
    cache) but also a power cut or kernel crash, which NORMAL may lose the last commits to. The service acknowledges
    a request only once its entry is committed, so it takes the safe setting (one fsync per commit).
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # ignored (stays "memory") for an in-memory database
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_pragmas_fast(dbapi_connection: Any, _record: Any) -> None:
    """As :func:`_sqlite_pragmas` with ``synchronous=NORMAL``: commits survive a killed process, not a power cut."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _describe(exc: BaseException, url: URL) -> str:
    """The first line of the driver's message, with the URL's password masked should the driver echo it."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else type(cause).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _as_json(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A plain-JSON copy of ``value`` (tuples become lists), refusing what JSON cannot hold."""
    try:
        return json.loads(_dumps(value))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"the {what} cannot be stored as JSON: {exc}") from None


# ------------------------------------------------------------------------------------------------- helpers


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse_time(text: str, field: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise StoreError(f"report {field} is not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _expiry(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise StoreError(f"`expires` must be an aware datetime, got the naive {value.isoformat()}")
        return value.astimezone(dt.UTC)
    return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


def _key_info(r: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        id=r.id,
        name=r.name,
        scopes=frozenset(r.scopes.split(",")),
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
    )


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _unique_findings(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per fingerprint: the first in report order, which is the most severe."""
    seen: dict[str, Finding] = {}
    for f in sorted(findings, key=Finding.sort_key):
        seen.setdefault(f.fingerprint, f)
    return list(seen.values())


# PostgreSQL refuses a B-tree entry over 2704 bytes, and the findings list is indexed by location (with rule id,
# fingerprint, severity and stage, under 300 bytes): the findings table keeps a location's first 1 KiB. A crafted
# archive member name must not make an audit unrecordable; the audit's own report keeps the location whole.
MAX_LOCATION_BYTES = 1024
_CUT = "…"


def bounded_location(location: str | None) -> str | None:
    """``location`` when it fits in :data:`MAX_LOCATION_BYTES` of UTF-8, else its longest prefix that does with
    ``…`` appended (cut between characters)."""
    if location is None:
        return None
    if len(location.encode("utf-8", "surrogatepass")) <= MAX_LOCATION_BYTES:
        return location
    room, end = MAX_LOCATION_BYTES - len(_CUT.encode()), 0
    for end, char in enumerate(location):  # noqa: B007 — `end` is the first character that does not fit
        room -= len(char.encode("utf-8", "surrogatepass"))
        if room < 0:
            break
    return location[:end] + _CUT


def _finding_details(f: Finding, audit: AuditRow) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": f.severity.value,
        "stage": f.stage.value,
        "subject_kind": f.subject.kind.value,
        "subject_name": f.subject.name,
        "location": bounded_location(f.location),
        "message": f.message,
        "project": audit.project,
        "model_name": audit.model_name,
    }


def _upsert_finding(
    s: Session, row: FindingRow | None, f: Finding, audit: AuditRow, seen: dt.datetime
) -> None:
    details = _finding_details(f, audit)
    if row is None:
        s.add(
            FindingRow(
                fingerprint=f.fingerprint,
                first_audit_id=audit.id,
                last_audit_id=audit.id,
                first_seen_at=seen,
                last_seen_at=seen,
                times_seen=1,
                **details,
            )
        )
        return
    row.times_seen += 1
    # Reports may be recorded out of order: first/last follow the runs' times, not the order of recording.
    if seen < row.first_seen_at:
        row.first_audit_id, row.first_seen_at = audit.id, seen
    if seen >= row.last_seen_at:
        row.last_audit_id, row.last_seen_at = audit.id, seen
        for key, value in details.items():
            setattr(row, key, value)


def _audit_rank() -> Any:
    """Each audit's rank among those of its (project, model name), newest first (1: the latest)."""
    return (
        func.row_number()
        .over(
            partition_by=(AuditRow.project, AuditRow.model_name),
            order_by=(AuditRow.started_at.desc(), AuditRow.id.desc()),
        )
        .label("rank")
    )


def _latest_audit_ids(s: Session) -> dict[tuple[str, str], int]:
    """The id of the newest audit of each (project, model name)."""
    rank = _audit_rank()
    ranked = select(AuditRow.project, AuditRow.model_name, AuditRow.id, rank).subquery()
    rows = s.execute(select(ranked.c.project, ranked.c.model_name, ranked.c.id).where(ranked.c.rank == 1))
    return {(p, m): i for p, m, i in rows}


def _resolve_fingerprint(s: Session, text: str, columns: list[Any]) -> str | None:
    """The full fingerprint that ``text`` names in any of ``columns``: itself, or the one it is a prefix of.

    None when nothing matches; StoreError when a prefix is too short or matches several fingerprints.
    """
    wanted = text.strip()
    for column in columns:
        if s.scalar(select(column).where(column == wanted).limit(1)) is not None:
            return wanted
    prefix = wanted.lower()
    if not prefix or not set(prefix) <= _HEX:
        raise StoreError(f"not a finding fingerprint: {wanted!r} (expected hexadecimal digits)")
    if len(prefix) < MIN_PREFIX_LENGTH:
        raise StoreError(
            f"fingerprint prefix {prefix!r} is too short: give at least {MIN_PREFIX_LENGTH} characters"
        )
    matches: set[str] = set()
    for column in columns:
        matches.update(
            s.scalars(select(column).where(column.startswith(prefix, autoescape=True)).distinct().limit(2))
        )
    if len(matches) > 1:
        raise StoreError(f"fingerprint prefix {prefix!r} is ambiguous: it matches several findings")
    return matches.pop() if matches else None


def _audit_summary(r: AuditRow) -> AuditSummary:
    return AuditSummary(
        id=r.id,
        project=r.project,
        model_name=r.model_name,
        started_at=r.started_at,
        finished_at=r.finished_at,
        recorded_at=r.recorded_at,
        seed=r.seed,
        garrison_version=r.garrison_version,
        verdict=None if r.verdict is None else Verdict(r.verdict),
        exit_code=r.exit_code,
        finding_count=r.finding_count,
        counts={str(k): int(v) for k, v in r.counts.items()},
    )


def _finding_summary(
    f: FindingRow, t: TriageEntryRow | None, latest: dict[tuple[str, str], int]
) -> FindingSummary:
    return FindingSummary(
        fingerprint=f.fingerprint,
        rule_id=f.rule_id,
        title=f.title,
        severity=Severity(f.severity),
        stage=Stage(f.stage),
        subject_name=f.subject_name,
        location=f.location,
        message=f.message,
        project=f.project,
        model_name=f.model_name,
        first_seen_at=f.first_seen_at,
        last_seen_at=f.last_seen_at,
        first_audit_id=f.first_audit_id,
        last_audit_id=f.last_audit_id,
        times_seen=f.times_seen,
        in_latest_audit=latest.get((f.project, f.model_name)) == f.last_audit_id,
        triage_status=TriageStatus.OPEN if t is None else TriageStatus(t.status),
        triage_reason=None if t is None else t.reason,
        triage_owner=None if t is None else t.owner,
        triage_expires=None if t is None else t.expires,
    )


def _check_page(offset: int, limit: int | None) -> None:
    if offset < 0:
        raise StoreError(f"`offset` must be >= 0, got {offset}")
    if limit is not None and limit < 1:
        raise StoreError(f"`limit` must be >= 1, got {limit}")


def _findings_filters(
    status: TriageStatus | None, min_severity: Severity | None, project: str | None, model_name: str | None
) -> list[Any]:
    """The WHERE clauses of :meth:`Store.list_findings` on ``findings`` alone (triage through EXISTS, no join)."""
    clauses: list[Any] = []
    entry = (
        select(TriageEntryRow.id)
        .where(TriageEntryRow.fingerprint == FindingRow.fingerprint)
        .correlate_except(TriageEntryRow)
    )
    if status is TriageStatus.OPEN:  # no entry, or an entry that says open
        clauses.append(~entry.where(TriageEntryRow.status != status.value).exists())
    elif status is not None:
        clauses.append(entry.where(TriageEntryRow.status == status.value).exists())
    if min_severity is not None:
        clauses.append(FindingRow.severity.in_([s.value for s in Severity if s >= min_severity]))
    if project is not None:
        clauses.append(FindingRow.project == project)
    if model_name is not None:
        clauses.append(FindingRow.model_name == model_name)
    return clauses


def _finding_sql_order(dialect: str) -> list[Any]:
    """The order of findings: most severe first, then by stage, rule id, location (none first) and fingerprint.

    Texts compare by code point as Python's do: SQLite's default collation does; PostgreSQL needs "C".
    """

    def text_key(column: Any) -> Any:
        return column.collate("C") if dialect == "postgresql" else column

    return [
        case({s.value: -s.rank for s in Severity}, value=FindingRow.severity),
        case({s.value: s.order for s in Stage}, value=FindingRow.stage),
        text_key(FindingRow.rule_id),
        text_key(func.coalesce(FindingRow.location, "")),
        text_key(FindingRow.fingerprint),
    ]


def _version_record(r: ModelVersionRow) -> ModelVersionRecord:
    return ModelVersionRecord(
        id=r.id,
        model_name=r.model_name,
        version=r.version,
        sha256=r.sha256,
        uri=r.uri,
        signature_status=r.signature_status,
        audit_id=r.audit_id,
        serving=r.serving,
        created_at=r.created_at,
    )


def _incident_records(s: Session, incidents: list[IncidentRow]) -> list[IncidentRecord]:
    """Records of ``incidents``, in their order, each with its status changes oldest first."""
    history: dict[int, list[IncidentUpdate]] = {i.id: [] for i in incidents}
    for chunk in _chunks(list(history)):
        updates = s.scalars(
            select(IncidentUpdateRow)
            .where(IncidentUpdateRow.incident_id.in_(chunk))
            .order_by(IncidentUpdateRow.at, IncidentUpdateRow.id)
        )
        for u in updates:
            history[u.incident_id].append(IncidentUpdate(u.actor, u.at, u.old_status, u.new_status, u.note))
    return [
        IncidentRecord(
            id=i.id,
            title=i.title,
            severity=Severity(i.severity),
            model_name=i.model_name,
            status=i.status,
            details=i.details,
            opened_at=i.opened_at,
            updated_at=i.updated_at,
            history=tuple(history[i.id]),
        )
        for i in incidents
    ]


_ENTRY_FIELDS = ("status", "reason", "owner", "expires", "rule_id", "title", "updated_by", "updated_at")


def _entry_values(entry: TriageEntry) -> dict[str, Any]:
    values = {key: getattr(entry, key) for key in _ENTRY_FIELDS}
    values["status"] = entry.status.value
    return values


def _row_values(row: TriageEntryRow) -> dict[str, Any]:
    return {key: getattr(row, key) for key in _ENTRY_FIELDS}


def _version_query(model_name: str, version: str) -> Any:
    return select(ModelVersionRow).where(
        ModelVersionRow.model_name == model_name, ModelVersionRow.version == version
    )


def _incident_status(status: str) -> str:
    if status not in INCIDENT_STATUSES:
        raise StoreError(f"incident status must be one of {', '.join(INCIDENT_STATUSES)}, got {status!r}")
    return status
