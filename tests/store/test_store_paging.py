"""Paging and counting in the database (issue #9): findings, incidents, audits per model, model versions.

Runs on SQLite and on PostgreSQL (see conftest.py). Each paged answer is compared with the whole list it pages.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core import (
    CheckResult,
    Finding,
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
)
from garrison.store import Store
from garrison.store.records import FindingSummary

START = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
# Mixed case, digits, punctuation and no location at all: the database must order them as Python does.
LOCATIONS = (None, "Zeta", "alpha", "_x", "10", "9", "feature b", "Feature a")
RULES = ("GAR-MD-001", "GAR-MD-002", "GAR-DI-005", "GAR-SC-001")


def make_finding(k: int, model: str) -> Finding:
    return Finding(
        rule_id=RULES[k % len(RULES)],
        title=f"title {k}",
        severity=list(Severity)[k % len(Severity)],
        stage=list(Stage)[(k // 2) % len(Stage)],
        subject=Subject(SubjectKind.MODEL, model),
        message=f"finding {k}",
        location=LOCATIONS[k % len(LOCATIONS)],
        symbol=f"s{k}",
        check_id="fuzzing",
    )


def make_report(findings: list[Finding], *, model: str, project: str, started: dt.datetime) -> Report:
    run = RunInfo(
        project=project,
        started_at=started.isoformat(),
        finished_at=started.isoformat(),
        seed=1,
        garrison_version="0.1.0",
        python="3.11.9",
        platform="linux",
        model_name=model,
    )
    result = CheckResult(check_id="fuzzing", stage=Stage.MODEL, metrics=(), findings=tuple(findings))
    return Report(run=run, results=(result,))


def fill(store: Store, *, n_findings: int = 60, n_audits: int = 6) -> dict[str, list[int]]:
    """``n_audits`` audits over three models of two projects sharing ``n_findings`` findings; returns audit ids."""
    models = {"alpha": "p1", "beta": "p1", "gamma": "p2"}
    ids: dict[str, list[int]] = {m: [] for m in models}
    per_audit = n_findings // n_audits
    for i in range(n_audits):
        model = list(models)[i % len(models)]
        found = [make_finding(k, model) for k in range(i * per_audit, (i + 1) * per_audit)]
        started = START + dt.timedelta(hours=i % 2)  # equal start times: ties are broken by id
        ids[model].append(
            store.record_audit(make_report(found, model=model, project=models[model], started=started))
        )
    return ids


def python_order(f: FindingSummary) -> tuple[int, int, str, str, str]:
    return (-f.severity.rank, f.stage.order, f.rule_id, f.location or "", f.fingerprint)


def triage_some(store: Store) -> None:
    everything = store.list_findings()
    statuses = (
        TriageStatus.ACCEPTED_RISK,
        TriageStatus.FALSE_POSITIVE,
        TriageStatus.FIXED,
        TriageStatus.OPEN,
    )
    entries = {
        f.fingerprint: TriageEntry(f.fingerprint, statuses[k % len(statuses)], reason="r", owner="o")
        for k, f in enumerate(everything[::3])
    }
    store.sync_triage(Triage(entries))


# ------------------------------------------------------------------------------------------------ findings


def test_findings_come_in_the_order_python_gives_them(store: Store) -> None:
    fill(store)
    found = store.list_findings()
    assert len(found) == 60
    assert [f.fingerprint for f in found] == [f.fingerprint for f in sorted(found, key=python_order)]
    assert {f.location for f in found} == set(LOCATIONS)


def test_pages_of_findings_add_up_to_the_whole_list(store: Store) -> None:
    fill(store)
    triage_some(store)
    for status, severity, model in itertools.product(
        (None, TriageStatus.OPEN, TriageStatus.FIXED), (None, Severity.HIGH), (None, "beta")
    ):
        whole = store.list_findings(status=status, min_severity=severity, model_name=model)
        pages = [
            store.list_findings(status=status, min_severity=severity, model_name=model, offset=o, limit=7)
            for o in range(0, len(whole) + 7, 7)
        ]
        assert [f.fingerprint for p in pages for f in p] == [f.fingerprint for f in whole]
        assert all(len(p) <= 7 for p in pages)
        assert store.count_findings(status=status, min_severity=severity, model_name=model) == len(whole)


def test_filters_select_what_they_name(store: Store) -> None:
    fill(store)
    triage_some(store)
    beta = store.list_findings(model_name="beta")
    assert beta and {f.model_name for f in beta} == {"beta"}
    assert {f.model_name for f in store.list_findings(project="p2")} == {"gamma"}
    high = store.list_findings(min_severity=Severity.HIGH)
    assert high and all(f.severity >= Severity.HIGH for f in high)
    fixed = store.list_findings(status=TriageStatus.FIXED)
    assert fixed and all(f.triage_status is TriageStatus.FIXED for f in fixed)
    assert store.count_findings(status=TriageStatus.OPEN) == sum(
        f.triage_status is TriageStatus.OPEN for f in store.list_findings()
    )
    assert store.count_findings(model_name="nobody") == 0
    assert store.list_findings(model_name="nobody", limit=5) == []


def test_a_page_past_the_end_is_empty_and_bad_bounds_are_refused(store: Store) -> None:
    fill(store)
    assert store.list_findings(offset=60, limit=10) == []
    assert len(store.list_findings(offset=55)) == 5
    with pytest.raises(StoreError, match=r"`offset` must be >= 0, got -1"):
        store.list_findings(offset=-1)
    with pytest.raises(StoreError, match=r"`limit` must be >= 1, got 0"):
        store.list_findings(limit=0)
    with pytest.raises(StoreError, match=r"`limit` must be >= 1, got 0"):
        store.list_incidents(limit=0)


def test_any_window_of_findings_is_the_same_slice_of_the_whole(store: Store) -> None:
    fill(store, n_findings=30, n_audits=3)
    whole = [f.fingerprint for f in store.list_findings()]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(offset=st.integers(0, 40), limit=st.one_of(st.none(), st.integers(1, 40)))
    def check(offset: int, limit: int | None) -> None:
        page = [f.fingerprint for f in store.list_findings(offset=offset, limit=limit)]
        assert page == whole[offset : None if limit is None else offset + limit]

    check()


# ----------------------------------------------------------------------------------------------- incidents


def open_incidents(store: Store, n: int) -> list[int]:
    ids = []
    for k in range(n):
        ids.append(
            store.open_incident(
                title=f"incident {k}", severity=Severity.HIGH, model_name="alpha", details={"k": k}
            )
        )
        if k % 2:
            store.update_incident(ids[-1], status="acknowledged", actor="tom", note=f"seen {k}")
    return ids


def test_incidents_page_and_count_in_the_database(store: Store) -> None:
    open_incidents(store, 11)
    whole = store.list_incidents()
    assert [i.id for i in whole] == sorted(
        (i.id for i in whole), reverse=True
    )  # same open time: newest id first
    paged = [i for o in range(0, 12, 4) for i in store.list_incidents(offset=o, limit=4)]
    assert paged == whole
    assert store.count_incidents() == 11
    acknowledged = store.list_incidents(status="acknowledged", offset=1, limit=2)
    assert acknowledged == store.list_incidents(status="acknowledged")[1:3]
    assert store.count_incidents(status="acknowledged") == 5
    with pytest.raises(StoreError, match="incident status must be one of"):
        store.count_incidents(status="gone")


def test_get_incident_is_the_listed_record_with_its_history(store: Store) -> None:
    ids = open_incidents(store, 4)
    listed = {i.id: i for i in store.list_incidents()}
    for incident_id in ids:
        assert store.get_incident(incident_id) == listed[incident_id]
    assert store.get_incident(ids[1]).history[0].note == "seen 1"
    with pytest.raises(StoreError, match=r"^no incident with id 999$"):
        store.get_incident(999)


# ---------------------------------------------------------------------------------- audits, model versions


def test_recent_audits_are_the_newest_of_each_model(store: Store) -> None:
    fill(store, n_findings=36, n_audits=12)
    recent = store.recent_audits(per_model=2)
    assert [a.model_name for a in recent] == ["alpha", "alpha", "beta", "beta", "gamma", "gamma"]
    for model in ("alpha", "beta", "gamma"):
        mine = [a for a in recent if a.model_name == model]
        assert mine == store.list_audits(model_name=model, limit=2)
    assert len(store.recent_audits(per_model=100)) == 12
    with pytest.raises(StoreError, match=r"`per_model` must be >= 1, got 0"):
        store.recent_audits(per_model=0)


def test_list_audits_before_an_audit_is_its_predecessor(store: Store) -> None:
    ids = fill(store, n_findings=36, n_audits=12)
    history = store.list_audits(model_name="alpha", limit=100)  # newest first, ties by id
    assert len(history) == 4
    for newer, older in itertools.pairwise(history):
        assert store.list_audits(model_name="alpha", before=newer.id, limit=1) == [older]
    assert store.list_audits(model_name="alpha", before=history[-1].id) == []
    assert store.list_audits(before=10_000) == []
    assert {a.id for a in store.list_audits(model_name="alpha", before=history[0].id, limit=100)} == set(
        ids["alpha"]
    ) - {history[0].id}


def test_model_version_counts_and_serving_versions(store: Store) -> None:
    for model, n in (("alpha", 3), ("beta", 1)):
        for v in range(n):
            store.add_model_version(
                model_name=model, version=f"1.{v}", sha256="ab" * 32, uri=f"{model}.skops"
            )
    store.set_serving("alpha", "1.1")
    assert store.count_model_versions() == {"alpha": 3, "beta": 1}
    serving = store.serving_versions()
    assert list(serving) == ["alpha"]
    assert serving["alpha"].version == "1.1" and serving["alpha"].serving
