"""kill -9 of `garrison serve` under concurrent traffic loses no acknowledged audit-log entry."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

pytest.importorskip("fastapi")

from garrison.audit.demo import write_demo_project
from garrison.store import AuditLog, Store, verify_log


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_kill_9_under_traffic_keeps_every_acknowledged_entry_and_the_chain(tmp_path: Path) -> None:
    config = write_demo_project(tmp_path, report_dir=tmp_path / "report")
    config.write_text(config.read_text() + "serve: {rate: 100000, burst: 100000, explain: false}\n")
    url = f"sqlite:///{tmp_path / 'garrison.db'}"
    with Store.open(url) as store:
        secret = store.create_key("load", ["predict"])[1]
    port = _port()
    env = {**os.environ, "GARRISON_DB_URL": url}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "garrison", "serve", "--config", str(config), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.2)
    rows = pd.read_csv(tmp_path / "test.csv").drop(columns="target").iloc[:5].to_dict("records")
    acknowledged: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=5) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/predict", json={"instances": rows})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200:
                    acknowledged.append(r.json()["request_id"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    started = time.monotonic()
    while len(acknowledged) < 150 and time.monotonic() - started < 60:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    log.close()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acknowledged) >= 150
    journal = tmp_path / ".garrison" / "journal"
    assert list(journal.glob("w0.*.journal")), "the killed service left no journal"
    # what an operator runs after the crash: the journal's entries join the chain, then the chain is checked
    verify = subprocess.run([sys.executable, "-m", "garrison", "log", "verify", "--store", url, "--journal", str(journal)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "journalled entr" in verify.stderr + verify.stdout
    assert not list(journal.glob("w0.*.journal"))
    with Store.open(url) as store:
        logged = {e.payload.get("request_id") for e in AuditLog(store, worker="w0").entries()}
        assert set(acknowledged) <= logged
        assert verify_log(store).ok
