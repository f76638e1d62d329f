"""A white-box model seen as tensors: forward to logits, one input-gradient pass, projection — all on device."""

from __future__ import annotations

from typing import Any

import numpy as np

from garrison.adapters.base import Classifier
from garrison.core.optional import import_torch as _torch
from garrison.robustness.threat import ThreatModel

__all__ = ["TorchView", "torch_view"]


def torch_view(model: Classifier) -> TorchView | None:
    """A :class:`TorchView` when ``model`` exposes a torch module, else ``None`` (use the numpy path)."""
    module = getattr(model, "torch_module", None)
    if module is None:
        return None
    return TorchView(model, module)


class TorchView:
    """Tensor-level access to a white-box classifier. Gradients are taken with respect to the input only."""

    def __init__(self, model: Classifier, module: Any) -> None:
        torch = _torch()
        self.torch = torch
        self.model = model
        self.module = module
        param = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
        self.device = param.device if param is not None else torch.device(getattr(model, "_device", "cpu"))
        # TorchClassifier(output="probabilities"): log-probabilities are logits up to a per-row constant.
        self.probabilities = getattr(model, "output", "logits") == "probabilities"

    def tensor(self, x: np.ndarray) -> Any:
        return self.torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.device)

    def labels(self, y: np.ndarray) -> Any:
        return self.torch.as_tensor(y, dtype=self.torch.long, device=self.device)

    def logits(self, x: Any) -> Any:
        out = self.module(x)
        if self.probabilities:
            out = self.torch.log(out.clamp_min(1e-12))
        return out

    def bounds(self, threat: ThreatModel, like: Any) -> tuple[Any, Any]:
        """``lower`` and ``upper`` as tensors broadcastable to ``like``."""
        shape = tuple(like.shape[1:])
        lo = (
            np.broadcast_to(np.asarray(threat.lower, dtype=np.float32), shape)
            if np.ndim(threat.lower)
            else None
        )
        hi = (
            np.broadcast_to(np.asarray(threat.upper, dtype=np.float32), shape)
            if np.ndim(threat.upper)
            else None
        )
        t = self.torch
        lo_t = t.as_tensor(lo.copy(), device=self.device) if lo is not None else t.tensor(float(threat.lower))
        hi_t = t.as_tensor(hi.copy(), device=self.device) if hi is not None else t.tensor(float(threat.upper))
        return lo_t.to(self.device), hi_t.to(self.device)

    def project(self, x_adv: Any, x: Any, threat: ThreatModel, lo: Any, hi: Any) -> Any:
        """Onto the ``eps``-ball around ``x`` ∩ ``[lo, hi]`` ∩ ``threat.project`` (the last one via numpy)."""
        t = self.torch
        delta = x_adv - x
        if threat.norm == "linf":
            delta = delta.clamp(-threat.eps, threat.eps)
        else:
            norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            factor = (threat.eps / norms).clamp(max=1.0)
            delta = delta * factor.view(-1, *([1] * (delta.ndim - 1)))
        out = t.maximum(t.minimum(x + delta, hi), lo)
        if threat.project is not None:
            projected = threat.project(out.detach().cpu().double().numpy(), x.detach().cpu().double().numpy())
            out = self.tensor(np.asarray(projected).reshape(tuple(out.shape)))
        return out

    def normalize(self, g: Any, norm: str) -> Any:
        """The steepest-ascent direction of unit norm: ``sign(g)`` (L∞) or ``g / ||g||₂``."""
        if norm == "linf":
            return g.sign()
        norms = g.flatten(1).norm(dim=1).clamp_min(1e-12)
        return g / norms.view(-1, *([1] * (g.ndim - 1)))
