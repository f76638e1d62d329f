"""Adaptive white-box attacks for models that mask their gradients (Athalye et al. 2018).

:func:`adaptive_attack` is PGD with the three standard counter-measures switched on together:

- **BPDA** (straight-through): ``round``, ``floor``, ``ceil``, ``trunc`` and ``sign`` met on the way from the input
  to the output compute their value in the forward pass and let the gradient through unchanged (identity backward);
- a **logit-margin loss** (Carlini-Wagner), whose gradient does not vanish when a softmax saturates (logits × 1000);
- **EOT**: gradients averaged over ``eot_samples`` forward passes of a randomised model.

:func:`pgd_attack` is the same loop without them, used by the masking diagnostics as the plain white-box baseline.
Both work on the torch module of a white-box classifier and return numpy adversarial examples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from garrison.core.optional import import_torch as _torch

__all__ = ["adaptive_attack", "pgd_attack", "straight_through"]

Projection = Callable[[np.ndarray, np.ndarray], np.ndarray]


def straight_through() -> Any:
    """A context manager under which torch's rounding functions pass gradients through as the identity."""
    torch = _torch()
    from torch.overrides import TorchFunctionMode

    quantisers = {
        torch.round,
        torch.floor,
        torch.ceil,
        torch.trunc,
        torch.sign,
        torch.Tensor.round,
        torch.Tensor.floor,
        torch.Tensor.ceil,
        torch.Tensor.trunc,
        torch.Tensor.sign,
    }

    class _StraightThrough(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            first = args[0] if args else None
            if func in quantisers and isinstance(first, torch.Tensor) and first.requires_grad:
                return first + (out - first).detach()
            return out

    return _StraightThrough()


def pgd_attack(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: Literal["linf", "l2"] = "linf",
    lower: float | np.ndarray = 0.0,
    upper: float | np.ndarray = 1.0,
    project: Projection | None = None,
    steps: int = 40,
    restarts: int = 1,
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
    deadline: float | None = None,
) -> np.ndarray:
    """Plain PGD on the cross-entropy with the module's own gradients (the baseline masking fools)."""
    return _pgd(
        model, x, y, eps=eps, norm=norm, lower=lower, upper=upper, project=project, steps=steps,
        restarts=restarts, step_size=step_size, seed=seed, batch_size=batch_size, deadline=deadline,
        loss="ce", bpda=False, eot_samples=1, decay=False,
    )  # fmt: skip


def adaptive_attack(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: Literal["linf", "l2"] = "linf",
    lower: float | np.ndarray = 0.0,
    upper: float | np.ndarray = 1.0,
    project: Projection | None = None,
    steps: int = 100,
    restarts: int = 2,
    eot_samples: int = 1,
    step_size: float | None = None,
    seed: int = 0,
    batch_size: int = 256,
    deadline: float | None = None,
) -> np.ndarray:
    """PGD with BPDA (straight-through rounding), a logit-margin loss and EOT over ``eot_samples`` passes.

    Without ``step_size`` the step is ε/10 (L∞; ε/5 for L2), halved at 1/2 and again at 3/4 of ``steps``.
    Returns adversarial examples of ``x``'s shape (the highest-loss point found per sample), inside the
    ``eps``-ball and the ``[lower, upper]`` box, projected by ``project(x_adv, x)`` when given.
    """
    if eot_samples < 1:
        raise ValueError(f"`eot_samples` must be >= 1, got {eot_samples!r}")
    return _pgd(
        model, x, y, eps=eps, norm=norm, lower=lower, upper=upper, project=project, steps=steps,
        restarts=restarts, step_size=step_size, seed=seed, batch_size=batch_size, deadline=deadline,
        loss="margin", bpda=True, eot_samples=eot_samples, decay=True,
    )  # fmt: skip


def _pgd(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: str,
    lower: float | np.ndarray,
    upper: float | np.ndarray,
    project: Projection | None,
    steps: int,
    restarts: int,
    step_size: float | None,
    seed: int,
    batch_size: int,
    deadline: float | None,
    loss: str,
    bpda: bool,
    eot_samples: int,
    decay: bool,
) -> np.ndarray:
    torch = _torch()
    if eps < 0:
        raise ValueError(f"`eps` must be >= 0, got {eps!r}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"`norm` must be 'linf' or 'l2', got {norm!r}")
    module = model.torch_module
    spec = model.input_spec
    x = spec.conform(np.asarray(x))
    y = np.asarray(y, dtype=np.int64)
    if step_size is None and decay:
        step_size = eps / 10 if norm == "linf" else eps / 5
    elif step_size is None:
        step_size = 2.5 * eps / max(steps, 1) if norm == "linf" else 2.5 * eps / max(steps, 1) * 2
    try:
        device = next(module.parameters()).device
    except (StopIteration, AttributeError):
        device = torch.device("cpu")

    def tensor(v: float | np.ndarray) -> Any:
        arr = np.asarray(v, dtype=np.float32)
        if arr.ndim:
            arr = arr.reshape(1, *spec.shape) if arr.size == spec.n_features else arr[None]
        return torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32, device=device)

    lo, hi = tensor(lower), tensor(upper)
    out = x.astype(np.float32, copy=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(x), batch_size):
            if deadline is not None and time.monotonic() > deadline:
                break
            xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
            yb = torch.as_tensor(y[start : start + batch_size], device=device)
            best, best_loss = xb.clone(), torch.full((len(xb),), -torch.inf, device=device)
            for restart in range(max(restarts, 1)):
                adv = xb.clone()
                if eps > 0 and restart > 0:  # the first run starts at the clean point, the others at random
                    adv = _random_start(torch, xb, eps, norm)
                adv = _clip(torch, adv, xb, eps, norm, lo, hi)
                adv = _projected(torch, project, adv, xb)
                for i in range(steps + 1):
                    grad, value = _gradient(torch, module, adv, yb, loss, bpda, eot_samples)
                    better = value > best_loss
                    best[better], best_loss[better] = adv[better], value[better]
                    if eps == 0:
                        break
                    # a large step crosses the flat regions of a shattered or noisy loss; halving it at 1/2 and
                    # 3/4 of the budget then settles into the best region found (EOT estimates stay noisy)
                    size = step_size / (2 ** ((i >= steps // 2) + (i >= 3 * steps // 4)) if decay else 1)
                    with torch.no_grad():
                        adv = adv + size * _direction(torch, grad, norm)
                        adv = _clip(torch, adv, xb, eps, norm, lo, hi)
                        adv = _projected(torch, project, adv, xb)
            out[start : start + batch_size] = best.detach().cpu().numpy()
    return out


def _gradient(torch: Any, module: Any, adv: Any, yb: Any, loss: str, bpda: bool, eot: int) -> tuple[Any, Any]:
    """Input gradient of the per-sample loss (summed so rows are independent), averaged over ``eot`` passes."""
    grad = torch.zeros_like(adv)
    total = torch.zeros(len(adv), device=adv.device)
    for _ in range(eot):
        xb = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            if bpda:
                with straight_through():
                    logits = module(xb)
            else:
                logits = module(xb)
            values = _loss(torch, logits, yb, loss)
            (g,) = torch.autograd.grad(values.sum(), xb)
        grad += torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
        total += values.detach()
    return grad / eot, total / eot


def _loss(torch: Any, logits: Any, yb: Any, loss: str) -> Any:
    if loss == "ce":
        return torch.nn.functional.cross_entropy(logits, yb, reduction="none")
    true = logits.gather(1, yb[:, None])[:, 0]
    other = logits.masked_fill(torch.nn.functional.one_hot(yb, logits.shape[1]).bool(), -torch.inf)
    return other.max(dim=1).values - true


def _direction(torch: Any, grad: Any, norm: str) -> Any:
    if norm == "linf":
        return grad.sign()
    flat = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    return grad / flat.view(-1, *([1] * (grad.ndim - 1)))


def _random_start(torch: Any, xb: Any, eps: float, norm: str) -> Any:
    if norm == "linf":
        return xb + (torch.rand_like(xb) * 2 - 1) * eps
    noise = torch.randn_like(xb)
    noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (xb.ndim - 1)))
    radius = torch.rand(len(xb), device=xb.device).view(-1, *([1] * (xb.ndim - 1)))
    return xb + noise * radius * eps


def _clip(torch: Any, adv: Any, xb: Any, eps: float, norm: str, lo: Any, hi: Any) -> Any:
    delta = adv - xb
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        size = delta.flatten(1).norm(dim=1).view(-1, *([1] * (xb.ndim - 1)))
        delta = delta * torch.clamp(eps / size.clamp_min(1e-12), max=1.0)
    return torch.maximum(torch.minimum(xb + delta, hi), lo)


def _projected(torch: Any, project: Projection | None, adv: Any, xb: Any) -> Any:
    if project is None:
        return adv
    valid = project(adv.detach().cpu().numpy(), xb.detach().cpu().numpy())
    return torch.as_tensor(np.asarray(valid, dtype=np.float32), device=adv.device).reshape(adv.shape)
