"""Find poisoned rows in a training set: :func:`scan_training_set`.

Two kinds of evidence, each turned into a per-class statistic and judged against the other classes (the rules are
in :mod:`garrison.poisoning.robust_null`):

- **The representation** (``method="spectral-clustering"``, what ``"auto"`` picks when a torch model is given):
  per class, the penultimate-layer features (or ``layer``) are split in two by activation clustering (PCA to 10
  dimensions, 2-means), and each side is scored by its *pattern shift*: how far its input-space mean departs from
  every other class on its few most shifted features, in pooled standard deviations. A trigger stamped on rows of
  many classes is exactly such a pattern; natural styles of a class are not. Each row's spectral signature (Tran
  et al. 2018) is kept in ``components["spectral"]`` beside it.
- **k-NN label disagreement** in input space (every method; ``"knn"`` adds an Isolation Forest outlier score):
  rows most of whose ``k`` nearest neighbours carry another label. Label flips and rows of other classes with a
  small trigger (a blended pattern) still sit among the rows of their true class, and make the class's boundary
  one-sided: more of its rows sit among other classes than rows of other classes sit among it.

A class is flagged when either z exceeds ``z_threshold`` (the pattern shift's modified z among the classes, the
boundary asymmetry's sign-test z).
Suspects come from flagged classes only: for the representation evidence the shifted side of the split — not the
smaller side, since at 10 % of all rows poisoned into one class the class is about half poison — with its edge
redrawn in input space: every row of the class is scored on the three features that side shifts most against the
other classes (the trigger's pixels, for a patch) and the scores are cut in two at the Otsu threshold; for the
k-NN evidence the disputed rows plus those a logistic regression fit on them against the class's undisputed rows
puts on their side. With no class flagged there is no suspect, so clean data gives a false-positive rate of zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from garrison.core.errors import ConfigError, InputError
from garrison.poisoning.clustering import REDUCERS, activation_clusters, pattern_shift
from garrison.poisoning.knn import (
    combined_scores,
    disagreement_flow,
    flatten_rows,
    knn_disagreement,
    neighbour_labels,
    outlier_scores,
    standardize,
)
from garrison.poisoning.robust_null import MIN_CLASSES_FOR_MAD, Z_THRESHOLD, asymmetry_z, modified_z

__all__ = ["METHODS", "ClassSummary", "PoisonScan", "scan_training_set"]

METHODS = ("auto", "spectral-clustering", "knn")
SCHEMA_VERSION = 1
_MIN_CLUSTER_SHARE = 0.05


@dataclass(frozen=True)
class ClassSummary:
    """One class of the scan.

    ``statistic`` is the class's strongest evidence z (the larger of ``knn_z``, the boundary-asymmetry z, and
    ``cluster_z``, the pattern shift's modified z) and ``threshold`` the cut it is judged by; ``evidence`` names
    what fired (``"knn"``, ``"cluster"``). ``knn_disagreement`` is the share of rows most of whose neighbours
    carry another label; ``pattern_shift``, ``silhouette`` and ``spectral_share`` describe the representation
    split (``None`` without a model)."""

    label: int
    n: int
    statistic: float
    threshold: float
    flagged: bool
    n_suspects: int
    evidence: tuple[str, ...]
    knn_disagreement: float
    knn_z: float
    pattern_shift: float | None = None
    cluster_z: float | None = None
    silhouette: float | None = None
    spectral_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "n": self.n,
            "statistic": _num(self.statistic),
            "threshold": self.threshold,
            "flagged": self.flagged,
            "n_suspects": self.n_suspects,
            "evidence": list(self.evidence),
            "knn_disagreement": _num(self.knn_disagreement),
            "knn_z": _num(self.knn_z),
            "pattern_shift": _num(self.pattern_shift),
            "cluster_z": _num(self.cluster_z),
            "silhouette": _num(self.silhouette),
            "spectral_share": _num(self.spectral_share),
        }


@dataclass(frozen=True)
class PoisonScan:
    """The result of :func:`scan_training_set`.

    ``scores`` holds one suspicion per row in [0, 1] (the k-NN score, raised to the refit probability or to 1 for
    the rows of a flagged poison cluster); ``suspects`` the sorted row indices judged poisoned; ``classes`` one
    :class:`ClassSummary` per label; ``components`` the per-row evidence behind the scores (``"knn"``,
    ``"outlier_z"``, ``"spectral"``)."""

    method: str
    representation: str | None
    scores: np.ndarray
    suspects: np.ndarray
    classes: tuple[ClassSummary, ...]
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    components: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def flagged_classes(self) -> tuple[int, ...]:
        return tuple(c.label for c in self.classes if c.flagged)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: indices and scores as lists, floats rounded to 6 decimals, NaN as ``None``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "method": self.method,
            "representation": self.representation,
            "seed": self.seed,
            "params": dict(sorted(self.params.items())),
            "n_rows": len(self.scores),
            "flagged_classes": list(self.flagged_classes),
            "suspects": [int(i) for i in self.suspects],
            "scores": [round(float(s), 6) for s in self.scores],
            "classes": [c.to_dict() for c in self.classes],
        }


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), 6)


def _validate(x: Any, y: Any, *, k: int, min_class_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1:
        raise InputError(f"`y` must be a 1-d array of class labels, got shape {y.shape}", field="y")
    if x.ndim < 2:
        raise InputError(f"`x` must hold one row per sample (at least 2-d), got shape {x.shape}", field="x")
    if len(x) != len(y):
        raise InputError(f"`x` has {len(x)} rows but `y` has {len(y)} labels", field="y")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(
            f"labels must be integers, got dtype {y.dtype}; map class names to 0..K-1 first", field="y"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"`x` must be real numbers, got dtype {x.dtype}", field="x")
    if not np.isfinite(x).all():
        raise InputError("`x` holds NaN or infinite values", field="x")
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise InputError(f"need at least 2 classes, got {len(labels)}", field="y")
    small = [f"{int(c)} ({int(n)})" for c, n in zip(labels, counts, strict=True) if n < min_class_rows]
    if small:
        raise InputError(
            f"every class needs at least {min_class_rows} rows (k={k} neighbours plus the row itself, "
            f"and enough for a 2-way split); too few in class {', '.join(small)}",
            field="y",
        )
    return x, y, labels


def _refit_probability(
    space: np.ndarray, seeds: np.ndarray, anchors: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """P(seed-like) for ``rows`` from a logistic regression fit on ``seeds`` (1) against ``anchors`` (0)."""
    from sklearn.linear_model import LogisticRegression

    fit_rows = np.concatenate([seeds, anchors])
    target = np.concatenate([np.ones(len(seeds), dtype=int), np.zeros(len(anchors), dtype=int)])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(space[fit_rows], target)
    return np.asarray(model.predict_proba(space[rows])[:, 1])


def _pattern_side(
    space: np.ndarray,
    rows: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    floor: float,
    top: int = 3,
) -> np.ndarray:
    """Which of ``rows`` carry the pattern that sets ``candidate`` apart from ``reference``: each row's mean
    standardised value on the ``top`` most shifted features (signed so the pattern scores high), split at the Otsu
    cut (the threshold that maximises the between-group variance) and kept on the high side. Falls back to the
    candidate split when the scores do not separate."""
    group, ref = space[candidate], space[reference]
    ref_mean = ref.mean(axis=0)
    pooled = np.maximum(np.sqrt((group.var(axis=0) + ref.var(axis=0)) / 2), floor)
    shift = (group.mean(axis=0) - ref_mean) / pooled
    features = np.argsort(np.abs(shift))[-min(top, shift.size) :]
    score = (
        (space[rows][:, features] - ref_mean[features]) / pooled[features] * np.sign(shift[features])
    ).mean(1)
    order = np.sort(score)
    n = len(order)
    if n < 4 or order[-1] - order[0] <= 0:
        return np.isin(rows, candidate)
    cumulative = np.cumsum(order)
    sizes = np.arange(1, n)
    low_mean = cumulative[:-1] / sizes
    high_mean = (cumulative[-1] - cumulative[:-1]) / (n - sizes)
    between = sizes * (n - sizes) * (high_mean - low_mean) ** 2
    cut = int(np.argmax(between))
    return score > (order[cut] + order[cut + 1]) / 2


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _cluster_evidence(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    space: np.ndarray,
    *,
    layer: str | None,
    batch_size: int,
    n_dims: int,
    reduce: str,
    seed: int,
    z_threshold: float,
    out_shift: np.ndarray,
    out_z: np.ndarray,
    out_silhouette: np.ndarray,
    out_share: np.ndarray,
    out_suspects: list[set[int]],
    out_evidence: list[list[str]],
    components: dict[str, np.ndarray],
) -> str:
    """Activation clustering and spectral signatures on the representation; flags classes whose most shifted
    cluster is an outlier among the classes. Fills the ``out_*`` arrays; returns the representation's name."""
    from garrison.poisoning.representations import extract_representation
    from garrison.poisoning.spectral import spectral_signatures

    rep = extract_representation(model, x, layer=layer, batch_size=batch_size)
    if len(rep.features) != len(y):
        raise InputError(f"the representation has {len(rep.features)} rows for {len(y)} labels", field="x")
    signature = spectral_signatures(rep.features, y)
    components["spectral"] = signature.scores
    splits = activation_clusters(rep.features, y, n_dims=n_dims, reduce=reduce, seed=seed)
    floor = max(0.25 * float(np.median(space.std(axis=0))), 1e-12)
    candidate: dict[int, np.ndarray] = {}
    other_side: dict[int, np.ndarray] = {}
    for i, c in enumerate(labels):
        split = splits[int(c)]
        out_silhouette[i] = split.silhouette
        out_share[i] = signature.top_share[int(c)]
        reference = np.flatnonzero(y != c)
        best = 0.0
        for part in (0, 1):
            rows = split.members[split.labels == part]
            if len(rows) < max(3, math.ceil(_MIN_CLUSTER_SHARE * len(split.members))):
                continue
            value = pattern_shift(space, rows, reference, floor=floor)
            if i not in candidate or value > best:
                best, candidate[i] = value, rows
                other_side[i] = split.members[split.labels != part]
        out_shift[i] = best
    if len(labels) >= MIN_CLASSES_FOR_MAD:
        out_z[:] = modified_z(out_shift, min_scale=0.15 * float(np.median(out_shift)))
        for i in range(len(labels)):
            if out_z[i] > z_threshold and i in candidate:
                out_evidence[i].append("cluster")
                # the split is made in the representation; its edge is redrawn in input space, where the
                # trigger is: every row of the class is scored on the few features the flagged cluster shifts
                # most against the other classes, and the scores are cut in two (Otsu)
                rows = splits[int(labels[i])].members
                side = _pattern_side(space, rows, candidate[i], np.flatnonzero(y != labels[i]), floor=floor)
                out_suspects[i].update(int(r) for r in rows[side])
    return rep.describe()


