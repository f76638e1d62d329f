"""Explanation stability: do a row's attributions survive noise far too small to change the prediction?

An explanation that reorders its features under a perturbation of 1 % of a feature's spread says more about the
explainer (or a model with a jagged surface, as gradient masking leaves) than about the decision, and is easy to
manipulate (Ghorbani et al. 2019; Slack et al. 2020). For each row, ``n_repeats`` noisy copies
``x + N(0, (noise × σ_feature)²)`` are explained with the same explainer and compared with the row's own
attributions by Spearman rank correlation and by the overlap of their ``top_k`` features; the result holds each
row's mean correlation, and the share of rows below ``threshold``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Stability", "explanation_stability"]

Explainer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Stability:
    """Per row: mean Spearman correlation (``correlation``) and mean top-k overlap (``top_k_overlap``) between
    its attributions and those of its noisy copies; ``unstable_share``: rows whose correlation is below
    ``threshold``."""

    correlation: np.ndarray
    top_k_overlap: np.ndarray
    threshold: float
    noise: float
    n_repeats: int
    top_k: int

    @property
    def median_correlation(self) -> float:
        return float(np.median(self.correlation))

    @property
    def unstable_share(self) -> float:
        return float(np.mean(self.correlation < self.threshold))

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_correlation": round(self.median_correlation, 6),
            "unstable_share": round(self.unstable_share, 6),
            "median_top_k_overlap": round(float(np.median(self.top_k_overlap)), 6),
            "threshold": self.threshold,
            "noise": self.noise,
            "n_repeats": self.n_repeats,
            "top_k": self.top_k,
            "n_rows": len(self.correlation),
        }


def explanation_stability(
    explain: Explainer,
    x: np.ndarray,
    *,
    noise: float = 0.01,
    n_repeats: int = 5,
    top_k: int = 5,
    threshold: float = 0.8,
    scale: np.ndarray | None = None,
    seed: int = 0,
) -> Stability:
    """Compare ``explain(x)`` with ``explain`` of ``n_repeats`` noisy copies of ``x`` (see the module docstring).

    ``explain`` maps rows ``(n, ...)`` to attributions of the same shape; ``scale`` is each feature's spread (default:
    the standard deviation of ``x``, or 1 where that is 0). Noise is drawn from ``seed``.
    """
    from scipy.stats import rankdata

    rows = np.asarray(x, dtype=np.float64)
    if rows.ndim < 2 or len(rows) < 1:
        raise ValueError(f"`x` must hold rows, got shape {rows.shape}")
    if not noise > 0:
        raise ValueError(f"`noise` must be > 0, got {noise!r}")
    if n_repeats < 1:
        raise ValueError(f"`n_repeats` must be >= 1, got {n_repeats!r}")
    spread = np.asarray(scale, dtype=np.float64) if scale is not None else rows.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    rng = np.random.default_rng(seed)
    base = _flat(explain(rows), rows)
    d = base.shape[1]
    k = min(top_k, d)
    base_rank = rankdata(base, axis=1)
    base_top = np.argsort(-np.abs(base), axis=1)[:, :k]
    corr = np.zeros(len(rows))
    overlap = np.zeros(len(rows))
    for _ in range(n_repeats):
        noisy = rows + rng.normal(size=rows.shape) * noise * spread
        other = _flat(explain(noisy), rows)
        corr += _row_correlation(base_rank, rankdata(other, axis=1))
        other_top = np.argsort(-np.abs(other), axis=1)[:, :k]
        overlap += np.array([len(np.intersect1d(a, b)) / k for a, b in zip(base_top, other_top, strict=True)])
    return Stability(
        correlation=corr / n_repeats,
        top_k_overlap=overlap / n_repeats,
        threshold=threshold,
        noise=noise,
        n_repeats=n_repeats,
        top_k=k,
    )


def _flat(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) != len(rows):
        raise ValueError(f"the explainer returned {len(arr)} rows for {len(rows)}")
    return arr.reshape(len(arr), -1)


def _row_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair (of ranks: Spearman); 1.0 where a row is constant in both."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    same = (np.abs(a).sum(axis=1) == 0) & (np.abs(b).sum(axis=1) == 0)
    return np.where(
        denom > 0, (a * b).sum(axis=1) / np.where(denom > 0, denom, 1.0), np.where(same, 1.0, 0.0)
    )
