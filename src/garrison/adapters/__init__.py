"""Classifier adapters: one :class:`Classifier` interface over scikit-learn, PyTorch, ONNX and remote endpoints.

Framework-specific names are resolved lazily (PEP 562), so importing this package imports no framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.adapters.base import BaseClassifier, Classifier, InputSpec, WhiteBoxClassifier, predict
from garrison.adapters.fake import FunctionClassifier, linear_classifier
from garrison.core.lazy import lazy_exports

if TYPE_CHECKING:
    from garrison.adapters.loading import load, load_classifier, resolve_format
    from garrison.adapters.onnx_model import OnnxClassifier
    from garrison.adapters.remote import RemoteClassifier
    from garrison.adapters.sklearn_model import (
        SklearnClassifier,
        load_skops,
        sniff_model_format,
    )
    from garrison.adapters.torch_model import (
        TorchClassifier,
        load_factory,
        load_torch_export,
        load_torchscript,
        load_weights,
    )

_LAZY = {
    "load": "loading",
    "load_classifier": "loading",
    "resolve_format": "loading",
    "OnnxClassifier": "onnx_model",
    "RemoteClassifier": "remote",
    "SklearnClassifier": "sklearn_model",
    "load_skops": "sklearn_model",
    "sniff_model_format": "sklearn_model",
    "TorchClassifier": "torch_model",
    "load_factory": "torch_model",
    "load_torch_export": "torch_model",
    "load_torchscript": "torch_model",
    "load_weights": "torch_model",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "BaseClassifier",
    "Classifier",
    "FunctionClassifier",
    "InputSpec",
    "OnnxClassifier",
    "RemoteClassifier",
    "SklearnClassifier",
    "TorchClassifier",
    "WhiteBoxClassifier",
    "linear_classifier",
    "load",
    "load_classifier",
    "load_factory",
    "load_skops",
    "load_torch_export",
    "load_torchscript",
    "load_weights",
    "predict",
    "resolve_format",
    "sniff_model_format",
]
