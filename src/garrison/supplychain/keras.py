"""Keras model configs: Lambda layers, serialised functions, custom objects and ``safe_mode`` bypasses.

What Keras runs when it loads a config (``keras.saving.serialization_lib.deserialize_keras_object``):

* ``{"class_name": "__lambda__", "config": {"value": <base64 marshal>}}`` and ``Lambda`` layers (Keras 3, and
  the Keras 2 ``"function": [<base64 bytecode>, ...]`` form): Python bytecode, rebuilt with ``marshal`` and run.
  ``safe_mode`` refuses ``__lambda__`` in ``.keras`` files only; the legacy ``.h5`` path (CVE-2025-9905) and
  Keras < 2.13 (CVE-2024-3660) run it anyway.
* ``{"module": M, "class_name": "function", "config": NAME}``: returns ``M.NAME`` and the layer calls it (e.g.
  as an activation). Keras < 3.9 imports *any* module here (CVE-2025-1550); later versions only ``keras*``
  packages, where a few functions are dangerous themselves: ``keras.utils.get_file`` (downloads and writes
  files, CVE-2025-8747) and ``keras.config.enable_unsafe_deserialization`` (turns ``safe_mode`` off for the rest
  of the load, CVE-2025-9906). ``"module": "builtins"`` is a legitimate way to name Keras' own built-in
  functions by name, but naming a Python builtin (``exec``, ``eval``, ``getattr``...) there is not.
* ``{"module": M, "class_name": C}`` outside the Keras namespaces: a custom object; loading imports ``M`` and
  calls ``C.from_config``.

Findings (GAR-SC-005), one per file, listing every issue:

* critical: Lambda layers and ``__lambda__`` objects; functions named from outside the Keras namespaces;
  dangerous Python modules (os, subprocess, builtins exec/eval/getattr, importlib, ...); dangerous Keras
  functions (``get_file``, ``enable_unsafe_deserialization``, ``load_model``...); dunder names
  (``__builtins__``, ``__import__``...) in ``class_name``/``module``/``registered_name``/function names.
* high: custom classes from modules outside the Keras namespaces (they run their own ``from_config``).

Scanners: :func:`scan_keras_zip` (Keras v3 ``.keras`` zip); the legacy ``.h5`` ``model_config`` attribute is
read by :mod:`garrison.supplychain.hdf5`, and plain JSON configs by the JSON scanner, both through
:func:`analyze_keras_config` and :func:`report_keras_issues`.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from garrison.core.rules import SC_KERAS
from garrison.core.severity import Severity
from garrison.supplychain.archives import ZipFormatError, iter_zip_members, read_zip
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext

__all__ = [
    "KerasIssue",
    "analyze_keras_config",
    "looks_like_keras_config",
    "parse_json_bounded",
    "report_keras_issues",
    "scan_keras_zip",
]

KERAS_NAMESPACES = frozenset({"keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp", "tensorflow"})
# Names Keras configs use for their own special objects; any other dunder name is suspicious.
_KERAS_SPECIALS = frozenset(
    {
        "__keras_tensor__",
        "__tensor__",
        "__numpy__",
        "__bytes__",
        "__ellipsis__",
        "__slice__",
        "__typespec__",
        "__lambda__",
        "__main__",
    }
)
# Functions inside the Keras (or TensorFlow) namespaces that do harm when a config can name and call them.
_DANGEROUS_KERAS_NAMES = frozenset(
    {
        "get_file",
        "enable_unsafe_deserialization",
        "disable_unsafe_deserialization",
        "load_model",
        "model_from_json",
        "model_from_yaml",
        "model_from_config",
        "deserialize_keras_object",
        "func_load",
        "load_weights",
        "load_model_from_hdf5",
        "set_random_seed",
        "py_function",
        "numpy_function",
        "py_func",
        "write_file",
        "read_file",
        "GFile",
        "save_model",
    }
)
_DANGEROUS_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "importlib",
        "runpy",
        "shutil",
        "socket",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib",
        "marshal",
        "types",
        "code",
        "codeop",
        "ctypes",
        "pty",
        "platform",
        "webbrowser",
        "urllib",
        "urllib2",
        "http",
        "requests",
        "httpx",
        "multiprocessing",
        "threading",
        "signal",
        "tempfile",
        "io",
        "pathlib",
        "glob",
        "commands",
        "timeit",
        "cProfile",
        "profile",
        "pdb",
        "bdb",
        "pydoc",
        "pkgutil",
        "zipimport",
        "operator",
        "_operator",
        "functools",
        "inspect",
        "asyncio",
        "pip",
        "setuptools",
        "__builtin__",
        "_io",
        "_posixsubprocess",
        "fcntl",
        "resource",
        "gc",
        "sysconfig",
    }
)
_DANGEROUS_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "memoryview",
        "__build_class__",
        "__loader__",
    }
)
_PYTHON_BUILTINS = frozenset(dir(builtins))

MAX_CONFIG_BYTES = 64 * 2**20
_MAX_NODES = 5_000_000
_MAX_LAMBDA_BYTES = 16 * 2**20
_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{1,63}")


@dataclass(frozen=True, slots=True)
class KerasIssue:
    """One thing in a Keras config that runs code on load. ``path`` is the JSON path of the object."""

    severity: Severity
    path: str
    message: str


def parse_json_bounded(data: bytes | memoryview, *, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """Parse JSON bytes; ``ValueError`` (with a one-line reason) on anything that is not JSON within bounds."""
    if len(data) > max_bytes:
        raise ValueError(f"JSON document of {len(data)} bytes exceeds the {max_bytes}-byte bound")
    try:
        text = bytes(data).decode("utf-8-sig")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def looks_like_keras_config(obj: Any) -> bool:
    """Whether a parsed JSON document is a Keras model/layer config (``model.to_json()``, ``config.json`` of a
    ``.keras`` file, ``model_config`` of an ``.h5`` file)."""
    return isinstance(obj, dict) and isinstance(obj.get("class_name"), str) and "config" in obj


def analyze_keras_config(config: Any) -> list[KerasIssue]:
    """Every construct in a Keras config that makes loading it run code (see the module docstring).

    Walks the whole document iteratively (no recursion limit to hit). Raises ``ValueError`` only when the
    document has more than 5 million values.
    """
    issues: list[KerasIssue] = []
    handled: set[int] = set()
    for path, node in _walk(config):
        if isinstance(node, str):
            if node == "enable_unsafe_deserialization":
                issues.append(
                    KerasIssue(
                        Severity.CRITICAL,
                        path,
                        "names enable_unsafe_deserialization, which "
                        "turns safe_mode off for the rest of the load",
                    )
                )
            continue
        if not isinstance(node, dict) or id(node) in handled:
            continue
        class_name = node.get("class_name")
        if class_name == "Lambda":
            issues.append(_lambda_issue(path, node, handled))
        elif class_name == "__lambda__":
            issues.append(
                KerasIssue(Severity.CRITICAL, path, f"serialised Python lambda ({_bytecode_summary(node)})")
            )
        elif node.get("function_type") == "lambda" and "function" in node:
            # A Keras 2 Lambda config met without its wrapper (e.g. a layer config saved on its own).
            issues.append(
                KerasIssue(
                    Severity.CRITICAL,
                    path,
                    f"Lambda layer config with Python bytecode ({_function_form(node.get('function'))})",
                )
            )
        issues.extend(_reference_issues(path, node))
    return issues


def _walk(root: Any) -> Iterator[tuple[str, Any]]:
    stack: list[tuple[str, Any]] = [("$", root)]
    seen = 0
    while stack:
        path, node = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            raise ValueError(f"Keras config has more than {_MAX_NODES} JSON values")
        yield path, node
        if isinstance(node, dict):
            for key, value in reversed(list(node.items())):
                if isinstance(value, dict | list | str):
                    stack.append((f"{path}.{key}", value))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                if isinstance(node[i], dict | list | str):
                    stack.append((f"{path}[{i}]", node[i]))


def _lambda_issue(path: str, node: dict[str, Any], handled: set[int]) -> KerasIssue:
    inner = node.get("config")
    name = node.get("name") or (inner.get("name") if isinstance(inner, dict) else None) or "?"
    function = inner.get("function") if isinstance(inner, dict) else None
    if isinstance(inner, dict):
        handled.add(id(inner))
    if isinstance(function, dict):
        handled.add(id(function))
    form = _function_form(function)
    return KerasIssue(Severity.CRITICAL, path, f"Lambda layer '{name}' ({form})")


def _function_form(function: Any) -> str:
    if isinstance(function, dict):
        if function.get("class_name") == "__lambda__":
            return _bytecode_summary(function)
        if function.get("class_name") == "function":
            return f"calls function {function.get('module') or '?'}.{function.get('config')}"
        return f"calls object {function.get('module') or '?'}.{function.get('class_name')}"
    if isinstance(function, list) and function and isinstance(function[0], str):
        return _bytecode_summary({"config": {"code": function[0]}})
    if isinstance(function, str):
        return f"calls function named {function!r}"
    return "function not serialised in a known form"


def _bytecode_summary(node: dict[str, Any]) -> str:
    # Keras 3 Lambda layers write {"code": ...}; serialization_lib writes {"value": [code, defaults, closure]}.
    inner = node.get("config")
    value = (inner.get("code") or inner.get("value")) if isinstance(inner, dict) else None
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, str):
        return "Python bytecode"
    try:
        raw = base64.b64decode(value[: _MAX_LAMBDA_BYTES * 2], validate=False)
    except (binascii.Error, ValueError):
        return f"bytecode that is not valid base64 ({len(value)} chars)"
    names: list[str] = []
    for match in _IDENT.finditer(raw[:_MAX_LAMBDA_BYTES]):
        name = match.group().decode("ascii")
        if name not in names:
            names.append(name)
        if len(names) >= 12:
            break
    return f"marshalled Python bytecode, {len(raw)} bytes; names: {', '.join(names) or 'none'}"


def _reference_issues(path: str, node: dict[str, Any]) -> list[KerasIssue]:
    class_name = node.get("class_name")
    module = node.get("module")
    registered = node.get("registered_name")
    inner = node.get("config")
    is_function = class_name == "function"
    name = inner if is_function and isinstance(inner, str) else class_name
    out: list[KerasIssue] = []
    for value in (class_name, module, registered, name):
        if isinstance(value, str) and "__" in value and value not in _KERAS_SPECIALS:
            out.append(KerasIssue(Severity.CRITICAL, path, f"references Python internals ({value!r})"))
            return out
    if not isinstance(module, str) or not isinstance(name, str):
        return out
    top = module.split(".", 1)[0]
    target = f"{module}.{name}"
    if module == "builtins" or top == "__builtin__":
        if name in _DANGEROUS_BUILTINS or (
            not is_function and name in _PYTHON_BUILTINS and name[:1].islower()
        ):
            out.append(KerasIssue(Severity.CRITICAL, path, f"references the Python builtin {name!r}"))
    elif top in _DANGEROUS_MODULES:
        out.append(KerasIssue(Severity.CRITICAL, path, f"references {target}, which can run code"))
    elif top in KERAS_NAMESPACES:
        if name in _DANGEROUS_KERAS_NAMES or (
            isinstance(registered, str) and registered in _DANGEROUS_KERAS_NAMES
        ):
            out.append(
                KerasIssue(Severity.CRITICAL, path, f"references {target}, which safe_mode does not stop")
            )
    elif is_function and module != "__main__":
        out.append(
            KerasIssue(
                Severity.CRITICAL,
                path,
                f"references function {target} from outside Keras; "
                "Keras < 3.9 imports and calls it even in safe_mode",
            )
        )
    else:
        reg = (
            f" (registered as {registered!r})"
            if isinstance(registered, str) and registered != class_name
            else ""
        )
        out.append(
            KerasIssue(
                Severity.HIGH,
                path,
                f"custom object {target}{reg}: loading imports {module} and runs its from_config",
            )
        )
    return out


def report_keras_issues(
    ctx: ScanContext, where: Blob | str, issues: Sequence[KerasIssue], *, source: str
) -> None:
    """Report a file's Keras issues as one GAR-SC-005 finding (its severity the worst issue's)."""
    if not issues:
        return
    worst = max((i.severity for i in issues), key=lambda s: s.rank)
    shown = "; ".join(f"{i.message} at {i.path}" for i in issues[:5])
    more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
    ctx.report(
        SC_KERAS,
        where,
        f"Keras {source} runs code when loaded: {shown}{more}",
        severity=worst,
        evidence={
            "issues": [
                {"severity": i.severity.value, "path": i.path, "message": i.message} for i in issues[:100]
            ],
            "count": len(issues),
        },
    )


# --- the .keras v3 zip -------------------------------------------------------------------------------------------


def scan_keras_zip(blob: Blob, ctx: ScanContext) -> None:
    """Scan a Keras v3 ``.keras`` zip: its zip structure, ``config.json`` for code, every other member (weights,
    assets) as a nested blob of its own format."""
    try:
        archive = read_zip(blob, ctx)
    except ZipFormatError as exc:
        ctx.incomplete(blob.location, f"not a readable zip archive: {exc}")
        return
    if archive.find("config.json") is None:
        ctx.incomplete(blob.location, "Keras archive without config.json")
    for entry, child in iter_zip_members(archive, ctx):
        if entry.name == "config.json" and not entry.hidden:
            _scan_config(child, ctx)
        else:
            ctx.scan_child(child)


def _scan_config(blob: Blob, ctx: ScanContext) -> None:
    try:
        issues = analyze_keras_config(parse_json_bounded(blob.view()))
    except ValueError as exc:
        ctx.incomplete(blob.location, f"config.json cannot be analysed: {exc}")
        return
    report_keras_issues(ctx, blob, issues, source="config.json")
