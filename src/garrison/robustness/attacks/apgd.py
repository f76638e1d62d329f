"""Auto-PGD (Croce & Hein 2020): PGD with momentum and a step size that halves when progress stalls.

``loss="ce"`` is APGD-CE; ``loss="dlr", targeted=True`` is APGD-T (targeted DLR over the top
``n_target_classes`` classes), the two white-box members of standard AutoAttack.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import numpy as np

from garrison.adapters.base import Classifier
from garrison.robustness.attacks.base import batches, check_inputs, finalize
from garrison.robustness.attacks.pgd import PGD, _noise
from garrison.robustness.attacks.torch_view import TorchView, torch_view
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["APGD", "checkpoints"]

_MOMENTUM = 0.75
_RHO = 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD checks its progress: ``p0 = 0, p1 = 0.22,
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``, scaled by ``steps``."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(q * steps) for q in p if q <= 1})[1:]


class APGD:
    """Auto-PGD on the cross-entropy (``"ce"``) or the difference-of-logits-ratio (``"dlr"``) loss.

    DLR needs at least 3 classes (targeted DLR 4); below that a logit margin (``"ce-margin"``) is used and the
    result's ``notes`` say so. Needs a model with a ``torch_module``; on others APGD-CE falls back to PGD.
    """

    def __init__(
        self,
        *,
        loss: Literal["ce", "dlr"] = "ce",
        steps: int = 100,
        restarts: int = 1,
        targeted: bool = False,
        n_target_classes: int = 9,
        random_start: bool = True,
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        if loss not in ("ce", "dlr"):
            raise ValueError(f"`loss` must be 'ce' or 'dlr', got {loss!r}")
        if steps < 1:
            raise ValueError(f"`steps` must be >= 1, got {steps!r}")
        if restarts < 1:
            raise ValueError(f"`restarts` must be >= 1, got {restarts!r}")
        if n_target_classes < 1:
            raise ValueError(f"`n_target_classes` must be >= 1, got {n_target_classes!r}")
        self.loss = loss
        self.steps = steps
        self.restarts = restarts
        self.targeted = targeted
        self.n_target_classes = n_target_classes
        self.random_start = random_start
        self.batch_size = batch_size
        self.name = name or ("apgd-t" if targeted else f"apgd-{loss}")

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
        view = torch_view(model)
        loss, notes = self._effective_loss(model.n_classes)
        if view is None:
            fallback = PGD(
                steps=self.steps, restarts=self.restarts, batch_size=self.batch_size, name=self.name
            )
            result = fallback.run(model, x, y, threat, seed=seed, deadline=deadline)
            note = "no torch module: ran PGD on the cross-entropy through loss_gradient instead of APGD"
            return AttackResult(
                result.name, result.x_adv, result.success, result.queries, result.elapsed_s, "ce", (note,)
            )
        targets = min(self.n_target_classes, model.n_classes - 1) if self.targeted else 1
        x_adv = self._run_torch(view, x, y, threat, loss, targets, seed, deadline)
        return finalize(
            self.name,
            model,
            x,
            y,
            x_adv,
            threat,
            queries=(self.steps + 1) * self.restarts * targets,
            started=started,
            loss=loss,
            notes=notes,
        )

    def _effective_loss(self, n_classes: int) -> tuple[str, tuple[str, ...]]:
        if self.loss != "dlr":
            return self.loss, ()
        needed = 4 if self.targeted else 3
        if n_classes >= needed:
            return "dlr", ()
        kind = "targeted DLR" if self.targeted else "DLR"
        return "ce-margin", (
            f"{kind} needs >= {needed} classes, the model has {n_classes}: used a logit margin",
        )

    def _run_torch(
        self,
        view: TorchView,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        loss: str,
        targets: int,
        seed: int,
        deadline: float | None,
    ) -> np.ndarray:
        torch = view.torch
        gen = torch.Generator().manual_seed(seed)
        out = x.copy()
        for sl in batches(len(x), self.batch_size, deadline):
            xb, yb = view.tensor(x[sl]), view.labels(y[sl])
            lo, hi = view.bounds(threat, xb)
            best = xb.clone()
            with torch.no_grad():
                logits0 = view.logits(xb)
                found = logits0.argmax(1) != yb
                ranked = logits0.argsort(dim=1, descending=True)
            for k in range(targets):
                for _ in range(self.restarts):
                    active = (~found).nonzero().flatten()
                    if len(active) == 0:
                        break
                    target = ranked[active, k + 1] if self.targeted else None
                    adv, hit = self._attack(view, xb[active], yb[active], target, threat, loss, lo, hi, gen)
                    best[active] = adv
                    found[active] = hit
            out[sl] = best.detach().cpu().numpy().astype(x.dtype, copy=False)
        return out

    def _attack(
        self,
        view: TorchView,
        x: Any,
        y: Any,
        target: Any,
        threat: ThreatModel,
        loss: str,
        lo: Any,
        hi: Any,
        gen: Any,
    ) -> tuple[Any, Any]:
        """One APGD run on a batch; returns the best point per sample (first fooling one, else highest loss)
        and whether it fools the model."""
        torch = view.torch
        expand = (-1, *([1] * (x.ndim - 1)))
        x_k = x.clone()
        if self.random_start:
            x_k = view.project(x + _noise(torch, gen, x, threat).to(view.device), x, threat, lo, hi)
        eta = torch.full((len(x),), 2.0 * threat.eps, device=view.device)

        def evaluate(point: Any, grad: bool) -> tuple[Any, Any, Any]:
            with torch.enable_grad() if grad else torch.no_grad():
                p = point.detach().requires_grad_(grad)
                logits = view.logits(p)
                value = _loss(torch, logits, y, target, loss)
                g = torch.autograd.grad(value.sum(), p)[0] if grad else None
            return value.detach(), g, logits.detach().argmax(1) != y

        loss_k, grad_k, fooled = evaluate(x_k, True)
        hit = fooled.clone()
        adv = x_k.clone()
        x_best, loss_best, grad_best = x_k.clone(), loss_k.clone(), grad_k.clone()
        x_prev = x_k.clone()
        marks = set(checkpoints(self.steps))
        last_mark = 0
        successes = torch.zeros(len(x), device=view.device)
        eta_at_mark, best_at_mark = eta.clone(), loss_best.clone()
        for i in range(self.steps):
            with torch.no_grad():
                z = view.project(
                    x_k + eta.view(expand) * view.normalize(grad_k, threat.norm), x, threat, lo, hi
                )
                if i > 0:
                    z = view.project(
                        x_k + _MOMENTUM * (z - x_k) + (1 - _MOMENTUM) * (x_k - x_prev), x, threat, lo, hi
                    )
                x_prev, x_k = x_k, z
            loss_new, grad_new, fooled = evaluate(x_k, i + 1 < self.steps)
            with torch.no_grad():
                new = fooled & ~hit
                adv[new] = x_k[new]
                hit |= fooled
                successes += (loss_new > loss_k).float()
                improved = loss_new > loss_best
                x_best[improved] = x_k[improved]
                loss_best = torch.where(improved, loss_new, loss_best)
                if grad_new is not None:
                    grad_best[improved] = grad_new[improved]
                    grad_k = grad_new
                loss_k = loss_new
                if i + 1 in marks:
                    stalled = successes < _RHO * (i + 1 - last_mark)
                    stalled |= (eta_at_mark == eta) & (best_at_mark == loss_best)
                    eta_at_mark, best_at_mark = eta.clone(), loss_best.clone()
                    eta = torch.where(stalled, eta / 2, eta)
                    if stalled.any():
                        x_k[stalled] = x_best[stalled]
                        x_prev[stalled] = x_best[stalled]
                        grad_k[stalled] = grad_best[stalled]
                    successes.zero_()
                    last_mark = i + 1
        with torch.no_grad():
            adv = torch.where(hit.view(expand), adv, x_best)
        return adv, hit


def _loss(torch: Any, logits: Any, y: Any, target: Any, kind: str) -> Any:
    """Per-sample loss to maximise."""
    if kind == "ce":
        return torch.nn.functional.cross_entropy(logits, y, reduction="none")
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    if target is None:
        other = logits.clone()
        other.scatter_(1, y[:, None], -torch.inf)
        z_other = other.max(1).values
    else:
        z_other = logits.gather(1, target[:, None]).squeeze(1)
    if kind == "ce-margin":
        return z_other - z_y
    top = logits.sort(dim=1, descending=True).values
    if target is None:
        return (z_other - z_y) / (top[:, 0] - top[:, 2] + 1e-12)
    return (z_other - z_y) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)
