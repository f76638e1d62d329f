"""The robustness curve: robust accuracy at each ε, with sample sizes and Wilson intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from garrison.core.metrics import wilson_interval

__all__ = ["CurvePoint", "wilson_interval"]


@dataclass(frozen=True)
class CurvePoint:
    """Robust accuracy at one ε: ``robust`` of ``n`` samples stay correct; ``fooled`` of the ``clean`` correctly
    classified ones were fooled (the attack success rate is ``fooled / clean``)."""

    eps: float
    n: int
    robust: int
    clean: int
    fooled: int

    @property
    def robust_accuracy(self) -> float:
        return self.robust / self.n if self.n else math.nan

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.robust, self.n)

    @property
    def success_rate(self) -> float:
        return self.fooled / self.clean if self.clean else math.nan

    @property
    def success_ci(self) -> tuple[float, float]:
        return wilson_interval(self.fooled, self.clean)

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        return {
            "eps": self.eps,
            "n": self.n,
            "robust_accuracy": _finite(self.robust_accuracy),
            "ci_low": _finite(lo),
            "ci_high": _finite(hi),
            "success_rate": _finite(self.success_rate),
        }


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
