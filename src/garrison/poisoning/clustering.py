"""Activation clustering (Chen et al. 2018): per class, the representation reduced to a few dimensions (PCA or
ICA, 10 by default) and split by 2-means.

A poisoned class holds two kinds of rows the network recognises for different reasons (the class's own features,
the trigger), so its representation splits cleanly in two. Clean classes split too — digits come in styles — so a
split alone proves nothing: :func:`pattern_shift` measures what is special about a poison cluster in *input*
space. Poisons are rows of other classes stamped with one trigger, so the poison cluster's mean departs from every
other class on a few features (the trigger) by far more than any natural sub-style of a class does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["REDUCERS", "ClusterSplit", "activation_clusters", "pattern_shift"]

REDUCERS = ("pca", "ica")


@dataclass(frozen=True)
class ClusterSplit:
    """The 2-means split of one class: ``members`` (row indices of the class), ``labels`` (0/1 per member),
    ``silhouette`` of the split in the reduced space, and cluster ``sizes``."""

    members: np.ndarray
    labels: np.ndarray
    silhouette: float
    sizes: tuple[int, int]


def _reduce(feats: np.ndarray, n_dims: int, reduce: str, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA, FastICA

    dims = max(1, min(n_dims, feats.shape[1], len(feats) - 1))
    if reduce == "pca":
        return PCA(n_components=dims, random_state=seed).fit_transform(feats)
    with warnings.catch_warnings():
        # FastICA warns when it stops at max_iter; the components are still usable for a 2-means split
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        return FastICA(
            n_components=dims, random_state=seed, whiten="unit-variance", max_iter=500
        ).fit_transform(feats)


def activation_clusters(
    features: np.ndarray,
    y: np.ndarray,
    *,
    n_dims: int = 10,
    reduce: str = "pca",
    seed: int = 0,
) -> dict[int, ClusterSplit]:
    """Per class label, the 2-means split of ``features`` reduced to ``n_dims`` by ``reduce`` (``"pca"`` or
    ``"ica"``). Classes with fewer than 4 rows are left out."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if reduce not in REDUCERS:
        raise ValueError(f"`reduce` must be one of {', '.join(REDUCERS)}, got {reduce!r}")
    feats = np.asarray(features, dtype=np.float64)
    y = np.asarray(y)
    out: dict[int, ClusterSplit] = {}
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < 4:
            continue
        z = _reduce(feats[idx], n_dims, reduce, seed)
        labels = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(z)
        sizes = (int((labels == 0).sum()), int((labels == 1).sum()))
        sil = float(silhouette_score(z, labels)) if min(sizes) > 0 else 0.0
        out[int(label)] = ClusterSplit(idx, labels.astype(np.int64), sil, sizes)
    return out


def pattern_shift(
    x_flat: np.ndarray,
    rows: np.ndarray,
    reference: np.ndarray,
    *,
    top: int = 3,
    floor: float,
) -> float:
    """How far the mean of ``x_flat[rows]`` departs from ``x_flat[reference]`` on its ``top`` most shifted
    features: the standardised mean difference (pooled standard deviation of the two groups, floored at
    ``floor`` so that a feature almost constant everywhere cannot make a tiny shift look huge), averaged over
    those ``top`` features. A trigger is the same in every poisoned row and absent elsewhere, so it shifts a few
    features by many pooled deviations; a natural style of a class varies within the class and shifts less."""
    if len(rows) < 2 or len(reference) < 2:
        return 0.0
    group, ref = x_flat[rows], x_flat[reference]
    pooled = np.sqrt((group.var(axis=0) + ref.var(axis=0)) / 2)
    shift = np.abs(group.mean(axis=0) - ref.mean(axis=0)) / np.maximum(pooled, floor)
    k = min(top, shift.size)
    return float(np.sort(shift)[-k:].mean())
