"""Data integrity of a labelled training set: duplicates, train/test leakage, conflicting labels, class imbalance and
label issues.

- exact duplicates: rows with identical bytes (after a cast to float64, so ``1`` and ``1.0`` agree), grouped;
- near duplicates (groups of distinct rows; an exact-duplicate group is represented by its first row): rows whose
  root-mean-square difference per feature, in standardised units (each feature divided by its standard deviation
  over the training set, floored at a tenth of the median one), is at most ``near_tolerance`` (default 0.05: on
  average every feature within 5 % of a standard deviation) and close enough that chance pairs that close are
  rare (about one row in 10,000; see ``_near_radius``), which matters in a few dimensions;
- leakage: test rows that are exact or near duplicates of a training row (a model scored on them is scored on
  what it memorised);
- conflicting labels: exact-duplicate groups whose rows carry more than one label (at least one of them is wrong,
  or the features do not determine the label);
- imbalance: rows per class and the ratio of the largest class to the smallest;
- label issues: cleanlab's ``find_label_issues`` (confident learning, Northcutt et al. 2021) on out-of-fold
  probabilities — of the caller's own model when given (probabilities, or an unfitted scikit-learn estimator that
  is cloned per fold), else of a standardised logistic regression, a sensible default for tabular and small-image
  data. Label issues catch label flips; they do not catch backdoors, whose labels agree with the trigger
  (see ``scan_training_set``).

Duplicate search uses scikit-learn's radius neighbours (a KD / ball tree), so it stays near ``O(n log n)`` on
low-dimensional data; rows are hashed for the exact groups.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from garrison.core.errors import DataError

__all__ = [
    "IntegrityReport",
    "LabelIssues",
    "check_integrity",
    "find_label_issues",
    "out_of_fold_probabilities",
]

_CV_FOLDS = 5
_CHANCE_PAIRS = 2e-4  # twice the share of rows allowed a chance nearest neighbour inside the near radius


@dataclass(frozen=True)
class LabelIssues:
    """Rows whose given label is likely wrong, most likely first, with cleanlab's label quality (0 worst, 1 best),
    the given label and the class the out-of-fold model prefers (both as indices into the sorted classes)."""

    indices: np.ndarray
    quality: np.ndarray
    given: np.ndarray
    suggested: np.ndarray
    source: str

    def to_dict(self, classes: np.ndarray) -> dict[str, Any]:
        return {
            "source": self.source,
            "count": len(self.indices),
            "indices": [int(i) for i in self.indices],
            "quality": [round(float(q), 6) for q in self.quality],
            "given_labels": [_plain(classes[g]) for g in self.given],
            "suggested_labels": [_plain(classes[s]) for s in self.suggested],
        }


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check_integrity` found; index lists refer to the training rows (``test_index`` to the test rows)."""

    n_rows: int
    n_test_rows: int
    classes: np.ndarray
    class_counts: np.ndarray
    exact_duplicates: list[list[int]]
    near_duplicates: list[list[int]]
    conflicting_labels: list[list[int]]
    leakage_exact: list[tuple[int, int]]
    leakage_near: list[tuple[int, int]]
    label_issues: LabelIssues | None
    near_tolerance: float
    notes: list[str] = field(default_factory=list)

    @property
    def imbalance_ratio(self) -> float:
        """Rows of the largest class over rows of the smallest (1.0 when balanced)."""
        return float(self.class_counts.max() / max(self.class_counts.min(), 1))

    @property
    def duplicate_rows(self) -> int:
        """Rows that repeat an earlier row exactly (a group of k rows counts k - 1)."""
        return sum(len(group) - 1 for group in self.exact_duplicates)

    @property
    def leaked_test_rows(self) -> int:
        """Test rows that equal or nearly equal some training row."""
        return len({t for _, t in self.leakage_exact} | {t for _, t in self.leakage_near})

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_test_rows": self.n_test_rows,
            "class_counts": {
                str(_plain(c)): int(n) for c, n in zip(self.classes, self.class_counts, strict=True)
            },
            "imbalance_ratio": round(self.imbalance_ratio, 6),
            "duplicate_rows": self.duplicate_rows,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "near_tolerance": self.near_tolerance,
            "conflicting_labels": self.conflicting_labels,
            "leaked_test_rows": self.leaked_test_rows,
            "leakage_exact": [list(pair) for pair in self.leakage_exact],
            "leakage_near": [list(pair) for pair in self.leakage_near],
            "label_issues": None if self.label_issues is None else self.label_issues.to_dict(self.classes),
            "notes": list(self.notes),
        }


