"""ONNX models: custom operator domains and external data paths that leave the model's directory (GAR-SC-007).

The model is parsed with ``onnx.load_model_from_string`` (protobuf parsing only; external data is never
loaded, no runtime session is made). Walked: the main graph, every subgraph held in node attributes (``If``
branches, ``Loop``/``Scan`` bodies), model-local functions, and training-info graphs.

* Custom operator domains: runtimes resolve them by loading a custom-op library (native code). Standard, and
  not flagged: ``""``/``ai.onnx``, ``ai.onnx.ml``, ``ai.onnx.training``, ``ai.onnx.preview.training``, and
  the contrib domains built into onnxruntime itself (``com.microsoft``, ``com.microsoft.nchwc``,
  ``com.microsoft.experimental``, ``com.ms.internal.nhwc``). A node calling a model-local function (same domain
  and name) is not a custom op; the function's own nodes are checked. Anything else (``ai.onnx.contrib`` of
  onnxruntime-extensions included) is flagged, high.
* External data (``data_location = EXTERNAL``): a ``location`` that is absolute, a URL, has a drive, contains
  ``..``, or - when the model is a real file - resolves (symbolic links followed) outside the model's directory
  is flagged, high.

An unparseable model is incomplete.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.errors import MissingDependencyError
from garrison.core.rules import SC_ONNX
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext

__all__ = ["STANDARD_DOMAINS", "OnnxIssue", "analyze_onnx_model", "scan_onnx"]

STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
    }
)
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_MAX_ISSUES = 1000


@dataclass(frozen=True, slots=True)
class OnnxIssue:
    """A custom-op node or an escaping external-data tensor; ``where`` names the graph or function."""

    kind: str  # "custom-op" or "external-data"
    message: str
    where: str


def _scopes(model: Any) -> Iterator[tuple[str, Any]]:
    """(scope, graph or function) for the main graph, training graphs, functions and every subgraph held in a
    node attribute, however deep (iterative, no recursion)."""
    stack: list[tuple[str, Any]] = [(f"graph {model.graph.name or 'main'}", model.graph)]
    for info in model.training_info:
        stack.extend(
            (("training initialization", info.initialization), ("training algorithm", info.algorithm))
        )
    stack.extend((f"function {f.domain}.{f.name}", f) for f in model.functions)
    while stack:
        scope, graph = stack.pop()
        yield scope, graph
        for node in graph.node:
            for attribute in node.attribute:
                where = f"{scope} > {node.op_type} {node.name or '?'}.{attribute.name}"
                if attribute.HasField("g"):
                    stack.append((where, attribute.g))
                stack.extend((f"{where}[{i}]", sub) for i, sub in enumerate(attribute.graphs))


def _tensors(scope: str, graph: Any) -> Iterator[tuple[str, Any]]:
    """(scope, TensorProto) of every tensor of one graph or function that can carry external data."""
    for tensor in getattr(graph, "initializer", ()):
        yield scope, tensor
    for sparse in getattr(graph, "sparse_initializer", ()):
        yield scope, sparse.values
        yield scope, sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield scope, attribute.t
            yield from ((scope, t) for t in attribute.tensors)
            sparse_tensors = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
            for sparse in [*sparse_tensors, *attribute.sparse_tensors]:
                yield scope, sparse.values
                yield scope, sparse.indices


def _escapes(location: str, directory: Path | None) -> str | None:
    normalised = location.replace("\\", "/")
    if normalised.startswith("/") or "://" in normalised or (len(normalised) > 1 and normalised[1] == ":"):
        return "is absolute"
    if ".." in normalised.split("/"):
        return "climbs out with '..'"
    if directory is not None:
        try:
            resolved = (directory / normalised).resolve()
            resolved.relative_to(directory.resolve())
        except ValueError:
            return "resolves outside the model's directory"
        except OSError:
            return "cannot be resolved"
    return None


def analyze_onnx_model(model: Any, *, directory: Path | None = None) -> list[OnnxIssue]:
    """Custom-op nodes and escaping external data of a parsed ``onnx.ModelProto``."""
    issues: list[OnnxIssue] = []
    local_functions = {(f.domain, f.name) for f in model.functions}
    custom: dict[tuple[str, str], str] = {}
    external: list[tuple[str, Any]] = []
    for scope, graph in _scopes(model):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in local_functions:
                custom.setdefault((node.domain, node.op_type), scope)
        external.extend((s, t) for s, t in _tensors(scope, graph) if t.data_location == _EXTERNAL)
    issues = [
        OnnxIssue("custom-op", f"operator {op_type} of custom domain {domain!r}", scope)
        for (domain, op_type), scope in sorted(custom.items())[:_MAX_ISSUES]
    ]
    seen: set[str] = set()
    for scope, tensor in external:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        reason = _escapes(location, directory) if location else "has no location"
        if reason and location not in seen and len(issues) < _MAX_ISSUES:
            seen.add(location)
            issues.append(
                OnnxIssue(
                    "external-data",
                    f"tensor {tensor.name!r} reads external data {location!r}, which {reason}",
                    scope,
                )
            )
    return issues


def scan_onnx(blob: Blob, ctx: ScanContext) -> None:
    """Scan an ONNX model for custom-op domains and external data escaping its directory."""
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError("onnx", extra="onnx") from exc
    try:
        from google.protobuf.message import DecodeError
    except ImportError:  # pragma: no cover - onnx depends on protobuf
        DecodeError = ValueError
    try:
        model = onnx.load_model_from_string(bytes(blob.view()))
    except (DecodeError, ValueError, RuntimeError) as exc:
        ctx.incomplete(blob.location, f"not a readable ONNX model: {exc}")
        return
    directory = blob.path.parent if blob.path is not None else None
    issues = analyze_onnx_model(model, directory=directory)
    if not issues:
        return
    shown = "; ".join(f"{i.message} in {i.where}" for i in issues[:5])
    more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
    ctx.report(
        SC_ONNX,
        blob,
        f"ONNX model loads native code or files outside its directory: {shown}{more}",
        severity=Severity.HIGH,
        evidence={
            "issues": [{"kind": i.kind, "message": i.message, "where": i.where} for i in issues[:100]],
            "count": len(issues),
            "model_dir": posixpath.dirname(blob.location) or ".",
        },
    )
