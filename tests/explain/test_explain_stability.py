"""Explanation stability: smooth attributions keep their ranking under small noise, jagged ones do not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from garrison.explain.stability import explanation_stability

WEIGHTS = np.array([5.0, -4.0, 3.0, 2.0, -1.0, 0.5, 0.25, 0.1])


def _linear_gradient_times_input(x: np.ndarray) -> np.ndarray:
    return x * WEIGHTS


def _jagged(x: np.ndarray) -> np.ndarray:
    return np.sin(2000.0 * x) * np.abs(WEIGHTS)  # a gradient that flips with every tiny move


def test_smooth_attributions_are_stable_and_jagged_ones_are_not() -> None:
    x = np.random.default_rng(0).normal(size=(100, 8))
    smooth = explanation_stability(_linear_gradient_times_input, x, seed=1)
    assert smooth.median_correlation > 0.95
    assert smooth.unstable_share < 0.05
    jagged = explanation_stability(_jagged, x, seed=1)
    assert jagged.median_correlation < 0.5
    assert jagged.unstable_share > 0.9
    assert json.loads(json.dumps(jagged.to_dict()))["n_rows"] == 100


def test_same_seed_same_result_and_bad_inputs() -> None:
    x = np.random.default_rng(2).normal(size=(20, 8))
    a = explanation_stability(_jagged, x, seed=3)
    b = explanation_stability(_jagged, x, seed=3)
    assert np.array_equal(a.correlation, b.correlation)
    with pytest.raises(ValueError, match="noise"):
        explanation_stability(_jagged, x, noise=0)
    with pytest.raises(ValueError, match="rows for"):
        explanation_stability(lambda v: v[:-1], x)
