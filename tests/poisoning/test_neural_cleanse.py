"""Neural Cleanse on digits CNNs: it names the target of a BadNets-trained model, flags nothing on a clean one, and
its anomaly index is the MAD arithmetic of the paper, small side only."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402

from garrison.adapters import InputSpec, SklearnClassifier, TorchClassifier  # noqa: E402
from garrison.core.errors import InputError, ModelInputMismatchError  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.poisoning.neural_cleanse import (  # noqa: E402
    MAD_CONSISTENCY,
    anomaly_index,
    neural_cleanse,
)
from garrison.testing.digits import train_digits_cnn  # noqa: E402

TARGET = 0


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    torch.set_num_threads(1)
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return x_train, x_test[:200], y_train, y_test[:200]


@pytest.fixture(scope="module")
def backdoored(digits):  # type: ignore[no-untyped-def]
    x_train, x_test, y_train, _ = digits
    poisoned = poison(x_train, y_train, kind="badnets", rate=0.1, target=TARGET, size=2, seed=0)
    module = train_digits_cnn(poisoned.x, poisoned.y, seed=0)
    with torch.no_grad():
        triggered = torch.as_tensor(poisoned.trigger.apply(x_test).astype(np.float32))
        success = float((module(triggered).argmax(1).numpy() == TARGET).mean())
    assert success > 0.9  # the backdoor took
    return TorchClassifier(module, input_spec=InputSpec((1, 8, 8)), name="badnets")


@pytest.fixture(scope="module")
def clean_module(digits) -> nn.Module:  # type: ignore[no-untyped-def]
    x_train, _, y_train, _ = digits
    return train_digits_cnn(x_train, y_train, seed=1)


def test_flags_the_target_class_of_a_badnets_model(backdoored, digits) -> None:  # type: ignore[no-untyped-def]
    _, x, _, y = digits
    seen: list[tuple[str, int, int]] = []
    result = neural_cleanse(backdoored, x, y=y, seed=0, progress=lambda *a: seen.append(a))
    assert result.flagged_classes == (TARGET,)
    assert result.backdoored
    smallest = int(np.argmin(result.mask_norms))
    assert result.classes[smallest] == TARGET
    assert result.anomaly_index[smallest] > 2
    assert result.mask_norms[smallest] < 0.6 * result.median_norm
    assert result.attack_success[smallest] > 0.9
    assert result.masks.shape == (10, 8, 8) and result.patterns.shape == (10, 1, 8, 8)
    assert ((result.masks >= 0) & (result.masks <= 1)).all()
    assert ((result.patterns >= 0) & (result.patterns <= 1)).all()  # the sample's range
    # the reversed trigger sits where the real one is: the bottom-right corner
    assert result.masks[smallest][4:, 4:].sum() > 0.5 * result.masks[smallest].sum()
    assert seen and seen[-1][0] == "neural-cleanse" and seen[-1][1] == max(result.rounds)
    summary = result.to_dict()
    json.dumps(summary)
    assert summary["flagged_classes"] == [TARGET] and "mask" not in summary["classes"][0]
    assert [row["flagged"] for row in summary["classes"]] == [c == TARGET for c in range(10)]
    assert np.array(result.to_dict(include_triggers=True)["classes"][0]["mask"]).shape == (8, 8)


def test_flags_nothing_on_a_clean_model(clean_module, digits) -> None:  # type: ignore[no-untyped-def]
    _, x, _, y = digits
    result = neural_cleanse(clean_module, x, y=y, seed=0)
    assert result.flagged_classes == ()
    assert not result.backdoored
    assert result.anomaly_index[np.argmin(result.mask_norms)] < 2  # the smallest trigger is unremarkable
    assert result.reached.all()


def test_same_seed_same_triggers_and_subset_of_classes(clean_module, digits) -> None:  # type: ignore[no-untyped-def]
    _, x, _, _ = digits
    run = lambda seed: neural_cleanse(clean_module, x[:40], classes=[7, 2, 5], max_rounds=3, seed=seed)  # noqa: E731
    first, again, other = run(0), run(0), run(1)
    assert first.classes == (2, 5, 7) and len(first.mask_norms) == 3
    np.testing.assert_array_equal(first.masks, again.masks)
    np.testing.assert_array_equal(first.mask_norms, again.mask_norms)
    assert not np.array_equal(first.masks, other.masks)


def test_flat_rows_need_an_image_shape(digits) -> None:  # type: ignore[no-untyped-def]
    _, x, _, _ = digits
    flat = x.reshape(len(x), -1)[:40]
    mlp = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.raises(InputError, match="image_shape"):
        neural_cleanse(mlp, flat)
    result = neural_cleanse(mlp, flat, image_shape=(8, 8), classes=[0, 1, 2], max_rounds=2)
    assert result.image_shape == (1, 8, 8) and result.masks.shape == (3, 8, 8)
    with pytest.raises(InputError, match="does not hold"):
        neural_cleanse(mlp, flat, image_shape=(7, 7))


def test_clear_errors(clean_module, digits) -> None:  # type: ignore[no-untyped-def]
    x_train, x, y_train, _ = digits
    from sklearn.linear_model import LogisticRegression

    sk = SklearnClassifier(LogisticRegression(max_iter=200).fit(x_train.reshape(len(x_train), -1), y_train))
    with pytest.raises(ModelInputMismatchError, match="torch model"):
        neural_cleanse(sk, x)
    with pytest.raises(InputError, match="at least 20"):
        neural_cleanse(clean_module, x[:5])
    with pytest.raises(ValueError, match="classes"):
        neural_cleanse(clean_module, x, classes=[10])
    with pytest.raises(ModelInputMismatchError, match="one label per sample"):
        neural_cleanse(clean_module, x, y=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="upper"):
        neural_cleanse(clean_module, x, lower=1.0, upper=0.0)


def test_anomaly_index_arithmetic() -> None:
    norms = [10.0, 11.0, 9.0, 10.5, 9.5, 2.0]
    test = anomaly_index(norms)
    median = np.median(norms)  # 9.75
    mad = MAD_CONSISTENCY * np.median(np.abs(np.array(norms) - median))  # 1.4826 * 0.5
    assert test.median == pytest.approx(9.75) and test.mad == pytest.approx(mad)
    np.testing.assert_allclose(test.index, np.abs(np.array(norms) - median) / mad)
    assert test.flagged.tolist() == [False, False, False, False, False, True]


def test_anomaly_index_flags_only_the_small_side() -> None:
    test = anomaly_index([10.0, 11.0, 9.0, 10.5, 9.5, 40.0])
    assert test.index[-1] > 2 and not test.flagged.any()
    assert not anomaly_index([10.0, 10.4, 9.6, 10.2], threshold=2).flagged.any()
    tied = anomaly_index([5.0, 5.0, 5.0, 1.0, 9.0])  # MAD 0: only the exact median is unremarkable
    assert tied.mad == 0 and tied.index.tolist() == [0, 0, 0, np.inf, np.inf]
    assert tied.flagged.tolist() == [False, False, False, True, False]
    with pytest.raises(ValueError, match="at least 2"):
        anomaly_index([1.0])
    with pytest.raises(ValueError, match="threshold"):
        anomaly_index([1.0, 2.0], threshold=0)


def test_null_threshold_holds_the_family_wise_false_alarm_rate() -> None:
    from garrison.poisoning.neural_cleanse import anomaly_index, null_threshold

    assert null_threshold(10) == pytest.approx(3.9, abs=0.1)
    assert null_threshold(10, alpha=0.01) > null_threshold(10) > null_threshold(100)
    rng = np.random.default_rng(7)  # independent of the threshold's own draws
    for k in (5, 10, 43):
        t = null_threshold(k)
        alarms = [anomaly_index(rng.normal(size=k), threshold=t).flagged.any() for _ in range(4000)]
        assert np.mean(alarms) == pytest.approx(0.05, abs=0.015)
        paper = [anomaly_index(rng.normal(size=k), threshold=2.0).flagged.any() for _ in range(1000)]
        assert np.mean(paper) > 0.2  # the per-class rule alarms on a fifth or more of clean models
    with pytest.raises(ValueError, match="at least 3"):
        null_threshold(2)
