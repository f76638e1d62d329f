"""The representation a torch model gives each training row, for poison detection.

Spectral signatures and activation clustering look at what a network learnt, not at the raw input: by default the
penultimate layer, i.e. the input of the last ``nn.Linear`` (the features the logits are computed from, never the
logits themselves); or the output of a submodule the caller names (``layer="fc1"``, read with a forward hook).
Rows go through the model in batches, without gradients, in eval mode; features come back flattened, float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.core.errors import ConfigError, ModelInputMismatchError
from garrison.core.optional import import_torch

__all__ = ["PENULTIMATE", "Representation", "extract_representation", "layer_names"]

PENULTIMATE = "penultimate"


@dataclass(frozen=True)
class Representation:
    """Per-row features ``(n, d)`` float32, and which layer they come from (``layer``: a module name, with
    ``"penultimate"`` meaning the input of ``last_linear``)."""

    features: np.ndarray
    layer: str
    last_linear: str | None = None

    def describe(self) -> str:
        if self.layer == PENULTIMATE:
            return f"penultimate (input of {self.last_linear})"
        return f"output of {self.layer}"


def _module_of(model: Any) -> Any:
    torch = import_torch()
    module = getattr(model, "torch_module", model)
    if not isinstance(module, torch.nn.Module):
        raise ModelInputMismatchError(
            f"`model` must be a torch.nn.Module or a white-box classifier with `torch_module`, "
            f"got {type(model).__name__}"
        )
    return module


def layer_names(model: Any) -> list[str]:
    """The names a ``layer`` may take: every named submodule, in registration order."""
    return [name for name, _ in _module_of(model).named_modules() if name]


def _input_shape(model: Any, x: np.ndarray) -> np.ndarray:
    spec = getattr(model, "input_spec", None)
    if spec is not None:
        return spec.conform(x)
    return x


def extract_representation(
    model: Any,
    x: np.ndarray,
    *,
    layer: str | None = None,
    batch_size: int = 256,
) -> Representation:
    """Features of ``x`` at ``layer`` (default: the penultimate layer) of ``model`` (an ``nn.Module`` or a
    classifier with a ``torch_module``, such as :class:`~garrison.adapters.TorchClassifier`).

    The penultimate features are the input of the module's last ``nn.Linear`` (in registration order); a model
    without an ``nn.Linear`` needs an explicit ``layer``. An unknown ``layer`` is a :class:`ConfigError` that
    lists the names available.
    """
    torch = import_torch()
    module = _module_of(model)
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be >= 1, got {batch_size!r}", key="batch_size")
    named = dict(module.named_modules())
    if layer is None or layer == PENULTIMATE:
        linears = [name for name, m in named.items() if isinstance(m, torch.nn.Linear)]
        if not linears:
            raise ConfigError(
                "the model has no nn.Linear, so there is no penultimate layer to default to; name a layer, "
                f"one of: {', '.join(n for n in named if n) or '(none)'}",
                key="layer",
            )
        hook_name, use_input, label, last = linears[-1], True, PENULTIMATE, linears[-1]
    else:
        if layer not in named or not layer:
            available = ", ".join(n for n in named if n) or "(none)"
            raise ConfigError(f"unknown layer {layer!r}; the model has: {available}", key="layer")
        hook_name, use_input, label, last = layer, False, layer, None
    target = named[hook_name]
    x = _input_shape(model, np.asarray(x))
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    captured: list[Any] = []

    def hook(_mod: Any, inputs: tuple[Any, ...], output: Any) -> None:
        value = inputs[0] if use_input else output
        if isinstance(value, tuple):
            value = value[0]
        captured.append(value.detach().reshape(value.shape[0], -1).float().cpu())

    was_training = module.training
    handle = target.register_forward_hook(hook)
    parts: list[np.ndarray] = []
    try:
        module.eval()
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                batch = torch.as_tensor(
                    np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32), device=device
                )
                captured.clear()
                try:
                    module(batch)
                except (RuntimeError, ValueError, TypeError, IndexError) as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise ModelInputMismatchError(
                        f"the model failed on a batch of shape {tuple(batch.shape)}: {first}"
                    ) from exc
                if not captured:
                    raise ConfigError(f"layer {hook_name!r} was not called by the forward pass", key="layer")
                parts.append(captured[-1].numpy())
    finally:
        handle.remove()
        module.train(was_training)
    width = parts[0].shape[1] if parts else 0
    features = np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)
    return Representation(features.astype(np.float32, copy=False), label, last)
