"""Attack self-tests after Zimmermann et al. 2022 ("Increasing confidence in adversarial robustness
evaluations"): run the attack on a model built so that an adversarial example provably exists within ``eps``
for every test sample. An attack that misses them is broken for this input space and budget, and any robust
accuracy it reports cannot be trusted.

The planted model keeps a set of reference samples ``x_j`` (pairwise more than ``2 eps`` apart). For an input
``x`` it takes the nearest reference and predicts ``y_j`` unless ``(x - x_j) · u_j > tau_j`` — a random
direction ``u_j`` pointing into the box, with ``tau_j`` half of what a step to the ball's edge along ``u_j``
reaches — in which case it predicts another class. The point reaching the full dot product lies inside the
ball and the box, so an adversarial example exists with margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.adapters.base import Classifier, InputSpec
from garrison.adapters.fake import FunctionClassifier
from garrison.robustness.attacks.base import Attack
from garrison.robustness.threat import ThreatModel

__all__ = ["PlantedProblem", "SelfTestResult", "planted_problem", "run_selftest"]

_SCALE = 5.0


@dataclass(frozen=True)
class SelfTestResult:
    """``passed``: the attack found the planted adversarial example for at least ``min_success`` of samples."""

    attack: str
    passed: bool
    success_rate: float
    n_samples: int
    detail: str


@dataclass(frozen=True)
class PlantedProblem:
    """A model with a planted adversarial example within ``eps`` of every sample in ``x``."""

    model: Classifier
    x: np.ndarray
    y: np.ndarray
    threat: ThreatModel


def planted_problem(
    x: np.ndarray,
    threat: ThreatModel,
    *,
    n_classes: int,
    n_samples: int = 16,
    white_box: bool = True,
    slack: float = 0.5,
    seed: int = 0,
) -> PlantedProblem:
    """Pick up to ``n_samples`` well-separated rows of ``x`` and build the planted model around them.

    ``white_box=True`` gives a torch-backed model (needs torch); ``False`` a numpy-only one.
    """
    if n_classes < 2:
        raise ValueError(f"`n_classes` must be >= 2, got {n_classes!r}")
    if not 0 < slack < 1:
        raise ValueError(f"`slack` must be in (0, 1), got {slack!r}")
    if threat.eps <= 0:
        raise ValueError("the self-test needs `eps` > 0")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape[1:]
    box = ThreatModel(threat.norm, threat.eps, threat.lower, threat.upper)
    refs = _separated(x, box, n_samples, rng)
    flat = refs.reshape(len(refs), -1)
    lower = np.broadcast_to(np.asarray(threat.lower, dtype=np.float64), shape).reshape(-1)
    upper = np.broadcast_to(np.asarray(threat.upper, dtype=np.float64), shape).reshape(-1)
    room_up, room_down = upper[None] - flat, flat - lower[None]
    sign = np.where(room_up >= room_down, 1.0, -1.0)
    dirs = sign * rng.uniform(0.5, 1.0, flat.shape)
    room = np.where(sign > 0, room_up, room_down)
    if threat.norm == "linf":
        step = sign * np.minimum(threat.eps, room)
    else:
        step = threat.eps * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        step = np.clip(flat + step, lower, upper) - flat
    reach = (step * dirs).sum(axis=1)
    if np.any(reach <= 0):
        raise ValueError("some samples sit where the box leaves no room to move within eps")
    taus = slack * reach
    labels = np.arange(len(refs)) % n_classes
    targets = (labels + 1) % n_classes
    spec = InputSpec(tuple(shape), "float32")
    if white_box:
        model: Classifier = _torch_planted(flat, dirs, taus, labels, targets, n_classes, spec, threat.norm)
    else:

        def fn(points: np.ndarray) -> np.ndarray:
            logits = _planted_logits(
                np.asarray(points, dtype=np.float64),
                flat,
                dirs,
                taus,
                labels,
                targets,
                n_classes,
                threat.norm,
            )
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        model = FunctionClassifier(fn, n_classes=n_classes, input_spec=spec, name="planted")
    return PlantedProblem(model, refs.astype(np.float32), labels.astype(np.int64), box)


def run_selftest(
    attack: Attack,
    x: np.ndarray,
    threat: ThreatModel,
    *,
    n_classes: int,
    n_samples: int = 16,
    white_box: bool = True,
    min_success: float = 0.9,
    seed: int = 0,
) -> SelfTestResult:
    """Run ``attack`` on a planted problem built from ``x``; pass when it fools ``>= min_success`` of samples."""
    problem = planted_problem(
        x, threat, n_classes=n_classes, n_samples=n_samples, white_box=white_box, seed=seed
    )
    result = attack.run(problem.model, problem.x, problem.y, problem.threat, seed=seed)
    n = len(problem.y)
    rate = float(np.mean(result.success)) if n else 0.0
    passed = n > 0 and rate >= min_success
    detail = (
        f"{attack.name} fooled {int(np.sum(result.success))} of {n} planted samples "
        f"(each has an adversarial example within {threat.norm} eps={threat.eps:g}); needed {min_success:.0%}"
    )
    return SelfTestResult(attack.name, passed, rate, n, detail)


def _separated(x: np.ndarray, threat: ThreatModel, n: int, rng: np.random.Generator) -> np.ndarray:
    """Greedily pick rows pairwise more than ``2 eps`` apart, so the nearest reference within a ball is its own."""
    chosen: list[int] = []
    for i in rng.permutation(len(x)):
        if len(chosen) >= n:
            break
        if not chosen or np.all(
            threat.distance(x[chosen], np.broadcast_to(x[i], x[chosen].shape)) > 2 * threat.eps
        ):
            chosen.append(int(i))
    return x[sorted(chosen)]


def _planted_logits(
    points: np.ndarray,
    refs: np.ndarray,
    dirs: np.ndarray,
    taus: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    n_classes: int,
    norm: str,
) -> np.ndarray:
    p = points.reshape(len(points), -1)
    gaps = np.abs(p[:, None, :] - refs[None])
    dist = gaps.max(axis=2) if norm == "linf" else np.sqrt((gaps**2).sum(axis=2))
    j = dist.argmin(axis=1)
    score = ((p - refs[j]) * dirs[j]).sum(axis=1) - taus[j]
    logits = np.full((len(p), n_classes), -10.0)
    rows = np.arange(len(p))
    logits[rows, labels[j]] = 0.0
    logits[rows, targets[j]] = _SCALE * score / taus[j]
    return logits


def _torch_planted(
    refs: np.ndarray,
    dirs: np.ndarray,
    taus: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    n_classes: int,
    spec: InputSpec,
    norm: str,
) -> Classifier:
    from garrison.adapters.torch_model import TorchClassifier, _torch

    torch = _torch()

    class Planted(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            as_t = torch.as_tensor
            self.register_buffer("refs", as_t(refs, dtype=torch.float32))
            self.register_buffer("dirs", as_t(dirs, dtype=torch.float32))
            self.register_buffer("taus", as_t(taus, dtype=torch.float32))
            self.register_buffer("labels", as_t(labels, dtype=torch.long))
            self.register_buffer("targets", as_t(targets, dtype=torch.long))

        def forward(self, x: Any) -> Any:
            p = x.flatten(1)
            with torch.no_grad():
                gaps = (p[:, None, :] - self.refs[None]).abs()
                dist = gaps.amax(dim=2) if norm == "linf" else gaps.pow(2).sum(dim=2)
                j = dist.argmin(dim=1)
            score = ((p - self.refs[j]) * self.dirs[j]).sum(dim=1) - self.taus[j]
            logits = torch.full((len(p), n_classes), -10.0, device=p.device, dtype=p.dtype)
            rows = torch.arange(len(p), device=p.device)
            logits = logits.index_put((rows, self.labels[j]), torch.zeros_like(score))
            return logits.index_put((rows, self.targets[j]), _SCALE * score / self.taus[j])

    return TorchClassifier(Planted(), input_spec=spec, n_classes=n_classes, name="planted")
