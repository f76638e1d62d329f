"""The small torch models federated clients train, and how one client trains and the server evaluates.

Weights travel as a list of numpy arrays in ``state_dict`` order (what Flower's ``ArrayRecord`` carries). A model is
a multinomial logistic regression or a one-hidden-layer MLP on flat features: enough to learn digits in a few
rounds and fast enough for dozens of simulated clients on two CPU cores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from garrison.core.optional import import_torch

__all__ = [
    "BatchHook",
    "backdoor_success",
    "build_model",
    "evaluate_accuracy",
    "flatten",
    "initial_weights",
    "local_train",
    "unflatten",
]


BatchHook = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
"""Rewrites a mini-batch ``(x, y)`` before a training step (a backdoor stamps its trigger on some rows)."""


def build_model(n_features: int, n_classes: int, *, kind: str = "mlp", hidden: int = 32) -> Any:
    """A fresh ``torch.nn.Module``: ``logreg`` (one linear layer) or ``mlp`` (one ReLU hidden layer)."""
    torch = import_torch()
    nn = torch.nn
    if kind == "logreg":
        return nn.Sequential(nn.Linear(n_features, n_classes))
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
    raise ValueError(f"`kind` must be one of logreg, mlp, got {kind!r}")


def initial_weights(
    n_features: int, n_classes: int, *, kind: str = "mlp", hidden: int = 32, seed: int = 0
) -> list[np.ndarray]:
    """The seeded initial global weights."""
    torch = import_torch()
    torch.manual_seed(seed)
    model = build_model(n_features, n_classes, kind=kind, hidden=hidden)
    return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]


def flatten(weights: list[np.ndarray]) -> np.ndarray:
    """All arrays as one float64 vector."""
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def unflatten(vector: np.ndarray, like: list[np.ndarray]) -> list[np.ndarray]:
    """``vector`` cut back into arrays shaped (and typed) like ``like``."""
    out, start = [], 0
    for w in like:
        n = int(np.prod(w.shape))
        out.append(np.asarray(vector[start : start + n]).reshape(w.shape).astype(w.dtype))
        start += n
    return out


def _load(model: Any, weights: list[np.ndarray]) -> None:
    torch = import_torch()
    keys = list(model.state_dict().keys())
    model.load_state_dict({k: torch.as_tensor(np.asarray(w)) for k, w in zip(keys, weights, strict=True)})


def local_train(
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    kind: str = "mlp",
    hidden: int = 32,
    epochs: int = 1,
    lr: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
    batch_hook: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    | None = None,
    anomaly_weight: float = 0.0,
) -> tuple[list[np.ndarray], float]:
    """SGD from ``weights`` on (``x``, ``y``): the trained weights and the mean training loss.

    ``batch_hook`` rewrites each mini-batch (a backdoor adds triggered rows); ``anomaly_weight`` > 0 mixes in the
    constrain-and-scale penalty ``‖w - w_global‖²`` so the trained weights stay near the global ones.
    """
    torch = import_torch()
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(x.shape[1], n_classes, kind=kind, hidden=hidden)
    _load(model, weights)
    anchor = [p.detach().clone() for p in model.parameters()]
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses: list[float] = []
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            bx, by = x[idx], y[idx]
            if batch_hook is not None:
                bx, by = batch_hook(bx, by, rng)
            optimiser.zero_grad()
            loss = loss_fn(
                model(torch.as_tensor(bx, dtype=torch.float32)), torch.as_tensor(by, dtype=torch.long)
            )
            if anomaly_weight > 0:
                distance = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
                loss = (1 - anomaly_weight) * loss + anomaly_weight * distance
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
    trained = [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]
    return trained, float(np.mean(losses)) if losses else 0.0


def _predict(
    weights: list[np.ndarray], x: np.ndarray, *, n_classes: int, kind: str, hidden: int
) -> np.ndarray:
    torch = import_torch()
    model = build_model(x.shape[1], n_classes, kind=kind, hidden=hidden)
    _load(model, weights)
    model.eval()
    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()


def evaluate_accuracy(
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    kind: str = "mlp",
    hidden: int = 32,
) -> float:
    """Top-1 accuracy of ``weights`` on (``x``, ``y``)."""
    return float(np.mean(_predict(weights, x, n_classes=n_classes, kind=kind, hidden=hidden) == y))


def backdoor_success(
    weights: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    *,
    trigger: Callable[[np.ndarray], np.ndarray],
    target: int,
    n_classes: int,
    kind: str = "mlp",
    hidden: int = 32,
) -> float:
    """Share of triggered inputs whose true class is not ``target`` that the model classifies as ``target``."""
    rows = y != target
    if not rows.any():
        return 0.0
    pred = _predict(weights, trigger(x[rows]), n_classes=n_classes, kind=kind, hidden=hidden)
    return float(np.mean(pred == target))
