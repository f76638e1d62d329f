"""What differential privacy promises a membership attack: the highest TPR any attack can reach at each FPR.

An (ε, δ)-DP training algorithm limits every membership test (Kairouz et al. 2015):
``TPR <= min(1, e^ε · FPR + δ, 1 - e^-ε · (1 - δ - FPR))``. A mechanism is (ε(δ), δ)-DP for a whole curve of δ,
so the bound is the minimum over a grid of δ. ε(δ) comes from Opacus' PRV accountant (numerically tight, an upper
estimate) or its RDP accountant, given the training history ``(noise_multiplier, sample_rate, steps)``; never from
a Gaussian (CLT) approximation, which can understate ε. For a model trained elsewhere a claimed single (ε, δ) point
stands in for the curve.

:func:`judge_claim` compares an attack with the bound: the claim is contradicted only when, at some operating
point, the attack's TPR lower confidence bound exceeds the bound at the FPR's upper confidence bound (both
Clopper–Pearson, Bonferroni-corrected over the points), so sampling noise alone does not raise the finding.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.core.optional import import_optional
from garrison.privacy.roc import OperatingPoint, clopper_pearson

__all__ = ["ClaimVerdict", "PrivacyBound", "bound_from_accountant", "bound_from_claim", "judge_claim"]

DEFAULT_DELTAS: tuple[float, ...] = tuple(float(d) for d in np.geomspace(1e-10, 0.2, 12))


def _max_tpr(fpr: np.ndarray, eps: float, delta: float) -> np.ndarray:
    if not math.isfinite(eps):
        return np.ones_like(fpr)
    a = np.clip(fpr, 0.0, 1.0)
    upper = np.minimum(math.exp(min(eps, 700.0)) * a + delta, 1.0 - math.exp(-eps) * (1.0 - delta - a))
    return np.clip(upper, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class PrivacyBound:
    """The (ε, δ) points a model is known or claimed to satisfy, and the TPR ceiling they imply."""

    points: tuple[tuple[float, float], ...]
    source: str

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a privacy bound needs at least one (epsilon, delta) point")
        for eps, delta in self.points:
            if not eps >= 0 or not 0 <= delta <= 1:
                raise ValueError(
                    f"(epsilon, delta) must have epsilon >= 0 and delta in [0, 1], got ({eps}, {delta})"
                )

    def max_tpr(self, fpr: float | Sequence[float] | np.ndarray) -> np.ndarray:
        """Highest TPR any attack can reach at each ``fpr`` (float64 array of ``fpr``'s shape)."""
        a = np.asarray(fpr, dtype=np.float64)
        best = np.ones_like(a)
        for eps, delta in self.points:
            best = np.minimum(best, _max_tpr(a, eps, delta))
        return best

    @property
    def epsilon(self) -> float:
        """The smallest ε among the points (for display)."""
        return min(e for e, _ in self.points)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "points": [[e if math.isfinite(e) else None, d] for e, d in self.points],
        }


def bound_from_claim(epsilon: float, delta: float) -> PrivacyBound:
    """The bound of a claimed single (ε, δ) point (a model trained elsewhere)."""
    if not epsilon >= 0:
        raise ValueError(f"`epsilon` must be >= 0, got {epsilon}")
    if not 0 <= delta < 1:
        raise ValueError(f"`delta` must be in [0, 1), got {delta}")
    return PrivacyBound(((float(epsilon), float(delta)),), source="claim")


