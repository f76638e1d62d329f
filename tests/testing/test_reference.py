from __future__ import annotations

from pathlib import Path

import numpy as np

from garrison.adapters import linear_classifier
from garrison.audit.progress import NullProgress
from garrison.data import FeatureKind
from garrison.testing import make_context, tiny_tabular_dataset


def test_tiny_tabular_has_every_feature_kind_and_a_fitted_model() -> None:
    tiny = tiny_tabular_dataset(seed=0)
    kinds = {f.name: f.kind for f in tiny.test.schema.features}
    assert kinds == {
        "age": FeatureKind.INTEGER,
        "income": FeatureKind.NUMERIC,
        "hours": FeatureKind.NUMERIC,
        "colour": FeatureKind.CATEGORICAL,
        "member": FeatureKind.BOOLEAN,
    }
    assert (len(tiny.train), len(tiny.test)) == (160, 80)
    assert tiny.model.classes == ("high", "low", "medium")
    probs = tiny.model.predict_proba(tiny.test.x)
    assert probs.shape == (80, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    accuracy = np.mean(np.asarray(tiny.model.classes, dtype=object)[probs.argmax(axis=1)] == tiny.test.y)
    assert accuracy > 0.6  # three classes: chance is about 0.4 for the largest one
    # the codec maps the records to the model's arrays exactly
    np.testing.assert_array_equal(tiny.codec.encode(tiny.test.records), tiny.test.x)


def test_tiny_tabular_is_seeded() -> None:
    a, b, c = tiny_tabular_dataset(1), tiny_tabular_dataset(1), tiny_tabular_dataset(2)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.test.x, c.test.x)
    a.test.x[0, 0] = -1.0  # fresh arrays each call: a check that mutates one cannot spoil another's
    assert b.test.x[0, 0] != -1.0


def test_make_context_defaults_to_the_reference_problem() -> None:
    ctx = make_context(seed=4)
    assert ctx.model is not None
    assert ctx.test is not None
    assert ctx.train is not None
    assert ctx.test.name == "tiny-test"
    assert ctx.seed == 4
    assert ctx.budget.seconds is None
    assert isinstance(ctx.progress, NullProgress)


def test_make_context_keeps_what_it_is_given(tmp_path: Path) -> None:
    model = linear_classifier(np.eye(2))
    ctx = make_context(model, artifacts=[tmp_path / "model.onnx"], budget_s=2.5)
    assert ctx.model is model
    assert ctx.test is None
    assert ctx.train is None
    assert ctx.artifacts == (tmp_path / "model.onnx",)
    assert ctx.budget.seconds == 2.5
