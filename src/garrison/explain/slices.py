"""Weak slices: the groups of rows (a category, a range of a feature, a sensitive attribute's value) on which a
model does significantly worse than on the rest of the data.

``correct`` holds one value per row, higher is better: a boolean (the prediction was right, the prediction stayed
right under attack) or a float (a per-row score, e.g. the negative calibration error). ``columns`` holds the raw
feature values of the same rows. The slices are:

- every value of a categorical column — strings, booleans, pandas categories, and numbers that are all whole and
  take at most 10 distinct values, or any numbers with at most ``n_bins`` distinct values — and of the columns
  named in ``categorical``;
- ``n_bins`` quantile bins of every other numeric column (``[lo, hi)``, the last one closed; tied quantiles
  merge bins, so a column can get fewer, and when ties leave a single bin the minimum's rows are split off);
- every value of a sensitive attribute named in ``sensitive`` (a column of ``columns``, or an extra column given
  as a mapping when the attribute is not a model input);
- a ``missing`` slice for the NaN, None (and, in numeric columns, infinite) values of a column.

The slices of one column cover every row exactly once. A slice is tested only when it and its complement both
hold at least ``min_size`` rows; the others are counted in ``n_untested``.

Statistics, per slice against its complement (the rest of the data):

- boolean metric: the slice's proportion with a 95 % Wilson score interval, the difference to the complement
  with Newcombe's hybrid score interval, and Fisher's exact test (two-sided);
- float metric: the slice's mean with a 95 % Student t interval, the difference with a Welch interval, and
  Welch's unequal-variance t-test (two-sided).

The p-values of all tested slices are adjusted together with the Benjamini–Hochberg procedure (false discovery
rate ``alpha``). A slice is ``significant`` when its adjusted p-value is at most ``alpha`` and it does worse than
the rest; a slice that does significantly *better* is not a finding. The report lists significant slices first,
then by difference to the rest (worst first).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from garrison.core.errors import InputError
from garrison.core.metrics import wilson_interval
from garrison.explain.drift import benjamini_hochberg

__all__ = ["Slice", "SliceReport", "find_slices"]

_MAX_LEVELS = 10
MISSING = "missing"


@dataclass(frozen=True)
class Slice:
    """One slice: the ``feature`` and ``label`` that define it (``kind`` is ``"category"``, ``"bin"`` or
    ``"missing"``), its ``size``, the metric ``value`` with its 95 % interval, the complement's ``rest_value``,
    the ``difference`` (slice minus rest) with its 95 % interval, the raw and BH-adjusted p-values and whether it
    is ``significant``. ``rows`` are the slice's row indices (not serialised)."""

    feature: str
    label: str
    kind: str
    sensitive: bool
    size: int
    value: float
    ci_low: float
    ci_high: float
    rest_value: float
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    rows: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "label": self.label,
            "kind": self.kind,
            "sensitive": self.sensitive,
            "size": self.size,
            "value": round(self.value, 6),
            "ci": [round(self.ci_low, 6), round(self.ci_high, 6)],
            "rest_value": round(self.rest_value, 6),
            "difference": round(self.difference, 6),
            "difference_ci": [round(self.difference_ci_low, 6), round(self.difference_ci_high, 6)],
            "p_value": float(self.p_value),
            "p_adjusted": float(self.p_adjusted),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class SliceReport:
    """Every tested :class:`Slice`, significant ones first, then worst difference first; the overall metric with
    its 95 % interval, how it was computed (``interval``, ``test``) and how many slices were too small to test."""

    slices: tuple[Slice, ...]
    metric: str
    metric_kind: str
    interval: str
    test: str
    n_rows: int
    overall: float
    overall_ci_low: float
    overall_ci_high: float
    alpha: float
    min_size: int
    n_bins: int
    n_untested: int

    @property
    def significant(self) -> tuple[Slice, ...]:
        return tuple(s for s in self.slices if s.significant)

    def worst(self, k: int = 5) -> tuple[Slice, ...]:
        """The ``k`` first slices (significant ones first)."""
        return self.slices[:k]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "metric_kind": self.metric_kind,
            "interval": self.interval,
            "test": self.test,
            "multiple_testing": "benjamini-hochberg",
            "n_rows": self.n_rows,
            "overall": round(self.overall, 6),
            "overall_ci": [round(self.overall_ci_low, 6), round(self.overall_ci_high, 6)],
            "alpha": self.alpha,
            "min_size": self.min_size,
            "n_bins": self.n_bins,
            "n_tested": len(self.slices),
            "n_untested": self.n_untested,
            "n_significant": len(self.significant),
            "slices": [s.to_dict() for s in self.slices],
        }


