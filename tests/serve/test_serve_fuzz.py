"""Schemathesis against the live service's OpenAPI on 127.0.0.1: valid and invalid requests, never a 5xx.

Bounded: a fixed number of examples per operation and mode, no example database, no deadline flakiness.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

from garrison.audit.demo import write_demo_project  # noqa: E402
from garrison.core import load_config  # noqa: E402
from garrison.serve import build_service  # noqa: E402
from garrison.store import Store  # noqa: E402

EXAMPLES = 40


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("fuzz")
    config = write_demo_project(root, report_dir=root / "report")
    # no playbooks: the fuzzer's odd queries must not get its own key blocked half-way
    config.write_text(config.read_text() + "serve: {rate: 100000, burst: 100000, max_batch: 16}\n")
    url = f"sqlite:///{root / 'garrison.db'}"
    with Store.open(url) as store:
        key = store.create_key("fuzzer", ["predict", "explain", "admin"])[1]
    bundle = build_service(load_config(config), store_url=url)
    server, thread, base = serve_app(bundle)
    try:
        yield base, key
    finally:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(10)
        bundle.close()


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_generated_request_gets_a_server_error(service: tuple[str, str], mode: str) -> None:
    base, key = service
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers={"Authorization": f"Bearer {key}"})
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode))

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def call(case: Any) -> None:
            label = case.operation.label
            for headers in ({"Authorization": f"Bearer {key}"}, {}):
                response = case.call(base_url=base, headers=headers, timeout=30)
                seen.setdefault(label, set()).add(response.status_code)
                assert response.status_code < 500, (label, response.status_code)
                if response.status_code >= 400:
                    assert set(response.json()) == {"error"}  # our error shape, never an echo of the input

        try:
            call()
        except Unsatisfiable:  # an operation without inputs has no invalid request to generate
            assert mode == "negative" and operation.label != "POST /v1/predict"
    assert seen["POST /v1/predict"] >= ({200, 401} if mode == "positive" else {401})
    if mode == "negative":
        assert seen["POST /v1/predict"] & {400, 413, 415, 422}
