#!/usr/bin/env python3
"""Server-side page times of the team dashboard (`garrison ui`) on a large store (issue #9 bar).

Bar: every page renders in under 200 ms server-side with 1,000 audits and 100,000 findings in the store.

Setup: the demo project is audited once for real (``garrison.audit.audit``, about 30 s); its report is the template
of every stored audit. The bench then records ``--audits`` reports through the store's public API
(``Store.record_audit``) spread over ``--models`` models of two projects, each report carrying its share of the
``--findings`` distinct findings (new ones, of every rule of the catalogue, so of several severities and stages)
plus the findings of the model's previous audit still open, and its decision from ``evaluate`` (so verdicts vary).
Also: two registered versions per model (one serving), ``--incidents`` incidents (a third acknowledged), a triage
file of 500 entries mirrored into the store, and four users. The store is a SQLite file in a temporary folder.

Measurement: the dashboard's own app (``create_ui_app``) in this process, called through ``httpx.ASGITransport``
(no sockets) with the cookie of a real signed-in admin session (``garrison.store.users.create_session``). Each page
kind is requested once to warm up, then once per round for ``--rounds`` rounds; the time of a request is from
sending it to having the whole body, so it includes routing, the store's queries, rendering and the middleware:
the server's work, without a network. Prints a table and a JSON document; exit 1 when any page's median is over
``--bar-ms`` (200), or a page does not answer 200.

Usage:
    .venv/bin/python bench/ui_bench.py [--rounds 5] [--audits 1000] [--findings 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECTS = ("payments", "risk")
SEVERITY_MIX = ("critical", "high", "high", "medium", "medium", "medium", "low", "low", "info", "info")


def template_report(workdir: Path) -> Any:
    """One real audit of the demo project: the skeleton of every stored report."""
    from garrison.audit import audit, write_demo_project
    from garrison.core import load_config

    config = write_demo_project(workdir / "demo", report_dir=workdir / "demo" / "report")
    return audit(load_config(config))


def build_store(url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the store; returns the ids the pages are requested with."""
    from garrison.audit import evaluate
    from garrison.core import Policy, Severity, Stage, Subject, SubjectKind
    from garrison.core.rules import all_rules
    from garrison.core.triage import Triage, TriageEntry, TriageStatus, save_triage
    from garrison.store import Store
    from garrison.store.users import add_user

    template = template_report(workdir)
    slot = next(i for i, r in enumerate(template.results) if r.findings)
    rules = [r for r in all_rules() if not r.id.startswith("GAR-PO")]  # policy findings come from the gate
    models = [f"model-{k:02d}" for k in range(args.models)]
    per_audit = args.findings // args.audits
    policy = Policy(fail_on=Severity.HIGH)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    previous: dict[str, tuple[Any, ...]] = {}
    fingerprints: list[str] = []
    audit_ids: dict[str, list[int]] = {m: [] for m in models}
    n_made = 0
    with Store.open(url, durable=False) as store:
        t0 = time.perf_counter()
        for i in range(args.audits):
            model = models[i % len(models)]
            new = []
            for j in range(per_audit):
                rule = rules[(n_made + j) % len(rules)]
                severity = Severity(SEVERITY_MIX[(n_made + j) % len(SEVERITY_MIX)])
                stage = list(Stage)[(n_made + j) % len(Stage)]
                new.append(
                    rule.finding(
                        subject=Subject(SubjectKind.MODEL, model, uri=f"models/{model}.skops"),
                        message=f"{rule.title}: case {n_made + j} of {model}",
                        location=f"feature_{(n_made + j) % 97}",
                        symbol=f"case-{n_made + j}",
                        evidence={"score": round(((n_made + j) % 1000) / 1000, 3), "rows": [1, 2, 3]},
                        severity=severity,
                        stage=stage,
                        check_id=template.results[slot].check_id,
                    )
                )
            n_made += per_audit
            carried = previous.get(model, ())[: args.carried]
            findings = (*carried, *new)
            previous[model] = tuple(new)
            fingerprints.extend(f.fingerprint for f in new)
            when = start + dt.timedelta(hours=i)
            run = dataclasses.replace(
                template.run,
                project=PROJECTS[(i % len(models)) % len(PROJECTS)],
                model_name=model,
                started_at=when.isoformat(),
                finished_at=(when + dt.timedelta(minutes=3)).isoformat(),
            )
            results = list(template.results)
            results[slot] = dataclasses.replace(results[slot], findings=findings)
            report = dataclasses.replace(template, run=run, results=tuple(results), decision=None)
            report = dataclasses.replace(report, decision=evaluate(report, policy, Triage.empty()))
            audit_ids[model].append(store.record_audit(report))
        setup_s = time.perf_counter() - t0

        for m in models:
            for v, (audit_id, serving) in enumerate(((audit_ids[m][0], False), (audit_ids[m][-1], True))):
                store.add_model_version(model_name=m, version=f"1.{v}", sha256=f"{v:064x}", uri=f"models/{m}.skops",
                                        signature_status="verified" if serving else "unsigned", audit_id=audit_id)  # fmt: skip
            store.set_serving(m, "1.1")
        incident_ids = []
        for k in range(args.incidents):
            iid = store.open_incident(
                title=f"drift on feature_{k % 97}",
                severity=Severity(SEVERITY_MIX[k % len(SEVERITY_MIX)]),
                model_name=models[k % len(models)],
                details={"p_value": 0.001, "window": 500, "actions": ["notify"]},
            )
            if k % 3 == 0:
                store.update_incident(iid, status="acknowledged", actor="alice", note="looking")
            incident_ids.append(iid)
        statuses = (TriageStatus.ACCEPTED_RISK, TriageStatus.FALSE_POSITIVE, TriageStatus.FIXED)
        entries = [
            TriageEntry(
                fingerprint=fp,
                status=statuses[k % 3],
                reason="bench",
                owner="alice",
                updated_by="alice",
                expires=dt.date(2030, 1, 1) if statuses[k % 3] is TriageStatus.ACCEPTED_RISK else None,
            )
            for k, fp in enumerate(fingerprints[: args.triaged])
        ]
        triage = Triage({e.fingerprint: e for e in entries})
        triage_file = workdir / "project" / ".garrison" / "triage.yaml"
        triage_file.parent.mkdir(parents=True)
        save_triage(triage, triage_file)
        store.sync_triage(triage)
        for name, role in (("alice", "admin"), ("tom", "triager"), ("vera", "viewer"), ("olga", "viewer")):
            add_user(store, name, f"{name}-bench-password", role=role)
        counts = {"audits": len(store.list_audits(limit=10**6)), "findings": store.count_findings()}
    last_model = models[-1]
    return {
        "setup_s": setup_s,
        "counts": counts,
        "model": last_model,
        "audit": audit_ids[last_model][-1],
        "finding": fingerprints[len(fingerprints) // 2],
        "incident": incident_ids[len(incident_ids) // 2],
        "project_dir": workdir / "project",
    }


async def measure(url: str, ids: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    import httpx

    from garrison.store import Store
    from garrison.store.users import create_session, get_user
    from garrison.ui import create_ui_app
    from garrison.ui.auth import SESSION_COOKIE

    deep = max(1, ids["counts"]["findings"] // 50 - 1)
    pages = {
        "models": "/",
        "model": f"/models/{ids['model']}",
        "audit": f"/audits/{ids['audit']}",
        "findings p1": "/findings",
        f"findings p{deep}": f"/findings?page={deep}",
        "findings open,high+": "/findings?status=open&severity=high",
        "finding": f"/findings/{ids['finding']}",
        "incidents": "/incidents",
        "incident": f"/incidents/{ids['incident']}",
        "users": "/users",
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    with Store.open(url) as store:
        user = get_user(store, "alice")
        assert user is not None
        token, _ = create_session(store, user)
        app = create_ui_app(store, project_dir=ids["project_dir"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", cookies={SESSION_COOKIE: token}
        ) as client:
            for round_ in range(args.rounds + 1):  # round 0 warms up
                for name, path in pages.items():
                    t0 = time.perf_counter()
                    response = await client.get(path)
                    elapsed = time.perf_counter() - t0
                    if response.status_code != 200:
                        raise SystemExit(f"{name} {path}: HTTP {response.status_code}")
                    if round_:
                        times[name].append(elapsed * 1000)
    return {
        name: {
            "path": pages[name],
            "median_ms": round(statistics.median(ts), 1),
            "max_ms": round(max(ts), 1),
            "n": len(ts),
        }
        for name, ts in times.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--audits", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=100_000, help="distinct findings in the store")
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--carried", type=int, default=20, help="findings of the previous audit seen again")
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--triaged", type=int, default=500, help="entries of the triage file")
    parser.add_argument("--bar-ms", type=float, default=200.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON document here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'garrison.db'}"
        ids = build_store(url, workdir, args)
        results = asyncio.run(measure(url, ids, args))
    slow = [name for name, r in results.items() if r["median_ms"] > args.bar_ms]
    print(f"store: {ids['counts']['audits']} audits, {ids['counts']['findings']} findings "
          f"(recorded in {ids['setup_s']:.0f} s); {args.rounds} rounds")  # fmt: skip
    print(f"{'page':<22} {'median ms':>10} {'max ms':>8}  path")
    for name, r in results.items():
        print(f"{name:<22} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f}  {r['path']}")
    document = {
        "schema_version": "1",
        "bench": "ui_bench",
        "bar_ms": args.bar_ms,
        "rounds": args.rounds,
        "store": ids["counts"],
        "pages": results,
        "passed": not slow,
    }
    text = json.dumps(document, indent=2, sort_keys=True)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    if slow:
        print(f"over {args.bar_ms:.0f} ms: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
