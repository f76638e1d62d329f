from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from garrison.adapters import predict  # noqa: E402
from garrison.robustness import APGD, FAB, FGSM, PGD, HopSkipJump, Square, ThreatModel  # noqa: E402
from garrison.robustness.selftest import planted_problem, run_selftest  # noqa: E402

try:
    from tests.adapters.models import digits
except ImportError:  # pragma: no cover - run from inside tests/
    from adapters.models import digits


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return digits()[1].reshape(-1, 1, 8, 8)


@pytest.mark.parametrize("white_box", [True, False])
@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 0.5)])
def test_planted_model_has_an_adversarial_example_within_eps(images, norm, eps, white_box):
    problem = planted_problem(images, ThreatModel(norm, eps), n_classes=10, n_samples=8, white_box=white_box)
    assert len(problem.y) == 8
    np.testing.assert_array_equal(predict(problem.model, problem.x), problem.y)
    if white_box:
        # the constructive witness: one huge PGD step lands on the ball's edge along the planted direction
        witness = PGD(steps=1, step_size=10.0, random_start=False)
        result = witness.run(problem.model, problem.x, problem.y, problem.threat)
        assert result.success.all()
        assert problem.threat.contains(result.x_adv, problem.x).all()
    else:
        # the numpy model agrees with the torch one
        twin = planted_problem(images, ThreatModel(norm, eps), n_classes=10, n_samples=8, white_box=True)
        probe = np.clip(problem.x + np.random.default_rng(0).uniform(-eps, eps, problem.x.shape), 0, 1)
        np.testing.assert_allclose(
            problem.model.predict_proba(probe), twin.model.predict_proba(probe), atol=1e-4
        )


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 0.5)])
@pytest.mark.parametrize(
    ("attack", "white_box"),
    [
        (FGSM(), True),
        (PGD(steps=10), True),
        (APGD(steps=10), True),
        (APGD(loss="dlr", targeted=True, steps=10, n_target_classes=3), True),
        (FAB(steps=20, n_target_classes=3), True),
        (Square(queries=500), False),
        (HopSkipJump(max_queries=1000), False),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_good_attacks_pass_their_self_test(images, attack, white_box, norm, eps):
    result = run_selftest(
        attack, images, ThreatModel(norm, eps), n_classes=10, n_samples=12, white_box=white_box
    )
    assert result.passed, result.detail
    assert result.success_rate >= 0.9 and result.n_samples == 12


@pytest.mark.parametrize(
    ("broken", "white_box"),
    [
        (PGD(steps=0, random_start=False), True),
        (Square(queries=1), False),
        (PGD(steps=3, step_size=1e-4), True),
    ],
    ids=["zero-steps", "one-query", "tiny-steps"],
)
def test_broken_attacks_fail_their_self_test(images, broken, white_box):
    result = run_selftest(
        broken, images, ThreatModel("linf", 0.1), n_classes=10, n_samples=12, white_box=white_box
    )
    assert not result.passed
    assert "planted samples" in result.detail and result.success_rate < 0.9


def test_planted_problem_validates(images):
    with pytest.raises(ValueError, match="`n_classes` must be >= 2"):
        planted_problem(images, ThreatModel("linf", 0.1), n_classes=1)
    with pytest.raises(ValueError, match="eps"):
        planted_problem(images, ThreatModel("linf", 0.0), n_classes=3)
