"""Data drift: does the traffic a model sees still look like the data it was validated on?

Per column, against a :class:`~garrison.monitor.reference.DriftReference` fitted once:

- numeric columns: the two-sample Kolmogorov–Smirnov test. The reference is stored sorted, so a check sorts only
  the current window and binary-searches it into the reference (``O(m log n)`` instead of sorting and searching
  both samples). The statistic and p-value are those of ``scipy.stats.ks_2samp(ref, cur)`` (``method='auto'``:
  exact for samples of at most 10,000, Smirnov's asymptotic distribution above). The effect size is the
  Wasserstein-1 distance divided by the reference's standard deviation (how far, in reference standard
  deviations, the mass has to move); the population stability index (PSI) on reference-quantile bins is reported
  beside it.
- categorical columns: Pearson's chi-squared test of the category counts (categories never seen in the reference
  share one "other" bin), with the PSI over the same bins as the effect size.

The p-values are adjusted across columns with Benjamini–Hochberg. A column is *drifted* only when its adjusted
p-value is at most ``alpha`` **and** its effect size reaches the threshold (``min_wasserstein`` = 0.1 for numeric
columns, ``min_psi`` = 0.2 for categorical ones). On a window of a million rows every p-value test flags shifts
far too small to matter (a 0.02-standard-deviation shift gives p < 1e-50); the effect size is what an alert should
be about, and the p-value only guards against small windows whose effect sizes are noise.

Multivariate: the linear-time maximum mean discrepancy of Gretton et al. (2012, section 6) with a Gaussian kernel
whose bandwidth is the median pairwise distance in the standardised reference sample, on a seeded subsample, with
its normal-approximation p-value. It sees changes in the joint distribution (a correlation that flips) that no
per-column test can.

:class:`DriftMonitor` keeps the last ``window`` rows of a service's traffic in a ring buffer (``update`` per request
is a copy into it) and runs the tests on demand (``check``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.core.errors import InputError
from garrison.explain import benjamini_hochberg
from garrison.monitor.reference import (
    DriftReference,
    as_columns,
    category_strings,
    numeric_column,
)

__all__ = [
    "DRIFT_SCHEMA_VERSION",
    "MIN_PSI",
    "MIN_WASSERSTEIN",
    "ColumnDrift",
    "DriftMonitor",
    "DriftReport",
    "MMDResult",
    "detect_drift",
    "ks_2samp_sorted",
    "ks_columns",
    "linear_mmd",
    "prediction_drift",
    "psi",
    "wasserstein_sorted",
]

DRIFT_SCHEMA_VERSION = 1
MIN_WASSERSTEIN = 0.1
"""Default effect threshold of numeric columns: W1 / reference std (0.1 = a tenth of a standard deviation)."""
MIN_PSI = 0.2
"""Default effect threshold of categorical columns: the usual "significant shift" level of the PSI."""
PSI_EPS = 1e-4
"""Share given to an empty bin in the PSI (so that the logarithm is finite)."""
_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp(method='auto') is exact when both samples are at most this large


# ---------------------------------------------------------------------- results
def _num(value: float | None, digits: int | None = None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits) if digits is not None else float(value)


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test against the reference. ``effect`` is ``wasserstein_norm`` (numeric) or ``psi``
    (categorical); ``drifted`` means ``p_adjusted <= alpha`` and ``effect >= threshold``. NaN p-values mean the
    current window had no value in this column."""

    name: str
    kind: str
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    effect_name: str
    effect: float
    threshold: float
    psi: float
    wasserstein: float | None
    drifted: bool
    n_reference: int
    n_current: int
    n_missing: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "effect": _num(self.effect, 6),
            "effect_name": self.effect_name,
            "kind": self.kind,
            "n_current": self.n_current,
            "n_missing": self.n_missing,
            "n_reference": self.n_reference,
            "name": self.name,
            "p_adjusted": _num(self.p_adjusted),
            "p_value": _num(self.p_value),
            "psi": _num(self.psi, 6),
            "statistic": _num(self.statistic, 9),
            "test": self.test,
            "threshold": self.threshold,
            "wasserstein": _num(self.wasserstein, 9),
        }


