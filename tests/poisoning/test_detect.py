"""Poison detection with a model: a tiny digits CNN trained once per module on BadNets / blended poisons, the
representation it is read at, and what the scan reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.core.errors import ConfigError, InputError  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.poisoning.detect import PoisonScan, scan_training_set  # noqa: E402
from garrison.poisoning.representations import extract_representation, layer_names  # noqa: E402
from garrison.testing.digits import train_digits_cnn  # noqa: E402

pytestmark = pytest.mark.torch

TARGET = 0
EPOCHS = 8


def train(x: np.ndarray, y: np.ndarray, seed: int) -> torch.nn.Module:
    torch.set_num_threads(1)
    return train_digits_cnn(x, y, seed=seed, epochs=EPOCHS)


def split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    x_tr, _, y_tr, _ = train_test_split(
        x, data.target.astype(np.int64), test_size=0.3, random_state=seed, stratify=data.target
    )
    return x_tr, y_tr


def poisoned(kind: str, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``share`` of ALL training rows poisoned into TARGET (the generator's rate is of the eligible rows)."""
    x, y = split(seed)
    rate = share * len(y) / int((y != TARGET).sum())
    p = poison(x, y, kind=kind, rate=rate, target=TARGET, seed=seed)
    return p.x.astype(np.float32), p.y, p.indices


@pytest.fixture(autouse=True)
def one_thread():
    """The scan's linear algebra is on tiny matrices: BLAS threads only contend (the CI box has 2 cores)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def badnets() -> tuple[np.ndarray, np.ndarray, np.ndarray, torch.nn.Module]:
    x, y, idx = poisoned("badnets", 0.10)
    return x, y, idx, train(x, y, 0)


@pytest.fixture(scope="module")
def clean_models() -> list[tuple[np.ndarray, np.ndarray, torch.nn.Module]]:
    out = []
    for seed in (1, 2, 3):
        x, y = split(seed)
        out.append((x, y, train(x, y, seed)))
    return out


def recall_precision(scan: PoisonScan, truth: np.ndarray) -> tuple[float, float]:
    found = set(scan.suspects.tolist())
    hits = len(found & set(truth.tolist()))
    return hits / len(truth), hits / max(len(found), 1)


def test_badnets_at_ten_percent_is_found_with_its_target_class(badnets) -> None:
    x, y, idx, model = badnets
    scan = scan_training_set(x, y, model=model, seed=0)
    recall, precision = recall_precision(scan, idx)
    assert recall >= 0.9
    assert precision >= 0.8
    assert scan.flagged_classes == (TARGET,)
    assert scan.method == "spectral-clustering"
    assert scan.representation == "penultimate (input of 8)"
    assert set(scan.components) == {"knn", "spectral"}
    assert scan.components["spectral"].shape == (len(y),)
    summary = {c.label: c for c in scan.classes}[TARGET]
    assert summary.flagged and summary.n_suspects == len(scan.suspects)
    assert summary.statistic > summary.threshold
    # suspects score highest: every suspect outranks every unflagged row
    others = np.setdiff1d(np.arange(len(y)), scan.suspects)
    assert scan.scores[scan.suspects].min() >= scan.scores[others].max()


def test_blended_trigger_at_five_percent_is_found() -> None:
    x, y, idx = poisoned("blend", 0.05)
    scan = scan_training_set(x, y, model=train(x, y, 0), seed=0)
    recall, precision = recall_precision(scan, idx)
    assert recall >= 0.9 and precision >= 0.8
    assert scan.flagged_classes == (TARGET,)


def test_clean_data_and_clean_models_flag_no_class(clean_models) -> None:
    for seed, (x, y, model) in enumerate(clean_models, start=1):
        scan = scan_training_set(x, y, model=model, seed=seed)
        assert scan.flagged_classes == ()
        assert len(scan.suspects) == 0  # per-sample false-positive rate 0 <= 1 %
        assert all(c.statistic <= c.threshold for c in scan.classes)


def test_the_scan_is_deterministic_under_a_seed_and_round_trips_as_json(badnets) -> None:
    x, y, _, model = badnets
    one = scan_training_set(x, y, model=model, seed=3)
    two = scan_training_set(x, y, model=model, seed=3)
    np.testing.assert_array_equal(one.suspects, two.suspects)
    np.testing.assert_array_equal(one.scores, two.scores)
    text = json.dumps(one.to_dict())
    back = json.loads(text)
    assert back == one.to_dict()
    assert back["suspects"] == one.suspects.tolist()
    assert back["flagged_classes"] == [TARGET]
    assert len(back["scores"]) == len(y)
    assert {c["label"] for c in back["classes"]} == set(range(10))


def test_default_representation_is_the_input_of_the_last_linear(badnets) -> None:
    x, _, _, model = badnets
    rep = extract_representation(model, x[:50])
    with torch.no_grad():
        expected = model[:-1](torch.from_numpy(x[:50])).numpy()
    assert rep.layer == "penultimate" and rep.last_linear == "8"
    assert rep.features.dtype == np.float32 and rep.features.shape == (50, 64)
    np.testing.assert_allclose(rep.features, expected, rtol=1e-5, atol=1e-6)


def test_a_named_layer_gives_that_modules_output_in_batches(badnets) -> None:
    x, _, _, model = badnets
    rep = extract_representation(model, x[:70], layer="5", batch_size=32)
    with torch.no_grad():
        expected = model[:6](torch.from_numpy(x[:70])).numpy()
    assert rep.layer == "5" and rep.features.shape == (70, 512)
    np.testing.assert_allclose(rep.features, expected, rtol=1e-5, atol=1e-6)
    assert "output of 5" in rep.describe()


def test_a_torch_classifier_and_flat_rows_work_like_the_bare_module(badnets) -> None:
    x, _, _, model = badnets
    wrapped = TorchClassifier(model, input_spec=InputSpec((1, 8, 8)), n_classes=10)
    flat = x[:40].reshape(40, -1)
    np.testing.assert_allclose(
        extract_representation(wrapped, flat).features, extract_representation(model, x[:40]).features
    )
    assert model.training is False


def test_an_unknown_layer_lists_the_ones_there_are(badnets) -> None:
    x, y, _, model = badnets
    with pytest.raises(ConfigError, match=r"unknown layer 'fc9'.*0, 1, 2.*8") as err:
        extract_representation(model, x[:5], layer="fc9")
    assert err.value.key == "layer"
    with pytest.raises(ConfigError, match="unknown layer"):
        scan_training_set(x, y, model=model, layer="fc9")
    assert layer_names(model) == [str(i) for i in range(9)]


def test_a_model_without_linear_needs_a_named_layer() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        extract_representation(conv, np.zeros((2, 1, 8, 8), dtype=np.float32))
    rep = extract_representation(conv, np.zeros((2, 1, 8, 8), dtype=np.float32), layer="0")
    assert rep.features.shape == (2, 2 * 6 * 6)


def test_a_model_that_does_not_fit_the_data_is_an_input_error(badnets) -> None:
    model = badnets[3]
    with pytest.raises(InputError, match="failed on a batch"):
        extract_representation(model, np.zeros((4, 3, 5, 5), dtype=np.float32))
    with pytest.raises(InputError, match=r"torch\.nn\.Module"):
        extract_representation(object(), np.zeros((4, 64)))
