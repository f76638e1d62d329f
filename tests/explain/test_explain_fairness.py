"""Group fairness: rates and gaps on a small example computed by hand, agreement with scikit-learn's confusion
matrix on random data, the multiclass reading and the refusals."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from garrison.core.errors import InputError
from garrison.explain.fairness import group_fairness


def test_a_hand_computed_example() -> None:
    # group a: TP 1, FN 1, FP 1, TN 2 -> selection 2/5, TPR 1/2, FPR 1/3, accuracy 3/5
    # group b: TP 2, FN 1, FP 1, TN 0 -> selection 3/4, TPR 2/3, FPR 1,   accuracy 2/4
    y_true = [1, 1, 0, 0, 0, 1, 1, 1, 0]
    y_pred = [1, 0, 1, 0, 0, 1, 1, 0, 1]
    groups = ["a"] * 5 + ["b"] * 4
    report = group_fairness(y_true, y_pred, groups, attribute="sex")
    a, b = report.group("a"), report.group("b")
    assert (a.tp, a.fn, a.fp, a.tn, a.size) == (1, 1, 1, 2, 5)
    assert (b.tp, b.fn, b.fp, b.tn, b.size) == (2, 1, 1, 0, 4)
    assert (a.selection_rate, a.tpr, a.fpr, a.accuracy) == pytest.approx((0.4, 0.5, 1 / 3, 0.6))
    assert (b.selection_rate, b.tpr, b.fpr, b.accuracy) == pytest.approx((0.75, 2 / 3, 1.0, 0.5))
    assert report.demographic_parity_difference == pytest.approx(0.35)
    assert report.demographic_parity_ratio == pytest.approx(0.4 / 0.75)
    assert report.equal_opportunity_difference == pytest.approx(2 / 3 - 1 / 2)
    assert report.equalized_odds_difference == pytest.approx(1 - 1 / 3)  # the FPR gap is the larger
    assert not report.binarized and report.note is None
    assert a.selection_rate_ci[0] < 0.4 < a.selection_rate_ci[1]
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["attribute"] == "sex"
    assert [g["group"] for g in payload["groups"]] == ["a", "b"]
    assert payload["groups"][1]["counts"] == {"tp": 2, "fp": 1, "tn": 0, "fn": 1, "correct": 2}


@pytest.mark.parametrize("seed", range(3))
def test_counts_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    y_true = rng.integers(0, 2, size=n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, 1 - y_true)
    groups = pd.Series(rng.choice(["x", "y", "z"], size=n))
    report = group_fairness(pd.Series(y_true), y_pred, groups)
    for g in report.groups:
        mask = (groups == g.group).to_numpy()
        tn, fp, fn, tp = confusion_matrix(y_true[mask], y_pred[mask], labels=[0, 1]).ravel()
        assert (g.tp, g.fp, g.tn, g.fn) == (tp, fp, tn, fn)
    tprs = [g.tpr for g in report.groups]
    assert report.equal_opportunity_difference == pytest.approx(max(tprs) - min(tprs))


def test_multiclass_is_read_as_positive_against_the_rest() -> None:
    y_true = np.array([0, 1, 2, 2, 0, 1, 2, 0])
    y_pred = np.array([0, 2, 2, 1, 0, 1, 2, 2])
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    report = group_fairness(y_true, y_pred, groups, positive=2)
    assert report.binarized and "against the rest" in (report.note or "")
    a, b = report.group("a"), report.group("b")
    assert (a.tp, a.fp, a.fn, a.tn) == (1, 1, 1, 1)
    assert (b.tp, b.fp, b.fn, b.tn) == (1, 1, 0, 2)
    assert a.accuracy == pytest.approx(0.5)  # labels as given: 0 and the first 2 are right
    assert b.accuracy == pytest.approx(0.75)


def test_a_group_without_positives_has_no_tpr() -> None:
    report = group_fairness([0, 0, 1, 0, 1, 0], [0, 1, 1, 0, 0, 0], ["a", "a", "b", "b", "c", "c"])
    assert math.isnan(report.group("a").tpr)
    assert report.equal_opportunity_difference == pytest.approx(1.0)  # b: 1/1, c: 0/1
    assert report.group("a").to_dict()["tpr"] is None


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError, match="lengths differ"):
        group_fairness([0, 1, 1], [0, 1], ["a", "b", "a"])
    with pytest.raises(InputError, match="single group"):
        group_fairness([0, 1, 1], [0, 1, 0], ["a", "a", "a"])
    with pytest.raises(InputError, match="`positive` 'yes' is not among the labels"):
        group_fairness([0, 1, 1], [0, 1, 0], ["a", "b", "a"], positive="yes")
    with pytest.raises(InputError, match="1-d"):
        group_fairness(np.zeros((3, 2)), [0, 1, 0], ["a", "b", "a"])
    with pytest.raises(InputError, match="no rows"):
        group_fairness([], [], [])
