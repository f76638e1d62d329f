"""HopSkipJump (Chen et al. 2020): decision-based — it sees only predicted labels, so it attacks anything:
trees, ONNX files, remote endpoints."""

from __future__ import annotations

import time

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
        """Attack ``x`` (labels ``y``) within ``threat``; deterministic under ``seed``. All samples advance
        together, so each step is one batched query of the model (one request per step for a remote endpoint)."""
        started = time.monotonic()
        x, y = check_inputs(model, x, y)
        rng = np.random.default_rng(seed)
        xf = x.astype(np.float64)
        adv = xf.copy()
        pred = predict(model, x) if len(x) else np.zeros(0, dtype=np.int64)
        oracle = _Oracle(model, xf, y, threat, x.dtype)
        todo = np.flatnonzero(pred == y)
        start, found = self._initial(oracle, xf, pred, todo, rng)
        idx = todo[found]
        if len(idx):
            boundary = oracle.bisect(idx, start[found])
            adv[idx] = self._walk(oracle, idx, boundary, rng, deadline)
        return finalize(
            self.name, model, x, y, adv, threat, queries=int(oracle.used.max(initial=0)) + 1, started=started,
            loss="decision",
        )  # fmt: skip

    def _walk(
        self,
        oracle: _Oracle,
        idx: np.ndarray,
        boundary: np.ndarray,
        rng: np.random.Generator,
        deadline: float | None,
    ) -> np.ndarray:
        """The HopSkipJump iterations for samples ``idx`` starting on the boundary; returns their final points."""
        threat, x0 = oracle.threat, oracle.x[idx]
        d = int(np.prod(x0.shape[1:]))
        theta = 1.0 / (np.sqrt(d) * d) if threat.norm == "l2" else 1.0 / (d * d)
        shape = (-1, *[1] * (x0.ndim - 1))
        it = 0
        while True:
            current = threat.distance(boundary, x0)
            live = np.flatnonzero((current > threat.eps) & (oracle.used[idx] < self.max_queries))
            if len(live) == 0 or (deadline is not None and time.monotonic() > deadline):
                return boundary
            it += 1
            ids, b, cur = idx[live], boundary[live], current[live]
            delta = (np.sqrt(d) if threat.norm == "l2" else d) * theta * cur
            n_evals = min(int(self.init_evals * np.sqrt(it)), self.max_evals)
            n_each = np.minimum(n_evals, np.maximum(self.max_queries - oracle.used[ids], 1))
            use = np.arange(n_evals)[None, :] < n_each[:, None]
            if threat.norm == "l2":
                rv = rng.standard_normal((len(live), n_evals, *x0.shape[1:]))
            else:
                rv = rng.uniform(-1, 1, (len(live), n_evals, *x0.shape[1:]))
            rv /= np.maximum(np.sqrt((rv.reshape(len(live), n_evals, -1) ** 2).sum(axis=2)), 1e-12).reshape(
                len(live), n_evals, *[1] * (x0.ndim - 1)
            )
            rows, cols = np.nonzero(use)
            probes = oracle.valid(ids[rows], b[rows] + delta[rows].reshape(shape) * rv[rows, cols])
            rv[rows, cols] = (probes - b[rows]) / np.maximum(delta[rows], 1e-12).reshape(shape)
            signs = np.zeros(use.shape)
            signs[rows, cols] = 2.0 * oracle.fooled(ids[rows], probes) - 1.0
            mean = signs.sum(axis=1) / n_each
            centred = np.where((np.abs(mean) < 1.0)[:, None], signs - mean[:, None], signs) * use
            grad = (centred.reshape(*centred.shape, *[1] * (x0.ndim - 1)) * rv).sum(axis=1) / n_each.reshape(
                shape
            )
            if threat.norm == "l2":
                update = grad / np.maximum(
                    np.sqrt((grad.reshape(len(live), -1) ** 2).sum(axis=1)), 1e-12
                ).reshape(shape)
            else:
                update = np.sign(grad)
            # geometric step search: halve each sample's step until its candidate is adversarial again
            step = cur / np.sqrt(it)
            candidate = oracle.valid(ids, b + step.reshape(shape) * update)
            ok = oracle.fooled(ids, candidate)
            while True:
                redo = np.flatnonzero(~ok & (oracle.used[ids] < self.max_queries) & (step >= 1e-8))
                if len(redo) == 0:
                    break
                step[redo] /= 2
                candidate[redo] = oracle.valid(ids[redo], b[redo] + step[redo].reshape(shape) * update[redo])
                ok[redo] = oracle.fooled(ids[redo], candidate[redo])
            moved = np.flatnonzero(ok)
            if len(moved):
                boundary[live[moved]] = oracle.bisect(ids[moved], candidate[moved])

    def _initial(
        self,
        oracle: _Oracle,
        xs: np.ndarray,
        pred: np.ndarray,
        todo: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """An adversarial starting point per sample of ``todo``: the nearest of the batch's samples predicted as
        another class (up to five tried), else uniform noise in the box; and which samples got one."""
        threat = oracle.threat
        start = xs[todo].copy()
        found = np.zeros(len(todo), dtype=bool)
        if len(todo) == 0:
            return start, found
        flat = xs.reshape(len(xs), -1)
        sq = (flat**2).sum(axis=1)
        gaps = (
            sq[todo][:, None] + sq[None, :] - 2.0 * flat[todo] @ flat.T
        )  # squared distances, without a k×n×d array
        gaps[pred[None, :] == oracle.y[todo][:, None]] = np.inf  # only samples predicted as another class
        order = np.argsort(gaps, axis=1)[:, :5]
        for r in range(order.shape[1]):
            want = np.flatnonzero(~found & np.isfinite(gaps[np.arange(len(todo)), order[:, r]]))
            if len(want) == 0:
                break
            candidate = oracle.valid(todo[want], xs[order[want, r]])
            hit = oracle.fooled(todo[want], candidate)
            start[want[hit]], found[want[hit]] = candidate[hit], True
        lower = np.broadcast_to(np.asarray(threat.lower, dtype=np.float64), xs.shape[1:])
        upper = np.broadcast_to(np.asarray(threat.upper, dtype=np.float64), xs.shape[1:])
        finite = np.isfinite(lower) & np.isfinite(upper)
        for _ in range(self.init_tries):
            want = np.flatnonzero(~found)
            if len(want) == 0:
                break
            noise = rng.uniform(0, 1, (len(want), *xs.shape[1:]))
            uniform = np.where(
                finite, np.nan_to_num(lower) + noise * np.nan_to_num(upper - lower), xs[todo[want]]
            )
            gauss = np.where(finite, 0.0, rng.standard_normal((len(want), *xs.shape[1:])))
            candidate = oracle.valid(todo[want], uniform + gauss)
            hit = oracle.fooled(todo[want], candidate)
            start[want[hit]], found[want[hit]] = candidate[hit], True
        return start, found


class _Oracle:
    """The model seen through its decisions: projection into the threat model's box and per-sample query counts."""

    def __init__(
        self, model: Classifier, x: np.ndarray, y: np.ndarray, threat: ThreatModel, dtype: np.dtype
    ) -> None:
        self.model, self.x, self.y, self.threat, self.dtype = model, x, y, threat, dtype
        self.used = np.zeros(len(x), dtype=np.int64)

    def valid(self, ids: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``points`` (one per entry of ``ids``) clipped to the box and projected around their samples."""
        out = np.clip(points, self.threat.lower, self.threat.upper)
        if self.threat.project is not None:
            out = np.asarray(self.threat.project(out, self.x[ids]), dtype=np.float64)
        return out.reshape(points.shape)

    def fooled(self, ids: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One batched query: whether each point is classified other than its sample's label."""
        if len(ids) == 0:
            return np.zeros(0, dtype=bool)
        np.add.at(self.used, ids, 1)
        return predict(self.model, points.astype(self.dtype)) != self.y[ids]

    def bisect(self, ids: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
        """Binary search on each segment ``x -> adversarial`` for the boundary, keeping the adversarial side."""
        x0 = self.x[ids]
        shape = (-1, *[1] * (x0.ndim - 1))
        lo, hi = np.zeros(len(ids)), np.ones(len(ids))
        span = np.abs(adversarial - x0).reshape(len(ids), -1).max(axis=1, initial=0.0)
        tol = max(self.threat.eps * 1e-3, 1e-6) / np.maximum(span, 1e-12)
        while True:
            open_ = np.flatnonzero(hi - lo > tol)
            if len(open_) == 0:
                break
            mid = (lo[open_] + hi[open_]) / 2
            point = self.valid(ids[open_], x0[open_] + mid.reshape(shape) * (adversarial[open_] - x0[open_]))
            hit = self.fooled(ids[open_], point)
            hi[open_[hit]] = mid[hit]
            lo[open_[~hit]] = mid[~hit]
        return self.valid(ids, x0 + hi.reshape(shape) * (adversarial - x0))
