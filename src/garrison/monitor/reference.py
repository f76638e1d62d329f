"""The reference a drift monitor compares traffic with: fitted once, stored as one ``.npz``, loaded as untrusted.

Per numeric column the reference keeps its sorted non-missing values (so that every later two-sample test only has
to sort the current window and binary-search it into the reference), its mean and standard deviation, and the
reference-quantile bins of the population stability index with the reference's share in each. Per categorical
column it keeps the category counts. A seeded subsample of whole rows, standardised, serves the multivariate test.

For references too large to keep whole, ``max_values`` keeps only that many evenly spaced order statistics per
column (a quantile sketch): the tests then use the true row count but an empirical distribution that is off by at
most about ``1 / max_values`` in the Kolmogorov–Smirnov distance.

The file is a plain ``.npz`` (numeric and unicode arrays only, JSON metadata with ``schema_version`` stored as
bytes) written atomically; :meth:`DriftReference.load` reads it with ``allow_pickle=False`` and checks every array's
dtype, shape and invariants, so a corrupted or hostile file is a :class:`DataError`, never a crash or a pickle.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from garrison.core.atomic_write import write_atomic
from garrison.core.errors import DataError, InputError

__all__ = ["REFERENCE_SCHEMA_VERSION", "DriftReference"]

REFERENCE_SCHEMA_VERSION = 1
_FILE_KIND = "garrison.drift_reference"
_NUMERIC, _CATEGORICAL = "numeric", "categorical"
_ARRAYS: dict[str, str] = {  # name -> dtype kind expected in the file
    "metadata": "u",
    "num_values": "f",
    "num_offsets": "i",
    "num_counts": "i",
    "num_mean": "f",
    "num_std": "f",
    "psi_edges": "f",
    "psi_ref": "f",
    "cat_values": "U",
    "cat_offsets": "i",
    "cat_counts": "i",
    "mmd_sample": "f",
}
_MAX_METADATA_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class DriftReference:
    """A fitted reference (see the module docstring). Build it with :meth:`fit` or :meth:`load`.

    ``kinds[j]`` is ``"numeric"`` or ``"categorical"``; the numeric arrays list the numeric columns in order, the
    categorical arrays the categorical ones. ``num_values[num_offsets[i]:num_offsets[i + 1]]`` is the sorted
    reference of the ``i``-th numeric column (all of it, or its sketch when ``num_counts[i]`` is larger).
    """

    feature_names: tuple[str, ...]
    kinds: tuple[str, ...]
    n_rows: int
    bins: int
    max_values: int | None
    num_values: np.ndarray
    num_offsets: np.ndarray
    num_counts: np.ndarray
    num_mean: np.ndarray
    num_std: np.ndarray
    psi_edges: np.ndarray
    psi_ref: np.ndarray
    cat_values: np.ndarray
    cat_offsets: np.ndarray
    cat_counts: np.ndarray
    mmd_sample: np.ndarray
    mmd_bandwidth: float | None
    seed: int

    # ------------------------------------------------------------------ views
    @property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(n for n, k in zip(self.feature_names, self.kinds, strict=True) if k == _NUMERIC)

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(n for n, k in zip(self.feature_names, self.kinds, strict=True) if k == _CATEGORICAL)

    def sorted_values(self, i: int) -> np.ndarray:
        """The stored sorted values of the ``i``-th numeric column (a view)."""
        return self.num_values[self.num_offsets[i] : self.num_offsets[i + 1]]

    def categories(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The sorted categories of the ``i``-th categorical column and their reference counts (views)."""
        lo, hi = self.cat_offsets[i], self.cat_offsets[i + 1]
        return self.cat_values[lo:hi], self.cat_counts[lo:hi]

    def __repr__(self) -> str:
        return (
            f"DriftReference(n_rows={self.n_rows}, numeric={len(self.numeric_names)}, "
            f"categorical={len(self.categorical_names)})"
        )

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(
        cls,
        x: Any,
        *,
        feature_names: Sequence[str] | None = None,
        categorical: Sequence[str | int] | None = None,
        bins: int = 10,
        max_values: int | None = None,
        mmd_size: int = 10_000,
        seed: int = 0,
    ) -> DriftReference:
        """Fit a reference on ``x``: a 2-d array ``(n, d)``, a DataFrame or a mapping of column name to 1-d array.

        ``categorical`` names (or indexes) the categorical columns; without it, columns of string, object or
        boolean dtype are categorical and the others numeric. NaN in a numeric column is a missing value (left
        out of the tests); infinite values are refused. ``bins`` reference-quantile bins for the PSI,
        ``max_values`` caps the values kept per numeric column (a quantile sketch), ``mmd_size`` rows are kept
        (seeded) for the multivariate test.
        """
        if bins < 2:
            raise ValueError(f"`bins` must be >= 2, got {bins!r}")
        if max_values is not None and max_values < 2:
            raise ValueError(f"`max_values` must be >= 2, got {max_values!r}")
        if mmd_size < 0:
            raise ValueError(f"`mmd_size` must be >= 0, got {mmd_size!r}")
        names, columns = as_columns(x, feature_names)
        n_rows = len(columns[0])
        if n_rows < 1:
            raise InputError("the reference has no rows")
        kinds = _kinds(names, columns, categorical)
        numeric = [j for j, k in enumerate(kinds) if k == _NUMERIC]
        cats = [j for j, k in enumerate(kinds) if k == _CATEGORICAL]

        # numeric: one flat buffer, each column's valid values copied in and sorted in place
        valid_cols: list[np.ndarray] = []
        for j in numeric:
            col = numeric_column(columns[j], names[j])
            nan = np.isnan(col)
            valid_cols.append(col[~nan] if nan.any() else col)
            if len(valid_cols[-1]) == 0:
                raise InputError("the reference column has no values", field=names[j])
        counts = np.array([len(c) for c in valid_cols], dtype=np.int64)
        kept = counts if max_values is None else np.minimum(counts, max_values)
        offsets = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
        values = np.empty(int(offsets[-1]), dtype=np.float64)
        mean = np.empty(len(numeric))
        std = np.empty(len(numeric))
        edges = np.empty((len(numeric), bins - 1))
        psi_ref = np.empty((len(numeric), bins))
        for i, col in enumerate(valid_cols):
            if max_values is None or len(col) <= max_values:
                out = values[offsets[i] : offsets[i + 1]]
                out[:] = col
                out.sort()
                ordered = out
            else:
                ordered = np.sort(col)
                ranks = np.round(np.linspace(0, len(col) - 1, max_values)).astype(np.int64)
                values[offsets[i] : offsets[i + 1]] = ordered[ranks]
            mean[i] = float(np.mean(ordered))
            std[i] = float(np.std(ordered))
            edges[i] = _quantiles(ordered, np.arange(1, bins) / bins)
            psi_ref[i] = np.diff(
                np.searchsorted(ordered, edges[i], side="right"), prepend=0, append=len(ordered)
            )
            psi_ref[i] /= len(ordered)
        del valid_cols

        # categorical: sorted categories and their counts
        cat_values: list[np.ndarray] = []
        cat_counts: list[np.ndarray] = []
        for j in cats:
            uniq, cnt = np.unique(category_strings(columns[j]), return_counts=True)
            cat_values.append(uniq)
            cat_counts.append(cnt.astype(np.int64))
        cat_offsets = np.concatenate([[0], np.cumsum([len(v) for v in cat_values])]).astype(np.int64)
        flat_cats = np.concatenate(cat_values) if cat_values else np.empty(0, dtype="<U1")

        sample, bandwidth = _mmd_sample(columns, numeric, mean, std, mmd_size, seed)
        return cls(
            feature_names=names,
            kinds=kinds,
            n_rows=n_rows,
            bins=bins,
            max_values=max_values,
            num_values=values,
            num_offsets=offsets,
            num_counts=counts,
            num_mean=mean,
            num_std=std,
            psi_edges=edges,
            psi_ref=psi_ref,
            cat_values=flat_cats,
            cat_offsets=cat_offsets,
            cat_counts=np.concatenate(cat_counts) if cat_counts else np.empty(0, dtype=np.int64),
            mmd_sample=sample,
            mmd_bandwidth=bandwidth,
            seed=seed,
        )

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        return {
            "schema_version": REFERENCE_SCHEMA_VERSION,
            "kind": _FILE_KIND,
            "feature_names": list(self.feature_names),
            "kinds": list(self.kinds),
            "n_rows": self.n_rows,
            "bins": self.bins,
            "max_values": self.max_values,
            "mmd_bandwidth": self.mmd_bandwidth,
            "seed": self.seed,
        }

    def save(self, path: str | Path) -> Path:
        """Write the reference to ``path`` as one ``.npz``, atomically (readers see the old file or the new)."""
        meta = json.dumps(self.metadata(), sort_keys=True, allow_nan=False).encode("utf-8")
        buffer = io.BytesIO()
        np.savez(
            buffer,
            metadata=np.frombuffer(meta, dtype=np.uint8),
            num_values=self.num_values,
            num_offsets=self.num_offsets,
            num_counts=self.num_counts,
            num_mean=self.num_mean,
            num_std=self.num_std,
            psi_edges=self.psi_edges,
            psi_ref=self.psi_ref,
            cat_values=self.cat_values,
            cat_offsets=self.cat_offsets,
            cat_counts=self.cat_counts,
            mmd_sample=self.mmd_sample,
        )
        return write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> DriftReference:
        """Read a reference written by :meth:`save`. The file is untrusted: no pickle, every array checked; any
        problem is a :class:`DataError` naming the file (and the array)."""
        p = Path(path)
        arrays = _read_arrays(p)
        meta = _parse_metadata(arrays.pop("metadata"), p)
        return _validated(meta, arrays, p)


