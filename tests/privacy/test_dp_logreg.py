from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from garrison.privacy import DPLogisticRegression, PrivacyLedger  # noqa: E402


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _split(loader: Any) -> tuple[np.ndarray, ...]:
    x, y = loader(return_X_y=True)
    return tuple(train_test_split(x, y, test_size=0.25, random_state=0, stratify=y))


def test_breast_cancer_at_epsilon_1_stays_useful() -> None:
    # measured over seeds 0..4: 0.937 mean, 0.923 worst (non-private LogisticRegression: 0.958)
    x_tr, x_te, y_tr, y_te = _split(load_breast_cancer)
    model = make_pipeline(StandardScaler(), DPLogisticRegression(epsilon=1.0, random_state=0)).fit(x_tr, y_tr)
    assert model.score(x_te, y_te) >= 0.90
    ledger = model[-1].ledger_
    assert isinstance(ledger, PrivacyLedger)
    assert ledger.accountant == "prv" and ledger.delta == 1e-3  # 426 training samples
    assert 0.98 <= ledger.epsilon <= 1.0
    assert model[-1].n_iter_ == ledger.steps == 20 * 7  # 20 epochs of 426/64 -> 7 Poisson batches


def test_iris_at_epsilon_3_is_multiclass() -> None:
    x_tr, x_te, y_tr, y_te = _split(load_iris)
    clf = DPLogisticRegression(epsilon=3.0, lr=0.2, accountant="rdp", random_state=0)
    model = make_pipeline(StandardScaler(), clf).fit(x_tr, y_tr)
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    assert model.score(x_te, y_te) >= 0.8
    proba = model.predict_proba(x_te)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], model.predict(x_te))


def test_binary_coefficients_follow_sklearn_conventions() -> None:
    x_tr, _, y_tr, _ = _split(load_breast_cancer)
    x_tr = StandardScaler().fit_transform(x_tr)
    labels = np.where(y_tr == 1, "benign", "malignant")
    clf = DPLogisticRegression(epsilon=2.0, epochs=3, accountant="rdp", random_state=1).fit(x_tr, labels)
    assert list(clf.classes_) == ["benign", "malignant"]
    assert clf.coef_.shape == (1, 30) and clf.intercept_.shape == (1,)
    scores = clf.decision_function(x_tr)
    np.testing.assert_allclose(clf.predict_proba(x_tr)[:, 1], 1 / (1 + np.exp(-scores)))
    np.testing.assert_array_equal(clf.predict(x_tr), np.where(scores > 0, "malignant", "benign"))


def test_less_budget_more_noise_and_seeded_fits_repeat() -> None:
    x_tr, _, y_tr, _ = _split(load_breast_cancer)
    x_tr = StandardScaler().fit_transform(x_tr)
    fits = [
        DPLogisticRegression(epsilon=eps, epochs=3, accountant="rdp", random_state=seed).fit(x_tr, y_tr)
        for eps, seed in ((0.5, 0), (8.0, 0), (8.0, 0))
    ]
    assert fits[0].ledger_.noise_multiplier > fits[1].ledger_.noise_multiplier
    np.testing.assert_array_equal(fits[1].coef_, fits[2].coef_)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epsilon": 0}, "`epsilon` must be > 0, got 0"),
        ({"epochs": 0}, "`epochs` must be an integer >= 1, got 0"),
        ({"delta": 1.0}, "`delta` must be in"),
        ({"accountant": "moments"}, "`accountant` must be one of"),
    ],
)
def test_bad_parameters_are_refused_at_fit(params: dict[str, Any], message: str) -> None:
    clf = DPLogisticRegression(**params)  # the constructor only stores
    with pytest.raises(ValueError, match=message):
        clf.fit(np.zeros((4, 2)), [0, 1, 0, 1])


# scikit-learn's estimator checks fit dozens of times; the Gaussian (GDP) accountant chooses σ in milliseconds where
# PRV and RDP take about a second, and the API contract checked here does not depend on the accounting. (The full
# check_estimator also passes with accountant="rdp"; it takes over a minute.)
@pytest.mark.filterwarnings("ignore:GDP accounting is experimental:UserWarning")
@parametrize_with_checks([DPLogisticRegression(epsilon=3.0, epochs=5, accountant="gdp", random_state=0)])
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)
