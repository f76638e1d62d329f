"""Spectral signatures (Tran, Li & Madry 2018): per class, how far each row lies along the top singular direction
of the class's centred representation.

A backdoor leaves a trace in the representation of the poisoned rows that no clean row of the class shares, so the
top singular vector of the class's centred features points at it and the poisoned rows project far along it. The
score of a row is the squared projection, as in the paper; the signed projection is kept too, because when a class
is about half poison both groups project equally far (in opposite directions) and only the sign tells them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SpectralSignature", "spectral_signatures"]


@dataclass(frozen=True)
class SpectralSignature:
    """Per-row ``scores`` (squared projection on the class's top singular vector, 0 for classes too small to
    score), the signed ``projection``, and per class the share of variance the top direction carries
    (``top_share``, label -> value)."""

    scores: np.ndarray
    projection: np.ndarray
    top_share: dict[int, float]


def spectral_signatures(features: np.ndarray, y: np.ndarray, *, min_rows: int = 3) -> SpectralSignature:
    """Spectral-signature scores of every row of ``features`` ``(n, d)`` within its class ``y``."""
    feats = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    scores = np.zeros(len(y))
    projection = np.zeros(len(y))
    shares: dict[int, float] = {}
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < min_rows:
            shares[int(label)] = 0.0
            continue
        centred = feats[idx] - feats[idx].mean(axis=0)
        # the top right singular vector is the top eigenvector of the (d x d) scatter matrix
        eigvals, eigvecs = np.linalg.eigh(centred.T @ centred)
        energy = float(np.clip(eigvals, 0, None).sum())
        top = float(max(eigvals[-1], 0.0))
        proj = centred @ eigvecs[:, -1]
        # the sign of a singular vector is arbitrary: fix it so the heavier tail is positive (deterministic)
        if float(np.sum(proj**3)) < 0:
            proj = -proj
        projection[idx] = proj
        scores[idx] = proj**2
        shares[int(label)] = top / energy if energy > 0 else 0.0
    return SpectralSignature(scores, projection, shares)
