"""garrison.explain on scikit-learn and black-box models: routing, faithfulness, determinism, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from garrison.adapters import FunctionClassifier, InputSpec, SklearnClassifier, linear_classifier
from garrison.core.errors import BudgetExceeded, InputError, ModelInputMismatchError
from garrison.explain import Attributions, Explainer, attributions

pytest.importorskip("shap")

# importing shap builds matplotlib colormaps with calls matplotlib plans to deprecate (not ours)
pytestmark = pytest.mark.filterwarnings(
    r"ignore:The set_\w+ function will be deprecated:PendingDeprecationWarning"
)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def feature0_data() -> tuple[np.ndarray, np.ndarray]:
    """Labels decided by feature 0 alone; features 1..5 are noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    return x, (x[:, 0] > 0).astype(int)


def _feature0_model() -> FunctionClassifier:
    def fn(x: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-3.0 * x[:, 0]))
        return np.column_stack([1.0 - p, p])

    return FunctionClassifier(fn, n_classes=2, input_spec=InputSpec((6,), "float64"), name="feature0")


def test_random_forest_routes_to_tree_shap_and_adds_up_to_the_probability(iris):
    x, y = iris
    model = SklearnClassifier(RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y))
    a = attributions(model, x[::10])
    assert a.method == "shap.tree"
    assert a.output == "probability"
    assert a.values.shape == (15, 4)
    proba = model.predict_proba(x[::10])
    np.testing.assert_array_equal(a.target, proba.argmax(axis=1))
    np.testing.assert_allclose(a.base_values + a.values.sum(axis=1), proba.max(axis=1), atol=1e-6)


def test_binary_boosting_explains_the_margin_of_the_predicted_class(iris):
    x, y = iris
    est = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, (y == 0).astype(int))
    a = attributions(SklearnClassifier(est), x[40:60])
    assert a.method == "shap.tree"
    assert a.output == "margin"
    margin = est.decision_function(x[40:60])
    # class 1 rows get the positive-class margin, class 0 rows its negation: both positive when predicted
    np.testing.assert_allclose(a.base_values + a.values.sum(axis=1), np.abs(margin), atol=1e-6)
    assert set(a.target.tolist()) == {0, 1}


def test_multiclass_gradient_boosting_falls_back_to_permutation_with_a_note(iris):
    x, y = iris
    est = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(x, y)
    a = attributions(SklearnClassifier(est), x[::15], background=x[::3], max_evals=60)
    assert a.method == "shap.permutation"
    assert a.output == "probability"
    assert any("refuses multiclass GradientBoostingClassifier" in n for n in a.notes)
    with pytest.raises(ValueError, match="refuses multiclass"):
        Explainer(SklearnClassifier(est), method="tree")


def test_logistic_regression_routes_to_linear_shap_and_adds_up_to_the_decision(iris):
    x, y = iris
    est = LogisticRegression(max_iter=500).fit(x, (y == 2).astype(int))
    a = attributions(SklearnClassifier(est), x[90:110], background=x)
    assert a.method == "shap.linear"
    decision = est.decision_function(x[90:110])
    np.testing.assert_allclose(a.base_values + a.values.sum(axis=1), np.abs(decision), atol=1e-6)


def test_black_box_routes_to_permutation_which_is_exactly_additive(iris):
    x, _ = iris
    model = linear_classifier(np.random.default_rng(1).normal(size=(4, 3)))
    a = attributions(model, x[::25], background=x[::5], max_evals=100)
    assert a.method == "shap.permutation"
    proba = model.predict_proba(x[::25])
    reference = model.predict_proba(x[::5]).mean(axis=0)
    np.testing.assert_allclose(a.values.sum(axis=1), proba.max(axis=1) - reference[a.target], atol=1e-9)
    np.testing.assert_allclose(a.base_values, reference[a.target], atol=1e-12)


def test_a_pipeline_is_explained_model_agnostically_in_the_classifier_space(iris):
    x, y = iris
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    a = attributions(SklearnClassifier(est), x[::30], background=x[::5], max_evals=60)
    assert a.method == "shap.permutation"
    assert any("pipeline" in n for n in a.notes)
    assert a.values.shape == (5, 4)


def test_a_model_using_only_feature_0_puts_the_mass_on_feature_0(feature0_data):
    x, y = feature0_data
    a = attributions(_feature0_model(), x[:20], background=x[200:300])
    share = a.global_importance() / a.global_importance().sum()
    assert share.argmax() == 0
    assert share[0] > 0.99
    forest = SklearnClassifier(RandomForestClassifier(n_estimators=30, random_state=0).fit(x, y))
    b = attributions(forest, x[300:])
    share = b.global_importance() / b.global_importance().sum()
    assert share.argmax() == 0
    assert share[0] > 0.6
    assert b.top_features(1)[0][0] == "f0"


def test_explicit_target_and_feature_names(iris):
    x, y = iris
    names = ("sepal_l", "sepal_w", "petal_l", "petal_w")
    est = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    model = SklearnClassifier(est, input_spec=InputSpec((4,), "float64", names))
    a = attributions(model, x[:5], target=2)
    assert a.feature_names == names
    np.testing.assert_array_equal(a.target, [2] * 5)
    np.testing.assert_allclose(
        a.base_values + a.values.sum(axis=1), est.predict_proba(x[:5])[:, 2], atol=1e-6
    )
    d = json.loads(json.dumps(a.to_dict()))
    assert d["method"] == "shap.tree" and d["feature_names"] == list(names)
    assert len(d["global_importance"]) == 4 and d["n_rows"] == 5


