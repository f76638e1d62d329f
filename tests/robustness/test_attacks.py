from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.linear_model import LogisticRegression  # noqa: E402

from garrison.adapters import InputSpec, SklearnClassifier, TorchClassifier, predict  # noqa: E402
from garrison.adapters.base import BaseClassifier  # noqa: E402
from garrison.robustness import (  # noqa: E402
    APGD,
    FAB,
    FGSM,
    PGD,
    Attack,
    Ensemble,
    HopSkipJump,
    Square,
    ThreatModel,
    default_ensemble,
    robust_accuracy,
)
from garrison.robustness.attacks.apgd import checkpoints  # noqa: E402

try:
    from tests.adapters.models import digits, fit, small_mlp
except ImportError:  # pragma: no cover - run from inside tests/
    from adapters.models import digits, fit, small_mlp


@pytest.fixture(scope="module")
def digits_model() -> tuple[TorchClassifier, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = digits()
    module = fit(small_mlp(64, 10, hidden=32), x_train, y_train, epochs=15)
    return TorchClassifier(module, input_spec=InputSpec((64,))), x_test[:120], y_test[:120]


@pytest.fixture(scope="module")
def sklearn_model() -> tuple[SklearnClassifier, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = digits()
    est = LogisticRegression(max_iter=300).fit(x_train, y_train)
    return SklearnClassifier(est), x_test[:40], y_test[:40]


class GradientOnly(BaseClassifier):
    """A softmax-linear model that offers ``loss_gradient`` but no torch module (the numpy path)."""

    def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
        super().__init__(name="grad-only", n_classes=w.shape[1], input_spec=InputSpec((w.shape[0],)))
        self.w, self.b = w, b

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.w + self.b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.predict_proba(x)
        p[np.arange(len(y)), y] -= 1
        return p @ self.w.T


WHITE_BOX: list[Attack] = [
    FGSM(),
    PGD(steps=10),
    PGD(steps=5, restarts=2),
    APGD(steps=10),
    APGD(loss="dlr", steps=10),
    APGD(loss="dlr", targeted=True, steps=5, n_target_classes=3),
    FAB(steps=10, n_target_classes=2),
    FAB(steps=5, n_target_classes=2, restarts=2, targeted=False),
]


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.1), ("l2", 0.8)])
@pytest.mark.parametrize("attack", WHITE_BOX, ids=lambda a: a.name)
def test_white_box_attacks_stay_inside_ball_and_box_and_are_deterministic(digits_model, attack, norm, eps):
    model, x, y = digits_model
    threat = ThreatModel(norm, eps)
    first = attack.run(model, x, y, threat, seed=3)
    second = attack.run(model, x, y, threat, seed=3)
    assert first.x_adv.shape == x.shape
    assert threat.contains(first.x_adv, x).all()
    assert first.x_adv.min() >= 0.0 and first.x_adv.max() <= 1.0
    np.testing.assert_array_equal(first.x_adv, second.x_adv)
    clean = float(np.mean(predict(model, x) == y))
    assert robust_accuracy(model, x, y, first) <= clean
    # success is exactly "misclassified at x_adv"
    np.testing.assert_array_equal(first.success, predict(model, first.x_adv) != y)


def test_pgd_breaks_an_undefended_digits_model(digits_model):
    model, x, y = digits_model
    clean = float(np.mean(predict(model, x) == y))
    assert clean > 0.85
    weak = robust_accuracy(model, x, y, PGD(steps=20).run(model, x, y, ThreatModel("linf", 0.05)))
    strong = robust_accuracy(model, x, y, PGD(steps=20).run(model, x, y, ThreatModel("linf", 0.3)))
    assert strong <= 0.02
    assert strong <= weak <= clean


def test_apgd_at_least_as_strong_as_fgsm(digits_model):
    model, x, y = digits_model
    threat = ThreatModel("linf", 0.05)
    fgsm = robust_accuracy(model, x, y, FGSM().run(model, x, y, threat))
    apgd = robust_accuracy(model, x, y, APGD(steps=30).run(model, x, y, threat))
    assert apgd <= fgsm


def test_fab_finds_smaller_perturbations_than_pgd(digits_model):
    model, x, y = digits_model
    threat = ThreatModel("linf", 0.3)
    fab = FAB(steps=30, n_target_classes=3).run(model, x, y, threat)
    pgd = PGD(steps=10).run(model, x, y, threat)
    both = fab.success & pgd.success & (predict(model, x) == y)
    assert both.sum() > len(x) // 2
    fab_dist = np.median(threat.distance(fab.x_adv, x)[both])
    assert fab_dist < 0.5 * np.median(threat.distance(pgd.x_adv, x)[both])


