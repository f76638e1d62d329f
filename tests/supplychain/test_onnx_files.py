from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.onnx_files import analyze_onnx_model, scan_onnx
from garrison.supplychain.result import ScanResult


def linear_model(*extra_nodes: onnx.NodeProto, opsets: tuple[tuple[str, int], ...] = ()) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "B"], ["Y"]),
            *extra_nodes,
        ],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])],
        [weight, bias],
    )
    imports = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, v) for d, v in opsets)]
    return helper.make_model(graph, opset_imports=imports)


def scan_model(model: onnx.ModelProto | bytes, path: Path | None = None) -> ScanResult:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    ctx = ScanContext()
    ctx.begin_file("model.onnx", None)
    scan_onnx(Blob.from_bytes(data, "model.onnx", path=path), ctx)
    return ctx.result()


def test_benign_models_have_no_finding() -> None:
    assert scan_model(linear_model()) == ScanResult((), (), ())
    fused = helper.make_node("FusedMatMul", ["X", "W"], ["Z"], domain="com.microsoft")
    assert scan_model(linear_model(fused, opsets=(("com.microsoft", 1),))).findings == ()


def test_sklearn_model_converted_by_skl2onnx_has_no_finding() -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    model = to_onnx(clf, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    assert {n.domain for n in model.graph.node} >= {"ai.onnx.ml"}
    assert scan_model(model).findings == ()


def test_custom_domain_op_is_high() -> None:
    evil = helper.make_node("Inverse", ["Y"], ["Z"], domain="ai.onnx.contrib", name="inv")
    (finding,) = scan_model(linear_model(evil, opsets=(("ai.onnx.contrib", 1),))).findings
    assert finding.rule_id == "GAR-SC-007" and finding.severity is Severity.HIGH
    (issue,) = finding.evidence_dict()["issues"]
    assert issue == {
        "kind": "custom-op",
        "message": "operator Inverse of custom domain 'ai.onnx.contrib'",
        "where": "graph linear",
    }


def test_custom_op_hidden_in_an_if_branch_and_a_loop_body_is_found() -> None:
    then_graph = helper.make_graph(
        [helper.make_node("Evil", [], ["t"], domain="evil.ops")],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])],
    )
    else_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["e"], value_float=1.0)],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])],
    )
    branch = helper.make_node(
        "If", ["cond"], ["out"], then_branch=then_graph, else_branch=else_graph, name="if0"
    )
    issues = analyze_onnx_model(linear_model(branch))
    (issue,) = issues
    assert issue.kind == "custom-op" and issue.where == "graph linear > If if0.then_branch"


def test_model_local_function_is_not_a_custom_op_but_its_body_is_checked() -> None:
    body = [helper.make_node("Relu", ["x"], ["y"])]
    function = helper.make_function("local.fns", "MyRelu", ["x"], ["y"], body, [helper.make_opsetid("", 17)])
    call = helper.make_node("MyRelu", ["Y"], ["Z"], domain="local.fns")
    model = linear_model(call, opsets=(("local.fns", 1),))
    model.functions.append(function)
    assert analyze_onnx_model(model) == []
    function.node.append(helper.make_node("Evil", ["y"], ["w"], domain="evil.ops"))
    model.functions[0].CopyFrom(function)
    (issue,) = analyze_onnx_model(model)
    assert issue.where == "function local.fns.MyRelu"


def external_model(tmp_path: Path, location: str) -> Path:
    model = linear_model()
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    path = model_dir / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    saved = onnx.load_model(path, load_external_data=False)
    for tensor in saved.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(saved.SerializeToString())
    return path


def test_external_data_beside_the_model_is_fine(tmp_path: Path) -> None:
    path = external_model(tmp_path, "weights.bin")
    assert scan_model(path.read_bytes(), path).findings == ()


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("../../etc/passwd", "climbs out with '..'"),
        ("/etc/passwd", "is absolute"),
        ("C:\\Windows\\win.ini", "is absolute"),
        ("sub/../../x.bin", "climbs out with '..'"),
    ],
)
def test_external_data_escaping_the_directory_is_high(tmp_path: Path, location: str, reason: str) -> None:
    path = external_model(tmp_path, location)
    (finding,) = scan_model(path.read_bytes(), path).findings
    assert finding.severity is Severity.HIGH
    messages = [i["message"] for i in finding.evidence_dict()["issues"]]
    assert all(m.endswith(f"which {reason}") for m in messages) and repr(location) in messages[0]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_symlink_inside_the_directory_pointing_outside_is_high(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    path = external_model(tmp_path, "weights.bin")
    (path.parent / "weights.bin").unlink()
    (path.parent / "weights.bin").symlink_to(tmp_path / "secret.bin")
    (finding,) = scan_model(path.read_bytes(), path).findings
    assert "resolves outside the model's directory" in finding.message


def test_unparseable_model_is_incomplete() -> None:
    result = scan_model(b"\x08\x07\x12\xff\xff\xff\xff\x0fgarbage")
    assert result.findings == () and "not a readable ONNX model" in result.incomplete[0].reason
