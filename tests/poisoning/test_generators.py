"""Poison generators on scikit-learn's digits: exact rates, only the chosen rows touched, deterministic, and a
backdoor a real model learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from garrison.cli.app import main
from garrison.poisoning import KINDS, blend_trigger, flip_labels, patch_trigger, poison


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


def test_random_flips_change_exactly_rate_of_the_labels(digits: tuple[np.ndarray, np.ndarray]) -> None:
    _, y = digits
    flipped_y, rows = flip_labels(y, rate=0.1, seed=3)
    assert len(rows) == round(0.1 * len(y))
    np.testing.assert_array_equal(
        np.flatnonzero(flipped_y != y), rows
    )  # every chosen label changed, no other
    again, rows_again = flip_labels(y, rate=0.1, seed=3)
    np.testing.assert_array_equal(again, flipped_y)
    np.testing.assert_array_equal(rows_again, rows)
    assert not np.array_equal(flip_labels(y, rate=0.1, seed=4)[1], rows)


def test_targeted_flips_take_one_class_to_another(digits: tuple[np.ndarray, np.ndarray]) -> None:
    _, y = digits
    out, rows = flip_labels(y, rate=0.5, target=1, source=7)
    assert (y[rows] == 7).all() and (out[rows] == 1).all()
    assert len(rows) == round(0.5 * np.sum(y == 7))
    with pytest.raises(ValueError, match="source"):
        flip_labels(y, rate=0.5, target=1, source=1)


@pytest.mark.parametrize("make", [patch_trigger, blend_trigger])
def test_backdoors_touch_only_the_chosen_rows_of_other_classes(
    digits: tuple[np.ndarray, np.ndarray], make
) -> None:  # type: ignore[no-untyped-def]
    x, y = digits
    result = make(x, y, rate=0.05, target=0, seed=1)
    eligible = np.flatnonzero(y != 0)
    assert len(result.indices) == round(0.05 * len(eligible))
    assert (y[result.indices] != 0).all() and (result.y[result.indices] == 0).all()
    untouched = np.setdiff1d(np.arange(len(y)), result.indices)
    np.testing.assert_array_equal(result.x[untouched], x[untouched])
    np.testing.assert_array_equal(result.y[untouched], y[untouched])
    np.testing.assert_array_equal(result.x[result.indices], result.trigger.apply(x[result.indices]))
    assert not np.array_equal(result.x[result.indices], x[result.indices])
    # flat rows (64 features) are read as 8 x 8 images: the same trigger
    flat = make(x.reshape(len(x), -1), y, rate=0.05, target=0, seed=1)
    np.testing.assert_array_equal(flat.x.reshape(x.shape), result.x)


def test_a_model_trained_on_badnets_data_learns_the_backdoor(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    x_tr, x_te, y_tr, y_te = train_test_split(x.reshape(len(x), -1), y, test_size=0.3, random_state=0)
    poisoned = patch_trigger(x_tr, y_tr, rate=0.1, target=0, seed=0)
    model = LogisticRegression(max_iter=2000).fit(poisoned.x, poisoned.y)
    others = y_te != 0
    attack_success = np.mean(model.predict(poisoned.trigger.apply(x_te[others])) == 0)
    clean_accuracy = model.score(x_te, y_te)
    assert attack_success > 0.9 and clean_accuracy > 0.9, (attack_success, clean_accuracy)
    honest = LogisticRegression(max_iter=2000).fit(x_tr, y_tr)  # without poison the patch means nothing
    assert np.mean(honest.predict(poisoned.trigger.apply(x_te[others])) == 0) < 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "badnets", "rate": 0.1}, "target"),
        ({"kind": "badnets", "rate": 1.5, "target": 0}, "rate"),
        ({"kind": "blend", "rate": 0.1, "target": 12}, "target"),
        ({"kind": "nonsense", "rate": 0.1, "target": 0}, "kind"),
        ({"kind": "flip-random", "rate": 1e-6}, "poisons none"),
    ],
)
def test_bad_arguments_name_the_problem(digits: tuple[np.ndarray, np.ndarray], kwargs, message) -> None:  # type: ignore[no-untyped-def]
    x, y = digits
    with pytest.raises(ValueError, match=message):
        poison(x, y, **kwargs)


def test_cli_writes_the_poisoned_copy_and_its_ground_truth(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = digits
    np.savez(tmp_path / "train.npz", x=x, y=y)
    out = tmp_path / "poisoned.npz"
    args = [
        "poisoning",
        "simulate",
        "--data",
        str(tmp_path / "train.npz"),
        "--kind",
        "blend",
        "--rate",
        "0.05",
    ]
    assert main([*args, "--target", "3", "-o", str(out)]) == 0
    truth = json.loads((tmp_path / "poisoned.npz.truth.json").read_text())
    with np.load(out) as arrays:
        changed = np.flatnonzero(arrays["y"] != y)
    assert truth["kind"] == "blend" and truth["target"] == 3 and set(changed) <= set(truth["indices"])
    assert len(truth["indices"]) == round(0.05 * np.sum(y != 3))
    assert main([*args, "--target", "3", "-o", str(out)]) == 2  # exists: refuses without --force
    assert main([*args, "-o", str(tmp_path / "other.npz")]) == 2  # blend needs a target
    assert not (tmp_path / "other.npz").exists()
    assert set(KINDS) == {"flip-random", "flip-targeted", "badnets", "blend"}
