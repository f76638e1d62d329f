from __future__ import annotations

import json
import math

import numpy as np
import pytest

from garrison.robustness import PGD, Square
from garrison.robustness.evaluate import evaluate_robustness
from garrison.testing import tiny_tabular_dataset

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def linear_digits() -> tuple[object, np.ndarray, np.ndarray]:
    """A softmax-regression torch model on scikit-learn digits (fast to train, easy to attack)."""
    from sklearn.datasets import load_digits

    from garrison.adapters.base import InputSpec
    from garrison.adapters.torch_model import TorchClassifier

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    torch.manual_seed(0)
    net = torch.nn.Linear(64, 10)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.from_numpy(x[:1400]), torch.from_numpy(y[:1400])
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    return TorchClassifier(net, input_spec=InputSpec((64,)), n_classes=10), x[1400:1500], y[1400:1500]


def test_curve_is_monotone_with_intervals(linear_digits: tuple) -> None:
    model, x, y = linear_digits
    ev = evaluate_robustness(model, x, y, eps=[0.2, 0.0, 0.05], attacks=[PGD(steps=10)], seed=0)
    assert ev.n == 100 and ev.clean_accuracy > 0.85
    acc = [ev.robust_accuracy(e) for e in (0.0, 0.05, 0.2)]
    assert acc[0] == pytest.approx(ev.clean_accuracy)
    assert acc[0] >= acc[1] >= acc[2] and acc[2] < 0.2
    point = ev.curve[0]
    assert point.eps == 0.2 and point.ci[0] <= point.robust_accuracy <= point.ci[1]
    assert 0.0 < ev.median_min_perturbation <= 0.2
    rows = ev.per_class(0.05)
    assert sum(r["support"] for r in rows) == 100
    assert ev.masking is not None and not ev.masking.suspected
    json.dumps(ev.to_dict(), allow_nan=False)


def test_same_seed_same_numbers(linear_digits: tuple) -> None:
    model, x, y = linear_digits
    runs = [
        evaluate_robustness(model, x, y, eps=[0.05], attacks=[PGD(steps=5)], masking=False, seed=3).to_dict()
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_median_is_infinite_when_the_cap_is_not_enough(linear_digits: tuple) -> None:
    model, x, y = linear_digits
    ev = evaluate_robustness(model, x, y, eps=[0.001], attacks=[PGD(steps=5)], masking=False)
    assert ev.median_min_perturbation == math.inf
    assert ev.to_dict()["median_min_perturbation"] is None


def test_tabular_attacks_stay_valid_in_range_units() -> None:
    """ε as a fraction of each feature's range on a scikit-learn pipeline; adversarial rows stay valid."""
    tiny = tiny_tabular_dataset(seed=7)
    schema = tiny.test.schema
    lower, upper = schema.bounds()
    x = tiny.test.x
    y = np.asarray([tiny.model.classes.index(v) for v in tiny.test.y], dtype=np.int64)  # type: ignore[union-attr]
    ev = evaluate_robustness(
        tiny.model, x, y, eps=[0.05, 0.3], eps_unit="range", lower=lower, upper=upper,
        project=lambda a, o: schema.project(a, original=o), attacks=Square(queries=50), seed=0,
        bisection_rounds=2,
    )  # fmt: skip
    assert ev.eps_unit == "range"
    assert ev.robust_accuracy(0.3) <= ev.robust_accuracy(0.05) <= ev.clean_accuracy
    assert ev.robust_accuracy(0.3) < ev.clean_accuracy
    assert ev.examples is not None
    original, adversarial = ev.examples
    assert not schema.violations(adversarial).any()
    np.testing.assert_allclose(original, x)


def test_bad_arguments_are_refused(linear_digits: tuple) -> None:
    model, x, y = linear_digits
    with pytest.raises(ValueError, match="eps"):
        evaluate_robustness(model, x, y, eps=[])
    with pytest.raises(ValueError, match="norm"):
        evaluate_robustness(model, x, y, eps=[0.1], norm="l1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eps_unit"):
        evaluate_robustness(model, x, y, eps=[0.1], eps_unit="pixels")  # type: ignore[arg-type]


def test_adversarial_sets_match_the_verdicts(linear_digits: tuple) -> None:
    from garrison.adapters.base import predict

    model, x, y = linear_digits
    ev = evaluate_robustness(model, x, y, eps=[0.1, 0.02], attacks=[PGD(steps=10)], masking=False, seed=0)
    for k, e in enumerate(ev.eps):
        adv = ev.extras["x_adv"][k]
        assert adv.shape == x.shape and np.abs(adv - x).max() <= e + 1e-6
        fooled = ev.clean_correct & ~ev.robust_correct[k]
        assert fooled.any()
        hit = predict(model, adv) == y
        assert not hit[fooled].any()  # a sample counted as fooled holds the example that fooled it
        assert hit[ev.robust_correct[k]].all()


def test_randomised_model_keeps_its_worst_example_in_expectation(linear_digits: tuple) -> None:
    """On a noisy model one-pass verdicts are luck: every sample gets an EOT example."""
    from garrison.adapters.base import predict
    from garrison.adapters.torch_model import TorchClassifier

    class Noisy(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x + 0.1 * torch.randn_like(x))

    base, x, y = linear_digits
    model = TorchClassifier(Noisy(base.torch_module), input_spec=base.input_spec, n_classes=10)
    runs = {
        masking: evaluate_robustness(
            model,
            x,
            y,
            eps=[0.1],
            attacks=[PGD(steps=5)],
            masking=masking,
            adaptive_steps=20,
            min_perturbation=False,
            seed=0,
        )
        for masking in (False, True)
    }
    ev = runs[True]
    assert ev.masking is not None and ev.masking.randomised
    assert "adaptive-bpda-eot" in ev.attacks
    adv = ev.extras["x_adv"][0]
    assert np.abs(adv - x).max() <= 0.1 + 1e-6
    assert (np.abs(adv - x).reshape(len(x), -1).max(axis=1) > 0).all()
    expected = {}
    for masking, run in runs.items():
        torch.manual_seed(0)
        expected[masking] = np.mean([predict(model, run.extras["x_adv"][0]) == y for _ in range(20)])
    # the one-pass PGD examples are right on most passes; the EOT ones markedly less often
    assert expected[True] < expected[False] - 0.1, expected
