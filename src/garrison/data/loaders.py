"""Loading datasets from CSV, Parquet and ``.npz`` files into :class:`Dataset` objects.

Files are untrusted input: the format is told from the content, ``.npz`` files load without pickle, and every
problem becomes a :class:`DataError` naming the file and the field.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from garrison.core.errors import DataError, InputError
from garrison.data.codec import FeatureCodec
from garrison.data.dataset import Dataset
from garrison.data.digest import file_sha256
from garrison.data.schema import Schema, infer_array_schema, infer_schema

if TYPE_CHECKING:
    from garrison.core.config import DataSourceConfig, FeatureOverride

__all__ = ["FORMATS", "LABEL_COLUMNS", "detect_format", "load_dataset", "load_datasets"]

FORMATS = ("auto", "csv", "parquet", "npz")
LABEL_COLUMNS = ("label", "target", "y", "class")
"""Column names taken as the label when none is given, in this order."""

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class _Raw:
    """A file read but not yet encoded."""

    path: Path
    sha256: str
    format: str
    y: np.ndarray
    frame: pd.DataFrame | None = None
    x: np.ndarray | None = None
    label: str | None = None


def detect_format(path: str | Path) -> str:
    """``parquet``, ``npz`` or ``csv`` from the file's first bytes; the extension only breaks a tie."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", path=p) from None
    if head == _PARQUET_MAGIC:
        return "parquet"
    if head in _ZIP_MAGICS:
        return "npz"
    if not head:
        suffix = p.suffix.lower().lstrip(".")
        return {"parquet": "parquet", "pq": "parquet", "npz": "npz"}.get(suffix, "csv")
    return "csv"


