"""The guarded service's side of incident response: what each playbook action does to a running service."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.monitor.alerts import Alert, AlertRouter
from garrison.respond import Signal

if TYPE_CHECKING:
    from garrison.protect.keys import KeyEncryptionKey
    from garrison.serve.app import GuardedService

__all__ = ["ServiceActions"]


class ServiceActions:
    """Playbook actions on ``service``: alerts through ``alerts``; quarantined rows encrypted with
    ``quarantine_key`` under ``quarantine_dir``; ``fallback`` and ``rollback`` swap the served model through the
    given loaders (each returns ``(classifier, version)``, or raises to say why it cannot)."""

    def __init__(
        self,
        service: GuardedService,
        *,
        alerts: AlertRouter | None = None,
        quarantine_dir: str | Path | None = None,
        quarantine_key: KeyEncryptionKey | None = None,
        fallback: Callable[[], tuple[Any, str]] | None = None,
        rollback: Callable[[], tuple[Any, str]] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.alerts = alerts
        self.quarantine_dir = Path(quarantine_dir) if quarantine_dir is not None else None
        self.quarantine_key = quarantine_key
        self._fallback = fallback
        self._rollback = rollback
        self.wall_clock = wall_clock

    def notify(self, signal: Signal, incident: int) -> str:
        if self.alerts is None:
            return "no alert sink configured"
        alert = Alert(signal.kind, signal.severity, signal.message, subject=signal.subject, time=self.wall_clock(),
                      details={**signal.details, "incident": incident})  # fmt: skip
        sent = self.alerts.emit(alert)
        return "alert sent" if sent else "alert suppressed (duplicate or rate limited)"

    def block(self, subject: str) -> str:
        self.service.limiter.block(subject)
        return f"key {subject} blocked"

    def throttle(self, subject: str, rate: float) -> str:
        self.service.limiter.limit(subject, rate=rate, burst=max(1.0, rate))
        return f"key {subject} throttled to {rate:g} rows/s"

    def quarantine(self, subject: str, rows: np.ndarray | None, incident: int) -> str:
        if rows is None:
            return "no rows to quarantine"
        if self.quarantine_dir is None or self.quarantine_key is None:
            raise RuntimeError("quarantine needs serve.quarantine_dir and serve.quarantine_key")
        from garrison.protect.encryption import encrypt_stream

        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        document = json.dumps({"incident": incident, "key": subject, "time": self.wall_clock(),
                               "shape": list(rows.shape), "rows": np.asarray(rows).tolist()}).encode()  # fmt: skip
        target = self.quarantine_dir / f"incident-{incident}-{int(self.wall_clock() * 1000)}.json.garrison"
        partial = target.with_suffix(".part")
        with partial.open("wb") as f:
            encrypt_stream(io.BytesIO(document), f, self.quarantine_key)
        partial.replace(target)
        return f"{len(rows)} rows quarantined, encrypted, in {target.name}"

    def abstain(self, subject: str) -> str:
        self.service.abstaining.add(subject)
        return f"the service abstains for key {subject}"

    def fallback(self) -> str:
        if self._fallback is None:
            raise RuntimeError("no fallback model is configured")
        model, version = self._fallback()
        self.service.swap_model(model, version)
        return f"serving the fallback model {version}"

    def rollback(self) -> str:
        if self._rollback is None:
            raise RuntimeError("rollback needs the model registry (serve.store)")
        model, version = self._rollback()
        self.service.swap_model(model, version)
        return f"rolled back to version {version}"
