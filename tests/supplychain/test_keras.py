"""Keras configs written by hand after what Keras 3 (``.keras``) and Keras 2 (``to_json``, ``.h5``) write;
Keras itself is not installed. Lambda bytecode is a harmless ``os.getcwd()`` call, marshalled by this Python."""

from __future__ import annotations

import base64
import copy
import io
import json
import marshal
import zipfile
from typing import Any

import h5py
import numpy as np
import pytest

from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import ScanContext
from garrison.supplychain.keras import analyze_keras_config, looks_like_keras_config, scan_keras_zip
from garrison.supplychain.result import ScanResult

LAMBDA_CODE = base64.b64encode(
    marshal.dumps(compile("lambda x: __import__('os').getcwd() and x", "<stdin>", "eval").co_consts[0])
).decode()
DTYPE = {
    "module": "keras",
    "class_name": "DTypePolicy",
    "config": {"name": "float32"},
    "registered_name": None,
}


def dense(name: str = "dense", activation: Any = "softmax") -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "registered_name": None,
        "config": {
            "name": name,
            "trainable": True,
            "dtype": DTYPE,
            "units": 3,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {"seed": None},
                "registered_name": None,
            },
            "bias_initializer": {
                "module": "keras.initializers",
                "class_name": "Zeros",
                "config": {},
                "registered_name": None,
            },
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
        "build_config": {"input_shape": [None, 4]},
    }


def sequential(*layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": DTYPE,
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "registered_name": None,
                    "config": {
                        "batch_shape": [None, 4],
                        "dtype": "float32",
                        "sparse": False,
                        "name": "input_layer",
                    },
                },
                *layers,
            ],
            "build_input_shape": [None, 4],
        },
        "build_config": {"input_shape": [None, 4]},
        "compile_config": {
            "optimizer": {
                "module": "keras.optimizers",
                "class_name": "Adam",
                "registered_name": None,
                "config": {"name": "adam", "learning_rate": 0.001, "beta_1": 0.9},
            },
            "loss": {
                "module": "builtins",
                "class_name": "function",
                "config": "sparse_categorical_crossentropy",
                "registered_name": None,
            },
            "metrics": ["accuracy"],
            "loss_weights": None,
            "run_eagerly": False,
            "jit_compile": False,
        },
    }


LAMBDA_LAYER = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "registered_name": None,
    "config": {
        "name": "lambda",
        "trainable": True,
        "dtype": DTYPE,
        "function": {
            "class_name": "__lambda__",
            "config": {"code": LAMBDA_CODE, "defaults": None, "closure": None},
        },
        "arguments": {},
    },
}
KERAS2_CONFIG = {
    "class_name": "Sequential",
    "keras_version": "2.15.0",
    "backend": "tensorflow",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "dense_input"},
            },
            {
                "class_name": "Dense",
                "config": {
                    "name": "dense",
                    "units": 3,
                    "activation": "softmax",
                    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                },
            },
        ],
    },
}


def issues_of(config: Any) -> list[tuple[Severity, str]]:
    return [(i.severity, i.message) for i in analyze_keras_config(config)]


def test_benign_configs_have_no_issue() -> None:
    assert looks_like_keras_config(sequential(dense()))
    assert issues_of(sequential(dense(), dense("dense_1", "relu"))) == []
    assert issues_of(KERAS2_CONFIG) == []
    hub = {
        "module": "keras_hub.src.models.bert.bert_backbone",
        "class_name": "BertBackbone",
        "config": {"vocabulary_size": 10},
        "registered_name": "keras_hub>BertBackbone",
    }
    assert issues_of(hub) == []


def test_keras3_lambda_is_critical_with_its_bytecode_names() -> None:
    ((severity, message),) = issues_of(sequential(dense(), LAMBDA_LAYER))
    assert severity is Severity.CRITICAL
    assert message.startswith("Lambda layer 'lambda' (marshalled Python bytecode")
    assert "getcwd" in message and "os" in message