@dataclass(frozen=True)
class _Spec:
    feature: str
    label: str
    kind: str
    sensitive: bool
    rows: np.ndarray


def find_slices(
    correct: Any,
    columns: Any,
    *,
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    sensitive: Sequence[str] | Mapping[str, Any] | None = None,
    n_bins: int = 4,
    min_size: int = 30,
    alpha: float = 0.05,
    metric: str = "accuracy",
) -> SliceReport:
    """Find the slices of ``columns`` on which ``correct`` (one value per row, higher is better) is significantly
    worse than on the rest (see the module docstring). ``columns`` is a pandas DataFrame, a mapping of name to
    values, or a 2-d array (names from ``feature_names``, else ``f0``, ``f1``…)."""
    if n_bins < 2:
        raise ValueError(f"`n_bins` must be >= 2, got {n_bins!r}")
    if min_size < 1:
        raise ValueError(f"`min_size` must be >= 1, got {min_size!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    values, kind = _metric_values(correct)
    n = len(values)
    table = _columns(columns, feature_names, n)
    forced = set(categorical or ())
    unknown = forced - set(table)
    if unknown:
        raise InputError(
            f"`categorical` names unknown columns: {', '.join(sorted(unknown))}", field="categorical"
        )
    marked: set[str] = set()
    if isinstance(sensitive, Mapping):
        for name, column in sensitive.items():
            if name in table:
                raise InputError(
                    f"sensitive attribute {name!r} is also a column of `columns`", field="sensitive"
                )
            table[name] = _column(column, name, n)
            marked.add(name)
    elif sensitive is not None:
        marked = set(sensitive)
        unknown = marked - set(table)
        if unknown:
            raise InputError(
                f"`sensitive` names unknown columns: {', '.join(sorted(unknown))}", field="sensitive"
            )

    specs: list[_Spec] = []
    for name, column in table.items():
        by_value = name in forced or name in marked
        specs.extend(_slices_of(name, column, by_value=by_value, sensitive=name in marked, n_bins=n_bins))

    tested = [s for s in specs if min_size <= len(s.rows) <= n - min_size]
    stats = [_compare(values, s.rows, kind) for s in tested]
    p_adjusted = benjamini_hochberg(np.array([st[-1] for st in stats], dtype=np.float64))
    found = []
    for spec, st, q in zip(tested, stats, p_adjusted, strict=True):
        value, lo, hi, rest, diff, dlo, dhi, p = st
        found.append(
            Slice(
                feature=spec.feature,
                label=spec.label,
                kind=spec.kind,
                sensitive=spec.sensitive,
                size=len(spec.rows),
                value=value,
                ci_low=lo,
                ci_high=hi,
                rest_value=rest,
                difference=diff,
                difference_ci_low=dlo,
                difference_ci_high=dhi,
                p_value=p,
                p_adjusted=float(q),
                significant=bool(q <= alpha and diff < 0),
                rows=spec.rows,
            )
        )
    found.sort(key=lambda s: (not s.significant, s.difference, s.p_adjusted, s.feature, s.label))
    overall, overall_lo, overall_hi = _summary(values, kind)
    return SliceReport(
        slices=tuple(found),
        metric=metric,
        metric_kind=kind,
        interval="wilson" if kind == "proportion" else "student-t",
        test="fisher-exact" if kind == "proportion" else "welch-t",
        n_rows=n,
        overall=overall,
        overall_ci_low=overall_lo,
        overall_ci_high=overall_hi,
        alpha=alpha,
        min_size=min_size,
        n_bins=n_bins,
        n_untested=len(specs) - len(tested),
    )


def _metric_values(correct: Any) -> tuple[np.ndarray, str]:
    raw = np.asarray(correct)
    if raw.ndim != 1 or len(raw) < 2:
        raise InputError(
            f"`correct` must be 1-d with at least 2 rows, got shape {raw.shape}", field="correct"
        )
    if raw.dtype == np.bool_:
        return raw.astype(np.float64), "proportion"
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("`correct` must hold booleans or numbers", field="correct") from exc
    if not np.all(np.isfinite(values)):
        raise InputError("`correct` holds NaN or infinite values", field="correct")
    if np.all((values == 0) | (values == 1)):
        return values, "proportion"
    return values, "mean"


def _columns(columns: Any, feature_names: Sequence[str] | None, n: int) -> dict[str, np.ndarray]:
    if hasattr(columns, "columns") and hasattr(
        columns, "iloc"
    ):  # a pandas DataFrame, without importing pandas
        if feature_names is not None:
            raise ValueError("`feature_names` is for arrays; a DataFrame carries its own column names")
        return {str(name): _column(columns[name], str(name), n) for name in columns.columns}
    if isinstance(columns, Mapping):
        return {str(name): _column(values, str(name), n) for name, values in columns.items()}
    array = np.asarray(columns)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise InputError(f"`columns` must be 2-d, got shape {array.shape}", field="columns")
    d = array.shape[1]
    names = tuple(feature_names) if feature_names is not None else tuple(f"f{i}" for i in range(d))
    if len(names) != d:
        raise ValueError(f"{len(names)} feature names for {d} columns")
    if len(set(names)) != d:
        raise ValueError("`feature_names` holds duplicates")
    return {name: _column(array[:, j], name, n) for j, name in enumerate(names)}


def _column(values: Any, name: str, n: int) -> np.ndarray:
    if hasattr(values, "to_numpy"):  # pandas: categories and nullable dtypes become plain objects
        dtype = str(getattr(values, "dtype", ""))
        if dtype == "category" or dtype.startswith(("string", "Int", "UInt", "Float", "boolean")):
            values = values.astype(object).to_numpy()
            values = np.array([None if _is_na(v) else v for v in values], dtype=object)
        else:
            values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise InputError(f"column {name!r} has shape {array.shape}, expected ({n},)", field=name)
    return array


def _is_na(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pandas NA
    except TypeError:
        return True


def _numeric(column: np.ndarray) -> np.ndarray | None:
    """The column as floats (NaN for missing), or None when it is not numeric (strings, booleans, objects)."""
    if column.dtype == np.bool_:
        return None
    if column.dtype.kind in "iuf":
        return column.astype(np.float64)
    if column.dtype.kind in "US":  # numbers written as text (a 2-d array that mixed strings and numbers)
        try:
            return column.astype(np.float64)
        except ValueError:
            return None
    if column.dtype.kind == "O" and not _all_numbers(column):
        return None
    try:
        return np.array([np.nan if _is_na(v) else float(v) for v in column], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _all_numbers(column: np.ndarray) -> bool:
    return all(
        _is_na(v) or (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
        for v in column
    )


def _slices_of(name: str, column: np.ndarray, *, by_value: bool, sensitive: bool, n_bins: int) -> list[_Spec]:
    numeric = _numeric(column)
    if numeric is None:
        missing = np.array([_is_na(v) for v in column], dtype=bool)
        labels = np.array([str(v) for v in column], dtype=object)
        return _by_label(name, labels, missing, sensitive)
    missing = ~np.isfinite(numeric)
    present = numeric[~missing]
    integral = bool(np.all(present == np.round(present)))
    distinct = np.unique(present)
    if by_value or len(distinct) <= n_bins or (integral and len(distinct) <= _MAX_LEVELS):
        labels = np.array([_number_label(v) for v in numeric], dtype=object)
        return _by_label(name, labels, missing, sensitive)
    specs = []
    edges = np.unique(np.quantile(present, np.linspace(0, 1, n_bins + 1)))
    if len(edges) == 2:  # ties swallowed every inner quantile: split off the minimum's rows
        edges = np.array([distinct[0], distinct[1], distinct[-1]])
    index = np.searchsorted(edges[1:-1], numeric, side="right")
    for b in range(len(edges) - 1):
        rows = np.flatnonzero((index == b) & ~missing)
        if len(rows) == 0:
            continue
        closing = "]" if b == len(edges) - 2 else ")"
        label = f"[{edges[b]:.6g}, {edges[b + 1]:.6g}{closing}"
        specs.append(_Spec(name, label, "bin", sensitive, rows))
    if missing.any():
        specs.append(_Spec(name, MISSING, "missing", sensitive, np.flatnonzero(missing)))
    return specs


def _number_label(value: float) -> str:
    if not math.isfinite(value):
        return MISSING
    return str(int(value)) if value == round(value) and abs(value) < 2**53 else f"{value:.6g}"


def _by_label(name: str, labels: np.ndarray, missing: np.ndarray, sensitive: bool) -> list[_Spec]:
    specs = []
    for label in sorted(set(labels[~missing].tolist())):
        specs.append(_Spec(name, label, "category", sensitive, np.flatnonzero((labels == label) & ~missing)))
    if missing.any():
        specs.append(_Spec(name, MISSING, "missing", sensitive, np.flatnonzero(missing)))
    return specs


def _summary(values: np.ndarray, kind: str) -> tuple[float, float, float]:
    if kind == "proportion":
        lo, hi = wilson_interval(int(values.sum()), len(values))
        return float(values.mean()), lo, hi
    return _mean_interval(values)


def _mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    from scipy.stats import t

    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.975, len(values) - 1)) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def _compare(values: np.ndarray, rows: np.ndarray, kind: str) -> tuple[float, ...]:
    inside = np.zeros(len(values), dtype=bool)
    inside[rows] = True
    a, b = values[inside], values[~inside]
    if kind == "proportion":
        return _compare_proportions(int(a.sum()), len(a), int(b.sum()), len(b))
    return _compare_means(a, b)


def _compare_proportions(s1: int, n1: int, s2: int, n2: int) -> tuple[float, ...]:
    from scipy.stats import fisher_exact

    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1)
    l2, u2 = wilson_interval(s2, n2)
    diff = p1 - p2
    # Newcombe (1998) hybrid score interval for a difference of two independent proportions.
    lo = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    p = float(fisher_exact([[s1, n1 - s1], [s2, n2 - s2]]).pvalue)
    return p1, l1, u1, p2, diff, lo, hi, min(1.0, p)


def _compare_means(a: np.ndarray, b: np.ndarray) -> tuple[float, ...]:
    from scipy.stats import t

    mean, lo, hi = _mean_interval(a)
    rest = float(b.mean())
    diff = mean - rest
    va = float(a.var(ddof=1)) / len(a) if len(a) > 1 else 0.0
    vb = float(b.var(ddof=1)) / len(b) if len(b) > 1 else 0.0
    se = math.sqrt(va + vb)
    if se == 0:
        return mean, lo, hi, rest, diff, diff, diff, 1.0 if diff == 0 else 0.0
    terms = (va**2 / (len(a) - 1) if len(a) > 1 else 0.0) + (vb**2 / (len(b) - 1) if len(b) > 1 else 0.0)
    df = (va + vb) ** 2 / terms if terms > 0 else float(len(a) + len(b) - 2)
    half = float(t.ppf(0.975, df)) * se
    p = float(2 * t.sf(abs(diff) / se, df))
    return mean, lo, hi, rest, diff, diff - half, diff + half, p
