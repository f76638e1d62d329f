#!/usr/bin/env python3
"""Guard overhead of `garrison serve` against a bare FastAPI endpoint (issue #8 bar), side by side in one run.

Setup (after /work/shared/anchors/serve_bench.py): a scikit-learn LogisticRegression on 20 features of
``make_classification`` (5000 rows), one JSON row per request.

- ``bare``: FastAPI + uvicorn, ``async def`` route: raw JSON body → numpy → ``predict_proba`` (the anchor's
  ``plain`` variant), access log off.
- ``garrison``: ``garrison.serve.create_app`` on the same model with everything on: API key from a real store
  (SQLite) checked by the key ring, scopes, per-key token bucket (limits high enough not to throttle, the check
  still runs), body-size cap, strict JSON and schema validation, the default detectors (out-of-distribution,
  low margin, query patterns), the sliding drift window, Prometheus metrics, and the hash-chained audit log with
  one committed SQLite entry per request.

Each server runs in its own process pinned to CPU 0 (``taskset``), one uvicorn worker; ``wrk`` (Debian package)
runs pinned to CPU 1 on 127.0.0.1. Rounds interleave bare and garrison (A B A B ...), 10 s each, at 16 and 1
connections; the figures are medians of per-round ratios. Bars: throughput ≥ 0.85× bare at 16 clients; added
p50 ≤ 0.3 ms at 1 client.

``--attribute`` adds three more servers, interleaved the same way: garrison without the audit log, without the
detectors, and with neither (the guards alone), to say where the overhead goes.

Usage:
    .venv/bin/python bench/serve_bench.py [--rounds 3] [--duration 10] [--attribute] [--json out.json]
"""

# no `from __future__ import annotations`: FastAPI resolves the bare endpoint's annotations at runtime
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
N_FEATURES = 20
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def prepare(workdir: Path) -> None:
    """The project both servers share: data, the fitted model, garrison.yaml, a store with one API key."""
    import numpy as np
    import pandas as pd
    import skops.io
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    sys.path.insert(0, str(ROOT / "src"))
    from garrison.store import Store

    x, y = make_classification(n_samples=5000, n_features=N_FEATURES, n_informative=8, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(N_FEATURES)]).assign(label=y)
    frame.to_csv(workdir / "train.csv", index=False)
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns="label").to_numpy(), y)
    skops.io.dump(model, workdir / "model.skops")
    (workdir / "garrison.yaml").write_text(
        "model: {name: bench, path: model.skops}\n"
        "data: {train: {path: train.csv, label: label}}\n"
        # limits far above the load so the checks run without refusing; the drift window checks every 500 rows
        "serve: {rate: 1.0e9, burst: 1.0e9, explain: false}\n"
    )
    with Store.open(f"sqlite:///{workdir / 'garrison.db'}") as store:
        (workdir / "key.txt").write_text(store.create_key("bench", ["predict"])[1])
    np.save(workdir / "row.npy", x[0])


def serve(variant: str, port: int, workdir: str) -> None:
    """Run one server in this process (the child)."""
    import uvicorn

    root = Path(workdir)
    if variant == "bare":
        import numpy as np
        import skops.io
        from fastapi import FastAPI, Request

        model = skops.io.load(
            root / "model.skops", trusted=["sklearn.linear_model._logistic.LogisticRegression"]
        )
        app = FastAPI()

        @app.post("/predict")
        async def predict(req: Request) -> dict[str, Any]:
            body = await req.json()
            row = np.asarray(body["features"], dtype=float).reshape(1, -1)
            p = float(model.predict_proba(row)[0, 1])
            return {"label": int(p >= 0.5), "score": p}

        @app.get("/healthz")
        async def healthz() -> dict[str, bool]:
            return {"ok": True}

    else:
        sys.path.insert(0, str(ROOT / "src"))
        from garrison.core import load_config
        from garrison.serve import build_service

        # each server its own copy of the store: two writers of one audit-log chain would collide ...
        store = root / f"store-{variant}.db"
        shutil.copy(root / "garrison.db", store)
        # ... and its own audit-log journal (one writer per worker's chain)
        config = root / f"garrison-{variant}.yaml"
        config.write_text(
            (root / "garrison.yaml")
            .read_text()
            .replace("explain: false}", f"explain: false, journal: journal-{variant}}}")
        )
        bundle = build_service(load_config(config), store_url=f"sqlite:///{store}")
        if variant != "garrison":  # --attribute: the same service with parts switched off
            from garrison.serve import create_app

            service = bundle.service
            service.close()
            if variant in ("garrison-no-log", "garrison-guards-only"):
                service.audit_log = None
            if variant in ("garrison-no-detectors", "garrison-guards-only"):
                service.hooks.clear()
            bundle.app = create_app(service)
        bundle.run(host=HOST, port=port)  # as `garrison serve` runs it
        return
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False, ws="none")


