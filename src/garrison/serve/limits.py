"""Per-key token-bucket rate limits for the guarded service.

Each API key gets a bucket of ``burst`` tokens refilled at ``rate`` tokens per second; a request of ``n`` rows
costs ``n`` tokens (so batching does not dodge the limit). The clock is passed in (``now``), never read here, so
the service decides which clock and tests decide time. State is one tuple per key; ``max_keys`` bounds memory by
forgetting the least recently seen key (it restarts with a full bucket, which only ever errs towards allowing).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["RateLimiter", "Throttle"]


@dataclass(frozen=True)
class Throttle:
    """A refused request: ``retry_after`` seconds until enough tokens are back."""

    retry_after: float


class RateLimiter:
    """Token buckets per key: ``rate`` tokens per second, ``burst`` at most; ``overrides`` per key id (a blocked key
    gets rate 0 through :meth:`block`)."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000) -> None:
        if not rate > 0:
            raise ValueError(f"`rate` must be > 0, got {rate!r}")
        if not burst >= 1:
            raise ValueError(f"`burst` must be >= 1, got {burst!r}")
        if max_keys < 1:
            raise ValueError(f"`max_keys` must be >= 1, got {max_keys!r}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._limits: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float, cost: float = 1.0) -> Throttle | None:
        """Spend ``cost`` tokens of ``key``'s bucket at time ``now`` (seconds, monotonic); a :class:`Throttle` when
        there are not enough (nothing is spent then)."""
        rate, burst = self._limits.get(key, (self.rate, self.burst))
        buckets = self._buckets
        tokens, last = buckets.pop(key, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - last) * rate)
        if len(buckets) >= self.max_keys:
            buckets.popitem(last=False)
        if tokens < cost:
            buckets[key] = (tokens, now)
            if rate <= 0 or cost > burst:
                return Throttle(retry_after=float("inf"))
            return Throttle(retry_after=(cost - tokens) / rate)
        buckets[key] = (tokens - cost, now)
        return None

    def limit(self, key: str, *, rate: float, burst: float | None = None) -> None:
        """Give ``key`` its own rate (0 blocks it; a playbook's "throttle" uses a lower one)."""
        if rate < 0:
            raise ValueError(f"`rate` must be >= 0, got {rate!r}")
        self._limits[key] = (rate, self.burst if burst is None else burst)
        self._buckets.pop(key, None)

    def block(self, key: str) -> None:
        """Refuse every further request of ``key`` until :meth:`unblock`."""
        self._limits[key] = (0.0, 0.0)
        self._buckets.pop(key, None)

    def unblock(self, key: str) -> None:
        self._limits.pop(key, None)

    def blocked(self, key: str) -> bool:
        return self._limits.get(key, (1.0, 1.0))[0] <= 0
