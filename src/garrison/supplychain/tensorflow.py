"""TensorFlow SavedModels, read without TensorFlow: graph operations that touch the file system (GAR-SC-006).

``saved_model.pb`` is walked with :mod:`garrison.supplychain.protobuf_wire`: ``SavedModel.meta_graphs`` (2) ->
``MetaGraphDef.graph_def`` (2) and ``saver_def`` (3) -> ``GraphDef.node`` (1) and ``library`` (2) ->
``FunctionDefLibrary.function`` (1) -> ``FunctionDef.signature`` (1, ``OpDef.name`` 1) and ``node_def`` (3);
``NodeDef`` name 1, op 2, input 3, attr 5 (map entries key 1, ``AttrValue`` 2: ``s`` 2, ``list`` 1, ``tensor`` 8
with ``TensorProto.string_val`` 8). Field numbers follow tensorflow/core/framework/{graph,node_def,function,
attr_value,tensor}.proto and tensorflow/core/protobuf/{saved_model,meta_graph,saver}.proto.

Operations flagged, with severity:

* high, always: ``WriteFile``, ``ReadFile``, the file readers (``WholeFileReader``, ``TextLineReader``,
  ``TFRecordReader``, ``FixedLengthRecordReader``, ``LMDBReader`` and their V2), tf.data sources and sinks that
  open paths (``TFRecordDataset``, ``TextLineDataset``, ``FixedLengthRecordDataset``, ``CSVDataset``,
  ``LMDBDataset``, ``LoadDataset``, ``SaveDataset``, ``DatasetToTFRecord``...), ``ImmutableConst`` (memory-maps
  a file), ``LoadAndRemapMatrix`` (reads a checkpoint), ``CreateSummaryFileWriter``/``CreateSummaryDbWriter``.
* high, when configured to write files: ``PrintV2`` whose ``output_stream`` is ``file://...``, the ``Debug*``
  ops with a ``file://`` debug URL.
* medium: ``MatchingFiles`` (lists directories); ``DecodeProtoV2``/``EncodeProto`` with a
  ``descriptor_source`` other than ``local://`` (reads a descriptor file); ``InitializeTableFromTextFile(V2)``
  with a constant path that is absolute, a URL or climbs with ``..`` (a vocabulary file outside the assets).
* high, checkpoint ops (``Save``, ``SaveV2``, ``SaveSlices``, ``Restore``, ``RestoreV2``, ``RestoreSlice``,
  ``MergeV2Checkpoints``) by this heuristic: every SavedModel has them for its own variables, in the *saver
  subgraph* - TF1 nodes under the saver's name scope (``save/``, ``save_1/``, nodes named ``save``/``restore``,
  or the scope named by ``MetaGraphDef.saver_def``), TF2 functions ``__inference__traced_save_N`` / ``__inference__traced_restore_N``
  - with a path fed by the caller (a Placeholder) joined with the standard constant fragments (``model``,
  ``.part``, ``_temp/part``, ``_temp_<hex>/part``). Flagged: such an op outside the saver subgraph, or any path
  input (traced back through up to 256 producer nodes) that reaches a string constant other than those
  fragments - an attacker-chosen path.

``keras_metadata.pb`` (TF-Keras SavedModels; ``SavedMetadata.nodes`` 1 -> ``SavedObject.metadata`` 5, JSON) and
the deprecated ``SavedUserObject.metadata`` in ``saved_model.pb``'s object graph carry Keras layer configs,
analysed like any Keras config (GAR-SC-005).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from garrison.core.rules import SC_TF_OPS
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.keras import (
    KerasIssue,
    analyze_keras_config,
    looks_like_keras_config,
    report_keras_issues,
)
from garrison.supplychain.protobuf_wire import Message, WireFormatError, parse_message

__all__ = [
    "GraphOp",
    "OpIssue",
    "SavedModelGraph",
    "analyze_saved_model",
    "keras_configs_in_metadata",
    "parse_saved_model",
    "scan_saved_model_dir",
    "scan_saved_model_pb",
]

_HIGH = Severity.HIGH
_MEDIUM = Severity.MEDIUM
_ALWAYS: dict[str, tuple[Severity, str]] = {
    "WriteFile": (_HIGH, "writes a file"),
    "ReadFile": (_HIGH, "reads a file"),
    "ImmutableConst": (_HIGH, "memory-maps a file"),
    "LoadAndRemapMatrix": (_HIGH, "reads a checkpoint file"),
    "CreateSummaryFileWriter": (_HIGH, "writes summary files"),
    "CreateSummaryDbWriter": (_HIGH, "writes a summary database"),
    "MatchingFiles": (_MEDIUM, "lists files matching a pattern"),
    **dict.fromkeys(
        (
            "WholeFileReader",
            "WholeFileReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "LMDBReader",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "TextLineDataset",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "LoadDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
        ),
        (_HIGH, "reads files"),
    ),
    **dict.fromkeys(
        ("DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2"),
        (_HIGH, "writes files"),
    ),
}
_CHECKPOINT_WRITE = frozenset({"Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints"})
_CHECKPOINT_READ = frozenset({"Restore", "RestoreV2", "RestoreSlice"})
_DEBUG_OPS = frozenset(
    {
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
    }
)
_PROTO_OPS = frozenset({"DecodeProtoV2", "EncodeProto"})
_TABLE_FILE_OPS = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
_STANDARD_FRAGMENT = re.compile(r"model|\.part|_temp/part|_temp_[0-9a-f]{32}/part")
_SAVER_SCOPE = re.compile(r"(save|restore)(_\d+)?(/|$)")
_SAVER_FUNCTION = re.compile(r"__inference__traced_(save|restore)_\d+")
_MAX_TRACE = 256
_MAX_ISSUES = 1000


@dataclass(frozen=True, slots=True)
class GraphOp:
    """One node of the graph or of a function: its name, op type, inputs and the string attrs we read."""

    name: str
    op: str
    inputs: tuple[str, ...]
    strings: dict[str, tuple[str, ...]]  # attr name -> its string value(s), tensor string_val included
    function: str | None  # the FunctionDef it belongs to; None for the graph itself


@dataclass(slots=True)
class SavedModelGraph:
    """The parts of a SavedModel the scanner reads: every op, per scope, and the saver's name scopes."""

    scopes: dict[str | None, list[GraphOp]] = field(default_factory=dict)
    saver_scopes: set[str] = field(default_factory=set)
    keras_metadata: list[str] = field(default_factory=list)
    n_meta_graphs: int = 0

    def ops(self) -> Iterator[GraphOp]:
        for ops in self.scopes.values():
            yield from ops


