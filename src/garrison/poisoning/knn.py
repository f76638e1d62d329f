"""Model-agnostic poison evidence in feature space: k-NN label disagreement plus an outlier score.

A relabelled row (a label flip, or a row of another class carrying a trigger) still looks like the class it came
from, so most of its nearest neighbours carry another label. The disagreement of a row is the share of its ``k``
nearest neighbours (Euclidean, in standardised feature space for tables; raw for images, whose features share one
scale) whose label differs from its own. An outlier score (the Isolation Forest score of the row within its class,
as a modified z against the class) adds the rows that look like nothing else in their class, such as an odd
feature trigger; :func:`combined_scores` folds the two into one number in [0, 1].
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "combined_scores",
    "disagreement_flow",
    "flatten_rows",
    "knn_disagreement",
    "neighbour_labels",
    "outlier_scores",
    "standardize",
]


def flatten_rows(x: np.ndarray) -> np.ndarray:
    """``x`` as float64 rows ``(n, features)``."""
    x = np.asarray(x)
    return x.reshape(len(x), -1).astype(np.float64, copy=False)


def standardize(x_flat: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance; constant columns are only centred."""
    sd = x_flat.std(axis=0)
    return (x_flat - x_flat.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def neighbour_labels(
    x_flat: np.ndarray, y: np.ndarray, *, k: int = 10, exclude: np.ndarray | None = None
) -> np.ndarray:
    """The labels of each row's ``k`` nearest other rows ``(n, k)`` (Euclidean; rows marked in the boolean mask
    ``exclude`` are never anyone's neighbour)."""
    from sklearn.neighbors import NearestNeighbors

    y = np.asarray(y)
    pool = np.arange(len(y)) if exclude is None else np.flatnonzero(~np.asarray(exclude, dtype=bool))
    k = min(k, len(pool) - 1)
    if k < 1:
        return y[:, None].copy()
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(x_flat[pool]).kneighbors(x_flat)
    neighbours = pool[idx]
    out = np.empty((len(y), k), dtype=y.dtype)
    for i in range(len(y)):
        # drop the row itself (it may not come first when it has exact duplicates)
        out[i] = y[neighbours[i][neighbours[i] != i][:k]]
    return out


def knn_disagreement(
    x_flat: np.ndarray, y: np.ndarray, *, k: int = 10, exclude: np.ndarray | None = None
) -> np.ndarray:
    """Per row, the share of its ``k`` nearest other rows whose label differs from its own."""
    y = np.asarray(y)
    return np.mean(neighbour_labels(x_flat, y, k=k, exclude=exclude) != y[:, None], axis=1)


def disagreement_flow(y: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``flow[a, b]``: how many rows of class ``classes[a]`` have most of their neighbours (``labels``) in class
    ``classes[b]`` (the most common other label; ties to the smaller label)."""
    y = np.asarray(y)
    position = {int(c): i for i, c in enumerate(classes)}
    flow = np.zeros((len(classes), len(classes)))
    disputed = np.flatnonzero(np.mean(labels != y[:, None], axis=1) > 0.5)
    for i in disputed:
        others = labels[i][labels[i] != y[i]]
        values, counts = np.unique(others, return_counts=True)
        flow[position[int(y[i])], position[int(values[np.argmax(counts)])]] += 1
    return flow


def outlier_scores(x_flat: np.ndarray, y: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per row, how much of an outlier it is within its own class: the modified z-score of its Isolation Forest
    score against the other rows of the class (0 for classes under 4 rows)."""
    from sklearn.ensemble import IsolationForest

    from garrison.poisoning.robust_null import modified_z

    y = np.asarray(y)
    out = np.zeros(len(y))
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < 4:
            continue
        forest = IsolationForest(n_estimators=100, random_state=seed).fit(x_flat[idx])
        out[idx] = modified_z(-forest.score_samples(x_flat[idx]))  # larger = more isolated
    return out


def combined_scores(disagreement: np.ndarray, outlier_z: np.ndarray, *, z_threshold: float) -> np.ndarray:
    """``max(disagreement, outlier_z / (2 z_threshold))`` clipped to [0, 1]: a row at the outlier threshold
    scores 0.5, like a row half of whose neighbours carry another label."""
    out = np.clip(np.asarray(outlier_z, dtype=np.float64) / (2 * z_threshold), 0.0, 1.0)
    return np.maximum(np.asarray(disagreement, dtype=np.float64), out)
