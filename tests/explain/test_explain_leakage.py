"""Leaky identifiers: a planted id that carries the decision is flagged; the same model without it is not."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from garrison.explain.leakage import leaky_features

shap = pytest.importorskip("shap")
pytestmark = pytest.mark.filterwarnings(
    "ignore:The set_bad function will be deprecated:PendingDeprecationWarning"
)


def _tree_attributions(model: GradientBoostingClassifier, x: np.ndarray) -> np.ndarray:
    return np.asarray(shap.TreeExplainer(model).shap_values(x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_leaky_id_is_flagged_and_the_clean_model_is_not(seed: int) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(seed)
    # records numbered after sorting by outcome (a common export bug), then shuffled
    order = np.argsort(y, kind="stable")
    x, y = x[order], y[order]
    ids = np.arange(1000, 1000 + len(y), dtype=np.float64)
    shuffle = rng.permutation(len(y))
    x, y, ids = x[shuffle], y[shuffle], ids[shuffle]
    names = [*load_breast_cancer().feature_names, "record_id"]
    leaky_x = np.column_stack([x, ids])
    leaky = GradientBoostingClassifier(n_estimators=50, random_state=seed).fit(leaky_x, y)
    scan = leaky_features(_tree_attributions(leaky, leaky_x), leaky_x, feature_names=names)
    assert [f.feature for f in scan.flagged] == ["record_id"]
    assert scan.flagged[0].identifier == "unique values"
    clean = GradientBoostingClassifier(n_estimators=50, random_state=seed).fit(x, y)
    clean_scan = leaky_features(_tree_attributions(clean, x), x, feature_names=names[:-1])
    assert clean_scan.flagged == ()
    assert (
        clean_scan.features[0].share > 0.1
    )  # the clean model has decisive features; they are not identifiers


def test_a_row_number_is_an_identifier_by_order_and_an_unused_id_is_harmless() -> None:
    rng = np.random.default_rng(0)
    n = 200
    row_number = np.linspace(0.0, 1.0, n) + rng.normal(scale=0.01, size=n)  # float, follows the row order
    signal = rng.normal(size=n)
    x = np.column_stack([row_number, signal])
    dominated = np.column_stack([rng.normal(scale=3.0, size=n), rng.normal(scale=0.5, size=n)])
    scan = leaky_features(dominated, x, feature_names=["row", "signal"])
    assert scan.flagged[0].feature == "row" and scan.flagged[0].identifier == "row order"
    unused = np.column_stack([rng.normal(scale=0.1, size=n), rng.normal(scale=3.0, size=n)])
    assert leaky_features(unused, x).flagged == ()


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(ValueError, match="does not match"):
        leaky_features(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 3 rows"):
        leaky_features(np.zeros((2, 3)), np.zeros((2, 3)))