def check_integrity(
    x: np.ndarray,
    y: np.ndarray,
    *,
    x_test: np.ndarray | None = None,
    near_tolerance: float = 0.05,
    label_issues: bool = True,
    probabilities: np.ndarray | None = None,
    estimator: Any = None,
    probability_source: str = "given probabilities",
    seed: int = 0,
) -> IntegrityReport:
    """Duplicates, leakage into ``x_test``, conflicting labels, imbalance and (``label_issues``) cleanlab's label
    issues of the training set ``(x, y)``.

    ``probabilities`` are out-of-fold class probabilities of the caller's model (columns in sorted label order);
    ``estimator`` an unfitted scikit-learn classifier to compute them; neither means a logistic regression.
    ``probability_source`` says where given probabilities came from, for the report.
    """
    rows = _rows(x, "x")
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(rows):
        raise DataError(f"labels must be one per row: {len(rows)} rows, labels of shape {labels.shape}")
    if not 0 <= near_tolerance < 10:
        raise ValueError(f"near_tolerance must be in [0, 10), got {near_tolerance}")
    classes, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    notes: list[str] = []
    exact = _exact_groups(rows)
    conflicting = [group for group in exact if len(set(codes[group].tolist())) > 1]
    scale = _scale(rows)
    radius = _near_radius(rows / scale, exact, near_tolerance)
    near = _near_groups(rows / scale, radius, exact) if radius > 0 else []
    leak_exact: list[tuple[int, int]] = []
    leak_near: list[tuple[int, int]] = []
    n_test = 0
    if x_test is not None:
        test_rows = _rows(x_test, "x_test")
        if test_rows.shape[1] != rows.shape[1]:
            raise DataError(f"test rows have {test_rows.shape[1]} features, training rows {rows.shape[1]}")
        n_test = len(test_rows)
        leak_exact, leak_near = _leakage(rows, test_rows, scale, radius)
    issues = None
    if label_issues:
        if len(classes) < 2:
            notes.append("label issues skipped: a single class")
        elif counts.min() < _CV_FOLDS and probabilities is None:
            notes.append(
                f"label issues skipped: a class has fewer than {_CV_FOLDS} rows for out-of-fold probabilities"
            )
        else:
            issues = find_label_issues(rows, codes, probabilities=probabilities, estimator=estimator,
                                       probability_source=probability_source, seed=seed)  # fmt: skip
    return IntegrityReport(
        n_rows=len(rows),
        n_test_rows=n_test,
        classes=classes,
        class_counts=counts,
        exact_duplicates=exact,
        near_duplicates=near,
        conflicting_labels=conflicting,
        leakage_exact=leak_exact,
        leakage_near=leak_near,
        label_issues=issues,
        near_tolerance=near_tolerance,
        notes=notes,
    )


