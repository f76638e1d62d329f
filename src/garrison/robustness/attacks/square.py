"""Square attack (Andriushchenko et al. 2020): score-based random search, no gradients — works on any model."""

from __future__ import annotations

import time

import numpy as np

from garrison.adapters.base import Classifier
from garrison.robustness.attacks.base import check_inputs, finalize
from garrison.robustness.attacks.torch_view import TorchView, torch_view
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
    """Random square-shaped updates at the corners of the ``eps``-ball (L∞) or moved pseudo-Gaussian mass between two
    windows on the ``eps``-sphere (L2, the paper's scheme), kept when the margin loss drops.

    Uses only the model's scores: ``predict_proba``, or on white-box models the module's logits directly
    (``batch_size`` samples a forward pass). Inputs of shape ``(c, h, w)`` get square windows; flat tabular inputs
    windows of consecutive features. ``queries`` is the per-sample query budget.
    """

    def __init__(
        self, *, queries: int = 5000, p_init: float = 0.8, batch_size: int = 256, name: str = "square"
    ) -> None:
        if queries < 1:
            raise ValueError(f"`queries` must be >= 1, got {queries!r}")
        if not 0 < p_init <= 1:
            raise ValueError(f"`p_init` must be in (0, 1], got {p_init!r}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
        self.queries = queries
        self.p_init = p_init
        self.batch_size = batch_size
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

        view = torch_view(model)

        def margin(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
            if view is not None:
                scores = _logits(view, points, self.batch_size)
            else:
                scores = np.log(np.clip(np.asarray(model.predict_proba(points.astype(x.dtype))), 1e-12, None))
            z_y = scores[np.arange(len(labels)), labels]
            scores[np.arange(len(labels)), labels] = -np.inf
            return z_y - scores.max(axis=1)

        grid = xf.reshape(len(x), c, h, w)
        if threat.norm == "linf":
            init = grid + eps * rng.choice([-1.0, 1.0], size=(len(x), c, 1, w))
        else:
            init = grid + eps * _unit(_l2_init(rng, len(x), c, h, w))
        adv = threat.clip(init.reshape(x.shape), xf)
        loss = margin(adv, y)
        used = 1
        for i in range(1, self.queries):
            active = np.flatnonzero(loss > 0)
            if len(active) == 0 or (deadline is not None and time.monotonic() > deadline):
                break
            p = _p_selection(self.p_init, i, self.queries)
            sh, sw = _window(p, h, w)
            if threat.norm == "l2" and h >= 3 and w >= 3:  # the paper's L2 windows are at least 3 × 3
                sh = sw = max(sh, 3)
            xa = grid[active]
            delta = adv[active].reshape(len(active), c, h, w) - xa
            vh = rng.integers(0, h - sh + 1)
            vw = rng.integers(0, w - sw + 1)
            if threat.norm == "linf":
                delta[:, :, vh : vh + sh, vw : vw + sw] = eps * rng.choice(
                    [-1.0, 1.0], size=(len(active), c, 1, 1)
                )
            else:
                delta = eps * _unit(_l2_step(rng, delta, eps, vh, vw, sh, sw))
            candidate = threat.clip((xa + delta).reshape((len(active), *x.shape[1:])), xf[active])
            new_loss = margin(candidate, y[active])
            used += 1
            better = new_loss < loss[active]
            adv[active[better]] = candidate[better]
            loss[active[better]] = new_loss[better]
        return finalize(self.name, model, x, y, adv, threat, queries=used, started=started, loss="margin")


def _logits(view: TorchView, points: np.ndarray, batch_size: int) -> np.ndarray:
    """The module's logits (log-probabilities for probability outputs: the same margins) as float64 rows."""
    torch = view.torch
    with torch.inference_mode():
        parts = [
            view.logits(view.tensor(points[start : start + batch_size])).double().cpu().numpy()
            for start in range(0, len(points), batch_size)
        ]
    return np.concatenate(parts) if parts else np.zeros((0, view.model.n_classes))


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


def _unit(delta: np.ndarray) -> np.ndarray:
    """Each sample's perturbation scaled to L2 norm 1."""
    norms = np.linalg.norm(delta.reshape(len(delta), -1), axis=1)
    return delta / np.maximum(norms, 1e-12).reshape(-1, *([1] * (delta.ndim - 1)))


def _rings(h: int, w: int) -> np.ndarray:
    """A centre-peaked ``h × w`` block of unit L2 norm (weight ``1 / (r + 1)²`` by ring, the paper's
    pseudo-Gaussian)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.maximum(np.abs(yy - (h - 1) / 2), np.abs(xx - (w - 1) / 2))
    block = 1.0 / (np.floor(r) + 1.0) ** 2
    return block / np.linalg.norm(block)


def _meta_pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Two pseudo-Gaussian halves of opposite sign, randomly transposed when square (the paper's L2 update)."""
    if h < 2:  # flat inputs: halves along the row
        half = max(1, w // 2)
        out = np.concatenate([_rings(1, half), -_rings(1, w - half)], axis=1) if w > 1 else np.ones((1, 1))
    else:
        half = h // 2
        out = np.concatenate([_rings(half, w), -_rings(h - half, w)], axis=0)
        if h == w and rng.random() > 0.5:
            out = out.T
    return out / max(np.linalg.norm(out), 1e-12)


def _l2_init(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    """The paper's L2 start: a grid of pseudo-Gaussian blocks (side ``h // 5``) with random signs."""
    side = max(1, h // 5) if h > 1 else max(1, w // 5)
    sh = side if h > 1 else 1
    delta = np.zeros((n, c, h, w))
    for top in range((h - sh * (h // sh)) // 2, h - sh + 1, sh):
        for left in range((w - side * (w // side)) // 2, w - side + 1, side):
            block = _meta_pattern(rng, sh, side)
            delta[:, :, top : top + sh, left : left + side] += block * rng.choice(
                [-1.0, 1.0], size=(n, c, 1, 1)
            )
    return delta


def _l2_step(
    rng: np.random.Generator, delta: np.ndarray, eps: float, vh: int, vw: int, sh: int, sw: int
) -> np.ndarray:
    """The paper's L2 update: a new pseudo-Gaussian pattern in window 1 (plus its old content's direction), window
    2 zeroed, and the mass of both windows (plus any spare budget) moved into window 1."""
    n, c, h, w = delta.shape
    vh2, vw2 = rng.integers(0, h - sh + 1), rng.integers(0, w - sw + 1)
    for _ in range(10):  # a second window apart from the first, when the image has room for one
        if abs(vh2 - vh) >= sh or abs(vw2 - vw) >= sw:
            break
        vh2, vw2 = rng.integers(0, h - sh + 1), rng.integers(0, w - sw + 1)
    win1 = (slice(None), slice(None), slice(vh, vh + sh), slice(vw, vw + sw))
    win2 = (slice(None), slice(None), slice(vh2, vh2 + sh), slice(vw2, vw2 + sw))
    union = np.zeros((h, w), dtype=bool)
    union[win1[2:]] = True
    union[win2[2:]] = True

    def norm(a: np.ndarray) -> np.ndarray:
        return np.sqrt((a**2).sum(axis=(-2, -1), keepdims=True))

    old = delta[win1]
    new = _meta_pattern(rng, sh, sw)[None, None] * rng.choice([-1.0, 1.0], size=(n, c, 1, 1))
    new = new + old / (norm(old) + 1e-12)
    image = np.sqrt((delta**2).sum(axis=(1, 2, 3)))[:, None, None, None]
    budget = np.maximum(eps**2 - image**2, 0.0) / c + norm(np.where(union, delta, 0.0)) ** 2
    out = delta.copy()
    out[win2] = 0.0
    out[win1] = new / np.maximum(norm(new), 1e-12) * np.sqrt(budget)
    return out
