"""SavedModels built by hand with our own protobuf encoder, modelled on what TensorFlow writes (TF1 Saver
subgraph under ``save/``, TF2 ``__inference__traced_save_N`` functions); TensorFlow itself is not installed."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.protobuf_wire import encode_field
from garrison.supplychain.result import ScanResult
from garrison.supplychain.tensorflow import (
    analyze_saved_model,
    parse_saved_model,
    scan_saved_model_dir,
    scan_saved_model_pb,
)

DT_STRING, DT_INT32, DT_FLOAT = 7, 3, 1


def attr_str(value: str) -> bytes:
    return encode_field(2, value)


def attr_type(dtype: int) -> bytes:
    return encode_field(6, dtype)


def attr_func(name: str) -> bytes:
    return encode_field(10, encode_field(1, name))


def attr_tensor(*strings: str, dtype: int = DT_STRING) -> bytes:
    tensor = encode_field(1, dtype) + encode_field(2, b"")
    tensor += b"".join(encode_field(8, s) for s in strings) if dtype == DT_STRING else encode_field(7, 1)
    return encode_field(8, tensor)


def node(name: str, op: str, inputs: tuple[str, ...] = (), **attrs: bytes) -> bytes:
    out = encode_field(1, name) + encode_field(2, op) + b"".join(encode_field(3, i) for i in inputs)
    for key, value in attrs.items():
        out += encode_field(5, encode_field(1, key) + encode_field(2, value))
    return out


def const(name: str, *strings: str) -> bytes:
    return node(name, "Const", value=attr_tensor(*strings), dtype=attr_type(DT_STRING))


def int_const(name: str) -> bytes:
    return node(name, "Const", value=attr_tensor(dtype=DT_INT32), dtype=attr_type(DT_INT32))


def function(name: str, nodes: list[bytes]) -> bytes:
    signature = encode_field(1, name) + encode_field(
        2, encode_field(1, "file_prefix") + encode_field(3, DT_STRING)
    )
    return encode_field(1, signature) + b"".join(encode_field(3, n) for n in nodes)


def saved_model(
    nodes: list[bytes], functions: list[bytes] = (), saver: bytes | None = None, objects: bytes | None = None
) -> bytes:  # type: ignore[assignment]
    library = b"".join(encode_field(1, f) for f in functions)
    graph = b"".join(encode_field(1, n) for n in nodes) + encode_field(2, library)
    graph += encode_field(4, encode_field(1, 1087) + encode_field(2, 0))  # VersionDef producer/min_consumer
    meta_info = (
        encode_field(1, "") + encode_field(4, "serve") + encode_field(5, "2.15.0") + encode_field(6, "")
    )
    meta = encode_field(1, meta_info) + encode_field(2, graph)
    if saver is not None:
        meta += encode_field(3, saver)
    if objects is not None:
        meta += encode_field(7, objects)
    return encode_field(1, 1) + encode_field(2, meta)


def tf1_saver_nodes(
    save_path: str = "model", temp: str = "_temp_0123456789abcdef0123456789abcdef/part"
) -> list[bytes]:
    return [
        node("w", "VariableV2", dtype=attr_type(DT_FLOAT)),
        const("save/filename/input", save_path),
        node("save/filename", "PlaceholderWithDefault", ("save/filename/input",)),
        node("save/Const", "PlaceholderWithDefault", ("save/filename",)),
        node(
            "save/StaticRegexFullMatch", "StaticRegexFullMatch", ("save/Const",), pattern=attr_str("^s3://.*")
        ),
        const("save/Const_1", ".part"),
        const("save/Const_2", temp),
        node("save/Select", "Select", ("save/StaticRegexFullMatch", "save/Const_1", "save/Const_2")),
        node("save/StringJoin", "StringJoin", ("save/Const", "save/Select"), separator=attr_str("")),
        int_const("save/num_shards"),
        int_const("save/ShardedFilename/shard"),
        node(
            "save/ShardedFilename",
            "ShardedFilename",
            ("save/StringJoin", "save/ShardedFilename/shard", "save/num_shards"),
        ),
        const("save/SaveV2/tensor_names", "w"),
        const("save/SaveV2/shape_and_slices", ""),
        node(
            "save/SaveV2",
            "SaveV2",
            ("save/ShardedFilename", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices", "w"),
        ),
        node("save/control_dependency", "Identity", ("save/ShardedFilename", "^save/SaveV2")),
        node(
            "save/MergeV2Checkpoints/checkpoint_prefixes",
            "Pack",
            ("save/ShardedFilename", "^save/control_dependency"),
        ),
        node(
            "save/MergeV2Checkpoints",
            "MergeV2Checkpoints",
            ("save/MergeV2Checkpoints/checkpoint_prefixes", "save/Const"),
        ),
        node(
            "save/Identity",
            "Identity",
            ("save/Const", "^save/MergeV2Checkpoints", "^save/control_dependency"),
        ),
        const("save/RestoreV2/tensor_names", "w"),
        const("save/RestoreV2/shape_and_slices", ""),
        node(
            "save/RestoreV2",
            "RestoreV2",
            ("save/Const", "save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"),
        ),
        node("save/Assign", "Assign", ("w", "save/RestoreV2")),
        node("save/restore_all", "NoOp", ("^save/Assign",)),
    ]


TF1_SAVER_DEF = (
    encode_field(1, "save/Const:0") + encode_field(2, "save/Identity:0") + encode_field(3, "save/restore_all")
)


def tf2_functions(save_nodes_extra: list[bytes] = (), prefix_input: str = "file_prefix") -> list[bytes]:  # type: ignore[assignment]
    save = [
        node("StaticRegexFullMatch", "StaticRegexFullMatch", ("file_prefix",), pattern=attr_str("^s3://.*")),
        const("Const", ".part"),
        const("Const_1", "_temp/part"),
        node("Select", "Select", ("StaticRegexFullMatch:output:0", "Const:output:0", "Const_1:output:0")),
        node("StringJoin", "StringJoin", (prefix_input, "Select:output:0")),
        int_const("num_shards"),
        int_const("ShardedFilename/shard"),
        node(
            "ShardedFilename",
            "ShardedFilename",
            ("StringJoin:output:0", "ShardedFilename/shard:output:0", "num_shards:output:0"),
        ),
        const("SaveV2/tensor_names", "variables/0/.ATTRIBUTES/VARIABLE_VALUE"),
        const("SaveV2/shape_and_slices", ""),
        node(
            "SaveV2",
            "SaveV2",
            (
                "ShardedFilename:filename:0",
                "SaveV2/tensor_names:output:0",
                "SaveV2/shape_and_slices:output:0",
                "savev2_read_readvariableop",
            ),
        ),
        node("MergeV2Checkpoints/checkpoint_prefixes", "Pack", ("ShardedFilename:filename:0", "^SaveV2")),
        node(
            "MergeV2Checkpoints",
            "MergeV2Checkpoints",
            ("MergeV2Checkpoints/checkpoint_prefixes:output:0", "file_prefix"),
        ),
        node("Identity", "Identity", ("file_prefix", "^MergeV2Checkpoints")),
        *save_nodes_extra,
    ]
    restore = [
        const("RestoreV2/tensor_names", "variables/0/.ATTRIBUTES/VARIABLE_VALUE"),
        const("RestoreV2/shape_and_slices", ""),
        node(
            "RestoreV2",
            "RestoreV2",
            ("file_prefix", "RestoreV2/tensor_names:output:0", "RestoreV2/shape_and_slices:output:0"),
        ),
        node("AssignVariableOp", "AssignVariableOp", ("resource", "RestoreV2:tensors:0")),
    ]
    serve = [
        node("MatMul/ReadVariableOp", "ReadVariableOp", ("matmul_readvariableop_resource",)),
        node("MatMul", "MatMul", ("x", "MatMul/ReadVariableOp:value:0")),
        node("Softmax", "Softmax", ("MatMul:product:0",)),
        node("Identity", "Identity", ("Softmax:softmax:0",)),
    ]
    return [
        function("__inference__traced_save_95", save),
        function("__inference__traced_restore_120", restore),
        function("__inference_serving_default_50", serve),
    ]


TF2_GRAPH = [
    node("serving_default_x", "Placeholder", dtype=attr_type(DT_FLOAT)),
    node(
        "StatefulPartitionedCall",
        "StatefulPartitionedCall",
        ("serving_default_x", "w"),
        f=attr_func("__inference_serving_default_50"),
    ),
    node("saver_filename", "Placeholder", dtype=attr_type(DT_STRING)),
    node(
        "StatefulPartitionedCall_1",
        "StatefulPartitionedCall",
        ("saver_filename", "w"),
        f=attr_func("__inference__traced_save_95"),
    ),
    node(
        "StatefulPartitionedCall_2",
        "StatefulPartitionedCall",
        ("saver_filename", "w"),
        f=attr_func("__inference__traced_restore_120"),
    ),
]


def scan(data: bytes, location: str = "m/saved_model.pb") -> ScanResult:
    ctx = ScanContext()
    ctx.begin_file(location, None)
    scan_saved_model_pb(Blob.from_bytes(data, location), ctx)
    return ctx.result()


def test_benign_tf1_saved_model_has_no_finding() -> None:
    result = scan(saved_model(tf1_saver_nodes(), saver=TF1_SAVER_DEF))
    assert result.findings == () and result.incomplete == ()


def test_benign_tf2_saved_model_has_no_finding() -> None:
    graph = parse_saved_model(saved_model(TF2_GRAPH, tf2_functions()))
    assert {f for f in graph.scopes if f} == {
        "__inference__traced_save_95",
        "__inference__traced_restore_120",
        "__inference_serving_default_50",
    }
    assert analyze_saved_model(graph) == []
    assert scan(saved_model(TF2_GRAPH, tf2_functions())).findings == ()


def test_write_file_in_serving_function_is_high_with_its_path() -> None:
    functions = tf2_functions()
    functions[2] = function(
        "__inference_serving_default_50",
        [
            const("path", "/tmp/garrison-test-owned"),
            const("contents", "harmless"),
            node("WriteFile", "WriteFile", ("path:output:0", "contents:output:0")),
        ],
    )
    result = scan(saved_model(TF2_GRAPH, functions))
    (finding,) = result.findings
    assert finding.rule_id == "GAR-SC-006" and finding.severity is Severity.HIGH
    assert finding.location == "m/saved_model.pb"
    (op,) = finding.evidence_dict()["ops"]
    assert op == {
        "op": "WriteFile",
        "node": "WriteFile",
        "function": "__inference_serving_default_50",
        "severity": "high",
        "reason": "writes a file",
        "path": "/tmp/garrison-test-owned",
    }


def test_read_file_print_to_file_and_matching_files_in_the_graph() -> None:
    nodes = [
        *TF2_GRAPH,
        const("secret", "/etc/hostname"),
        node("ReadFile", "ReadFile", ("secret",)),
        node("PrintV2", "PrintV2", ("ReadFile",), output_stream=attr_str("file:///tmp/garrison-test-leak")),
        node("PrintV2_1", "PrintV2", ("ReadFile",), output_stream=attr_str("stderr")),
        const("pattern", "/home/*"),
        node("MatchingFiles", "MatchingFiles", ("pattern",)),
    ]
    result = scan(saved_model(nodes, tf2_functions()))
    (finding,) = result.findings
    ops = {o["op"]: o for o in finding.evidence_dict()["ops"]}
    assert set(ops) == {"ReadFile", "PrintV2", "MatchingFiles"}
    assert ops["ReadFile"]["path"] == "/etc/hostname"
    assert ops["PrintV2"]["path"] == "/tmp/garrison-test-leak" and ops["PrintV2"]["node"] == "PrintV2"
    assert ops["MatchingFiles"]["severity"] == "medium"
    assert finding.severity is Severity.HIGH


def test_save_in_saver_function_with_attacker_path_is_flagged() -> None:
    extra = [
        const("evil", "/tmp/garrison-test-overwrite"),
        node(
            "SaveV2_1",
            "SaveV2",
            ("evil:output:0", "SaveV2/tensor_names:output:0", "SaveV2/shape_and_slices:output:0", "x"),
        ),
    ]
    result = scan(saved_model(TF2_GRAPH, tf2_functions(extra)))
    (finding,) = result.findings
    (op,) = finding.evidence_dict()["ops"]
    assert op["node"] == "SaveV2_1" and op["path"] == "/tmp/garrison-test-overwrite"
    assert "path chosen by the file" in op["reason"]


def test_tf2_prefix_replaced_by_a_constant_path_is_flagged() -> None:
    extra = [const("evil_prefix", "../../outside")]
    result = scan(saved_model(TF2_GRAPH, tf2_functions(extra, prefix_input="evil_prefix:output:0")))
    (finding,) = result.findings
    assert {o["op"] for o in finding.evidence_dict()["ops"]} == {"SaveV2", "MergeV2Checkpoints"}
    assert {o["path"] for o in finding.evidence_dict()["ops"]} == {"../../outside"}


def test_tf1_saver_with_absolute_default_path_is_flagged() -> None:
    result = scan(saved_model(tf1_saver_nodes(save_path="/etc/cron.d/x"), saver=TF1_SAVER_DEF))
    (finding,) = result.findings
    flagged = {o["op"] for o in finding.evidence_dict()["ops"]}
    assert flagged == {"SaveV2", "MergeV2Checkpoints", "RestoreV2"}
    assert all(o["path"] == "/etc/cron.d/x" for o in finding.evidence_dict()["ops"])


def test_restore_outside_the_saver_is_flagged() -> None:
    functions = tf2_functions()
    functions[2] = function(
        "__inference_serving_default_50",
        [
            const("RestoreV2/tensor_names", "w"),
            const("RestoreV2/shape_and_slices", ""),
            node(
                "RestoreV2",
                "RestoreV2",
                ("file_prefix", "RestoreV2/tensor_names:output:0", "RestoreV2/shape_and_slices:output:0"),
            ),
        ],
    )
    (finding,) = scan(saved_model(TF2_GRAPH, functions)).findings
    (op,) = finding.evidence_dict()["ops"]
    assert op["reason"] == "reads a checkpoint outside the model's saver" and op["path"] is None


def test_immutable_const_and_debug_dump() -> None:
    nodes = [
        node(
            "mapped", "ImmutableConst", memory_region_name=attr_str("/etc/shadow"), dtype=attr_type(DT_FLOAT)
        ),
        node(
            "dbg", "DebugIdentity", ("mapped",), debug_urls=encode_field(1, encode_field(2, "file:///tmp/d"))
        ),
        node(
            "dbg_ok", "DebugIdentity", ("mapped",), debug_urls=encode_field(1, encode_field(2, "grpc://h:1"))
        ),
        node("proto", "DecodeProtoV2", ("x",), descriptor_source=attr_str("/tmp/desc.bin")),
        node("proto_ok", "DecodeProtoV2", ("x",), descriptor_source=attr_str("local://")),
    ]
    (finding,) = scan(saved_model(nodes)).findings
    ops = {o["node"]: o for o in finding.evidence_dict()["ops"]}
    assert set(ops) == {"mapped", "dbg", "proto"}
    assert ops["mapped"]["path"] == "/etc/shadow" and ops["dbg"]["path"] == "file:///tmp/d"
    assert ops["proto"]["severity"] == "medium"


def test_vocabulary_file_inside_assets_is_fine_outside_is_flagged() -> None:
    def table(path: str) -> list[bytes]:
        return [const("vocab", path), node("init", "InitializeTableFromTextFileV2", ("table", "vocab"))]

    assert scan(saved_model(table("assets/vocab.txt"))).findings == ()
    (finding,) = scan(saved_model(table("/etc/passwd"))).findings
    assert finding.severity is Severity.MEDIUM


def test_malformed_and_empty_saved_models_are_incomplete() -> None:
    broken = scan(b"\x12\xff\xff\xff\x0f" + b"x" * 10)
    assert broken.findings == () and "not a readable SavedModel" in broken.incomplete[0].reason
    empty = scan(encode_field(1, 1))
    assert empty.incomplete[0].reason == "SavedModel without any MetaGraphDef"


LAMBDA_METADATA = json.dumps(
    {
        "name": "lambda",
        "trainable": True,
        "expects_training_arg": False,
        "dtype": "float32",
        "batch_input_shape": None,
        "stateful": False,
        "must_restore_from_config": False,
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "trainable": True,
            "dtype": "float32",
            "function": [
                "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMMAAAAdABkAYMBAQB8AFMAKQJO2gJvc3QGZ2V0Y3dkKQHaAXipAHIDAAAA+gg8c3RkaW4+2gg8bGFtYmRhPgEAAADzAAAAAA==",
                None,
                None,
            ],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "output_shape_module": None,
            "arguments": {},
        },
    }
)
DENSE_METADATA = json.dumps(
    {"name": "dense", "class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "softmax"}}
)


def keras_metadata(*texts: str) -> bytes:
    return b"".join(
        encode_field(
            1,
            encode_field(2, i)
            + encode_field(3, f"root.layer-{i}")
            + encode_field(4, "_tf_keras_layer")
            + encode_field(5, t),
        )
        for i, t in enumerate(texts)
    )


def test_saved_model_dir_reads_keras_metadata(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(saved_model(TF2_GRAPH, tf2_functions()))
    (model / "keras_metadata.pb").write_bytes(keras_metadata(DENSE_METADATA, LAMBDA_METADATA))
    ctx = ScanContext()
    ctx.begin_file("model", None)
    scan_saved_model_dir(model, "model", ctx)
    (finding,) = ctx.result().findings
    assert finding.rule_id == "GAR-SC-005" and finding.location == "model/keras_metadata.pb"
    assert "Lambda layer 'lambda'" in finding.message and "getcwd" in finding.message

    (model / "keras_metadata.pb").write_bytes(keras_metadata(DENSE_METADATA))
    clean = ScanContext()
    scan_saved_model_dir(model, "model", clean)
    assert clean.result().findings == () and clean.result().incomplete == ()


def test_keras_config_in_the_object_graph() -> None:
    user_object = encode_field(1, "_tf_keras_layer") + encode_field(3, LAMBDA_METADATA)
    objects = encode_field(1, encode_field(4, user_object))
    (finding,) = scan(saved_model(TF2_GRAPH, tf2_functions(), objects=objects)).findings
    assert finding.rule_id == "GAR-SC-005"


BENIGN = saved_model(TF2_GRAPH, tf2_functions())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(BENIGN) - 1), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, len(BENIGN)),
)
def test_mutated_saved_models_give_a_result_never_an_exception(
    edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(BENIGN)
    for at, value in edits:
        data[at] = value
    result = scan(bytes(data[:cut] if cut else data))
    assert isinstance(result, ScanResult)


def test_text_format_or_chunked_graph_without_binary_is_incomplete(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\n")
    ctx = ScanContext()
    scan_saved_model_dir(model, "model", ctx)
    (item,) = ctx.result().incomplete
    assert item.location == "model/saved_model.pbtxt" and "text-format" in item.reason
