"""A real dashboard for the UI tests: the demo project audited once, a SQLite store, uvicorn on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("argon2")

from ui_site import GATE_RULE, PASSWORDS, ROLES, Audited, Site

from garrison.audit import audit, write_demo_project
from garrison.core import Report, Severity, TriageStatus, load_config
from garrison.core.triage import Triage, TriageEntry, save_triage
from garrison.store import Store
from garrison.store.users import add_user
from garrison.testing.servers import serve_in_thread
from garrison.ui import UiSettings, create_ui_app


@pytest.fixture(scope="session")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    """The demo project, audited once with ``fail_on: medium`` so that its medium findings block."""
    root = tmp_path_factory.mktemp("ui-demo")
    config = write_demo_project(root, report_dir=root / "report")
    config.write_text(config.read_text().replace("fail_on: high", "fail_on: medium"))
    report = audit(load_config(config))
    assert report.decision is not None and report.decision.blocking  # the gate fails before triage
    return Audited(config, report)


def _earlier(report: Report) -> Report:
    """The same audit a day earlier, without its first finding (so the diff shows one new finding)."""
    started = dt.datetime.fromisoformat(report.run.started_at) - dt.timedelta(days=1)
    finished = dt.datetime.fromisoformat(report.run.finished_at) - dt.timedelta(days=1)
    run = dataclasses.replace(report.run, started_at=started.isoformat(), finished_at=finished.isoformat())
    results = list(report.results)
    i = next(i for i, r in enumerate(results) if r.findings)
    results[i] = dataclasses.replace(results[i], findings=results[i].findings[1:])
    return dataclasses.replace(report, run=run, results=tuple(results), decision=None)


def make_site(root: Path, audited: Audited, settings: UiSettings | None = None) -> Iterator[Site]:
    root.mkdir(parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{root / 'garrison.db'}")
    report = audited.report
    previous_id = store.record_audit(_earlier(report))
    audit_id = store.record_audit(report)
    findings = {f.fingerprint: f for r in report.results for f in r.findings}
    gate_fp = next(fp for fp, f in findings.items() if f.rule_id == GATE_RULE)
    # every other finding was already judged a false positive: the gate hangs on GATE_RULE alone
    triage = Triage.empty()
    for fp, f in findings.items():
        if fp != gate_fp:
            triage = triage.with_entry(
                TriageEntry(fp, TriageStatus.FALSE_POSITIVE, reason="seeded by the tests", rule_id=f.rule_id)
            )
    save_triage(triage, root / ".garrison" / "triage.yaml")
    store.sync_triage(triage)
    model = report.run.model_name
    store.add_model_version(model_name=model, version="v1", sha256=hashlib.sha256(b"v1").hexdigest(),
                            uri="model.skops", signature_status="verified", audit_id=audit_id)  # fmt: skip
    store.set_serving(model, "v1")
    incident_id = store.open_incident(
        title="probing: one client sweeps the decision boundary",
        severity=Severity.HIGH,
        model_name=model,
        details={
            "playbook": "stop-probing",
            "signal": {"kind": "probing", "subject": "key:abc"},
            "actions": [{"action": "block", "ok": True}],
        },
    )
    for name, password in PASSWORDS.items():
        add_user(store, name, password, role=ROLES[name])
    app = create_ui_app(store, project_dir=root, settings=settings or UiSettings())
    server, thread, url = serve_in_thread(app)
    try:
        yield Site(url, root, store, audit_id, previous_id, gate_fp, incident_id)
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(10)
        store.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, audited: Audited) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("ui-site"), audited)


@pytest.fixture(scope="module")
def site_factory(
    tmp_path_factory: pytest.TempPathFactory, audited: Audited
) -> Callable[[UiSettings], Iterator[Site]]:
    """Another site with other settings: ``yield from site_factory(settings)``."""

    def build(settings: UiSettings) -> Iterator[Site]:
        return make_site(tmp_path_factory.mktemp("ui-site"), audited, settings)

    return build
