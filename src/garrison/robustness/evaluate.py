"""The robustness evaluation: clean accuracy, robust accuracy per ε (a curve), per class, attack success rate and
median minimal perturbation, each with its sample size and Wilson interval.

The attacks are the default ensemble unless given; each sample keeps its worst case across attacks, and an
adversarial example found at a smaller ε counts at every larger one. When the masking diagnostics fire (see
:mod:`garrison.robustness.masking`), the adaptive attack (BPDA, margin loss, EOT) joins the ensemble, so the
reported number is the strongest result available, never the flattering white-box one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from garrison.adapters.base import BaseClassifier, Classifier, predict
from garrison.robustness.bpda import adaptive_attack
from garrison.robustness.curve import CurvePoint, wilson_interval
from garrison.robustness.masking import MaskingDiagnosis, diagnose_masking

__all__ = ["RobustnessEvaluation", "evaluate_robustness"]

Projection = Callable[[np.ndarray, np.ndarray], np.ndarray]
ProgressCallback = Callable[[str, int, int], None]

_EOT_SAMPLES = 10


@dataclass(frozen=True)
class RobustnessEvaluation:
    """What :func:`evaluate_robustness` measured on ``n`` samples.

    ``robust_correct[k]`` marks the samples still correctly classified under attack at ``eps[k]``;
    ``median_min_perturbation`` is the smallest ε (from a bisection) at which half the correctly classified
    samples are fooled (``inf`` when that takes more than ``2 × max(eps)``). ``examples`` holds a few originals and
    their adversarials at the middle ε, for figures. ``extras["x_adv"][k]`` is the adversarial set at ``eps[k]``
    (in the attack's units): per sample the example that fooled the model, else the adaptive attack's
    highest-loss point when it ran, else the input — so a randomised model's verdicts can be re-scored.
    """

    norm: str
    eps: tuple[float, ...]
    y: np.ndarray
    clean_correct: np.ndarray
    robust_correct: tuple[np.ndarray, ...]
    n_classes: int
    attacks: tuple[str, ...]
    median_min_perturbation: float
    masking: MaskingDiagnosis | None = None
    white_box_robust_accuracy: tuple[float, ...] | None = None
    eps_unit: str = "absolute"
    examples: tuple[np.ndarray, np.ndarray] | None = None
    notes: tuple[str, ...] = ()
    partial: bool = False
    elapsed_s: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean_correct)) if self.n else math.nan

    @property
    def clean_ci(self) -> tuple[float, float]:
        return wilson_interval(int(self.clean_correct.sum()), self.n)

    @property
    def curve(self) -> tuple[CurvePoint, ...]:
        clean = int(self.clean_correct.sum())
        return tuple(
            CurvePoint(e, self.n, int(r.sum()), clean, clean - int(r.sum()))
            for e, r in zip(self.eps, self.robust_correct, strict=True)
        )

    def robust_accuracy(self, eps: float) -> float:
        """Robust accuracy at one of the evaluated radii."""
        return self.curve[self.eps.index(eps)].robust_accuracy

    def per_class(self, eps: float) -> list[dict[str, Any]]:
        """Rows ``class, support, clean_accuracy, robust_accuracy, ci_low, ci_high`` at ``eps``."""
        robust = self.robust_correct[self.eps.index(eps)]
        rows = []
        for c in range(self.n_classes):
            mask = self.y == c
            k, n = int(robust[mask].sum()), int(mask.sum())
            if not n:
                continue
            lo, hi = wilson_interval(k, n)
            rows.append(
                {
                    "class": c,
                    "support": n,
                    "clean_accuracy": float(self.clean_correct[mask].mean()),
                    "robust_accuracy": k / n,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.clean_ci
        median = self.median_min_perturbation
        return {
            "norm": self.norm,
            "eps_unit": self.eps_unit,
            "n": self.n,
            "clean_accuracy": self.clean_accuracy,
            "clean_ci": [lo, hi],
            "curve": [p.to_dict() for p in self.curve],
            "median_min_perturbation": median if math.isfinite(median) else None,
            "attacks": list(self.attacks),
            "masking": None if self.masking is None else self.masking.to_dict(),
            "white_box_robust_accuracy": None
            if self.white_box_robust_accuracy is None
            else list(self.white_box_robust_accuracy),
            "notes": list(self.notes),
            "partial": self.partial,
        }


def evaluate_robustness(
    model: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    *,
    eps: Sequence[float],
    norm: Literal["linf", "l2"] = "linf",
    lower: float | np.ndarray = 0.0,
    upper: float | np.ndarray = 1.0,
    project: Projection | None = None,
    eps_unit: Literal["absolute", "range"] = "absolute",
    attacks: Any = None,
    masking: bool = True,
    adaptive_steps: int = 100,
    min_perturbation: bool = True,
    bisection_rounds: int = 5,
    seed: int = 0,
    deadline: float | None = None,
    progress: ProgressCallback | None = None,
) -> RobustnessEvaluation:
    """Evaluate ``model`` on ``(x, y)`` (``y``: class indices) against attacks within ``eps`` in ``norm``.

    ``lower``/``upper`` bound valid inputs (``Schema.bounds()``); ``project(x_adv, x)`` maps a point back to a
    valid one (``FeatureCodec.project``). With ``eps_unit="range"`` each ε is a fraction of every feature's range
    ``upper - lower`` (the attack then runs on inputs rescaled to ``[0, 1]``; bounds must be finite, and the model
    is treated as black-box). ``attacks``: one attack, a sequence (each sample keeps its worst case) or ``None``
    for :func:`garrison.robustness.default_ensemble`. ``deadline`` is a ``time.monotonic()`` value; past it the
    evaluation stops between attacks and is marked ``partial``. ``adaptive_steps`` is the budget of the adaptive
    attack run when masking is suspected (``masking=False`` skips the diagnostics).
    """
    from garrison.robustness.threat import ThreatModel

    started = time.monotonic()
    radii = tuple(float(e) for e in eps)
    if not radii or any(not math.isfinite(e) or e < 0 for e in radii):
        raise ValueError(f"`eps` must be a non-empty list of radii >= 0, got {list(eps)!r}")
    if norm not in ("linf", "l2"):
        raise ValueError(f"`norm` must be 'linf' or 'l2', got {norm!r}")
    x = model.input_spec.conform(np.asarray(x))
    y = np.asarray(y, dtype=np.int64)
    notes: list[str] = []
    target: Classifier = model
    if eps_unit == "range":
        target = _RangeScaled(model, lower, upper, project)
        x_in, lower, upper = target.to_unit(x), 0.0, 1.0
        project = target.project if project is not None else None
    elif eps_unit == "absolute":
        x_in = x
    else:
        raise ValueError(f"`eps_unit` must be 'absolute' or 'range', got {eps_unit!r}")
    order = np.argsort(radii, kind="stable")
    if attacks is None:
        from garrison.robustness import default_ensemble

        attack_list = [default_ensemble(target, target.n_classes)]
    elif isinstance(attacks, Sequence):
        attack_list = list(attacks)
    else:
        attack_list = [attacks]
    names = [getattr(a, "name", type(a).__name__) for a in attack_list]

    def expired() -> bool:
        return deadline is not None and time.monotonic() > deadline

    def report(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    clean = predict(target, x_in) == y
    robust: dict[int, np.ndarray] = {}
    adversarials: dict[int, np.ndarray] = {}
    partial = False
    previous = clean.copy()
    examples = None
    middle = int(order[len(order) // 2])
    for step, k in enumerate(order):
        report("attacking", step, len(order))
        threat = ThreatModel(norm, radii[k], lower, upper, project)
        standing = previous.copy()
        x_best = (x_in if step == 0 else adversarials[int(order[step - 1])]).copy()  # fooled at a smaller ε
        for attack in attack_list:
            idx = np.flatnonzero(standing)
            if expired():
                partial = True
                break
            if not len(idx):
                break
            result = attack.run(target, x_in[idx], y[idx], threat, seed=seed, deadline=deadline)
            fooled = predict(target, result.x_adv) != y[idx]
            standing[idx[fooled]] = False
            x_best[idx[fooled]] = result.x_adv[fooled]
        robust[int(k)] = standing
        adversarials[int(k)] = x_best
        previous = standing
        if int(k) == middle:
            examples = (x_in, x_best)
    report("attacking", len(order), len(order))
    robust_list = [robust.get(int(k), clean.copy()) for k in range(len(radii))]
    adv_list = [adversarials.get(int(k), x_in.copy()) for k in range(len(radii))]

    diagnosis = None
    white_box = None
    white_box_model = eps_unit == "absolute" and getattr(model, "torch_module", None) is not None
    if masking and not expired():
        report("masking diagnostics", 0, 1)
        diagnosis = diagnose_masking(
            target, x_in, y, eps=radii[middle], norm=norm, lower=lower, upper=upper, project=project, steps=10,
            n_samples=100, seed=seed, deadline=deadline,
        )  # fmt: skip
        if diagnosis.suspected and white_box_model:
            white_box = tuple(float(np.mean(r)) for r in robust_list)
            eot = _EOT_SAMPLES if diagnosis.randomised else 1
            notes.append(
                "gradient masking suspected ("
                + ", ".join(diagnosis.fired)
                + "): robust accuracy includes an "
                f"adaptive attack (BPDA straight-through, margin loss, EOT over {eot} passes)"
            )
            names.append("adaptive-bpda-eot")
            robust_list = _adaptive(target, x_in, y, robust_list, adv_list, radii, order, norm, lower,
                                    upper, project, eot, adaptive_steps, seed, deadline)  # fmt: skip
        elif diagnosis.suspected:
            notes.append(
                "gradient masking suspected (" + ", ".join(diagnosis.fired) + ") on a black-box model"
            )
        report("masking diagnostics", 1, 1)

    median = math.nan
    if min_perturbation and not expired():
        median = _median_min_perturbation(target, x_in, y, clean, radii, robust_list, attack_list, norm, lower,
                                          upper, project, bisection_rounds, seed, deadline)  # fmt: skip
    if expired():
        partial = True
    if examples is not None and eps_unit == "range":
        assert isinstance(target, _RangeScaled)
        examples = (target.from_unit(examples[0]), target.from_unit(examples[1]))
    return RobustnessEvaluation(
        norm=norm,
        eps=radii,
        y=y,
        clean_correct=clean,
        robust_correct=tuple(robust_list),
        n_classes=int(model.n_classes),
        attacks=tuple(names),
        median_min_perturbation=median,
        masking=diagnosis,
        white_box_robust_accuracy=white_box,
        eps_unit=eps_unit,
        examples=examples,
        notes=tuple(notes),
        partial=partial,
        elapsed_s=time.monotonic() - started,
        extras={"x_adv": tuple(adv_list)},
    )


def _adaptive(
    model: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    robust_list: list[np.ndarray],
    adv_list: list[np.ndarray],
    radii: tuple[float, ...],
    order: np.ndarray,
    norm: str,
    lower: Any,
    upper: Any,
    project: Projection | None,
    eot: int,
    steps: int,
    seed: int,
    deadline: float | None,
) -> list[np.ndarray]:
    """Each radius's standing samples attacked again with BPDA/EOT; worst case kept and carried to larger ε.

    ``adv_list`` is updated in place: an attacked sample keeps the adaptive attack's point (whether it fooled the
    model or is its highest-loss point); a sample fooled at a smaller ε keeps that radius's example.

    On a randomised model (``eot > 1``) every verdict so far came from a single forward pass, so a sample counted
    as fooled (or as misclassified when clean) may hold an example the model gets right on most passes: every
    sample is attacked again, and each keeps whichever example (earlier or adaptive) the model gets right on fewer
    of ``2 × eot`` passes."""
    out = [r.copy() for r in robust_list]
    previous, prev_k = None, 0
    for k in order:
        standing = out[k] if previous is None else out[k] & previous
        if previous is not None:
            carried = ~previous & robust_list[k]
            adv_list[k][carried] = adv_list[prev_k][carried]
        idx = np.arange(len(y)) if eot > 1 else np.flatnonzero(standing)
        if len(idx):
            adv = adaptive_attack(
                model, x[idx], y[idx], eps=radii[k], norm=norm, lower=lower, upper=upper,  # type: ignore[arg-type]
                project=project, eot_samples=eot, steps=steps, restarts=1, seed=seed, deadline=deadline,
            )  # fmt: skip
            if eot > 1:
                earlier = adv_list[k][idx]
                keep = _hit_rate(model, earlier, y[idx], 2 * eot) < _hit_rate(model, adv, y[idx], 2 * eot)
                adv[keep] = earlier[keep]
            adv_list[k][idx] = adv
            standing[idx[predict(model, adv) != y[idx]]] = False
        out[k] = standing
        previous, prev_k = standing, k
    return out


def _hit_rate(model: Classifier, x: np.ndarray, y: np.ndarray, passes: int) -> np.ndarray:
    """Per sample, the share of ``passes`` forward passes of a randomised model that classify it correctly."""
    return np.mean([predict(model, x) == y for _ in range(passes)], axis=0)


def _median_min_perturbation(
    model: Classifier,
    x: np.ndarray,
    y: np.ndarray,
    clean: np.ndarray,
    radii: tuple[float, ...],
    robust_list: list[np.ndarray],
    attack_list: list[Any],
    norm: str,
    lower: Any,
    upper: Any,
    project: Projection | None,
    rounds: int,
    seed: int,
    deadline: float | None,
) -> float:
    """Bisection over ε for the radius at which half the correctly classified samples are fooled, with the
    attacks capped at ``2 × max(eps)``; ``inf`` beyond the cap."""
    from garrison.robustness.threat import ThreatModel

    n_clean = int(clean.sum())
    if n_clean == 0:
        return math.nan

    def fooled_share(e: float) -> float:
        threat = ThreatModel(norm, e, lower, upper, project)  # type: ignore[arg-type]
        standing = clean.copy()
        for attack in attack_list:
            idx = np.flatnonzero(standing)
            if not len(idx):
                break
            result = attack.run(model, x[idx], y[idx], threat, seed=seed, deadline=deadline)
            standing[idx[predict(model, result.x_adv) != y[idx]]] = False
        return 1.0 - standing.sum() / n_clean

    lo, hi = 0.0, math.inf
    for e, r in sorted(zip(radii, robust_list, strict=True)):
        if 1.0 - r.sum() / n_clean >= 0.5:
            hi = e
            break
        lo = e
    if not math.isfinite(hi):
        cap = 2.0 * max(radii)
        if fooled_share(cap) < 0.5:
            return math.inf
        hi = cap
    for _ in range(rounds):
        if deadline is not None and time.monotonic() > deadline:
            break
        mid = (lo + hi) / 2
        if fooled_share(mid) >= 0.5:
            hi = mid
        else:
            lo = mid
    return hi


class _RangeScaled(BaseClassifier):
    """``model`` seen on inputs rescaled to ``[0, 1]`` per feature: ``x = lower + z * (upper - lower)``."""

    def __init__(self, model: Classifier, lower: Any, upper: Any, project: Projection | None) -> None:
        super().__init__(
            name=model.name, n_classes=model.n_classes, input_spec=model.input_spec, classes=model.classes
        )
        shape = model.input_spec.shape
        lo = np.broadcast_to(np.asarray(lower, dtype=np.float64), shape)
        hi = np.broadcast_to(np.asarray(upper, dtype=np.float64), shape)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("`eps_unit='range'` needs finite `lower` and `upper` bounds")
        self._model = model
        self._lower = lo
        self._span = np.where(hi > lo, hi - lo, 1.0)
        self._project = project

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self._lower) / self._span

    def from_unit(self, z: np.ndarray) -> np.ndarray:
        return self._lower + np.asarray(z, dtype=np.float64) * self._span

    def project(self, z: np.ndarray, z_orig: np.ndarray) -> np.ndarray:
        assert self._project is not None
        return self.to_unit(self._project(self.from_unit(z), self.from_unit(z_orig)))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._model.predict_proba(self.from_unit(self.input_spec.conform(x)))
