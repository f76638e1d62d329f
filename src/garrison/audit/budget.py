"""A cooperative time budget: long-running work calls :meth:`Budget.check` between batches."""

from __future__ import annotations

import time
from collections.abc import Callable

from garrison.core.errors import BudgetExceeded

__all__ = ["Budget"]


class Budget:
    """``seconds=None`` is unlimited. The clock is injectable for tests."""

    def __init__(self, seconds: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._start = clock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    @property
    def remaining(self) -> float:
        return float("inf") if self.seconds is None else max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        return self.seconds is not None and self.elapsed >= self.seconds

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` when the budget is spent."""
        if self.expired:
            assert self.seconds is not None
            raise BudgetExceeded(self.seconds)
