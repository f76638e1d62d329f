from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
skl2onnx = pytest.importorskip("skl2onnx")

from onnx import TensorProto, helper  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from garrison.adapters.base import Classifier, InputSpec  # noqa: E402
from garrison.adapters.onnx_model import OnnxClassifier  # noqa: E402
from garrison.core.errors import MissingDependencyError, ModelInputMismatchError, ModelLoadError  # noqa: E402

IRIS_NAMES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x.astype(np.float32), y


def _estimator(kind: str, x: np.ndarray, y: np.ndarray) -> LogisticRegression | RandomForestClassifier:
    if kind == "logistic":
        return LogisticRegression(max_iter=1000).fit(x, y)
    return RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(x, IRIS_NAMES[y])


def _save_sklearn(est: object, x: np.ndarray, path: Path, *, zipmap: bool) -> Path:
    options = None if zipmap else {id(est): {"zipmap": False}}
    path.write_bytes(skl2onnx.to_onnx(est, x[:1], options=options).SerializeToString())
    return path


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
@pytest.mark.parametrize("kind", ["logistic", "forest"])
def test_skl2onnx_classifiers_match_the_source_model(
    kind: str, zipmap: bool, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    est = _estimator(kind, x, y)
    path = _save_sklearn(est, x, tmp_path / "model.onnx", zipmap=zipmap)

    clf = OnnxClassifier(path, name="iris", batch_size=32)

    assert isinstance(clf, Classifier)
    assert clf.input_spec == InputSpec((4,), "float32")
    assert clf.n_classes == 3
    assert clf.classes == tuple(est.classes_.tolist())
    proba = clf.predict_proba(x)
    assert proba.dtype == np.float64
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba, est.predict_proba(x), atol=1e-5)
    assert (proba.argmax(axis=1) == y).mean() > 0.9


def test_double_input_models_get_a_float64_spec(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = iris
    est = _estimator("logistic", x, y)
    x64 = x.astype(np.float64)
    path = tmp_path / "double.onnx"
    path.write_bytes(skl2onnx.to_onnx(est, x64[:1], options={id(est): {"zipmap": False}}).SerializeToString())
    clf = OnnxClassifier(path, input_spec=InputSpec((4,), "float32", ("a", "b", "c", "d")))
    assert clf.input_spec == InputSpec((4,), "float64", ("a", "b", "c", "d"))
    np.testing.assert_allclose(clf.predict_proba(x64), est.predict_proba(x64), atol=1e-9)


def _export_torch(module: object, path: Path, *, batch: int | None) -> None:
    torch = pytest.importorskip("torch")
    dynamic = ({0: torch.export.Dim("batch", min=1)},) if batch is None else None
    with warnings.catch_warnings():
        # the exporter warns about its own internals (deprecated pytree helpers) on this torch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(batch or 4, 64),),
            str(path),
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_shapes=dynamic,
            verbose=False,
        )


@pytest.fixture(scope="module")
def torch_mlp() -> object:
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript", reason="torch.onnx.export (dynamo exporter) needs onnxscript")
    try:  # tests/ as packages, or plain directories under pytest's default import mode
        from tests.adapters.models import digits, fit, small_mlp
    except ModuleNotFoundError:
        from models import digits, fit, small_mlp
    x_train, _, y_train, _ = digits()
    return fit(small_mlp(64, 10, hidden=32), x_train, y_train, epochs=5)


@pytest.mark.parametrize("batch", [None, 4], ids=["dynamic-batch", "static-batch"])
def test_torch_export_matches_the_torch_model(torch_mlp: object, batch: int | None, tmp_path: Path) -> None:
    from garrison.adapters.torch_model import TorchClassifier

    try:
        from tests.adapters.models import digits
    except ModuleNotFoundError:
        from models import digits
    _, x_test, _, _ = digits()
    path = tmp_path / "mlp.onnx"
    _export_torch(torch_mlp, path, batch=batch)

    clf = OnnxClassifier(path, batch_size=64)  # output="auto": logits are seen and softmaxed
    reference = TorchClassifier(torch_mlp, input_spec=InputSpec((64,))).predict_proba(x_test[:101])

    assert clf.input_spec == InputSpec((64,), "float32")
    assert clf.n_classes == 10
    assert clf.classes is None
    # 101 rows: several batches, and with a static batch of 4 the last one is padded
    np.testing.assert_allclose(clf.predict_proba(x_test[:101]), reference, atol=1e-5)
    raw = OnnxClassifier(path, output="probabilities").predict_proba(x_test[:8])
    assert (raw < 0).any()  # logits passed through untouched
    np.testing.assert_allclose(
        OnnxClassifier(path, output="logits").predict_proba(x_test[:8]), reference[:8], atol=1e-5
    )


