"""Query-pattern detection per API key: model extraction and membership / boundary probing.

A single request rarely gives an extraction attack away; its pattern does. :class:`QueryMonitor` keeps a small,
bounded state per API key and, on every batch a key sends, says which of four patterns the key shows:

- ``"volume"``: more than ``max_queries`` rows within the last ``window_s`` seconds (counted in
  ``n_buckets`` time buckets, so the window slides in steps of ``window_s / n_buckets``);
- ``"near_duplicates"``: a large share of the key's recent rows lie within ``duplicate_radius`` of an earlier
  recent row of the same key — repeated or minutely varied queries, as membership-inference and
  boundary-search attacks send. The radius is the ``duplicate_quantile`` of the nearest-neighbour distance of a
  reference row among ``history`` other reference rows (standardised space), so benign traffic has about that
  share of near duplicates;
- ``"boundary"``: a large share of recent predictions with a margin (top-1 minus top-2 probability) below the
  ``margin_fpr`` quantile of clean reference predictions — extraction by boundary search and
  Jacobian-style augmentation concentrates its queries there;
- ``"ood_share"``: a large share of recent rows flagged by an :class:`~garrison.monitor.detectors.OODDetector` —
  KnockoffNets-style extraction with random or out-of-domain queries.

The share-based signals fire only once a key has ``min_queries`` recent rows, when the share over its last
``history`` rows reaches the signal's threshold. Each threshold sits far above the rate calibrated on benign
traffic (a few per cent), so a benign key crosses it only by a binomial tail of negligible probability.

Bounded memory: per key a ring of ``history`` rows sketched to at most ``sketch_dim`` dimensions by a seeded
Gaussian random projection (distances are kept up to a small distortion, Johnson–Lindenstrauss), three flag bits
per row and ``n_buckets`` counters — with the defaults about 10 KiB per key; at most ``max_keys`` keys, the least
recently seen evicted first (LRU). The monitor never reads a clock: every call takes ``now`` (seconds, any
monotone origin). Not thread-safe: the service serialises calls or keeps one monitor per worker.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.core.errors import InputError
from garrison.monitor.detectors import MarginDetector, OODDetector, Signal, margin

__all__ = ["SIGNAL_KINDS", "ProbingThresholds", "QueryMonitor"]

SIGNAL_KINDS = ("volume", "near_duplicates", "boundary", "ood_share")

_DUP, _LOW, _OOD = 0, 1, 2


@dataclass(frozen=True)
class ProbingThresholds:
    """When :class:`QueryMonitor` flags a key (defaults and their reasons in docs/detectors.md)."""

    window_s: float = 60.0
    max_queries: int = 600
    history: int = 128
    min_queries: int = 30
    duplicate_share: float = 0.3
    boundary_share: float = 0.3
    ood_share: float = 0.3

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"`window_s` must be > 0, got {self.window_s!r}")
        for name in ("max_queries", "history", "min_queries"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {v!r}")
        if self.min_queries > self.history:
            raise ValueError(f"`min_queries` must be <= `history`, got {self.min_queries} > {self.history}")
        for name in ("duplicate_share", "boundary_share", "ood_share"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"`{name}` must be in (0, 1], got {v!r}")


class _KeyState:
    """One key's bounded state: the ring of sketched rows (and their squared norms) and flags, the flag counts over
    the ring, and the bucketed query counts."""

    __slots__ = ("bucket_ids", "counts", "filled", "flag_counts", "flags", "pos", "rows", "sq", "total")

    def __init__(self, history: int, dim: int, n_buckets: int) -> None:
        self.rows = np.zeros((history, dim), dtype=np.float32)
        self.sq = np.zeros(history, dtype=np.float32)
        self.flags = np.zeros((history, 3), dtype=bool)
        self.flag_counts = np.zeros(3, dtype=np.int64)
        self.pos = 0
        self.filled = 0
        self.counts = np.zeros(n_buckets, dtype=np.int64)
        self.bucket_ids = np.full(n_buckets, -(2**62), dtype=np.int64)
        self.total = 0

    def nearest(self, s: np.ndarray, sq: np.ndarray) -> np.ndarray:
        """Per new row (sketched ``s``, squared norms ``sq``), the squared distance to its nearest neighbour among
        the recent rows and the earlier new rows."""
        b = len(s)
        best = np.full(b, np.inf, dtype=np.float32)
        if b > 1:
            within = sq[:, None] + sq[None, :] - 2.0 * (s @ s.T)
            within[~np.tri(b, b, -1, dtype=bool)] = np.inf
            best = within.min(axis=1)
        if self.filled:
            cross = sq[:, None] + self.sq[None, : self.filled] - 2.0 * (s @ self.rows[: self.filled].T)
            best = np.minimum(best, cross.min(axis=1))
        return best

    def push(self, rows: np.ndarray, sq: np.ndarray, flags: np.ndarray) -> None:
        cap = len(self.rows)
        idx = (self.pos + np.arange(len(rows))) % cap
        if self.filled == cap:
            self.flag_counts -= self.flags[idx].sum(axis=0)
        elif self.filled + len(rows) > cap:
            overwritten = idx[idx < self.filled]
            self.flag_counts -= self.flags[overwritten].sum(axis=0)
        self.rows[idx] = rows
        self.sq[idx] = sq
        self.flags[idx] = flags
        self.flag_counts += flags.sum(axis=0)
        self.pos = int((self.pos + len(rows)) % cap)
        self.filled = min(cap, self.filled + len(rows))

    def count(self, n: int, bucket: int) -> int:
        nb = len(self.counts)
        slot = bucket % nb
        if self.bucket_ids[slot] != bucket:
            if self.bucket_ids[slot] > bucket:  # time went backwards past this slot: count it as current
                bucket = int(self.bucket_ids[slot])
            else:
                self.bucket_ids[slot] = bucket
                self.counts[slot] = 0
        self.counts[slot] += n
        self.total += n
        return int(self.counts[self.bucket_ids > bucket - nb].sum())


class QueryMonitor:
    """Per-key query-pattern monitor (see the module docstring).

    ``thresholds``: when a key is flagged; ``max_keys``: keys kept (LRU); ``sketch_dim``: the dimension rows are
    projected to when they have more features; ``n_buckets``: time buckets per window; ``duplicate_quantile``
    and ``margin_fpr``: the benign rates the near-duplicate radius and the low-margin threshold are set at;
    ``ood``: a fitted :class:`OODDetector` to share with the per-request path (else :meth:`fit` fits one at
    ``ood_fpr``); ``seed``: projection and calibration draws.
    """

    def __init__(
        self,
        *,
        thresholds: ProbingThresholds | None = None,
        max_keys: int = 4096,
        sketch_dim: int = 16,
        n_buckets: int = 12,
        duplicate_quantile: float = 0.02,
        margin_fpr: float = 0.05,
        ood: OODDetector | None = None,
        ood_fpr: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.thresholds = thresholds if thresholds is not None else ProbingThresholds()
        self.max_keys = max_keys
        self.sketch_dim = sketch_dim
        self.n_buckets = n_buckets
        self.duplicate_quantile = duplicate_quantile
        self.margin_fpr = margin_fpr
        self.ood = ood
        self.ood_fpr = ood_fpr
        self.seed = seed
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()
        self._fitted = False

    # ------------------------------------------------------------------ fit

    def fit(self, x: np.ndarray, probs: np.ndarray) -> QueryMonitor:
        """Calibrate on reference rows ``x`` (codec space) and the model's probabilities for them ``probs``:
        the standardisation and projection, the near-duplicate radius, the low-margin threshold and, unless one
        was given, the OOD detector. Use held-out rows, not training rows, for honest margins."""
        for name in ("max_keys", "sketch_dim", "n_buckets"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {v!r}")
        if not 0 < self.duplicate_quantile < 1:
            raise ValueError(f"`duplicate_quantile` must be in (0, 1), got {self.duplicate_quantile!r}")
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 2 or len(a) < 3 or not np.isfinite(a).all():
            raise InputError("reference rows must be a finite 2-d array of at least 3 rows", field="x")
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or len(p) != len(a):
            raise InputError(
                f"`probs` must have one row per reference row, got shape {p.shape}", field="probs"
            )
        rng = np.random.default_rng(self.seed)
        d = a.shape[1]
        self._mean = a.mean(axis=0)
        sd = a.std(axis=0)
        self._inv_sd = 1.0 / np.where(sd > 0, sd, 1.0)
        if d > self.sketch_dim:
            proj = rng.standard_normal((d, self.sketch_dim)) / math.sqrt(self.sketch_dim)
        else:
            proj = np.eye(d)
        self._projection = (proj * self._inv_sd[:, None]).astype(np.float64)
        self._margin = MarginDetector(fpr=self.margin_fpr).fit(p)
        if self.ood is None:
            self.ood = OODDetector(fpr=self.ood_fpr, seed=self.seed).fit(a)
        elif self.ood.n_features_ != d:
            raise InputError(
                f"`ood` was fitted on {self.ood.n_features_} features, the rows have {d}", field="x"
            )
        self._radius = self._calibrate_radius(self._sketch(a), rng)
        self._radius_sq = np.float32(self._radius**2)
        self._fitted = True
        return self

    def _calibrate_radius(self, s: np.ndarray, rng: np.random.Generator) -> float:
        n = len(s)
        m = min(self.thresholds.history, n - 1)
        probes = rng.choice(n, size=min(n, 1000), replace=False)
        nn = np.empty(len(probes))
        for i, j in enumerate(probes):
            others = rng.choice(n - 1, size=m, replace=False)
            others = others + (others >= j)
            nn[i] = np.sqrt(((s[others] - s[j]) ** 2).sum(axis=1).min())
        return float(np.quantile(nn, self.duplicate_quantile))

    # ------------------------------------------------------------- observe

    def observe(self, key: str, x: np.ndarray, probs: np.ndarray, now: float) -> list[Signal]:
        """Record a batch of rows ``x`` that ``key`` sent at time ``now`` and the model's ``probs`` for them;
        return the signals the key shows now (empty when none), in :data:`SIGNAL_KINDS` order."""
        self._check_fitted()
        a = np.asarray(x, dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != len(self._mean):
            raise InputError(f"expected rows of {len(self._mean)} features, got shape {a.shape}", field="x")
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim == 1:
            p = p[None, :]
        if len(p) != len(a):
            raise InputError(f"`probs` has {len(p)} rows for {len(a)} queries", field="probs")
        if not math.isfinite(now):
            raise ValueError(f"`now` must be finite, got {now!r}")
        state = self._state(key)
        th = self.thresholds
        volume = state.count(len(a), math.floor(now / (th.window_s / self.n_buckets)))
        if len(a) == 0:
            return self._signals(key, state, volume)
        a, p = a[-th.history :], p[-th.history :]  # only the last `history` rows are kept
        finite = a if np.isfinite(a).all() else np.where(np.isfinite(a).all(axis=1)[:, None], a, self._mean)
        s = self._sketch(finite).astype(np.float32)
        sq = np.einsum("ij,ij->i", s, s)
        flags = np.empty((len(a), 3), dtype=bool)
        flags[:, _DUP] = state.nearest(s, sq) < self._radius_sq
        flags[:, _LOW] = margin(p) < self._margin.threshold_
        flags[:, _OOD] = self._ood_detector().flag(a)
        state.push(s, sq, flags)
        return self._signals(key, state, volume)

    def _signals(self, key: str, state: _KeyState, volume: int) -> list[Signal]:
        th = self.thresholds
        out: list[Signal] = []
        if volume > th.max_queries:
            out.append(Signal("volume", key, float(volume), float(th.max_queries), {"window_s": th.window_s}))
        if state.filled >= th.min_queries:
            shares = state.flag_counts / state.filled
            detail = {"n_recent": state.filled}
            for kind, col, limit, extra in (
                ("near_duplicates", _DUP, th.duplicate_share, {"radius": self._radius}),
                ("boundary", _LOW, th.boundary_share, {"margin_threshold": self._margin.threshold_}),
                ("ood_share", _OOD, th.ood_share, {}),
            ):
                if shares[col] >= limit:
                    out.append(Signal(kind, key, float(shares[col]), limit, {**detail, **extra}))
        return out

    # -------------------------------------------------------------- helpers

    def key_summary(self, key: str) -> dict[str, Any] | None:
        """The key's current state, JSON-ready (``None`` for a key not held): rows seen, recent rows, and the
        share of recent rows that were near duplicates, low-margin and OOD."""
        state = self._keys.get(key)
        if state is None:
            return None
        shares = state.flag_counts / state.filled if state.filled else np.zeros(3)
        return {
            "total": state.total,
            "n_recent": state.filled,
            "near_duplicate_share": float(shares[_DUP]),
            "boundary_share": float(shares[_LOW]),
            "ood_share": float(shares[_OOD]),
        }

    def forget(self, key: str) -> None:
        """Drop ``key``'s state (after a block or a key rotation)."""
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    @property
    def duplicate_radius_(self) -> float:
        self._check_fitted()
        return self._radius

    @property
    def margin_threshold_(self) -> float:
        self._check_fitted()
        return self._margin.threshold_

    def to_dict(self) -> dict[str, Any]:
        """Parameters and calibrated thresholds, JSON-ready."""
        th = self.thresholds
        out: dict[str, Any] = {
            "method": "query-monitor",
            "thresholds": {
                "window_s": th.window_s,
                "max_queries": th.max_queries,
                "history": th.history,
                "min_queries": th.min_queries,
                "duplicate_share": th.duplicate_share,
                "boundary_share": th.boundary_share,
                "ood_share": th.ood_share,
            },
            "max_keys": self.max_keys,
            "sketch_dim": self.sketch_dim,
            "n_buckets": self.n_buckets,
            "duplicate_quantile": self.duplicate_quantile,
            "margin_fpr": self.margin_fpr,
            "n_keys": len(self._keys),
        }
        if self._fitted:
            out["duplicate_radius"] = round(self._radius, 6)
            out["margin_threshold"] = round(self._margin.threshold_, 6)
            out["ood"] = self._ood_detector().to_dict()
        return out

    def _sketch(self, a: np.ndarray) -> np.ndarray:
        return (a - self._mean) @ self._projection

    def _state(self, key: str) -> _KeyState:
        state = self._keys.get(key)
        if state is None:
            state = _KeyState(self.thresholds.history, self._projection.shape[1], self.n_buckets)
            self._keys[key] = state
            while len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        return state

    def _ood_detector(self) -> OODDetector:
        if self.ood is None:
            raise RuntimeError("QueryMonitor is not fitted: call fit(x_reference, probs_reference) first")
        return self.ood

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("QueryMonitor is not fitted: call fit(x_reference, probs_reference) first")
