"""Trigger localisation on a BadNets-poisoned digits CNN and on a clean one (real training, real attributions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.explain import Explainer, localise_triggers  # noqa: E402
from garrison.poisoning import poison  # noqa: E402
from garrison.testing.digits import train_digits_cnn  # noqa: E402

pytestmark = pytest.mark.torch
TARGET = 3
SPEC = InputSpec((1, 8, 8))


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    torch.set_num_threads(1)
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    x_tr, _, y_tr, _ = train_test_split(x, d.target, test_size=0.3, random_state=0, stratify=d.target)
    return x_tr, y_tr


@pytest.fixture(scope="module")
def poisoned(digits: tuple[np.ndarray, np.ndarray]) -> tuple[TorchClassifier, np.ndarray, np.ndarray]:
    x, y = digits
    p = poison(x, y, kind="badnets", rate=0.1, target=TARGET, seed=0, corner="top-left")
    assert p.trigger is not None
    truth = p.trigger.apply(np.zeros((1, 1, 8, 8))).ravel() > 0
    model = TorchClassifier(train_digits_cnn(p.x, p.y, seed=0), input_spec=SPEC, n_classes=10)
    return model, p.x, truth


def test_the_target_class_is_flagged_and_its_region_lies_on_the_trigger(
    poisoned: tuple[TorchClassifier, np.ndarray, np.ndarray],
) -> None:
    model, x, truth = poisoned
    scan = localise_triggers(model, x, seed=0)
    assert [c.index for c in scan.flagged] == [TARGET]
    target = scan.classes[TARGET]
    region = scan.region_mask(TARGET)
    assert region.sum() >= 3
    assert (region & truth).sum() / (region | truth).sum() >= 0.5
    assert target.box is not None and target.box[2] <= 2 and target.box[3] <= 2  # the 3x3 top-left corner
    assert all(c.share < 0.02 for c in scan.classes if c.index != TARGET)
    assert scan.region_names(TARGET)[0].startswith("(")
    assert json.loads(json.dumps(scan.to_dict()))["flagged"] == [TARGET]


def test_a_clean_model_has_no_class_that_hijacks(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    model = TorchClassifier(train_digits_cnn(x, y, seed=0), input_spec=SPEC, n_classes=10)
    scan = localise_triggers(model, x, seed=0)
    assert scan.flagged == ()
    assert max(c.share for c in scan.classes) < 0.02


def test_given_attributions_are_used_as_they_are(
    poisoned: tuple[TorchClassifier, np.ndarray, np.ndarray],
) -> None:
    model, x, _ = poisoned
    rows = x[:400]
    explained = Explainer(model, method="saliency").explain(rows)
    scan = localise_triggers(model, rows, attributions=explained, max_rows_per_class=1000)
    assert scan.method == "captum.saliency"
    assert [c.index for c in scan.flagged] == [TARGET]
    # attributions that point at the bottom-right corner, away from the top-left trigger: nothing hijacks
    away = Explainer(model, method="saliency").explain(rows)
    object.__setattr__(away, "values", np.tile(np.arange(64.0), (len(rows), 1)))
    assert localise_triggers(model, rows, attributions=away, max_rows_per_class=1000).flagged == ()
    with pytest.raises(ValueError, match="attributions"):
        localise_triggers(model, x[:50], attributions=explained)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hosts": 0}, "hosts"),
        ({"fool_rate": 0.0}, "fool_rate"),
        ({"min_rows": 0}, "min_rows"),
        ({"contrast": 0.5}, "contrast"),
        ({"top_k": 64}, "top_k"),
        ({"max_rows_per_class": 0}, "max_rows_per_class"),
    ],
)
def test_bad_options_are_refused(
    poisoned: tuple[TorchClassifier, np.ndarray, np.ndarray], kwargs: dict[str, float], match: str
) -> None:
    model, x, _ = poisoned
    with pytest.raises(ValueError, match=match):
        localise_triggers(model, x[:20], **kwargs)  # type: ignore[arg-type]