@dataclass(frozen=True)
class MMDResult:
    """Linear-time MMD² estimate, its z-score and one-sided normal p-value, on ``n_pairs`` pairs of rows."""

    statistic: float
    z: float
    p_value: float
    bandwidth: float
    n_pairs: int
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "bandwidth": _num(self.bandwidth, 9),
            "drifted": self.drifted,
            "n_pairs": self.n_pairs,
            "p_value": _num(self.p_value),
            "statistic": _num(self.statistic, 9),
            "test": "linear_mmd",
            "z": _num(self.z, 6),
        }


@dataclass(frozen=True)
class DriftReport:
    """Every column's test, the multivariate test (``None`` when there are no numeric columns or it was not
    asked for), the thresholds used and the sample sizes."""

    columns: tuple[ColumnDrift, ...]
    multivariate: MMDResult | None
    alpha: float
    min_wasserstein: float
    min_psi: float
    n_reference: int
    n_current: int

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.drifted)

    @property
    def drifted(self) -> bool:
        """Whether any column drifted (the multivariate test is reported, not gated on)."""
        return any(c.drifted for c in self.columns)

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "columns": [c.to_dict() for c in self.columns],
            "drifted": self.drifted,
            "drifted_columns": list(self.drifted_columns),
            "min_psi": self.min_psi,
            "min_wasserstein": self.min_wasserstein,
            "multivariate": self.multivariate.to_dict() if self.multivariate is not None else None,
            "n_current": self.n_current,
            "n_reference": self.n_reference,
            "schema_version": DRIFT_SCHEMA_VERSION,
        }


# ---------------------------------------------------------------------- primitives
def ks_2samp_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """The two-sample KS statistic ``sup |F_ref - F_cur|`` of two sorted samples, in ``O(m log n)``.

    Between two consecutive current values ``F_cur`` is constant, so ``F_ref - F_cur`` peaks just below a current
    value and ``F_cur - F_ref`` at one: binary searches of the current sample into the reference suffice (ties
    included). The floating-point operations are those of ``scipy.stats.ks_2samp``, so the value is equal.
    """
    return _ks_and_ranks(ref_sorted, cur_sorted)[0]


def _ks_and_ranks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, np.ndarray]:
    """The KS statistic and, per current value, the number of reference values ``<=`` it."""
    n, m = len(ref), len(cur)
    if n == 0 or m == 0:
        raise InputError("the KS test needs two non-empty samples")
    below = np.searchsorted(ref, cur, side="left")
    # ``side="right"`` differs only where a current value equals a reference value: search those again
    at = np.minimum(below, n - 1)
    tied = ref[at] == cur
    above = below
    if tied.any():
        above = below.copy()
        above[tied] = np.searchsorted(ref, cur[tied], side="right")
    steps = np.arange(m + 1, dtype=np.float64)
    steps /= m  # steps[i] = i / m, as scipy computes the current ECDF
    diff = below / n
    diff -= steps[:-1]
    d_plus = float(diff.max())  # F_ref - F_cur just below each current value
    np.divide(above, n, out=diff)
    np.subtract(steps[1:], diff, out=diff)
    d_minus = float(diff.max())  # F_cur - F_ref at each current value
    return max(d_plus, d_minus, 0.0), above


