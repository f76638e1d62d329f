"""STRIP on a BadNets-trained digits CNN: triggered inputs keep a low entropy under superimposition, the threshold
holds the chosen false-rejection rate on its fit set, and scores are deterministic under a seed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402

from garrison.adapters import InputSpec, SklearnClassifier, TorchClassifier  # noqa: E402
from garrison.core.errors import InputError  # noqa: E402
from garrison.poisoning import Trigger, poison  # noqa: E402
from garrison.poisoning.strip import STRIP  # noqa: E402

TARGET = 0


def _train(x: np.ndarray, y: np.ndarray, *, seed: int, epochs: int = 15) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def setup() -> tuple[TorchClassifier, Trigger, np.ndarray, np.ndarray, np.ndarray]:
    torch.set_num_threads(1)
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    poisoned = poison(x_train, y_train, kind="badnets", rate=0.1, target=TARGET, size=2, seed=0)
    model = TorchClassifier(_train(poisoned.x, poisoned.y, seed=0), input_spec=InputSpec((1, 8, 8)))
    x_fit, x_eval, y_eval = x_test[:200], x_test[200:], y_test[200:]
    assert poisoned.trigger is not None
    return model, poisoned.trigger, x_fit, x_eval, y_eval


def test_triggered_inputs_have_lower_entropy_and_are_detected(setup) -> None:  # type: ignore[no-untyped-def]
    model, trigger, x_fit, x_eval, y_eval = setup
    strip = STRIP(model, n_overlays=16).fit(x_fit)
    triggered = trigger.apply(x_eval[y_eval != TARGET])
    clean_scores, trojan_scores = strip.score(x_eval), strip.score(triggered)
    assert ((clean_scores >= 0) & (clean_scores <= 1)).all()
    assert np.median(trojan_scores) < 0.5 * np.median(clean_scores)
    assert strip.detect(triggered).mean() > 0.8
    assert strip.detect(x_eval).mean() < 0.1
    state = strip.to_dict()
    json.dumps(state)
    assert state["fitted"] and state["threshold"] == strip.threshold_ and state["n_fit"] == len(x_fit)


@pytest.mark.parametrize("frr", [0.01, 0.05, 0.1])
def test_threshold_holds_the_false_rejection_rate_on_the_fit_set(setup, frr: float) -> None:  # type: ignore[no-untyped-def]
    model, _, x_fit, _, _ = setup
    state = STRIP(model, n_overlays=8, frr=frr, statistic="entropy-of-mean").fit(x_fit).to_dict()
    assert state["fit_frr"] == pytest.approx(math.floor(frr * len(x_fit)) / len(x_fit))
    assert state["fit_frr"] <= frr


def test_same_seed_same_scores(setup) -> None:  # type: ignore[no-untyped-def]
    model, _, x_fit, x_eval, _ = setup
    make = lambda seed: STRIP(model, n_overlays=8, blend="average", seed=seed).fit(x_fit)  # noqa: E731
    first, again, other = make(3), make(3), make(4)
    np.testing.assert_array_equal(first.score(x_eval[:30]), again.score(x_eval[:30]))
    assert first.threshold_ == again.threshold_
    assert not np.array_equal(first.score(x_eval[:30]), other.score(x_eval[:30]))


def test_works_on_any_classifier_and_flat_rows(setup) -> None:  # type: ignore[no-untyped-def]
    _, _, x_fit, x_eval, _ = setup
    flat_fit = x_fit.reshape(len(x_fit), -1)
    rng = np.random.default_rng(0)
    model = SklearnClassifier(
        LogisticRegression(max_iter=300).fit(flat_fit, rng.integers(0, 3, len(flat_fit)))
    )
    strip = STRIP(model, n_overlays=5).fit(flat_fit)
    scores = strip.score(x_eval.reshape(len(x_eval), -1))
    assert scores.shape == (len(x_eval),) and ((scores >= 0) & (scores <= 1)).all()
    assert strip.detect(x_eval.reshape(len(x_eval), -1)[:0]).shape == (0,)


def test_errors(setup) -> None:  # type: ignore[no-untyped-def]
    model, _, x_fit, x_eval, _ = setup
    with pytest.raises(RuntimeError, match="not fitted"):
        STRIP(model).score(x_eval)
    with pytest.raises(InputError, match="at least 100"):
        STRIP(model, frr=0.01).fit(x_fit[:50])
    with pytest.raises(InputError, match="at least 21"):
        STRIP(model, frr=0.5).fit(x_fit[:10])
    for bad in ({"n_overlays": 0}, {"alpha": 1.0}, {"frr": 0.0}, {"statistic": "max"}, {"blend": "mix"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            STRIP(model, **bad).fit(x_fit)  # type: ignore[arg-type]
    bad_x = x_fit.copy()
    bad_x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        STRIP(model).fit(bad_x)
    assert STRIP(model).to_dict()["fitted"] is False
