"""Square attack (Andriushchenko et al. 2020): score-based random search, no gradients — works on any model."""

from __future__ import annotations

import time

import numpy as np

from garrison.adapters.base import Classifier
from garrison.robustness.attacks.base import check_inputs, finalize
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["Square"]

_SCHEDULE = (
    (10, 2),
    (50, 4),
    (200, 8),
    (500, 16),
    (1000, 32),
    (2000, 64),
    (4000, 128),
    (6000, 256),
    (8000, 512),
)


class Square:
    """Random square-shaped updates at the corners of the ``eps``-ball, kept when the margin loss drops.

    Uses only ``predict_proba``. Inputs of shape ``(c, h, w)`` get square windows; flat tabular inputs
    windows of consecutive features. ``queries`` is the per-sample query budget.
    """

    def __init__(self, *, queries: int = 5000, p_init: float = 0.8, name: str = "square") -> None:
        if queries < 1:
            raise ValueError(f"`queries` must be >= 1, got {queries!r}")
        if not 0 < p_init <= 1:
            raise ValueError(f"`p_init` must be in (0, 1], got {p_init!r}")
        self.queries = queries
        self.p_init = p_init
        self.name = name

    def run(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        *,
        seed: int = 0,
        deadline: float | None = None,
    ) -> AttackResult:
        """Attack ``x`` (labels ``y``) within ``threat``; deterministic under ``seed``."""
        started = time.monotonic()
        x, y = check_inputs(model, x, y)
        rng = np.random.default_rng(seed)
        xf = x.astype(np.float64)
        c, h, w = _layout(x.shape[1:])
        eps = threat.eps

        def margin(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
            logp = np.log(np.clip(np.asarray(model.predict_proba(points.astype(x.dtype))), 1e-12, None))
            z_y = logp[np.arange(len(labels)), labels]
            logp[np.arange(len(labels)), labels] = -np.inf
            return z_y - logp.max(axis=1)

        grid = xf.reshape(len(x), c, h, w)
        if threat.norm == "linf":
            init = grid + eps * rng.choice([-1.0, 1.0], size=(len(x), c, 1, w))
        else:
            noise = rng.standard_normal(grid.shape)
            init = grid + eps * noise / np.linalg.norm(noise.reshape(len(x), -1), axis=1)[:, None, None, None]
        adv = threat.clip(init.reshape(x.shape), xf)
        loss = margin(adv, y)
        used = 1
        for i in range(1, self.queries):
            active = np.flatnonzero(loss > 0)
            if len(active) == 0 or (deadline is not None and time.monotonic() > deadline):
                break
            p = _p_selection(self.p_init, i, self.queries)
            sh, sw = _window(p, h, w)
            xa = grid[active]
            delta = adv[active].reshape(len(active), c, h, w) - xa
            vh = rng.integers(0, h - sh + 1)
            vw = rng.integers(0, w - sw + 1)
            if threat.norm == "linf":
                delta[:, :, vh : vh + sh, vw : vw + sw] = eps * rng.choice(
                    [-1.0, 1.0], size=(len(active), c, 1, 1)
                )
            else:
                window = delta[:, :, vh : vh + sh, vw : vw + sw]
                spare = np.maximum(eps**2 - (delta.reshape(len(active), -1) ** 2).sum(axis=1), 0.0)
                budget = np.sqrt((window.reshape(len(active), -1) ** 2).sum(axis=1) + spare)
                pattern = _pattern(sh, sw)[None, None] * rng.choice([-1.0, 1.0], size=(len(active), c, 1, 1))
                scale = budget / max(np.linalg.norm(pattern.reshape(len(active), -1)[0]), 1e-12)
                delta[:, :, vh : vh + sh, vw : vw + sw] = pattern * scale[:, None, None, None]
            candidate = threat.clip((xa + delta).reshape((len(active), *x.shape[1:])), xf[active])
            new_loss = margin(candidate, y[active])
            used += 1
            better = new_loss < loss[active]
            adv[active[better]] = candidate[better]
            loss[active[better]] = new_loss[better]
        notes: tuple[str, ...] = ()
        if threat.norm == "l2":
            notes = (
                "L2 square: one-window update renormalised to the ball (not the paper's two-window scheme)",
            )
        return finalize(
            self.name, model, x, y, adv, threat, queries=used, started=started, loss="margin", notes=notes
        )


def _layout(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Sample shape as ``(channels, height, width)``; flat inputs are one row."""
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    return 1, 1, int(np.prod(shape)) if shape else 1


def _window(p: float, h: int, w: int) -> tuple[int, int]:
    if h == 1:
        return 1, max(1, min(w, round(p * w)))
    side = max(1, min(h, w, round(np.sqrt(p * h * w))))
    return side, side


def _p_selection(p_init: float, it: int, n_iters: int) -> float:
    """The fraction of pixels changed, halving along the paper's schedule (rescaled to 10,000 iterations)."""
    it = int(it / n_iters * 10000)
    divisor = 1
    for bound, d in _SCHEDULE:
        if it > bound:
            divisor = d
    return p_init / divisor


def _pattern(h: int, w: int) -> np.ndarray:
    """A centre-peaked window (the paper's L2 pseudo-Gaussian: weight ``1 / (r + 1)^2`` by ring)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.maximum(np.abs(yy - (h - 1) / 2), np.abs(xx - (w - 1) / 2))
    return 1.0 / (r + 1.0) ** 2
