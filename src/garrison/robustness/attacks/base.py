"""The :class:`Attack` protocol and what every attack shares: batching, deadlines, final bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

from garrison.adapters.base import Classifier, predict
from garrison.robustness.result import AttackResult
from garrison.robustness.threat import ThreatModel

__all__ = ["Attack", "finalize", "robust_accuracy"]


@runtime_checkable
class Attack(Protocol):
    """An evasion attack. Constructors store keyword-only parameters; :meth:`run` does the work.

    ``deadline`` is a ``time.monotonic()`` value: the attack stops between batches once it has passed and
    returns what it has (unattacked samples keep ``x_adv == x``).
    """

    name: str

    def run(
        self,
        model: Classifier,
        x: np.ndarray,
        y: np.ndarray,
        threat: ThreatModel,
        *,
        seed: int = 0,
        deadline: float | None = None,
    ) -> AttackResult: ...


def robust_accuracy(model: Classifier, x: np.ndarray, y: np.ndarray, result: AttackResult) -> float:
    """Fraction of samples classified correctly at ``result.x_adv`` (a fooled-within-eps sample counts wrong)."""
    y = np.asarray(y)
    if len(y) == 0:
        return 0.0
    pred = predict(model, model.input_spec.conform(result.x_adv))
    return float(np.mean((pred == y) & ~result.success))


def batches(n: int, size: int, deadline: float | None) -> Iterator[slice]:
    """Consecutive slices of ``size``; stops early once ``deadline`` (monotonic) has passed."""
    for start in range(0, n, size):
        if deadline is not None and time.monotonic() > deadline:
            return
        yield slice(start, min(n, start + size))


def finalize(
    name: str,
    model: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    x_adv: np.ndarray,
    threat: ThreatModel,
    *,
    queries: int,
    started: float,
    loss: str,
    notes: tuple[str, ...] = (),
) -> AttackResult:
    """Project ``x_adv`` onto the threat model once more, recompute success from fresh predictions."""
    x_adv = threat.clip(x_adv, x).astype(x.dtype, copy=False)
    pred = predict(model, model.input_spec.conform(x_adv)) if len(x) else np.zeros(0, dtype=int)
    success = (pred != np.asarray(y)) & threat.contains(x_adv, x)
    return AttackResult(
        name=name,
        x_adv=x_adv,
        success=success,
        queries=queries + 1,
        elapsed_s=time.monotonic() - started,
        loss=loss,
        notes=notes,
    )


def check_inputs(model: Classifier, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as float array of the model's sample shape and ``y`` as int64 class indices."""
    x = np.asarray(model.input_spec.conform(np.asarray(x)))
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    y = y.astype(np.int64)
    if y.shape != (len(x),):
        raise ValueError(f"`y` must hold one label per sample ({len(x)}), got shape {y.shape}")
    return x, y
