"""Prometheus metrics of the guarded service, in the app's own registry (never the process-global one)."""

from __future__ import annotations

from typing import Any

__all__ = ["ServiceMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """Counters and histograms an Alertmanager rule can use:

    - ``garrison_requests_total{route, status}``; ``garrison_request_seconds{route}``;
    - ``garrison_rows_total{route}``: rows predicted or explained;
    - ``garrison_rejected_total{reason}``: auth, scope, rate, body, validation refusals;
    - ``garrison_detections_total{detector}``: rows or keys a detector flagged;
    - ``garrison_drifted_features``: features drifted at the last window check; ``garrison_alerts_total{kind}``;
    - ``garrison_feedback_labels_total{result}`` and ``garrison_live_accuracy`` from late labels.
    """

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "garrison_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram("garrison_request_seconds", "request latency", ["route"], buckets=_LATENCY_BUCKETS,
                                 registry=r)  # fmt: skip
        self.rows = Counter("garrison_rows", "rows predicted or explained", ["route"], registry=r)
        self.rejected = Counter("garrison_rejected", "requests refused, by reason", ["reason"], registry=r)
        self.detections = Counter(
            "garrison_detections", "rows or keys flagged, by detector", ["detector"], registry=r
        )
        self.drifted = Gauge(
            "garrison_drifted_features", "features drifted at the last window check", registry=r
        )
        self.alerts = Counter("garrison_alerts", "alerts sent, by kind", ["kind"], registry=r)
        self.feedback = Counter(
            "garrison_feedback_labels", "late labels, joined or unknown", ["result"], registry=r
        )
        self.live_accuracy = Gauge(
            "garrison_live_accuracy", "accuracy over the last joined late labels", registry=r
        )
        self.hook_errors = Counter(
            "garrison_hook_errors", "detector or monitor failures", ["hook"], registry=r
        )
        self._request_children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._rows_children: dict[str, Any] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one request (children are cached: ``labels()`` costs more than ``inc()``)."""
        key = (route, str(status))
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def count_rows(self, route: str, n: int) -> None:
        child = self._rows_children.get(route)
        if child is None:
            child = self._rows_children[route] = self.rows.labels(route)
        child.inc(n)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
