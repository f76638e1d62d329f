"""A measured number with its uncertainty."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Z95", "Metric", "wilson_interval"]

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True, slots=True)
class Metric:
    """One measurement a check made.

    ``name`` is local to the check (``accuracy``); the policy refers to it as ``<check_id>.<name>``.
    ``ci_low``/``ci_high`` bound a 95 % confidence interval where the check can give one; ``n`` is the sample size.
    """

    name: str
    value: float
    n: int | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    unit: str = ""
    higher_is_better: bool | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _finite_or_none(self.value),
            "n": self.n,
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        value = data.get("value")
        return cls(
            name=data["name"],
            value=float("nan") if value is None else float(value),
            n=data.get("n"),
            ci_low=data.get("ci_low"),
            ci_high=data.get("ci_high"),
            unit=data.get("unit", ""),
            higher_is_better=data.get("higher_is_better"),
            description=data.get("description", ""),
        )


def _finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN or infinity; a non-finite number is written as null."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default); ``(nan, nan)`` when ``n`` is 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, not 1 - 1e-16
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
