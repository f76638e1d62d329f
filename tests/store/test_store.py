"""The store, on SQLite and on PostgreSQL (see conftest.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from garrison.core import (
    CheckResult,
    Decision,
    Evidence,
    Finding,
    Metric,
    Report,
    RunInfo,
    Severity,
    Stage,
    StoreError,
    Subject,
    SubjectKind,
    Triage,
    TriageEntry,
    TriageStatus,
    Verdict,
    fingerprint_of,
)
from garrison.store import DEFAULT_DB_PATH, Store, default_url

UTC = dt.UTC
T1 = "2026-03-01T10:00:00+00:00"
T2 = "2026-03-08T10:00:00+00:00"


def finding(
    rule_id: str,
    location: str,
    *,
    severity: Severity = Severity.HIGH,
    message: str = "the model misbehaves",
    subject_name: str = "credit-model",
) -> Finding:
    return Finding(
        rule_id=rule_id,
        title=f"title of {rule_id}",
        severity=severity,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, subject_name, uri="models/credit.skops", sha256="ab" * 32),
        message=message,
        location=location,
        check_id="fuzzing",
    )


def report(
    findings: list[Finding],
    *,
    started: str = T1,
    project: str = "credit",
    model_name: str = "credit-model",
    evaluated: bool = True,
) -> Report:
    run = RunInfo(
        project=project,
        started_at=started,
        finished_at=started,
        seed=7,
        garrison_version="0.1.0",
        python="3.11.9",
        platform="linux",
        config={"model": {"path": "models/credit.skops"}},
        model_name=model_name,
    )
    result = CheckResult(
        check_id="fuzzing",
        stage=Stage.MODEL,
        metrics=(Metric("crash_rate", 0.25, n=40, ci_low=0.1, ci_high=0.4),),
        findings=tuple(findings),
        duration_s=0.5,
    )
    decision = Decision(
        verdict=Verdict.FAILED if findings else Verdict.PASSED,
        fail_on=Severity.HIGH,
        findings=tuple(findings),
        blocking=tuple(f.fingerprint for f in findings if f.severity >= Severity.HIGH),
    )
    return Report(run=run, results=(result,), decision=decision if evaluated else None)


PERSISTS = finding("GAR-MD-001", "fuzz:nan", severity=Severity.MEDIUM, message="crashes on NaN")
FIXED = finding("GAR-MD-002", "fuzz:inf")
NEW = finding("GAR-MD-003", "fuzz:empty", severity=Severity.LOW)
PERSISTS_LATER = finding(
    "GAR-MD-001", "fuzz:nan", severity=Severity.CRITICAL, message="crashes on NaN, always"
)


def record_two(store: Store) -> tuple[int, int]:
    first = store.record_audit(report([PERSISTS, FIXED], started=T1))
    second = store.record_audit(report([PERSISTS_LATER, NEW], started=T2))
    return first, second


# --------------------------------------------------------------------------------------------------- audits


def test_two_audits_track_first_and_last_seen(store: Store) -> None:
    a1, a2 = record_two(store)
    assert a2 != a1
    t1, t2 = dt.datetime(2026, 3, 1, 10, tzinfo=UTC), dt.datetime(2026, 3, 8, 10, tzinfo=UTC)

    persists = store.get_finding(PERSISTS.fingerprint)
    assert (persists.first_audit_id, persists.last_audit_id, persists.times_seen) == (a1, a2, 2)
    assert (persists.first_seen_at, persists.last_seen_at) == (t1, t2)
    assert persists.severity is Severity.CRITICAL  # the latest audit's details
    assert persists.message == "crashes on NaN, always"
    assert persists.in_latest_audit

    fixed = store.get_finding(FIXED.fingerprint)
    assert (fixed.first_audit_id, fixed.last_audit_id, fixed.times_seen) == (a1, a1, 1)
    assert fixed.last_seen_at == t1
    assert not fixed.in_latest_audit

    new = store.get_finding(NEW.fingerprint)
    assert (new.first_audit_id, new.last_audit_id, new.first_seen_at) == (a2, a2, t2)
    assert new.in_latest_audit
    assert (new.rule_id, new.stage, new.subject_name, new.location) == (
        "GAR-MD-003",
        Stage.MODEL,
        "credit-model",
        "fuzz:empty",
    )
    assert new.triage_status is TriageStatus.OPEN
    for f in (persists, fixed, new):
        assert f.first_seen_at.utcoffset() == dt.timedelta(0)


def test_audits_recorded_out_of_order_keep_first_and_last_by_run_time(store: Store) -> None:
    late = store.record_audit(report([PERSISTS_LATER], started=T2))
    early = store.record_audit(report([PERSISTS], started=T1))
    f = store.get_finding(PERSISTS.fingerprint)
    assert (f.first_audit_id, f.last_audit_id, f.times_seen) == (early, late, 2)
    assert f.severity is Severity.CRITICAL  # the later run's details win, whatever the recording order
    assert store.latest_audit().id == late  # type: ignore[union-attr]


def test_list_audits_newest_first_and_filtered(store: Store) -> None:
    a1, a2 = record_two(store)
    other = store.record_audit(
        report([], started="2026-02-01T00:00:00+00:00", project="fraud", model_name="fm")
    )

    summaries = store.list_audits()
    assert [s.id for s in summaries] == [a2, a1, other]
    assert [s.id for s in store.list_audits(project="credit")] == [a2, a1]
    assert [s.id for s in store.list_audits(model_name="fm")] == [other]
    assert [s.id for s in store.list_audits(limit=1)] == [a2]
    assert store.latest_audit(project="fraud").id == other  # type: ignore[union-attr]
    assert store.latest_audit(project="nope") is None

    latest = summaries[0]
    assert (latest.project, latest.model_name, latest.seed, latest.garrison_version) == (
        "credit",
        "credit-model",
        7,
        "0.1.0",
    )
    assert (latest.verdict, latest.exit_code, latest.finding_count) == (Verdict.FAILED, 1, 2)
    assert latest.counts == {"critical": 1, "high": 0, "medium": 0, "low": 1, "info": 0}
    assert latest.recorded_at.tzinfo is not None
    assert summaries[2].verdict is Verdict.PASSED
    with pytest.raises(StoreError, match="limit"):
        store.list_audits(limit=0)


def test_get_audit_returns_the_report_as_recorded(store: Store) -> None:
    r = report([PERSISTS, FIXED])
    audit_id = store.record_audit(r)
    assert store.get_audit(audit_id).to_dict() == r.to_dict()
    with pytest.raises(StoreError, match="no audit with id 999"):
        store.get_audit(999)


def test_unevaluated_report_has_no_verdict(store: Store) -> None:
    audit_id = store.record_audit(report([PERSISTS, FIXED, NEW], evaluated=False))
    summary = store.latest_audit()
    assert summary is not None
    assert summary.id == audit_id
    assert (summary.verdict, summary.exit_code) == (None, None)
    assert summary.counts == {"critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0}
    assert store.get_audit(audit_id).decision is None


def test_run_times_are_stored_in_utc(store: Store) -> None:
    store.record_audit(report([PERSISTS], started="2026-03-01T12:00:00+02:00"))
    summary = store.latest_audit()
    assert summary is not None
    assert summary.started_at == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert summary.started_at.utcoffset() == dt.timedelta(0)


def test_bad_report_is_refused_with_the_field_named(store: Store) -> None:
    with pytest.raises(StoreError, match=r"run\.started_at"):
        store.record_audit(report([PERSISTS], started="last tuesday"))
    nan_evidence = Finding(
        rule_id="GAR-DT-009",
        title="t",
        severity=Severity.LOW,
        stage=Stage.DATA,
        subject=Subject(SubjectKind.DATASET, "train"),
        message="m",
        evidence=(Evidence("ratio", math.nan),),
    )
    with pytest.raises(StoreError, match="report cannot be stored as JSON"):
        store.record_audit(report([nan_evidence]))
    assert store.list_audits() == []  # nothing half-written
    assert store.list_findings() == []


# ------------------------------------------------------------------------------------------------- findings


def test_list_findings_filters(store: Store) -> None:
    record_two(store)
    store.record_audit(report([finding("GAR-DT-001", "col:age", subject_name="train")], project="fraud"))

    everything = store.list_findings()
    assert [f.rule_id for f in everything] == ["GAR-MD-001", "GAR-DT-001", "GAR-MD-002", "GAR-MD-003"]
    assert {f.rule_id for f in store.list_findings(min_severity=Severity.HIGH)} == {
        "GAR-MD-001",
        "GAR-MD-002",
        "GAR-DT-001",
    }
    assert {f.rule_id for f in store.list_findings(project="fraud")} == {"GAR-DT-001"}
    assert {f.rule_id for f in store.list_findings(project="credit", min_severity=Severity.CRITICAL)} == {
        "GAR-MD-001"
    }
    assert len(store.list_findings(status=TriageStatus.OPEN)) == 4
    assert store.list_findings(status=TriageStatus.FIXED) == []


def test_get_finding_by_unique_prefix(store: Store) -> None:
    record_two(store)
    fp = NEW.fingerprint
    assert store.get_finding(fp[:6]).fingerprint == fp
    assert store.get_finding(fp[:10].upper()).fingerprint == fp
    assert store.get_finding(f"  {fp}\n").fingerprint == fp
    with pytest.raises(StoreError, match="at least 6"):
        store.get_finding(fp[:5])
    with pytest.raises(StoreError, match="no finding"):
        store.get_finding("f" * 32 if not fp.startswith("ffffff") else "0" * 32)
    with pytest.raises(StoreError, match="not a finding fingerprint"):
        store.get_finding("%%%%%%")


def _two_sharing_a_prefix() -> tuple[Finding, Finding]:
    seen: dict[str, str] = {}
    for i in itertools.count():
        location = f"fuzz:{i}"
        prefix = fingerprint_of("GAR-MD-009", "credit-model", location)[:6]
        if prefix in seen:
            return finding("GAR-MD-009", seen[prefix]), finding("GAR-MD-009", location)
        seen[prefix] = location
    raise AssertionError("unreachable")


def test_ambiguous_prefix_is_refused(store: Store) -> None:
    a, b = _two_sharing_a_prefix()
    store.record_audit(report([a, b]))
    with pytest.raises(StoreError, match="ambiguous"):
        store.get_finding(a.fingerprint[:6])
    assert store.get_finding(a.fingerprint).fingerprint == a.fingerprint
    longer = next(n for n in range(7, 33) if a.fingerprint[:n] != b.fingerprint[:n])
    assert store.get_finding(b.fingerprint[:longer]).fingerprint == b.fingerprint


@settings(max_examples=60, deadline=None)
@given(query=st.text(max_size=40))
def test_any_fingerprint_text_is_found_or_refused_cleanly(sqlite_store: Store, query: str) -> None:
    try:
        found = sqlite_store.get_finding(query)
    except StoreError as exc:
        message = str(exc)
    else:
        assert found.fingerprint.startswith(query.strip().lower())
        return
    assert "\n" not in message


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path_factory.mktemp('hyp')}/g.db") as s:
        record_two(s)
        yield s


# --------------------------------------------------------------------------------------------------- triage


def test_triage_sync_mirrors_the_file_and_records_history(store: Store) -> None:
    record_two(store)
    expires = dt.date(2027, 1, 31)
    triage = Triage.empty()
    triage = triage.with_entry(
        TriageEntry(
            PERSISTS.fingerprint,
            TriageStatus.ACCEPTED_RISK,
            reason="only internal callers",
            owner="bob",
            expires=expires,
        )
    )
    triage = triage.with_entry(
        TriageEntry(FIXED.fingerprint, TriageStatus.FALSE_POSITIVE, reason="scanner bug")
    )

    assert store.sync_triage(triage) == 2
    assert store.sync_triage(triage) == 0  # already equal: nothing changes, no history

    accepted = store.list_findings(status=TriageStatus.ACCEPTED_RISK)
    assert [f.fingerprint for f in accepted] == [PERSISTS.fingerprint]
    assert (accepted[0].triage_reason, accepted[0].triage_owner, accepted[0].triage_expires) == (
        "only internal callers",
        "bob",
        expires,
    )
    assert [f.fingerprint for f in store.list_findings(status=TriageStatus.OPEN)] == [NEW.fingerprint]
    assert store.get_finding(FIXED.fingerprint).triage_status is TriageStatus.FALSE_POSITIVE

    # The file changes: one entry is marked fixed by alice, another is removed.
    later = triage.without(FIXED.fingerprint).with_entry(
        TriageEntry(PERSISTS.fingerprint, TriageStatus.FIXED, reason="retrained", updated_by="alice")
    )
    assert store.sync_triage(later, actor="ci") == 2
    assert store.get_finding(FIXED.fingerprint).triage_status is TriageStatus.OPEN
    assert store.get_finding(PERSISTS.fingerprint).triage_owner is None

    history = store.triage_history(PERSISTS.fingerprint)
    assert [(e.actor, e.old_status, e.new_status, e.reason) for e in history] == [
        ("file", None, TriageStatus.ACCEPTED_RISK, "only internal callers"),
        ("alice", TriageStatus.ACCEPTED_RISK, TriageStatus.FIXED, "retrained"),
    ]
    assert history[0].at <= history[1].at
    assert history[0].at.utcoffset() == dt.timedelta(0)
    removed = store.triage_history(FIXED.fingerprint[:8])
    assert [(e.actor, e.old_status, e.new_status) for e in removed] == [
        ("file", None, TriageStatus.FALSE_POSITIVE),
        ("ci", TriageStatus.FALSE_POSITIVE, None),
    ]
    assert store.triage_history(NEW.fingerprint) == []


def test_triage_of_a_finding_not_yet_recorded(store: Store) -> None:
    fp = "0123456789abcdef0123456789abcdef"
    assert store.sync_triage(Triage.empty().with_entry(TriageEntry(fp, TriageStatus.FALSE_POSITIVE))) == 1
    assert [e.new_status for e in store.triage_history(fp)] == [TriageStatus.FALSE_POSITIVE]
    assert store.list_findings() == []


# ------------------------------------------------------------------------------------------- model versions


def test_model_versions_with_exactly_one_serving(store: Store, store_url: str) -> None:
    audit_id = store.record_audit(report([]))
    v1 = store.add_model_version(model_name="credit", version="1", sha256="a" * 64, uri="s3://m/1")
    v2 = store.add_model_version(
        model_name="credit",
        version="2",
        sha256="b" * 64,
        uri="s3://m/2",
        signature_status="valid",
        audit_id=audit_id,
    )
    store.add_model_version(model_name="fraud", version="1", sha256="c" * 64, uri="s3://f/1")
    assert v1 != v2

    versions = store.list_model_versions("credit")
    assert [(v.id, v.version, v.serving) for v in versions] == [(v1, "1", False), (v2, "2", False)]
    assert (versions[1].signature_status, versions[1].audit_id, versions[1].sha256) == (
        "valid",
        audit_id,
        "b" * 64,
    )
    assert versions[0].created_at.utcoffset() == dt.timedelta(0)

    store.set_serving("credit", "1")
    store.set_serving("fraud", "1")
    assert [v.version for v in store.list_model_versions("credit") if v.serving] == ["1"]
    store.set_serving("credit", "2")
    assert [v.version for v in store.list_model_versions("credit") if v.serving] == ["2"]
    assert [v.serving for v in store.list_model_versions("fraud")] == [True]  # other models untouched

    with pytest.raises(StoreError, match="already has a version '2'"):
        store.add_model_version(model_name="credit", version="2", sha256="d" * 64, uri="x")
    with pytest.raises(StoreError, match="has no version '3'"):
        store.set_serving("credit", "3")
    with pytest.raises(StoreError, match="no audit with id 999"):
        store.add_model_version(model_name="credit", version="9", sha256="e" * 64, uri="x", audit_id=999)
    assert store.list_model_versions("nothing") == []

    # The database itself refuses a second serving version, whatever code writes to it.
    engine = create_engine(store_url, poolclass=NullPool)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text("UPDATE model_versions SET serving = :t WHERE model_name = 'credit'"), {"t": True}
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------------- events


def test_events_newest_first_by_kind(store: Store) -> None:
    e1 = store.add_event(kind="drift", source="monitor", payload={"psi": 0.31, "features": ["age", "income"]})
    e2 = store.add_event(kind="auth", source="serve", payload={"client": "k1", "nested": {"ok": False}})
    e3 = store.add_event(kind="drift", source="monitor", payload={"psi": 0.12, "features": ()})

    assert [e.id for e in store.list_events()] == [e3, e2, e1]
    drift = store.list_events(kind="drift")
    assert [e.id for e in drift] == [e3, e1]
    assert drift[1].payload == {"psi": 0.31, "features": ["age", "income"]}
    assert drift[0].payload == {"psi": 0.12, "features": []}
    assert (drift[0].kind, drift[0].source) == ("drift", "monitor")
    assert [e.id for e in store.list_events(limit=2)] == [e3, e2]
    assert store.list_events(kind="none") == []
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        store.add_event(kind="x", source="y", payload={"v": math.inf})
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        store.add_event(kind="x", source="y", payload={"v": object()})
    assert len(store.list_events()) == 3


# ------------------------------------------------------------------------------------------------ incidents


def test_incidents_open_update_and_history(store: Store) -> None:
    first = store.open_incident(
        title="drift on credit", severity=Severity.MEDIUM, model_name="credit", details={"psi": 0.4}
    )
    second = store.open_incident(
        title="probing detected", severity=Severity.HIGH, model_name=None, details={"client": "k9"}
    )

    incidents = store.list_incidents()
    assert [i.id for i in incidents] == [second, first]
    assert (incidents[1].status, incidents[1].severity, incidents[1].model_name, incidents[1].details) == (
        "open",
        Severity.MEDIUM,
        "credit",
        {"psi": 0.4},
    )
    assert incidents[0].history == ()

    store.update_incident(first, status="acknowledged", actor="alice", note="looking")
    store.update_incident(first, status="resolved", actor="bob", note="rolled back to v1")
    resolved = store.list_incidents(status="resolved")
    assert [i.id for i in resolved] == [first]
    assert [(u.actor, u.old_status, u.new_status, u.note) for u in resolved[0].history] == [
        ("alice", "open", "acknowledged", "looking"),
        ("bob", "acknowledged", "resolved", "rolled back to v1"),
    ]
    assert resolved[0].updated_at >= resolved[0].opened_at
    assert [i.id for i in store.list_incidents(status="open")] == [second]
    assert (store.incident_status(first), store.incident_status(second), store.incident_status(10**6)) == (
        "resolved",
        "open",
        None,
    )

    with pytest.raises(StoreError, match="must be one of"):
        store.update_incident(first, status="done", actor="x")
    with pytest.raises(StoreError, match="must be one of"):
        store.list_incidents(status="done")
    with pytest.raises(StoreError, match="no incident with id 999"):
        store.update_incident(999, status="resolved", actor="x")


# ---------------------------------------------------------------------------------------------- opening


def test_reopening_keeps_the_data(store_url: str) -> None:
    with Store.open(store_url) as s:
        audit_id = s.record_audit(report([PERSISTS]))
    with Store.open(store_url) as s:  # migrating an up-to-date schema is a no-op
        assert [a.id for a in s.list_audits()] == [audit_id]


def test_open_creates_the_sqlite_folder(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    assert url == f"sqlite:///{tmp_path.as_posix()}/.garrison/garrison.db"
    with Store.open(url) as s:
        assert s.list_audits() == []
    assert (tmp_path / DEFAULT_DB_PATH).is_file()
    assert default_url() == "sqlite:///.garrison/garrison.db"


def test_a_store_not_opened_says_so(tmp_path: Path) -> None:
    s = Store(default_url(tmp_path))
    assert not (tmp_path / DEFAULT_DB_PATH).exists()  # the constructor only stores the URL
    with pytest.raises(StoreError, match=r"not open: use Store\.open"):
        s.list_audits()
    opened = Store.open(default_url(tmp_path))
    opened.close()
    with pytest.raises(StoreError, match="not open"):
        opened.list_events()


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    url = "postgresql+psycopg://garrison:Sup3r-S3cret@127.0.0.1:1/garrison_test"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    message = str(info.value)
    assert "Sup3r-S3cret" not in message
    assert "\n" not in message
    assert "127.0.0.1:1" in message
    assert "***" in message
    assert info.value.__cause__ is None  # the driver's exception (and the URL in it) is not chained
    assert "Sup3r-S3cret" not in repr(Store(url))


@pytest.mark.postgres
def test_wrong_postgres_password_is_a_store_error_without_it(pg_url: str) -> None:
    url = make_url(pg_url).set(password="Wr0ng-Pa55word").render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="authentication failed") as info:
        Store.open(url)
    assert "Wr0ng-Pa55word" not in str(info.value)
    assert "\n" not in str(info.value)
