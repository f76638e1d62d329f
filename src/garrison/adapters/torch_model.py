"""PyTorch models as white-box classifiers, and the ways to load them.

A model comes from a factory in the user's own code (``"package.module:function"``) plus a weights file
(safetensors, or a ``torch.save``'d state_dict read with ``weights_only=True``), or from a TorchScript or
``torch.export`` archive. Archives are code, like pickles: they load only when the caller says the file is trusted.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from garrison.adapters.base import BaseClassifier, InputSpec
from garrison.core.errors import (
    ConfigError,
    ModelInputMismatchError,
    ModelLoadError,
    UntrustedArtifactError,
)
from garrison.core.optional import import_torch as _torch

__all__ = ["TorchClassifier", "load_factory", "load_torch_export", "load_torchscript", "load_weights"]

_OUTPUTS = ("logits", "probabilities")
_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_UNTRUSTED_HINT = "mark the model `trusted: true` or scan it first (garrison scan)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TorchClassifier(BaseClassifier):
    """A ``torch.nn.Module`` (or a loaded TorchScript / ``torch.export`` module) as a white-box classifier.

    ``output`` says what the module returns: ``"logits"`` (softmax is applied) or ``"probabilities"`` (used as
    is). ``n_classes`` is inferred from one forward pass on a zero sample when not given. Inputs are cast to
    float32 on ``device``; probabilities and gradients come back as float64 numpy arrays.
    """

    def __init__(
        self,
        module: Any,
        *,
        input_spec: InputSpec,
        n_classes: int | None = None,
        name: str = "model",
        device: str = "cpu",
        batch_size: int = 256,
        output: str = "logits",
    ) -> None:
        torch = _torch()
        if output not in _OUTPUTS:
            raise ValueError(f"`output` must be one of {', '.join(_OUTPUTS)}, got {output!r}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
        if n_classes is not None and n_classes < 2:
            raise ValueError(f"`n_classes` must be >= 2, got {n_classes!r}")
        self._torch = torch
        self._device = torch.device(device)
        self._module = module.to(self._device)
        with contextlib.suppress(NotImplementedError):  # torch.export modules are frozen and refuse .eval()
            self._module.eval()
        self._batch_size = batch_size
        self._output = output
        self.name = name  # error messages of the inference pass below name the model
        if n_classes is None:
            n_classes = self._infer_n_classes(input_spec)
        super().__init__(name=name, n_classes=n_classes, input_spec=input_spec)

    @property
    def output(self) -> str:
        """What the module returns: ``"logits"`` (softmax applied here) or ``"probabilities"``."""
        return self._output

    @property
    def torch_module(self) -> Any:
        """The wrapped module, in eval mode on ``device``."""
        return self._module

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``, float64."""
        x = self.input_spec.conform(x)
        torch = self._torch
        parts: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(x), self._batch_size):
                out = self._forward(self._tensor(x[start : start + self._batch_size]))
                probs = torch.softmax(out.double(), dim=1) if self._output == "logits" else out.double()
                if probs.shape[1] != self.n_classes:
                    raise ModelInputMismatchError(
                        f"model {self.name!r} returned {probs.shape[1]} columns, expected n_classes={self.n_classes}"
                    )
                parts.append(probs.cpu().numpy())
        if not parts:
            return np.zeros((0, self.n_classes))
        return np.concatenate(parts)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of the summed per-sample cross-entropy with respect to ``x``, so each row is its own.

        ``y`` holds class indices ``(n,)`` or one-hot / probability rows ``(n, n_classes)`` (argmax is taken).
        Only input gradients are computed; the module's parameters get no ``.grad``.
        """
        torch = self._torch
        x = self.input_spec.conform(x)
        labels = np.asarray(y)
        if labels.ndim == 2:
            labels = labels.argmax(axis=1)
        if labels.shape != (len(x),):
            raise ModelInputMismatchError(
                f"`y` must hold one label per sample ({len(x)}), got shape {labels.shape}"
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
            raise ModelInputMismatchError(
                f"labels must be class indices in [0, {self.n_classes}), got {labels.max()}"
            )
        functional = torch.nn.functional
        grads: list[np.ndarray] = []
        with torch.enable_grad():
            for start in range(0, len(x), self._batch_size):
                xb = self._tensor(x[start : start + self._batch_size]).requires_grad_(True)
                yb = torch.as_tensor(
                    labels[start : start + self._batch_size], dtype=torch.long, device=self._device
                )
                out = self._forward(xb)
                if self._output == "logits":
                    loss = functional.cross_entropy(out, yb, reduction="sum")
                else:
                    loss = functional.nll_loss(torch.log(out.clamp_min(1e-12)), yb, reduction="sum")
                (grad,) = torch.autograd.grad(loss, xb)
                grads.append(grad.detach().cpu().double().numpy())
        if not grads:
            return np.zeros(x.shape)
        return np.concatenate(grads)

    def _tensor(self, x: np.ndarray) -> Any:
        return self._torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self._device)

    def _forward(self, x: Any) -> Any:
        try:
            out = self._module(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ModelInputMismatchError(
                f"model {self.name!r} failed on a batch of shape {tuple(x.shape)}: {_first_line(exc)}"
            ) from exc
        if not isinstance(out, self._torch.Tensor) or out.ndim != 2:
            shape = tuple(out.shape) if isinstance(out, self._torch.Tensor) else type(out).__name__
            raise ModelInputMismatchError(
                f"model {self.name!r} must return a (batch, n_classes) tensor, got {shape}"
            )
        return out

    def _infer_n_classes(self, spec: InputSpec) -> int:
        with self._torch.inference_mode():
            out = self._forward(
                self._torch.zeros((1, *spec.shape), dtype=self._torch.float32, device=self._device)
            )
        return int(out.shape[1])


def load_factory(spec: str) -> Callable[[], Any]:
    """Resolve ``"package.module:function"`` to the callable. Importing runs the user's module code."""
    if not isinstance(spec, str) or not _FACTORY.match(spec):
        raise ConfigError(f"must look like 'package.module:function', got {spec!r}", key="model.factory")
    module_name, attr_path = spec.split(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code; any failure is a load failure
        raise ModelLoadError(
            f"cannot import module {module_name!r} for factory {spec!r}: {_first_line(exc)}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError:
            raise ModelLoadError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(target):
        raise ModelLoadError(f"factory {spec!r} is not callable")
    return target


def load_weights(module: Any, path: str | Path) -> Any:
    """Load a state_dict into ``module`` strictly and return it.

    safetensors files are recognised by content; anything else goes through ``torch.load(weights_only=True)``
    and must hold a plain mapping of tensors.
    """
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError("weights file not found", path=path)
    if _is_safetensors(path):
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError has no importable public base
            raise ModelLoadError(f"unreadable safetensors file: {_first_line(exc)}", path=path) from exc
    else:
        import pickle

        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            raise ModelLoadError(
                "holds objects other than tensors and plain containers; only a state_dict is accepted",
                path=path,
            ) from exc
        except Exception as exc:
            raise ModelLoadError(f"unreadable weights file: {_first_line(exc)}", path=path) from exc
    if not isinstance(state, Mapping):
        raise ModelLoadError(
            f"must hold a state_dict (a mapping of tensors), got {type(state).__name__}", path=path
        )
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ModelLoadError(f"is not a state_dict: non-tensor entries {_some(not_tensors)}", path=path)
    problems = _state_dict_problems(module.state_dict(), state)
    if problems:
        raise ModelLoadError(f"weights do not fit the model: {problems}", path=path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"weights do not fit the model: {_first_line(exc)}", path=path) from exc
    return module


def load_torchscript(path: str | Path, *, trusted: bool) -> Any:
    """Load a TorchScript archive (``torch.jit.save``). It can run code, so ``trusted=True`` is required."""
    path = Path(path)
    if not trusted:
        raise UntrustedArtifactError(
            f"is a TorchScript archive, which can run code; {_UNTRUSTED_HINT}", path=path
        )
    torch = _torch()
    if not path.is_file():
        raise ModelLoadError("model file not found", path=path)
    try:
        with warnings.catch_warnings():
            # Loading TorchScript is deprecated upstream but still the format people ship.
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(f"not a loadable TorchScript archive: {_first_line(exc)}", path=path) from exc


def load_torch_export(path: str | Path, *, trusted: bool) -> Any:
    """Load a ``torch.export`` archive (``.pt2``) and return its module. Requires ``trusted=True``."""
    path = Path(path)
    if not trusted:
        raise UntrustedArtifactError(
            f"is a torch.export archive (.pt2), which can run code; {_UNTRUSTED_HINT}", path=path
        )
    torch = _torch()
    if not path.is_file():
        raise ModelLoadError("model file not found", path=path)
    try:
        with _quiet_logger("torch.export"):
            return torch.export.load(str(path)).module()
    except Exception as exc:
        raise ModelLoadError(f"not a loadable torch.export archive: {_first_line(exc)}", path=path) from exc


def _is_safetensors(path: Path) -> bool:
    """8-byte little-endian header length, then a JSON object that fits in the file."""
    with path.open("rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + int.from_bytes(head[:8], "little") <= path.stat().st_size


def _state_dict_problems(expected: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = [
        f"{k} {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing keys {_some(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_some(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch {_some(shapes)}")
    return "; ".join(parts)


def _some(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown} (+{len(items) - limit} more)" if len(items) > limit else shown


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """torch.export logs a full traceback before raising on a corrupt archive; the raised error says enough."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)  # children without their own level inherit it
    try:
        yield
    finally:
        logger.setLevel(level)
