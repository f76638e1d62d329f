"""A classifier from a plain function: for tests, examples and plugin authors, with no framework needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from garrison.adapters.base import BaseClassifier, InputSpec

__all__ = ["FunctionClassifier", "linear_classifier"]


class FunctionClassifier(BaseClassifier):
    """Wraps ``fn(x) -> probabilities``. No copying, no validation: the function's behaviour is what is audited."""

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        n_classes: int,
        input_spec: InputSpec,
        name: str = "function-model",
        classes: tuple[Any, ...] | None = None,
    ) -> None:
        super().__init__(name=name, n_classes=n_classes, input_spec=input_spec, classes=classes)
        self._fn = fn

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(np.asarray(x)))


def linear_classifier(
    weights: np.ndarray, bias: np.ndarray | None = None, *, name: str = "linear"
) -> FunctionClassifier:
    """A softmax-linear classifier ``softmax(x @ weights + bias)``: a tiny, exact model for tests."""
    w = np.asarray(weights, dtype=np.float64)
    b = np.zeros(w.shape[1]) if bias is None else np.asarray(bias, dtype=np.float64)

    def fn(x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64).reshape(len(x), -1) @ w + b
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    return FunctionClassifier(
        fn, n_classes=w.shape[1], input_spec=InputSpec((w.shape[0],), "float64"), name=name
    )
