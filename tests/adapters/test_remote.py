from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from garrison.adapters.base import Classifier, InputSpec, WhiteBoxClassifier
from garrison.adapters.remote import RemoteClassifier
from garrison.core.errors import ModelInputMismatchError, RemoteModelError

TOKEN = "s3cr3t-t0ken-do-not-leak-4f9a"
SPEC = InputSpec((4,))


@dataclass
class Behaviour:
    """What the test server does; the handler reads it under ``lock``."""

    fail_first: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    raw_response: bytes | None = None
    echo_headers_on_error: bool = False
    requests: list[int] = field(default_factory=list)  # rows per request, -1 when the request was refused
    payloads: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Server:
    url: str
    behaviour: Behaviour
    model: LogisticRegression


@pytest.fixture(scope="module")
def iris_model() -> tuple[LogisticRegression, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(x, y), x


def _handler(model: LogisticRegression, behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with behaviour.lock:
                fail = len(behaviour.requests) < behaviour.fail_first
                behaviour.requests.append(-1)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                detail = {"error": "unauthorized"}
                if behaviour.echo_headers_on_error:
                    detail["seen"] = str(self.headers.get("Authorization"))
                self._send(401, json.dumps(detail).encode())
                return
            if fail:
                self._send(behaviour.fail_status, b'{"error": "try again"}')
                return
            if behaviour.delay_s:
                time.sleep(behaviour.delay_s)
            if behaviour.raw_response is not None:
                self._send(200, behaviour.raw_response)
                return
            try:
                inputs = json.loads(body)["inputs"]
                x = np.array([[np.nan if v is None else v for v in row] for row in inputs], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as exc:
                self._send(422, json.dumps({"error": str(exc)}).encode())
                return
            with behaviour.lock:
                behaviour.requests[-1] = len(x)
                behaviour.payloads.append(inputs)
            proba = model.predict_proba(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
            self._send(200, json.dumps({"probabilities": proba.tolist()}).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (timeout test)
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here


@pytest.fixture
def server(iris_model: tuple[LogisticRegression, np.ndarray]) -> Iterator[Server]:
    model, _ = iris_model
    behaviour = Behaviour()
    httpd = _QuietServer(("127.0.0.1", 0), _handler(model, behaviour))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}/predict", behaviour, model)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _client(server: Server, **kwargs: Any) -> RemoteClassifier:
    options: dict[str, Any] = {
        "n_classes": 3,
        "input_spec": SPEC,
        "headers": {"Authorization": f"Bearer {TOKEN}"},
        "backoff_s": 0.01,
    }
    options.update(kwargs)
    return RemoteClassifier(server.url, **options)


def test_predictions_match_the_served_model(
    server: Server, iris_model: tuple[LogisticRegression, np.ndarray]
) -> None:
    _, x = iris_model
    with _client(server, batch_size=64) as clf:
        assert isinstance(clf, Classifier)
        assert not isinstance(clf, WhiteBoxClassifier)
        proba = clf.predict_proba(x)
        assert proba.dtype == np.float64
        np.testing.assert_allclose(proba, server.model.predict_proba(x), atol=1e-12)
        assert server.behaviour.requests == [64, 64, 22]  # batching splits requests
        assert clf.predict_proba(x[:0]).shape == (0, 3)
        assert server.behaviour.requests == [64, 64, 22]  # an empty batch sends nothing


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_failures_are_retried(server: Server, status: int) -> None:
    server.behaviour.fail_first, server.behaviour.fail_status = 2, status
    with _client(server, retries=3) as clf:
        proba = clf.predict_proba(np.ones((5, 4)))
    np.testing.assert_allclose(proba, server.model.predict_proba(np.ones((5, 4))), atol=1e-12)
    assert server.behaviour.requests == [-1, -1, 5]


def test_persistent_failure_gives_up_after_the_last_retry(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.behaviour.fail_first = 100
    with (
        caplog.at_level(logging.DEBUG),
        _client(server, retries=2) as clf,
        pytest.raises(RemoteModelError, match=r"failed after 3 attempt.*HTTP 503") as info,
    ):
        clf.predict_proba(np.ones((2, 4)))
    assert info.value.status_code == 503
    assert info.value.url == server.url
    assert len(server.behaviour.requests) == 3
    assert next(r.getMessage() for r in caplog.records if r.name == "garrison.adapters.remote").startswith(
        f"retrying {server.url}"
    )
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_unauthorized_fails_at_once_without_leaking_the_token(server: Server) -> None:
    server.behaviour.echo_headers_on_error = True
    wrong = "Bearer wrong-token-that-is-also-secret"
    with (
        _client(server, headers={"Authorization": wrong}, retries=3) as clf,
        pytest.raises(RemoteModelError, match="HTTP 401, not retried") as info,
    ):
        clf.predict_proba(np.ones((2, 4)))
    assert info.value.status_code == 401
    assert len(server.behaviour.requests) == 1  # no retry on a 4xx
    message = str(info.value)
    assert "wrong-token-that-is-also-secret" not in message
    assert "[redacted]" in message  # the server echoed the header back; the excerpt hides it
    assert "wrong-token" not in repr(clf)


def test_the_token_never_appears_in_errors_reprs_or_logs(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.behaviour.fail_first = 100
    clf = _client(server, retries=1, name="iris")
    with caplog.at_level(logging.DEBUG), pytest.raises(RemoteModelError) as info:
        clf.predict_proba(np.ones((2, 4)))
    clf.close()
    texts = [
        str(info.value),
        repr(info.value),
        repr(clf),
        str(clf),
        *(r.getMessage() for r in caplog.records),
    ]
    assert caplog.records  # the retry was logged (httpx logs the requests too)
    assert all(TOKEN not in text for text in texts)
    assert repr(clf) == f"RemoteClassifier(name='iris', url='{server.url}', n_classes=3)"


def test_url_credentials_and_query_are_not_shown(server: Server) -> None:
    port = server.url.split(":")[2].split("/")[0]
    url = f"http://user:pa55word-secret@127.0.0.1:{port}/predict?api_key=query-secret"
    with RemoteClassifier(url, n_classes=3, input_spec=SPEC, retries=0) as clf:
        assert clf.url == server.url
        with pytest.raises(RemoteModelError, match="HTTP 401") as info:
            clf.predict_proba(np.ones((1, 4)))
        for text in (repr(clf), str(info.value)):
            assert "pa55word-secret" not in text
            assert "query-secret" not in text


def test_a_timeout_becomes_remote_model_error(server: Server) -> None:
    server.behaviour.delay_s = 1.0
    start = time.monotonic()
    with (
        _client(server, timeout_s=0.2, retries=1) as clf,
        pytest.raises(RemoteModelError, match="timeout") as info,
    ):
        clf.predict_proba(np.ones((1, 4)))
    assert time.monotonic() - start < 0.9
    assert info.value.status_code is None
    assert len(server.behaviour.requests) == 2


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RemoteClassifier(
            f"http://127.0.0.1:{port}/p", n_classes=3, input_spec=SPEC, retries=1, backoff_s=0
        ) as clf,
        pytest.raises(RemoteModelError, match=r"failed after 2 attempt.*connection error \(ConnectError\)"),
    ):
        clf.predict_proba(np.ones((1, 4)))


def test_non_finite_inputs_are_sent_as_null(server: Server) -> None:
    x = np.array([[1.0, np.nan, 2.0, np.inf], [0.5, 0.5, -np.inf, 1.0]], dtype=np.float32)
    with _client(server) as clf:
        proba = clf.predict_proba(x)
    assert server.behaviour.payloads == [[[1.0, None, 2.0, None], [0.5, 0.5, None, 1.0]]]
    assert proba.shape == (2, 3)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"<html>oops</html>", "not JSON"),
        (b'{"scores": [[0.1, 0.2, 0.7]]}', "no 'probabilities' key"),
        (b"[[0.1, 0.2, 0.7]]", "no 'probabilities' key"),
        (b'{"probabilities": [[0.1, 0.9]]}', "list of 1 rows of 3 numbers"),
        (b'{"probabilities": [[0.1, 0.2, 0.7], [0.1, 0.2, 0.7]]}', "list of 1 rows of 3 numbers"),
        (b'{"probabilities": [[0.1, "0.2", 0.7]]}', "list of 1 rows of 3 numbers"),
        (b'{"probabilities": [[0.1, null, 0.7]]}', "list of 1 rows of 3 numbers"),
        (b'{"probabilities": [[true, false, true]]}', "list of 1 rows of 3 numbers"),
    ],
)
def test_malformed_responses_are_remote_model_errors(server: Server, raw: bytes, problem: str) -> None:
    server.behaviour.raw_response = raw
    with _client(server, retries=3) as clf, pytest.raises(RemoteModelError, match=problem) as info:
        clf.predict_proba(np.ones((1, 4)))
    assert info.value.status_code == 200
    assert len(server.behaviour.requests) == 1  # a bad answer is not retried


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["probabilities", "x"]), inner)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(body=st.one_of(st.binary(max_size=100), _json.map(lambda v: json.dumps(v).encode())))
def test_any_response_body_is_an_array_or_remote_model_error(body: bytes) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with RemoteClassifier(
        "http://model.test/p", n_classes=2, input_spec=InputSpec((1,)), transport=transport
    ) as clf:
        try:
            proba = clf.predict_proba(np.zeros((1, 1)))
        except RemoteModelError:
            return
    assert proba.shape == (1, 2)
    assert proba.dtype == np.float64


def test_constructor_validates_without_showing_header_values() -> None:
    for bad in (f"Bearer {TOKEN}\n", f"Bearer {TOKEN}\u00e9"):
        with pytest.raises(
            ValueError, match="header 'Authorization' must be a single-line ASCII string"
        ) as info:
            RemoteClassifier("http://h/p", n_classes=2, input_spec=SPEC, headers={"Authorization": bad})
        assert TOKEN not in str(info.value)
        assert info.value.__cause__ is None
    with pytest.raises(ValueError, match="`url` must be an http"):
        RemoteClassifier("ftp://h/p", n_classes=2, input_spec=SPEC)
    with pytest.raises(ValueError, match="`retries` must be >= 0"):
        RemoteClassifier("http://h/p", n_classes=2, input_spec=SPEC, retries=-1)


def test_wrong_input_shape_and_closed_client(server: Server) -> None:
    clf = _client(server)
    with pytest.raises(ModelInputMismatchError, match=r"samples of shape \(4,\)"):
        clf.predict_proba(np.ones((2, 5)))
    clf.close()
    with pytest.raises(RemoteModelError, match="closed"):
        clf.predict_proba(np.ones((1, 4)))
    assert server.behaviour.requests == []
