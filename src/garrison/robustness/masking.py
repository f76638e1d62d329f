"""Gradient-masking diagnostics: the checklist of Carlini et al. ("On Evaluating Adversarial Robustness"), automated.

Each signal compares the plain white-box attack with something it should not lose to, or looks at the gradients
the attack relies on:

- ``randomised``: the model answers the same batch twice differently (stochastic gradients; needs EOT);
- ``gradients``: many input gradients are zero or NaN, or a small step along the gradient does not raise the loss
  (shattered or vanishing gradients);
- ``large_eps``: PGD at an ε spanning the whole input range leaves accuracy well above zero;
- ``more_steps``: a PGD with 4× the steps and 2 restarts is markedly stronger than the baseline one;
- ``black_box``: a score-based black-box attack (Square) fools samples that both white-box PGDs (the baseline and
  the 4×-steps one) left standing;
- ``transfer``: PGD on a small surrogate distilled from the model's own probabilities around the samples, transferred
  to the model, fools samples the white-box PGD could not.

Any fired signal makes :attr:`MaskingDiagnosis.suspected` true (rule GAR-RB-001). Only ``randomised`` applies to
models without gradients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from garrison.adapters.base import Classifier, predict
from garrison.robustness.bpda import pgd_attack

__all__ = ["MaskingDiagnosis", "MaskingSignal", "diagnose_masking"]

# thresholds of the signals (fractions of the diagnosed samples)
_RANDOM_TOLERANCE = 1e-6
_DEAD_GRADIENT_SHARE = 0.2
_NO_ASCENT_SHARE = 0.5
_LARGE_EPS_ACCURACY = 0.1
_STEPS_GAIN = 0.05
_BLACK_BOX_GAIN = 0.05
_SQUARE_QUERIES = 200
_TRANSFER_GAIN = 0.05


@dataclass(frozen=True)
class MaskingSignal:
    """One checklist item: whether it fired, a one-line reading and the numbers behind it."""

    name: str
    fired: bool
    detail: str
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fired": self.fired, "detail": self.detail, "values": dict(self.values)}


@dataclass(frozen=True)
class MaskingDiagnosis:
    """The signals that were measured on ``n`` samples (those not measured are absent)."""

    signals: tuple[MaskingSignal, ...]
    n: int

    @property
    def suspected(self) -> bool:
        return any(s.fired for s in self.signals)

    @property
    def fired(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals if s.fired)

    @property
    def randomised(self) -> bool:
        return any(s.name == "randomised" and s.fired for s in self.signals)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "suspected": self.suspected, "signals": [s.to_dict() for s in self.signals]}


def diagnose_masking(
    model: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: float,
    norm: Literal["linf", "l2"] = "linf",
    lower: float | np.ndarray = 0.0,
    upper: float | np.ndarray = 1.0,
    project: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    steps: int = 20,
    n_samples: int = 100,
    black_box: bool = True,
    transfer: bool = True,
    seed: int = 0,
    deadline: float | None = None,
) -> MaskingDiagnosis:
    """Run the checklist on up to ``n_samples`` correctly classified samples of ``(x, y)`` at radius ``eps``.

    ``steps`` is the baseline PGD's budget; the ``more_steps`` signal compares it with 4× the steps and 2 restarts.
    ``black_box`` and ``transfer`` switch the Square and the surrogate-transfer signals on.
    """
    x = model.input_spec.conform(np.asarray(x))
    y = np.asarray(y, dtype=np.int64)
    first = np.asarray(model.predict_proba(x))
    second = np.asarray(model.predict_proba(x))
    gap = float(np.abs(first - second).max()) if len(x) else 0.0
    signals = [
        MaskingSignal(
            "randomised",
            gap > _RANDOM_TOLERANCE,
            f"two predictions of the same {len(x)} samples differ by up to {gap:.3g}",
            {"max_probability_gap": gap},
        )
    ]
    correct = np.flatnonzero(first.argmax(axis=1) == y)
    rng = np.random.default_rng(seed)
    if len(correct) > n_samples:
        correct = np.sort(rng.choice(correct, n_samples, replace=False))
    xs, ys = x[correct], y[correct]
    if getattr(model, "torch_module", None) is None or len(xs) == 0:
        return MaskingDiagnosis(tuple(signals), len(xs))

    def expired() -> bool:
        return deadline is not None and time.monotonic() > deadline

    bounds = {"lower": lower, "upper": upper, "project": project}
    signals.append(_gradient_signal(model, xs, ys, eps, norm, bounds))
    if not expired():
        span = float(np.max(np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)))
        big = span if norm == "linf" else span * float(np.sqrt(np.prod(xs.shape[1:])))
        if np.isfinite(big):
            adv = pgd_attack(
                model, xs, ys, eps=big, norm=norm, steps=steps, seed=seed, deadline=deadline, **bounds
            )
            acc = float(np.mean(predict(model, adv) == ys))
            signals.append(
                MaskingSignal(
                    "large_eps",
                    acc > _LARGE_EPS_ACCURACY,
                    f"PGD at ε={big:.3g} (the whole input range) leaves accuracy {acc:.1%}",
                    {"eps": big, "accuracy": acc},
                )
            )
    base = None
    if not expired():
        adv = pgd_attack(
            model, xs, ys, eps=eps, norm=norm, steps=steps, seed=seed, deadline=deadline, **bounds
        )
        base_hit = predict(model, adv) == ys
        base = float(np.mean(base_hit))
        strong = pgd_attack(
            model, xs, ys, eps=eps, norm=norm, steps=4 * steps, restarts=2, seed=seed + 1, deadline=deadline,
            **bounds,
        )  # fmt: skip
        # what the white-box attacks, at their strongest, leave standing: black-box and transfer attacks must
        # beat this, not the short baseline, or a robust model's slow PGD convergence reads as masking
        standing = base_hit & (predict(model, strong) == ys)
        strong_acc = float(np.mean(standing))
        signals.append(
            MaskingSignal(
                "more_steps",
                base - strong_acc > _STEPS_GAIN,
                f"PGD-{steps}: {base:.1%} robust; PGD-{4 * steps} with 2 restarts: {strong_acc:.1%}",
                {"steps": float(steps), "robust_accuracy": base, "robust_accuracy_more_steps": strong_acc},
            )
        )
        if black_box and not expired():
            signal = _black_box_signal(
                model, xs[standing], ys[standing], len(xs), eps, norm, bounds, seed, deadline
            )
            if signal is not None:
                signals.append(signal)
        if transfer and not expired():
            signals.append(
                _transfer_signal(model, xs, ys, standing, eps, norm, bounds, steps, seed, deadline)
            )
    return MaskingDiagnosis(tuple(signals), len(xs))


def _gradient_signal(
    model: Any, xs: np.ndarray, ys: np.ndarray, eps: float, norm: str, bounds: dict[str, Any]
) -> MaskingSignal:
    grad = np.asarray(model.loss_gradient(xs, ys), dtype=np.float64).reshape(len(xs), -1)
    nan = ~np.isfinite(grad).all(axis=1)
    size = np.linalg.norm(np.nan_to_num(grad), axis=1)
    dead = nan | (size == 0)
    # one small step along the gradient should raise the loss of almost every sample
    step = max(eps, 1e-3) / 10
    direction = np.sign(grad) if norm == "linf" else grad / np.maximum(size[:, None], 1e-12)
    moved = np.clip(xs + step * np.nan_to_num(direction).reshape(xs.shape), bounds["lower"], bounds["upper"])
    rows = np.arange(len(ys))
    before = -np.log(np.clip(np.asarray(model.predict_proba(xs))[rows, ys], 1e-300, None))
    after = -np.log(np.clip(np.asarray(model.predict_proba(moved))[rows, ys], 1e-300, None))
    no_ascent = float(np.mean(after <= before))
    dead_share = float(np.mean(dead))
    return MaskingSignal(
        "gradients",
        dead_share > _DEAD_GRADIENT_SHARE or no_ascent > _NO_ASCENT_SHARE,
        f"{dead_share:.1%} of input gradients are zero or NaN; a step along the gradient fails to raise the "
        f"loss on {no_ascent:.1%} of samples",
        {"dead_share": dead_share, "nan_share": float(np.mean(nan)), "no_ascent_share": no_ascent},
    )


def _black_box_signal(
    model: Any,
    xs: np.ndarray,
    ys: np.ndarray,
    n: int,
    eps: float,
    norm: str,
    bounds: dict[str, Any],
    seed: int,
    deadline: float | None,
) -> MaskingSignal | None:
    """Square on the samples PGD left standing: whatever it fools, the white-box attack missed."""
    try:
        from garrison.robustness.attacks import Square
        from garrison.robustness.threat import ThreatModel
    except ImportError:
        return None
    if len(xs) == 0:
        extra = 0.0
    else:
        threat = ThreatModel(norm, eps, bounds["lower"], bounds["upper"], bounds["project"])  # type: ignore[arg-type]
        result = Square(queries=_SQUARE_QUERIES).run(model, xs, ys, threat, seed=seed, deadline=deadline)
        extra = float(np.sum(predict(model, result.x_adv) != ys)) / n
    return MaskingSignal(
        "black_box",
        extra > _BLACK_BOX_GAIN,
        f"Square ({_SQUARE_QUERIES} queries) fools {extra:.1%} of the samples that survived white-box PGD",
        {"black_box_gain": extra},
    )


def _transfer_signal(
    model: Any,
    xs: np.ndarray,
    ys: np.ndarray,
    base_hit: np.ndarray,
    eps: float,
    norm: Literal["linf", "l2"],
    bounds: dict[str, Any],
    steps: int,
    seed: int,
    deadline: float | None,
) -> MaskingSignal:
    """PGD on a surrogate distilled around all of ``xs``, transferred to the samples white-box PGD left standing."""
    from garrison.robustness.surrogate import fit_surrogate

    surrogate = fit_surrogate(model, xs, eps=eps, norm=norm, seed=seed, deadline=deadline, **bounds)
    standing = np.flatnonzero(base_hit)
    values: dict[str, float] = {}
    if len(standing):
        adv = pgd_attack(
            surrogate, xs[standing], ys[standing], eps=eps, norm=norm, steps=max(steps, 20), seed=seed,
            deadline=deadline, **bounds,
        )  # fmt: skip
        extra = float(np.sum(predict(model, adv) != ys[standing])) / len(xs)
        values["surrogate_robust_accuracy"] = float(np.mean(predict(surrogate, adv) == ys[standing]))
    else:
        extra = 0.0
    agreement = float(np.mean(predict(surrogate, xs) == predict(model, xs)))
    return MaskingSignal(
        "transfer",
        extra > _TRANSFER_GAIN,
        f"PGD on a distilled surrogate ({agreement:.0%} agreement), transferred, fools {extra:.1%} of the samples "
        "that survived white-box PGD",
        {"transfer_gain": extra, "surrogate_agreement": agreement, **values},
    )