def _read_frame(path: Path, fmt: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        # parser warnings about odd files are not the caller's business; errors are
        warnings.simplefilter("ignore")
        try:
            if fmt == "csv":
                return pd.read_csv(path, low_memory=False)
            return pd.read_parquet(path)
        except pd.errors.EmptyDataError:
            raise DataError("the file is empty", path=path) from None
        except UnicodeDecodeError:
            raise DataError("the file is not UTF-8 text", path=path) from None
        except MemoryError:
            raise
        except Exception as exc:  # parsers of untrusted bytes raise anything; all of it means "unreadable"
            message = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise DataError(
                f"cannot parse {fmt}: {exc.__class__.__name__}: {message}".rstrip(": "), path=path
            ) from None


def _pick_label(frame: pd.DataFrame, label: str | None, path: Path) -> str:
    columns = [str(c) for c in frame.columns]
    if label is not None:
        if label not in columns:
            raise DataError(
                f"label column not found (columns: {', '.join(map(repr, columns[:10]))})",
                path=path,
                field=label,
            )
        return label
    for candidate in LABEL_COLUMNS:
        if candidate in columns:
            return candidate
    lowered = {c.lower(): c for c in columns}
    for candidate in LABEL_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    raise DataError(
        f"no label column; name it with `label:` or call it one of {', '.join(LABEL_COLUMNS)}",
        path=path,
        field="label",
    )


def _check_labels(y: np.ndarray, path: Path, field: str) -> np.ndarray:
    if y.dtype.kind in "fc" and np.isnan(y).any():
        raise DataError("missing (NaN) labels", path=path, field=field)
    if y.dtype.kind == "O" and pd.isna(y).any():
        raise DataError("missing labels", path=path, field=field)
    if y.dtype.kind == "f" and np.isinf(y).any():
        raise DataError("infinite labels", path=path, field=field)
    if y.dtype.kind not in "biufUSO":
        raise DataError(f"unsupported label dtype {y.dtype}", path=path, field=field)
    return y


def _read_tabular(path: Path, fmt: str, label: str | None) -> tuple[pd.DataFrame, np.ndarray, str]:
    frame = _read_frame(path, fmt)
    if not all(isinstance(c, str) for c in frame.columns):
        frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) != len(frame.columns):
        dup = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
        raise DataError("duplicate column name", path=path, field=dup[0])
    if len(frame) == 0:
        raise DataError("the dataset has no rows", path=path)
    label_col = _pick_label(frame, label, path)
    y = _check_labels(frame[label_col].to_numpy(), path, label_col)
    if y.dtype.kind == "O" and all(isinstance(v, str) for v in y):
        y = y.astype(str)
    records = frame.drop(columns=[label_col]).reset_index(drop=True)
    if records.shape[1] == 0:
        raise DataError("the dataset has no feature columns besides the label", path=path, field=label_col)
    for col in records.columns:
        series = records[col]
        if (
            pd.api.types.is_float_dtype(series.dtype)
            and np.isinf(series.to_numpy(dtype=np.float64, na_value=np.nan)).any()
        ):
            raise DataError("infinite values", path=path, field=col)
    return records, y, label_col


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # an open handle of our own: np.load leaks the one it opens when the archive is corrupt
            with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
                if not isinstance(npz, np.lib.npyio.NpzFile):
                    raise DataError("not an .npz archive", path=path)
                names = set(npz.files)
                for needed in ("x", "y"):
                    if needed not in names:
                        raise DataError(
                            f"array {needed!r} not found (arrays: {', '.join(sorted(names)) or 'none'})",
                            path=path,
                            field=needed,
                        )
                x = npz["x"]
                y = npz["y"]
    except DataError:
        raise
    except MemoryError:
        raise
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise DataError(
                "object arrays are refused (loading them would run pickle code)", path=path
            ) from None
        if "allow_pickle" in str(exc):
            raise DataError("not an .npz archive (pickled data is refused)", path=path) from None
        raise DataError(
            f"cannot read .npz: {str(exc).splitlines()[0][:200] if str(exc) else 'ValueError'}", path=path
        ) from None
    except Exception as exc:  # zip, zlib and npy header errors of untrusted bytes
        raise DataError(f"cannot read .npz: {exc.__class__.__name__}", path=path) from None
    if x.ndim < 2:
        raise DataError(f"expected shape (n, ...), got {x.shape}", path=path, field="x")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise DataError(f"expected a numeric array, got dtype {x.dtype}", path=path, field="x")
    if x.dtype.fields is not None:
        raise DataError("structured arrays are not supported", path=path, field="x")
    if len(x) == 0:
        raise DataError("the dataset has no rows", path=path, field="x")
    if math.prod(x.shape[1:]) == 0:
        raise DataError(f"the samples have no features (shape {x.shape})", path=path, field="x")
    if np.issubdtype(x.dtype, np.floating) and np.isinf(x).any():
        raise DataError("infinite values", path=path, field="x")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"expected labels of shape (n,), got {y.shape}", path=path, field="y")
    if len(y) != len(x):
        raise DataError(f"{len(y)} labels for {len(x)} samples", path=path, field="y")
    if y.dtype.fields is not None:
        raise DataError("structured arrays are not supported", path=path, field="y")
    return x, _check_labels(y, path, "y")


def _read(path: str | Path, *, label: str | None, format: str) -> _Raw:
    p = Path(path)
    if format not in FORMATS:
        raise DataError(
            f"unknown format {format!r} (expected one of {', '.join(FORMATS)})", path=p, field="format"
        )
    if not p.exists():
        raise DataError("file not found", path=p)
    if not p.is_file():
        raise DataError("not a regular file", path=p)
    fmt = detect_format(p) if format == "auto" else format
    try:
        sha = file_sha256(p)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc.__class__.__name__}", path=p) from None
    if fmt == "npz":
        x, y = _read_npz(p)
        return _Raw(p, sha, fmt, y, x=x)
    frame, y, label_col = _read_tabular(p, fmt, label)
    return _Raw(p, sha, fmt, y, frame=frame, label=label_col)


def _infer(raws: list[_Raw], overrides: Mapping[str, FeatureOverride] | None) -> Schema:
    tabular = [r for r in raws if r.frame is not None]
    if tabular and len(tabular) != len(raws):
        arrays = next(r for r in raws if r.frame is None)
        raise DataError(f"cannot mix tabular and array data (with {tabular[0].path})", path=arrays.path)
    if tabular:
        first = tabular[0]
        assert first.frame is not None
        for r in tabular[1:]:
            assert r.frame is not None
            _same_columns(list(first.frame.columns), list(r.frame.columns), first.path, r.path)
        order = list(first.frame.columns)
        frames = [r.frame[order] for r in tabular if r.frame is not None]
        categorical = {name for name, ov in (overrides or {}).items() if ov.categorical}
        try:
            schema = infer_schema(*frames, categorical=categorical)
        except DataError as exc:
            raise DataError(exc.reason, path=first.path, field=exc.field) from None
    else:
        first_x = raws[0].x
        assert first_x is not None
        for r in raws[1:]:
            assert r.x is not None
            if r.x.shape[1:] != first_x.shape[1:]:
                raise DataError(
                    f"sample shape {r.x.shape[1:]} differs from {first_x.shape[1:]} of {raws[0].path}",
                    path=r.path,
                    field="x",
                )
        schema = infer_array_schema(*[r.x for r in raws if r.x is not None])
    return schema.with_overrides(overrides) if overrides else schema


