"""Explanation drift: do the attributions of two datasets differ, feature by feature?

The inference service compares the attributions of recent traffic with those of a reference window. Rankings of
global importance barely move even under large shifts (a feature can double its mean |attribution| and keep its
rank), so the test is on the distributions: per feature, a two-sample Kolmogorov–Smirnov test of the signed
attribution values, with the Benjamini–Hochberg procedure controlling the false discovery rate across features.
Each feature also gets an effect size — the Wasserstein-1 distance between the two samples divided by the
reference's mean |attribution| summed over features — so that a significant but negligible change on a large
window can be told from a real one (``min_effect``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AttributionDrift", "attribution_drift", "benjamini_hochberg"]


@dataclass(frozen=True)
class AttributionDrift:
    """Per feature: the KS statistic and p-value, the BH-adjusted p-value, the effect size and whether it drifted
    (adjusted p ≤ ``alpha`` and effect ≥ ``min_effect``); the rankings' Spearman correlation for comparison."""

    feature_names: tuple[str, ...]
    statistic: np.ndarray
    p_value: np.ndarray
    p_adjusted: np.ndarray
    effect: np.ndarray
    drifted: np.ndarray
    rank_correlation: float
    alpha: float
    min_effect: float
    n_reference: int
    n_current: int

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(n for n, d in zip(self.feature_names, self.drifted, strict=True) if d)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "rank_correlation": round(self.rank_correlation, 6),
            "drifted_features": list(self.drifted_features),
            "features": [
                {
                    "feature": name,
                    "ks": round(float(s), 6),
                    "p_value": float(p),
                    "p_adjusted": float(q),
                    "effect": round(float(e), 6),
                    "drifted": bool(d),
                }
                for name, s, p, q, e, d in zip(
                    self.feature_names,
                    self.statistic,
                    self.p_value,
                    self.p_adjusted,
                    self.effect,
                    self.drifted,
                    strict=True,
                )
            ],
        }


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def attribution_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    feature_names: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.01,
) -> AttributionDrift:
    """Compare the attributions ``current`` ``(m, d)`` with ``reference`` ``(n, d)`` feature by feature (see the
    module docstring). Both need at least 2 rows and the same number of features."""
    from scipy.stats import ks_2samp, spearmanr

    ref = _matrix(reference, "reference")
    cur = _matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} features, current {cur.shape[1]}")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    if min_effect < 0:
        raise ValueError(f"`min_effect` must be >= 0, got {min_effect!r}")
    d = ref.shape[1]
    names = tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(d))
    if len(names) != d:
        raise ValueError(f"{len(names)} feature names for {d} features")
    result = ks_2samp(ref, cur, axis=0)
    statistic = np.atleast_1d(np.asarray(result.statistic, dtype=np.float64))
    p_value = np.atleast_1d(np.asarray(result.pvalue, dtype=np.float64))
    adjusted = benjamini_hochberg(p_value)
    scale = float(np.abs(ref).mean(axis=0).sum()) or 1.0
    effect = np.array([_wasserstein(ref[:, j], cur[:, j]) for j in range(d)]) / scale
    ref_importance, cur_importance = np.abs(ref).mean(axis=0), np.abs(cur).mean(axis=0)
    rank = 1.0 if d < 2 else float(spearmanr(ref_importance, cur_importance).statistic)
    return AttributionDrift(
        feature_names=names,
        statistic=statistic,
        p_value=p_value,
        p_adjusted=adjusted,
        effect=effect,
        drifted=(adjusted <= alpha) & (effect >= min_effect),
        rank_correlation=rank if np.isfinite(rank) else 1.0,
        alpha=alpha,
        min_effect=min_effect,
        n_reference=len(ref),
        n_current=len(cur),
    )


def _matrix(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(f"`{name}` must be a 2-d array of at least 2 rows, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` holds NaN or infinite values")
    return arr


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))
