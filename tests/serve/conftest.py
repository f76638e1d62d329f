"""A real guarded service for the serve tests: the demo project, a SQLite store with keys, uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from garrison.audit.demo import write_demo_project
from garrison.core import load_config
from garrison.serve import ServiceBundle, build_service
from garrison.store import Store
from garrison.testing.servers import serve_in_thread

SERVE_SECTION = """
serve:
  rate: 2000
  burst: 400
  max_batch: 64
  max_body_bytes: 65536
  drift_window: 60
  drift_every: 60
  drift_min_interval_s: 0
  squeezing: true
  feedback_window: 20
  fallback_model: model.skops
  head_key: head.pem
  head_export_s: 0.2
  keys_reload_s: 0.2
  alerts: {{log: alerts.jsonl, min_interval_s: 0}}
  playbooks:
    - {{name: watch-drift, when: drift, then: [notify]}}
    - {{name: degrade, when: performance, then: [notify, fallback]}}
    - name: stop-probing
      when: probing
      min_severity: high
      then: [notify, block]
"""


@dataclass
class Running:
    url: str
    root: Path
    bundle: ServiceBundle
    store_url: str
    keys: dict[str, str]


@pytest.fixture(scope="session")
def serve_app() -> object:
    """``serve_app(bundle) -> (server, thread, url)``: uvicorn on a free port of 127.0.0.1 in a thread."""
    return lambda bundle: serve_in_thread(bundle.app)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("serve")
    config = write_demo_project(root, report_dir=root / "report")
    config.write_text(config.read_text() + SERVE_SECTION.format())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signing = Ed25519PrivateKey.generate()
    (root / "head.pem").write_bytes(signing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))  # fmt: skip
    (root / "head.pub").write_bytes(signing.public_key().public_bytes(serialization.Encoding.PEM,
                                                                      serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    store_url = f"sqlite:///{root / 'garrison.db'}"
    keys = {}
    with Store.open(store_url) as store:
        for name, scopes in (("client", ["predict", "explain"]), ("explainer-only", ["explain"]),
                             ("ops", ["admin"]), ("attacker", ["predict"]), ("feed", ["predict"])):  # fmt: skip
            keys[name] = store.create_key(name, scopes)[1]
    bundle = build_service(load_config(config), store_url=store_url)
    server, thread, url = serve_in_thread(bundle.app)
    try:
        yield Running(url, root, bundle, store_url, keys)
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(10)
        bundle.close()
