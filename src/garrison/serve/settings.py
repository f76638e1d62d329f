"""Settings of the guarded service: the ``serve:`` section of garrison.yaml, with sane defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ServeSettings"]


@dataclass(frozen=True)
class ServeSettings:
    """Limits and switches of :func:`garrison.serve.create_app`.

    ``max_body_bytes`` and ``max_batch`` cap a request (413 / 422); ``rate`` rows per second with ``burst`` per API
    key (429 with ``Retry-After``); ``timeout_s`` bounds one model call (503 when it runs over); ``explain_top_k``
    features per row in ``/v1/explain``; ``log_payloads`` keeps request bodies in the audit log (by default only
    their SHA-256); ``drift_every`` rows (and at least ``drift_min_interval_s`` seconds) between drift checks of the
    sliding window of ``drift_window`` rows; ``squeezing`` adds feature squeezing to the detectors (one more model
    call per row, off the request path); ``detect_interval_s`` between the detector thread's passes over the rows
    requests handed it (larger batches cost less per row; a playbook action lags its signal by about this much).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1 << 20
    max_batch: int = 256
    rate: float = 50.0
    burst: float = 200.0
    timeout_s: float = 10.0
    explain_top_k: int = 3
    log_payloads: bool = False
    drift_window: int = 1000
    drift_every: int = 500
    drift_min_interval_s: float = 30.0
    worker: str = "w0"
    offload: bool = False
    squeezing: bool = False
    feedback_window: int = 500
    strip_sample: float = 0.0
    detect_interval_s: float = 0.1

    def __post_init__(self) -> None:
        checks = {
            "port": 0 <= self.port <= 65535,
            "max_body_bytes": self.max_body_bytes >= 64,
            "max_batch": self.max_batch >= 1,
            "rate": self.rate > 0,
            "burst": self.burst >= 1,
            "timeout_s": self.timeout_s > 0,
            "explain_top_k": self.explain_top_k >= 1,
            "drift_window": self.drift_window >= 10,
            "drift_every": self.drift_every >= 1,
            "feedback_window": self.feedback_window >= 1,
            "strip_sample": 0 <= self.strip_sample <= 1,
            "drift_min_interval_s": self.drift_min_interval_s >= 0,
            "detect_interval_s": 0 < self.detect_interval_s <= 10,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"`serve.{name}` is out of range, got {getattr(self, name)!r}")

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> ServeSettings:
        """Settings from the validated ``serve:`` section (unset keys keep their defaults)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known and v is not None})