def out_of_fold_probabilities(
    x: np.ndarray, codes: np.ndarray, *, estimator: Any = None, folds: int = _CV_FOLDS, seed: int = 0
) -> np.ndarray:
    """Class probabilities of every row from a model that never saw it: stratified ``folds``-fold cross-validation
    of ``estimator`` (cloned; default a standardised logistic regression)."""
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = (
        clone(estimator)
        if estimator is not None
        else make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return np.asarray(
        cross_val_predict(model, x, codes, cv=splitter, method="predict_proba"), dtype=np.float64
    )


def find_label_issues(
    x: np.ndarray,
    codes: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    estimator: Any = None,
    probability_source: str = "given probabilities",
    seed: int = 0,
) -> LabelIssues:
    """cleanlab's label issues of integer labels ``codes`` (0..k-1), ranked worst first."""
    from cleanlab import filter as cleanlab_filter  # a core dependency, imported late for start-up time
    from cleanlab import rank as cleanlab_rank

    n_classes = int(codes.max()) + 1
    if probabilities is None:
        source = "out-of-fold " + ("estimator" if estimator is not None else "logistic regression")
        probs = out_of_fold_probabilities(x, codes, estimator=estimator, seed=seed)
    else:
        source = probability_source
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.shape != (len(codes), n_classes):
            raise DataError(f"probabilities must have shape ({len(codes)}, {n_classes}), got {probs.shape}")
    ranked = np.asarray(
        cleanlab_filter.find_label_issues(codes, probs, return_indices_ranked_by="self_confidence"),
        dtype=np.int64,
    )
    quality = np.asarray(cleanlab_rank.get_label_quality_scores(codes, probs), dtype=np.float64)
    return LabelIssues(
        indices=ranked,
        quality=quality[ranked],
        given=codes[ranked],
        suggested=probs[ranked].argmax(axis=1),
        source=source,
    )


def _rows(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < 1 or len(arr) == 0:
        raise DataError(f"`{name}` has no rows")
    try:
        rows = arr.reshape(len(arr), -1).astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(f"`{name}` must be numeric (encode categorical features first)") from None
    if not np.isfinite(rows).all():
        raise DataError(f"`{name}` holds NaN or infinite values; impute them before the integrity check")
    return np.ascontiguousarray(rows)


def _scale(rows: np.ndarray) -> np.ndarray:
    """Per-feature standard deviations, floored at a tenth of their median so that near-constant features (an
    image's border pixels) do not turn a rounding difference into a large distance."""
    std = rows.std(axis=0)
    positive = std[std > 0]
    floor = 0.1 * float(np.median(positive)) if len(positive) else 1.0
    return np.maximum(std, floor)


def _row_digest(row: np.ndarray) -> bytes:
    return hashlib.blake2b((row + 0.0).tobytes(), digest_size=16).digest()  # + 0.0 folds -0.0 into 0.0


def _exact_groups(rows: np.ndarray) -> list[list[int]]:
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[_row_digest(row)].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def _near_radius(scaled: np.ndarray, exact: list[list[int]], tolerance: float) -> float:
    """``tolerance × sqrt(features)``, capped at ``(2e-4)^(1/d) ×`` the median distance between distinct rows and
    their nearest neighbour. Where the density is locally even, a row's nearest neighbour lies within ``r ×`` the
    median distance with probability about ``r^d / 2``, so the cap keeps chance pairs near one in 10,000 rows: in a
    few dimensions, rows a twentieth of a standard deviation apart are common and say nothing about copying."""
    from sklearn.neighbors import NearestNeighbors

    repeats = {i for group in exact for i in group[1:]}
    distinct = scaled[[i for i in range(len(scaled)) if i not in repeats]]
    if tolerance <= 0 or len(distinct) < 3:
        return 0.0
    dist, _ = NearestNeighbors(n_neighbors=2).fit(distinct).kneighbors(distinct)
    chance_cap = _CHANCE_PAIRS ** (1 / scaled.shape[1]) * float(np.median(dist[:, 1]))
    return float(min(tolerance * np.sqrt(scaled.shape[1]), chance_cap))


def _near_groups(scaled: np.ndarray, radius: float, exact: list[list[int]]) -> list[list[int]]:
    """Connected groups of distinct rows within ``radius`` of each other; an exact-duplicate group takes part
    through its first row only (so a thousand copies of one row cost one query, not a million pairs)."""
    from sklearn.neighbors import NearestNeighbors

    repeats = {i for group in exact for i in group[1:]}
    keep = np.array([i for i in range(len(scaled)) if i not in repeats], dtype=np.int64)
    index = NearestNeighbors(radius=radius).fit(scaled[keep])
    neighbours = index.radius_neighbors(scaled[keep], return_distance=False)
    parent = list(range(len(keep)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    linked: set[int] = set()
    for i, found in enumerate(neighbours):
        for j in found:
            if j > i:
                parent[root(int(j))] = root(i)
                linked.update((i, int(j)))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in sorted(linked):
        groups[root(i)].append(int(keep[i]))
    return sorted(groups.values(), key=lambda g: g[0])


def _leakage(
    rows: np.ndarray, test_rows: np.ndarray, scale: np.ndarray, radius: float
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    from sklearn.neighbors import NearestNeighbors

    digests = {}
    for i, row in enumerate(rows):
        digests.setdefault(_row_digest(row), i)
    exact = []
    for t, row in enumerate(test_rows):
        hit = digests.get(_row_digest(row))
        if hit is not None:
            exact.append((hit, t))
    near: list[tuple[int, int]] = []
    if radius > 0:
        index = NearestNeighbors(n_neighbors=1).fit(rows / scale)
        dist, idx = index.kneighbors(test_rows / scale)
        exact_tests = {t for _, t in exact}
        near = [
            (int(idx[t, 0]), t)
            for t in range(len(test_rows))
            if dist[t, 0] <= radius and t not in exact_tests
        ]
    return exact, near


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
