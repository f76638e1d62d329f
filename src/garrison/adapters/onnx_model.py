"""ONNX models as black-box classifiers, run by onnxruntime on the CPU.

The probability output is found by name for skl2onnx classifiers (``probabilities``, or ``output_probability``
behind a ZipMap, whose per-row dictionaries are turned back into an array in class order); otherwise the first
2-D float output is taken. With ``output="auto"`` that output is passed through a softmax unless its rows already
are probability vectors, decided once at load time from a forward pass on a zero sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from garrison.adapters.base import BaseClassifier, InputSpec
from garrison.core.errors import MissingDependencyError, ModelInputMismatchError, ModelLoadError

__all__ = ["OnnxClassifier"]

_OUTPUTS = ("auto", "logits", "probabilities")
_INPUT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}
_SKL2ONNX_PROBABILITIES = ("probabilities", "output_probability")
_CLASS_LABEL_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("onnxruntime", extra="onnx") from exc
    return onnxruntime


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxClassifier(BaseClassifier):
    """An ONNX classifier file. ``input_spec`` is read from the model where its input shape is static.

    ``output``: ``"auto"`` (softmax only when the output rows are not probabilities), ``"logits"`` (always
    softmax) or ``"probabilities"`` (never). ``classes`` come from the model's class labels when it has them.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "model",
        batch_size: int = 1024,
        output: str = "auto",
        input_spec: InputSpec | None = None,
        n_classes: int | None = None,
    ) -> None:
        if output not in _OUTPUTS:
            raise ValueError(f"`output` must be one of {', '.join(_OUTPUTS)}, got {output!r}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
        ort = _onnxruntime()
        self.path = Path(path)
        self.name = name
        if not self.path.is_file():
            raise ModelLoadError("model file not found", path=self.path)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the library never writes to the console
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise ModelLoadError(f"not a valid ONNX model: {_first_line(exc)}", path=self.path) from exc

        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(
                f"has {len(inputs)} inputs; only single-input models are supported", path=self.path
            )
        self._input_name = inputs[0].name
        dtype = _INPUT_DTYPES.get(inputs[0].type)
        if dtype is None:
            raise ModelLoadError(f"unsupported input type {inputs[0].type}", path=self.path)
        spec = self._input_spec_from(list(inputs[0].shape), dtype, input_spec)
        batch_dim = inputs[0].shape[0] if inputs[0].shape else None
        self._fixed_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self._batch_size = self._fixed_batch or batch_size

        self._output_name, self._zipmap = self._pick_output()
        self._zip_keys: tuple[Any, ...] | None = None
        self._softmax = output == "logits"
        # One forward pass on a zero sample tells the class count, the ZipMap keys and whether rows are logits.
        self._input_spec = spec
        raw = self._run(np.zeros((self._fixed_batch or 1, *spec.shape), dtype=spec.dtype))
        if self._zipmap:
            self._zip_keys = tuple(raw[0].keys())
        probe = self._to_array(raw)
        if output == "auto":
            self._softmax = not _are_probabilities(probe)
        found = probe.shape[1]
        if n_classes is not None and n_classes != found:
            raise ModelInputMismatchError(
                f"the model has {found} output classes, not n_classes={n_classes}", path=self.path
            )
        classes = self._zip_keys
        if classes is None and self._output_name in _SKL2ONNX_PROBABILITIES:
            classes = self._graph_class_labels(found)
        super().__init__(name=name, n_classes=found, input_spec=spec, classes=classes)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``, float64."""
        x = self._as_batch(x)
        parts: list[np.ndarray] = []
        for start in range(0, len(x), self._batch_size):
            chunk = x[start : start + self._batch_size]
            n = len(chunk)
            if self._fixed_batch is not None and n < self._fixed_batch:
                pad = np.zeros((self._fixed_batch - n, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self._to_array(self._run(chunk))[:n]
            parts.append(_softmax(out) if self._softmax else out)
        if not parts:
            return np.zeros((0, self.n_classes))
        return np.concatenate(parts)

    def _input_spec_from(self, shape: list[Any], dtype: str, given: InputSpec | None) -> InputSpec:
        sample = shape[1:]
        names = given.feature_names if given is not None else None
        if sample and all(isinstance(d, int) and d > 0 for d in sample):
            spec = InputSpec(tuple(sample), dtype, names)
            if given is not None and given.n_features != spec.n_features:
                raise ModelInputMismatchError(
                    f"the model takes samples of shape {spec.shape}, the data has shape {given.shape}",
                    path=self.path,
                )
            if names is not None and len(names) != spec.n_features:
                spec = InputSpec(spec.shape, dtype)
            return spec
        if given is None:
            raise ModelLoadError(
                f"the model's input shape {shape} is not fixed; pass `input_spec` (the sample shape)",
                path=self.path,
            )
        return InputSpec(given.shape, dtype, names)

    def _pick_output(self) -> tuple[str, bool]:
        outputs = self._session.get_outputs()
        by_name = {o.name: o for o in outputs}
        for candidate in _SKL2ONNX_PROBABILITIES:
            if candidate in by_name:
                return candidate, by_name[candidate].type.startswith("seq(map(")
        for o in outputs:
            if o.type in ("tensor(float)", "tensor(double)") and len(o.shape) == 2:
                return o.name, False
        listed = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
        raise ModelLoadError(f"no probability output (a 2-D float tensor) among: {listed}", path=self.path)

    def _as_batch(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.input_spec.conform(x), dtype=self.input_spec.dtype)

    def _run(self, x: np.ndarray) -> Any:
        try:
            return self._session.run([self._output_name], {self._input_name: x})[0]
        except Exception as exc:
            raise ModelInputMismatchError(
                f"model {self.name!r} rejected a batch of shape {x.shape}: {_first_line(exc)}"
            ) from exc

    def _to_array(self, raw: Any) -> np.ndarray:
        if self._zipmap:
            keys = self._zip_keys or ()
            try:
                out = np.array([[row[k] for k in keys] for row in raw], dtype=np.float64)
            except (KeyError, TypeError) as exc:
                raise ModelInputMismatchError(
                    f"model {self.name!r} returned rows without the class keys"
                ) from exc
            return out.reshape(len(raw), len(keys))
        out = np.asarray(raw, dtype=np.float64)
        if out.ndim != 2:
            raise ModelInputMismatchError(
                f"model {self.name!r} output {self._output_name!r} has shape {out.shape}, expected (n, n_classes)"
            )
        return out

    def _graph_class_labels(self, n_classes: int) -> tuple[Any, ...] | None:
        """Class labels of an ``ai.onnx.ml`` classifier node (skl2onnx without ZipMap), when onnx is installed."""
        try:
            import onnx
            from onnx import helper
        except ImportError:
            return None
        try:
            model = onnx.load(str(self.path), load_external_data=False)
        except Exception:  # onnxruntime accepted the file; a parse failure here only costs the labels
            return None
        for node in model.graph.node:
            if node.domain != "ai.onnx.ml":
                continue
            for attr in node.attribute:
                if attr.name in _CLASS_LABEL_ATTRIBUTES:
                    labels = helper.get_attribute_value(attr)
                    labels = [v.decode() if isinstance(v, bytes) else int(v) for v in labels]
                    if len(labels) == n_classes:
                        return tuple(labels)
        return None


def _are_probabilities(p: np.ndarray) -> bool:
    return bool(np.all(p >= -1e-6) and np.allclose(p.sum(axis=1), 1.0, atol=1e-3))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
