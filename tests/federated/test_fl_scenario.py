"""What clients send, without Flower: honest training helps, each attack changes the update as documented."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from garrison.federated import build_scenario, client_update, parse_fl_config, patch_trigger, screen_updates
from garrison.federated.training import evaluate_accuracy, flatten, initial_weights

pytestmark = pytest.mark.torch


def _scenario(kind: str, **extra: object):
    return build_scenario(parse_fl_config({"clients": 8, "malicious": 1, "attack": {"kind": kind, **extra}}))


def _updates(kind: str, **extra: object) -> tuple[np.ndarray, np.ndarray, int]:
    sc = _scenario(kind, **extra)
    w = initial_weights(sc.n_features, sc.n_classes, seed=0)
    g = flatten(w)
    honest = _scenario("none")
    (bad,) = sc.malicious
    u_bad = flatten(client_update(sc, bad, w, server_round=1).weights) - g
    u_honest = flatten(client_update(honest, bad, w, server_round=1).weights) - g
    return u_bad, u_honest, bad


def test_scenario_is_deterministic_and_covers_the_training_rows() -> None:
    a, b = _scenario("ipm"), _scenario("ipm")
    assert a.malicious == b.malicious
    assert sum(len(p) for p in a.parts) == len(a.y_train)
    assert float(a.x_train.max()) == pytest.approx(1.0)


def test_honest_training_from_scratch_beats_chance() -> None:
    sc = _scenario("none")
    w = initial_weights(sc.n_features, sc.n_classes, seed=0)
    big = int(np.argmax([len(p) for p in sc.parts]))
    for r in range(1, 4):
        w = client_update(sc, big, w, server_round=r).weights
    assert evaluate_accuracy(w, sc.x_test, sc.y_test, n_classes=sc.n_classes) > 0.3


def test_sign_flip_and_scaling_transform_the_honest_update() -> None:
    bad, honest, _ = _updates("sign-flip")
    np.testing.assert_allclose(bad, -honest, rtol=1e-5, atol=1e-6)
    bad, honest, _ = _updates("scaling", scale=5.0)
    np.testing.assert_allclose(bad, 5 * honest, rtol=1e-4, atol=1e-5)


def test_ipm_points_against_honest_progress() -> None:
    bad, honest, _ = _updates("ipm")
    assert float(bad @ honest) < 0


def test_label_flip_and_backdoor_train_on_altered_data() -> None:
    for kind in ("label-flip", "backdoor"):
        bad, honest, _ = _updates(kind)
        assert not np.allclose(bad, honest)
    bad, honest, _ = _updates("backdoor", scale=8.0)
    assert np.linalg.norm(bad) > 1.5 * np.linalg.norm(honest)  # boosted despite the anomaly-evasion term


def test_screening_rejects_a_scaled_backdoor_among_honest_updates() -> None:
    sc = _scenario("backdoor")
    w = initial_weights(sc.n_features, sc.n_classes, seed=0)
    g = flatten(w)
    updates = np.stack([flatten(client_update(sc, i, w, server_round=1).weights) - g for i in range(8)])
    result = screen_updates(updates)
    assert set(result.rejected.tolist()) == set(sc.malicious)


def test_patch_trigger_stamps_the_bottom_right_corner() -> None:
    x = np.zeros((2, 64), dtype=np.float32)
    img = patch_trigger(x).reshape(2, 8, 8)
    assert img[:, 5:, 5:].min() == 1.0
    assert img[:, :5, :].max() == 0.0
    assert patch_trigger(np.zeros((1, 10)))[0, -9:].min() == 1.0


def test_an_npz_source_is_read_next_to_the_config(tmp_path) -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    np.savez(tmp_path / "iris.npz", x=x, y=y)
    (tmp_path / "fl.yaml").write_text(
        "data: {source: iris.npz, partition: iid}\nclients: 3\n", encoding="utf-8"
    )
    from garrison.federated import load_fl_config

    sc = build_scenario(load_fl_config(tmp_path / "fl.yaml"))
    assert (sc.n_features, sc.n_classes) == (4, 3)
    assert sum(len(p) for p in sc.parts) == len(sc.y_train)
