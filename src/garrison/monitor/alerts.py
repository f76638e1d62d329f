"""Alerts: what the service tells people, deduplicated and rate limited, to a JSON log and a webhook.

An :class:`Alert` carries a ``kind`` (the signal: ``drift``, ``ood``, ``adversarial``, ``probing``, ...), a
severity, a one-line message and JSON details (never request payloads). :class:`AlertRouter` sends each alert to
its sinks unless the same ``(kind, subject)`` was sent less than ``min_interval_s`` ago (deduplication; the
suppressed count rides on the next one) or more than ``max_per_minute`` alerts went out in the last minute (a
storm: one summary alert says how many were dropped). Time is passed in, never read here.

Sinks: :class:`JsonLogSink` appends one JSON object per line (flushed per alert: a structured log any collector
can tail); :class:`WebhookSink` posts a Slack-compatible ``{"text": ...}`` payload (with the alert under
``"garrison"``) from a background thread, so a slow receiver never delays a request; failures are counted, not
raised. The service's Prometheus metrics (``garrison_alerts_total``) are the third path, for Alertmanager.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Alert", "AlertRouter", "AlertSink", "JsonLogSink", "WebhookSink"]

SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class Alert:
    """One alert. ``subject`` is what it is about (an API key id, a feature, the model); ``time`` is wall-clock
    seconds since the epoch, supplied by the caller."""

    kind: str
    severity: str
    message: str
    subject: str = ""
    time: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    suppressed: int = 0

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"`severity` must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "subject": self.subject,
            "time": self.time,
            "details": self.details,
            "suppressed": self.suppressed,
        }


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class JsonLogSink:
    """Appends each alert as one JSON line to ``path`` (created with its parent directories)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        line = json.dumps(alert.to_dict(), sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


class WebhookSink:
    """Posts alerts to a Slack-compatible incoming webhook ``url`` from one background thread.

    ``client`` is an ``httpx.Client`` (inject a transport for tests that should not open sockets); at most
    ``max_queue`` alerts wait, further ones are dropped and counted in ``dropped``; ``failed`` counts posts that
    raised or got a non-2xx answer. :meth:`close` drains the queue.
    """

    def __init__(
        self, url: str, *, client: Any = None, timeout_s: float = 5.0, max_queue: int = 1000
    ) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise ValueError("`url` must be an http(s) URL")
        self.url = url
        self._client = client or httpx.Client(timeout=timeout_s)
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=max_queue)
        self.sent = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="garrison-webhook", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:  # the URL of a webhook is a secret
        return "WebhookSink(url=***)"

    def send(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout_s: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            icon = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_circle:"}
            text = f"{icon.get(alert.severity, ':information_source:')} [{alert.severity}] {alert.kind}: {alert.message}"
            if alert.suppressed:
                text += f" (+{alert.suppressed} similar suppressed)"
            try:
                response = self._client.post(self.url, json={"text": text, "garrison": alert.to_dict()})
                ok = 200 <= response.status_code < 300
            except Exception:  # a webhook outage must never take the service down
                ok = False
            if ok:
                self.sent += 1
            else:
                self.failed += 1


class AlertRouter:
    """Deduplicates and rate-limits alerts, then sends them to every sink (see the module docstring).

    ``on_send`` (e.g. a Prometheus counter) is called with each alert that went out.
    """

    def __init__(
        self,
        sinks: Sequence[AlertSink],
        *,
        min_interval_s: float = 60.0,
        max_per_minute: int = 30,
        on_send: Callable[[Alert], None] | None = None,
    ) -> None:
        if min_interval_s < 0:
            raise ValueError(f"`min_interval_s` must be >= 0, got {min_interval_s!r}")
        if max_per_minute < 1:
            raise ValueError(f"`max_per_minute` must be >= 1, got {max_per_minute!r}")
        self.sinks = list(sinks)
        self.min_interval_s = min_interval_s
        self.max_per_minute = max_per_minute
        self.on_send = on_send
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}
        self._recent: deque[float] = deque()
        self._storm_dropped = 0
        self._lock = threading.Lock()

    def emit(self, alert: Alert) -> bool:
        """Send ``alert`` unless it is a duplicate or over the rate; whether it went out."""
        key = (alert.kind, alert.subject)
        now = alert.time
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.min_interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            while self._recent and now - self._recent[0] >= 60.0:
                self._recent.popleft()
            if len(self._recent) >= self.max_per_minute:
                self._storm_dropped += 1
                return False
            outgoing = [alert]
            if self._storm_dropped and len(self._recent) + 1 < self.max_per_minute:
                outgoing.append(Alert("alert-storm", "medium", f"{self._storm_dropped} alerts were dropped by the "
                                      f"rate limit ({self.max_per_minute} per minute)", time=now))  # fmt: skip
                self._storm_dropped = 0
            suppressed = self._suppressed.pop(key, 0)
            if suppressed:
                outgoing[0] = Alert(**{**_fields(alert), "suppressed": suppressed})
            self._last[key] = now
            self._recent.extend(now for _ in outgoing)
        for a in outgoing:
            for sink in self.sinks:
                sink.send(a)
            if self.on_send is not None:
                self.on_send(a)
        return True


def _fields(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "subject": alert.subject,
        "time": alert.time,
        "details": alert.details,
    }
