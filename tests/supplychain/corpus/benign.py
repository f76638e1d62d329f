"""Benign corpus: files written by the real libraries (scikit-learn, pandas, numpy, torch, joblib, onnx,
safetensors, skops) the way users write them, plus a few hand-made non-pickle files of standard content.

Every file must scan with no finding at medium or above. Generation is deterministic (fixed seeds, sorted
estimator list) and takes a few seconds.
"""

from __future__ import annotations

import inspect
import json
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .containers import gguf_file, safetensors_file
from .malicious import keras_dense, keras_file, saved_model, tf_node, tf_string_const
from .manifest import Sample

__all__ = ["JOBLIB_MODES", "PICKLE_PROTOCOLS", "BenignCorpus", "write_benign"]

PICKLE_PROTOCOLS = (2, 3, 4, 5)
# joblib.dump(compress=...) values by name; "plain" interleaves raw numpy array bytes with the pickle.
JOBLIB_MODES: dict[str, object] = {
    "plain": 0,
    "zlib": 3,
    "gzip": ("gzip", 3),
    "bz2": ("bz2", 3),
    "lzma": ("lzma", 3),
    "xz": ("xz", 3),
}
# estimators pickled in every mode (the rest get one protocol and one joblib mode each, in rotation)
_EVERY_MODE = frozenset(
    {"LogisticRegression", "RandomForestClassifier", "HistGradientBoostingRegressor", "Pipeline"}
)


@dataclass
class BenignCorpus:
    """What :func:`write_benign` wrote: the samples, and the estimators it could not fit (name -> reason)."""

    samples: list[Sample] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    estimators_fitted: int = 0


@contextmanager
def _quiet() -> Iterator[None]:
    """Libraries warn while fitting tiny data (convergence, few samples); none of that matters here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dump(obj: object, path: Path, mode: str) -> None:
    import joblib

    if mode.startswith("pickle"):
        with path.open("wb") as handle:
            pickle.dump(obj, handle, protocol=int(mode.removeprefix("pickle")))
    else:
        joblib.dump(obj, path, compress=JOBLIB_MODES[mode.removeprefix("joblib-")])


def _suffix(mode: str) -> str:
    return f".p{mode.removeprefix('pickle')}.pkl" if mode.startswith("pickle") else f".{mode}.joblib"


class _Writer:
    def __init__(self, directory: Path, corpus: BenignCorpus) -> None:
        self.directory = directory
        self.corpus = corpus

    def add(self, name: str, family: str, technique: str, made_by: str, *, pickle_based: bool = True) -> Path:
        """Register a sample and return its path (parent created) for the caller to write."""
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.corpus.samples.append(Sample(name, "clean", family, technique, (), made_by, pickle_based))
        return path

    def dump(
        self, obj: object, stem: str, family: str, technique: str, made_by: str, modes: tuple[str, ...]
    ) -> None:
        for mode in modes:
            self.dump_one(obj, stem + _suffix(mode), family, f"{technique}, {mode}", made_by, mode)

    def dump_one(self, obj: object, name: str, family: str, technique: str, made_by: str, mode: str) -> None:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _dump(obj, path, mode)
        self.corpus.samples.append(Sample(name, "clean", family, technique, (), made_by))


# --- scikit-learn ---------------------------------------------------------------------------------------------


def _factories(kind: str) -> dict[str, Callable[[], Any]]:
    """Values for the arguments meta-estimators cannot be built without."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    regression = kind == "regressor"

    def base() -> Any:
        return Ridge() if regression else LogisticRegression(max_iter=50)

    def pair() -> list[tuple[str, Any]]:
        tree = DecisionTreeRegressor(max_depth=2) if regression else DecisionTreeClassifier(max_depth=2)
        return [("linear", base()), ("tree", tree)]

    return {
        "estimator": base,
        "estimators": pair,
        "param_grid": lambda: {"alpha": [0.1, 1.0]} if regression else {"C": [0.1, 1.0]},
        "param_distributions": lambda: {"alpha": [0.1, 1.0]} if regression else {"C": [0.1, 1.0]},
        "steps": lambda: [("scale", StandardScaler()), ("model", base())],
        "transformers": lambda: [("scale", StandardScaler(), [0, 1]), ("pca", PCA(n_components=1), [2, 3])],
        "transformer_list": lambda: [("pca", PCA(n_components=2)), ("scale", StandardScaler())],
        "dictionary": lambda: __import__("numpy").eye(4)[:3],
    }