def bound_from_accountant(
    history: Sequence[tuple[float, float, int]],
    *,
    accountant: str = "prv",
    deltas: Sequence[float] = DEFAULT_DELTAS,
) -> PrivacyBound:
    """The bound implied by DP-SGD's history (Opacus' ``accountant.history``: ``(noise_multiplier, sample_rate,
    steps)`` per phase), with ε(δ) from Opacus' ``prv`` or ``rdp`` accountant over the grid ``deltas``. A phase
    without noise makes ε infinite (no bound)."""

    if accountant not in ("prv", "rdp"):
        raise ValueError(f"`accountant` must be prv or rdp, got {accountant!r}")
    if not history:
        raise ValueError("`history` needs at least one (noise_multiplier, sample_rate, steps) phase")
    for sigma, q, steps in history:
        if sigma < 0 or not 0 < q <= 1 or steps < 0:
            raise ValueError(
                f"bad history phase ({sigma}, {q}, {steps}): need sigma >= 0, 0 < q <= 1, steps >= 0"
            )
    grid = sorted(float(d) for d in deltas)
    if not grid or grid[0] <= 0 or grid[-1] >= 1:
        raise ValueError("`deltas` must be a non-empty list of values in (0, 1)")
    if any(sigma == 0 and steps > 0 for sigma, _, steps in history):
        return PrivacyBound(tuple((math.inf, d) for d in grid), source=f"{accountant} accountant (no noise)")
    accountants = import_optional("opacus.accountants", extra="privacy")
    acc = accountants.PRVAccountant() if accountant == "prv" else accountants.RDPAccountant()
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha": RDP's ε (also used by PRV to size its domain) is then looser
        # than it could be, still a valid upper bound, so the bound stays sound
        warnings.filterwarnings("ignore", message="Optimal order is the", category=UserWarning)
        # PRV may return a slightly negative ε at large δ (numerical slack); ε >= 0 by definition
        points = [(max(eps, 0.0), d) for eps, d in zip(_epsilons(acc, grid), grid, strict=True)]
    return PrivacyBound(tuple(points), source=f"{accountant} accountant")


def _epsilons(acc: Any, grid: list[float]) -> list[float]:
    """ε(δ) for each δ of ``grid``. PRV: one discretised PRV (built with the smallest δ's error, δ/1000) serves
    every δ, as ``PRVAccountant.get_epsilon`` would for each one separately, about ten times faster; its upper
    estimate (``eps_upper``) is kept."""
    build = getattr(acc, "_get_dprv", None)
    if build is None:
        return [float(acc.get_epsilon(d)) for d in grid]
    eps_error, delta_error = 0.01, grid[0] / 1000
    dprv = build(eps_error=eps_error, delta_error=delta_error)
    return [float(dprv.compute_epsilon(d, delta_error, eps_error)[2]) for d in grid]


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """Whether an attack contradicts a privacy bound, and at which operating point it comes closest or breaks it.
    ``margin`` is the TPR lower bound minus the bound (> 0: contradicted)."""

    contradicted: bool
    target_fpr: float
    tpr_low: float
    fpr_high: float
    max_tpr: float
    margin: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "contradicted": self.contradicted,
            "target_fpr": self.target_fpr,
            "tpr_low": self.tpr_low,
            "fpr_high": self.fpr_high,
            "max_tpr": self.max_tpr,
            "margin": self.margin,
            "confidence": self.confidence,
        }


def judge_claim(
    points: Sequence[OperatingPoint], bound: PrivacyBound, *, confidence: float = 0.95
) -> ClaimVerdict:
    """Contradicted when, at some operating point, the TPR's lower confidence bound exceeds the bound at the
    FPR's upper confidence bound. Intervals are one-sided Clopper–Pearson, Bonferroni-corrected over both bounds
    of every point, so the family holds at ``confidence``."""
    if not points:
        raise ValueError("`points` needs at least one operating point")
    alpha_each = (1.0 - confidence) / (2 * len(points))  # one-sided, per bound
    two_sided = 1.0 - 2 * alpha_each
    best: ClaimVerdict | None = None
    for p in points:
        tpr_low = clopper_pearson(p.true_positives, p.n_members, confidence=two_sided)[0]
        fpr_high = clopper_pearson(p.false_positives, p.n_nonmembers, confidence=two_sided)[1]
        ceiling = float(bound.max_tpr(fpr_high))
        margin = tpr_low - ceiling
        verdict = ClaimVerdict(margin > 0, p.target_fpr, tpr_low, fpr_high, ceiling, margin, confidence)
        if best is None or margin > best.margin:
            best = verdict
    assert best is not None
    return best
