"""The exact mapping between records as users have them (a DataFrame) and the numeric space attacks work in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from garrison.core.errors import InputError
from garrison.data.schema import FeatureKind, FeatureSpec, Schema, category_strings

__all__ = ["UNKNOWN_CATEGORY", "FeatureCodec"]

UNKNOWN_CATEGORY = "__garrison_unknown__"
"""What a lenient decode writes for a category code that stands for no category (fuzzed inputs)."""

_TRUE = frozenset({"true", "1", "1.0", "yes"})
_FALSE = frozenset({"false", "0", "0.0", "no"})


class FeatureCodec:
    """Exact mapping between records (a DataFrame) and the numeric space attacks work in.

    One float64 column per feature, in schema order: numeric and integer features as their value, categorical
    ones as the ordinal code into ``FeatureSpec.categories``, boolean ones as 0/1; missing values are NaN.
    ``decode(encode(df))`` equals ``df``, dtypes included (missing values of ``object`` columns come back as NaN).
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._typed_categories = {
            f.name: _typed_categories(f) for f in schema.features if f.kind is FeatureKind.CATEGORICAL
        }

    def __repr__(self) -> str:
        return f"FeatureCodec(n_features={self.schema.n_features})"

    # ---------------------------------------------------------------- encode

    def encode(self, records: pd.DataFrame) -> np.ndarray:
        """Records to a float64 array ``(n, n_features)``. Extra columns are ignored.

        :class:`InputError` naming the column for a missing column, an unknown category, or a value that is not
        a number (numeric features) or a boolean (boolean features).
        """
        if not isinstance(records, pd.DataFrame):
            raise InputError(
                f"records must be a pandas DataFrame, got {type(records).__name__}", field="records"
            )
        missing = [n for n in self.schema.names() if n not in records.columns]
        if missing:
            raise InputError(f"missing column(s): {', '.join(map(repr, missing))}", field=missing[0])
        out = np.empty((len(records), self.schema.n_features), dtype=np.float64)
        for j, spec in enumerate(self.schema.features):
            col = records[spec.name]
            if isinstance(col, pd.DataFrame):
                raise InputError("duplicate column", field=spec.name)
            out[:, j] = _encode_column(spec, col)
        return out

    # ---------------------------------------------------------------- decode

    def decode(self, x: np.ndarray, *, strict: bool = True) -> pd.DataFrame:
        """A codec-space array ``(n, n_features)`` back to records with the original column names and dtypes.

        ``strict`` raises :class:`InputError` naming the feature for a value the column cannot hold exactly (a
        non-integer in an integer feature, an invalid category code, NaN in an integer column without missing
        values). ``strict=False`` never raises for any value: NaN stays missing, integers are rounded (a column
        that cannot hold the result becomes float64), and an invalid category code becomes
        :data:`UNKNOWN_CATEGORY`; this is how fuzzed inputs reach a model.
        """
        arr = np.asarray(x)
        d = self.schema.n_features
        if arr.ndim == 1 and arr.size == d:
            arr = arr.reshape(1, d)
        if arr.ndim < 2 or arr.shape[1:] not in (self.schema.sample_shape, (d,)):
            raise InputError(f"expected shape (n, {d}), got {arr.shape}", field="x")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
            raise InputError(f"expected a numeric array, got dtype {arr.dtype}", field="x")
        v = arr.reshape(len(arr), d).astype(np.float64, copy=False)
        columns: dict[str, Any] = {}
        with np.errstate(all="ignore"):
            for j, spec in enumerate(self.schema.features):
                columns[spec.name] = self._decode_column(spec, v[:, j], strict)
        index = pd.RangeIndex(len(v))
        return pd.DataFrame(
            {k: c.set_axis(index) if isinstance(c, pd.Series) else c for k, c in columns.items()}, index=index
        )

    def _decode_column(self, spec: FeatureSpec, v: np.ndarray, strict: bool) -> Any:
        if spec.kind is FeatureKind.CATEGORICAL:
            return self._decode_categorical(spec, v, strict)
        if spec.kind is FeatureKind.BOOLEAN:
            return _decode_boolean(spec, v, strict)
        return _decode_number(spec, v, strict)

    def _decode_categorical(self, spec: FeatureSpec, v: np.ndarray, strict: bool) -> Any:
        cats = spec.categories or ()
        nan = np.isnan(v)
        valid = np.isfinite(v) & (v == np.round(v)) & (v >= 0) & (v < len(cats))
        invalid = ~valid & ~nan
        if strict and invalid.any():
            raise InputError(
                f"invalid category code {float(v[invalid][0]):g} (expected an integer in 0..{len(cats) - 1})",
                field=spec.name,
            )
        codes = np.where(valid, v, 0).astype(np.int64)
        dtype = spec.dtype or "object"
        if dtype in ("category", "ordered-category"):
            order = list(spec.category_order or cats)
            if invalid.any():
                order.append(UNKNOWN_CATEGORY)
            labels = (
                np.asarray(cats, dtype=object)[codes] if cats else np.full(len(v), UNKNOWN_CATEGORY, object)
            )
            labels = np.where(invalid, UNKNOWN_CATEGORY, labels)
            return pd.Categorical(
                np.where(nan, None, labels), categories=order, ordered=dtype == "ordered-category"
            )
        typed = self._typed_categories[spec.name]
        if typed is not None and not invalid.any():
            out = typed[codes] if len(typed) else np.zeros(len(v), typed.dtype)
            if not nan.any():
                return pd.array(out, dtype=dtype) if _is_extension(dtype) else out
            if _is_extension(dtype):
                return pd.array(np.where(nan, None, out.astype(object)), dtype=dtype)
            if out.dtype.kind == "f":
                return np.where(nan, np.nan, out)
            if strict:
                raise InputError("missing value in a column that cannot hold one", field=spec.name)
            return np.where(nan, np.nan, out.astype(np.float64))
        labels = np.asarray(cats, dtype=object)[codes] if cats else np.full(len(v), UNKNOWN_CATEGORY, object)
        values = np.where(invalid, UNKNOWN_CATEGORY, labels)
        values = np.where(nan, np.nan, values)
        if typed is None and dtype != "object":
            try:
                return pd.array(values, dtype=dtype)
            except (TypeError, ValueError):
                pass
        return _objects(values)

    # ---------------------------------------------------------------- project

    def project(self, x: np.ndarray, *, original: np.ndarray | None = None) -> np.ndarray:
        """The nearest valid point: clipped to the bounds, discrete features rounded, immutable ones from
        ``original`` (see :meth:`Schema.project`)."""
        return self.schema.project(x, original=original)


