"""Request bodies of the guarded service: parsed strictly and validated against the dataset schema in one pass.

A predict body is JSON, either records as the user has them (tabular data)::

    {"instances": [{"age": 41, "city": "Lyon", "income": 52000.0}, ...]}

or rows already in the model's numeric space (arrays and images, flattened or in their sample shape)::

    {"inputs": [[0.0, 0.25, ...], ...]}

Parsing refuses what Python's ``json`` module would otherwise accept or crash on: ``NaN``/``Infinity`` literals,
duplicate keys, nesting deeper than the body's shape needs, and non-UTF-8 bytes. Validation names the offending
field (``instances[3].age``) and says what was expected, but never echoes a submitted value, so an error response
cannot reflect attacker-controlled text. Records are encoded to the codec space here (categories to codes,
booleans to 0/1), so the model is called once per batch on a float array. Hand-written rather than a pydantic model
because it is on every request: per field it is a dict lookup, a type test and two comparisons.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

try:  # the serve extra's JSON codec; without it, the stdlib parser does all the work
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

from garrison.core.errors import RequestError
from garrison.data.schema import FeatureKind, Schema

__all__ = ["RequestValidator", "ValidatedBatch", "parse_json"]

_MAX_DEPTH = 6  # {"instances": [{...}]} is 3 deep, {"inputs": [[[[...]]]]} of a (c, h, w) image is 5
_SMALL_BATCH = 512  # values; below this one pass over the Python lists beats a dozen numpy calls
# Where the text has a key: its closing quote, optional whitespace, a colon. Every key matches once; a match inside a
# string value can only add to the count, which sends the body to the strict parser, never lets a repeat through.
_KEY = re.compile(rb'"[ \t\r\n]*:')
_INVALID = object()
_EXACT_INT = 2**53  # integers beyond this do not survive float64: the general path decides


@dataclass(frozen=True)
class ValidatedBatch:
    """A validated request: ``x`` in the model's input space ``(n, *sample_shape)`` and its ``form`` (``"records"``
    or ``"inputs"``)."""

    x: np.ndarray
    form: str

    @property
    def n(self) -> int:
        return len(self.x)


def parse_json(body: bytes, *, max_depth: int = _MAX_DEPTH) -> Any:
    """Parse a request body; :class:`RequestError` (400) for anything but strict JSON of bounded depth."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the body is not UTF-8", status=400, code="encoding") from None
    if _too_deep(text, max_depth):
        raise RequestError(f"the body nests deeper than {max_depth} levels", status=400, code="depth")
    # orjson: ~0.5 µs where the hooked stdlib parser takes ~4; but it keeps a repeated key's last value
    if _orjson is not None:
        try:
            doc = _orjson.loads(body)
        except _orjson.JSONDecodeError:
            doc = _INVALID  # the stdlib parser below says why (NaN, a repeated key, ...) or refuses it too
        if doc is not _INVALID and len(_KEY.findall(body)) == _count_keys(doc):
            return doc  # every key in the text is in the document: none repeats
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except RequestError:
        raise
    except (ValueError, RecursionError):
        raise RequestError("the body is not valid JSON", status=400, code="json") from None


def _count_keys(value: Any) -> int:
    """Keys of the objects in a parsed document, never more than there are: a list that starts with a scalar is
    not searched (an object hidden later in it is missed, the counts then differ, and the strict parser decides)."""
    if type(value) is dict:
        return len(value) + sum(_count_keys(v) for v in value.values() if type(v) is dict or type(v) is list)
    if type(value) is list and value and (type(value[0]) is dict or type(value[0]) is list):
        return sum(_count_keys(v) for v in value)
    return 0


def _no_constants(name: str) -> Any:
    raise RequestError(f"{name} is not a JSON number", status=400, code="json")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise RequestError("an object repeats a key", status=400, code="json")
    return out


