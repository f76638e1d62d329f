"""Declarative validation of YAML documents that keeps line numbers.

A document is described by :class:`Spec` objects; :func:`validate` walks the parsed YAML (ruamel.yaml keeps the
line of every key) and returns plain Python values with defaults filled in, raising :class:`ConfigError` that names
the file, the dotted key and the line for the first problem. Every error message has one shape:
"`key` must be <constraint>, got <value>".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import ConfigError

__all__ = ["Spec", "line_of", "load_yaml", "validate"]

_MISSING = object()


@dataclass(frozen=True)
class Spec:
    """The expected shape of one YAML value.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``map`` (fixed keys in ``fields``),
    ``dict`` (free keys, each value checked by ``values``) or ``any``.
    """

    kind: str
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    fields: Mapping[str, Spec] = field(default_factory=dict)
    values: Spec | None = None
    items: Spec | None = None
    secret: bool = False
    doc: str = ""
    nullable: bool = False


def load_yaml(text: str, *, path: str | Path | None = None) -> Any:
    """Parse YAML keeping line numbers (ruamel round-trip types); YAML errors become ConfigError with a line."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", path=path, line=line) from None
    except YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from None


def line_of(node: Any, key: Any) -> int | None:
    """1-based line of ``key`` (a mapping key or list index) in a parsed YAML node, when known."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if isinstance(key, int):
            return int(lc.item(key)[0]) + 1
        return int(lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(
    node: Any, spec: Spec, *, path: str | Path | None = None, key: str = "", line: int | None = None
) -> Any:
    """Check ``node`` against ``spec`` and return plain Python data (dicts, lists, scalars) with defaults."""

    def fail(message: str, at_line: int | None = line, at_key: str = key) -> ConfigError:
        return ConfigError(message, path=path, key=at_key or None, line=at_line)

    name = f"`{key}`" if key else "the document"
    if node is None:  # `key:` with nothing after it
        if spec.nullable:
            return None
        if spec.required:
            raise fail(f"{name} must not be empty")
        if spec.kind == "map":  # an empty section: its own required keys still apply
            return validate({}, spec, path=path, key=key, line=line)
        return _default(spec)
    kind = spec.kind
    if kind == "any":
        return _plain(node)
    if kind in ("map", "dict"):
        if not isinstance(node, Mapping):
            raise fail(f"{name} must be a mapping, got {_describe(_plain(node))}")
        out: dict[str, Any] = {}
        for k in node:
            if not isinstance(k, str):
                raise fail(f"keys of {name} must be strings, got {_describe(k)}", line_of(node, k))
        if kind == "map":
            for k in node:
                if k not in spec.fields:
                    known = ", ".join(sorted(spec.fields))
                    sub = f"{key}.{k}" if key else k
                    raise fail(f"unknown key (expected one of: {known})", line_of(node, k), sub)
            for k, sub_spec in spec.fields.items():
                sub = f"{key}.{k}" if key else k
                if k in node:
                    out[k] = validate(node[k], sub_spec, path=path, key=sub, line=line_of(node, k))
                elif sub_spec.required:
                    raise fail(f"`{sub}` is required", line, sub)
                else:
                    out[k] = _default(sub_spec)
            return out
        assert spec.values is not None
        for k in node:
            sub = f"{key}.{k}" if key else k
            out[k] = validate(node[k], spec.values, path=path, key=sub, line=line_of(node, k))
        return out
    if kind == "list":
        if isinstance(node, str) or not isinstance(node, list | tuple):
            raise fail(f"{name} must be a list, got {_describe(_plain(node))}")
        assert spec.items is not None
        return [
            validate(v, spec.items, path=path, key=f"{key}[{i}]", line=line_of(node, i) or line)
            for i, v in enumerate(node)
        ]
    value = _scalar(node, kind, fail, name)
    if spec.choices is not None and value not in spec.choices:
        options = ", ".join(str(c) for c in spec.choices)
        raise fail(f"{name} must be one of {options}, got {_describe(value)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.gt is not None and not value > spec.gt:
            raise fail(f"{name} must be > {spec.gt:g}, got {value!r}")
        if spec.ge is not None and not value >= spec.ge:
            raise fail(f"{name} must be >= {spec.ge:g}, got {value!r}")
        if spec.le is not None and not value <= spec.le:
            raise fail(f"{name} must be <= {spec.le:g}, got {value!r}")
    return value


def _scalar(node: Any, kind: str, fail: Any, name: str) -> Any:
    if kind == "str":
        if isinstance(node, bool) or not isinstance(node, str | int | float):
            raise fail(f"{name} must be a string, got {_describe(_plain(node))}")
        return str(node)
    if kind == "bool":
        if not isinstance(node, bool):
            raise fail(f"{name} must be true or false, got {_describe(_plain(node))}")
        return bool(node)
    if kind == "int":
        if isinstance(node, bool) or not isinstance(node, int):
            raise fail(f"{name} must be an integer, got {_describe(_plain(node))}")
        return int(node)
    if kind == "float":
        if isinstance(node, bool) or not isinstance(node, int | float):
            raise fail(f"{name} must be a number, got {_describe(_plain(node))}")
        value = float(node)
        if not math.isfinite(value):
            raise fail(f"{name} must be a finite number, got {value!r}")
        return value
    raise AssertionError(f"unknown spec kind {kind}")


def _default(spec: Spec) -> Any:
    if spec.kind == "map":
        if spec.nullable:
            return None
        return {k: _default(s) for k, s in spec.fields.items()} if spec.default is None else spec.default
    if spec.default is _MISSING:
        return None
    if isinstance(spec.default, list | dict):
        return type(spec.default)(spec.default)
    return spec.default


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    if isinstance(node, bool | int | float | str) or node is None:
        return node if not isinstance(node, str) else str(node)
    return str(node)
