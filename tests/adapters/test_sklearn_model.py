from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import LinearSVC

from garrison.adapters.base import Classifier, InputSpec, predict
from garrison.adapters.sklearn_model import SklearnClassifier, load_skops, sniff_model_format
from garrison.core import GarrisonError, ModelInputMismatchError, ModelLoadError, UntrustedArtifactError
from garrison.data import FeatureCodec, infer_schema


def _records(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n).round(2),
            "city": pd.Series(rng.choice(["oslo", "rome", "lima"], n), dtype="str"),
            "plan": pd.Series(rng.choice(["basic", "gold"], n), dtype="str"),
        }
    )
    y = np.where((df["city"] == "rome") | (df["income"] > 55), "good", "bad")
    return df, y


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, np.ndarray]:
    df, y = _records()
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
                ("num", StandardScaler(), ["age", "income"]),
            ]
        ),
        LogisticRegression(),
    )
    pipe.fit(df, y)
    path = tmp_path_factory.mktemp("models") / "credit.skops"
    sio.dump(pipe, path)
    return path, df, y


def test_skops_pipeline_through_the_codec_predicts_like_the_estimator(
    pipeline_file: tuple[Path, pd.DataFrame, np.ndarray],
) -> None:
    path, df, _ = pipeline_file
    model = load_skops(path, trusted=sio.get_untrusted_types(file=path))
    codec = FeatureCodec(infer_schema(df))
    clf = SklearnClassifier(model, codec=codec, name="credit")
    assert isinstance(clf, Classifier)
    assert clf.n_classes == 2
    assert clf.classes == ("bad", "good")
    assert clf.input_spec.shape == (4,)
    assert clf.input_spec.feature_names == ("age", "income", "city", "plan")
    assert clf.estimator is model
    x = codec.encode(df)
    proba = clf.predict_proba(x)
    assert proba.dtype == np.float64
    assert proba.shape == (len(df), 2)
    np.testing.assert_allclose(proba, model.predict_proba(df))
    np.testing.assert_array_equal(np.asarray(clf.classes)[predict(clf, x)], model.predict(df))
    assert clf.predict_proba(x[:0]).shape == (0, 2)


def test_fuzzed_inputs_reach_the_estimator_and_its_errors_propagate(
    pipeline_file: tuple[Path, pd.DataFrame, np.ndarray],
) -> None:
    path, df, _ = pipeline_file
    model = load_skops(path)
    codec = FeatureCodec(infer_schema(df))
    clf = SklearnClassifier(model, codec=codec)
    x = codec.encode(df.head(4))
    x[:, 2] = [0.4, 17.0, -3.0, 1.0]  # invalid category codes decode to the sentinel: one-hot ignores them
    assert clf.predict_proba(x).shape == (4, 2)
    x[0, 1] = np.nan  # the estimator refuses NaN; its own error comes through unchanged
    with pytest.raises(ValueError, match="NaN") as exc:
        clf.predict_proba(x)
    assert not isinstance(exc.value, GarrisonError)


def test_untrusted_skops_types_are_refused_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    y = (x[:, 0] > 0.5).astype(int)
    path = tmp_path / "hgb.skops"
    sio.dump(HistGradientBoostingClassifier(max_iter=3).fit(x, y), path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted
    with pytest.raises(UntrustedArtifactError, match="TreePredictor") as exc:
        load_skops(path)
    assert exc.value.path == str(path)
    model = load_skops(path, trusted=untrusted)
    np.testing.assert_allclose(SklearnClassifier(model).predict_proba(x), model.predict_proba(x))


def test_corrupt_or_missing_skops_files_are_model_load_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelLoadError):
        load_skops(bad)
    with pytest.raises(ModelLoadError, match="not found"):
        load_skops(tmp_path / "missing.skops")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_decision_function_fallback_gives_probabilities(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    x = rng.normal(size=(90, 4))
    y = np.arange(90) % n_classes
    x[:, 0] += 3 * y
    svc = LinearSVC().fit(x, y)
    clf = SklearnClassifier(svc)
    assert clf.input_spec == InputSpec((4,), "float64", None)
    proba = clf.predict_proba(x)
    assert proba.shape == (90, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(proba.argmax(axis=1), svc.predict(x))


def test_plain_array_model_without_codec_gets_the_reshaped_array() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 2, 3))
    y = (x[:, 0, 0] > 0).astype(int)
    lr = LogisticRegression().fit(x.reshape(50, -1), y)
    clf = SklearnClassifier(lr, input_spec=InputSpec((2, 3)))
    np.testing.assert_allclose(clf.predict_proba(x), lr.predict_proba(x.reshape(50, -1)))