@dataclass(frozen=True, slots=True)
class OpIssue:
    """A file-system-touching op found in the graph."""

    severity: Severity
    op: str
    node: str
    function: str | None
    reason: str
    path: str | None = None

    def describe(self) -> str:
        where = f"function {self.function}" if self.function else "the graph"
        path = f" (path {self.path!r})" if self.path else ""
        return f"{self.op} node {self.node!r} in {where} {self.reason}{path}"


def parse_saved_model(data: bytes | memoryview, *, ctx: ScanContext | None = None) -> SavedModelGraph:
    """Read a ``saved_model.pb``. Raises :class:`WireFormatError` on malformed bytes."""
    graph = SavedModelGraph()
    model = parse_message(data)
    for meta in model.messages(2):
        graph.n_meta_graphs += 1
        saver = meta.message(3)
        if saver is not None:
            for name in (saver.string(1), saver.string(2), saver.string(3)):
                if "/" in name:
                    graph.saver_scopes.add(name.rsplit("/", 1)[0] + "/")
        graph_def = meta.message(2)
        if graph_def is not None:
            graph.scopes.setdefault(None, []).extend(_nodes(graph_def.messages(1), None, ctx))
            library = graph_def.message(2)
            for function in library.messages(1) if library is not None else []:
                signature = function.message(1)
                name = signature.string(1) if signature is not None else "?"
                graph.scopes.setdefault(name, []).extend(_nodes(function.messages(3), name, ctx))
        objects = meta.message(7)
        for node in objects.messages(1) if objects is not None else []:
            user_object = node.message(4)
            if user_object is not None and 3 in user_object:
                graph.keras_metadata.append(user_object.string(3))
    return graph


