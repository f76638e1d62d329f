"""Differentially private logistic regression for scikit-learn users: a softmax linear model trained with DP-SGD
through :func:`garrison.privacy.dp.train_private` (Opacus), so it spends and reports ε exactly like a torch model.

diffprivlib's ``LogisticRegression`` (objective perturbation) does not import with current scikit-learn; this is the
DP-SGD alternative. Standardise the features first (a ``StandardScaler`` in a pipeline): clipping per-sample
gradients to ``max_grad_norm`` works best when features share a scale. Only ``fit`` sees the data privately;
the scaler's mean and variance are not private unless fitted on public data or with a DP scaler.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from garrison.privacy.dp import ACCOUNTANTS, PrivacyLedger, train_private

__all__ = ["DPLogisticRegression"]


class DPLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression (multinomial) trained with DP-SGD at (``epsilon``, ``delta``)-differential privacy.

    Parameters
    ----------
    epsilon : float, default=1.0
        Privacy budget spent by the whole of ``fit``.
    delta : float or None, default=None
        δ; None takes the largest power of ten strictly below ``1/n_samples``.
    epochs : int, default=20
        Passes over the data (in expectation: batches are Poisson-sampled). More epochs means more noise per step
        for the same ε.
    max_grad_norm : float, default=1.0
        Per-sample gradient clipping norm C.
    batch_size : int, default=64
        Expected batch size (sample rate = batch_size / n_samples).
    lr : float, default=0.1
        SGD learning rate (momentum 0.9).
    accountant : {"prv", "rdp", "gdp"}, default="prv"
        Opacus accountant used to choose σ and report ε.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise and the batch sampling.

    Attributes
    ----------
    classes_, coef_ (``(1, n_features)`` for two classes, else ``(n_classes, n_features)``), intercept_,
    n_features_in_, ledger_ (:class:`~garrison.privacy.PrivacyLedger` of the fit), n_iter_ (DP-SGD steps).
    """

    def __init__(
        self,
        epsilon: float = 1.0,
        delta: float | None = None,
        *,
        epochs: int = 20,
        max_grad_norm: float = 1.0,
        batch_size: int = 64,
        lr: float = 0.1,
        accountant: str = "prv",
        random_state: Any = None,
    ) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.max_grad_norm = max_grad_norm
        self.batch_size = batch_size
        self.lr = lr
        self.accountant = accountant
        self.random_state = random_state

    def _check_params(self) -> None:
        for name in ("epsilon", "max_grad_norm", "lr"):
            value = getattr(self, name)
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not np.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"`{name}` must be > 0, got {value!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
        if self.delta is not None and not (isinstance(self.delta, numbers.Real) and 0 < self.delta < 1):
            raise ValueError(f"`delta` must be in (0, 1) or None, got {self.delta!r}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"`accountant` must be one of {', '.join(ACCOUNTANTS)}, got {self.accountant!r}")

    def fit(self, X: Any, y: Any) -> DPLogisticRegression:
        """Train with DP-SGD; sets ``ledger_`` to what the fit spent."""
        import torch

        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"DPLogisticRegression needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})"
            )
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        n_features, n_classes = X.shape[1], len(self.classes_)
        module = torch.nn.Linear(n_features, n_classes)
        with torch.no_grad():  # logistic regression starts from zero: no random initialisation to seed
            module.weight.zero_()
            module.bias.zero_()
        result = train_private(
            module,
            X.astype(np.float32),
            y_enc.astype(np.int64),
            target_epsilon=float(self.epsilon),
            target_delta=None if self.delta is None else float(self.delta),
            epochs=int(self.epochs),
            batch_size=int(self.batch_size),
            lr=float(self.lr),
            max_grad_norm=float(self.max_grad_norm),
            seed=seed,
            accountant=self.accountant,  # type: ignore[arg-type]
        )
        weight = result.module.weight.detach().cpu().numpy().astype(np.float64)
        bias = result.module.bias.detach().cpu().numpy().astype(np.float64)
        if n_classes == 2:  # softmax over two logits is the sigmoid of their difference
            self.coef_ = (weight[1] - weight[0])[None, :]
            self.intercept_ = np.array([bias[1] - bias[0]])
        else:
            self.coef_ = weight
            self.intercept_ = bias
        self.ledger_: PrivacyLedger = result.ledger
        self.n_iter_ = result.ledger.steps
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        scores = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p1 = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1.0 - p1, p1])
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), np.finfo(np.float64).tiny, None))

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