def _ks_pvalues(
    d: np.ndarray, n: np.ndarray, m: np.ndarray, *, exact: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values (and statistics) as ``scipy.stats.ks_2samp(method='auto')`` computes them, or with
    ``exact=False`` always from the asymptotic distribution (``method='asymp'``: milliseconds instead of seconds for
    a window of a thousand rows, and within a few per cent of the exact value at those sizes)."""
    from scipy.stats import distributions

    d = np.asarray(d, dtype=np.float64).copy()
    p = np.full(len(d), np.nan)
    asymp = np.ones(len(d), dtype=bool)
    for i in range(len(d)):
        n1, n2 = int(n[i]), int(m[i])
        if exact and max(n1, n2) <= _EXACT_MAX_N:
            success, d[i], prob = _exact(n1, n2, float(d[i]))
            if success:
                p[i] = prob
                asymp[i] = False
    if asymp.any():
        big = np.maximum(n, m).astype(np.float64)[asymp]
        small = np.minimum(n, m).astype(np.float64)[asymp]
        en = big * small / (big + small)
        p[asymp] = distributions.kstwo.sf(d[asymp], np.round(en))
    return d, np.clip(p, 0.0, 1.0)


def _exact(n1: int, n2: int, d: float) -> tuple[bool, float, float]:
    try:  # scipy's own exact computation, so that the p-value is the one ks_2samp gives
        from scipy.stats._stats_py import _attempt_exact_2kssamp
    except ImportError:  # pragma: no cover - a scipy that moved it: the asymptotic value
        return False, d, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        success, d_exact, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
    return bool(success), float(d_exact), float(prob)


def wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """Wasserstein-1 distance ``∫ |Q_ref(u) - Q_cur(u)| du`` of two sorted samples, in ``O(n + m log n)``."""
    return _wasserstein(ref_sorted, cur_sorted, None)


def _wasserstein(ref: np.ndarray, cur: np.ndarray, ranks: np.ndarray | None) -> float:
    """``ranks[j]`` (optional, from the KS pass) is the number of reference values ``<= cur[j]``.

    On the level interval ``(j/m, (j+1)/m]`` the current quantile function is ``cur[j]`` and the reference's
    crosses it at level ``ranks[j] / n``, so each interval's integral follows from the integral ``G`` of the
    reference quantile function, which prefix sums of the (centred) reference give exactly at rational levels.
    """
    n, m = len(ref), len(cur)
    if n == m:
        return float(np.mean(np.abs(ref - cur)))
    centre = float(ref[n // 2])  # W1 is shift-invariant; centring keeps the prefix sums small
    a = ref - centre
    c = cur - centre
    prefix = np.zeros(n + 1)
    np.cumsum(a, out=prefix[1:])
    r = np.searchsorted(ref, cur, side="right") if ranks is None else ranks
    jn = np.arange(m + 1, dtype=np.int64) * n  # level j/m is jn[j] / (n m)
    k = jn // m
    g = (prefix[k] + (jn - k * m) / m * a[np.minimum(k, n - 1)]) / n  # g[j] = G(j/m)
    rm = r.astype(np.int64) * m
    g_cross = np.where(rm <= jn[:-1], g[:-1], np.where(rm >= jn[1:], g[1:], prefix[r] / n))
    lo = np.arange(m, dtype=np.float64) / m
    s = np.clip(r / n, lo, lo + 1.0 / m)
    total = np.dot(c, 2.0 * s - 2.0 * lo - 1.0 / m) + g[:-1].sum() + g[1:].sum() - 2.0 * g_cross.sum()
    return float(max(total, 0.0))


def psi(ref_share: np.ndarray, cur_share: np.ndarray, *, eps: float = PSI_EPS) -> float:
    """Population stability index ``Σ (c - r) ln(c / r)`` of two vectors of bin shares; empty bins count ``eps``."""
    r = np.maximum(np.asarray(ref_share, dtype=np.float64), eps)
    c = np.maximum(np.asarray(cur_share, dtype=np.float64), eps)
    return float(np.sum((c - r) * np.log(c / r)))


def linear_mmd(
    x: np.ndarray, y: np.ndarray, *, bandwidth: float, alpha: float = 0.05, seed: int = 0
) -> MMDResult:
    """Linear-time MMD² between samples ``x`` and ``y`` (rows, same columns) with a Gaussian kernel of width
    ``bandwidth``: the mean over disjoint pairs of ``h = k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)``, its
    z-score ``mean / (sd / sqrt(pairs))`` and the one-sided normal p-value (Gretton et al. 2012, §6)."""
    from scipy.stats import norm

    if not bandwidth > 0:
        raise ValueError(f"`bandwidth` must be > 0, got {bandwidth!r}")
    pairs = min(len(x), len(y)) // 2
    if pairs < 2:
        raise InputError(f"the linear MMD needs at least 4 rows per sample, got {min(len(x), len(y))}")
    rng = np.random.default_rng(seed)
    xs = x[rng.permutation(len(x))[: 2 * pairs]]
    ys = y[rng.permutation(len(y))[: 2 * pairs]]
    gamma = 1.0 / (2.0 * bandwidth**2)

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * np.sum((a - b) ** 2, axis=1))

    x1, x2, y1, y2 = xs[0::2], xs[1::2], ys[0::2], ys[1::2]
    h = k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
    stat = float(h.mean())
    sd = float(h.std(ddof=1))
    z = stat / (sd / math.sqrt(pairs)) if sd > 0 else (math.inf if stat > 0 else 0.0)
    p = float(norm.sf(z))
    return MMDResult(
        statistic=stat, z=z, p_value=p, bandwidth=float(bandwidth), n_pairs=pairs, drifted=p <= alpha
    )


# ---------------------------------------------------------------------- the comparison
def _current_columns(reference: DriftReference, current: Any) -> list[np.ndarray]:
    """The current window's columns in the reference's order (extra named columns are ignored)."""
    if hasattr(current, "columns") or isinstance(current, Mapping):
        names, cols = as_columns(current)
        by_name = dict(zip(names, cols, strict=True))
        missing = [n for n in reference.feature_names if n not in by_name]
        if missing:
            raise InputError("column of the reference missing from the current data", field=missing[0])
        return [by_name[n] for n in reference.feature_names]
    arr = np.asarray(current)
    if arr.ndim != 2 or arr.shape[1] != len(reference.feature_names):
        raise InputError(f"expected an array of shape (n, {len(reference.feature_names)}), got {arr.shape}")
    return [arr[:, j] for j in range(arr.shape[1])]


def ks_columns(reference: DriftReference, current: Any) -> tuple[np.ndarray, np.ndarray]:
    """KS statistics and p-values of the numeric columns only (in the reference's numeric order): the inner loop
    of :func:`detect_drift`, exposed for benchmarks and for callers that want only this test."""
    cols = _current_columns(reference, current)
    numeric = [c for c, k in zip(cols, reference.kinds, strict=True) if k == "numeric"]
    names = reference.numeric_names
    d = np.empty(len(numeric))
    m = np.empty(len(numeric), dtype=np.int64)
    for i, col in enumerate(numeric):
        cur = _sorted_valid(col, names[i])
        m[i] = len(cur)
        d[i] = ks_2samp_sorted(reference.sorted_values(i), cur) if len(cur) else np.nan
    return _pvalues_where_valid(d, reference.num_counts, m)


def _sorted_valid(col: np.ndarray, name: str) -> np.ndarray:
    """The column's non-missing values, sorted (NaN sorts last and is cut off; ±inf, at the ends, is refused)."""
    try:
        values = np.sort(np.asarray(col, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError("non-numeric values in a numeric column", field=name) from None
    if len(values) and np.isnan(values[-1]):
        values = values[: int(np.searchsorted(values, np.nan, side="left"))]
    if len(values) and (np.isinf(values[0]) or np.isinf(values[-1])):
        raise InputError("infinite values", field=name)
    return values


def _pvalues_where_valid(d: np.ndarray, n: np.ndarray, m: np.ndarray, *, exact: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    stat, p = np.full(len(d), np.nan), np.full(len(d), np.nan)
    ok = m > 0
    if ok.any():
        stat[ok], p[ok] = _ks_pvalues(d[ok], n[ok], m[ok], exact=exact)
    return stat, p


def detect_drift(
    reference: DriftReference,
    current: Any,
    *,
    alpha: float = 0.05,
    min_wasserstein: float = MIN_WASSERSTEIN,
    min_psi: float = MIN_PSI,
    multivariate: bool = True,
    exact: bool = True,
    seed: int = 0,
) -> DriftReport:
    """Test every column of ``current`` (a 2-d array in the reference's column order, a DataFrame or a mapping of
    name to column) against ``reference``; see the module docstring for the tests and the drift rule. ``exact``
    False takes KS p-values from the asymptotic distribution at every size (what the service's window uses)."""
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1), got {alpha!r}")
    if min_wasserstein < 0:
        raise ValueError(f"`min_wasserstein` must be >= 0, got {min_wasserstein!r}")
    if min_psi < 0:
        raise ValueError(f"`min_psi` must be >= 0, got {min_psi!r}")
    cols = _current_columns(reference, current)
    n_current = len(cols[0]) if cols else 0
    if n_current < 1:
        raise InputError("the current data has no rows")

    rows: list[dict[str, Any]] = []
    numeric_cols: list[np.ndarray] = []
    i_num = i_cat = 0
    for name, kind, col in zip(reference.feature_names, reference.kinds, cols, strict=True):
        if kind == "numeric":
            rows.append(_numeric(reference, i_num, name, col))
            numeric_cols.append(col)
            i_num += 1
        else:
            rows.append(_categorical(reference, i_cat, name, col))
            i_cat += 1

    num_idx = [j for j, r in enumerate(rows) if r["test"] == "ks"]
    if num_idx:
        d = np.array([rows[j]["statistic"] for j in num_idx])
        n = np.array([rows[j]["n_reference"] for j in num_idx])
        m = np.array([rows[j]["n_current"] for j in num_idx])
        stat, p = _pvalues_where_valid(d, n, m, exact=exact)
        for j, s, q in zip(num_idx, stat, p, strict=True):
            rows[j]["statistic"], rows[j]["p_value"] = float(s), float(q)
    p_all = np.array([r["p_value"] for r in rows])
    adjusted = np.full(len(rows), np.nan)
    finite = np.isfinite(p_all)
    adjusted[finite] = benjamini_hochberg(p_all[finite])
    columns = []
    for r, q in zip(rows, adjusted, strict=True):
        threshold = min_wasserstein if r["kind"] == "numeric" else min_psi
        drifted = bool(np.isfinite(q) and q <= alpha and r["effect"] >= threshold)
        columns.append(ColumnDrift(**r, p_adjusted=float(q), threshold=threshold, drifted=drifted))

    mmd = None
    if multivariate and reference.mmd_bandwidth is not None and numeric_cols:
        mmd = _multivariate(reference, numeric_cols, alpha, seed)
    return DriftReport(
        columns=tuple(columns),
        multivariate=mmd,
        alpha=alpha,
        min_wasserstein=min_wasserstein,
        min_psi=min_psi,
        n_reference=reference.n_rows,
        n_current=n_current,
    )


def _numeric(reference: DriftReference, i: int, name: str, col: np.ndarray) -> dict[str, Any]:
    ref = reference.sorted_values(i)
    cur = _sorted_valid(col, name)
    m = len(cur)
    base = {
        "name": name,
        "kind": "numeric",
        "test": "ks",
        "effect_name": "wasserstein_norm",
        "n_reference": int(reference.num_counts[i]),
        "n_current": m,
        "n_missing": len(col) - m,
    }
    if m == 0:
        return base | {"statistic": math.nan, "p_value": math.nan, "effect": math.nan, "psi": math.nan,
                       "wasserstein": None}  # fmt: skip
    statistic, ranks = _ks_and_ranks(ref, cur)
    w1 = _wasserstein(ref, cur, ranks)
    std = float(reference.num_std[i])
    counts = np.diff(np.searchsorted(cur, reference.psi_edges[i], side="right"), prepend=0, append=m)
    return base | {
        "statistic": statistic,
        "p_value": math.nan,  # filled in, vectorised, by the caller
        "effect": w1 / std if std > 0 else w1,
        "psi": psi(reference.psi_ref[i], counts / m),
        "wasserstein": w1,
    }


def _categorical(reference: DriftReference, i: int, name: str, col: np.ndarray) -> dict[str, Any]:
    from scipy.stats import chi2

    cats, ref_counts = reference.categories(i)
    values = category_strings(col)
    pos = np.searchsorted(cats, values)
    pos_c = np.minimum(pos, len(cats) - 1)
    known = (pos < len(cats)) & (cats[pos_c] == values)
    cur_counts = np.bincount(pos_c[known], minlength=len(cats))
    other = len(values) - int(known.sum())
    table = np.stack([np.append(ref_counts, 0), np.append(cur_counts, other)]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    n_ref, n_cur = table.sum(axis=1)
    if table.shape[1] < 2:
        statistic, p = 0.0, 1.0
    else:
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        statistic = float(np.sum((table - expected) ** 2 / expected))
        p = float(chi2.sf(statistic, table.shape[1] - 1))
    shares_ref = np.append(ref_counts, 0) / n_ref
    shares_cur = np.append(cur_counts, other) / n_cur
    value = psi(shares_ref, shares_cur)
    return {
        "name": name,
        "kind": "categorical",
        "test": "chi2",
        "effect_name": "psi",
        "n_reference": int(n_ref),
        "n_current": int(n_cur),
        "n_missing": 0,
        "statistic": statistic,
        "p_value": p,
        "effect": value,
        "psi": value,
        "wasserstein": None,
    }


def _multivariate(
    reference: DriftReference, numeric_cols: list[np.ndarray], alpha: float, seed: int
) -> MMDResult | None:
    n = len(numeric_cols[0])
    size = len(reference.mmd_sample)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, 2 * size), replace=False)) if n > 2 * size else np.arange(n)
    block = np.stack([numeric_column(c[rows], "") for c in numeric_cols], axis=1)
    block = block[~np.isnan(block).any(axis=1)]
    if len(block) < 4:
        return None
    block = (block - reference.num_mean) / np.where(reference.num_std > 0, reference.num_std, 1.0)
    assert reference.mmd_bandwidth is not None
    return linear_mmd(reference.mmd_sample, block, bandwidth=reference.mmd_bandwidth, alpha=alpha, seed=seed)


def prediction_drift(
    probs_ref: np.ndarray,
    probs_cur: np.ndarray,
    *,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.05,
    min_wasserstein: float = MIN_WASSERSTEIN,
    exact: bool = True,
    seed: int = 0,
) -> DriftReport:
    """Prediction drift: the same tests on a model's predicted-probability columns ``(n, n_classes)`` (named
    ``p_<class>``), reference fitted on ``probs_ref``. A change in what the model predicts often shows before
    any single input column crosses its threshold."""
    ref = np.asarray(probs_ref, dtype=np.float64)
    cur = np.asarray(probs_cur, dtype=np.float64)
    if ref.ndim != 2 or cur.ndim != 2 or ref.shape[1] != cur.shape[1]:
        raise InputError(f"probabilities of shape (n, classes) expected, got {ref.shape} and {cur.shape}")
    names = class_names if class_names is not None else [str(c) for c in range(ref.shape[1])]
    reference = DriftReference.fit(ref, feature_names=[f"p_{c}" for c in names], seed=seed)
    return detect_drift(reference, cur, alpha=alpha, min_wasserstein=min_wasserstein, exact=exact, seed=seed)


# ---------------------------------------------------------------------- the service's sliding window
class DriftMonitor:
    """The last ``window`` rows of traffic in a ring buffer, tested against ``reference`` on :meth:`check`.

    ``update`` takes a row ``(d,)``, rows ``(k, d)`` in the reference's column order, a DataFrame or a mapping
    of name to column; it copies them in (numeric columns as float64, categorical ones by their string form).
    """

    def __init__(
        self,
        reference: DriftReference,
        *,
        window: int = 1000,
        alpha: float = 0.05,
        min_wasserstein: float = MIN_WASSERSTEIN,
        min_psi: float = MIN_PSI,
        multivariate: bool = True,
        exact: bool = True,
        seed: int = 0,
    ) -> None:
        if window < 2:
            raise ValueError(f"`window` must be >= 2, got {window!r}")
        self.reference = reference
        self.window = window
        self.alpha = alpha
        self.min_wasserstein = min_wasserstein
        self.min_psi = min_psi
        self.multivariate = multivariate
        self.exact = exact
        self.seed = seed
        self._num_idx = [j for j, k in enumerate(reference.kinds) if k == "numeric"]
        self._cat_idx = [j for j, k in enumerate(reference.kinds) if k == "categorical"]
        self._num = np.empty((window, len(self._num_idx)), dtype=np.float64)
        self._cat = np.empty((window, len(self._cat_idx)), dtype=object)
        self._pos = 0
        self._filled = 0
        self.n_seen = 0

    def __len__(self) -> int:
        """Rows in the window now."""
        return self._filled

    def reset(self) -> None:
        self._pos = self._filled = 0

    def update(self, rows: Any) -> None:
        """Append ``rows`` to the window (the oldest rows fall out)."""
        num, cat = self._rows(rows)
        k = len(num)
        if k == 0:
            return
        self.n_seen += k
        if k >= self.window:
            num, cat, k = num[-self.window :], cat[-self.window :], self.window
        first = min(k, self.window - self._pos)
        self._num[self._pos : self._pos + first] = num[:first]
        self._cat[self._pos : self._pos + first] = cat[:first]
        rest = k - first
        if rest:
            self._num[:rest] = num[first:]
            self._cat[:rest] = cat[first:]
        self._pos = (self._pos + k) % self.window
        self._filled = min(self.window, self._filled + k)

    def rows(self) -> np.ndarray:
        """The window's rows, oldest first, in the reference's column order (all-numeric references only)."""
        if self._cat_idx:
            raise InputError(
                "the window keeps categorical columns as strings: rows() needs numeric columns only"
            )
        if self._filled < self.window:
            return self._num[: self._filled].copy()
        return np.concatenate([self._num[self._pos :], self._num[: self._pos]])

    def _rows(self, rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """The numeric block (float64) and the categorical block (strings) of ``rows``."""
        names = self.reference.feature_names
        if not hasattr(rows, "columns") and not isinstance(rows, Mapping):
            arr = np.asarray(rows)
            arr = arr.reshape(1, -1) if arr.ndim == 1 else arr
            if arr.ndim == 2 and arr.shape[1] == len(names) and arr.dtype.kind in "biuf":
                # the service's common case, one numeric array: no per-column work
                num = arr[:, self._num_idx].astype(np.float64)
                if np.isinf(num).any():
                    bad = int(np.flatnonzero(np.isinf(num).any(axis=0))[0])
                    raise InputError("infinite values", field=names[self._num_idx[bad]])
                cat = arr[:, self._cat_idx].astype(str).astype(object)
                return num, cat
            rows = arr
        cols = _current_columns(self.reference, rows)
        k = len(cols[0])
        num = (
            np.stack([numeric_column(cols[j], names[j]) for j in self._num_idx], axis=1)
            if self._num_idx
            else np.empty((k, 0))
        )
        cat = np.empty((k, len(self._cat_idx)), dtype=object)
        for i, j in enumerate(self._cat_idx):
            cat[:, i] = category_strings(cols[j])
        return num, cat

    def check(self) -> DriftReport:
        """Test the rows now in the window against the reference."""
        if self._filled == 0:
            raise InputError("the drift window is empty: call update() first")
        columns: dict[str, np.ndarray] = {}
        names = self.reference.feature_names
        for i, j in enumerate(self._num_idx):
            columns[names[j]] = self._num[: self._filled, i]
        for i, j in enumerate(self._cat_idx):
            columns[names[j]] = self._cat[: self._filled, i].astype(str)
        return detect_drift(
            self.reference,
            columns,
            alpha=self.alpha,
            min_wasserstein=self.min_wasserstein,
            min_psi=self.min_psi,
            multivariate=self.multivariate,
            exact=self.exact,
            seed=self.seed,
        )
