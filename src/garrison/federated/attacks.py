"""What malicious federated clients send: the model-poisoning transformations of an update.

An *update* is the flat difference between a client's trained weights and the global weights it received. Data
attacks (``label-flip``, ``backdoor``) change what a malicious client trains on; model attacks change the update it
sends:

- ``sign-flip``: ``-Δ`` (the honest update, reversed);
- ``scaling`` (model replacement, Bagdasaryan et al. 2020): ``γ·Δ``, by default ``γ = n_clients``;
- ``alie`` ("a little is enough", Baruch et al. 2019): ``μ - z·σ`` per coordinate, with ``z`` from the paper's
  formula ``Φ⁻¹((n - s) / n)``, ``s = ⌊n/2 + 1⌋ - m``, so the update hides inside the benign spread;
- ``ipm`` (inner-product manipulation, Xie et al. 2020): ``-ε·μ``;
- ``min-max`` (Shejwalkar & Houmansadr 2021): ``μ + γ·p`` with ``p = -σ / ‖σ‖``, the largest ``γ`` (bisection) whose
  farthest distance to a benign update stays within the largest benign pairwise distance;
- ``backdoor`` (constrain-and-scale, Bagdasaryan et al. 2020): training on triggered rows relabelled to the target with
  a distance-to-global penalty, then ``scaling``.

ALIE, IPM and min-max need the mean ``μ`` and spread ``σ`` of benign updates. Garrison's malicious clients estimate
them honestly (the papers' *partial knowledge* setting): the colluders pool their own data and train honest updates
on disjoint chunks of it; nothing is read from honest clients. See :func:`benign_estimate`.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "ATTACKS",
    "DATA_ATTACKS",
    "STATISTIC_ATTACKS",
    "alie",
    "alie_z",
    "benign_estimate",
    "ipm",
    "min_max",
    "scaling",
    "sign_flip",
]

ATTACKS = ("none", "sign-flip", "scaling", "label-flip", "alie", "ipm", "min-max", "backdoor")
DATA_ATTACKS = ("label-flip", "backdoor")
STATISTIC_ATTACKS = ("alie", "ipm", "min-max")


def sign_flip(update: np.ndarray) -> np.ndarray:
    """The update reversed: ``-Δ``."""
    return -np.asarray(update, dtype=np.float64)


def scaling(update: np.ndarray, *, factor: float) -> np.ndarray:
    """The update boosted: ``factor · Δ`` (model replacement uses ``factor = n_clients / server_lr``)."""
    return float(factor) * np.asarray(update, dtype=np.float64)


def alie_z(n_clients: int, n_malicious: int) -> float:
    """ALIE's ``z_max``: the largest shift (in standard deviations) that still leaves the malicious updates among
    the majority a median or Krum selects (Baruch et al. 2019, Eq. 3)."""
    s = math.floor(n_clients / 2 + 1) - n_malicious
    p = (n_clients - s) / n_clients
    p = min(max(p, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(p)


def alie(benign: np.ndarray, *, z: float) -> np.ndarray:
    """``μ - z·σ`` of the benign updates (rows of ``benign``), coordinate-wise."""
    benign = np.asarray(benign, dtype=np.float64)
    return benign.mean(axis=0) - z * benign.std(axis=0)


def ipm(benign: np.ndarray, *, epsilon: float = 0.5) -> np.ndarray:
    """``-ε · μ``: an update whose inner product with the true mean is negative."""
    return -float(epsilon) * np.asarray(benign, dtype=np.float64).mean(axis=0)


def min_max(
    benign: np.ndarray, *, gamma_init: float = 10.0, tol: float = 1e-3, max_iter: int = 50
) -> np.ndarray:
    """``μ + γ·p`` (``p = -σ/‖σ‖``) with the largest ``γ`` whose largest distance to any benign update is no more
    than the largest distance between two benign updates (the min-max attack's constraint)."""
    benign = np.asarray(benign, dtype=np.float64)
    mu = benign.mean(axis=0)
    sigma = benign.std(axis=0)
    norm = float(np.linalg.norm(sigma))
    p = -sigma / norm if norm > 0 else -mu / (float(np.linalg.norm(mu)) or 1.0)
    diffs = benign[:, None, :] - benign[None, :, :]
    bound = float(np.sqrt((diffs**2).sum(axis=-1)).max())

    def ok(gamma: float) -> bool:
        return float(np.linalg.norm(benign - (mu + gamma * p), axis=1).max()) <= bound

    lo, hi = 0.0, float(gamma_init)
    while ok(hi) and hi < 1e6:  # grow until the constraint breaks
        lo, hi = hi, 2 * hi
    for _ in range(max_iter):
        if hi - lo <= tol:
            break
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return mu + lo * p


def benign_estimate(updates: list[np.ndarray]) -> np.ndarray:
    """Stack honest updates (each flat) the colluders computed on their own data into the matrix the statistic
    attacks read; at least two are needed for a spread."""
    if len(updates) < 2:
        raise ValueError(f"a benign estimate needs at least 2 updates, got {len(updates)}")
    return np.stack([np.asarray(u, dtype=np.float64).ravel() for u in updates])
