"""Model-extraction query scripts, to test the service's query monitor against (``garrison.monitor.probing``).

Two attackers a deployed classifier meets: KnockoffNets-style random queries within the feature bounds, and
Jacobian-style boundary probing from a few real rows (what a substitute-model trainer sends). Each is an endless
iterator of single rows; the caller decides how many to send.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["boundary_queries", "uniform_queries"]


def uniform_queries(lo: np.ndarray, hi: np.ndarray, *, seed: int = 1) -> Iterator[np.ndarray]:
    """KnockoffNets-style extraction with random queries: uniform within the feature bounds ``[lo, hi]``."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.uniform(lo, hi)


def boundary_queries(
    model: Any, seeds: np.ndarray, scale: np.ndarray, *, seed: int = 2
) -> Iterator[np.ndarray]:
    """Black-box Jacobian-style augmentation: from real ``seeds`` rows, bisect towards the decision boundary between
    two rows of different predicted classes (``model.predict_proba``), then sample small perturbations (``scale``
    per feature) around the boundary point found."""
    rng = np.random.default_rng(seed)
    labels = model.predict_proba(seeds).argmax(axis=1)
    while True:
        i, j = rng.choice(len(seeds), size=2, replace=False)
        if labels[i] == labels[j]:
            continue
        a, b = seeds[i].copy(), seeds[j].copy()
        for _ in range(8):
            mid = (a + b) / 2
            yield mid
            if model.predict_proba(mid[None, :]).argmax() == labels[i]:
                a = mid
            else:
                b = mid
        for _ in range(4):
            yield (a + b) / 2 + rng.normal(0.0, 0.01, size=a.shape) * scale