def _nodes(messages: Iterable[Message], function: str | None, ctx: ScanContext | None) -> Iterator[GraphOp]:
    for i, node in enumerate(messages):
        if ctx is not None and i % 4096 == 0:
            ctx.check_deadline()
        strings: dict[str, tuple[str, ...]] = {}
        op = node.string(2)
        for entry in node.messages(5):
            value = entry.message(2)
            if value is not None:
                found = _attr_strings(value, with_tensor=op == "Const")
                if found:
                    strings[entry.string(1)] = found
        yield GraphOp(node.string(1), op, tuple(node.strings(3)), strings, function)


def _attr_strings(value: Message, *, with_tensor: bool) -> tuple[str, ...]:
    out = value.strings(2)
    listed = value.message(1)
    if listed is not None:
        out.extend(listed.strings(2))
    tensor = value.message(8) if with_tensor else None  # only constants' values are traced as paths
    if tensor is not None:
        out.extend(tensor.strings(8))
    return tuple(out)


def analyze_saved_model(graph: SavedModelGraph) -> list[OpIssue]:
    """The file-system-touching ops of a parsed SavedModel (see the module docstring for the rules)."""
    issues: list[OpIssue] = []
    for function, ops in graph.scopes.items():
        by_name = {op.name: op for op in ops}
        for op in ops:
            issue = _classify(op, function, by_name, graph.saver_scopes)
            if issue is not None:
                issues.append(issue)
                if len(issues) >= _MAX_ISSUES:
                    return issues
    return issues


def _classify(
    op: GraphOp, function: str | None, by_name: dict[str, GraphOp], saver_scopes: set[str]
) -> OpIssue | None:
    kind = op.op
    if kind in _ALWAYS:
        severity, reason = _ALWAYS[kind]
        path = _first(op.strings.get("memory_region_name")) or _first(
            tuple(_path_constants(op, by_name, (0,)))
        )
        return OpIssue(severity, kind, op.name, function, reason, path)
    if kind == "PrintV2":
        stream = _first(op.strings.get("output_stream")) or ""
        if stream.startswith("file://"):
            return OpIssue(_HIGH, kind, op.name, function, "prints to a file", stream[len("file://") :])
        return None
    if kind in _DEBUG_OPS:
        urls = [u for u in op.strings.get("debug_urls", ()) if u.startswith("file://")]
        return OpIssue(_HIGH, kind, op.name, function, "dumps tensors to files", urls[0]) if urls else None
    if kind in _PROTO_OPS:
        source = _first(op.strings.get("descriptor_source")) or "local://"
        if source != "local://":
            return OpIssue(_MEDIUM, kind, op.name, function, "reads a descriptor file", source)
        return None
    if kind in _TABLE_FILE_OPS:
        for value in _path_constants(op, by_name, (1,)):
            if _escaping_path(value):
                return OpIssue(
                    _MEDIUM, kind, op.name, function, "reads a vocabulary file outside the model", value
                )
        return None
    if kind in _CHECKPOINT_WRITE or kind in _CHECKPOINT_READ:
        action = "writes a checkpoint" if kind in _CHECKPOINT_WRITE else "reads a checkpoint"
        path_inputs = (0, 1) if kind == "MergeV2Checkpoints" else (0,)
        for value in _path_constants(op, by_name, path_inputs):
            if not _STANDARD_FRAGMENT.fullmatch(value):
                return OpIssue(
                    _HIGH, kind, op.name, function, f"{action} at a path chosen by the file", value
                )
        if not _in_saver(op, function, saver_scopes):
            return OpIssue(_HIGH, kind, op.name, function, f"{action} outside the model's saver")
    return None


def _first(values: tuple[str, ...] | None) -> str | None:
    return values[0] if values else None


def _in_saver(op: GraphOp, function: str | None, saver_scopes: set[str]) -> bool:
    if function is not None:
        return _SAVER_FUNCTION.fullmatch(function) is not None
    return _SAVER_SCOPE.match(op.name) is not None or any(op.name.startswith(s) for s in saver_scopes)


def _producer(ref: str) -> str:
    # "^ctrl" is a control input; "node:1" (graph) and "node:output:0" (function) name an output of "node".
    return ref.lstrip("^").split(":", 1)[0]


