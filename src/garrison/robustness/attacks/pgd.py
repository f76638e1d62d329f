"""FGSM and PGD (Madry et al. 2018): steepest ascent on the cross-entropy, projected back onto the threat model."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from garrison.adapters.base import Classifier, predict
from garrison.robustness.attacks.base import batches, check_inputs, finalize
from garrison.robustness.attacks.torch_view import TorchView, torch_view
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["FGSM", "PGD"]


class PGD:
    """Projected gradient descent, L∞ or L2 (the threat model's norm).

    Per step exactly one forward and one input-gradient pass. ``step_size`` defaults to ``2.5 * eps / steps``.
    A restart runs only on samples still classified correctly; each sample keeps the first point that fooled
    the model. Torch-native on models with a ``torch_module``; otherwise through ``model.loss_gradient``.
    """

    def __init__(
        self,
        *,
        steps: int = 40,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        batch_size: int = 256,
        name: str = "pgd",
    ) -> None:
        if steps < 0:
            raise ValueError(f"`steps` must be >= 0, got {steps!r}")
        if restarts < 1:
            raise ValueError(f"`restarts` must be >= 1, got {restarts!r}")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
        if step_size is not None and step_size <= 0:
            raise ValueError(f"`step_size` must be > 0, got {step_size!r}")
        self.steps = steps
        self.step_size = step_size
        self.random_start = random_start
        self.restarts = restarts
        self.batch_size = batch_size
        self.name = name

    def run(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        *,
        seed: int = 0,
        deadline: float | None = None,
    ) -> AttackResult:
        """Attack ``x`` (labels ``y``) within ``threat``; deterministic under ``seed``."""
        started = time.monotonic()
        x, y = check_inputs(model, x, y)
        step = self._step_size(threat)
        view = torch_view(model)
        if view is not None:
            x_adv = self._run_torch(view, x, y, threat, step, seed, deadline)
        else:
            x_adv = self._run_numpy(model, x, y, threat, step, seed, deadline)
        return finalize(
            self.name,
            model,
            x,
            y,
            x_adv,
            threat,
            queries=self.steps * self.restarts,
            started=started,
            loss="ce",
        )

    def _step_size(self, threat: ThreatModel) -> float:
        return self.step_size if self.step_size is not None else 2.5 * threat.eps / max(self.steps, 1)

    def _run_torch(
        self,
        view: TorchView,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        step: float,
        seed: int,
        deadline: float | None,
    ) -> np.ndarray:
        torch = view.torch
        functional = torch.nn.functional
        gen = torch.Generator().manual_seed(seed)
        out = x.copy()
        for sl in batches(len(x), self.batch_size, deadline):
            xb, yb = view.tensor(x[sl]), view.labels(y[sl])
            lo, hi = view.bounds(threat, xb)
            best = xb.clone()
            found = torch.zeros(len(xb), dtype=torch.bool, device=view.device)
            for restart in range(self.restarts):
                active = (~found).nonzero().flatten()
                if len(active) == 0:
                    break
                xa, ya = xb[active], yb[active]
                adv = xa.clone()
                if self.random_start:
                    adv = view.project(
                        xa + _noise(torch, gen, xa, threat).to(view.device), xa, threat, lo, hi
                    )
                hit = torch.zeros(len(xa), dtype=torch.bool, device=view.device)
                first = adv.clone()
                for _ in range(self.steps):
                    adv = adv.detach().requires_grad_(True)
                    logits = view.logits(adv)
                    (grad,) = torch.autograd.grad(functional.cross_entropy(logits, ya, reduction="sum"), adv)
                    with torch.no_grad():
                        new = (logits.argmax(1) != ya) & ~hit
                        if new.any():
                            first[new] = adv[new].detach()
                            hit |= new
                        adv = view.project(adv + step * view.normalize(grad, threat.norm), xa, threat, lo, hi)
                with torch.no_grad():
                    adv = torch.where(hit.view(-1, *([1] * (adv.ndim - 1))), first, adv.detach())
                    if restart + 1 < self.restarts:
                        hit |= view.logits(adv).argmax(1) != ya
                    best[active] = adv
                    found[active] = hit
            out[sl] = best.detach().cpu().numpy().astype(x.dtype, copy=False)
        return out

    def _run_numpy(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        step: float,
        seed: int,
        deadline: float | None,
    ) -> np.ndarray:
        gradient = getattr(model, "loss_gradient", None)
        if gradient is None:
            raise TypeError(f"{self.name} needs a white-box model (torch_module or loss_gradient)")
        rng = np.random.default_rng(seed)
        out = x.copy()
        for sl in batches(len(x), self.batch_size, deadline):
            xb, yb = x[sl].astype(np.float64), y[sl]
            best = xb.copy()
            found = np.zeros(len(xb), dtype=bool)
            for _ in range(self.restarts):
                active = np.flatnonzero(~found)
                if len(active) == 0:
                    break
                xa, ya = xb[active], yb[active]
                adv = threat.clip(xa + _noise_np(rng, xa, threat), xa) if self.random_start else xa.copy()
                for _ in range(self.steps):
                    g = np.asarray(gradient(adv, ya), dtype=np.float64).reshape(adv.shape)
                    adv = threat.clip(adv + step * _direction_np(g, threat.norm), xa)
                best[active] = adv
                found[active] = predict(model, adv) != ya
            out[sl] = best.astype(x.dtype, copy=False)
        return out


class FGSM(PGD):
    """The fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps`` from the clean point
    (for L2, the fast gradient method: one normalised step)."""

    def __init__(self, *, batch_size: int = 256, name: str = "fgsm") -> None:
        super().__init__(steps=1, random_start=False, restarts=1, batch_size=batch_size, name=name)

    def _step_size(self, threat: ThreatModel) -> float:
        return threat.eps


def _noise(torch: Any, gen: Any, like: Any, threat: ThreatModel) -> Any:
    """A uniform random point of the ``eps``-ball (L∞: per coordinate; L2: uniform in the ball)."""
    shape = tuple(like.shape)
    if threat.norm == "linf":
        return (torch.rand(shape, generator=gen) * 2 - 1) * threat.eps
    d = torch.randn(shape, generator=gen)
    d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (len(shape) - 1)))
    n = int(np.prod(shape[1:]))
    r = torch.rand(shape[0], generator=gen) ** (1.0 / max(n, 1)) * threat.eps
    return d * r.view(-1, *([1] * (len(shape) - 1)))


def _noise_np(rng: np.random.Generator, like: np.ndarray, threat: ThreatModel) -> np.ndarray:
    if threat.norm == "linf":
        return rng.uniform(-threat.eps, threat.eps, like.shape)
    d = rng.standard_normal(like.shape).reshape(len(like), -1)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    r = rng.uniform(size=(len(like), 1)) ** (1.0 / max(d.shape[1], 1)) * threat.eps
    return (d * r).reshape(like.shape)


def _direction_np(g: np.ndarray, norm: str) -> np.ndarray:
    if norm == "linf":
        return np.sign(g)
    flat = g.reshape(len(g), -1)
    return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)).reshape(g.shape)
