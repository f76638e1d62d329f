"""Per-request input detectors for the guarded inference service: out-of-distribution rows and low-margin
predictions, and the :class:`Signal` every monitor detector reports.

Both detectors are fitted once on reference data and then cost a few vectorised numpy operations per batch, so
the service can run them on every request.

- :class:`OODDetector` scores how far a row (codec space, numeric) lies from the reference rows by two
  components: the worst per-feature robust z-score (median / MAD), which catches a single feature far out of
  range, and the Mahalanobis distance under a Ledoit–Wolf shrinkage covariance, which catches a row whose features
  are each plausible but whose combination is not (random or synthetic queries). Each component is divided by
  its own threshold, set on held-out reference rows at ``fpr / 2`` (split-conformal quantile; the largest
  held-out score when there are fewer than ``2 / fpr`` of them), and the score is the larger ratio, so a row is
  flagged when it exceeds 1 and a fresh reference row is flagged with probability at most about ``fpr``
  (union bound). Separate thresholds keep a heavy-tailed feature from setting the Mahalanobis component's.
- :class:`MarginDetector` scores a prediction by its margin, top-1 minus top-2 probability. Inputs close to the
  decision boundary — minimal-perturbation adversarial examples, decision-boundary probing — have a low margin;
  the threshold is the ``fpr`` quantile of the margins of clean reference predictions.

Both report ``score(…) -> np.ndarray`` and ``flag(…) -> np.ndarray[bool]``; neither reads a clock or keeps
per-request state. Query-pattern detection across requests lives in :mod:`garrison.monitor.probing`, feature
squeezing in :mod:`garrison.monitor.squeezing`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from garrison.core.errors import InputError

__all__ = ["MarginDetector", "OODDetector", "Signal", "calibrated_threshold", "margin"]

_MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation


@dataclass(frozen=True)
class Signal:
    """One detector firing: ``kind`` (e.g. ``"ood_share"``), the API ``key`` it concerns (``None`` for a
    per-row detector), the ``score`` that crossed ``threshold``, and JSON-ready ``detail``."""

    kind: str
    key: str | None
    score: float
    threshold: float
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "score": _finite_or_none(self.score),
            "threshold": _finite_or_none(self.threshold),
            "detail": dict(sorted(self.detail.items())),
        }


def margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each row of ``probs`` (``(n, k)``, ``k >= 2``); ``1.0`` when ``k == 1``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise InputError(f"`probs` must be a 2-d array (n, n_classes), got shape {p.shape}", field="probs")
    if p.shape[1] < 2:
        return np.ones(len(p))
    top = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def calibrated_threshold(
    scores: np.ndarray, fpr: float, *, tail: Literal["upper", "lower"] = "upper"
) -> float:
    """The split-conformal threshold on clean ``scores``: with ``tail="upper"`` a fresh clean score exceeds it
    with probability at most ``fpr`` (``> threshold`` flags); with ``tail="lower"`` one falls below it with
    probability at most ``fpr`` (``< threshold`` flags). ``inf`` / ``-inf`` when too few scores to promise that."""
    if not 0 < fpr < 1:
        raise ValueError(f"`fpr` must be in (0, 1), got {fpr!r}")
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    n = len(s)
    if tail == "upper":
        k = math.ceil((n + 1) * (1 - fpr))  # 1-based rank
        return float(s[k - 1]) if k <= n else math.inf
    if tail == "lower":
        k = math.floor((n + 1) * fpr)
        return float(s[k - 1]) if k >= 1 else -math.inf
    raise ValueError(f"`tail` must be 'upper' or 'lower', got {tail!r}")


@dataclass(frozen=True)
class _OODState:
    median: np.ndarray
    inv_scale: np.ndarray
    mean: np.ndarray
    whiten: np.ndarray  # (d, d): ||(x - mean) @ whiten|| is the Mahalanobis distance
    z_norm: float
    m_norm: float
    threshold: float
    n_fit: int
    n_calibration: int
    shrinkage: float


class OODDetector:
    """Out-of-distribution score of numeric rows against reference rows (see the module docstring).

    ``fpr``: the false-alarm rate on reference rows the threshold is set at; ``calibration_fraction``: the share
    of the reference rows held out to set it (the rest fit the medians, scales and covariance); ``seed``: the
    split.
    """

    def __init__(self, *, fpr: float = 0.01, calibration_fraction: float = 0.3, seed: int = 0) -> None:
        self.fpr = fpr
        self.calibration_fraction = calibration_fraction
        self.seed = seed
        self._state: _OODState | None = None

    def fit(self, x: np.ndarray) -> OODDetector:
        """Fit on reference rows ``x`` (``(n, d)``, finite). Needs at least ``1 / fpr`` held-out rows and two
        fit rows for the threshold to mean anything."""
        if not 0 < self.fpr < 1:
            raise ValueError(f"`fpr` must be in (0, 1), got {self.fpr!r}")
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"`calibration_fraction` must be in (0, 1), got {self.calibration_fraction!r}")
        x = _rows(x, None)
        if not np.isfinite(x).all():
            raise InputError("reference rows must be finite (no NaN or inf)", field="x")
        n_cal = round(len(x) * self.calibration_fraction)
        needed = math.ceil(1 / self.fpr - 1e-9)
        if n_cal < needed or len(x) - n_cal < 2:
            raise InputError(
                f"need at least {needed} held-out reference rows (1 / fpr) and 2 fit rows, got {len(x)} rows "
                f"with calibration_fraction={self.calibration_fraction}",
                field="x",
            )
        order = np.random.default_rng(self.seed).permutation(len(x))
        cal, fit = x[order[:n_cal]], x[order[n_cal:]]

        from sklearn.covariance import LedoitWolf

        median = np.median(fit, axis=0)
        mad = np.median(np.abs(fit - median), axis=0) * _MAD_TO_SD
        sd = fit.std(axis=0)
        scale = np.where(mad > 0, mad, sd)
        tiny = 1e-9 * (np.abs(median) + 1.0)
        scale = np.maximum(scale, tiny)
        mean = fit.mean(axis=0)
        sd_safe = np.where(sd > 0, sd, 1.0)
        lw = LedoitWolf(assume_centered=False).fit((fit - mean) / sd_safe)
        precision = np.linalg.inv(lw.covariance_)
        chol = np.linalg.cholesky((precision + precision.T) / 2)
        whiten = chol / sd_safe[:, None]
        z = _robust_z(cal, median, 1.0 / scale)
        m = _mahalanobis(cal, mean, whiten)
        self._state = _OODState(
            median=median,
            inv_scale=1.0 / scale,
            mean=mean,
            whiten=whiten,
            z_norm=_component_threshold(z, self.fpr / 2),
            m_norm=_component_threshold(m, self.fpr / 2),
            threshold=1.0,
            n_fit=len(fit),
            n_calibration=n_cal,
            shrinkage=float(lw.shrinkage_),
        )
        return self

    @property
    def threshold_(self) -> float:
        """Rows scoring above this are flagged; set by :meth:`fit`."""
        return self._fitted().threshold

    @property
    def n_features_(self) -> int:
        return len(self._fitted().median)

    def score(self, x: np.ndarray) -> np.ndarray:
        """The OOD score of each row (``>= 0``; above 1 is flagged); ``inf`` for non-finite rows."""
        st = self._fitted()
        x = _rows(x, len(st.median))
        z = _robust_z(x, st.median, st.inv_scale) / st.z_norm
        m = _mahalanobis(x, st.mean, st.whiten) / st.m_norm
        out = np.maximum(z, m)
        out[~np.isfinite(out)] = np.inf
        return out

    def flag(self, x: np.ndarray) -> np.ndarray:
        """``True`` for rows whose score exceeds the calibrated threshold."""
        return self.score(x) > self._fitted().threshold

    def to_dict(self) -> dict[str, Any]:
        """Parameters and fitted summary, JSON-ready."""
        out: dict[str, Any] = {
            "method": "ood",
            "fpr": self.fpr,
            "calibration_fraction": self.calibration_fraction,
            "seed": self.seed,
        }
        if self._state is not None:
            st = self._state
            out.update(
                threshold=_finite_or_none(st.threshold),
                n_features=len(st.median),
                n_fit=st.n_fit,
                n_calibration=st.n_calibration,
                shrinkage=round(st.shrinkage, 6),
            )
        return out

    def _fitted(self) -> _OODState:
        if self._state is None:
            raise RuntimeError("OODDetector is not fitted: call fit(x_reference) first")
        return self._state


class MarginDetector:
    """Low-margin predictions: flags probability rows whose top-1 minus top-2 margin falls below the ``fpr``
    quantile of clean reference predictions' margins."""

    def __init__(self, *, fpr: float = 0.05) -> None:
        self.fpr = fpr
        self._threshold: float | None = None
        self._n: int = 0

    def fit(self, probs: np.ndarray) -> MarginDetector:
        """Set the threshold on the model's probabilities for clean held-out inputs (``(n, n_classes)``)."""
        m = margin(probs)
        self._threshold = calibrated_threshold(m, self.fpr, tail="lower")
        self._n = len(m)
        return self

    @property
    def threshold_(self) -> float:
        """Margins below this are flagged; set by :meth:`fit`."""
        if self._threshold is None:
            raise RuntimeError("MarginDetector is not fitted: call fit(probs_clean) first")
        return self._threshold

    def score(self, probs: np.ndarray) -> np.ndarray:
        """The margin of each prediction (low is suspicious)."""
        return margin(probs)

    def flag(self, probs: np.ndarray) -> np.ndarray:
        """``True`` for predictions whose margin is below the calibrated threshold."""
        return margin(probs) < self.threshold_

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "margin",
            "fpr": self.fpr,
            "threshold": _finite_or_none(self._threshold) if self._threshold is not None else None,
            "n_calibration": self._n,
        }


def _rows(x: np.ndarray, n_features: int | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1 and n_features is not None and a.shape[0] == n_features:
        a = a[None, :]
    if a.ndim != 2:
        raise InputError(f"expected a 2-d array of rows (n, n_features), got shape {a.shape}", field="x")
    if n_features is not None and a.shape[1] != n_features:
        raise InputError(f"expected {n_features} features per row, got {a.shape[1]}", field="x")
    return a


def _robust_z(x: np.ndarray, median: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    if x.shape[1] == 0:
        return np.zeros(len(x))
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs((x - median) * inv_scale).max(axis=1)


def _mahalanobis(x: np.ndarray, mean: np.ndarray, whiten: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        w = (x - mean) @ whiten
        return np.sqrt(np.einsum("ij,ij->i", w, w))


def _component_threshold(scores: np.ndarray, level: float) -> float:
    """The split-conformal ``level`` upper threshold, or the largest score when there are too few to promise it
    (then the rate is about ``1 / (n + 1)`` per component instead)."""
    s = np.sort(scores)
    k = min(len(s), math.ceil((len(s) + 1) * (1 - level)))
    return float(max(s[k - 1], 1e-12))


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
