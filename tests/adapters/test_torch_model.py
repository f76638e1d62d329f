from __future__ import annotations

import logging
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402
from torch import nn  # noqa: E402

from garrison.adapters.base import Classifier, InputSpec, WhiteBoxClassifier, predict  # noqa: E402
from garrison.adapters.torch_model import (  # noqa: E402
    TorchClassifier,
    load_factory,
    load_torch_export,
    load_torchscript,
    load_weights,
)
from garrison.core.errors import (  # noqa: E402
    ConfigError,
    MissingDependencyError,
    ModelInputMismatchError,
    ModelLoadError,
    UntrustedArtifactError,
)

try:  # tests/ as packages, or plain directories under pytest's default import mode
    from tests.adapters.models import digits, fit, small_cnn, small_mlp
except ModuleNotFoundError:
    from models import digits, fit, small_cnn, small_mlp

pytestmark = pytest.mark.torch

FLAT = InputSpec((64,))
IMAGE = InputSpec((1, 8, 8))


@pytest.fixture(scope="module")
def trained_mlp() -> nn.Module:
    x_train, _, y_train, _ = digits()
    return fit(small_mlp(64, 10, hidden=32), x_train, y_train, epochs=15)


@pytest.fixture(scope="module")
def mlp(trained_mlp: nn.Module) -> TorchClassifier:
    return TorchClassifier(trained_mlp, input_spec=FLAT, name="digits-mlp")


def test_mlp_on_digits_gives_probabilities_and_a_sane_accuracy(mlp: TorchClassifier) -> None:
    _, x_test, _, y_test = digits()
    proba = mlp.predict_proba(x_test)
    assert mlp.n_classes == 10  # inferred from a forward pass
    assert proba.shape == (len(x_test), 10)
    assert proba.dtype == np.float64
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (predict(mlp, x_test) == y_test).mean() > 0.9


def test_cnn_on_digits_images() -> None:
    x_train, x_test, y_train, y_test = digits()
    module = fit(small_cnn(10), x_train.reshape(-1, 1, 8, 8), y_train, epochs=8)
    clf = TorchClassifier(module, input_spec=IMAGE)
    images = x_test.reshape(-1, 1, 8, 8)
    assert (predict(clf, images) == y_test).mean() > 0.85
    # flat rows with the right number of features are reshaped to the declared sample shape
    np.testing.assert_array_equal(clf.predict_proba(x_test[:20]), clf.predict_proba(images[:20]))


def test_implements_the_white_box_protocol(mlp: TorchClassifier, trained_mlp: nn.Module) -> None:
    assert isinstance(mlp, Classifier)
    assert isinstance(mlp, WhiteBoxClassifier)
    assert mlp.torch_module is trained_mlp
    assert not trained_mlp.training
    assert repr(mlp) == "TorchClassifier(name='digits-mlp', n_classes=10)"


def test_batching_does_not_change_predictions(trained_mlp: nn.Module, mlp: TorchClassifier) -> None:
    _, x_test, _, _ = digits()
    small_batches = TorchClassifier(trained_mlp, input_spec=FLAT, batch_size=7)
    np.testing.assert_allclose(
        small_batches.predict_proba(x_test[:50]), mlp.predict_proba(x_test[:50]), atol=1e-6
    )
    assert small_batches.predict_proba(x_test[:0]).shape == (0, 10)


def test_probability_output_is_used_as_is(trained_mlp: nn.Module, mlp: TorchClassifier) -> None:
    _, x_test, _, _ = digits()
    with_softmax = nn.Sequential(trained_mlp, nn.Softmax(dim=1))
    clf = TorchClassifier(with_softmax, input_spec=FLAT, output="probabilities", n_classes=10)
    np.testing.assert_allclose(clf.predict_proba(x_test[:30]), mlp.predict_proba(x_test[:30]), atol=1e-6)


def test_loss_gradient_matches_autograd_per_batch(trained_mlp: nn.Module, mlp: TorchClassifier) -> None:
    _, x_test, _, y_test = digits()
    x, y = x_test[:40], y_test[:40]
    xt = torch.tensor(x, requires_grad=True)
    nn.functional.cross_entropy(trained_mlp(xt), torch.as_tensor(y), reduction="sum").backward()
    for p in trained_mlp.parameters():
        p.grad = None

    grad = TorchClassifier(trained_mlp, input_spec=FLAT, batch_size=16).loss_gradient(x, y)

    assert grad.shape == x.shape
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(grad).max() > 0
    assert all(p.grad is None for p in trained_mlp.parameters())  # only input gradients
    # the sum reduction keeps each sample's gradient its own, whatever the batch
    np.testing.assert_allclose(mlp.loss_gradient(x[3:4], y[3:4])[0], grad[3], rtol=1e-5, atol=1e-7)
    one_hot = np.eye(10)[y]
    np.testing.assert_array_equal(mlp.loss_gradient(x, one_hot), mlp.loss_gradient(x, y))


