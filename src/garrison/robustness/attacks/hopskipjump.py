"""HopSkipJump (Chen et al. 2020): decision-based — it sees only predicted labels, so it attacks anything:
trees, ONNX files, remote endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from garrison.adapters.base import Classifier, predict
from garrison.robustness.attacks.base import check_inputs, finalize
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["HopSkipJump"]


class HopSkipJump:
    """Walks along the decision boundary towards the clean point: binary search to the boundary, a Monte-Carlo
    estimate of the boundary's normal, a geometric step along it. Stops per sample once inside ``eps`` or when
    ``max_queries`` (per sample) are spent."""

    def __init__(
        self,
        *,
        max_queries: int = 5000,
        init_evals: int = 100,
        max_evals: int = 1000,
        init_tries: int = 100,
        name: str = "hopskipjump",
    ) -> None:
        if max_queries < 1:
            raise ValueError(f"`max_queries` must be >= 1, got {max_queries!r}")
        if init_evals < 1 or max_evals < init_evals:
            raise ValueError(f"need 1 <= `init_evals` <= `max_evals`, got {init_evals!r}, {max_evals!r}")
        self.max_queries = max_queries
        self.init_evals = init_evals
        self.max_evals = max_evals
        self.init_tries = init_tries
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
        adv = xf.copy()
        pred = predict(model, x) if len(x) else np.zeros(0, dtype=np.int64)
        most = 1
        for i in np.flatnonzero(pred == y):
            if deadline is not None and time.monotonic() > deadline:
                break
            point, used = self._attack_one(model, xf, pred, i, int(y[i]), threat, rng, x.dtype)
            adv[i] = point
            most = max(most, used + 1)
        return finalize(self.name, model, x, y, adv, threat, queries=most, started=started, loss="decision")

    def _attack_one(
        self,
        model: Classifier,
        xs: np.ndarray,
        pred: np.ndarray,
        i: int,
        label: int,
        threat: ThreatModel,
        rng: np.random.Generator,
        dtype: np.dtype,
    ) -> tuple[np.ndarray, int]:
        x0 = xs[i]
        used = 0

        def valid(points: np.ndarray) -> np.ndarray:
            out = np.clip(points, threat.lower, threat.upper)
            if threat.project is not None:
                out = np.asarray(threat.project(out, np.broadcast_to(x0, out.shape)), dtype=np.float64)
            return out.reshape(points.shape)

        def fooled(points: np.ndarray) -> np.ndarray:
            nonlocal used
            used += len(points)
            return predict(model, points.astype(dtype)) != label

        def dist(point: np.ndarray) -> float:
            return float(threat.distance(point[None], x0[None])[0])

        start = self._initial(xs, pred, label, x0, valid, fooled, rng, threat)
        if start is None:
            return x0, used
        boundary = _bisect(x0, start, valid, fooled, threat.eps)
        d = int(x0.size)
        theta = 1.0 / (np.sqrt(d) * d) if threat.norm == "l2" else 1.0 / (d * d)
        it = 0
        while used < self.max_queries and dist(boundary) > threat.eps:
            it += 1
            current = dist(boundary)
            delta = (np.sqrt(d) if threat.norm == "l2" else d) * theta * current
            n_evals = min(int(self.init_evals * np.sqrt(it)), self.max_evals, max(self.max_queries - used, 1))
            if threat.norm == "l2":
                rv = rng.standard_normal((n_evals, *x0.shape))
            else:
                rv = rng.uniform(-1, 1, (n_evals, *x0.shape))
            rv /= np.maximum(np.sqrt((rv.reshape(n_evals, -1) ** 2).sum(axis=1)), 1e-12).reshape(
                (-1, *[1] * x0.ndim)
            )
            probes = valid(boundary[None] + delta * rv)
            rv = (probes - boundary[None]) / max(delta, 1e-12)
            signs = 2.0 * fooled(probes) - 1.0
            if abs(signs.mean()) < 1.0:
                signs = signs - signs.mean()
            grad = (signs.reshape((-1, *[1] * x0.ndim)) * rv).mean(axis=0)
            update = grad / max(np.linalg.norm(grad), 1e-12) if threat.norm == "l2" else np.sign(grad)
            step = current / np.sqrt(it)
            candidate = valid((boundary + step * update)[None])[0]
            while not fooled(candidate[None])[0] and used < self.max_queries:
                step /= 2
                candidate = valid((boundary + step * update)[None])[0]
                if step < 1e-8:
                    break
            if not fooled(candidate[None])[0]:
                continue
            boundary = _bisect(x0, candidate, valid, fooled, threat.eps)
        return boundary, used

    def _initial(
        self,
        xs: np.ndarray,
        pred: np.ndarray,
        label: int,
        x0: np.ndarray,
        valid: Callable[[np.ndarray], np.ndarray],
        fooled: Callable[[np.ndarray], np.ndarray],
        rng: np.random.Generator,
        threat: ThreatModel,
    ) -> np.ndarray | None:
        """An adversarial starting point: the nearest sample of the batch predicted as another class, else
        uniform noise in the box."""
        others = np.flatnonzero(pred != label)
        if len(others):
            gaps = ((xs[others] - x0[None]) ** 2).reshape(len(others), -1).sum(axis=1)
            for j in others[np.argsort(gaps)[:5]]:
                candidate = valid(xs[j][None])[0]
                if fooled(candidate[None])[0]:
                    return candidate
        lower = np.broadcast_to(np.asarray(threat.lower, dtype=np.float64), x0.shape)
        upper = np.broadcast_to(np.asarray(threat.upper, dtype=np.float64), x0.shape)
        finite = np.isfinite(lower) & np.isfinite(upper)
        for _ in range(self.init_tries):
            noise = rng.uniform(0, 1, x0.shape)
            uniform = np.where(finite, np.nan_to_num(lower) + noise * np.nan_to_num(upper - lower), x0)
            candidate = valid((uniform + np.where(finite, 0.0, rng.standard_normal(x0.shape)))[None])[0]
            if fooled(candidate[None])[0]:
                return candidate
        return None


def _bisect(
    x0: np.ndarray,
    adversarial: np.ndarray,
    valid: Callable[[np.ndarray], np.ndarray],
    fooled: Callable[[np.ndarray], np.ndarray],
    eps: float,
) -> np.ndarray:
    """Binary search on the segment ``x0 -> adversarial`` for the boundary, keeping the adversarial side."""
    lo, hi = 0.0, 1.0
    tol = max(eps * 1e-3, 1e-6) / max(float(np.abs(adversarial - x0).max()), 1e-12)
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if fooled(valid((x0 + mid * (adversarial - x0))[None]))[0]:
            hi = mid
        else:
            lo = mid
    return valid((x0 + hi * (adversarial - x0))[None])[0]