def test_pgd_numpy_path_through_loss_gradient():
    rng = np.random.default_rng(0)
    model = GradientOnly(rng.normal(size=(6, 3)), np.zeros(3))
    x = rng.uniform(0.2, 0.8, (50, 6))
    y = predict(model, x)
    threat = ThreatModel("linf", 0.5)
    result = PGD(steps=10).run(model, x, y, threat, seed=1)
    assert threat.contains(result.x_adv, x).all()
    assert result.success.mean() > 0.5
    apgd = APGD(steps=10).run(model, x, y, threat)
    assert apgd.notes and "loss_gradient" in apgd.notes[0]


def test_projection_hook_keeps_immutable_and_integer_features():
    module = fit(small_mlp(4, 3, hidden=16), *_tabular())
    model = TorchClassifier(module, input_spec=InputSpec((4,)))
    x, y = _tabular()

    def project(x_adv: np.ndarray, x_orig: np.ndarray) -> np.ndarray:
        out = np.array(x_adv, dtype=np.float64)
        out[:, 0] = x_orig[:, 0]  # immutable
        out[:, 1] = np.round(out[:, 1] * 10) / 10  # integer in tenths-scaled units
        return out

    threat = ThreatModel("linf", 0.3, project=project)  # a multiple of the 0.1 grid
    for attack in (PGD(steps=10), APGD(steps=10), Square(queries=50)):
        result = attack.run(model, x, y, threat)
        np.testing.assert_array_equal(result.x_adv[:, 0], x[:, 0].astype(result.x_adv.dtype))
        scaled = result.x_adv[:, 1].astype(np.float64) * 10
        np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-4)
        assert threat.contains(result.x_adv, x, tol=1e-4).all()


def _tabular() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (90, 4)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1] * 10) / 10
    y = (x[:, 1] + x[:, 2] > 1).astype(np.int64) + (x[:, 3] > 0.7)
    return x, y


def test_dlr_needs_three_classes_and_falls_back_to_margin():
    x, y = _tabular()
    binary = (y > 0).astype(np.int64)
    model = TorchClassifier(fit(small_mlp(4, 2), x, binary), input_spec=InputSpec((4,)))
    result = APGD(loss="dlr", steps=5).run(model, x, binary, ThreatModel("linf", 0.1))
    assert result.loss == "ce-margin"
    assert "DLR needs >= 3 classes" in result.notes[0]
    three = TorchClassifier(fit(small_mlp(4, 3), x, y), input_spec=InputSpec((4,)))
    targeted = APGD(loss="dlr", targeted=True, steps=5).run(three, x, y, ThreatModel("linf", 0.1))
    assert targeted.loss == "ce-margin" and "targeted DLR needs >= 4" in targeted.notes[0]
    assert APGD(loss="dlr", steps=5).run(three, x, y, ThreatModel("linf", 0.1)).loss == "dlr"


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.25), ("l2", 2.0)])
@pytest.mark.parametrize("attack", [Square(queries=200), HopSkipJump(max_queries=400)], ids=lambda a: a.name)
def test_black_box_attacks_reduce_sklearn_accuracy(sklearn_model, attack, norm, eps):
    model, x, y = sklearn_model
    threat = ThreatModel(norm, eps)
    result = attack.run(model, x, y, threat, seed=0)
    clean = float(np.mean(predict(model, x) == y))
    assert threat.contains(result.x_adv, x).all()
    assert robust_accuracy(model, x, y, result) < clean - 0.3
    again = attack.run(model, x, y, threat, seed=0)
    np.testing.assert_array_equal(result.x_adv, again.x_adv)


def test_ensemble_keeps_each_samples_worst_case(digits_model):
    model, x, y = digits_model
    threat = ThreatModel("linf", 0.06)
    ensemble = Ensemble([FGSM(), PGD(steps=10), APGD(steps=10)])
    combined, each = ensemble.run_each(model, x, y, threat)
    alone = [a.run(model, x, y, threat) for a in ensemble.attacks]
    assert combined.success.sum() >= max(r.success.sum() for r in alone)
    np.testing.assert_array_equal(combined.success, predict(model, combined.x_adv) != y)
    assert threat.contains(combined.x_adv, x).all()
    assert len(each[0].success) == int((predict(model, x) == y).sum())
    assert len(each[1].success) == len(each[0].success) - int(each[0].success.sum())
    assert any(note.startswith("fgsm: fooled") for note in combined.notes)


