"""Data integrity: duplicates, leakage, conflicting labels, imbalance and cleanlab label issues."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import load_digits, load_wine
from sklearn.ensemble import RandomForestClassifier

from garrison.core.errors import DataError
from garrison.poisoning import check_integrity, flip_labels


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return d.data / 16.0, d.target


def test_planted_duplicates_conflicts_and_leakage_are_found(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    x_train, y_train, x_test = x[:1400].copy(), y[:1400].copy(), x[1400:].copy()
    x_train[10] = x_train[11]
    y_train[10] = (y_train[11] + 1) % 10  # same image, another label
    x_train[20] = x_train[21]
    y_train[20] = y_train[21]
    x_train[30] = x_train[31] + 0.001  # a rounding apart
    x_test[5] = x_train[100]
    x_test[6] = x_train[200] + 0.002
    report = check_integrity(x_train, y_train, x_test=x_test, label_issues=False)
    assert report.exact_duplicates == [[10, 11], [20, 21]]
    assert report.duplicate_rows == 2
    assert report.conflicting_labels == [[10, 11]]
    assert report.near_duplicates == [[30, 31]]
    assert report.leakage_exact == [(100, 5)]
    assert report.leakage_near == [(200, 6)]
    assert report.leaked_test_rows == 2
    assert report.label_issues is None


def test_clean_digits_have_no_duplicates_or_leakage(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    report = check_integrity(x[:1400], y[:1400], x_test=x[1400:], label_issues=False)
    assert report.exact_duplicates == []
    assert report.near_duplicates == []
    assert report.leaked_test_rows == 0
    assert report.imbalance_ratio < 1.3


def test_cleanlab_finds_most_random_label_flips(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    noisy, flipped = flip_labels(y, rate=0.1, seed=3)
    report = check_integrity(x, noisy)
    assert report.label_issues is not None
    found = set(report.label_issues.indices.tolist())
    truth = set(flipped.tolist())
    recall = len(found & truth) / len(truth)
    precision = len(found & truth) / len(found)
    assert recall >= 0.85
    assert precision >= 0.7
    # the suggestion for a caught flip is usually the original label
    caught = [i for i in report.label_issues.indices if i in truth]
    suggested = dict(
        zip(report.label_issues.indices.tolist(), report.label_issues.suggested.tolist(), strict=True)
    )
    assert np.mean([suggested[i] == y[i] for i in caught]) >= 0.9


def test_label_issues_from_the_callers_estimator_and_probabilities() -> None:
    x, y = load_wine(return_X_y=True)
    noisy, flipped = flip_labels(y, rate=0.1, seed=1)
    by_forest = check_integrity(x, noisy, estimator=RandomForestClassifier(n_estimators=50, random_state=0))
    assert by_forest.label_issues is not None
    assert by_forest.label_issues.source == "out-of-fold estimator"
    assert len(set(by_forest.label_issues.indices.tolist()) & set(flipped.tolist())) >= 0.7 * len(flipped)
    perfect = np.eye(3)[y]  # probabilities that know the true labels expose exactly the flipped rows
    given_probs = check_integrity(x, noisy, probabilities=perfect)
    assert given_probs.label_issues is not None
    assert sorted(given_probs.label_issues.indices.tolist()) == sorted(flipped.tolist())
    with pytest.raises(DataError, match="probabilities must have shape"):
        check_integrity(x, y, probabilities=perfect[:, :2])


def test_imbalance_and_string_labels_in_the_report() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(110, 4))
    y = np.array(["fraud"] * 10 + ["ok"] * 100)
    report = check_integrity(x, y, label_issues=False)
    assert report.imbalance_ratio == pytest.approx(10.0)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["class_counts"] == {"fraud": 10, "ok": 100}


def test_a_class_too_small_for_cross_validation_skips_label_issues_with_a_note() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(43, 3))
    y = np.array([0] * 40 + [1] * 3)
    report = check_integrity(x, y)
    assert report.label_issues is None
    assert any("fewer than 5 rows" in note for note in report.notes)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((0, 3)), np.zeros(0), "no rows"),
        (np.zeros((4, 3)), np.zeros(3), "one per row"),
        (np.array([[1.0, np.nan]]), np.zeros(1), "NaN"),
        (np.array([["a", "b"]]), np.zeros(1), "numeric"),
    ],
)
def test_bad_inputs_name_the_problem(x: np.ndarray, y: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        check_integrity(x, y, label_issues=False)


def test_mismatched_test_width_is_an_error(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    with pytest.raises(DataError, match="features"):
        check_integrity(x[:100], y[:100], x_test=x[:10, :5], label_issues=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 40), st.integers(1, 4)), elements=st.integers(-2, 2)))
def test_exact_groups_are_exactly_the_repeated_rows(x: np.ndarray) -> None:
    report = check_integrity(x, np.zeros(len(x), dtype=int), near_tolerance=0.0, label_issues=False)
    expected: dict[bytes, list[int]] = {}
    for i, row in enumerate(x):
        expected.setdefault(row.tobytes(), []).append(i)
    assert report.exact_duplicates == sorted((g for g in expected.values() if len(g) > 1), key=lambda g: g[0])
    assert report.near_duplicates == []


@pytest.mark.parametrize("dims", [2, 3, 6])
def test_close_rows_by_chance_in_few_dimensions_are_not_near_duplicates(dims: int) -> None:
    rng = np.random.default_rng(dims)
    x = rng.normal(size=(3000, dims))
    report = check_integrity(
        x, rng.integers(0, 2, 3000), x_test=rng.normal(size=(1000, dims)), label_issues=False
    )
    assert len(report.near_duplicates) <= 2
    assert len(report.leakage_near) <= 2
    x[17] = x[900] * (1 + 1e-6)  # a copy that went through a lossy round trip still counts
    assert [17, 900] in check_integrity(x, np.zeros(3000, int), label_issues=False).near_duplicates
