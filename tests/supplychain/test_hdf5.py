"""HDF5 files written by h5py in the test process (bytes we control), laid out as legacy Keras ``.h5`` models
are: ``model_config``/``training_config`` JSON as bytes attributes on the root group, weights in groups."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import marshal
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.hdf5 import HDF5FormatError, read_root_attributes, scan_hdf5
from garrison.supplychain.result import ScanResult

LAMBDA_CODE = base64.b64encode(
    marshal.dumps(compile("lambda x: __import__('os').getcwd() and x", "<stdin>", "eval").co_consts[0])
).decode()


def keras2_config(*extra_layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "dense_input"},
                },
                {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "softmax"}},
                *extra_layers,
            ],
        },
    }


LAMBDA = {
    "class_name": "Lambda",
    "config": {
        "name": "lambda",
        "function": [LAMBDA_CODE, None, None],
        "function_type": "lambda",
        "module": "__main__",
        "output_shape": None,
        "arguments": {},
    },
}
TRAINING = {
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "optimizer_config": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
}


def keras_h5(
    config: Any, *, libver: str = "earliest", as_str: bool = False, training: Any = TRAINING
) -> bytes:
    out = io.BytesIO()
    with h5py.File(out, "w", libver=libver) as f:
        text = json.dumps(config)
        f.attrs["model_config"] = text if as_str else text.encode("utf-8")
        f.attrs["training_config"] = json.dumps(training).encode("utf-8")
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"dense"])
        weights.create_group("dense/dense").create_dataset("kernel:0", data=np.ones((4, 3), dtype="float32"))
    return out.getvalue()


def scan(data: bytes) -> ScanResult:
    ctx = ScanContext()
    ctx.begin_file("model.h5", None)
    scan_hdf5(Blob.from_bytes(data, "model.h5"), ctx)
    return ctx.result()


@pytest.mark.parametrize("libver", ["earliest", "latest"])
@pytest.mark.parametrize("as_str", [False, True])
def test_reads_root_attributes_of_every_layout(libver: str, as_str: bool) -> None:
    attributes = read_root_attributes(keras_h5(keras2_config(), libver=libver, as_str=as_str))
    assert json.loads(attributes["model_config"].text() or "") == keras2_config()
    assert attributes["keras_version"].value == "2.15.0"
    assert set(attributes) == {"model_config", "training_config", "keras_version", "backend"}


def test_reads_numbers_arrays_and_continuation_blocks() -> None:
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.attrs["n"] = np.int64(-3)
        f.attrs["x"] = 2.5
        f.attrs["names"] = np.array([b"a", b"bc"])
        f.create_dataset("d", data=np.arange(100))
    with h5py.File(out, "a") as f:  # reopened: new attributes go to a continuation block
        for i in range(30):
            f.attrs[f"extra{i}"] = "v" * 200
    attributes = read_root_attributes(out.getvalue())
    assert attributes["n"].value == -3 and attributes["x"].value == 2.5
    assert attributes["names"].value == [b"a", b"bc"]
    assert attributes["extra29"].value == "v" * 200


def test_benign_keras_h5_has_no_finding() -> None:
    result = scan(keras_h5(keras2_config()))
    assert result.findings == () and result.incomplete == ()


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_lambda_in_legacy_h5_is_critical(libver: str) -> None:
    (finding,) = scan(keras_h5(keras2_config(LAMBDA), libver=libver)).findings
    assert finding.rule_id == "GAR-SC-005" and finding.severity is Severity.CRITICAL
    assert finding.location == "model.h5"
    assert finding.evidence_dict()["issues"][0]["path"] == "model_config:$.config.layers[2]"
    assert "getcwd" in finding.message


def test_training_config_function_reference_is_found() -> None:
    training = dict(TRAINING, loss={"module": "os", "class_name": "function", "config": "system"})
    (finding,) = scan(keras_h5(keras2_config(), training=training)).findings
    assert finding.evidence_dict()["issues"][0]["path"] == "training_config:$.loss"


def test_weights_only_and_plain_hdf5_files_are_clean() -> None:
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.zeros((2, 2)))
    assert scan(out.getvalue()) == ScanResult((), (), ())


def test_dense_attribute_storage_is_incomplete_never_clean() -> None:
    out = io.BytesIO()
    with h5py.File(out, "w", libver="latest") as f:
        for i in range(12):  # more than the compact limit (8): the attributes move to a fractal heap
            f.attrs[f"a{i}"] = i
        f.attrs["model_config"] = json.dumps(keras2_config(LAMBDA)).encode()
    result = scan(out.getvalue())
    assert result.findings == ()
    assert "dense storage" in result.incomplete[0].reason


def test_non_json_model_config_is_incomplete() -> None:
    out = io.BytesIO()
    with h5py.File(out, "w") as f:
        f.attrs["model_config"] = b"{broken"
    assert "cannot be analysed" in scan(out.getvalue()).incomplete[0].reason


@pytest.mark.parametrize(
    "data", [b"", b"\x89HDF\r\n\x1a\n", b"\x89HDF\r\n\x1a\n\x07" + b"\0" * 100, b"x" * 600]
)
def test_malformed_files_raise_our_error(data: bytes) -> None:
    with pytest.raises(HDF5FormatError):
        read_root_attributes(data)


BENIGN = keras_h5(keras2_config())
MALICIOUS = keras_h5(keras2_config(LAMBDA), libver="latest")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([BENIGN, MALICIOUS]),
    # Edits land in the superblock and root object header half of the time, anywhere otherwise.
    st.lists(
        st.tuples(st.one_of(st.integers(0, 1200), st.integers(0, len(BENIGN) - 1)), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, len(BENIGN)),
)
def test_mutated_files_parse_or_raise_our_error(base: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(base)
    for at, value in edits:
        data[at % len(data)] = value
    data = data[:cut] if cut else data
    with contextlib.suppress(HDF5FormatError):
        read_root_attributes(bytes(data))
    assert isinstance(scan(bytes(data)), ScanResult)