def test_default_ensemble_picks_attacks_by_model_kind(digits_model, sklearn_model):
    white = default_ensemble(digits_model[0], 10)
    black = default_ensemble(sklearn_model[0], 10)
    assert [a.name for a in white.attacks] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert [a.name for a in black.attacks] == ["square", "hopskipjump"]
    model, x, y = sklearn_model
    quick = default_ensemble(model, 10, queries=100)
    assert robust_accuracy(model, x, y, quick.run(model, x, y, ThreatModel("linf", 0.2))) < 0.5


def test_deadline_in_the_past_leaves_inputs_unattacked(digits_model):
    model, x, y = digits_model
    result = PGD(steps=10).run(model, x, y, ThreatModel("linf", 0.3), deadline=time.monotonic() - 1)
    np.testing.assert_array_equal(result.x_adv, x)


def test_checkpoints_follow_croce_and_hein():
    assert checkpoints(100) == [22, 41, 58, 70, 80, 87, 93, 99]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"norm": "l1", "eps": 0.1}, "`norm`"), ({"norm": "linf", "eps": -1.0}, "`eps` must be >= 0")],
)
def test_threat_model_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ThreatModel(**kwargs)


def test_constructors_validate():
    with pytest.raises(ValueError, match="`steps` must be >= 0"):
        PGD(steps=-1)
    with pytest.raises(ValueError, match="`loss` must be"):
        APGD(loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`attacks`"):
        Ensemble([])


def test_hopskipjump_attacks_a_tree_exported_to_onnx(tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from sklearn.tree import DecisionTreeClassifier

    from garrison.adapters import OnnxClassifier

    x_train, x_test, y_train, _ = digits()
    tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(x_train, y_train)
    path = tmp_path / "tree.onnx"
    path.write_bytes(
        skl2onnx.to_onnx(tree, x_train[:1], options={id(tree): {"zipmap": False}}).SerializeToString()
    )
    x = x_test[:15]
    for model in (SklearnClassifier(tree), OnnxClassifier(path)):
        y = predict(model, x)  # attack the model's own decisions: every sample starts correct
        threat = ThreatModel("l2", 2.0)
        result = HopSkipJump(max_queries=300).run(model, x, y, threat)
        assert threat.contains(result.x_adv, x).all()
        assert robust_accuracy(model, x, y, result) <= 0.5


def test_l2_square_moves_mass_between_windows_like_the_paper(
    digits_model: tuple[TorchClassifier, np.ndarray, np.ndarray],
) -> None:
    """The paper's two-window L2 update on image-shaped input: on the sphere, in the box, and stronger than the
    one-window update it replaced (which left 17.5–21.7 % here across seeds; this one 14.2 %)."""
    model, x, y = digits_model
    image = TorchClassifier(
        torch.nn.Sequential(torch.nn.Flatten(), model.torch_module), input_spec=InputSpec((1, 8, 8))
    )
    xi = x.reshape(-1, 1, 8, 8)
    threat = ThreatModel("l2", 1.0, 0.0, 1.0)
    result = Square(queries=300).run(image, xi, y, threat, seed=0)
    assert threat.contains(result.x_adv, xi).all()
    assert np.mean(predict(image, result.x_adv) == y) <= 0.16


class CountingClassifier(BaseClassifier):
    """A scikit-learn model that counts how often it is asked (a remote endpoint pays per request)."""

    def __init__(self, inner: SklearnClassifier) -> None:
        super().__init__(name="counting", n_classes=inner.n_classes, input_spec=inner.input_spec)
        self.inner, self.calls = inner, 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.inner.predict_proba(x)


def test_hopskipjump_asks_once_per_step_for_all_samples(sklearn_model):
    model, x, y = sklearn_model
    counting = CountingClassifier(model)
    result = HopSkipJump(max_queries=300).run(counting, x, y, ThreatModel("l2", 2.0), seed=0)
    # one sample at a time would take dozens of calls per sample (each bisection step is one); batched, every
    # step of every sample shares a call
    assert counting.calls < min(result.queries, 2 * len(x)), (counting.calls, result.queries)
    assert robust_accuracy(model, x, y, result) < float(np.mean(predict(model, x) == y)) - 0.3