def test_permutation_is_deterministic_under_seed(feature0_data):
    x, _ = feature0_data
    model = linear_classifier(np.random.default_rng(2).normal(size=(6, 2)))
    first = attributions(model, x[:8], background=x[100:140], max_evals=40, seed=7)
    again = attributions(model, x[:8], background=x[100:140], max_evals=40, seed=7)
    np.testing.assert_array_equal(first.values, again.values)
    explainer = Explainer(model, background=x[100:140], max_evals=40, seed=7)
    np.testing.assert_array_equal(explainer.explain(x[:8]).values, first.values)
    np.testing.assert_array_equal(explainer.explain(x[:8]).values, first.values)


def test_max_evals_below_one_permutation_is_raised_and_noted(iris):
    x, _ = iris
    a = attributions(linear_classifier(np.eye(4)[:, :3]), x[:3], background=x, max_evals=2)
    assert any("raised to 9" in n for n in a.notes)
    assert isinstance(a, Attributions)


def test_errors():
    model = _feature0_model()
    with pytest.raises(ValueError, match="`method` must be one of"):
        Explainer(model, method="lime")
    with pytest.raises(ValueError, match="needs a scikit-learn tree model"):
        Explainer(model, method="tree")
    with pytest.raises(ValueError, match="needs a torch model"):
        Explainer(model, method="integrated-gradients")
    explainer = Explainer(model, max_evals=20)
    with pytest.raises(ModelInputMismatchError):
        explainer.explain(np.zeros((3, 5)))
    with pytest.raises(ModelInputMismatchError, match="must be a batch"):
        explainer.explain(np.zeros(6))
    with pytest.raises(InputError, match="no rows"):
        explainer.explain(np.zeros((0, 6)))
    with pytest.raises(InputError, match="NaN"):
        explainer.explain(np.full((2, 6), np.nan))
    with pytest.raises(InputError, match="background"):
        explainer.explain(np.zeros((1, 6)))
    with pytest.raises(ModelInputMismatchError, match="target"):
        explainer.explain(np.zeros((2, 6)), target=2)
    with pytest.raises(ValueError, match="budget_s"):
        Explainer(model, budget_s=0)


def test_tree_route_on_a_larger_generated_set_is_additive():
    x, y = make_classification(600, 8, n_informative=4, random_state=0)
    est = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(x, y)
    a = attributions(SklearnClassifier(est), x[:50], background=x[100:200])
    assert a.method == "shap.tree"
    assert any("tree SHAP" in n for n in a.notes)
    np.testing.assert_allclose(
        a.base_values + a.values.sum(axis=1), np.abs(est.decision_function(x[:50])), atol=1e-6
    )


def test_a_time_budget_lowers_max_evals_and_stops_with_rows_left(feature0_data):
    x, _ = feature0_data
    model = _feature0_model()
    a = attributions(model, x[:3], background=x[100:120], budget_s=1e-9)
    assert any("to fit the 1e-09 s budget" in n for n in a.notes)
    assert any("13 model evaluations per row" in n for n in a.notes)
    with pytest.raises(BudgetExceeded):
        attributions(model, x[:40], background=x[100:120], budget_s=1e-9)


def test_a_codec_pipeline_is_explained_in_codec_space_with_the_schema_names():
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    from garrison.data import FeatureCodec, infer_schema

    rng = np.random.default_rng(0)
    n = 240
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n).round(2),
            "city": pd.Series(rng.choice(["oslo", "rome", "lima"], n), dtype="str"),
        }
    )
    y = np.where(df["income"] > 50, "good", "bad")
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                ("num", StandardScaler(), ["age", "income"]),
            ]
        ),
        LogisticRegression(),
    ).fit(df, y)
    codec = FeatureCodec(infer_schema(df))
    model = SklearnClassifier(pipe, codec=codec)
    x = codec.encode(df)
    a = attributions(model, x[:10], background=x[100:160], max_evals=40)
    assert a.method == "shap.permutation"
    assert any("decoded records" in note for note in a.notes)
    assert a.feature_names == tuple(codec.schema.names())
    assert a.top_features(1)[0][0] == "income"


def test_each_row_carries_its_own_top_features_with_their_sign() -> None:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    est = LogisticRegression(max_iter=5000).fit(data.data, data.target)
    spec = InputSpec((30,), "float64", tuple(data.feature_names))
    explainer = Explainer(SklearnClassifier(est, input_spec=spec), background=data.data[:100])
    a = explainer.explain(data.data[:5])
    tops = a.row_top_features(3)
    assert len(tops) == 5 and all(len(t) == 3 for t in tops)
    for row, top in zip(a.values, tops, strict=True):
        magnitudes = [abs(v) for _, v in top]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(np.abs(row).max())
        name, value = top[0]
        assert value == pytest.approx(row[list(data.feature_names).index(name)])
    assert a.row_top_features(0) == [[]] * 5