# ---------------------------------------------------------------------- columns
def as_columns(
    x: Any, feature_names: Sequence[str] | None = None
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """Column names and 1-d columns of a 2-d array, a DataFrame or a mapping of name to 1-d array."""
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):  # a DataFrame, without importing pandas
        names = tuple(str(c) for c in x.columns)
        columns = [np.asarray(x[c].to_numpy()) for c in x.columns]
    elif isinstance(x, Mapping):
        names = tuple(str(k) for k in x)
        columns = [np.asarray(v) for v in x.values()]
    else:
        arr = np.asarray(x)
        if arr.ndim != 2:
            raise InputError(f"expected a 2-d array (rows, columns), got shape {arr.shape}")
        names = tuple(f"f{j}" for j in range(arr.shape[1]))
        columns = [arr[:, j] for j in range(arr.shape[1])]
    if feature_names is not None:
        given = tuple(str(n) for n in feature_names)
        if len(given) != len(names):
            raise InputError(f"{len(given)} feature names for {len(names)} columns")
        names = given
    if not names:
        raise InputError("the data has no columns")
    if len(set(names)) != len(names):
        raise InputError("duplicate column name", field=next(n for n in names if names.count(n) > 1))
    lengths = {len(c) for c in columns}
    if len(lengths) != 1 or any(c.ndim != 1 for c in columns):
        raise InputError("columns must be 1-d and of one length")
    return names, columns


