"""Membership inference: metrics in float64 with exact intervals, and LiRA beating the threshold baseline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier

from garrison.adapters import SklearnClassifier
from garrison.privacy.membership import (
    audit_membership,
    lira_scores,
    rmia_scores,
    run_shadow_experiment,
    sklearn_trainer,
    true_class_signals,
)
from garrison.privacy.roc import (
    auc_score,
    clopper_pearson,
    evaluate_membership,
    roc_curve,
    roc_loglog_svg,
    threshold_at_fpr,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize(("k", "n"), [(0, 50), (5, 100), (37, 40), (40, 40), (3, 14376)])
def test_clopper_pearson_matches_scipy_exact_interval(k: int, n: int) -> None:
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n)
    assert low == pytest.approx(ref.low, abs=1e-12)
    assert high == pytest.approx(ref.high, abs=1e-12)


def test_clopper_pearson_reference_numbers() -> None:
    low, high = clopper_pearson(5, 100)
    assert (round(low, 4), round(high, 4)) == (0.0164, 0.1128)  # the textbook exact interval of 5/100


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(0.5, 1, 300), 1)
    neg = np.round(rng.normal(0.0, 1, 400), 1)
    labels = np.r_[np.ones(300), np.zeros(400)]
    assert auc_score(pos, neg) == pytest.approx(roc_auc_score(labels, np.r_[pos, neg]), abs=1e-12)
    fpr, tpr, _ = roc_curve(pos, neg)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc_score(pos, neg), abs=1e-12)


def test_threshold_keeps_calibration_fpr_and_ties_do_not_inflate_tpr() -> None:
    cal = np.r_[np.zeros(990), np.arange(1, 11, dtype=np.float64)]
    t = threshold_at_fpr(cal, 0.005)
    assert (cal > t).sum() <= 5
    # every member ties with the bulk of the non-members at 0: no threshold separates them
    ev = evaluate_membership(np.zeros(500), np.zeros(2000), fprs=(0.001, 0.01))
    assert ev.point(0.001).tpr == 0.0
    assert ev.auc == pytest.approx(0.5)


def test_signals_are_float64_and_keep_resolution_near_certainty() -> None:
    class Confident:
        name = "c"
        n_classes = 2
        classes = None
        input_spec = None

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.c_[np.float32(1e-12) * x[:, 0], 1 - np.float32(1e-12) * x[:, 0]].astype(np.float32)

    x = np.array([[1.0], [2.0], [4.0]])
    p, phi = true_class_signals(Confident(), x, np.array([1, 1, 1]))  # type: ignore[arg-type]
    assert p.dtype == np.float64 and phi.dtype == np.float64
    # float32 rounds p_y to exactly 1 (loss 0 for all three); phi still orders them
    assert np.all(p == 1.0)
    assert phi[0] > phi[1] > phi[2]


def test_lira_uses_per_record_gaussians() -> None:
    # record 0: IN models give phi ~ 5, OUT ~ 0; record 1: both ~ 0 (a record the model does not memorise)
    rng = np.random.default_rng(1)
    inside = np.tile(np.array([[True, True], [False, False]]), (4, 1))
    ref = np.where(inside, np.array([5.0, 0.0]), 0.0) + rng.normal(0, 0.1, inside.shape)
    online = lira_scores(np.array([5.0, 5.0]), ref, inside, online=True, fixed_variance=True)
    offline = lira_scores(np.array([5.0, 0.0]), ref, inside, online=False)
    assert online.dtype == np.float64 and online[0] > online[1]
    assert offline[0] > offline[1]


def test_rmia_scores_are_shares_of_dominated_population() -> None:
    ref = np.full((4, 3), 0.5)
    ref_z = np.full((4, 5), 0.5)
    target_z = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    s = rmia_scores(np.array([0.05, 0.35, 0.9]), ref, np.zeros((4, 3), bool), target_z, ref_z,
                    np.zeros((4, 5), bool), online=True)  # fmt: skip
    assert np.all(np.diff(s) > 0)
    assert 0 < s[0] < 1 / 6 and 3 / 6 <= s[1] < 4 / 6 and 5 / 6 <= s[2] < 1


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return d.data / 16.0, d.target.astype(np.int64)


def test_lira_online_beats_threshold_baseline_on_overfitting_models(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = digits
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=150, random_state=0)
    exp = run_shadow_experiment(sklearn_trainer(mlp), x, y, n_models=8, seed=0)
    assert exp.in_mask.shape == (8, len(x))
    assert np.all(exp.in_mask.sum(axis=0) == 4)  # balanced: every record IN for half the models
    results = {}
    for method in ("threshold", "lira-online", "lira-offline", "rmia-online"):
        members, nonmembers = exp.pooled(method)
        assert members.dtype == np.float64 and nonmembers.dtype == np.float64
        results[method] = evaluate_membership(members, nonmembers, method=method, fprs=(0.001, 0.01))
    base = results["threshold"].point(0.01)
    lira = results["lira-online"].point(0.01)
    assert base.n_nonmembers + results["threshold"].n_calibration == 4 * len(x)
    assert lira.tpr_ci[0] > base.tpr_ci[1]
    assert results["lira-online"].auc > results["threshold"].auc
    assert results["rmia-online"].point(0.01).tpr > base.tpr
    svg = roc_loglog_svg([(m, r.roc_fpr, r.roc_tpr) for m, r in results.items()])
    assert svg.startswith("<svg") and "lira-online" in svg


def test_audit_membership_on_one_model(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    tr, te = idx[:600], idx[600:1400]
    target = SklearnClassifier(
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=150, random_state=0).fit(x[tr], y[tr])
    )
    audit = audit_membership(
        target, (x[tr], y[tr]), (x[te], y[te]), train_fn=sklearn_trainer(MLPClassifier(hidden_layer_sizes=(64,),
        max_iter=150)), n_references=4, methods=("threshold", "lira-offline", "rmia-offline"), seed=0,
    )  # fmt: skip
    assert audit.n_references == 4
    assert set(audit.evaluations) == {"threshold", "lira-offline", "rmia-offline"}
    ev = audit.evaluations["lira-offline"]
    assert ev.n_members == 600 and ev.n_calibration == 400
    assert ev.auc > 0.5
    exposed = audit.most_exposed("lira-offline", 5)
    assert len(exposed) == 5 and exposed[0][1] >= exposed[-1][1]


def test_audit_membership_online_uses_references_trained_on_members(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = digits
    idx = np.random.default_rng(1).permutation(len(x))
    tr, te = idx[:700], idx[700:1500]
    mlp = MLPClassifier(hidden_layer_sizes=(64,), max_iter=150, random_state=0)
    target = SklearnClassifier(mlp.fit(x[tr], y[tr]))
    audit = audit_membership(target, (x[tr], y[tr]), (x[te], y[te]), train_fn=sklearn_trainer(mlp), n_references=6,
                             methods=("threshold", "lira-online", "rmia-online"), online=True, seed=0)  # fmt: skip
    assert audit.n_references == 6
    online, base = audit.evaluations["lira-online"], audit.evaluations["threshold"]
    assert online.point(0.01).tpr_ci[0] > base.point(0.01).tpr_ci[1]
    assert audit.evaluations["rmia-online"].auc > base.auc
    with pytest.raises(ValueError, match="lira-online"):
        audit_membership(target, (x[tr], y[tr]), (x[te], y[te]), train_fn=sklearn_trainer(mlp),
                         methods=("lira-online",))  # fmt: skip