def _required_arguments(cls: type, kind: str) -> dict[str, Any]:
    factories = _factories(kind)
    required = [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self"
        and parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    missing = [name for name in required if name not in factories]
    if missing:
        raise TypeError(f"needs {', '.join(missing)}")
    return {name: factories[name]() for name in required}


_FAST_PARAMS = {"n_estimators": 3, "max_iter": 20, "random_state": 0, "cv": 2, "n_init": 1}
# per-estimator parameters for tiny data (4 features, 40 samples)
_PARAMS: dict[str, dict[str, Any]] = {
    "CCA": {"n_components": 1},
    "PLSCanonical": {"n_components": 1},
    "GaussianRandomProjection": {"n_components": 2},
    "SparseRandomProjection": {"n_components": 2},
    "TSNE": {"max_iter": 250, "perplexity": 5.0},
    "OrthogonalMatchingPursuitCV": {"max_iter": 4},
}


def _inputs(name: str, x: Any, targets: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The argument tuples to try for ``fit``, in order; estimators of text, dicts or labels get their own."""
    docs = ["the cat sat", "a dog ran", "the dog sat on the cat", "cats and dogs"]
    special: dict[str, list[tuple[Any, ...]]] = {
        "CountVectorizer": [(docs,)],
        "TfidfVectorizer": [(docs,)],
        "HashingVectorizer": [(docs,)],
        "DictVectorizer": [([{"a": 1.0, "b": 2.0}, {"a": 3.0, "c": 1.0}],)],
        "FeatureHasher": [([{"a": 1.0}, {"b": 2.0}],)],
        "IsotonicRegression": [(x[:, 0], targets[0])],
        "KernelCenterer": [(x @ x.T,)],
        "LabelEncoder": [(targets[0],)],
        "LabelBinarizer": [(targets[0],)],
        "MultiLabelBinarizer": [([[1, 2], [3]],)],
    }
    if name in special:
        return special[name]
    return [(x, target) for target in targets] + [(x,)]


def _fitted_estimators() -> tuple[list[tuple[str, object]], dict[str, str]]:
    import numpy as np
    import sklearn.experimental.enable_halving_search_cv  # noqa: F401  (lists the Halving*SearchCV estimators)
    from sklearn.utils import all_estimators

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(40, 4))
    y_class = np.arange(40) % 3
    y_binary = np.arange(40) % 2
    y_multi = np.column_stack([y_binary, 1 - y_binary])
    y_reg = (
        3.0 + x @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(0.0, 0.1, size=40)
    )  # positive (Gamma, Poisson)
    y_reg2 = np.column_stack([y_reg, 2.0 * y_reg])

    regressors = {name for name, _ in all_estimators(type_filter="regressor")}
    classifiers = {name for name, _ in all_estimators(type_filter="classifier")}
    fitted: list[tuple[str, object]] = []
    skipped: dict[str, str] = {}
    for name, cls in sorted(all_estimators(), key=lambda item: item[0]):
        kind = "regressor" if name in regressors else "classifier" if name in classifiers else "other"
        try:
            with _quiet():
                estimator = cls(**_required_arguments(cls, kind))
            params = estimator.get_params(deep=False)
            overrides = {k: v for k, v in _FAST_PARAMS.items() if k in params} | _PARAMS.get(name, {})
            if name == "SelfTrainingClassifier":  # estimator=None is refused at fit
                overrides["estimator"] = _factories(kind)["estimator"]()
            if name == "FrozenEstimator":  # freezes an estimator already fitted
                overrides["estimator"] = _factories(kind)["estimator"]().fit(x, y_class)
            estimator.set_params(**overrides)
        except Exception as error:
            skipped[name] = f"construct: {type(error).__name__}: {error}"[:160]
            continue
        targets = (y_reg, y_reg2) if kind == "regressor" else (y_class, y_binary, y_multi)
        for arguments in _inputs(name, x, targets):
            try:
                with _quiet():
                    estimator.fit(*arguments)
                fitted.append((name, estimator))
                skipped.pop(name, None)
                break
            except Exception as error:
                skipped[name] = f"fit: {type(error).__name__}: {error}"[:160]
    return fitted, skipped


def _write_sklearn(writer: _Writer) -> None:
    fitted, skipped = _fitted_estimators()
    writer.corpus.skipped.update(skipped)
    protocols = [f"pickle{p}" for p in PICKLE_PROTOCOLS]
    joblibs = [f"joblib-{m}" for m in JOBLIB_MODES]
    for index, (name, estimator) in enumerate(fitted):
        modes = (
            tuple(protocols + joblibs)
            if name in _EVERY_MODE
            else (protocols[index % len(protocols)], joblibs[index % len(joblibs)])
        )
        try:
            for mode in modes:
                with _quiet():
                    writer.dump_one(
                        estimator,
                        f"sklearn/{name}{_suffix(mode)}",
                        "sklearn",
                        f"fitted {name}, {mode}",
                        "sklearn",
                        mode,
                    )
        except Exception as error:
            skipped[name] = f"pickle: {type(error).__name__}: {error}"[:160]
            writer.corpus.skipped[name] = skipped[name]
            continue
        writer.corpus.estimators_fitted += 1


# --- pandas and numpy -----------------------------------------------------------------------------------------


def _write_pandas(writer: _Writer) -> None:
    import numpy as np
    import pandas as pd

    n = 12
    frame = pd.DataFrame(
        {
            "int": np.arange(n, dtype=np.int64),
            "float": np.linspace(0.0, 1.0, n),
            "text": [f"row{i}" for i in range(n)],
            "flag": np.arange(n) % 2 == 0,
            "when": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
            "delta": pd.to_timedelta(np.arange(n), unit="s"),
            "colour": pd.Categorical(["red", "green", "blue"] * 4),
            "nullable": pd.array([1, None] * 6, dtype="Int64"),
            "maybe": [1.5, np.nan] * 6,
        }
    )
    objects: dict[str, object] = {
        "dataframe_mixed": frame,
        "series_float": pd.Series(np.arange(5.0), name="x"),
        "series_string": pd.Series(["a", "b", None], dtype="string"),
        "categorical": pd.Categorical(["low", "high", "low"], categories=["low", "high"], ordered=True),
        "datetime_index_frame": pd.DataFrame(
            {"v": np.arange(6)}, index=pd.date_range("2024-01-01", periods=6, freq="D")
        ),
        "multiindex_frame": pd.DataFrame(
            {"v": np.arange(4)}, index=pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
        ),
        "period_index": pd.period_range("2024-01", periods=4, freq="M"),
        "interval_index": pd.interval_range(0, 4),
        "timestamp": pd.Timestamp("2024-05-01 12:00", tz="Europe/Paris"),
        "sparse_series": pd.Series(pd.arrays.SparseArray([0, 0, 1, 0])),
    }
    for stem, obj in objects.items():
        writer.dump(
            obj,
            f"pandas/{stem}",
            "pandas",
            f"pandas {stem}",
            "pandas",
            tuple(f"pickle{p}" for p in PICKLE_PROTOCOLS),
        )
    for extension in ("pkl", "pkl.gz", "pkl.bz2", "pkl.xz", "pkl.zip"):
        path = writer.add(
            f"pandas/to_pickle_frame.{extension}", "pandas", f"DataFrame.to_pickle .{extension}", "pandas"
        )
        frame.to_pickle(path)


def _write_numpy(writer: _Writer) -> None:
    import numpy as np

    arrays: dict[str, Any] = {
        "bool": np.array([True, False, True]),
        **{
            t: np.arange(6, dtype=t)
            for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
        },
        **{t: np.linspace(0, 1, 6, dtype=t) for t in ("float16", "float32", "float64", "longdouble")},
        "complex64": np.arange(3, dtype=np.complex64) * (1 + 2j),
        "complex128": np.arange(3, dtype=np.complex128) * (1 - 1j),
        "datetime64_ns": np.array(["2024-01-01T00:00", "2024-06-30T12:30"], dtype="datetime64[ns]"),
        "datetime64_D": np.arange("2024-01-01", "2024-01-08", dtype="datetime64[D]"),
        "timedelta64_s": np.array([1, 60, 3600], dtype="timedelta64[s]"),
        "unicode": np.array(["alpha", "beta"]),
        "bytes": np.array([b"ab", b"cde"]),
        "structured": np.array(
            [(1, 2.5, "x"), (2, 3.5, "y")], dtype=[("id", "<i4"), ("score", "<f8"), ("tag", "U3")]
        ),
        "structured_nested": np.zeros(
            2, dtype=[("pos", [("x", "<f4"), ("y", "<f4")]), ("when", "datetime64[s]")]
        ),
        "fortran_2d": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "scalar_0d": np.array(3.25),
        "empty": np.empty((0, 3)),
    }
    for stem, array in arrays.items():
        path = writer.add(f"numpy/{stem}.npy", "numpy", f"np.save {stem}", "numpy")
        np.save(path, array)
    safe_objects = np.array([1, "two", [3, 4], {"five": 5.0}, None, (6, 7)], dtype=object)
    path = writer.add("numpy/object_safe.npy", "numpy", "np.save object array of builtins", "numpy")
    np.save(path, safe_objects, allow_pickle=True)
    path = writer.add("numpy/arrays.npz", "numpy", "np.savez of several dtypes", "numpy")
    np.savez(path, **{k: arrays[k] for k in ("int32", "float64", "structured", "datetime64_D")})
    path = writer.add(
        "numpy/arrays_compressed.npz", "numpy", "np.savez_compressed with an object array", "numpy"
    )
    np.savez_compressed(path, weights=arrays["float32"], objects=safe_objects)
    pickled: dict[str, object] = {
        "array_float": arrays["float64"],
        "array_structured": arrays["structured"],
        "array_datetime": arrays["datetime64_ns"],
        "array_object": safe_objects,
        "scalars": [np.float64(1.5), np.int32(7), np.bool_(True), np.datetime64("2024-01-01"), np.str_("s")],
        "dtypes": [np.dtype("f4"), np.dtype([("a", "<i2"), ("b", "S2")]), np.dtype("M8[ms]")],
        "generator": np.random.default_rng(0),
        "random_state": np.random.RandomState(0),
        "masked": np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False]),
    }
    for stem, obj in pickled.items():
        writer.dump(
            obj,
            f"numpy/{stem}",
            "numpy",
            f"pickled {stem}",
            "numpy",
            tuple(f"pickle{p}" for p in PICKLE_PROTOCOLS),
        )


# --- torch ----------------------------------------------------------------------------------------------------


def _write_torch(writer: _Writer) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    models: dict[str, nn.Module] = {
        "mlp": nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3), nn.Softmax(dim=1)),
        "cnn": nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2)
        ),
        "sequence": nn.Sequential(nn.Embedding(10, 4), nn.LSTM(4, 4, batch_first=True)),
        "recurrent": nn.Sequential(nn.GRU(4, 4), nn.RNN(4, 4)),
        "norms": nn.Sequential(
            nn.LayerNorm(4),
            nn.GELU(),
            nn.Tanh(),
            nn.Sigmoid(),
            nn.Identity(),
            nn.Conv1d(4, 4, 1),
            nn.AvgPool1d(1),
        ),
        "transformer": nn.Sequential(nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)),
        "attention": nn.Sequential(nn.MultiheadAttention(8, 2)),
    }
    for name, model in models.items():
        for legacy in (False, True):
            kind = "legacy" if legacy else "zip"
            for what, obj in (("module", model), ("state_dict", model.state_dict())):
                path = writer.add(
                    f"torch/{name}.{what}.{kind}.pt", "torch", f"torch.save {what} {name}, {kind}", "torch"
                )
                torch.save(obj, path, _use_new_zipfile_serialization=not legacy)

    net = models["mlp"]
    optimizers = {
        "sgd": torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
        "adam": torch.optim.Adam(net.parameters(), lr=1e-3),
        "adamw": torch.optim.AdamW(net.parameters(), lr=1e-3),
        "rmsprop": torch.optim.RMSprop(net.parameters(), lr=1e-3),
        "adagrad": torch.optim.Adagrad(net.parameters(), lr=1e-2),
    }
    loss = net(torch.ones(2, 4)).sum()
    loss.backward()
    for optimizer in optimizers.values():
        optimizer.step()
    schedulers = {
        "step": torch.optim.lr_scheduler.StepLR(optimizers["sgd"], step_size=2),
        "cosine": torch.optim.lr_scheduler.CosineAnnealingLR(optimizers["adam"], T_max=10),
        "exponential": torch.optim.lr_scheduler.ExponentialLR(optimizers["adamw"], gamma=0.9),
        "multistep": torch.optim.lr_scheduler.MultiStepLR(optimizers["rmsprop"], milestones=[2, 4]),
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(
            optimizers["adagrad"], max_lr=0.1, total_steps=10, cycle_momentum=False
        ),
    }
    with _quiet():
        for scheduler in schedulers.values():
            scheduler.step()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(torch.optim.SGD(net.parameters(), lr=0.1))
    plateau.step(1.0)
    for family_name, table in (("optimizer", optimizers), ("scheduler", {**schedulers, "plateau": plateau})):
        for name, obj in table.items():
            path = writer.add(
                f"torch/{family_name}_{name}.state_dict.pt",
                "torch",
                f"torch.save {family_name} {name} state_dict",
                "torch",
            )
            torch.save(obj.state_dict(), path)
            path = writer.add(
                f"torch/{family_name}_{name}.object.pt",
                "torch",
                f"torch.save whole {family_name} {name}",
                "torch",
            )
            torch.save(obj, path)

    tensors = {
        "f32": torch.randn(3, 3),
        "bf16": torch.randn(4).to(torch.bfloat16),
        "f16": torch.randn(4).half(),
        "i8": torch.arange(5, dtype=torch.int8),
        "u8": torch.arange(5, dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "c64": torch.randn(2, dtype=torch.complex64),
        "i64": torch.arange(3),
        "sparse": torch.eye(3).to_sparse(),
        "view": torch.arange(10.0)[2:6],
    }
    checkpoint = {
        "epoch": 3,
        "model": net.state_dict(),
        "optimizer": optimizers["adam"].state_dict(),
        "scheduler": schedulers["cosine"].state_dict(),
        "rng": torch.get_rng_state(),
        "tensors": tensors,
        "meta": {"lr": 1e-3, "tags": ("a", "b"), "dims": [1, 2], "none": None},
    }
    for legacy in (False, True):
        kind = "legacy" if legacy else "zip"
        path = writer.add(
            f"torch/checkpoint.{kind}.pt", "torch", f"training checkpoint dict, {kind}", "torch"
        )
        torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    for protocol in (2, 4):
        path = writer.add(
            f"torch/tensors.protocol{protocol}.pt", "torch", f"tensors, pickle_protocol={protocol}", "torch"
        )
        torch.save(tensors, path, pickle_protocol=protocol)


# --- formats that hold no pickle ------------------------------------------------------------------------------


def _write_nonpickle(writer: _Writer) -> None:
    import numpy as np
    import onnx
    import safetensors.numpy
    import skops.io
    import torch
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 4)).astype(np.float32)
    y = np.arange(40) % 2
    models = {
        "logistic": LogisticRegression(max_iter=100).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
    }
    for name, model in models.items():
        with _quiet():
            proto = to_onnx(model, x[:1], target_opset=17)
        path = writer.add(f"onnx/{name}.onnx", "onnx", f"skl2onnx {name}", "skl2onnx", pickle_based=False)
        path.write_bytes(proto.SerializeToString())
        path = writer.add(
            f"skops/{name}.skops", "skops", f"skops.io.dump {name}", "skops", pickle_based=False
        )
        skops.io.dump(model, path)
    with _quiet():
        proto = to_onnx(models["logistic"], x[:1], target_opset=17)
    path = writer.add(
        "onnx/external_data/model.onnx",
        "onnx",
        "ONNX with external data beside it",
        "onnx",
        pickle_based=False,
    )
    onnx.save_model(proto, path, save_as_external_data=True, location="weights.bin", size_threshold=0)

    arrays = {"weight": rng.normal(size=(4, 4)).astype(np.float32), "bias": np.zeros(4, dtype=np.float16)}
    path = writer.add(
        "safetensors/numpy.safetensors",
        "safetensors",
        "safetensors.numpy.save_file",
        "safetensors",
        pickle_based=False,
    )
    safetensors.numpy.save_file(arrays, path, metadata={"format": "np"})
    import safetensors.torch

    path = writer.add(
        "safetensors/torch.safetensors",
        "safetensors",
        "safetensors.torch.save_file",
        "safetensors",
        pickle_based=False,
    )
    safetensors.torch.save_file({"w": torch.ones(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)}, path)

    repo = writer.add(
        "huggingface/plain_repo",
        "huggingface",
        "HF repository without remote code",
        "hand",
        pickle_based=False,
    )
    repo.mkdir(exist_ok=True)
    (repo / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8})
    )
    template = (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>' + message['content'] }}"
        "{% else %}{{ '[INST] ' + message['content'] | trim + ' [/INST]' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ eos_token }}{% endif %}"
    )
    (repo / "tokenizer_config.json").write_text(json.dumps({"chat_template": template, "eos_token": "</s>"}))
    safetensors.numpy.save_file(arrays, repo / "model.safetensors")

    path = writer.add(
        "handmade/llama.gguf", "handmade", "GGUF with an ordinary chat template", "hand", pickle_based=False
    )
    path.write_bytes(
        gguf_file(
            {"general.architecture": "llama", "general.alignment": 32, "tokenizer.chat_template": template}
        )
    )
    path = writer.add(
        "handmade/header_only.safetensors",
        "handmade",
        "hand-written safetensors, two tensors",
        "hand",
        pickle_based=False,
    )
    path.write_bytes(
        safetensors_file(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
            },
            bytes(16),
        )
    )
    path = writer.add(
        "handmade/dense.keras", "handmade", "Keras 3 config of Dense layers", "hand", pickle_based=False
    )
    path.write_bytes(keras_file([keras_dense("dense_1"), keras_dense("dense_2", "softmax")]))
    saved = writer.add(
        "handmade/savedmodel",
        "handmade",
        "SavedModel: MatMul graph, SaveV2/RestoreV2 on a placeholder path",
        "hand",
        pickle_based=False,
    )
    (saved / "variables").mkdir(parents=True, exist_ok=True)
    (saved / "saved_model.pb").write_bytes(
        saved_model(
            [
                tf_node("x", "Placeholder"),
                tf_node("w", "VarHandleOp"),
                tf_node("read_w", "ReadVariableOp", ("w",)),
                tf_node("y", "MatMul", ("x", "read_w")),
                tf_node("out", "Identity", ("y",)),
                tf_node("saver_filename", "Placeholder"),
                tf_string_const("names", "w"),
                tf_string_const("slices", ""),
                tf_node("save", "SaveV2", ("saver_filename", "names", "slices", "read_w")),
                tf_node("restore", "RestoreV2", ("saver_filename", "names", "slices")),
            ]
        )
    )


def write_benign(directory: Path) -> BenignCorpus:
    """Write the benign corpus under ``directory``; return the labels and the estimators skipped (with why)."""
    corpus = BenignCorpus()
    writer = _Writer(directory, corpus)
    _write_sklearn(writer)
    _write_pandas(writer)
    _write_numpy(writer)
    _write_torch(writer)
    _write_nonpickle(writer)
    corpus.samples.sort(key=lambda s: s.name)
    return corpus