def numeric_column(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as float64 (NaN = missing); infinite or non-numeric values are an :class:`InputError`."""
    try:
        col = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("non-numeric values in a numeric column", field=name) from None
    if np.isinf(col).any():
        raise InputError("infinite values", field=name)
    return col


def category_strings(values: np.ndarray) -> np.ndarray:
    """Categories compare by their string form (so ``1`` and ``"1"`` are one category)."""
    arr = np.asarray(values)
    return arr if arr.dtype.kind == "U" else arr.astype(str)


def _kinds(
    names: tuple[str, ...], columns: list[np.ndarray], categorical: Sequence[str | int] | None
) -> tuple[str, ...]:
    if categorical is None:
        return tuple(_CATEGORICAL if c.dtype.kind in "OUSb" else _NUMERIC for c in columns)
    chosen: set[int] = set()
    for c in categorical:
        if isinstance(c, int | np.integer) and not isinstance(c, bool):
            if not 0 <= int(c) < len(names):
                raise InputError(f"categorical column index {c} out of range (0..{len(names) - 1})")
            chosen.add(int(c))
        elif str(c) in names:
            chosen.add(names.index(str(c)))
        else:
            raise InputError("categorical column not found", field=str(c))
    return tuple(_CATEGORICAL if j in chosen else _NUMERIC for j in range(len(names)))


def _quantiles(ordered: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Linear-interpolation quantiles of an already sorted array (``np.quantile``'s default, without a re-sort)."""
    pos = q * (len(ordered) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(ordered) - 1)
    frac = pos - lo
    return ordered[lo] + (ordered[hi] - ordered[lo]) * frac


def _mmd_sample(
    columns: list[np.ndarray], numeric: list[int], mean: np.ndarray, std: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, float | None]:
    """A seeded subsample of complete rows, standardised, and the median-heuristic Gaussian bandwidth."""
    if not numeric or size < 4:
        return np.empty((0, len(numeric))), None
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, 4 * size), replace=False)) if n > 4 * size else np.arange(n)
    block = np.stack([numeric_column(columns[j][rows], "") for j in numeric], axis=1)
    block = block[~np.isnan(block).any(axis=1)]
    if len(block) < 4:
        return np.empty((0, len(numeric))), None
    block = block[rng.permutation(len(block))[:size]]
    sample = (block - mean) / np.where(std > 0, std, 1.0)
    head = sample[: min(len(sample), 1000)]
    sq = np.sum(head**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * head @ head.T, 0.0)
    dist = np.sqrt(d2[np.triu_indices(len(head), k=1)])
    positive = dist[dist > 0]
    bandwidth = float(np.median(positive)) if len(positive) else 1.0
    return np.ascontiguousarray(sample), bandwidth


