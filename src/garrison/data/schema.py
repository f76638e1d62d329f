"""The schema of a dataset: one :class:`FeatureSpec` per feature, with kind, bounds, categories and mutability.

Bounds and codes are expressed in the codec's numeric space (see :class:`garrison.data.FeatureCodec`): a
categorical feature is an ordinal code ``0 .. K-1`` into its sorted categories, a boolean one ``0``/``1``. The
schema is what keeps tabular attacks honest: :meth:`Schema.violations` finds rows that leave it and
:meth:`Schema.project` brings a point back to the nearest valid one.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from garrison.core.errors import ConfigError, DataError, InputError

if TYPE_CHECKING:
    from garrison.core.config import FeatureOverride

__all__ = ["SCHEMA_VERSION", "FeatureKind", "FeatureSpec", "Schema", "infer_array_schema", "infer_schema"]

SCHEMA_VERSION = 1


class FeatureKind(StrEnum):
    """How a feature's values are encoded: a float, an integer, a category code or a 0/1 flag."""

    NUMERIC = "numeric"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


_DISCRETE = (FeatureKind.INTEGER, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature. ``min``/``max`` bound numeric and integer features (``None``: unbounded on that side).

    ``categories`` (categorical only) are sorted strings; code ``i`` stands for ``categories[i]``. ``dtype`` is the
    pandas dtype of the original column (``None`` for array data), which decoding restores; ``category_order`` is
    the category order of a pandas ``category`` column when it differs from the sorted one.
    """

    name: str
    kind: FeatureKind
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    immutable: bool = False
    nullable: bool = False
    dtype: str | None = None
    category_order: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", FeatureKind(self.kind))
        except ValueError:
            raise InputError(f"unknown feature kind {self.kind!r}", field=self.name) from None
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))
        if self.category_order is not None:
            object.__setattr__(self, "category_order", tuple(str(c) for c in self.category_order))
        if self.kind is FeatureKind.CATEGORICAL and self.categories is None:
            raise InputError("a categorical feature needs `categories`", field=self.name)
        if self.kind is not FeatureKind.CATEGORICAL and self.categories is not None:
            raise InputError(f"`categories` given for a {self.kind.value} feature", field=self.name)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise InputError(f"`min` must be <= `max`, got {self.min} > {self.max}", field=self.name)

    def bounds(self) -> tuple[float, float]:
        """Lower and upper bound in codec space (``-inf``/``inf`` when unbounded)."""
        if self.kind is FeatureKind.CATEGORICAL:
            return 0.0, float(len(self.categories or ()) - 1)
        if self.kind is FeatureKind.BOOLEAN:
            return 0.0, 1.0
        lo = -math.inf if self.min is None else float(self.min)
        hi = math.inf if self.max is None else float(self.max)
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "min": self.min,
            "max": self.max,
            "categories": list(self.categories) if self.categories is not None else None,
            "immutable": self.immutable,
            "nullable": self.nullable,
            "dtype": self.dtype,
            "category_order": list(self.category_order) if self.category_order is not None else None,
        }


@dataclass(frozen=True)
class _Arrays:
    """Per-feature vectors (flattened) used by the vectorised schema operations."""

    lower: np.ndarray
    upper: np.ndarray
    discrete: np.ndarray
    boolean: np.ndarray
    nullable: np.ndarray
    immutable: np.ndarray


@dataclass(frozen=True)
class Schema:
    """The features of a dataset and the per-sample shape of its numeric array.

    Tabular data has one feature per column and ``sample_shape == (n_features,)``; array data (``.npz``) has one
    feature per flattened element, named ``f0 .. f{d-1}``.
    """

    features: tuple[FeatureSpec, ...]
    sample_shape: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        features = tuple(self.features)
        object.__setattr__(self, "features", features)
        shape = tuple(int(s) for s in self.sample_shape) if self.sample_shape else (len(features),)
        object.__setattr__(self, "sample_shape", shape)
        if math.prod(shape) != len(features):
            raise InputError(
                f"sample shape {shape} holds {math.prod(shape)} values but there are "
                f"{len(features)} features",
                field="sample_shape",
            )
        seen: set[str] = set()
        for f in features:
            if f.name in seen:
                raise InputError("duplicate feature name", field=f.name)
            seen.add(f.name)

    @property
    def n_features(self) -> int:
        return len(self.features)

    def names(self) -> tuple[str, ...]:
        """Feature names, in column order."""
        return tuple(f.name for f in self.features)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {f.name: i for i, f in enumerate(self.features)}

    def index(self, name: str) -> int:
        """Column index of a feature; :class:`InputError` if unknown."""
        try:
            return self._index[name]
        except KeyError:
            raise InputError("unknown feature", field=name) from None

    def feature(self, name: str) -> FeatureSpec:
        """The spec of a feature; :class:`InputError` naming it if unknown."""
        return self.features[self.index(name)]

    @cached_property
    def _arrays(self) -> _Arrays:
        bounds = np.array([f.bounds() for f in self.features], dtype=np.float64).reshape(-1, 2)
        return _Arrays(
            lower=bounds[:, 0],
            upper=bounds[:, 1],
            discrete=np.array([f.kind in _DISCRETE for f in self.features], dtype=bool),
            boolean=np.array([f.kind is FeatureKind.BOOLEAN for f in self.features], dtype=bool),
            nullable=np.array([f.nullable for f in self.features], dtype=bool),
            immutable=np.array([f.immutable for f in self.features], dtype=bool),
        )

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds, each of shape ``sample_shape``, in codec space (``±inf`` when unbounded)."""
        a = self._arrays
        return a.lower.reshape(self.sample_shape).copy(), a.upper.reshape(self.sample_shape).copy()

    def immutable_mask(self) -> np.ndarray:
        """Boolean array of shape ``sample_shape``: True where the feature must not be changed."""
        return self._arrays.immutable.reshape(self.sample_shape).copy()

    def _flat(self, x: np.ndarray, what: str = "x") -> np.ndarray:
        arr = np.asarray(x)
        d = self.n_features
        if arr.ndim == 0 or (arr.shape[1:] != self.sample_shape and arr.shape[1:] != (d,)):
            raise InputError(
                f"expected shape (n, {', '.join(map(str, self.sample_shape))}), got {arr.shape}", field=what
            )
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise InputError(f"expected a numeric array, got dtype {arr.dtype}", field=what)
        return arr.reshape(len(arr), d).astype(np.float64, copy=False)

    def violations(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask ``(n,)``: True where a row leaves the schema.

        A row violates when a value is infinite, NaN in a non-nullable feature, outside the bounds, or not a valid
        code (non-integer in an integer, categorical or boolean feature; category code outside ``0 .. K-1``).
        """
        v = self._flat(x)
        a = self._arrays
        nan = np.isnan(v)
        bad = np.isinf(v) | (nan & ~a.nullable)
        with np.errstate(invalid="ignore"):
            bad |= ~nan & ((v < a.lower) | (v > a.upper))
            bad |= ~nan & a.discrete & (v != np.round(v))
        return bad.any(axis=1)

    def project(self, x: np.ndarray, *, original: np.ndarray | None = None) -> np.ndarray:
        """The nearest valid point of each row: clipped to the bounds, discrete features rounded.

        Immutable features are copied from ``original`` (same shape as ``x``, or one sample broadcast). NaN in a
        nullable feature stays; elsewhere NaN takes the original value, else the nearest bound to zero.
        Returns float64 of ``x``'s shape.
        """
        shape = np.shape(x)
        v = self._flat(x).copy()
        a = self._arrays
        orig = None
        if original is not None:
            o = np.asarray(original, dtype=np.float64)
            if o.size == v.size:
                orig = o.reshape(v.shape)
            elif o.size == self.n_features:
                orig = np.broadcast_to(o.reshape(1, self.n_features), v.shape)
            else:
                raise InputError(f"`original` has shape {o.shape}, expected {shape}", field="original")
        big = np.finfo(np.float64).max
        lo = np.where(np.isinf(a.lower), -big, a.lower)
        hi = np.where(np.isinf(a.upper), big, a.upper)
        # integer features must land on an integer inside the bounds, even when a bound is fractional
        lo = np.where(a.discrete & (lo > -big), np.ceil(lo), lo)
        hi = np.where(a.discrete & (hi < big), np.floor(hi), hi)
        hi = np.maximum(hi, lo)
        nan = np.isnan(v)
        fill = np.clip(0.0, lo, hi)
        if orig is not None:
            fill = np.where(np.isnan(orig), fill, orig)
        v = np.where(nan & ~a.nullable, fill, v)
        v = np.where(a.discrete, np.round(v), v)
        v = np.clip(v, lo, hi)
        if orig is not None:
            v = np.where(a.immutable, orig, v)
        return v.reshape(shape)

    def with_overrides(self, overrides: Mapping[str, FeatureOverride]) -> Schema:
        """A new schema with the ``data.features`` overrides of a ``garrison.yaml`` applied.

        Raises :class:`ConfigError` (``key='data.features.<name>'``) for an unknown feature or an invalid
        combination (e.g. ``min`` on a categorical feature, ``categorical`` and ``integer`` together).
        """
        features = list(self.features)
        for name, ov in overrides.items():
            if name not in self._index:
                raise ConfigError(
                    f"unknown feature {name!r} (features: {_preview(self.names())})",
                    key=f"data.features.{name}",
                )
            i = self._index[name]
            features[i] = _override(features[i], ov)
        return replace(self, features=tuple(features))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (see :meth:`from_dict`)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "sample_shape": list(self.sample_shape),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`; :class:`InputError` naming the field for a malformed document."""
        if not isinstance(d, Mapping):
            raise InputError("a schema must be a mapping", field="schema")
        version = d.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InputError(f"unsupported schema_version {version!r}", field="schema_version")
        raw = d.get("features")
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
            raise InputError("`features` must be a list", field="features")
        features = []
        for i, f in enumerate(raw):
            if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
                raise InputError("each feature needs a string `name`", field=f"features[{i}]")
            name = f["name"]
            try:
                features.append(
                    FeatureSpec(
                        name=name,
                        kind=FeatureKind(f.get("kind")),
                        min=None if f.get("min") is None else float(f["min"]),
                        max=None if f.get("max") is None else float(f["max"]),
                        categories=None if f.get("categories") is None else tuple(f["categories"]),
                        immutable=bool(f.get("immutable", False)),
                        nullable=bool(f.get("nullable", False)),
                        dtype=None if f.get("dtype") is None else str(f["dtype"]),
                        category_order=None
                        if f.get("category_order") is None
                        else tuple(f["category_order"]),
                    )
                )
            except InputError:
                raise
            except (TypeError, ValueError) as exc:
                raise InputError(f"invalid feature: {exc}", field=name) from None
        shape = d.get("sample_shape")
        try:
            sample_shape = tuple(int(s) for s in shape) if shape is not None else (len(features),)
        except (TypeError, ValueError):
            raise InputError("`sample_shape` must be a list of integers", field="sample_shape") from None
        return cls(tuple(features), sample_shape)


def _preview(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _override(spec: FeatureSpec, ov: FeatureOverride) -> FeatureSpec:
    key = f"data.features.{spec.name}"
    kind = spec.kind
    if ov.categorical and ov.integer:
        raise ConfigError("`categorical` and `integer` cannot both be true", key=key)
    categories = spec.categories
    if ov.categorical is True or (ov.categories is not None and ov.categorical is None):
        if kind is not FeatureKind.CATEGORICAL and ov.categories is None:
            raise ConfigError(f"making a {kind.value} feature categorical needs `categories`", key=key)
        if kind is not FeatureKind.CATEGORICAL and ov.categorical is None:
            raise ConfigError(
                f"`categories` given for a {kind.value} feature; set `categorical: true`", key=key
            )
        if ov.categories is not None:
            new = tuple(sorted({str(c) for c in ov.categories}))
            if not new:
                raise ConfigError("`categories` must not be empty", key=key)
            missing = sorted(set(categories or ()) - set(new))
            if missing:
                raise ConfigError(
                    f"`categories` leaves out values present in the data: {_preview(missing)}", key=key
                )
            categories = new
        kind = FeatureKind.CATEGORICAL
    elif ov.categorical is False and kind is FeatureKind.CATEGORICAL:
        raise ConfigError("the feature holds non-numeric values; it cannot be made non-categorical", key=key)
    if ov.integer is True:
        if kind not in (FeatureKind.NUMERIC, FeatureKind.INTEGER):
            raise ConfigError(f"`integer` applies to numeric features, not {kind.value}", key=key)
        kind = FeatureKind.INTEGER
    elif ov.integer is False and kind is FeatureKind.INTEGER:
        kind = FeatureKind.NUMERIC
    lo, hi = spec.min, spec.max
    if ov.min is not None or ov.max is not None:
        if kind not in (FeatureKind.NUMERIC, FeatureKind.INTEGER):
            raise ConfigError(f"`min`/`max` apply to numeric features, not {kind.value}", key=key)
        lo = float(ov.min) if ov.min is not None else lo
        hi = float(ov.max) if ov.max is not None else hi
        if math.isnan(lo if lo is not None else 0.0) or math.isnan(hi if hi is not None else 0.0):
            raise ConfigError("`min`/`max` must be numbers, got NaN", key=key)
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"`min` must be <= `max`, got {lo:g} > {hi:g}", key=key)
    if kind is FeatureKind.CATEGORICAL:
        lo = hi = None
    order = spec.category_order if categories == spec.categories else None
    return replace(
        spec,
        kind=kind,
        min=lo,
        max=hi,
        categories=categories if kind is FeatureKind.CATEGORICAL else None,
        immutable=spec.immutable or ov.immutable,
        category_order=order,
    )


def category_strings(values: pd.Series) -> np.ndarray:
    """The string form of each non-missing value (the form categories are stored and matched in)."""
    mask = values.isna().to_numpy()
    return np.asarray(values.to_numpy(dtype=object)[~mask]).astype(str)


def _merged_dtype(cols: Sequence[pd.Series]) -> Any:
    dtypes = [c.dtype for c in cols]
    if all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
        return dtypes[0]
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    return pd.concat([c.reset_index(drop=True) for c in cols], ignore_index=True).dtype


def _is_bool_object(cols: Sequence[pd.Series]) -> bool:
    seen = False
    for c in cols:
        for v in c.dropna().to_numpy(dtype=object):
            if not isinstance(v, bool | np.bool_):
                return False
            seen = True
    return seen


def _infer_feature(name: str, cols: Sequence[pd.Series], force_categorical: bool) -> FeatureSpec:
    dtype = _merged_dtype(cols)
    nullable = any(bool(c.isna().any()) for c in cols)
    unsupported = (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype | pd.SparseDtype)
    )
    if unsupported:
        raise DataError(f"unsupported column dtype {dtype}", field=name)
    if isinstance(dtype, pd.CategoricalDtype):
        kind = FeatureKind.CATEGORICAL
    elif pd.api.types.is_bool_dtype(dtype):
        kind = FeatureKind.BOOLEAN
    elif pd.api.types.is_integer_dtype(dtype):
        kind = FeatureKind.INTEGER
    elif pd.api.types.is_float_dtype(dtype):
        kind = FeatureKind.NUMERIC
    elif _is_bool_object(cols):
        kind = FeatureKind.BOOLEAN
    else:
        kind = FeatureKind.CATEGORICAL
    if force_categorical:
        kind = FeatureKind.CATEGORICAL
    dtype_name = "category" if isinstance(dtype, pd.CategoricalDtype) else str(dtype)
    if kind is FeatureKind.CATEGORICAL:
        values: set[str] = set()
        order: list[str] = []
        for c in cols:
            if isinstance(c.dtype, pd.CategoricalDtype):
                for cat in np.asarray(c.cat.categories.to_numpy(dtype=object)).astype(str):
                    if cat not in values:
                        order.append(cat)
                    values.add(cat)
            values.update(category_strings(c).tolist())
        cats = tuple(sorted(values))
        if isinstance(dtype, pd.CategoricalDtype):
            order += sorted(values - set(order))
            if dtype.ordered:
                dtype_name = "ordered-category"
        category_order = (
            tuple(order) if isinstance(dtype, pd.CategoricalDtype) and tuple(order) != cats else None
        )
        return FeatureSpec(
            name, kind, categories=cats, nullable=nullable, dtype=dtype_name, category_order=category_order
        )
    if kind is FeatureKind.BOOLEAN:
        return FeatureSpec(name, kind, nullable=nullable, dtype=dtype_name)
    lo, hi = math.inf, -math.inf
    for c in cols:
        v = c.to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    if lo > hi:
        return FeatureSpec(name, kind, nullable=nullable, dtype=dtype_name)
    return FeatureSpec(name, kind, min=lo, max=hi, nullable=nullable, dtype=dtype_name)


def infer_schema(*frames: pd.DataFrame, categorical: Collection[str] = ()) -> Schema:
    """The schema of one or more DataFrames with the same columns (labels already removed).

    Categories are the union over all frames; bounds are the observed finite min/max; a feature is nullable when
    any frame has a missing value in it. ``categorical`` names columns to treat as categorical whatever their
    dtype. :class:`DataError` for no frames, differing columns or an unsupported dtype (dates, complex).
    """
    if not frames:
        raise DataError("no data to infer a schema from")
    columns = list(frames[0].columns)
    for f in frames[1:]:
        if list(f.columns) != columns:
            raise DataError(
                f"columns differ: {_preview([str(c) for c in columns])} vs "
                f"{_preview([str(c) for c in f.columns])}"
            )
    if len(set(columns)) != len(columns):
        dup = sorted({str(c) for c in columns if columns.count(c) > 1})
        raise DataError("duplicate column name", field=dup[0])
    features = []
    for pos, col in enumerate(columns):
        name = str(col)
        features.append(_infer_feature(name, [f.iloc[:, pos] for f in frames], name in categorical))
    return Schema(tuple(features), (len(features),))


def infer_array_schema(*arrays: np.ndarray) -> Schema:
    """The schema of numeric arrays ``(n, *sample_shape)`` (several: the same sample shape, merged).

    One feature ``f{i}`` per flattened element; float arrays give numeric features, integer arrays integer ones,
    boolean arrays boolean ones. Bounds are observed per element for flat samples ``(n, d)`` and over all elements
    for image-like samples (``(n, c, h, w)``), where the pixel range is the meaningful domain.
    """
    if not arrays:
        raise DataError("no data to infer a schema from")
    shape = np.shape(arrays[0])[1:]
    for a in arrays:
        arr = np.asarray(a)
        if arr.ndim < 2:
            raise DataError(f"expected an array of shape (n, ...), got {arr.shape}", field="x")
        if arr.shape[1:] != shape:
            raise DataError(f"sample shapes differ: {shape} vs {arr.shape[1:]}", field="x")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
            raise DataError(f"expected a numeric array, got dtype {arr.dtype}", field="x")
    d = math.prod(shape)
    flats = [np.asarray(a).reshape(len(a), d) for a in arrays]
    dtype = np.result_type(*[f.dtype for f in flats])
    if dtype == np.bool_:
        kind = FeatureKind.BOOLEAN
    elif np.issubdtype(dtype, np.integer):
        kind = FeatureKind.INTEGER
    else:
        kind = FeatureKind.NUMERIC
    lo = np.full(d, np.inf)
    hi = np.full(d, -np.inf)
    nullable = np.zeros(d, dtype=bool)
    for f in flats:
        if len(f) == 0:
            continue
        v = f.astype(np.float64, copy=False)
        finite = np.isfinite(v)
        nullable |= np.isnan(v).any(axis=0)
        lo = np.minimum(lo, np.where(finite, v, np.inf).min(axis=0))
        hi = np.maximum(hi, np.where(finite, v, -np.inf).max(axis=0))
    if len(shape) > 1:
        lo = np.full(d, lo.min())
        hi = np.full(d, hi.max())
    features = []
    for i in range(d):
        bounded = kind is not FeatureKind.BOOLEAN and lo[i] <= hi[i]
        features.append(
            FeatureSpec(
                f"f{i}",
                kind,
                min=float(lo[i]) if bounded else None,
                max=float(hi[i]) if bounded else None,
                nullable=bool(nullable[i]),
                dtype=str(dtype),
            )
        )
    return Schema(tuple(features), tuple(int(s) for s in shape))
