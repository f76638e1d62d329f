"""Each model-poisoning transformation on hand-made updates."""

from __future__ import annotations

import numpy as np
import pytest

from garrison.federated import alie, alie_z, benign_estimate, ipm, min_max, scaling, sign_flip


@pytest.fixture
def benign() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(0.5, 0.2, size=(10, 30))


def test_sign_flip_negates_and_scaling_multiplies() -> None:
    u = np.array([1.0, -2.0, 0.5])
    np.testing.assert_array_equal(sign_flip(u), -u)
    np.testing.assert_array_equal(scaling(u, factor=12), 12 * u)


def test_alie_stays_within_mean_plus_minus_z_std(benign: np.ndarray) -> None:
    z = 1.5
    out = alie(benign, z=z)
    mu, sd = benign.mean(axis=0), benign.std(axis=0)
    assert np.all(out >= mu - z * sd - 1e-12)
    assert np.all(out <= mu + z * sd + 1e-12)
    np.testing.assert_allclose(out, mu - z * sd)


def test_alie_z_follows_the_paper() -> None:
    # n = 50, m = 12 (the paper's example): s = 26 - 12 = 14, z = Φ⁻¹(36/50) ≈ 0.58
    assert alie_z(50, 12) == pytest.approx(0.583, abs=0.01)
    assert alie_z(12, 2) < alie_z(12, 5)


def test_ipm_opposes_the_benign_mean(benign: np.ndarray) -> None:
    out = ipm(benign, epsilon=0.5)
    mu = benign.mean(axis=0)
    np.testing.assert_allclose(out, -0.5 * mu)
    assert float(out @ mu) < 0


def test_min_max_is_as_far_as_the_benign_spread_allows(benign: np.ndarray) -> None:
    out = min_max(benign)
    pairwise = max(np.linalg.norm(a - b) for a in benign for b in benign)
    farthest = np.linalg.norm(benign - out, axis=1).max()
    assert farthest <= pairwise + 1e-6
    assert farthest >= 0.99 * pairwise  # the largest step the constraint allows, not a timid one
    assert np.linalg.norm(out - benign.mean(axis=0)) > 0


def test_benign_estimate_needs_two_updates() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        benign_estimate([np.zeros(3)])
    assert benign_estimate([np.zeros((2, 2)), np.ones((2, 2))]).shape == (2, 4)