def test_keras2_lambda_list_form_and_bare_lambda_object() -> None:
    config = copy.deepcopy(KERAS2_CONFIG)
    config["config"]["layers"].append(
        {
            "class_name": "Lambda",
            "config": {
                "name": "lambda_1",
                "function": [LAMBDA_CODE, None, None],
                "function_type": "lambda",
                "module": "__main__",
                "output_shape": None,
                "output_shape_type": "raw",
                "arguments": {},
            },
        }
    )
    config["config"]["layers"][1]["config"]["activation"] = {
        "class_name": "__lambda__",
        "config": {"value": [LAMBDA_CODE, None, None]},
    }
    found = issues_of(config)
    assert [s for s, _ in found] == [Severity.CRITICAL, Severity.CRITICAL]
    assert any(m.startswith("serialised Python lambda") for _, m in found)
    assert any(m.startswith("Lambda layer 'lambda_1'") for _, m in found)


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        (
            {"module": "os", "class_name": "function", "config": "system", "registered_name": None},
            "os.system",
        ),
        ({"module": "builtins", "class_name": "function", "config": "exec"}, "Python builtin 'exec'"),
        ({"module": "keras.utils", "class_name": "function", "config": "get_file"}, "keras.utils.get_file"),
        (
            {"module": "keras.config", "class_name": "function", "config": "enable_unsafe_deserialization"},
            "enable_unsafe_deserialization",
        ),
        ({"module": "mypkg.evil", "class_name": "function", "config": "run"}, "function mypkg.evil.run"),
        ({"module": "subprocess", "class_name": "Popen", "config": {"args": "id"}}, "subprocess.Popen"),
        ({"module": "keras.layers", "class_name": "__builtins__", "config": {}}, "Python internals"),
        ({"module": "keras", "class_name": "function", "config": "__import__"}, "Python internals"),
    ],
)
def test_safe_mode_bypassing_references_are_critical(activation: dict[str, Any], expected: str) -> None:
    found = issues_of(sequential(dense(activation=activation)))
    assert found, activation
    assert found[0][0] is Severity.CRITICAL and expected in found[0][1]


def test_custom_class_outside_keras_is_high() -> None:
    layer = {
        "module": "my_project.layers",
        "class_name": "Attention",
        "config": {"units": 4},
        "registered_name": "MyProject>Attention",
    }
    ((severity, message),) = issues_of(sequential(layer))
    assert severity is Severity.HIGH
    assert "custom object my_project.layers.Attention (registered as 'MyProject>Attention')" in message


def test_builtin_keras_function_names_are_fine() -> None:
    relu = {"module": "builtins", "class_name": "function", "config": "relu", "registered_name": None}
    assert issues_of(sequential(dense(activation=relu))) == []


def test_deep_configs_do_not_hit_the_recursion_limit() -> None:
    config: dict[str, Any] = {"class_name": "Lambda", "config": {}}
    for _ in range(5000):
        config = {"class_name": "Wrapper", "config": {"layer": config}}
    assert len(issues_of(config)) == 1


def keras_zip(
    config: Any, *, extra: dict[str, bytes] | None = None, raw_config: bytes | None = None
) -> bytes:
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        group = f.create_group("layers/dense/vars")
        group.create_dataset("0", data=np.zeros((4, 3), dtype="float32"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(
            "metadata.json", json.dumps({"keras_version": "3.8.0", "date_saved": "2025-01-01@00:00:00"})
        )
        zf.writestr("config.json", raw_config if raw_config is not None else json.dumps(config))
        zf.writestr("model.weights.h5", weights.getvalue())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out.getvalue()


def scan_zip(data: bytes) -> ScanResult:
    ctx = ScanContext()
    ctx.begin_file("m.keras", None)
    scan_keras_zip(Blob.from_bytes(data, "m.keras"), ctx)
    return ctx.result()


def test_benign_keras_zip() -> None:
    result = scan_zip(keras_zip(sequential(dense())))
    assert result.findings == () and result.incomplete == ()


def test_keras_zip_with_lambda_names_the_config_member() -> None:
    result = scan_zip(keras_zip(sequential(dense(), LAMBDA_LAYER)))
    (finding,) = result.findings
    assert finding.rule_id == "GAR-SC-005" and finding.severity is Severity.CRITICAL
    assert finding.location == "m.keras!config.json"
    assert finding.evidence_dict()["issues"][0]["path"] == "$.config.layers[2]"


def test_keras_zip_with_unreadable_config_is_incomplete() -> None:
    result = scan_zip(keras_zip(None, raw_config=b"{not json"))
    assert result.findings == ()
    assert [i.location for i in result.incomplete] == ["m.keras!config.json"]
    missing = io.BytesIO()
    with zipfile.ZipFile(missing, "w") as zf:
        zf.writestr("metadata.json", "{}")
    assert scan_zip(missing.getvalue()).incomplete[0].reason == "Keras archive without config.json"