def _knn_evidence(
    space: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    members: list[np.ndarray],
    *,
    k: int,
    z_threshold: float,
    outlier_z: np.ndarray,
    scores: np.ndarray,
    out_suspects: list[set[int]],
    out_evidence: list[list[str]],
) -> tuple[np.ndarray, np.ndarray]:
    """Flag classes by how one-sided their k-NN boundaries are (:func:`asymmetry_z`), strongest first. After
    each flag the class's suspects leave the neighbour pool and the flow is recomputed. Returns, per class, the
    share of rows most of whose neighbours carry another label and the asymmetry z, both from the first pass."""
    n_cls = len(members)
    excluded = np.zeros(len(y), dtype=bool)
    for found in out_suspects:
        excluded[sorted(found)] = True
    first_share = np.zeros(n_cls)
    first_z = np.zeros(n_cls)
    done = np.zeros(n_cls, dtype=bool)
    for step in range(n_cls + 1):
        neighbours = neighbour_labels(space, y, k=k, exclude=excluded if excluded.any() else None)
        dis = np.mean(neighbours != y[:, None], axis=1)
        kept = ~excluded
        z = asymmetry_z(disagreement_flow(y[kept], neighbours[kept], labels))
        if step == 0:
            first_z = z.copy()
            first_share = np.array([float(np.mean(dis[rows] > 0.5)) for rows in members])
        open_z = np.where(done, -np.inf, z)
        i = int(np.argmax(open_z))
        if not open_z[i] > z_threshold:
            break
        done[i] = True
        rows = members[i]
        disputed = (dis > 0.5) | (outlier_z > z_threshold)
        seeds = rows[disputed[rows] & ~excluded[rows]]
        anchors = rows[(dis[rows] == 0) & ~disputed[rows] & ~excluded[rows]]
        found = {int(r) for r in seeds}
        if len(seeds) >= 3 and len(anchors) >= 3:
            prob = _refit_probability(space, seeds, anchors, rows)
            scores[rows] = np.maximum(scores[rows], prob)
            found.update(int(r) for r in rows[(prob > 0.5) & (dis[rows] > 0)])
        if found:
            out_evidence[i].append("knn")
            out_suspects[i].update(found)
            excluded[sorted(found)] = True
    return first_share, first_z