def _too_deep(text: str, limit: int) -> bool:
    """Bracket depth outside strings, without building anything (``json`` recurses, so check first)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


class RequestValidator:
    """Validates predict bodies against ``schema`` (see the module docstring); at most ``max_batch`` rows."""

    def __init__(self, schema: Schema, *, max_batch: int = 256, records: bool = True) -> None:
        if max_batch < 1:
            raise ValueError(f"`max_batch` must be >= 1, got {max_batch!r}")
        self.schema = schema
        self.max_batch = max_batch
        self.records = records
        self._fields = tuple(
            (
                f.name,
                f.kind,
                -math.inf if f.min is None or f.kind is FeatureKind.CATEGORICAL else float(f.min),
                math.inf if f.max is None or f.kind is FeatureKind.CATEGORICAL else float(f.max),
                {c: i for i, c in enumerate(f.categories or ())},
                f.nullable,
            )
            for f in schema.features
        )
        self._names = frozenset(schema.names())
        self._lower, self._upper = (b.reshape(-1) for b in schema.bounds())
        self._discrete = np.array([f.kind is not FeatureKind.NUMERIC for f in schema.features])
        self._nullable = np.array([f.nullable for f in schema.features])
        self._any_discrete = bool(self._discrete.any())
        self._all_nullable = bool(self._nullable.all())
        self._checks = tuple(
            (float(lo), float(hi), bool(discrete))
            for lo, hi, discrete in zip(self._lower, self._upper, self._discrete, strict=True)
        )

    def validate(self, doc: Any) -> ValidatedBatch:
        """The rows of a parsed body, or :class:`RequestError` (422) naming the first offending field."""
        if not isinstance(doc, dict):
            raise RequestError("the body must be a JSON object", code="body")
        keys = set(doc)
        if keys == {"instances"} and self.records:
            return ValidatedBatch(self._records(doc["instances"]), "records")
        if keys == {"inputs"}:
            return ValidatedBatch(self._inputs(doc["inputs"]), "inputs")
        expected = '"instances" (records) or "inputs" (numeric rows)' if self.records else '"inputs"'
        raise RequestError(f"the body must hold exactly one of {expected}", code="body")

    # ------------------------------------------------------------------------------------------ records

    def _records(self, rows: Any) -> np.ndarray:
        self._check_batch(rows, "instances")
        out = np.empty((len(rows), len(self._fields)), dtype=np.float64)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(
                    "must be an object of feature values", field=f"instances[{i}]", code="type"
                )
            if len(row) != len(self._fields) or not self._names.issuperset(row):
                if not self._names.issuperset(row):  # the unknown name is attacker-chosen: not echoed
                    raise RequestError("holds a field that is not a feature of the model", field=f"instances[{i}]",
                                       code="unknown_field")  # fmt: skip
                missing = next(f[0] for f in self._fields if f[0] not in row)
                raise RequestError("is required", field=f"instances[{i}].{missing}", code="missing")
            for j, (name, kind, lo, hi, codes, nullable) in enumerate(self._fields):
                out[i, j] = _value(row[name], kind, lo, hi, codes, nullable, i, name)
        return out.reshape(len(rows), *self.schema.sample_shape)

    # ------------------------------------------------------------------------------------------ inputs

    def _inputs(self, rows: Any) -> np.ndarray:
        self._check_batch(rows, "inputs")
        if len(rows) * len(self._checks) <= _SMALL_BATCH:
            x = self._small_inputs(rows)
            if x is not None:
                return x
        if not _numbers_only(rows):  # numpy would read "1.5" and true as numbers
            raise RequestError("must hold only numbers (or null)", field="inputs", code="type")
        try:
            x = np.array(rows, dtype=np.float64)
        except OverflowError:
            raise RequestError(
                "holds an integer too large for a number", field="inputs", code="value"
            ) from None
        except (ValueError, TypeError):
            raise RequestError(
                "must be a list of numeric rows of one shape", field="inputs", code="type"
            ) from None
        shape, d = self.schema.sample_shape, self.schema.n_features
        if x.shape[1:] != shape and x.shape[1:] != (d,):
            want = ", ".join(map(str, shape))
            raise RequestError(f"each row must have shape ({want}) or ({d},)", field="inputs", code="shape")
        flat = x.reshape(len(x), d)
        with np.errstate(invalid="ignore"):
            bad = (flat < self._lower) | (flat > self._upper) | np.isinf(flat)  # NaN compares false
            if self._any_discrete:
                bad |= self._discrete & (flat != np.floor(flat)) & ~np.isnan(flat)
            if not self._all_nullable:
                bad |= np.isnan(flat) & ~self._nullable
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            f = self.schema.features[j]
            raise RequestError(
                _expected(f.kind, *f.bounds(), f.nullable), field=f"inputs[{i}].{f.name}", code="value"
            )
        return flat.reshape(len(x), *shape)

    def _small_inputs(self, rows: list[Any]) -> np.ndarray | None:
        """A small batch of flat rows in one pass over the Python lists, when every value is a finite number within
        its feature's bounds (the common request: the per-call overhead of a dozen numpy operations is most of
        the cost there). ``None`` for anything else (nulls, nested rows, a wrong value): the general path then
        decides, and names the offending field."""
        checks = self._checks
        width = len(checks)
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
            for v, (lo, hi, discrete) in zip(row, checks):  # noqa: B905 (lengths checked above)
                kind = type(v)
                if kind is float:
                    if not lo <= v <= hi or v - v != 0.0 or (discrete and not v.is_integer()):  # NaN/inf fail
                        return None
                elif kind is int:
                    if not (-_EXACT_INT <= v <= _EXACT_INT and lo <= v <= hi):
                        return None
                else:
                    return None
        return np.array(rows, dtype=np.float64).reshape(len(rows), *self.schema.sample_shape)

    def _check_batch(self, rows: Any, name: str) -> None:
        if not isinstance(rows, list):
            raise RequestError("must be a list of rows", field=name, code="type")
        if not rows:
            raise RequestError("must hold at least one row", field=name, code="empty")
        if len(rows) > self.max_batch:
            raise RequestError(f"holds more than {self.max_batch} rows", field=name, code="batch_size")


def _value(v: Any, kind: FeatureKind, lo: float, hi: float, codes: dict[str, int], nullable: bool, i: int,
           name: str) -> float:  # fmt: skip
    if v is None:
        if nullable:
            return math.nan
        raise RequestError("must not be null", field=f"instances[{i}].{name}", code="null")
    if kind is FeatureKind.CATEGORICAL:
        code = codes.get(v) if isinstance(v, str) else None
        if code is None:
            raise RequestError(f"must be one of the {len(codes)} known categories", field=f"instances[{i}].{name}",
                               code="category")  # fmt: skip
        return float(code)
    if kind is FeatureKind.BOOLEAN:
        if isinstance(v, bool):
            return 1.0 if v else 0.0
        raise RequestError("must be true or false", field=f"instances[{i}].{name}", code="type")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise RequestError("must be a number", field=f"instances[{i}].{name}", code="type")
    try:
        f = float(v)
    except OverflowError:  # an integer too large for a float
        f = math.inf
    if not math.isfinite(f) or not lo <= f <= hi or (kind is FeatureKind.INTEGER and not f.is_integer()):
        raise RequestError(_expected(kind, lo, hi, False), field=f"instances[{i}].{name}", code="value")
    return f


def _expected(kind: FeatureKind, lo: float, hi: float, nullable: bool) -> str:
    what = {FeatureKind.INTEGER: "an integer", FeatureKind.CATEGORICAL: "a category code",
            FeatureKind.BOOLEAN: "0 or 1"}.get(kind, "a finite number")  # fmt: skip
    if math.isfinite(lo) or math.isfinite(hi):
        what += f" in [{lo:g}, {hi:g}]"
    return f"must be {what}" + (" or null" if nullable else "")


def _numbers_only(value: Any) -> bool:
    """Whether a nested list holds only ints, floats and None (not booleans, strings or objects)."""
    if type(value) is list:
        return (
            all(_numbers_only(v) for v in value)
            if value and type(value[0]) is list
            else all(type(v) is float or type(v) is int or v is None for v in value)
        )
    return False
