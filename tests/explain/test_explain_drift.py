"""Explanation drift: distribution tests per feature find a shift that leaves the ranking in place, and stay quiet
on two samples of the same distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.explain.drift import attribution_drift, benjamini_hochberg


def test_a_shift_that_keeps_the_ranking_is_found() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
    reference = rng.normal(size=(2000, 5)) * scales
    current = rng.normal(size=(2000, 5)) * scales
    current[:, 1] *= 1.6  # feature 1 matters 60 % more, but stays second
    drift = attribution_drift(reference, current, feature_names=list("abcde"))
    assert drift.drifted_features == ("b",)
    assert drift.rank_correlation == pytest.approx(1.0)  # the ranking alone would see nothing
    assert json.loads(json.dumps(drift.to_dict()))["drifted_features"] == ["b"]


@pytest.mark.parametrize("seed", range(5))
def test_the_same_distribution_does_not_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.laplace(size=(500, 20))
    current = rng.laplace(size=(700, 20))
    assert attribution_drift(reference, current).drifted_features == ()


def test_min_effect_ignores_a_significant_but_negligible_change() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(50_000, 3))
    current = rng.normal(size=(50_000, 3))
    current[:, 0] += 0.03
    assert attribution_drift(reference, current, min_effect=0.0).drifted_features == ("f0",)
    assert attribution_drift(reference, current, min_effect=0.05).drifted_features == ()


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="features"):
        attribution_drift(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        attribution_drift(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        attribution_drift(np.full((3, 1), np.nan), np.zeros((3, 1)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_benjamini_hochberg_is_monotone_and_bounded(p: list[float]) -> None:
    values = np.array(p)
    adjusted = benjamini_hochberg(values)
    assert np.all(adjusted >= values - 1e-12)
    assert np.all(adjusted <= 1.0)
    order = np.argsort(values)
    assert np.all(np.diff(adjusted[order]) >= -1e-12)