def start(variant: str, workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", variant, "--port", str(port), "--workdir", workdir]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=1):
                return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{variant} server died: {proc.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{variant} server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(variant: str, port: int, connections: int, duration: int, workdir: str) -> dict[str, float]:
    import numpy as np

    row = [round(float(v), 6) for v in np.load(Path(workdir, "row.npy"))]
    if variant == "bare":
        path, body, headers = "/predict", json.dumps({"features": row}), {}
    else:
        path = "/v1/predict"
        body = json.dumps({"inputs": [row]})
        headers = {"Authorization": "Bearer " + Path(workdir, "key.txt").read_text().strip()}
    script = Path(workdir, f"{variant}.lua")
    hdr = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = "application/json"\n{hdr}'
    )
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
           f"http://{HOST}:{port}{path}"]  # fmt: skip
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+)(us|ms|s)", out))
    p99 = _ms(re.search(r"99%\s+([\d.]+)(us|ms|s)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non2xx": float(non2xx.group(1)) if non2xx else 0.0}


def _ratios(
    variant: dict[int, list[dict[str, float]]], bare: dict[int, list[dict[str, float]]]
) -> dict[str, float]:
    """Median throughput ratio at 16 connections and median added p50 at 1, against bare, round by round."""
    return {
        "throughput_ratio_16": round(
            statistics.median(g["rps"] / b["rps"] for g, b in zip(variant[16], bare[16], strict=True)), 3
        ),
        "added_p50_ms_1": round(
            statistics.median(g["p50_ms"] - b["p50_ms"] for g, b in zip(variant[1], bare[1], strict=True)), 3
        ),
    }


def _ms(m: re.Match[str] | None) -> float:
    assert m is not None
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--attribute",
        action="store_true",
        help="also run garrison without the audit log, without detectors, and with neither",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.workdir)
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    workdir = tempfile.mkdtemp(prefix="garrison-serve-bench-")
    prepare(Path(workdir))
    variants = ["bare", "garrison"]
    if args.attribute:
        variants += ["garrison-no-log", "garrison-no-detectors", "garrison-guards-only"]
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, dict[int, list[dict[str, float]]]] = {v: {16: [], 1: []} for v in variants}
    try:
        for v in variants:
            servers[v] = start(v, workdir)
        for v, (_, port) in servers.items():  # warm-up
            wrk(v, port, 4, 2, workdir)
        for r in range(args.rounds):
            for connections in (16, 1):
                for v, (_, port) in servers.items():
                    res = wrk(v, port, connections, args.duration, workdir)
                    results[v][connections].append(res)
                    print(
                        json.dumps({"round": r, "variant": v, "connections": connections, **res}), flush=True
                    )
    finally:
        for proc, _ in servers.values():
            stop(proc)
    ratios = [g["rps"] / b["rps"] for g, b in zip(results["garrison"][16], results["bare"][16], strict=True)]
    added = [
        g["p50_ms"] - b["p50_ms"] for g, b in zip(results["garrison"][1], results["bare"][1], strict=True)
    ]
    summary = {
        "throughput_ratio_16": round(statistics.median(ratios), 3),
        "throughput_ratios_16": [round(x, 3) for x in ratios],
        "added_p50_ms_1": round(statistics.median(added), 3),
        "added_p50s_ms_1": [round(x, 3) for x in added],
        "bare_rps_16": round(statistics.median(x["rps"] for x in results["bare"][16]), 1),
        "garrison_rps_16": round(statistics.median(x["rps"] for x in results["garrison"][16]), 1),
        "garrison_non2xx": sum(x["non2xx"] for c in (16, 1) for x in results["garrison"][c]),
        "parts": {v: _ratios(results[v], results["bare"]) for v in variants[2:]},
        "rounds": args.rounds,
        "duration_s": args.duration,
        "loadavg_after": os.getloadavg()[0],
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
