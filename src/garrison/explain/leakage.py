"""Leaky features: an identifier (an id, a row number, a timestamp) carrying most of a model's decision.

A model that leans on an identifier has learnt how the data was collected or sorted, not the task: its accuracy on
held-out rows of the same file is real, and worthless on new data. Two conditions, both required:

- **dominance**: the feature's share of the global importance (mean |attribution| over rows, divided by the sum
  over features) is at least ``share_threshold`` (default 0.5: it carries most of the decision);
- **identifier-likeness**: its values are whole numbers (or not numbers at all) and nearly all distinct (at least
  ``unique_ratio``, default 0.95, of the rows — an id; continuous measurements are nearly all distinct too, so
  they must be integral to count), or they follow the row order (|Spearman correlation with the row index| at
  least ``order_correlation``, default 0.9 — a row number, a sequence number or an ingestion time).

Dominance alone is not a finding: a genuinely decisive measurement is allowed to dominate. Identifier-likeness
alone is not either: an unused id is harmless. The result lists every feature's share and both tests, so a report
can show why a feature was or was not flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FeatureLeak", "LeakScan", "leaky_features"]


@dataclass(frozen=True)
class FeatureLeak:
    """One feature: its importance ``share``, ``unique_ratio`` and ``order_correlation`` (with the row index),
    what kind of identifier it looks like (``"unique values"``, ``"row order"`` or ``None``) and whether it is
    ``flagged``."""

    feature: str
    share: float
    unique_ratio: float
    order_correlation: float
    identifier: str | None
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "share": round(self.share, 6),
            "unique_ratio": round(self.unique_ratio, 6),
            "order_correlation": round(self.order_correlation, 6),
            "identifier": self.identifier,
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class LeakScan:
    """Every feature's :class:`FeatureLeak`, most important first."""

    features: tuple[FeatureLeak, ...]
    share_threshold: float

    @property
    def flagged(self) -> tuple[FeatureLeak, ...]:
        return tuple(f for f in self.features if f.flagged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "share_threshold": self.share_threshold,
            "flagged": [f.feature for f in self.flagged],
            "features": [f.to_dict() for f in self.features],
        }


def leaky_features(
    attributions: np.ndarray,
    x: np.ndarray,
    *,
    feature_names: Sequence[str] | None = None,
    share_threshold: float = 0.5,
    unique_ratio: float = 0.95,
    order_correlation: float = 0.9,
) -> LeakScan:
    """Flag features that dominate ``attributions`` ``(n, d)`` and look like identifiers in ``x`` ``(n, d)``, the
    rows those attributions explain, in their original order (see the module docstring)."""
    from scipy.stats import spearmanr

    values = np.asarray(attributions, dtype=np.float64)
    rows = np.asarray(x)
    if values.ndim != 2 or len(values) < 3:
        raise ValueError(f"`attributions` must be a 2-d array of at least 3 rows, got shape {values.shape}")
    if rows.shape[:1] != values.shape[:1] or rows.reshape(len(rows), -1).shape[1] != values.shape[1]:
        raise ValueError(f"`x` of shape {rows.shape} does not match attributions of shape {values.shape}")
    if not 0 < share_threshold <= 1:
        raise ValueError(f"`share_threshold` must be in (0, 1], got {share_threshold!r}")
    rows = rows.reshape(len(rows), -1)
    d = values.shape[1]
    names = tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(d))
    if len(names) != d:
        raise ValueError(f"{len(names)} feature names for {d} features")
    importance = np.abs(values).mean(axis=0)
    total = float(importance.sum())
    shares = importance / total if total > 0 else np.zeros(d)
    order = np.arange(len(rows))
    found = []
    for j in np.argsort(-shares, kind="stable"):
        column = rows[:, j]
        distinct = len(np.unique(column)) / len(column)
        rho = _order_correlation(column, order, spearmanr)
        identifier = None
        if distinct >= unique_ratio and _integral(column):
            identifier = "unique values"
        elif abs(rho) >= order_correlation:
            identifier = "row order"
        found.append(
            FeatureLeak(
                feature=names[j],
                share=float(shares[j]),
                unique_ratio=float(distinct),
                order_correlation=rho,
                identifier=identifier,
                flagged=bool(shares[j] >= share_threshold and identifier is not None),
            )
        )
    return LeakScan(features=tuple(found), share_threshold=share_threshold)


def _integral(column: np.ndarray) -> bool:
    """Whole numbers, or not numbers at all (strings, categories)."""
    try:
        numeric = column.astype(np.float64)
    except (TypeError, ValueError):
        return True
    return bool(np.all(np.isfinite(numeric)) and np.all(numeric == np.round(numeric)))


def _order_correlation(column: np.ndarray, order: np.ndarray, spearmanr: Any) -> float:
    try:
        numeric = column.astype(np.float64)
    except (TypeError, ValueError):
        return 0.0
    if np.ptp(numeric) == 0:
        return 0.0
    rho = float(spearmanr(numeric, order).statistic)
    return rho if np.isfinite(rho) else 0.0