def scan_training_set(
    x: np.ndarray,
    y: np.ndarray,
    *,
    model: Any = None,
    layer: str | None = None,
    method: str = "auto",
    k: int = 10,
    z_threshold: float = Z_THRESHOLD,
    n_dims: int = 10,
    reduce: str = "pca",
    batch_size: int = 256,
    seed: int = 0,
) -> PoisonScan:
    """Scan a training set ``(x, y)`` for poisoned rows.

    ``method``: ``"spectral-clustering"`` (needs ``model``: a torch ``nn.Module`` or a
    :class:`~garrison.adapters.TorchClassifier`; ``layer`` picks the representation, default the penultimate
    layer), ``"knn"`` (any data, no model), or ``"auto"`` (the first when a model is given, else the second).
    Images keep their scale; 2-d tables are standardised per column for the k-NN search.
    """
    if method not in METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}", key="method")
    if not isinstance(k, int) or k < 1:
        raise ConfigError(f"`k` must be an integer >= 1, got {k!r}", key="k")
    if not z_threshold > 0:
        raise ConfigError(f"`z_threshold` must be > 0, got {z_threshold!r}", key="z_threshold")
    if reduce not in REDUCERS:
        raise ConfigError(f"`reduce` must be one of {', '.join(REDUCERS)}, got {reduce!r}", key="reduce")
    if method == "spectral-clustering" and model is None:
        raise ConfigError("`method='spectral-clustering'` needs a `model`", key="model")
    resolved = method if method != "auto" else ("spectral-clustering" if model is not None else "knn")
    min_class_rows = max(k + 1, 10)
    x, y, labels = _validate(x, y, k=k, min_class_rows=min_class_rows)

    x_flat = flatten_rows(x)
    space = x_flat if x.ndim > 2 else standardize(x_flat)
    disagreement = knn_disagreement(space, y, k=k)
    components: dict[str, np.ndarray] = {"knn": disagreement}
    if resolved == "knn":
        outlier_z = outlier_scores(space, y, seed=seed)
        components["outlier_z"] = outlier_z
    else:
        outlier_z = np.zeros(len(y))
    scores = combined_scores(disagreement, outlier_z, z_threshold=z_threshold)

    n_cls = len(labels)
    members = [np.flatnonzero(y == c) for c in labels]
    sizes = np.array([len(m) for m in members])
    suspect_sets: list[set[int]] = [set() for _ in labels]
    evidence: list[list[str]] = [[] for _ in labels]

    representation: str | None = None
    shift = np.full(n_cls, np.nan)
    cluster_z = np.full(n_cls, np.nan)
    silhouette = np.full(n_cls, np.nan)
    spectral_share = np.full(n_cls, np.nan)
    if resolved == "spectral-clustering":
        representation = _cluster_evidence(
            model, x, y, labels, space,
            layer=layer, batch_size=batch_size, n_dims=n_dims, reduce=reduce, seed=seed,
            z_threshold=z_threshold, out_shift=shift, out_z=cluster_z, out_silhouette=silhouette,
            out_share=spectral_share, out_suspects=suspect_sets, out_evidence=evidence,
            components=components,
        )  # fmt: skip
        for i in range(n_cls):
            if suspect_sets[i]:
                scores[sorted(suspect_sets[i])] = 1.0

    knn_share, knn_z = _knn_evidence(
        space, y, labels, members, k=k, z_threshold=z_threshold, outlier_z=outlier_z,
        scores=scores, out_suspects=suspect_sets, out_evidence=evidence,
    )  # fmt: skip

    summaries: list[ClassSummary] = []
    suspect_mask = np.zeros(len(y), dtype=bool)
    for i, c in enumerate(labels):
        flagged = bool(evidence[i]) and bool(suspect_sets[i])
        if flagged:
            suspect_mask[sorted(suspect_sets[i])] = True
        summaries.append(
            ClassSummary(
                label=int(c),
                n=int(sizes[i]),
                statistic=float(np.nanmax([knn_z[i], cluster_z[i]])),
                threshold=float(z_threshold),
                flagged=flagged,
                n_suspects=len(suspect_sets[i]) if flagged else 0,
                evidence=tuple(evidence[i]) if flagged else (),
                knn_disagreement=float(knn_share[i]),
                knn_z=float(knn_z[i]),
                pattern_shift=_opt(shift[i]),
                cluster_z=_opt(cluster_z[i]),
                silhouette=_opt(silhouette[i]),
                spectral_share=_opt(spectral_share[i]),
            )
        )
    params = {"k": k, "z_threshold": z_threshold, "n_dims": n_dims, "reduce": reduce, "layer": layer}
    return PoisonScan(
        method=resolved,
        representation=representation,
        scores=scores,
        suspects=np.flatnonzero(suspect_mask).astype(np.int64),
        classes=tuple(summaries),
        seed=seed,
        params=params,
        components=components,
    )