def test_unfitted_and_mismatched_estimators_are_refused() -> None:
    with pytest.raises(ModelLoadError, match="not a fitted"):
        SklearnClassifier(LogisticRegression())
    df, y = _records(40)
    lr = LogisticRegression().fit(df[["age", "income"]].rename(columns={"age": "years"}), y)
    codec = FeatureCodec(infer_schema(df))
    with pytest.raises(ModelInputMismatchError) as exc:
        SklearnClassifier(lr, codec=codec)
    assert exc.value.field == "years"


# ------------------------------------------------------------------------------------- code-bearing files


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    x = np.random.default_rng(0).random((20, 3))
    lr = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    files = {
        "pickle5": pickle.dumps(lr, protocol=5),
        "pickle2": pickle.dumps({"w": [1.0, 2.0]}, protocol=2),
        "pickle0": pickle.dumps({"w": [1, 2]}, protocol=0),
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = d / f"{name}.pkl"
        paths[name].write_bytes(blob)
    paths["joblib"] = d / "model.joblib"
    joblib.dump(lr, paths["joblib"])
    paths["joblib_zlib"] = d / "model_z.joblib"
    joblib.dump(lr, paths["joblib_zlib"], compress=3)
    paths["joblib_gzip"] = d / "model.joblib.gz"
    joblib.dump(lr, paths["joblib_gzip"], compress=("gzip", 3))
    paths["skops"] = d / "model.skops"
    sio.dump(lr, paths["skops"])
    paths["safetensors"] = d / "weights.safetensors"
    save_file({"w": np.ones((2, 3), dtype=np.float32)}, str(paths["safetensors"]))
    paths["text"] = d / "notes.csv"
    paths["text"].write_text("a,b\n1,2\n")
    paths["empty"] = d / "empty.bin"
    paths["empty"].write_bytes(b"")
    paths["npz"] = d / "arrays.npz"
    np.savez(paths["npz"], x=x)
    return paths


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pickle5", "pickle"),
        ("pickle2", "pickle"),
        ("pickle0", "pickle"),
        ("joblib", "joblib"),
        ("joblib_zlib", "joblib"),
        ("joblib_gzip", "joblib"),
        ("skops", "skops"),
        ("safetensors", "safetensors"),
        ("text", "unknown"),
        ("empty", "unknown"),
        ("npz", "unknown"),
    ],
)
def test_sniff_model_format_by_content(model_files: dict[str, Path], name: str, expected: str) -> None:
    assert sniff_model_format(model_files[name]) == expected


def test_sniff_ignores_the_extension(model_files: dict[str, Path], tmp_path: Path) -> None:
    disguised = tmp_path / "weights.safetensors"
    disguised.write_bytes(model_files["pickle5"].read_bytes())
    assert sniff_model_format(disguised) == "pickle"


def test_sniff_onnx(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "m.bin"
    onnx.save(helper.make_model(graph, producer_name="garrison-test"), str(path))
    assert sniff_model_format(path) == "onnx"
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(path.read_bytes()[:-3])
    assert sniff_model_format(truncated) == "unknown"


@pytest.mark.torch
def test_sniff_torch_archives(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(3, 2))
    example = torch.randn(2, 3)
    torch.save(module.state_dict(), tmp_path / "sd.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, its files are not
        torch.jit.save(torch.jit.trace(module, example), tmp_path / "ts.pt")
    torch.export.save(torch.export.export(module, (example,)), tmp_path / "ep.pt2")
    assert sniff_model_format(tmp_path / "sd.pt") == "torch-zip"
    assert sniff_model_format(tmp_path / "ts.pt") == "torchscript"
    assert sniff_model_format(tmp_path / "ep.pt2") == "torch-export"


def test_sniff_missing_file_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        sniff_model_format(tmp_path / "nope.bin")


FORMATS = {
    "skops",
    "pickle",
    "joblib",
    "onnx",
    "torchscript",
    "torch-export",
    "torch-zip",
    "safetensors",
    "unknown",
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from(
        [b"", b"PK\x03\x04", b"PK\x05\x06", b"\x80\x04", b"\x08\x07", b"x\x9c", b"\x1f\x8b"]
    ),
    data=st.binary(max_size=400),
)
def test_sniff_never_fails_on_arbitrary_bytes(tmp_path: Path, prefix: bytes, data: bytes) -> None:
    path = tmp_path / "blob"
    path.write_bytes(prefix + data)
    assert sniff_model_format(path) in FORMATS
