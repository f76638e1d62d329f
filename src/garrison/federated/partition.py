"""Splitting a labelled dataset across federated clients: IID shards and Dirichlet(α) label skew.

The Dirichlet split (Hsu et al. 2019) draws, for every class, the share of its rows each client gets from
Dirichlet(α·1): small α gives each client a few dominant classes, large α approaches IID. Every row lands in exactly
one client; a client left with fewer than ``min_size`` rows triggers a redraw (as in the common FL benchmarks), so
no client trains on an empty or near-empty shard.
"""

from __future__ import annotations

import numpy as np

__all__ = ["dirichlet_partition", "iid_partition", "label_skew"]


def iid_partition(n_rows: int, n_clients: int, *, seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``n_clients`` shards of (nearly) equal size, drawn uniformly at random; each sorted."""
    _check(n_rows, n_clients)
    order = np.random.default_rng(seed).permutation(n_rows)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def dirichlet_partition(
    y: np.ndarray,
    n_clients: int,
    *,
    alpha: float = 0.5,
    min_size: int = 10,
    seed: int = 0,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Row indices per client, each class spread across clients by proportions drawn from Dirichlet(``alpha``).

    Redraws (up to ``max_tries``) until every client holds at least ``min_size`` rows; ``min_size`` is lowered
    to ``len(y) // (2 * n_clients)`` when the data is too small for it.
    """
    y = np.asarray(y)
    _check(len(y), n_clients)
    if not alpha > 0:
        raise ValueError(f"`alpha` must be > 0, got {alpha!r}")
    min_size = min(min_size, len(y) // (2 * n_clients))
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    parts: list[list[np.ndarray]] = []
    for _ in range(max_tries):
        parts = [[] for _ in range(n_clients)]
        for c in classes:
            rows = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for client, chunk in enumerate(np.split(rows, cuts)):
                parts[client].append(chunk)
        if min(sum(len(c) for c in p) for p in parts) >= min_size:
            break
    return [np.sort(np.concatenate(p)) for p in parts]


def label_skew(y: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label distribution and the global one (0 = IID)."""
    y = np.asarray(y)
    classes = np.unique(y)
    overall = np.array([np.mean(y == c) for c in classes])
    tvs = []
    for idx in parts:
        if len(idx) == 0:
            continue
        local = np.array([np.mean(y[idx] == c) for c in classes])
        tvs.append(0.5 * np.abs(local - overall).sum())
    return float(np.mean(tvs))


def _check(n_rows: int, n_clients: int) -> None:
    if n_clients < 1:
        raise ValueError(f"`n_clients` must be >= 1, got {n_clients!r}")
    if n_rows < n_clients:
        raise ValueError(f"cannot split {n_rows} rows across {n_clients} clients")