def test_logits_mode_softmaxes_even_probabilities(
    iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = iris
    est = _estimator("logistic", x, y)
    path = _save_sklearn(est, x, tmp_path / "lr.onnx", zipmap=False)
    p = est.predict_proba(x[:5])
    expected = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        OnnxClassifier(path, output="logits").predict_proba(x[:5]), expected, atol=1e-5
    )


def _graph_model(
    path: Path, *, input_shape: list[object], out_shape: list[object], op: str = "Softmax"
) -> Path:
    attributes = {"Softmax": {"axis": 1}, "ReduceMax": {"axes": [1], "keepdims": 0}}.get(op, {})
    node = helper.make_node(op, ["x"], ["y"], **attributes)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_dynamic_feature_shape_needs_an_input_spec(tmp_path: Path) -> None:
    path = _graph_model(tmp_path / "softmax.onnx", input_shape=["n", "f"], out_shape=["n", "f"])
    with pytest.raises(ModelLoadError, match=r"softmax\.onnx: the model's input shape .* is not fixed"):
        OnnxClassifier(path)
    clf = OnnxClassifier(path, input_spec=InputSpec((3,)))
    x = np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(x), e / e.sum(axis=1, keepdims=True), atol=1e-6)
    assert clf.n_classes == 3


def test_auto_mode_softmaxes_rows_that_are_not_probabilities(tmp_path: Path) -> None:
    path = _graph_model(tmp_path / "identity.onnx", input_shape=["n", 3], out_shape=["n", 3], op="Identity")
    x = np.array([[1.0, -2.0, 0.5]], dtype=np.float32)
    e = np.exp(x - x.max())
    np.testing.assert_allclose(OnnxClassifier(path).predict_proba(x), e / e.sum(), atol=1e-6)
    np.testing.assert_allclose(OnnxClassifier(path, output="probabilities").predict_proba(x), x)


def test_mismatches_are_clear_errors(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = iris
    path = _save_sklearn(_estimator("logistic", x, y), x, tmp_path / "lr.onnx", zipmap=True)
    with pytest.raises(ModelInputMismatchError, match=r"samples of shape \(4,\), the data has shape \(5,\)"):
        OnnxClassifier(path, input_spec=InputSpec((5,)))
    with pytest.raises(ModelInputMismatchError, match="3 output classes, not n_classes=4"):
        OnnxClassifier(path, n_classes=4)
    clf = OnnxClassifier(path)
    with pytest.raises(ModelInputMismatchError, match=r"got a batch of shape \(2, 6\)"):
        clf.predict_proba(np.zeros((2, 6)))
    assert clf.predict_proba(np.zeros((0, 4))).shape == (0, 3)
    with pytest.raises(ValueError, match="`output` must be one of"):
        OnnxClassifier(path, output="scores")
    no_probs = _graph_model(tmp_path / "vector.onnx", input_shape=["n", 3], out_shape=["n"], op="ReduceMax")
    with pytest.raises(ModelLoadError, match="no probability output"):
        OnnxClassifier(no_probs)


def test_corrupt_files_give_model_load_error(iris: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = iris
    good = _save_sklearn(_estimator("forest", x, y), x, tmp_path / "rf.onnx", zipmap=True).read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\x12\x04this is not an onnx model\xff\xfe")
    for path in (truncated, garbage):
        with pytest.raises(ModelLoadError) as info:
            OnnxClassifier(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message
        assert "Traceback" not in message
    with pytest.raises(ModelLoadError, match="model file not found"):
        OnnxClassifier(tmp_path / "absent.onnx")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_give_model_load_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError):
        OnnxClassifier(path)


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"garrison\[onnx\]"):
        OnnxClassifier(tmp_path / "model.onnx")
