"""Attribute inference and model extraction on real scikit-learn models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from garrison.adapters import SklearnClassifier
from garrison.privacy.attribute import attribute_inference
from garrison.privacy.extraction import model_extraction, synthetic_queries


@pytest.fixture(scope="module")
def sensitive_data() -> tuple[np.ndarray, np.ndarray]:
    """A binary sensitive column independent of the other features, which the label depends on."""
    rng = np.random.default_rng(0)
    n = 1200
    others = rng.normal(size=(n, 3))
    s = rng.integers(0, 2, n).astype(np.float64)
    y = ((others[:, 0] > 0) ^ (s == 1)).astype(np.int64)
    y = np.where(rng.random(n) < 0.05, 1 - y, y)
    return np.column_stack([others[:, :1], s, others[:, 1:]]), y


def test_model_outputs_reveal_the_sensitive_column(sensitive_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sensitive_data
    model = SklearnClassifier(RandomForestClassifier(n_estimators=50, random_state=0).fit(x[:600], y[:600]))
    result = attribute_inference(model, x, column=1, y=y, seed=0)
    assert result.values == (0.0, 1.0)
    assert result.n == 600
    # the other features say nothing about s; the model's output (with feature 0) does
    assert result.features_only_ci[0] < 0.6 and result.majority_ci[0] < 0.6
    assert result.learned_ci[0] > 0.8
    assert result.leaks
    assert result.inversion is not None and result.inversion > 0.8


def test_a_model_that_ignores_the_column_does_not_leak(sensitive_data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = sensitive_data
    blind = x.copy()
    blind[:, 1] = 0.0
    model = SklearnClassifier(LogisticRegression().fit(blind[:600], y[:600]))
    result = attribute_inference(model, x, column=1, y=y, seed=0)
    assert not result.leaks
    with pytest.raises(ValueError, match="column"):
        attribute_inference(model, x, column=7)


def test_extraction_fidelity_grows_with_queries() -> None:
    d = load_digits()
    x, y = d.data / 16.0, d.target
    target = SklearnClassifier(LogisticRegression(max_iter=1000).fit(x[:800], y[:800]))
    points = model_extraction(target, x[1400:], y_eval=y[1400:], x_pool=x[800:1400], queries=(20, 500),
                              surrogate=LogisticRegression(max_iter=1000), seed=0)  # fmt: skip
    assert [p.queries for p in points] == [20, 500]
    assert points[1].fidelity_ci[0] > points[0].fidelity_ci[1]
    assert points[1].fidelity > 0.85 and points[1].n == len(x) - 1400
    assert points[1].target_accuracy is not None and points[1].target_accuracy > 0.85
    synthetic = synthetic_queries(np.zeros(3), np.ones(3), 10, seed=1)
    assert synthetic.shape == (10, 3) and synthetic.min() >= 0 and synthetic.max() <= 1
