"""The one interface every model is audited through: :class:`Classifier`.

A scikit-learn pipeline, a torch network, an ONNX file and a remote endpoint all look the same to attacks and
checks: ``predict_proba`` on a numeric batch (the codec's space, see ``garrison.data.FeatureCodec``), ``n_classes``
and ``input_spec``. White-box models also offer ``loss_gradient`` and ``torch_module``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from garrison.core.errors import ModelInputMismatchError

__all__ = ["BaseClassifier", "Classifier", "InputSpec", "WhiteBoxClassifier", "predict"]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The per-sample input a classifier takes: ``shape`` excludes the batch axis."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    feature_names: tuple[str, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 0

    def conform(self, x: np.ndarray) -> np.ndarray:
        """``x`` as a batch of this spec's sample shape: reshaped when only the layout differs (flat 64 vs
        ``(1, 8, 8)``), else :class:`ModelInputMismatchError`."""
        x = np.asarray(x)
        if x.shape[1:] == self.shape:
            return x
        if x.ndim >= 1 and int(np.prod(x.shape[1:])) == self.n_features:
            return x.reshape((len(x), *self.shape))
        raise ModelInputMismatchError(
            f"the model takes samples of shape {self.shape}, got a batch of shape {x.shape}"
        )


@runtime_checkable
class Classifier(Protocol):
    """A model that maps a batch ``x`` of shape ``(n, *input_spec.shape)`` to probabilities ``(n, n_classes)``.

    ``classes`` are the label values in output-column order (``None`` means ``0 .. n_classes-1``).
    """

    name: str

    @property
    def n_classes(self) -> int: ...

    @property
    def input_spec(self) -> InputSpec: ...

    @property
    def classes(self) -> tuple[Any, ...] | None: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class WhiteBoxClassifier(Classifier, Protocol):
    """A classifier whose input gradients are available (torch modules)."""

    @property
    def torch_module(self) -> Any: ...

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the cross-entropy loss with respect to ``x`` (same shape as ``x``)."""
        ...


def predict(model: Classifier, x: np.ndarray) -> np.ndarray:
    """Predicted class indices (column of the largest probability)."""
    return np.asarray(model.predict_proba(x)).argmax(axis=1)


class BaseClassifier:
    """Convenience base: stores name, spec and classes. Subclasses implement ``predict_proba``."""

    def __init__(
        self,
        *,
        name: str,
        n_classes: int,
        input_spec: InputSpec,
        classes: tuple[Any, ...] | None = None,
    ) -> None:
        self.name = name
        self._n_classes = n_classes
        self._input_spec = input_spec
        self._classes = classes

    @property
    def n_classes(self) -> int:
        return self._n_classes

    @property
    def input_spec(self) -> InputSpec:
        return self._input_spec

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self._classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_classes={self.n_classes})"
