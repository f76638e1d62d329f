"""Per-request detectors: OOD score, low margin and feature squeezing, against real data and real attacks."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from garrison.adapters import InputSpec, SklearnClassifier
from garrison.core.errors import InputError
from garrison.monitor.detectors import MarginDetector, OODDetector, Signal, calibrated_threshold, margin
from garrison.monitor.squeezing import BitDepth, FeatureSqueezing, MedianFilter, Rounding


def wilson(k: int, n: int, z: float = 2.576) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (99 % by default)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


# ---------------------------------------------------------------- Signal, margin, thresholds


def test_signal_is_frozen_and_serialises() -> None:
    s = Signal("ood_share", "key-1", 0.5, math.inf, {"n_recent": 40, "a": 1})
    with pytest.raises(AttributeError):
        s.score = 1.0  # type: ignore[misc]
    d = s.to_dict()
    assert d == {"kind": "ood_share", "key": "key-1", "score": 0.5, "threshold": None,
                 "detail": {"a": 1, "n_recent": 40}}  # fmt: skip
    assert json.loads(json.dumps(d)) == d


def test_margin_is_top1_minus_top2() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(margin(p), [0.5, 0.05, 0.7])
    np.testing.assert_allclose(margin(np.ones((2, 1))), [1.0, 1.0])
    with pytest.raises(InputError):
        margin(np.ones(3))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(0.005, 0.5),
)
def test_calibrated_threshold_keeps_the_rate_on_its_own_scores(values: list[float], fpr: float) -> None:
    s = np.asarray(values)
    upper = calibrated_threshold(s, fpr)
    lower = calibrated_threshold(s, fpr, tail="lower")
    # split-conformal: at most fpr * (n + 1) of the calibration scores lie strictly beyond the threshold
    assert np.sum(s > upper) <= fpr * (len(s) + 1)
    assert np.sum(s < lower) <= fpr * (len(s) + 1)


def test_calibrated_threshold_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="`fpr` must be in"):
        calibrated_threshold(np.ones(10), 0.0)
    with pytest.raises(ValueError, match="`tail`"):
        calibrated_threshold(np.ones(10), 0.1, tail="both")  # type: ignore[arg-type]
    assert calibrated_threshold(np.ones(10), 0.01) == math.inf


# ---------------------------------------------------------------- OOD


def test_ood_false_alarm_rate_on_held_out_rows_matches_fpr() -> None:
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(20, 20))
    ref = rng.standard_t(df=8, size=(20000, 20)) @ mixing
    held_out = rng.standard_t(df=8, size=(50000, 20)) @ mixing
    det = OODDetector(fpr=0.01).fit(ref)
    flagged = det.flag(held_out)
    low, high = wilson(int(flagged.sum()), len(flagged))
    # the union bound puts the rate between fpr / 2 and fpr; the 6000 calibration rows add about ±0.15 % of
    # calibration noise on top of the Wilson interval's sampling noise
    assert low <= 0.01 + 0.003
    assert high >= 0.005 - 0.002


def test_ood_flags_shifted_and_foreign_rows(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = cancer
    ref, held_out = x[:400], x[400:]
    det = OODDetector().fit(ref)
    assert det.flag(held_out).mean() <= 0.05
    sd = ref.std(axis=0)
    shifted = held_out + 3 * sd * np.where(np.arange(30) % 2 == 0, 1, -1)
    assert det.flag(shifted).mean() >= 0.95
    digits = load_digits().data[:500, :30]  # digits rows fed to a breast-cancer reference
    assert det.flag(digits).mean() >= 0.95
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    uniform = np.random.default_rng(0).uniform(lo, hi, size=(500, 30))
    assert det.flag(uniform).mean() >= 0.95


def test_ood_scores_non_finite_rows_as_inf_and_checks_shapes(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = cancer
    det = OODDetector().fit(x[:400])
    bad = x[400:403].copy()
    bad[0, 3] = np.nan
    bad[1, 0] = np.inf
    assert det.score(bad)[:2].tolist() == [math.inf, math.inf]
    assert det.flag(bad)[:2].all()
    assert det.score(x[0]).shape == (1,)
    with pytest.raises(InputError, match="30 features"):
        det.score(x[:5, :10])
    assert det.to_dict()["n_features"] == 30


def test_ood_refuses_bad_parameters_and_small_references() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        OODDetector().score(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="`fpr` must be in"):
        OODDetector(fpr=1.5).fit(np.zeros((10, 3)))
    with pytest.raises(InputError, match="held-out reference rows"):
        OODDetector(fpr=0.01).fit(np.random.default_rng(0).normal(size=(100, 3)))
    with pytest.raises(InputError, match="finite"):
        OODDetector(fpr=0.2).fit(np.full((50, 3), np.nan))


# ---------------------------------------------------------------- squeezers


def test_bit_depth_and_rounding() -> None:
    x = np.array([[0.0, 0.2, 0.49, 0.51, 1.3]])
    np.testing.assert_allclose(BitDepth(1)(x), [[0, 0, 0, 1, 1]])
    np.testing.assert_allclose(BitDepth(2)(x), [[0, 1 / 3, 1 / 3, 2 / 3, 1]])
    np.testing.assert_allclose(Rounding(0.5)(np.array([[0.2, 0.3, 1.74]])), [[0.0, 0.5, 1.5]])
    np.testing.assert_allclose(Rounding((0.0, 1.0))(np.array([[0.26, 0.6]])), [[0.26, 1.0]])
    with pytest.raises(ValueError, match="`bits`"):
        BitDepth(0)
    with pytest.raises(ValueError, match="`step`"):
        Rounding(-1.0)


def test_rounding_from_reference_recovers_recorded_precision(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = cancer
    rounding = Rounding.from_reference(x)
    steps = np.asarray(rounding.step)
    assert steps.shape == (30,)
    assert steps.max() <= 0.1
    assert steps.min() >= 1e-8
    np.testing.assert_allclose(rounding(x), x, atol=1e-9)  # data at its own precision is a fixed point


def test_median_filter_removes_an_isolated_pixel_and_keeps_the_layout() -> None:
    images = np.zeros((2, 64))
    images[0, 27] = 1.0
    out = MedianFilter((8, 8), size=3)(images)
    assert out.shape == (2, 64)
    assert out.max() == 0.0
    with pytest.raises(ValueError, match="`shape`"):
        MedianFilter((64,))


def test_squeezing_on_tabular_data_is_silent_at_recorded_precision(
    cancer: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = cancer
    model = SklearnClassifier(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[:300], y[:300])
    )
    det = FeatureSqueezing(model, [Rounding.from_reference(x)]).fit(x[300:450])
    assert det.threshold_ < 1e-9
    assert not det.flag(x[450:]).any()
    # a perturbation below the recorded precision is rounded away, so any prediction it moved is flagged
    rounding = det.squeezers[0]
    assert isinstance(rounding, Rounding)
    nudged = x[450:] + 0.4 * np.asarray(rounding.step) * np.sign(
        np.random.default_rng(0).normal(size=(1, 30))
    )
    assert det.flag(nudged).mean() >= 0.9
    assert det.to_dict()["squeezers"] == ["rounding"]


# ---------------------------------------------------------------- adversarial examples on digits (torch)


@pytest.fixture(scope="module")
def digits_setup() -> dict[str, Any]:
    pytest.importorskip("torch")
    try:
        from tests.adapters.models import digits, fit, small_mlp
    except ImportError:  # pragma: no cover - run from inside tests/
        from adapters.models import digits, fit, small_mlp
    from garrison.adapters import TorchClassifier
    from garrison.robustness import FGSM, PGD, Square, ThreatModel

    x_train, x_test, y_train, y_test = digits()
    model = TorchClassifier(fit(small_mlp(64, 10, hidden=32), x_train, y_train), input_spec=InputSpec((64,)))
    cal, x, y = x_test[:200], x_test[200:], y_test[200:]
    squeezing = FeatureSqueezing(model, [BitDepth(2)]).fit(cal)
    margins = MarginDetector().fit(model.predict_proba(cal))
    adversarial = {}
    for attack, eps in ((FGSM(), 0.1), (PGD(steps=20), 0.1), (Square(queries=300), 0.15)):
        result = attack.run(model, x, y, ThreatModel("linf", eps), seed=0)
        adversarial[attack.name] = result.x_adv[result.success]
    return {"model": model, "x": x, "squeezing": squeezing, "margins": margins, "adversarial": adversarial}


@pytest.mark.torch
@pytest.mark.parametrize("attack", ["fgsm", "pgd", "square"])
def test_feature_squeezing_flags_adversarial_examples(digits_setup: dict[str, Any], attack: str) -> None:
    det: FeatureSqueezing = digits_setup["squeezing"]
    clean_rate = det.flag(digits_setup["x"]).mean()
    adv = digits_setup["adversarial"][attack]
    assert len(adv) >= 50
    adv_rate = det.flag(adv).mean()
    # measured: clean 5 %, fgsm 83 %, pgd 91 %, square 90 % (docs/detectors.md)
    assert clean_rate <= 0.1
    assert adv_rate >= 0.5
    assert adv_rate >= 3 * clean_rate


@pytest.mark.torch
def test_feature_squeezing_reuses_given_probabilities(digits_setup: dict[str, Any]) -> None:
    det: FeatureSqueezing = digits_setup["squeezing"]
    x = digits_setup["x"][:20]
    probs = digits_setup["model"].predict_proba(x)
    np.testing.assert_allclose(det.score(x, probs), det.score(x))
    with pytest.raises(InputError, match="`probs`"):
        det.score(x, probs[:5])


@pytest.mark.torch
@pytest.mark.parametrize("attack", ["pgd", "square"])
def test_low_margin_flags_minimal_adversarial_examples(digits_setup: dict[str, Any], attack: str) -> None:
    det: MarginDetector = digits_setup["margins"]
    model = digits_setup["model"]
    clean_rate = det.flag(model.predict_proba(digits_setup["x"])).mean()
    adv_rate = det.flag(model.predict_proba(digits_setup["adversarial"][attack])).mean()
    # PGD and Square stop at the first point that fools the model, which lies near the boundary
    assert clean_rate <= 0.1
    assert adv_rate >= 0.5
    assert adv_rate >= 3 * clean_rate


def test_unfitted_detectors_say_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        MarginDetector().flag(np.ones((1, 2)) / 2)
    model = SklearnClassifier(LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureSqueezing(model, [BitDepth(2)]).score(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="`squeezers`"):
        FeatureSqueezing(model, []).fit(np.zeros((10, 1)))
