"""Feature squeezing (Xu, Evans and Qi, NDSS 2018): is this input adversarial?

The model predicts on the input and on one or more *squeezed* copies of it — fewer bits per value, a median
filter over the image, tabular values rounded to the precision the data is recorded at. A clean input's
prediction barely moves; an adversarial perturbation tuned to the exact input values is partly undone, so the
prediction jumps. The score is the largest L1 distance between the probability vector of the input and that of a
squeezed copy (the paper's joint detector); :meth:`FeatureSqueezing.fit` sets the threshold on clean inputs at
the false-alarm rate ``fpr`` (default 5 %, the paper's operating point).

Cost: one extra ``predict_proba`` per squeezer on the same batch (the original prediction can be passed in), so
the service pays roughly ``len(squeezers)`` more model evaluations per request.

Limits: it is a detector of *non-adaptive* attacks. An attacker who knows the squeezers can attack the model
composed with them (He et al. 2017), and perturbations much larger than a squeezer's step survive it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from garrison.adapters.base import Classifier
from garrison.core.errors import InputError
from garrison.monitor.detectors import calibrated_threshold

__all__ = ["BitDepth", "FeatureSqueezing", "MedianFilter", "Rounding", "Squeezer"]


class Squeezer(Protocol):
    """A deterministic map from a batch to a squeezed batch of the same shape."""

    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BitDepth:
    """Reduce every value to ``bits`` bits over ``[lower, upper]`` (values outside are clipped first)."""

    bits: int
    lower: float = 0.0
    upper: float = 1.0
    name: str = "bit-depth"

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= 24:
            raise ValueError(f"`bits` must be an integer in [1, 24], got {self.bits!r}")
        if not self.upper > self.lower:
            raise ValueError(f"`upper` must be > `lower`, got {self.lower!r} and {self.upper!r}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        levels = 2**self.bits - 1
        span = self.upper - self.lower
        u = np.clip((np.asarray(x, dtype=np.float64) - self.lower) / span, 0.0, 1.0)
        return np.round(u * levels) / levels * span + self.lower


@dataclass(frozen=True)
class MedianFilter:
    """A ``size`` × ``size`` median filter over each image; ``shape`` is the per-sample image shape, ``(H, W)`` or
    ``(C, H, W)`` (the batch may come flat, it is reshaped and returned in its own shape)."""

    shape: tuple[int, ...]
    size: int = 2
    name: str = "median"

    def __post_init__(self) -> None:
        if len(self.shape) not in (2, 3):
            raise ValueError(f"`shape` must be (H, W) or (C, H, W), got {self.shape!r}")
        if not isinstance(self.size, int) or self.size < 2:
            raise ValueError(f"`size` must be an integer >= 2, got {self.size!r}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.ndimage import median_filter

        a = np.asarray(x, dtype=np.float64)
        images = a.reshape((len(a), *self.shape))
        window = (1,) * (images.ndim - 2) + (self.size, self.size)
        return median_filter(images, size=window, mode="reflect").reshape(a.shape)


@dataclass(frozen=True)
class Rounding:
    """Round each feature to a multiple of its ``step`` (a scalar or one per feature, ``0`` leaves a feature as
    is): the tabular squeezer, at the precision the data is recorded at (see :meth:`from_reference`)."""

    step: float | tuple[float, ...]
    name: str = "rounding"

    def __post_init__(self) -> None:
        steps = np.atleast_1d(np.asarray(self.step, dtype=np.float64))
        if not np.isfinite(steps).all() or (steps < 0).any():
            raise ValueError(f"`step` must be finite and >= 0, got {self.step!r}")

    @classmethod
    def from_reference(cls, x: np.ndarray, *, max_decimals: int = 10, coarsen: float = 1.0) -> Rounding:
        """Per feature, the precision the reference rows ``x`` are recorded at — ``10**-k`` for the smallest
        ``k <= max_decimals`` that represents every value, else ``10**-max_decimals`` — times ``coarsen``."""
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or not np.isfinite(a).all():
            raise InputError("reference rows must be a finite 2-d array", field="x")
        steps = np.full(a.shape[1], 10.0**-max_decimals)
        for k in range(max_decimals, -1, -1):
            exact = np.all(
                np.abs(a * 10.0**k - np.round(a * 10.0**k)) < 1e-6 * (1 + np.abs(a * 10.0**k)), axis=0
            )
            steps[exact] = 10.0**-k
        return cls(tuple(float(s) * coarsen for s in steps))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        step = np.asarray(self.step, dtype=np.float64)
        flat = a.reshape(len(a), -1)
        if step.ndim and step.shape[0] != flat.shape[1]:
            raise InputError(f"`step` has {step.shape[0]} entries for {flat.shape[1]} features", field="x")
        safe = np.where(step > 0, step, 1.0)
        inv = np.round(1.0 / safe)
        decimal = np.abs(inv * safe - 1.0) < 1e-12  # 10**-k: divide by 10**k, exact to the nearest double
        rounded = np.where(decimal, np.round(flat * inv) / inv, np.round(flat / safe) * safe)
        out = np.where(step > 0, rounded, flat)
        return out.reshape(a.shape)


class FeatureSqueezing:
    """The feature-squeezing detector for ``model`` with the given ``squeezers`` (see the module docstring)."""

    def __init__(self, model: Classifier, squeezers: Sequence[Squeezer], *, fpr: float = 0.05) -> None:
        self.model = model
        self.squeezers = tuple(squeezers)
        self.fpr = fpr
        self._threshold: float | None = None
        self._n = 0

    def fit(self, x: np.ndarray) -> FeatureSqueezing:
        """Set the threshold on clean held-out inputs ``x``."""
        if not self.squeezers:
            raise ValueError("`squeezers` must name at least one squeezer")
        scores = self._scores(x, None)
        self._threshold = calibrated_threshold(scores, self.fpr)
        self._n = len(scores)
        return self

    @property
    def threshold_(self) -> float:
        """Scores above this are flagged; set by :meth:`fit`."""
        if self._threshold is None:
            raise RuntimeError("FeatureSqueezing is not fitted: call fit(x_clean) first")
        return self._threshold

    def score(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        """The largest L1 distance, over squeezers, between the prediction on ``x`` (``probs`` when already
        computed) and on its squeezed copy; in ``[0, 2]``."""
        _ = self.threshold_
        return self._scores(x, probs)

    def _scores(self, x: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
        a = np.asarray(self.model.input_spec.conform(np.asarray(x)), dtype=np.float64)
        p = np.asarray(self.model.predict_proba(a) if probs is None else probs, dtype=np.float64)
        if p.shape != (len(a), self.model.n_classes):
            raise InputError(
                f"`probs` must have shape {(len(a), self.model.n_classes)}, got {p.shape}", field="probs"
            )
        best = np.zeros(len(a))
        for squeeze in self.squeezers:
            q = np.asarray(self.model.predict_proba(squeeze(a).astype(a.dtype, copy=False)), dtype=np.float64)
            np.maximum(best, np.abs(p - q).sum(axis=1), out=best)
        return best

    def flag(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        """``True`` for inputs whose squeezing score exceeds the calibrated threshold."""
        return self.score(x, probs) > self.threshold_

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "feature-squeezing",
            "squeezers": [s.name for s in self.squeezers],
            "fpr": self.fpr,
            "threshold": self._threshold,
            "n_calibration": self._n,
        }