def test_loss_gradient_matches_finite_differences_on_a_tiny_model() -> None:
    clf = TorchClassifier(small_mlp(4, 3, hidden=5, activation="tanh", seed=3), input_spec=InputSpec((4,)))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y = np.array([0, 2, 1])

    def loss(xs: np.ndarray) -> float:
        p = clf.predict_proba(xs)
        return float(-np.log(p[np.arange(len(xs)), y]).sum())

    eps = 1e-2
    numeric = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (loss(up) - loss(down)) / (2 * eps)
    np.testing.assert_allclose(clf.loss_gradient(x, y), numeric, rtol=1e-2, atol=1e-3)


def test_probability_output_gradient_matches_logits_gradient(
    trained_mlp: nn.Module, mlp: TorchClassifier
) -> None:
    _, x_test, _, y_test = digits()
    probs = TorchClassifier(
        nn.Sequential(trained_mlp, nn.Softmax(dim=1)), input_spec=FLAT, output="probabilities"
    )
    np.testing.assert_allclose(
        probs.loss_gradient(x_test[:10], y_test[:10]), mlp.loss_gradient(x_test[:10], y_test[:10]), atol=1e-4
    )


def test_bad_inputs_are_clear_errors(mlp: TorchClassifier) -> None:
    with pytest.raises(ModelInputMismatchError, match=r"shape \(64,\).*\(5, 10\)"):
        mlp.predict_proba(np.zeros((5, 10), dtype=np.float32))
    with pytest.raises(ModelInputMismatchError, match="class indices"):
        mlp.loss_gradient(np.zeros((2, 64)), np.array([0, 10]))
    with pytest.raises(ModelInputMismatchError, match="one label per sample"):
        mlp.loss_gradient(np.zeros((2, 64)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`output` must be one of"):
        TorchClassifier(small_mlp(), input_spec=InputSpec((8,)), output="scores")
    with pytest.raises(ModelInputMismatchError, match="failed on a batch of shape"):
        TorchClassifier(small_mlp(8, 3), input_spec=InputSpec((9,)))
    wrong = TorchClassifier(small_mlp(8, 3), input_spec=InputSpec((8,)), n_classes=4)
    with pytest.raises(ModelInputMismatchError, match="expected n_classes=4"):
        wrong.predict_proba(np.zeros((1, 8)))


def test_missing_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"garrison\[torch\]") as info:
        load_torchscript(tmp_path / "model.pt", trusted=True)
    assert info.value.extra == "torch"


# --- factories -----------------------------------------------------------------------------------------------


@pytest.fixture
def factory_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"user_models_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        "from torch import nn\n"
        "NOT_CALLABLE = 3\n"
        "class Zoo:\n"
        "    @staticmethod\n"
        "    def build():\n"
        "        return nn.Linear(4, 2)\n"
        "def build_mlp():\n"
        "    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))\n"
    )
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_load_factory_resolves_the_callable(factory_module: str) -> None:
    module = load_factory(f"{factory_module}:build_mlp")()
    assert isinstance(module, nn.Sequential)
    assert isinstance(load_factory(f"{factory_module}:Zoo.build")(), nn.Linear)


@pytest.mark.parametrize("spec", ["", "nocolon", "a:b:c", "a.:b", "1pkg:f", "pkg:", ":f", "pkg:f()", "a b:c"])
def test_load_factory_rejects_bad_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"package\.module:function") as info:
        load_factory(spec)
    assert info.value.key == "model.factory"


def test_load_factory_import_failures_name_the_module(factory_module: str) -> None:
    missing = f"{factory_module}_absent"
    with pytest.raises(ModelLoadError, match=f"cannot import module '{missing}'") as info:
        load_factory(f"{missing}:build")
    assert "Traceback" not in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelLoadError, match="boom at import"):
        load_factory(f"{factory_module}_broken:build")
    with pytest.raises(ModelLoadError, match="has no attribute 'nope'"):
        load_factory(f"{factory_module}:nope")
    with pytest.raises(ModelLoadError, match="not callable"):
        load_factory(f"{factory_module}:NOT_CALLABLE")


# --- weights -------------------------------------------------------------------------------------------------


def _fresh_mlp() -> nn.Module:
    return small_mlp(64, 10, hidden=32, seed=99)


@pytest.mark.parametrize("fmt", ["safetensors", "torch-save"])
def test_load_weights_restores_the_trained_model(
    fmt: str, tmp_path: Path, trained_mlp: nn.Module, mlp: TorchClassifier
) -> None:
    _, x_test, _, _ = digits()
    path = tmp_path / "weights.bin"  # the format is told by content, not by name
    if fmt == "safetensors":
        save_file(trained_mlp.state_dict(), str(path))
    else:
        torch.save(trained_mlp.state_dict(), path)
    fresh = _fresh_mlp()
    before = TorchClassifier(fresh, input_spec=FLAT).predict_proba(x_test)
    assert not np.allclose(before, mlp.predict_proba(x_test))
    loaded = load_weights(fresh, path)
    assert loaded is fresh
    np.testing.assert_array_equal(
        TorchClassifier(loaded, input_spec=FLAT).predict_proba(x_test), mlp.predict_proba(x_test)
    )