# ---------------------------------------------------------------------- loading (untrusted)
def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError("file not found" if not path.exists() else "not a regular file", path=path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", path=path) from None
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise DataError("cannot read drift reference: not an .npz (zip) archive", path=path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                if not isinstance(npz, np.lib.npyio.NpzFile):
                    raise DataError("not a drift reference (.npz archive expected)", path=path)
                missing = [k for k in _ARRAYS if k not in npz.files]
                if missing:
                    raise DataError(
                        f"not a drift reference: array {missing[0]!r} missing", path=path, field=missing[0]
                    )
                return {k: npz[k] for k in _ARRAYS}
    except DataError:
        raise
    except MemoryError:  # an array header that declares more than the file holds (or than memory allows)
        raise DataError("cannot read drift reference: an array does not fit in memory", path=path) from None
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError("pickled data is refused", path=path) from None
        raise DataError(f"cannot read drift reference: {str(exc).splitlines()[0][:200]}", path=path) from None
    except Exception as exc:  # zip, zlib and .npy header errors of untrusted bytes
        raise DataError(f"cannot read drift reference: {exc.__class__.__name__}", path=path) from None


def _parse_metadata(raw: np.ndarray, path: Path) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > _MAX_METADATA_BYTES:
        raise DataError("bad metadata array", path=path, field="metadata")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DataError("metadata is not JSON", path=path, field="metadata") from None
    if not isinstance(meta, dict) or meta.get("kind") != _FILE_KIND:
        raise DataError("not a drift reference", path=path, field="metadata")
    version = meta.get("schema_version")
    if version != REFERENCE_SCHEMA_VERSION:
        raise DataError(
            f"unsupported schema_version {version!r} (this Garrison reads {REFERENCE_SCHEMA_VERSION})",
            path=path,
            field="schema_version",
        )
    return meta


def _int(meta: dict[str, Any], key: str, path: Path, *, low: int, optional: bool = False) -> int | None:
    value = meta.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise DataError(f"`{key}` must be an integer >= {low}, got {value!r}", path=path, field=key)
    return value


def _validated(meta: dict[str, Any], arrays: dict[str, np.ndarray], path: Path) -> DriftReference:
    def bad(message: str, field: str) -> DataError:
        return DataError(message, path=path, field=field)

    names, kinds = meta.get("feature_names"), meta.get("kinds")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise bad("`feature_names` must be a non-empty list of strings", "feature_names")
    if len(set(names)) != len(names):
        raise bad("duplicate feature name", "feature_names")
    if (
        not isinstance(kinds, list)
        or len(kinds) != len(names)
        or any(k not in (_NUMERIC, _CATEGORICAL) for k in kinds)
    ):
        raise bad("`kinds` must list numeric/categorical once per feature", "kinds")
    n_rows = _int(meta, "n_rows", path, low=1)
    bins = _int(meta, "bins", path, low=2)
    max_values = _int(meta, "max_values", path, low=2, optional=True)
    seed = _int(meta, "seed", path, low=0)
    assert n_rows is not None
    assert bins is not None
    assert seed is not None
    bandwidth = meta.get("mmd_bandwidth")
    if bandwidth is not None and (
        not isinstance(bandwidth, int | float) or isinstance(bandwidth, bool) or not bandwidth > 0
    ):
        raise bad("`mmd_bandwidth` must be a positive number or null", "mmd_bandwidth")
    for key, kind in _ARRAYS.items():
        if key != "metadata" and arrays[key].dtype.kind != kind:
            raise bad(f"unexpected dtype {arrays[key].dtype}", key)
    a = dict(arrays)
    for key in ("num_values", "num_mean", "num_std", "psi_edges", "psi_ref", "mmd_sample"):
        a[key] = a[key].astype(np.float64, copy=False)
    for key in ("num_offsets", "num_counts", "cat_offsets", "cat_counts"):
        a[key] = a[key].astype(np.int64, copy=False)

    k_num = kinds.count(_NUMERIC)
    k_cat = kinds.count(_CATEGORICAL)
    shapes = {
        "num_values": 1,
        "num_offsets": (k_num + 1,),
        "num_counts": (k_num,),
        "num_mean": (k_num,),
        "num_std": (k_num,),
        "psi_edges": (k_num, bins - 1),
        "psi_ref": (k_num, bins),
        "cat_values": 1,
        "cat_offsets": (k_cat + 1,),
        "cat_counts": 1,
    }
    for key, shape in shapes.items():
        ok = a[key].ndim == shape if isinstance(shape, int) else a[key].shape == shape
        if not ok:
            raise bad(f"unexpected shape {a[key].shape}", key)
    if not np.isfinite(a["num_values"]).all():
        raise bad("non-finite reference values", "num_values")
    for key in ("num_mean", "num_std", "psi_edges", "psi_ref", "mmd_sample"):
        if not np.isfinite(a[key]).all():
            raise bad("non-finite values", key)
    _check_offsets(a["num_offsets"], len(a["num_values"]), bad, "num_offsets")
    _check_offsets(a["cat_offsets"], len(a["cat_values"]), bad, "cat_offsets")
    kept = np.diff(a["num_offsets"])
    if (kept < 1).any() or (a["num_counts"] < kept).any() or (a["num_counts"] > n_rows).any():
        raise bad("column sizes disagree with the stored values", "num_counts")
    if max_values is None and (kept != a["num_counts"]).any():
        raise bad("column sizes disagree with the stored values", "num_counts")
    if max_values is not None and (kept > max_values).any():
        raise bad("more values stored than `max_values`", "num_values")
    for i in range(k_num):
        col = a["num_values"][a["num_offsets"][i] : a["num_offsets"][i + 1]]
        if len(col) > 1 and (np.diff(col) < 0).any():
            raise bad(f"values of column {i} are not sorted", "num_values")
    if (a["num_std"] < 0).any():
        raise bad("negative standard deviation", "num_std")
    if (a["psi_ref"] < 0).any() or (k_num and not np.allclose(a["psi_ref"].sum(axis=1), 1.0)):
        raise bad("bin shares must be >= 0 and sum to 1", "psi_ref")
    if k_num and bins > 2 and (np.diff(a["psi_edges"], axis=1) < 0).any():
        raise bad("bin edges are not sorted", "psi_edges")
    if len(a["cat_counts"]) != len(a["cat_values"]) or (a["cat_counts"] < 1).any():
        raise bad("one positive count per category expected", "cat_counts")
    for i in range(k_cat):
        lo, hi = a["cat_offsets"][i], a["cat_offsets"][i + 1]
        cats = a["cat_values"][lo:hi]
        if hi - lo < 1 or (hi - lo > 1 and not (cats[1:] > cats[:-1]).all()):
            raise bad(f"categories of column {i} must be non-empty, sorted and unique", "cat_values")
        if int(a["cat_counts"][lo:hi].sum()) != n_rows:
            raise bad(f"category counts of column {i} do not sum to n_rows", "cat_counts")
    sample = a["mmd_sample"]
    if sample.ndim != 2 or (sample.size and sample.shape[1] != k_num):
        raise bad(f"unexpected shape {sample.shape}", "mmd_sample")
    if sample.shape[0] and bandwidth is None:
        raise bad("a sample without a bandwidth", "mmd_bandwidth")
    return DriftReference(
        feature_names=tuple(names),
        kinds=tuple(kinds),
        n_rows=n_rows,
        bins=bins,
        max_values=max_values,
        num_values=a["num_values"],
        num_offsets=a["num_offsets"],
        num_counts=a["num_counts"],
        num_mean=a["num_mean"],
        num_std=a["num_std"],
        psi_edges=a["psi_edges"],
        psi_ref=a["psi_ref"],
        cat_values=a["cat_values"],
        cat_offsets=a["cat_offsets"],
        cat_counts=a["cat_counts"],
        mmd_sample=sample if sample.shape[0] else np.empty((0, k_num)),
        mmd_bandwidth=float(bandwidth) if bandwidth is not None and sample.shape[0] else None,
        seed=seed,
    )


def _check_offsets(offsets: np.ndarray, total: int, bad: Any, field: str) -> None:
    if offsets[0] != 0 or offsets[-1] != total or (np.diff(offsets) < 0).any():
        raise bad("offsets must rise from 0 to the number of stored values", field)