def _objects(values: np.ndarray) -> Any:
    """An ``object`` column as is (a plain object ndarray would be inferred as ``str`` by pandas 3)."""
    return pd.Series(values, dtype=object, copy=False)


def _is_extension(dtype: str) -> bool:
    try:
        return isinstance(pd.api.types.pandas_dtype(dtype), pd.api.extensions.ExtensionDtype)
    except TypeError:
        return False


def _typed_categories(spec: FeatureSpec) -> np.ndarray | None:
    """Category values in the column's own numeric/bool dtype (a categorical made from an integer column), or
    ``None`` when the categories are kept as strings."""
    dtype_name = spec.dtype
    cats = list(spec.categories or ())
    if dtype_name is None or dtype_name in ("category", "ordered-category"):
        return None
    try:
        dtype = pd.api.types.pandas_dtype(dtype_name)
    except TypeError:
        return None
    try:
        if pd.api.types.is_bool_dtype(dtype):
            if not set(cats) <= {"True", "False"}:
                return None
            return np.array([c == "True" for c in cats], dtype=bool)
        if pd.api.types.is_numeric_dtype(dtype):
            numeric = pd.to_numeric(pd.Series(cats, dtype=object))
            np_dtype = dtype.numpy_dtype if isinstance(dtype, pd.api.extensions.ExtensionDtype) else dtype
            typed = numeric.to_numpy().astype(np_dtype)
            if [str(t) for t in typed.tolist()] != cats and not np.issubdtype(np_dtype, np.floating):
                return None
            return typed
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def _encode_column(spec: FeatureSpec, col: pd.Series) -> np.ndarray:
    mask = col.isna().to_numpy()
    if spec.kind is FeatureKind.CATEGORICAL:
        out = np.full(len(col), np.nan)
        strings = category_strings(col)
        codes = pd.Index(spec.categories or (), dtype=object).get_indexer(strings.astype(object))
        unknown = codes < 0
        if unknown.any():
            known = ", ".join(repr(c) for c in (spec.categories or ())[:10])
            raise InputError(
                f"unknown category {str(strings[unknown][0])!r} (known: {known or 'none'})", field=spec.name
            )
        out[~mask] = codes
        return out
    if spec.kind is FeatureKind.BOOLEAN:
        if pd.api.types.is_bool_dtype(col.dtype):
            return col.to_numpy(dtype=np.float64, na_value=np.nan)
        out = np.full(len(col), np.nan)
        for i, value in zip(np.flatnonzero(~mask), col.to_numpy(dtype=object)[~mask], strict=True):
            text = str(value).strip().lower()
            if text in _TRUE:
                out[i] = 1.0
            elif text in _FALSE:
                out[i] = 0.0
            else:
                raise InputError(f"not a boolean: {value!r}", field=spec.name)
        return out
    if pd.api.types.is_numeric_dtype(col.dtype) and not isinstance(col.dtype, pd.CategoricalDtype):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    numeric = pd.to_numeric(pd.Series(col.to_numpy(dtype=object)), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = np.isnan(numeric) & ~mask
    if bad.any():
        raise InputError(f"not a number: {col.to_numpy(dtype=object)[bad][0]!r}", field=spec.name)
    return numeric


def _decode_boolean(spec: FeatureSpec, v: np.ndarray, strict: bool) -> Any:
    nan = np.isnan(v)
    if strict and ((v != 0) & (v != 1) & ~nan).any():
        raise InputError(
            f"not a boolean code: {float(v[(v != 0) & (v != 1) & ~nan][0]):g} (expected 0 or 1)",
            field=spec.name,
        )
    flags = v > 0.5
    dtype = spec.dtype or "bool"
    if dtype == "object":
        return _objects(np.where(nan, np.nan, flags.astype(object)))
    if _is_extension(dtype):
        return pd.array(np.where(nan, None, flags.astype(object)), dtype=dtype)
    if nan.any():
        if strict:
            raise InputError("missing value in a boolean column that cannot hold one", field=spec.name)
        return _objects(np.where(nan, np.nan, flags.astype(object)))
    return flags


def _decode_number(spec: FeatureSpec, v: np.ndarray, strict: bool) -> Any:
    default = "float64" if spec.kind is FeatureKind.NUMERIC else "int64"
    try:
        dtype = pd.api.types.pandas_dtype(spec.dtype or default)
    except TypeError:
        dtype = np.dtype(default)
    if pd.api.types.is_float_dtype(dtype):
        if isinstance(dtype, pd.api.extensions.ExtensionDtype):
            return pd.array(np.where(np.isnan(v), None, v.astype(object)), dtype=dtype)
        return v.astype(dtype)
    if not pd.api.types.is_integer_dtype(dtype):
        if strict:
            try:
                return pd.array(v, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise InputError(f"cannot decode to {dtype}: {exc}", field=spec.name) from None
        return v
    nan = np.isnan(v)
    rounded = np.round(v)
    np_dtype = dtype.numpy_dtype if isinstance(dtype, pd.api.extensions.ExtensionDtype) else dtype
    info = np.iinfo(np_dtype)
    finite = np.isfinite(rounded)
    fits = finite & (rounded >= info.min) & (rounded <= info.max)
    if strict:
        bad = ~nan & (~fits | (rounded != v))
        if bad.any():
            raise InputError(f"not an integer of {np_dtype}: {float(v[bad][0]):g}", field=spec.name)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        if (fits | nan).all():
            return pd.array(np.where(nan, None, rounded.astype(object)), dtype=dtype)
        return rounded
    if nan.any():
        if strict:
            raise InputError("missing value in an integer column that cannot hold one", field=spec.name)
        return rounded
    if not fits.all():
        return rounded
    return rounded.astype(np_dtype)
