"""Detectors off the request path: requests hand their rows over; one thread runs the hooks on batches.

The service's detectors (out-of-distribution rows, low margins, query patterns per key, the drift window) cost
tens of microseconds per call but a few per row when vectorised over a batch. A request only appends
``(key, rows, probabilities, time)`` to a queue (about a microsecond); a daemon thread wakes every ``interval_s``,
concatenates what each key sent since, and calls each hook once per key. A playbook action a signal triggers
(blocking a key, say) therefore applies within about ``interval_s`` of the request that tipped it, not before its
response. A full queue drops the oldest work and counts it (``dropped``): detection degrades, serving does not.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["BackgroundHooks"]

Hook = Callable[[str, np.ndarray, np.ndarray, float], None]


class BackgroundHooks:
    """Runs ``hooks(key, x, probabilities, now)`` in one background thread (see the module docstring);
    ``on_error(hook, exc)`` is told of a hook that raised."""

    def __init__(
        self,
        hooks: Sequence[Hook],
        *,
        interval_s: float = 0.01,
        max_queue: int = 100_000,
        on_error: Callable[[Hook, BaseException], None] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"`interval_s` must be > 0, got {interval_s!r}")
        self.hooks = list(hooks)
        self.interval_s = interval_s
        self.on_error = on_error
        self.dropped = 0
        self.processed = 0
        self._queue: deque[tuple[str, np.ndarray, np.ndarray, float]] = deque(maxlen=max_queue)
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="garrison-detectors", daemon=True)
        self._thread.start()

    def submit(self, key: str, x: np.ndarray, probabilities: np.ndarray, now: float) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((key, x, probabilities, now))

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything submitted so far has been through the hooks (tests, shutdown)."""
        with self._idle:
            self._wake.set()
            self._idle.wait_for(lambda: not self._queue and not self._busy, timeout=timeout_s)

    def close(self) -> None:
        self.flush()
        self._stop = True
        self._wake.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            with self._idle:
                self._busy = True
            try:
                self._drain()
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    def _drain(self) -> None:
        work: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
        while self._queue:
            key, x, p, now = self._queue.popleft()
            work.setdefault(key, []).append((x, p, now))
        for key, items in work.items():
            x = items[0][0] if len(items) == 1 else np.concatenate([i[0] for i in items])
            p = items[0][1] if len(items) == 1 else np.concatenate([i[1] for i in items])
            now = items[-1][2]
            for hook in self.hooks:
                try:
                    hook(key, x, p, now)
                except Exception as exc:  # a failing detector is reported, never fatal to the thread
                    if self.on_error is not None:
                        self.on_error(hook, exc)
            self.processed += len(x)

    def __repr__(self) -> str:
        return f"BackgroundHooks({len(self.hooks)} hooks, {len(self._queue)} queued, {self.dropped} dropped)"