def _path_constants(op: GraphOp, by_name: dict[str, GraphOp], indexes: tuple[int, ...]) -> list[str]:
    """String constants that flow into the given inputs of ``op``, traced back through producer nodes."""
    stack = [
        _producer(op.inputs[i]) for i in indexes if i < len(op.inputs) and not op.inputs[i].startswith("^")
    ]
    seen: set[str] = set()
    found: list[str] = []
    while stack and len(seen) < _MAX_TRACE:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        node = by_name.get(name)
        if node is None:
            continue
        if node.op == "Const":
            found.extend(node.strings.get("value", ()))
            continue
        stack.extend(_producer(ref) for ref in node.inputs if not ref.startswith("^"))
    return found


def _escaping_path(value: str) -> bool:
    return (
        value.startswith(("/", "\\"))
        or "://" in value
        or ".." in value.replace("\\", "/").split("/")
        or (len(value) > 1 and value[1] == ":")
    )


def keras_configs_in_metadata(texts: Iterable[str]) -> list[KerasIssue]:
    """Keras issues in the JSON metadata strings of a TF-Keras SavedModel."""
    issues: list[KerasIssue] = []
    for i, text in enumerate(texts):
        try:
            config = json.loads(text)
        except (ValueError, RecursionError):
            continue  # metadata that is not JSON configures nothing Keras would deserialise
        if looks_like_keras_config(config):
            issues.extend(
                KerasIssue(x.severity, f"node[{i}]{x.path[1:]}", x.message)
                for x in analyze_keras_config(config)
            )
    return issues


def _report_ops(ctx: ScanContext, where: Blob | str, issues: list[OpIssue]) -> None:
    if not issues:
        return
    worst = max((i.severity for i in issues), key=lambda s: s.rank)
    shown = "; ".join(i.describe() for i in issues[:5])
    more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
    ctx.report(
        SC_TF_OPS,
        where,
        f"TensorFlow graph touches the file system: {shown}{more}",
        severity=worst,
        evidence={
            "ops": [
                {
                    "op": i.op,
                    "node": i.node,
                    "function": i.function,
                    "severity": i.severity.value,
                    "reason": i.reason,
                    "path": i.path,
                }
                for i in issues[:100]
            ],
            "count": len(issues),
        },
    )


def scan_saved_model_pb(blob: Blob, ctx: ScanContext) -> None:
    """Scan a ``saved_model.pb``: file-system ops in its graph and functions, Keras configs in its objects."""
    try:
        graph = parse_saved_model(blob.view(), ctx=ctx)
    except WireFormatError as exc:
        ctx.incomplete(blob.location, f"not a readable SavedModel protobuf: {exc}")
        return
    if graph.n_meta_graphs == 0:
        ctx.incomplete(blob.location, "SavedModel without any MetaGraphDef")
        return
    _report_ops(ctx, blob, analyze_saved_model(graph))
    report_keras_issues(
        ctx, blob, keras_configs_in_metadata(graph.keras_metadata), source="SavedModel object"
    )


def scan_saved_model_dir(path: Path, location: str, ctx: ScanContext) -> None:
    """What a SavedModel directory adds to its files: ``keras_metadata.pb`` (TF-Keras layer configs), and an
    incomplete mark when the graph is only in a form this scanner cannot read (``saved_model.pbtxt``,
    ``saved_model.cpb``). ``saved_model.pb`` itself, ``variables/`` and ``assets/`` are scanned as files."""
    if not (path / "saved_model.pb").is_file():
        for variant, what in (("saved_model.cpb", "chunked"), ("saved_model.pbtxt", "text-format")):
            if (path / variant).is_file():
                ctx.incomplete(
                    posixpath.join(location, variant), f"{what} SavedModel graphs are not supported"
                )
    metadata = path / "keras_metadata.pb"
    if not metadata.is_file():
        return
    where = posixpath.join(location, "keras_metadata.pb")
    try:
        with Blob.from_path(metadata, where) as blob:
            texts = [node.string(5) for node in parse_message(blob.view()).messages(1)]
    except OSError as exc:
        ctx.incomplete(where, f"cannot be read: {exc.strerror or exc}")
        return
    except WireFormatError as exc:
        ctx.incomplete(where, f"not a readable Keras metadata protobuf: {exc}")
        return
    report_keras_issues(ctx, where, keras_configs_in_metadata(texts), source="SavedModel metadata")
