"""The dashboard on a growing store (issue #9): pages read a page in SQL, each page kind runs a fixed number of
queries whatever the store holds, the triage file is re-read when it changes, and admin actions leave events.

A real SQLite store, the real app under uvicorn on 127.0.0.1, a real signed-in session.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

import httpx
from argon2 import PasswordHasher, Type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from garrison.core import (
    CheckResult,
    Finding,
    Report,
    RunInfo,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    Triage,
    TriageEntry,
    TriageStatus,
)
from garrison.core.triage import save_triage
from garrison.store import Store
from garrison.store.users import add_user, create_session
from garrison.ui import UiSettings, create_ui_app
from garrison.ui.auth import SESSION_COOKIE

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
START = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
MODELS = {"alpha": "p1", "beta": "p1", "gamma": "p2"}
MORE_MODELS = {f"model-{k}": "p3" for k in range(5)}
PAGE = 5


@dataclass
class Dash:
    client: httpx.Client
    store: Store
    root: Path
    csrf: str
    audits: int = 0
    findings: int = 0


def report(k0: int, n: int, *, model: str, project: str, started: dt.datetime) -> Report:
    findings = [
        Finding(
            rule_id=("GAR-MD-001", "GAR-MD-002", "GAR-DI-005")[k % 3],
            title=f"title {k}",
            severity=list(Severity)[k % len(Severity)],
            stage=list(Stage)[k % len(Stage)],
            subject=Subject(SubjectKind.MODEL, model),
            message=f"finding {k}",
            location=f"feature_{k}",
            check_id="fuzzing",
        )
        for k in range(k0, k0 + n)
    ]
    run = RunInfo(project=project, started_at=started.isoformat(), finished_at=started.isoformat(), seed=1,
                  garrison_version="0.1.0", python="3.11.9", platform="linux", model_name=model)  # fmt: skip
    return Report(
        run=run, results=(CheckResult(check_id="fuzzing", stage=Stage.MODEL, findings=tuple(findings)),)
    )


def grow(
    dash: Dash, *, audits: int, per_audit: int = 4, incidents: int = 0, models: dict[str, str] = MODELS
) -> None:
    """Record ``audits`` more audits of ``models`` in turn (new findings each, a new serving version), incidents."""
    for _ in range(audits):
        model = list(models)[dash.audits % len(models)]
        started = START + dt.timedelta(hours=dash.audits)
        found = report(dash.findings, per_audit, model=model, project=models[model], started=started)
        dash.store.record_audit(found)
        dash.audits += 1
        dash.findings += per_audit
        versions = dash.store.list_model_versions(model)
        dash.store.add_model_version(model_name=model, version=f"v{len(versions)}", sha256="ab" * 32, uri="m")
        dash.store.set_serving(model, f"v{len(versions)}")
    for k in range(incidents):
        iid = dash.store.open_incident(
            title=f"incident {k}", severity=Severity.HIGH, model_name="alpha", details={}
        )
        dash.store.update_incident(iid, status="acknowledged", actor="tom", note="seen")


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    import uvicorn

    store = Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    admin = add_user(store, "alice", "alice-password", role="admin", hasher=CHEAP)
    token, session = create_session(store, admin)
    app = create_ui_app(store, project_dir=tmp_path, settings=UiSettings(page_size=PAGE))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                           lifespan="off", ws="none"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies={SESSION_COOKIE: token})
    try:
        yield Dash(client, store, tmp_path, session.csrf_token)
    finally:
        client.close()
        server.should_exit = True
        thread.join(10)
        store.close()


def rows(html: str) -> list[str]:
    """The fingerprints a findings page lists, in order."""
    return re.findall(r'<td><a href="/findings/([0-9a-f]+)">', html)


def test_findings_are_paged_in_order_with_counts_and_links(dash: Dash) -> None:
    grow(dash, audits=6)  # 24 findings: pages of 5, 5, 5, 5, 4
    everything = [f.fingerprint for f in dash.store.list_findings()]
    seen: list[str] = []
    for page in range(1, 6):
        html = dash.client.get("/findings", params={"page": page}).text
        assert f"24 findings · page {page} of 5" in html
        seen += rows(html)
        if page < 5:
            assert f"page={page + 1}" in html and "page=5" in html  # next and last
    assert seen == everything
    beta = dash.client.get("/findings", params={"model": "beta"}).text
    assert f"{dash.store.count_findings(model_name='beta')} findings · page 1 of 2" in beta
    assert set(rows(beta)) <= {f.fingerprint for f in dash.store.list_findings(model_name="beta")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.integers(-(10**12), 10**12))
def test_any_page_number_is_clamped_to_the_pages_there_are(dash: Dash, page: int) -> None:
    if dash.audits == 0:
        grow(dash, audits=3)  # 12 findings: 3 pages
    response = dash.client.get("/findings", params={"page": page})
    assert response.status_code == 200
    assert f"12 findings · page {min(max(page, 1), 3)} of 3" in response.text


def test_incidents_are_paged_and_one_is_read_by_id(dash: Dash) -> None:
    grow(dash, audits=1, incidents=7)
    first = dash.client.get("/incidents").text
    second = dash.client.get("/incidents", params={"page": 2}).text
    assert "7 incidents · page 1 of 2" in first and "7 incidents · page 2 of 2" in second
    listed = [i.id for i in dash.store.list_incidents()]
    shown = [int(i) for i in re.findall(r'<tr><td><a href="/incidents/(\d+)">', first + second)]
    assert shown == listed
    one = dash.client.get(f"/incidents/{listed[3]}")
    assert one.status_code == 200 and "incident 3" in one.text and "seen" in one.text
    assert dash.client.get("/incidents/99999").status_code == 404
    acknowledged = dash.client.get("/incidents", params={"status": "acknowledged"}).text
    assert "7 incidents · page 1 of 2" in acknowledged


def test_models_and_audit_pages_read_summaries_and_the_previous_audit(dash: Dash) -> None:
    grow(dash, audits=7)  # alpha: audits 1, 4, 7
    html = dash.client.get("/").text
    for model in MODELS:
        assert f'href="/models/{model}"' in html
    alpha = dash.store.list_audits(model_name="alpha")
    assert [a.id for a in alpha] == [7, 4, 1]
    assert f'href="/audits/{alpha[0].id}"' in html  # the latest audit of alpha
    assert "<td>3</td>" in html  # alpha's three versions
    page = dash.client.get(f"/audits/{alpha[0].id}").text
    assert f'<a href="/audits/{alpha[1].id}">#{alpha[1].id}</a>' in page
    assert "Against the previous audit (none)" in dash.client.get(f"/audits/{alpha[-1].id}").text


def count_queries(dash: Dash, paths: list[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    current = [""]

    def on_execute(*_: Any) -> None:
        counts[current[0]] += 1

    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        for path in paths:
            current[0] = path
            assert dash.client.get(path).status_code == 200, path
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
    return {path: counts[path] for path in paths}


def test_each_page_runs_as_many_queries_on_a_larger_store(dash: Dash) -> None:
    grow(dash, audits=6, incidents=3)
    fingerprint = dash.store.list_findings()[0].fingerprint
    incident = dash.store.list_incidents()[0].id
    paths = ["/", "/models/alpha", "/audits/4", "/findings", "/findings?page=2", "/findings?status=open",
             f"/findings/{fingerprint}", "/incidents", f"/incidents/{incident}", "/users"]  # fmt: skip
    small = count_queries(dash, paths)
    # six times the audits, findings and versions, 14 times the incidents, five more models
    grow(dash, audits=30, incidents=40, models=MORE_MODELS)
    large = count_queries(dash, paths)
    assert "/models/model-4" in dash.client.get("/").text
    assert large == small
    assert all(n <= 12 for n in small.values()), small


def test_an_edited_triage_file_is_read_again(dash: Dash) -> None:
    grow(dash, audits=1)
    fingerprint = dash.store.list_findings()[0].fingerprint
    path = dash.root / ".garrison" / "triage.yaml"
    for reason in ("first reason", "second reason"):
        entry = TriageEntry(fingerprint, TriageStatus.FALSE_POSITIVE, reason=reason)
        save_triage(Triage({fingerprint: entry}), path)
        html = dash.client.get(f"/findings/{fingerprint}").text
        assert f"“{reason}”" in html
    path.unlink()
    assert "“second reason”" not in dash.client.get(f"/findings/{fingerprint}").text


def test_admin_actions_on_users_are_recorded_as_events(dash: Dash) -> None:
    added = dash.client.post(
        "/users", data={"csrf_token": dash.csrf, "name": "bob", "role": "viewer", "password": "bob-password"}
    )
    assert added.status_code == 303
    refused = dash.client.post(
        "/users", data={"csrf_token": dash.csrf, "name": "bob", "role": "viewer", "password": "bob-password"}
    )
    assert refused.status_code == 400
    assert dash.client.post("/users/bob/disable", data={"csrf_token": dash.csrf}).status_code == 303
    (add,) = dash.store.list_events(kind="ui.user.add")  # the refused second add left none
    assert (add.source, add.payload) == ("alice", {"name": "bob", "role": "viewer"})
    (disable,) = dash.store.list_events(kind="ui.user.disable")
    assert (disable.source, disable.payload) == ("alice", {"name": "bob"})
    forged = dash.client.post("/users/alice/disable", data={"csrf_token": "wrong"})
    assert forged.status_code == 403
    assert len(dash.store.list_events(kind="ui.user.disable")) == 1
