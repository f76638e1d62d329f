"""The guarded service end to end over real HTTP: auth, scopes, validation, limits, audit log, explanations."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pandas as pd
import pytest

from garrison.store import AuditLog, Store, verify_log


def _rows(running: Any, n: int = 3, start: int = 0) -> list[dict[str, float]]:
    frame = pd.read_csv(running.root / "test.csv").drop(columns="target")
    return [{k: float(v) for k, v in r.items()} for r in frame.iloc[start : start + n].to_dict("records")]


def _client(running: Any, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {running.keys[key]}"} if key else {}
    return httpx.Client(base_url=running.url, headers=headers, timeout=30)


def test_a_batch_is_predicted_and_logged_in_the_verified_chain(running: Any) -> None:
    with _client(running, "client") as c:
        r = c.post("/v1/predict", json={"instances": _rows(running, 3)})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["predictions"]) == 3 and doc["classes"] == [0, 1]
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-5 for p in doc["predictions"])
    running.bundle.service.audit_log.flush()  # the journal moves entries into the chain every 0.1 s
    with Store.open(running.store_url) as store:
        log = AuditLog(store, worker="w0")
        entries = [e for e in log.entries() if e.payload.get("request_id") == doc["request_id"]]
        assert len(entries) == 1 and entries[0].payload["rows"] == 3
        assert "body" not in entries[0].payload and len(entries[0].payload["sha256"]) == 64
        assert verify_log(store).ok


def test_keys_and_scopes_are_enforced_and_health_needs_none(running: Any) -> None:
    body = {"instances": _rows(running, 1)}
    with _client(running, None) as anon:
        assert anon.post("/v1/predict", json=body).status_code == 401
        assert anon.get("/healthz").json() == {"status": "ok"}
        assert anon.get("/metrics").status_code == 401
    with httpx.Client(base_url=running.url, headers={"X-API-Key": "gk_forged_" + "a" * 40}) as forged:
        assert forged.post("/v1/predict", json=body).status_code == 401
    with _client(running, "explainer-only") as c:
        r = c.post("/v1/predict", json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with _client(running, "ops") as ops:
        text = ops.get("/metrics").text
        assert 'garrison_rejected_total{reason="auth"}' in text
        assert "garrison_hook_errors_total" not in text.replace(
            "# HELP garrison_hook_errors_total", ""
        ).replace("# TYPE garrison_hook_errors_total", "")  # no detector has failed


@pytest.mark.parametrize(
    ("content", "status", "code", "field"),
    [
        (b'{"instances": [{"mean_radius": NaN}]}', 400, "json", None),
        (b'{"instances": [], "instances": []}', 400, "json", None),
        (b"[" * 5000 + b"]" * 5000, 400, "depth", None),
        (b"\xff\xfe", 400, "encoding", None),
        (b'{"rows": []}', 422, "body", None),
        (b'{"instances": []}', 422, "empty", "instances"),
        (b'{"inputs": [[1, 2]]}', 422, "shape", "inputs"),
    ],
)
def test_hostile_bodies_get_a_4xx_that_echoes_nothing(
    running: Any, content: bytes, status: int, code: str, field: str | None
) -> None:
    with _client(running, "client") as c:
        r = c.post("/v1/predict", content=content, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["field"]) == (status, code, field)


def test_a_wrong_value_names_its_field_without_echoing_it(running: Any) -> None:
    row = _rows(running, 1)[0]
    row["mean_radius"] = "<script>alert(1)</script>"
    extra = {**_rows(running, 1)[0], "<img src=x>": 1.0}
    far = {**_rows(running, 1)[0], "mean_area": 1e308 * 10 if False else 1e300}
    with _client(running, "client") as c:
        for bad, where, code in ((row, "instances[0].mean_radius", "type"), (extra, "instances[0]", "unknown_field"),
                                 (far, "instances[0].mean_area", "value")):  # fmt: skip
            r = c.post("/v1/predict", json={"instances": [bad]})
            assert r.status_code == 422
            error = r.json()["error"]
            assert (error["field"], error["code"]) == (where, code)
            assert "script" not in r.text and "img" not in r.text and "1e+300" not in r.text


def test_size_type_and_batch_caps(running: Any) -> None:
    with _client(running, "client") as c:
        big = c.post("/v1/predict", content=b" " * 70000, headers={"Content-Type": "application/json"})
        assert big.status_code == 413
        form = c.post(
            "/v1/predict", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert form.status_code == 415
        many = c.post("/v1/predict", json={"instances": _rows(running, 1) * 65})
        assert many.status_code == 422 and many.json()["error"]["code"] == "batch_size"


def test_explain_returns_each_rows_top_features(running: Any) -> None:
    with _client(running, "client") as c:
        r = c.post("/v1/explain", json={"instances": _rows(running, 2)})
    assert r.status_code == 200, r.text
    rows = r.json()["predictions"]
    assert all(len(p["explanation"]) == 3 for p in rows)
    names = set(_rows(running, 1)[0])
    assert all(e["feature"] in names for p in rows for e in p["explanation"])


def test_openapi_is_published_with_the_schema_of_a_row(running: Any) -> None:
    assert httpx.get(f"{running.url}/openapi.json").status_code == 401  # only /healthz answers without a key
    with _client(running, "client") as c:
        doc = c.get("/openapi.json").json()
    body = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    row = body["oneOf"][0]["properties"]["instances"]["items"]
    assert "mean_radius" in row["properties"] and row["additionalProperties"] is False
    assert json.dumps(doc)  # serialisable


def test_a_probing_key_is_blocked_by_its_playbook_with_an_incident_and_an_alert(running: Any) -> None:
    import numpy as np

    seed = _rows(running, 1, start=10)[0]
    rng = np.random.default_rng(0)
    statuses = []
    with _client(running, "attacker") as c:
        for _ in range(6):  # membership-style probing: one record, minutely varied, again and again
            batch = [{k: v * (1 + 1e-4 * rng.standard_normal()) for k, v in seed.items()} for _ in range(16)]
            statuses.append(c.post("/v1/predict", json={"instances": batch}).status_code)
            if statuses[-1] == 403:
                break
            running.bundle.service.background.flush()  # detectors run off the request path, within ~10 ms
    assert statuses[0] == 200 and statuses[-1] == 403, statuses
    assert len(statuses) <= 4  # flagged once 30 recent rows are in (two batches), blocked on the next request
    with _client(running, "client") as c:  # other keys are unaffected
        assert c.post("/v1/predict", json={"instances": _rows(running, 1)}).status_code == 200
    with Store.open(running.store_url) as store:
        incident = next(i for i in store.list_incidents() if i.details["playbook"] == "stop-probing")
        from garrison.respond import incident_timeline

        steps = [t["detail"] for t in incident_timeline(store, incident.id)]
        assert any("blocked" in s for s in steps) and any(s == "alert sent" for s in steps)
        assert incident.details["signal"]["details"]["kind"] == "near_duplicates"
    alerts = [json.loads(line) for line in (running.root / "alerts.jsonl").read_text().splitlines()]
    assert any(a["kind"] == "probing" and a["severity"] == "high" for a in alerts)


def test_a_shifted_window_raises_a_drift_alert(running: Any) -> None:
    import numpy as np

    frame = pd.read_csv(running.root / "train.csv").drop(columns="target")
    low, high = frame.quantile(0.90), frame.quantile(0.99)  # inside the schema, far from typical rows
    rng = np.random.default_rng(1)
    with _client(running, "feed") as c:
        for _ in range(3):
            rows = [
                {k: round(float(rng.uniform(low[k], high[k])), 4) for k in frame.columns} for _ in range(32)
            ]
            assert c.post("/v1/predict", json={"instances": rows}).status_code == 200
            running.bundle.service.background.flush()
    alerts = [json.loads(line) for line in (running.root / "alerts.jsonl").read_text().splitlines()]
    drift = [a for a in alerts if a["kind"] == "drift"]
    assert any("features drifted" in a["message"] for a in drift)
    assert any(
        a["message"].startswith("the predictions drifted") for a in drift
    )  # near-max rows: all malignant
    with _client(running, "ops") as ops:
        metrics = ops.get("/metrics").text.splitlines()
    gauge = next(line for line in metrics if line.startswith("garrison_drifted_features"))
    assert float(gauge.split()[-1]) >= 10


def test_admin_endpoints_revoke_keys_move_incidents_and_are_logged(running: Any) -> None:
    with _client(running, "client") as c:
        assert c.get("/v1/admin/keys").status_code == 403
    with _client(running, "ops") as ops:
        keys = ops.get("/v1/admin/keys").json()
        assert {k["name"] for k in keys} >= {"client", "ops", "explainer-only"}
        assert all(running.keys["client"] not in json.dumps(k) for k in keys)
        victim = next(k["id"] for k in keys if k["name"] == "explainer-only")
        assert ops.post(f"/v1/admin/keys/{victim}/revoke").json() == {"key": victim, "revoked": True}
        assert ops.post("/v1/admin/keys/nope/revoke").status_code == 404
        assert ops.post("/v1/admin/incidents/999999/ack").status_code == 404
        assert ops.get("/v1/admin/models").json() == []  # the demo model is not registered
    with _client(running, "explainer-only") as revoked:
        assert revoked.post("/v1/explain", json={"instances": _rows(running, 1)}).status_code == 401
    running.bundle.service.audit_log.flush()  # the journal moves entries into the chain every 0.1 s
    with Store.open(running.store_url) as store:
        admin = [e for e in AuditLog(store, worker="w0").entries() if e.kind == "admin.revoke"]
        assert admin and admin[-1].payload == {"key": victim}
        assert verify_log(store).ok


def test_late_labels_join_predictions_and_a_drop_falls_back(running: Any) -> None:
    rows = _rows(running, 10, start=20)
    with _client(running, "client") as c:
        doc = c.post("/v1/predict", json={"instances": rows}).json()
        predicted = [p["label"] for p in doc["predictions"]]
        right = [{"request_id": doc["request_id"], "row": i, "label": p} for i, p in enumerate(predicted)]
        r = c.post("/v1/feedback", json={"labels": [*right, {"request_id": "never-made", "label": 0}]})
        assert r.json()["joined"] == 10 and r.json()["correct"] == 10 and r.json()["unknown"] == 1
        bad = c.post("/v1/feedback", json={"labels": [{"request_id": "x", "label": "no-such-class"}]})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "labels[0].label"
        # ten wrong labels: live accuracy over the window of 20 falls to 0.5, far below the reference
        doc = c.post("/v1/predict", json={"instances": rows}).json()
        wrong = [{"request_id": doc["request_id"], "row": i, "label": 1 - p["label"]}
                 for i, p in enumerate(doc["predictions"])]  # fmt: skip
        assert c.post("/v1/feedback", json={"labels": wrong}).json()["live_accuracy"] == 0.5
        assert c.get("/v1/model").json()["version"] == "fallback"  # the 'degrade' playbook switched models
    with Store.open(running.store_url) as store:
        incident = next(i for i in store.list_incidents() if i.details["playbook"] == "degrade")
        assert "live accuracy 0.500" in incident.title


def test_signed_heads_are_exported_and_verify(running: Any) -> None:
    import time

    from garrison.store import load_heads, load_public_key

    with _client(running, "client") as c:
        assert c.post("/v1/predict", json={"instances": _rows(running, 1)}).status_code == 200
    heads_file = running.root / ".garrison" / "heads.jsonl"
    deadline = time.monotonic() + 10
    while not heads_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    heads = load_heads(heads_file.read_text())
    assert heads and heads[-1].head.worker == "w0"
    with Store.open(running.store_url) as store:
        result = verify_log(
            store, heads=heads, public_key=load_public_key((running.root / "head.pub").read_bytes())
        )
        assert result.ok and result.heads_checked >= 1


def test_a_key_created_while_serving_works_after_the_ring_reloads(running: Any) -> None:
    import time

    with Store.open(running.store_url) as store:
        secret = store.create_key("late", ["predict"])[1]
    deadline, status = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        status = httpx.post(f"{running.url}/v1/predict", json={"instances": _rows(running, 1)},
                            headers={"Authorization": f"Bearer {secret}"}).status_code  # fmt: skip
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200
