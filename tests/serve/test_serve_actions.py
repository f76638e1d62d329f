"""Playbook actions on a real running service: quarantine writes encrypted rows, abstain answers 503, throttle
slows the key down, block refuses it; each over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from garrison.core import load_config
from garrison.protect.encryption import decrypt_file
from garrison.protect.keys import KeyEncryptionKey, write_key_file
from garrison.serve import build_service
from garrison.serve.actions import ServiceActions
from garrison.store import Store


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Iterator[dict[str, Any]]:
    from garrison.audit.demo import write_demo_project

    root = tmp_path_factory.mktemp("actions")
    config = write_demo_project(root, report_dir=root / "report")
    config.write_text(config.read_text() + "serve: {rate: 1000, burst: 1000, explain: false}\n")
    url = f"sqlite:///{root / 'g.db'}"
    with Store.open(url) as store:
        ids = {name: store.create_key(name, ["predict"]) for name in ("a", "b", "c")}
    bundle = build_service(load_config(config), store_url=url)
    server, thread, base = serve_app(bundle)
    try:
        yield {"root": root, "bundle": bundle, "base": base, "ids": ids}
    finally:
        server.should_exit = True
        thread.join(10)
        bundle.close()


def _post(live: dict[str, Any], name: str) -> httpx.Response:
    row = pd.read_csv(live["root"] / "test.csv").drop(columns="target").iloc[0].to_dict()
    secret = live["ids"][name][1]
    return httpx.post(f"{live['base']}/v1/predict", json={"instances": [row]},
                      headers={"Authorization": f"Bearer {secret}"}, timeout=10)  # fmt: skip


def test_quarantine_stores_the_rows_encrypted_and_only_the_key_opens_them(live: dict[str, Any]) -> None:
    root: Path = live["root"]
    key = KeyEncryptionKey.from_file(write_key_file(root / "q.key"))
    actions = ServiceActions(live["bundle"].service, quarantine_dir=root / "quarantine", quarantine_key=key)
    rows = np.array([[1.0, 2.0], [3.0, 4.0]])
    message = actions.quarantine("key-1", rows, 7)
    [stored] = list((root / "quarantine").glob("incident-7-*.garrison"))
    assert message.endswith(stored.name) and b"3.0" not in stored.read_bytes()
    decrypt_file(stored, root / "opened.json", key)
    opened = json.loads((root / "opened.json").read_text())
    assert opened["rows"] == rows.tolist() and opened["key"] == "key-1" and opened["incident"] == 7
    with pytest.raises(RuntimeError, match="quarantine_key"):
        ServiceActions(live["bundle"].service).quarantine("key-1", rows, 8)


def test_abstain_throttle_and_block_change_what_the_key_gets(live: dict[str, Any]) -> None:
    service = live["bundle"].service
    actions = ServiceActions(service)
    assert _post(live, "a").status_code == 200
    actions.abstain(live["ids"]["a"][0])
    r = _post(live, "a")
    assert r.status_code == 503 and r.json()["error"]["code"] == "abstained"
    actions.throttle(live["ids"]["b"][0], 0.5)  # one token, refilled every 2 s
    assert [_post(live, "b").status_code for _ in range(3)] == [200, 429, 429]
    actions.block(live["ids"]["c"][0])
    assert _post(live, "c").json()["error"]["code"] == "blocked"
    assert _post(live, "a").status_code == 503  # each key kept its own fate
