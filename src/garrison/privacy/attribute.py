"""Attribute inference: can an attacker who knows a record's other features and the model's output on it guess
the record's sensitive feature (a known column)?

Two attacks, as ART offers them (``AttributeInferenceBlackBox`` and the model-inversion baseline of Fredrikson et
al. 2014), on Garrison's :class:`~garrison.adapters.base.Classifier`:

- ``learned``: an attack classifier (a random forest by default) trained on part of the records to predict the
  sensitive value from the other features plus the model's probabilities; measured on the rest.
- ``inversion``: for each candidate value, query the model with the record completed by that value and pick the
  value under which the record's known label is most probable (needs the labels).

Each is compared with the majority-class guess and with the same attack classifier given the other features only
(no model output): what the *model* leaks is the gap between the two. Accuracies carry Wilson 95 % intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.metrics import wilson_interval

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier

__all__ = ["AttributeInference", "attribute_inference"]


@dataclass(frozen=True, slots=True)
class AttributeInference:
    """Accuracies (with Wilson intervals) of guessing the sensitive column on ``n`` held-out records."""

    column: int
    n: int
    values: tuple[float, ...]
    majority: float
    majority_ci: tuple[float, float]
    features_only: float
    features_only_ci: tuple[float, float]
    learned: float
    learned_ci: tuple[float, float]
    inversion: float | None
    inversion_ci: tuple[float, float] | None

    @property
    def leaks(self) -> bool:
        """Whether the learned attack beats both the majority guess and the features-only attack with confidence."""
        return self.learned_ci[0] > max(self.majority_ci[1], self.features_only_ci[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "n": self.n,
            "values": list(self.values),
            "majority": self.majority,
            "majority_ci": list(self.majority_ci),
            "features_only": self.features_only,
            "features_only_ci": list(self.features_only_ci),
            "learned": self.learned,
            "learned_ci": list(self.learned_ci),
            "inversion": self.inversion,
            "inversion_ci": list(self.inversion_ci) if self.inversion_ci else None,
            "leaks": self.leaks,
        }


def _accuracy(hits: np.ndarray) -> tuple[float, tuple[float, float]]:
    k, n = int(hits.sum()), len(hits)
    return (k / n if n else float("nan")), wilson_interval(k, n)


def attribute_inference(
    model: Classifier,
    x: np.ndarray,
    *,
    column: int,
    y: np.ndarray | None = None,
    values: Sequence[float] | None = None,
    attack_fraction: float = 0.5,
    attack_estimator: Any = None,
    seed: int = 0,
) -> AttributeInference:
    """Guess column ``column`` of ``x`` (2-D, the model's numeric space) from the other columns and
    ``model.predict_proba``. ``values`` are the column's possible values (default: those observed); ``y`` (class
    indices) enables the inversion attack. A seeded ``attack_fraction`` of the records trains the attack
    classifiers, the rest measures them."""
    from sklearn.base import clone
    from sklearn.ensemble import RandomForestClassifier

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not 0 <= column < x.shape[1]:
        raise ValueError(
            f"`x` must be 2-D with `column` in [0, {x.shape[-1]}), got shape {x.shape}, column {column}"
        )
    if not 0 < attack_fraction < 1:
        raise ValueError(f"`attack_fraction` must be in (0, 1), got {attack_fraction}")
    candidates = np.unique(x[:, column]) if values is None else np.asarray(values, dtype=np.float64)
    if len(candidates) < 2:
        raise ValueError("the sensitive column needs at least two possible values")
    target = np.argmin(np.abs(x[:, column, None] - candidates[None, :]), axis=1)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    cut = round(attack_fraction * len(x))
    fit, held = perm[:cut], perm[cut:]
    if len(fit) < 2 or len(held) < 1:
        raise ValueError("too few records to train and measure the attack")
    others = np.delete(x, column, axis=1)
    probs = np.asarray(model.predict_proba(x), dtype=np.float64)
    estimator = (
        attack_estimator
        if attack_estimator is not None
        else RandomForestClassifier(n_estimators=100, min_samples_leaf=3, random_state=seed)
    )

    majority_value = np.bincount(target[fit], minlength=len(candidates)).argmax()
    majority, majority_ci = _accuracy(target[held] == majority_value)
    with_outputs = np.concatenate([others, probs], axis=1)
    learned_model = clone(estimator).fit(with_outputs[fit], target[fit])
    learned, learned_ci = _accuracy(learned_model.predict(with_outputs[held]) == target[held])
    features_model = clone(estimator).fit(others[fit], target[fit])
    features_only, features_only_ci = _accuracy(features_model.predict(others[held]) == target[held])

    inversion = inversion_ci = None
    if y is not None:
        labels = np.asarray(y, dtype=np.int64)[held]
        scores = np.empty((len(held), len(candidates)))
        for j, v in enumerate(candidates):
            probe = x[held].copy()
            probe[:, column] = v
            scores[:, j] = np.asarray(model.predict_proba(probe), dtype=np.float64)[
                np.arange(len(held)), labels
            ]
        inversion, inversion_ci = _accuracy(scores.argmax(axis=1) == target[held])
    return AttributeInference(
        column=column,
        n=len(held),
        values=tuple(float(v) for v in candidates),
        majority=majority,
        majority_ci=majority_ci,
        features_only=features_only,
        features_only_ci=features_only_ci,
        learned=learned,
        learned_ci=learned_ci,
        inversion=inversion,
        inversion_ci=inversion_ci,
    )
