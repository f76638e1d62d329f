"""What the attacker may do: a norm ball of radius ``eps`` around each input, inside the valid input box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ThreatModel"]

Norm = Literal["linf", "l2"]


@dataclass(frozen=True)
class ThreatModel:
    """An ``eps``-ball in ``norm`` around each sample, intersected with ``[lower, upper]``.

    ``project(x_adv, x_orig)`` is the tabular-realism hook (``FeatureCodec.project`` with ``original=x_orig``):
    it returns the nearest valid point (integer/categorical rounding, immutable features restored) and is
    applied after every attack step and to the final result.
    """

    norm: Norm
    eps: float
    lower: float | np.ndarray = 0.0
    upper: float | np.ndarray = 1.0
    project: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"`norm` must be 'linf' or 'l2', got {self.norm!r}")
        if not np.isfinite(self.eps) or self.eps < 0:
            raise ValueError(f"`eps` must be >= 0, got {self.eps!r}")
        if np.any(np.asarray(self.lower) > np.asarray(self.upper)):
            raise ValueError("`lower` must be <= `upper` everywhere")

    def with_eps(self, eps: float) -> ThreatModel:
        """The same threat model at another radius."""
        return ThreatModel(self.norm, eps, self.lower, self.upper, self.project)

    def clip(self, x_adv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``x_adv`` projected onto the ``eps``-ball around ``x`` ∩ the box ∩ ``project`` (numpy, any batch)."""
        x = np.asarray(x, dtype=np.float64)
        delta = np.asarray(x_adv, dtype=np.float64) - x
        if self.norm == "linf":
            delta = np.clip(delta, -self.eps, self.eps)
        else:
            flat = delta.reshape(len(delta), -1)
            norms = np.linalg.norm(flat, axis=1)
            scale = np.minimum(1.0, self.eps / np.maximum(norms, 1e-12))
            delta = (flat * scale[:, None]).reshape(delta.shape)
        out = np.clip(x + delta, self.lower, self.upper)
        if self.project is not None:
            out = np.asarray(self.project(out, x), dtype=np.float64).reshape(x.shape)
        return out

    def distance(self, x_adv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per-sample distance in this threat model's norm."""
        d = (np.asarray(x_adv, dtype=np.float64) - np.asarray(x, dtype=np.float64)).reshape(len(x), -1)
        if self.norm == "linf":
            return np.abs(d).max(axis=1) if d.shape[1] else np.zeros(len(x))
        return np.linalg.norm(d, axis=1)

    def contains(self, x_adv: np.ndarray, x: np.ndarray, *, tol: float = 1e-5) -> np.ndarray:
        """Per-sample: inside the ball (up to ``tol``) and the box."""
        a = np.asarray(x_adv, dtype=np.float64)
        lo = np.broadcast_to(
            np.asarray(self.lower, dtype=np.float64), a.shape[1:] if np.ndim(self.lower) else ()
        )
        hi = np.broadcast_to(
            np.asarray(self.upper, dtype=np.float64), a.shape[1:] if np.ndim(self.upper) else ()
        )
        in_box = ((a >= lo - tol) & (a <= hi + tol)).reshape(len(a), -1).all(axis=1)
        return (self.distance(a, x) <= self.eps + tol) & in_box
