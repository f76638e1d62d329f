"""Alert routing: deduplication, storm limiting, the JSON log and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from garrison.monitor.alerts import Alert, AlertRouter, JsonLogSink, WebhookSink


class _Collect:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_the_same_alert_is_sent_once_per_interval_and_counts_what_it_suppressed() -> None:
    sink = _Collect()
    router = AlertRouter([sink], min_interval_s=60)
    assert router.emit(Alert("probing", "high", "key k1 looks like extraction", subject="k1", time=0))
    assert not router.emit(Alert("probing", "high", "again", subject="k1", time=10))
    assert not router.emit(Alert("probing", "high", "again", subject="k1", time=59))
    assert router.emit(Alert("probing", "high", "key k2", subject="k2", time=20))  # another subject
    assert router.emit(Alert("probing", "high", "still", subject="k1", time=61))
    assert [(a.subject, a.suppressed) for a in sink.alerts] == [("k1", 0), ("k2", 0), ("k1", 2)]


def test_an_alert_storm_is_capped_and_summarised() -> None:
    sink = _Collect()
    sent: list[str] = []
    router = AlertRouter([sink], min_interval_s=0, max_per_minute=5, on_send=lambda a: sent.append(a.kind))
    out = [router.emit(Alert("ood", "medium", f"row {i}", subject=str(i), time=float(i))) for i in range(12)]
    assert sum(out) == 5
    router.emit(Alert("ood", "medium", "later", subject="x", time=100.0))
    assert sent[-2:] == ["ood", "alert-storm"]
    assert "7 alerts were dropped" in sink.alerts[-1].message


def test_bad_severity_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="severity"):
        Alert("x", "urgent", "m")
    with pytest.raises(ValueError, match="max_per_minute"):
        AlertRouter([], max_per_minute=0)


def test_json_log_holds_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "alerts.jsonl"
    router = AlertRouter([JsonLogSink(path)], min_interval_s=0)
    router.emit(Alert("drift", "medium", "3 features drifted", subject="model", time=1.0, details={"n": 3}))
    router.emit(Alert("probing", "high", "k1", subject="k1", time=2.0))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["kind"] for d in lines] == ["drift", "probing"]
    assert lines[0]["details"] == {"n": 3} and lines[0]["schema_version"] == 1


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_webhook_posts_a_slack_compatible_payload_to_a_real_server() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        sink = WebhookSink(url)
        assert "127.0.0.1" not in repr(sink)
        AlertRouter([sink], min_interval_s=0).emit(
            Alert("probing", "high", "key k1 probing", subject="k1", time=5)
        )
        sink.close()
        _Receiver.status = 500
        refused = WebhookSink(url)
        AlertRouter([refused], min_interval_s=0).emit(Alert("drift", "medium", "drift", time=6))
        refused.close()
        assert (sink.sent, sink.failed, refused.sent, refused.failed) == (1, 0, 0, 1)
        first = _Receiver.received[0]
        assert first["text"].startswith(":red_circle: [high] probing: key k1 probing")
        assert first["garrison"]["subject"] == "k1"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_webhook_is_counted_not_raised() -> None:
    sink = WebhookSink("http://127.0.0.1:9/never", timeout_s=0.5)
    sink.send(Alert("x", "low", "m", time=0))
    started = time.monotonic()
    sink.close()
    assert sink.failed == 1 and time.monotonic() - started < 10
