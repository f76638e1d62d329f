"""Conversion of report values (evidence, figure tables, config) into plain JSON data."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

from garrison.core.errors import ReportError

__all__ = ["jsonable"]


def jsonable(value: Any, path: str = "$") -> Any:
    """``value`` as plain JSON data: non-finite floats become ``None``, tuples and sets lists, numpy values their
    Python equivalents, mapping keys strings. Anything else is a :class:`ReportError` naming its JSON path."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value, path)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v, f"{path}[]") for v in value), key=repr)
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return jsonable(value.tolist(), path)
    raise ReportError(f"{path}: a value of type {type(value).__name__} cannot be written to a report")
