"""Captum backends for torch models: Integrated Gradients (default), Saliency, and DeepLift kept only when its
convergence delta is within tolerance (else Integrated Gradients, with a note).

Attributions are of the module's own output for the target class: logits for ``output="logits"`` models,
probabilities otherwise. The baseline is the mean background row, or zeros without background.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from garrison.core.optional import import_optional, import_torch

__all__ = ["TorchBackend"]

Result = tuple[np.ndarray, np.ndarray, np.ndarray, str, list[str], str]
_NAMES = {
    "integrated-gradients": "captum.integrated-gradients",
    "saliency": "captum.saliency",
    "deeplift": "captum.deeplift",
}


class TorchBackend:
    """One captum method over ``model.torch_module``; ``steps`` is the IG path resolution."""

    def __init__(
        self,
        model: Any,
        *,
        method: str,
        background: np.ndarray | None,
        steps: int,
        deeplift_tolerance: float,
    ) -> None:
        self._torch = import_torch()
        self._attr = import_optional("captum.attr", extra="explain")
        self._model = model
        self._module = model.torch_module
        self._method = method
        self._steps = steps
        self._tolerance = deeplift_tolerance
        self._output = "probability" if getattr(model, "output", "logits") == "probabilities" else "logit"
        param = next(iter(self._module.parameters()), None)
        self._device = param.device if param is not None else self._torch.device("cpu")
        shape = model.input_spec.shape
        base = (
            np.zeros((1, *shape))
            if background is None
            else np.asarray(background).mean(axis=0, keepdims=True)
        )
        self._baseline = self._tensor(base.reshape((1, *shape)))

    def _tensor(self, x: np.ndarray) -> Any:
        return self._torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self._device)

    def explain(self, rows: np.ndarray, targets: np.ndarray) -> Result:
        torch = self._torch
        x = self._tensor(rows).requires_grad_(True)
        t = torch.as_tensor(targets, dtype=torch.long, device=self._device)
        baselines = self._baseline.expand_as(x).contiguous()
        with torch.no_grad():
            base = self._module(baselines).double()[torch.arange(len(rows)), t].cpu().numpy()
        notes: list[str] = []
        method = self._method
        if method == "deeplift":
            values, worst, failure = self._deeplift(x, baselines, t)
            if failure is None and worst <= self._tolerance:
                notes.append(f"DeepLift convergence delta {worst:.2e} (relative) within {self._tolerance:g}")
                return values, base, targets, self._output, notes, _NAMES["deeplift"]
            why = failure or f"convergence delta {worst:.2e} (relative) exceeds {self._tolerance:g}"
            notes.append(f"DeepLift {why}: Integrated Gradients used instead")
            method = "integrated-gradients"
        if method == "saliency":
            grads = self._attr.Saliency(self._module).attribute(x, target=t, abs=True)
            values = grads.detach().double().cpu().numpy().reshape(len(rows), -1)
            return values, base, targets, self._output, notes, _NAMES["saliency"]
        ig = self._attr.IntegratedGradients(self._module)
        attr, delta = ig.attribute(
            x,
            baselines=baselines,
            target=t,
            n_steps=self._steps,
            internal_batch_size=max(1, 4096 // self._steps) * self._steps,
            return_convergence_delta=True,
        )
        values = attr.detach().double().cpu().numpy().reshape(len(rows), -1)
        notes.append(
            f"Integrated Gradients, {self._steps} steps: max |convergence delta| "
            f"{float(delta.abs().max()):.2e}"
        )
        return values, base, targets, self._output, notes, _NAMES["integrated-gradients"]

    def _deeplift(self, x: Any, baselines: Any, t: Any) -> tuple[np.ndarray, float, str | None]:
        """DeepLift values, the worst convergence delta relative to ``max(1, |f(x) - f(baseline)|)``, and why
        DeepLift could not run (``None`` when it did)."""
        torch = self._torch
        try:
            with warnings.catch_warnings():
                # captum announces the temporary hooks it sets on non-linear modules
                warnings.filterwarnings(
                    "ignore", message=r"Setting forward, backward hooks", category=UserWarning
                )
                attr, delta = self._attr.DeepLift(self._module).attribute(
                    x, baselines=baselines, target=t, return_convergence_delta=True
                )
        except (RuntimeError, AssertionError, TypeError) as exc:  # modules DeepLift cannot hook
            return np.empty((0, 0)), float("inf"), f"cannot run on this module ({type(exc).__name__})"
        with torch.no_grad():
            out = self._module(x).double()[torch.arange(len(x)), t]
            ref = self._module(baselines).double()[torch.arange(len(x)), t]
        scale = np.maximum(1.0, np.abs((out - ref).cpu().numpy()))
        values = attr.detach().double().cpu().numpy().reshape(len(x), -1)
        worst = float(np.max(np.abs(delta.detach().double().cpu().numpy()) / scale))
        return values, worst, None
