"""Model extraction: how faithful a copy an attacker gets after N queries.

The attacker queries the target with inputs it chose (unlabelled records from the same domain, or synthetic
inputs drawn uniformly within the data's bounds), keeps the predicted labels, and fits a surrogate (ART's
``CopycatCNN`` / ``KnockoffNets`` idea, on Garrison's :class:`~garrison.adapters.base.Classifier`). *Fidelity* is
the share of held-out inputs on which surrogate and target agree (Jagielski et al. 2020), with a Wilson 95 %
interval; it is reported for each query budget N.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.metrics import wilson_interval

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier

__all__ = ["ExtractionPoint", "model_extraction", "synthetic_queries"]


@dataclass(frozen=True, slots=True)
class ExtractionPoint:
    """The surrogate trained on ``queries`` target answers: its agreement with the target on ``n`` held-out
    inputs (``fidelity``) and, with labels, its accuracy."""

    queries: int
    fidelity: float
    fidelity_ci: tuple[float, float]
    n: int
    accuracy: float | None = None
    target_accuracy: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "fidelity": self.fidelity,
            "fidelity_ci_low": self.fidelity_ci[0],
            "fidelity_ci_high": self.fidelity_ci[1],
            "n": self.n,
            "accuracy": self.accuracy,
            "target_accuracy": self.target_accuracy,
        }


def synthetic_queries(lower: np.ndarray, upper: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` inputs drawn uniformly within ``[lower, upper]`` (per feature)."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != hi.shape or np.any(hi < lo):
        raise ValueError("`lower` and `upper` must have one shape and lower <= upper")
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, *lo.shape))


def model_extraction(
    target: Classifier,
    x_eval: np.ndarray,
    *,
    queries: Sequence[int] = (100, 300, 1000),
    x_pool: np.ndarray | None = None,
    y_eval: np.ndarray | None = None,
    surrogate: Any = None,
    seed: int = 0,
) -> list[ExtractionPoint]:
    """Fidelity of a surrogate fitted on the target's labels for N queries, for each N in ``queries``.

    Queries are drawn (without replacement, nested: the 300 include the 100) from ``x_pool`` (attacker-side
    unlabelled inputs), or synthesised within ``x_eval``'s per-feature range when ``x_pool`` is ``None``.
    ``surrogate`` is a scikit-learn estimator (default: an MLP with one hidden layer of 128).
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    budgets = sorted(int(q) for q in queries)
    if not budgets or budgets[0] < 2:
        raise ValueError("`queries` must list budgets >= 2")
    x_eval = np.asarray(x_eval, dtype=np.float64)
    flat_eval = x_eval.reshape(len(x_eval), -1)
    if x_pool is None:
        pool = synthetic_queries(flat_eval.min(axis=0), flat_eval.max(axis=0), budgets[-1], seed=seed)
    else:
        pool = np.asarray(x_pool, dtype=np.float64).reshape(len(x_pool), -1)
        if len(pool) < budgets[-1]:
            raise ValueError(f"`x_pool` has {len(pool)} inputs, fewer than the largest budget {budgets[-1]}")
        pool = pool[np.random.default_rng(seed).permutation(len(pool))[: budgets[-1]]]
    shape = x_eval.shape[1:]
    answers = np.asarray(target.predict_proba(pool.reshape((len(pool), *shape)))).argmax(axis=1)
    target_eval = np.asarray(target.predict_proba(x_eval)).argmax(axis=1)
    labels = None if y_eval is None else np.asarray(y_eval, dtype=np.int64)
    estimator = surrogate if surrogate is not None else MLPClassifier(hidden_layer_sizes=(128,), max_iter=300,
                                                                       random_state=seed)  # fmt: skip
    points = []
    for n in budgets:
        got = answers[:n]
        if len(np.unique(got)) < 2:  # the surrogate cannot be fitted on one class: it answers that class
            pred = np.full(len(flat_eval), got[0])
        else:
            with warnings.catch_warnings():
                # a surrogate that has not converged is still the attacker's copy: measure it as it is
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
                pred = clone(estimator).fit(pool[:n], got).predict(flat_eval)
        hits = pred == target_eval
        k = int(hits.sum())
        points.append(
            ExtractionPoint(
                queries=n,
                fidelity=k / len(hits),
                fidelity_ci=wilson_interval(k, len(hits)),
                n=len(hits),
                accuracy=None if labels is None else float((pred == labels).mean()),
                target_accuracy=None if labels is None else float((target_eval == labels).mean()),
            )
        )
    return points