def test_mismatched_weights_name_the_file_and_the_keys(tmp_path: Path, trained_mlp: nn.Module) -> None:
    path = tmp_path / "mlp.safetensors"
    save_file(trained_mlp.state_dict(), str(path))
    with pytest.raises(
        ModelLoadError, match=r"mlp\.safetensors: .*shape mismatch .*0\.weight \(32, 64\) vs model \(16, 64\)"
    ):
        load_weights(small_mlp(64, 10, hidden=16), path)
    with pytest.raises(
        ModelLoadError, match=r"missing keys 3\.bias, 3\.weight; unexpected keys 2\.bias, 2\.weight"
    ):
        load_weights(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Identity(), nn.Linear(32, 10)), path)
    torch.save({"0.weight": torch.zeros(32, 64)}, tmp_path / "partial.pt")
    with pytest.raises(ModelLoadError, match=r"partial\.pt.*missing keys"):
        load_weights(_fresh_mlp(), tmp_path / "partial.pt")


def test_weights_that_are_not_a_state_dict_are_refused(tmp_path: Path, trained_mlp: nn.Module) -> None:
    torch.save(trained_mlp, tmp_path / "whole.pt")  # a pickled module: code, refused by weights_only
    with pytest.raises(ModelLoadError, match=r"whole\.pt: holds objects other than tensors"):
        load_weights(_fresh_mlp(), tmp_path / "whole.pt")
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ModelLoadError, match=r"must hold a state_dict.*Tensor"):
        load_weights(_fresh_mlp(), tmp_path / "tensor.pt")
    torch.save({"epoch": 3, "model": trained_mlp.state_dict()}, tmp_path / "checkpoint.pt")
    with pytest.raises(ModelLoadError, match="non-tensor entries epoch, model"):
        load_weights(_fresh_mlp(), tmp_path / "checkpoint.pt")
    with pytest.raises(ModelLoadError, match="weights file not found"):
        load_weights(_fresh_mlp(), tmp_path / "absent.pt")


_safetensors_like = st.builds(
    lambda n, body: n.to_bytes(8, "little") + b"{" + body, st.integers(0, 2**64 - 1), st.binary(max_size=64)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), _safetensors_like))
def test_arbitrary_weight_bytes_give_model_load_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "weights"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError):
        load_weights(nn.Linear(2, 2), path)


# --- TorchScript and torch.export archives -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_loads_only_when_trusted(how: str, tmp_path: Path, trained_mlp: nn.Module) -> None:
    _, x_test, _, _ = digits()
    path = tmp_path / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream
        archive = (
            torch.jit.script(trained_mlp)
            if how == "script"
            else torch.jit.trace(trained_mlp, torch.zeros(2, 64))
        )
        torch.jit.save(archive, str(path))

    with pytest.raises(
        UntrustedArtifactError, match=r"TorchScript archive, which can run code.*trusted: true"
    ) as info:
        load_torchscript(path, trusted=False)
    assert isinstance(info.value, ModelLoadError)
    assert info.value.path == str(path)

    loaded = TorchClassifier(load_torchscript(path, trusted=True), input_spec=FLAT)
    original = TorchClassifier(trained_mlp, input_spec=FLAT)
    np.testing.assert_allclose(
        loaded.predict_proba(x_test), original.predict_proba(x_test), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.loss_gradient(x_test[:5], np.arange(5)),
        original.loss_gradient(x_test[:5], np.arange(5)),
        atol=1e-6,
    )


def test_torch_export_loads_only_when_trusted(tmp_path: Path, trained_mlp: nn.Module) -> None:
    _, x_test, _, y_test = digits()
    path = tmp_path / "model.pt2"
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(trained_mlp, (torch.zeros(2, 64),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))

    with pytest.raises(UntrustedArtifactError, match=r"torch\.export archive.*trusted: true"):
        load_torch_export(path, trusted=False)

    loaded = TorchClassifier(load_torch_export(path, trusted=True), input_spec=FLAT)
    original = TorchClassifier(trained_mlp, input_spec=FLAT)
    assert loaded.n_classes == 10
    np.testing.assert_allclose(
        loaded.predict_proba(x_test), original.predict_proba(x_test), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.loss_gradient(x_test[:8], y_test[:8]),
        original.loss_gradient(x_test[:8], y_test[:8]),
        atol=1e-6,
    )


@pytest.mark.parametrize("loader", [load_torchscript, load_torch_export])
def test_corrupt_archives_give_model_load_error(
    loader: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(ModelLoadError, match=r"broken\.pt: not a loadable") as info,
    ):
        loader(path, trusted=True)  # type: ignore[operator]
    assert not isinstance(info.value, UntrustedArtifactError)
    assert "\n" not in str(info.value)
    assert not [r for r in caplog.records if r.name.startswith("torch.export")]
    with pytest.raises(ModelLoadError, match="model file not found"):
        loader(tmp_path / "absent.pt", trusted=True)  # type: ignore[operator]
