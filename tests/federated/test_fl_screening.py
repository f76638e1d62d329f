"""Garrison's screening: an obvious outlier is rejected or clipped, a benign set is kept whole."""

from __future__ import annotations

import numpy as np
import pytest

from garrison.federated import screen_updates


def _benign(n: int = 12, d: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.normal(size=d)
    return common + 0.8 * rng.normal(size=(n, d)) * rng.uniform(0.7, 1.3, size=(n, 1))


@pytest.mark.parametrize("seed", range(5))
def test_a_benign_set_is_kept_whole(seed: int) -> None:
    result = screen_updates(_benign(seed=seed))
    assert result.rejected.size == 0
    assert result.kept.size == 12


def test_a_sign_flipped_update_is_rejected() -> None:
    u = _benign()
    u[3] = -u[3]
    result = screen_updates(u)
    assert result.rejected.tolist() == [3]
    assert 3 not in result.kept


def test_a_scaled_update_is_rejected_and_none_exceeds_the_bound() -> None:
    u = _benign()
    u[7] *= 20
    result = screen_updates(u)
    assert 7 in result.rejected
    assert np.all(np.linalg.norm(result.updates, axis=1) <= result.bound + 1e-9)
    assert 7 in result.clipped


def test_a_mildly_long_update_is_clipped_not_rejected() -> None:
    u = _benign()
    u[2] *= 1.8
    result = screen_updates(u, norm_factor=1.5, z=50.0)  # a loose z: only the norm bound acts
    assert 2 in result.clipped
    assert 2 in result.kept
    assert np.linalg.norm(result.updates[2]) == pytest.approx(result.bound)


def test_someone_is_always_kept() -> None:
    result = screen_updates(np.eye(3))
    assert result.kept.size >= 1
    assert set(result.to_dict()) == {"kept", "rejected", "clipped", "bound", "distance", "cut"}


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="norm_factor"):
        screen_updates(_benign(), norm_factor=0)
    with pytest.raises(ValueError, match="updates"):
        screen_updates(np.zeros(5))


def test_coordinate_test_rejects_the_constrain_and_scale_backdoor_that_norm_and_direction_miss() -> None:
    pytest.importorskip("torch")
    from garrison.federated import parse_fl_config
    from garrison.federated.scenario import build_scenario, client_update
    from garrison.federated.training import flatten, initial_weights

    cfg = parse_fl_config({"seed": 1, "clients": 12, "malicious": 2, "attack": {"kind": "backdoor"},
                           "strategies": ["fedavg"], "rounds": 1})  # fmt: skip
    scenario = build_scenario(cfg)
    weights = initial_weights(scenario.n_features, scenario.n_classes, seed=1)
    start = flatten(weights)
    updates = np.stack(
        [flatten(client_update(scenario, p, weights, server_round=1).weights) - start for p in range(12)]
    )
    malicious = set(scenario.malicious)
    assert set(screen_updates(updates).rejected.tolist()) == malicious
    assert not malicious & set(screen_updates(updates, coordinate_z=None).rejected.tolist())
