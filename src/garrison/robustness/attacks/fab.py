"""FAB-T (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive boundary attack"),
targeted: steps towards the linearised boundary between the true and a target class, biased back to the clean
point, so it finds small perturbations. One forward and one input-gradient pass per step."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from garrison.adapters.base import Classifier
from garrison.robustness.attacks.base import batches, check_inputs, finalize
from garrison.robustness.attacks.torch_view import TorchView, torch_view
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["FAB"]

_ETA = 1.05  # overshoot of the boundary projection
_BETA = 0.9  # backward step towards the clean point after a success
_ALPHA_MAX = 0.1


class FAB:
    """FAB, targeted over the ``n_target_classes`` most likely wrong classes (the AutoAttack member ``FAB-T``).

    The projection onto the linearised boundary respects the box exactly for L∞ (the paper's box-constrained
    projection); for L2 it is computed without the box and clipped after. Needs a model with a ``torch_module``.
    A sample counts as fooled only if the smallest adversarial example found lies within ``eps``.
    """

    def __init__(
        self,
        *,
        targeted: bool = True,
        steps: int = 100,
        n_target_classes: int = 9,
        restarts: int = 1,
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        if steps < 1:
            raise ValueError(f"`steps` must be >= 1, got {steps!r}")
        if n_target_classes < 1:
            raise ValueError(f"`n_target_classes` must be >= 1, got {n_target_classes!r}")
        if restarts < 1:
            raise ValueError(f"`restarts` must be >= 1, got {restarts!r}")
        self.targeted = targeted
        self.steps = steps
        self.n_target_classes = n_target_classes
        self.restarts = restarts
        self.batch_size = batch_size
        self.name = name or ("fab-t" if targeted else "fab")

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
        if view is None:
            raise TypeError(f"{self.name} needs a model with a torch_module")
        targets = min(self.n_target_classes, model.n_classes - 1) if self.targeted else 1
        x_adv = self._run_torch(view, x, y, threat, targets, seed, deadline)
        return finalize(
            self.name,
            model,
            x,
            y,
            x_adv,
            threat,
            queries=self.steps * self.restarts * targets,
            started=started,
            loss="fab",
        )

    def _run_torch(
        self,
        view: TorchView,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
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
            with torch.no_grad():
                logits0 = view.logits(xb)
                ranked = logits0.argsort(dim=1, descending=True)
                y_rank = (ranked == yb[:, None]).float().argmax(1)
            best = xb.clone()
            best_norm = torch.full((len(xb),), float("inf"), device=view.device)
            with torch.no_grad():
                fooled0 = logits0.argmax(1) != yb
            best_norm[fooled0] = 0.0
            for k in range(targets):
                for restart in range(self.restarts):
                    active = (best_norm > threat.eps).nonzero().flatten()
                    if len(active) == 0:
                        break
                    # the k-th most likely class other than the true one
                    pos = torch.where(y_rank[active] <= k, k + 1, k)
                    target = ranked[active].gather(1, pos[:, None]).squeeze(1) if self.targeted else None
                    adv, norm = self._attack(
                        view,
                        xb[active],
                        yb[active],
                        target,
                        threat,
                        lo,
                        hi,
                        gen,
                        restart > 0,
                        best_norm[active],
                    )
                    better = norm < best_norm[active]
                    idx = active[better]
                    best[idx] = adv[better]
                    best_norm[idx] = norm[better]
            out[sl] = best.detach().cpu().numpy().astype(x.dtype, copy=False)
        return out

    def _attack(
        self,
        view: TorchView,
        x: Any,
        y: Any,
        target: Any,
        threat: ThreatModel,
        lo: Any,
        hi: Any,
        gen: Any,
        random_start: bool,
        known: Any,
    ) -> tuple[Any, Any]:
        torch = view.torch
        expand = (-1, *([1] * (x.ndim - 1)))
        x_k = x.clone()
        if random_start:
            radius = torch.minimum(known, torch.full_like(known, threat.eps)).clamp(max=threat.eps) / 2
            noise = (torch.rand(tuple(x.shape), generator=gen) * 2 - 1).to(view.device)
            if threat.norm == "l2":
                noise = noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(expand)
            x_k = torch.maximum(torch.minimum(x + noise * radius.view(expand), hi), lo)
        best = x.clone()
        best_norm = torch.full((len(x),), float("inf"), device=view.device)
        for _ in range(self.steps):
            p = x_k.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = view.logits(p)
                z_y = logits.gather(1, y[:, None]).squeeze(1)
                if target is None:
                    other = logits.detach().clone()
                    other.scatter_(1, y[:, None], -torch.inf)
                    z_t = logits.gather(1, other.argmax(1, keepdim=True)).squeeze(1)
                else:
                    z_t = logits.gather(1, target[:, None]).squeeze(1)
                g = z_y - z_t
                (w,) = torch.autograd.grad(g.sum(), p)
            with torch.no_grad():
                fooled = logits.argmax(1) != y
                dist = _norm(x_k - x, threat.norm)
                better = fooled & (dist < best_norm)
                best[better] = x_k[better]
                best_norm = torch.where(better, dist, best_norm)
                g = g.detach()
                d_k = _to_plane(w, g, threat.norm, x_k, lo, hi)
                # the plane through x_k, seen from the clean point: g + w . (x - x_k)
                g_orig = g + (w * (x - x_k)).flatten(1).sum(1)
                d_0 = _to_plane(w, g_orig, threat.norm, x, lo, hi)
                n_k, n_0 = _norm(d_k, threat.norm), _norm(d_0, threat.norm)
                alpha = (n_k / (n_k + n_0).clamp_min(1e-12)).clamp(max=_ALPHA_MAX).view(expand)
                x_next = (1 - alpha) * (x_k + _ETA * d_k) + alpha * (x + _ETA * d_0)
                x_next = torch.maximum(torch.minimum(x_next, hi), lo)
                # after a success, step back towards the clean point to shrink the perturbation
                back = fooled.view(expand)
                x_k = torch.where(back, (1 - _BETA) * x + _BETA * x_k, x_next)
        with torch.no_grad():
            fooled = view.logits(x_k).argmax(1) != y
            dist = _norm(x_k - x, threat.norm)
            better = fooled & (dist < best_norm)
            best[better] = x_k[better]
            best_norm = torch.where(better, dist, best_norm)
        return best, best_norm


def _norm(d: Any, norm: str) -> Any:
    flat = d.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


def _to_plane(w: Any, g: Any, norm: str, start: Any, lo: Any, hi: Any) -> Any:
    """The minimal-norm step ``d`` with ``g + w . d = 0`` and ``lo <= start + d <= hi`` (L∞: exact; L2: the
    unconstrained step, clipped to the box by the caller). When no step inside the box reaches the plane, the
    L∞ step goes as far towards it as the box allows."""
    expand = (-1, *([1] * (w.ndim - 1)))
    flat = w.flatten(1)
    if norm != "linf":
        return -(g / (flat**2).sum(1).clamp_min(1e-12)).view(expand) * w
    return _to_plane_linf_box(w, g, start, lo, hi)


def _to_plane_linf_box(w: Any, g: Any, start: Any, lo: Any, hi: Any) -> Any:
    """``min ||d||∞`` subject to ``w . d = -g`` and the box, per sample.

    Each coordinate moves in the direction that closes the gap (``-sign(g) sign(w_i)``) by ``min(t, room_i)``,
    ``room_i`` being the distance to the box that way; the closing ``f(t) = Σ |w_i| min(t, room_i)`` is piecewise
    linear and increasing in ``t``, so the smallest ``t`` with ``f(t) = |g|`` is found on the sorted rooms. Moving
    any coordinate less could only need a larger ``t`` elsewhere, so this is optimal (the FAB paper's projection
    for the L∞ case).
    """
    import torch

    n = len(w)
    direction = -torch.sign(g).view(-1, *([1] * (w.ndim - 1))) * torch.sign(w)
    room = torch.where(direction > 0, hi - start, start - lo).clamp_min(0.0)
    room = torch.where(direction == 0, torch.zeros_like(room), room).reshape(n, -1)
    a = w.abs().reshape(n, -1)
    need = g.abs()
    rooms, order = room.sort(dim=1)
    weights = a.gather(1, order)
    # f at each sorted breakpoint b_k: Σ_{i<k} a_i r_i + b_k Σ_{i>=k} a_i
    below = torch.cumsum(weights * rooms, dim=1) - weights * rooms
    above = weights.flip(1).cumsum(1).flip(1)
    f_at = below + rooms * above
    reach = f_at >= need[:, None]
    feasible = reach.any(dim=1)
    k = torch.where(
        feasible, reach.float().argmax(dim=1), torch.full_like(need, rooms.shape[1] - 1, dtype=torch.long)
    )
    p_k = below.gather(1, k[:, None]).squeeze(1)
    s_k = above.gather(1, k[:, None]).squeeze(1)
    t = torch.where(feasible, (need - p_k) / s_k.clamp_min(torch.finfo(s_k.dtype).tiny), rooms[:, -1])
    step = torch.minimum(t[:, None], room) * (a > 0)
    return direction * step.view_as(w)
