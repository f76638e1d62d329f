"""STRIP (Gao et al. 2019): is this input carrying a backdoor trigger? Asked at inference time of any classifier.

Each input is superimposed on ``n_overlays`` clean images drawn from a held-out pool: ``blend="add"`` (default)
sums the two and clips to the input range, ``x' = clip(x + overlay, lower, upper)``; ``blend="average"`` mixes
them, ``x' = (1 - alpha) x + alpha · overlay``. A clean input's prediction falls apart under such strong
perturbation, so the predictions on its overlays spread over many classes; a trigger keeps sending every overlay
to the target class, so they agree.
The score is the normalised entropy (in ``[0, 1]``, divided by ``log n_classes``) of that spread:

- ``"mean-entropy"`` (default, the paper's): the mean over overlays of each prediction's entropy;
- ``"entropy-of-mean"``: the entropy of the overlays' mean prediction, which also counts disagreement between
  confident overlays.

Low entropy means trojaned. :meth:`STRIP.fit` sets the threshold on clean held-out inputs so that a fraction
``frr`` of them falls below it (the empirical quantile; the paper fits a normal distribution instead), and keeps
those inputs as the overlay pool.

Cost: one ``predict_proba`` call of ``n × n_overlays`` rows per batch of ``n`` inputs, nothing else, so a single
request costs one batched call of ``n_overlays`` rows. The overlays are drawn by ``seed``, afresh for each call,
so the same batch always gets the same scores.

Limits: it needs image-like inputs where superimposing two inputs is meaningful (not tabular rows) and a trigger
that survives it: a saturated patch does under ``"add"`` (averaging halves it, and most triggered inputs pass), a
faint blended trigger drowns in either. It cannot say which class is the target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.adapters.base import Classifier
from garrison.core.errors import InputError

__all__ = ["BLENDS", "STATISTICS", "STRIP"]

BLENDS = ("add", "average")
STATISTICS = ("mean-entropy", "entropy-of-mean")


@dataclass(frozen=True)
class _Fitted:
    pool: np.ndarray
    lower: float
    upper: float
    threshold: float
    fit_scores: np.ndarray


class STRIP:
    """Input-level backdoor detector for ``model`` (any Garrison :class:`~garrison.adapters.Classifier`).

    ``n_overlays`` clean images superimposed per input by ``blend`` (``alpha``: the overlay's weight when
    averaging); ``lower``/``upper``: the input range ``"add"`` clips to (default: the fit inputs' min and max);
    ``frr``: the false-rejection rate on clean inputs :meth:`fit` sets the threshold at; ``statistic``: see the
    module docstring.
    """

    def __init__(
        self,
        model: Classifier,
        *,
        n_overlays: int = 20,
        blend: str = "add",
        alpha: float = 0.5,
        lower: float | None = None,
        upper: float | None = None,
        frr: float = 0.01,
        statistic: str = "mean-entropy",
        seed: int = 0,
    ) -> None:
        self.model = model
        self.n_overlays = n_overlays
        self.blend = blend
        self.alpha = alpha
        self.lower = lower
        self.upper = upper
        self.frr = frr
        self.statistic = statistic
        self.seed = seed
        self._fitted: _Fitted | None = None

    def _validate(self) -> None:
        if not isinstance(self.n_overlays, int) or self.n_overlays < 1:
            raise ValueError(f"`n_overlays` must be an integer >= 1, got {self.n_overlays!r}")
        if self.blend not in BLENDS:
            raise ValueError(f"`blend` must be one of {', '.join(BLENDS)}, got {self.blend!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"`alpha` must be in (0, 1), got {self.alpha!r}")
        if not 0 < self.frr < 1:
            raise ValueError(f"`frr` must be in (0, 1), got {self.frr!r}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"`statistic` must be one of {', '.join(STATISTICS)}, got {self.statistic!r}")

    @property
    def threshold_(self) -> float:
        """Inputs scoring below this are flagged; set by :meth:`fit`."""
        return self._state().threshold

    def fit(self, x: np.ndarray) -> STRIP:
        """Keep the clean held-out inputs ``x`` as the overlay pool and set the threshold at ``frr`` on them (each
        scored with overlays from the others). Needs ``n_overlays + 1`` and at least ``1 / frr`` inputs."""
        self._validate()
        x = self._inputs(x)
        needed = max(self.n_overlays + 1, math.ceil(1 / self.frr - 1e-9))
        if len(x) < needed:
            raise InputError(
                f"need at least {needed} clean inputs (n_overlays + 1 and 1 / frr), got {len(x)}", field="x"
            )
        lower = float(np.min(x)) if self.lower is None else float(self.lower)
        upper = float(np.max(x)) if self.upper is None else float(self.upper)
        if not upper > lower:
            raise ValueError(f"`upper` must be > `lower`, got {lower!r} and {upper!r}")
        picks = self._picks(len(x), len(x), exclude_self=True)
        scores = self._entropy(x, x, picks, lower, upper)
        ranked = np.sort(scores)
        k = math.floor(self.frr * len(x))  # exactly k fit inputs lie strictly below ranked[k] (without ties)
        self._fitted = _Fitted(x, lower, upper, threshold=float(ranked[k]), fit_scores=scores)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        """The normalised STRIP entropy of each input, in ``[0, 1]``; low means trojaned."""
        state = self._state()
        x = self._inputs(x)
        picks = self._picks(len(x), len(state.pool), exclude_self=False)
        return self._entropy(x, state.pool, picks, state.lower, state.upper)

    def detect(self, x: np.ndarray) -> np.ndarray:
        """``True`` for inputs whose entropy is below the fitted threshold."""
        return self.score(x) < self._state().threshold

    def to_dict(self) -> dict[str, Any]:
        """The parameters and the fitted state (threshold, fit-set size and score quantiles), JSON-ready."""
        out: dict[str, Any] = {
            "method": "strip",
            "n_overlays": self.n_overlays,
            "blend": self.blend,
            "alpha": self.alpha,
            "frr": self.frr,
            "statistic": self.statistic,
            "seed": self.seed,
            "fitted": self._fitted is not None,
        }
        if self._fitted is not None:
            scores = self._fitted.fit_scores
            out.update(
                threshold=self._fitted.threshold,
                lower=self._fitted.lower,
                upper=self._fitted.upper,
                n_fit=len(scores),
                fit_frr=float(np.mean(scores < self._fitted.threshold)),
                fit_score_quantiles={
                    str(q): float(np.quantile(scores, q)) for q in (0.0, 0.01, 0.05, 0.5, 0.95, 1.0)
                },
            )
        return out

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise RuntimeError("STRIP is not fitted: call fit(x_clean) first")
        return self._fitted

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(self.model.input_spec.conform(np.asarray(x)))
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise InputError("inputs hold NaN or infinite values", field="x")
        return x

    def _picks(self, n: int, pool: int, *, exclude_self: bool) -> np.ndarray:
        """``(n, n_overlays)`` pool indices, distinct per row (and not the row itself when fitting)."""
        rng = np.random.default_rng(self.seed)
        if exclude_self:
            # draw from the pool without row i: offsets 1 .. pool-1 added to i, modulo pool
            offsets = np.argsort(rng.random((n, pool - 1)), axis=1)[:, : self.n_overlays] + 1
            return (np.arange(n)[:, None] + offsets) % pool
        if pool >= self.n_overlays:
            return np.argsort(rng.random((n, pool)), axis=1)[:, : self.n_overlays]
        return rng.integers(0, pool, (n, self.n_overlays))

    def _entropy(
        self, x: np.ndarray, pool: np.ndarray, picks: np.ndarray, lower: float, upper: float
    ) -> np.ndarray:
        n, k = picks.shape
        if n == 0:
            return np.zeros(0)
        if self.blend == "add":
            blended = np.clip(x[:, None] + pool[picks], lower, upper)  # (n, k, *shape)
        else:
            blended = (1 - self.alpha) * x[:, None] + self.alpha * pool[picks]
        probs = np.asarray(self.model.predict_proba(blended.reshape(n * k, *x.shape[1:])), dtype=np.float64)
        probs = np.clip(probs, 0.0, 1.0).reshape(n, k, -1)
        scale = math.log(probs.shape[-1])
        if self.statistic == "entropy-of-mean":
            return _entropy(probs.mean(axis=1)) / scale
        return _entropy(probs).mean(axis=1) / scale


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis; ``0 log 0 = 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)
