"""A small differentiable stand-in for a model, fitted by distillation, for transfer attacks.

:func:`fit_surrogate` queries the target's probabilities on the given samples and on random copies of them inside
the ε-ball and the input box, and fits a one-hidden-layer MLP on the flattened input to those soft labels, then
adds the points PGD on the MLP reaches (Papernot et al. 2017's augmentation). It only has to learn the local
decision surface: its gradients stay informative where the target's are shattered or saturated, so PGD on it,
transferred to the target, is a check on a white-box attack that lost to masking.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np

from garrison.adapters.base import Classifier
from garrison.adapters.torch_model import TorchClassifier
from garrison.core.optional import import_torch as _torch
from garrison.robustness.bpda import pgd_attack

__all__ = ["fit_surrogate"]


def _ball_copies(
    x: np.ndarray,
    copies: int,
    eps: float,
    norm: str,
    lower: float | np.ndarray,
    upper: float | np.ndarray,
    project: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """``copies`` random points per sample inside its ε-ball and the box, at radii in ``[ε/4, ε]``."""
    base = np.repeat(x, copies, axis=0).astype(np.float64)
    flat = base.reshape(len(base), -1)
    # spread the radii so the surrogate sees both the sample's neighbourhood and the rim of the ball
    radius = rng.uniform(0.25, 1.0, size=(len(flat), 1)) * eps
    if norm == "linf":
        delta = rng.uniform(-1.0, 1.0, size=flat.shape) * radius
        corners = rng.random(len(flat)) < 0.5  # half at the corners of the ball, where sign steps lead
        delta[corners] = np.sign(delta[corners]) * radius[corners]
    else:
        direction = rng.standard_normal(flat.shape)
        delta = direction / np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12) * radius
    shape = x.shape[1:]

    def bound(v: float | np.ndarray) -> np.ndarray:
        arr = np.asarray(v, dtype=np.float64)
        return arr.reshape(shape) if arr.ndim and arr.size == int(np.prod(shape)) else arr

    out = np.clip(base + delta.reshape(base.shape), bound(lower), bound(upper))
    if project is not None:
        out = np.asarray(project(out, base), dtype=np.float64).reshape(base.shape)
    return out.astype(x.dtype, copy=False)


def _probabilities(model: Classifier, x: np.ndarray) -> np.ndarray:
    probs = np.clip(np.asarray(model.predict_proba(x), dtype=np.float64), 1e-12, None)
    return probs / probs.sum(axis=1, keepdims=True)


def fit_surrogate(
    model: Classifier,
    x: np.ndarray,
    *,
    eps: float,
    norm: Literal["linf", "l2"] = "linf",
    lower: float | np.ndarray = 0.0,
    upper: float | np.ndarray = 1.0,
    project: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    copies: int = 8,
    hidden: int = 64,
    steps: int = 300,
    rounds: int = 1,
    seed: int = 0,
    deadline: float | None = None,
) -> TorchClassifier:
    """Distil ``model`` around ``x`` into a one-hidden-layer MLP, returned as a white-box classifier.

    The soft labels are ``model``'s probabilities on ``x`` and on ``copies`` random points per sample within the
    ``eps``-ball and ``[lower, upper]`` (projected by ``project(x_new, x)`` when given). Training is full-batch
    Adam for ``steps`` steps, seeded; each of ``rounds`` augmentation rounds then adds the points PGD on the
    surrogate reaches, labelled by ``model``, and trains ``steps // 2`` more. It stops early past ``deadline``.
    """
    torch = _torch()
    if eps < 0:
        raise ValueError(f"`eps` must be >= 0, got {eps!r}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"`norm` must be 'linf' or 'l2', got {norm!r}")
    spec = model.input_spec
    x = spec.conform(np.asarray(x, dtype=np.float32))
    rng = np.random.default_rng(seed)
    points = np.concatenate([x, _ball_copies(x, copies, eps, norm, lower, upper, project, rng)])
    target = _probabilities(model, points)
    n_classes = target.shape[1]

    flat = points.reshape(len(points), -1).astype(np.float64)
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        first = torch.nn.Linear(spec.n_features, hidden)
        body = torch.nn.Sequential(first, torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes))
        opt = torch.optim.Adam(body.parameters(), lr=1e-2)
        mean_t = torch.as_tensor(mean, dtype=torch.float32)
        std_t = torch.as_tensor(std, dtype=torch.float32)

        def train(pts: np.ndarray, probs: np.ndarray, n_steps: int) -> None:
            inputs = (torch.as_tensor(pts.reshape(len(pts), -1), dtype=torch.float32) - mean_t) / std_t
            soft = torch.as_tensor(probs, dtype=torch.float32)
            for _ in range(n_steps):
                if deadline is not None and time.monotonic() > deadline:
                    break
                opt.zero_grad()
                log_p = torch.log_softmax(body(inputs), dim=1)
                (-(soft * log_p).sum(dim=1).mean()).backward()  # cross-entropy against the soft labels
                opt.step()

        def snapshot() -> TorchClassifier:
            # fold the standardisation into the first layer: a plain MLP on the raw features
            w = first.weight.detach() / std_t
            b = first.bias.detach() - w @ mean_t
            head = torch.nn.Linear(spec.n_features, hidden)
            with torch.no_grad():
                head.weight.copy_(w)
                head.bias.copy_(b)
            tail = torch.nn.Linear(hidden, n_classes)
            tail.load_state_dict(body[2].state_dict())
            net = torch.nn.Sequential(torch.nn.Flatten(), head, torch.nn.ReLU(), tail)
            return TorchClassifier(net.eval(), input_spec=spec, n_classes=n_classes, name="surrogate")

        train(points, target, steps)
        labels = np.asarray(model.predict_proba(x)).argmax(axis=1)
        for r in range(rounds):
            # augmentation (Papernot et al. 2017): query the model where PGD on the surrogate leads
            adv = pgd_attack(snapshot(), x, labels, eps=eps, norm=norm, lower=lower, upper=upper, project=project,
                             steps=10, seed=seed + r, deadline=deadline)  # fmt: skip
            points = np.concatenate([points, adv])
            target = np.concatenate([target, _probabilities(model, adv)])
            train(points, target, steps // 2)
        return snapshot()