def _same_columns(expected: list[str], got: list[str], first: Path, path: Path) -> None:
    if set(expected) == set(got):
        return
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(map(repr, missing[:10]))}")
    if extra:
        parts.append(f"unexpected {', '.join(map(repr, extra[:10]))}")
    raise DataError(
        f"columns differ from {first}: {'; '.join(parts)}", path=path, field=(missing or extra)[0]
    )


def _build(raw: _Raw, schema: Schema, name: str | None, codec: FeatureCodec | None = None) -> Dataset:
    ds_name = name or raw.path.stem
    if raw.frame is not None:
        _same_columns(list(schema.names()), list(raw.frame.columns), Path("the schema"), raw.path)
        records = raw.frame[list(schema.names())]
        codec = codec if codec is not None else FeatureCodec(schema)
        try:
            x = codec.encode(records)
        except InputError as exc:
            raise DataError(exc.reason, path=raw.path, field=exc.field) from None
        return Dataset(
            ds_name,
            x,
            raw.y,
            schema,
            codec=codec,
            records=records,
            path=raw.path,
            sha256=raw.sha256,
            label=raw.label,
        )
    assert raw.x is not None
    if raw.x.shape[1:] != schema.sample_shape:
        raise DataError(
            f"sample shape {raw.x.shape[1:]} differs from the schema's {schema.sample_shape}",
            path=raw.path,
            field="x",
        )
    x = raw.x if np.issubdtype(raw.x.dtype, np.floating) else raw.x.astype(np.float64)
    return Dataset(ds_name, x, raw.y, schema, path=raw.path, sha256=raw.sha256, label="y")


def load_dataset(
    path: str | Path,
    *,
    label: str | None = None,
    format: str = "auto",
    name: str | None = None,
    schema: Schema | None = None,
    overrides: Mapping[str, FeatureOverride] | None = None,
) -> Dataset:
    """Load a CSV, Parquet or ``.npz`` file (arrays ``x`` and ``y``) as a :class:`Dataset`.

    The format is told by content unless ``format`` forces one. The label column is ``label`` or the first
    column called ``label``, ``target``, ``y`` or ``class``. With ``schema`` the file is encoded with it (test
    data with the training schema); otherwise the schema is inferred from the file. ``overrides`` (the
    ``data.features`` section of a config) are applied either way. Every problem is a :class:`DataError` naming
    the file and field (a bad override: :class:`ConfigError`).
    """
    raw = _read(path, label=label, format=format)
    if schema is None:
        schema = _infer([raw], overrides)
    elif overrides:
        schema = schema.with_overrides(overrides)
    return _build(raw, schema, name)


def load_datasets(
    sources: Mapping[str, DataSourceConfig],
    *,
    base_dir: Path = Path(),
    overrides: Mapping[str, FeatureOverride] | None = None,
) -> dict[str, Dataset]:
    """Load several sources (e.g. ``train`` and ``test``) with ONE schema and codec inferred from all of them.

    Categories seen in any file encode in every file. All files must have the same columns (tabular) or the
    same sample shape (arrays); otherwise :class:`DataError` names the file that differs.
    """
    raws: dict[str, _Raw] = {}
    for role, src in sources.items():
        p = Path(src.path)
        raws[role] = _read(p if p.is_absolute() else base_dir / p, label=src.label, format=src.format)
    if not raws:
        return {}
    schema = _infer(list(raws.values()), overrides)
    codec = FeatureCodec(schema)  # one codec object shared by all the datasets
    return {role: _build(raw, schema, None, codec) for role, raw in raws.items()}
