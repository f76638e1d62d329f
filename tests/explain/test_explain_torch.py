"""garrison.explain on torch models: Integrated Gradients, Saliency and DeepLift with its tolerance fallback."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings(r"ignore:The set_\w+ function will be deprecated:PendingDeprecationWarning"),
]
torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.core.errors import ModelInputMismatchError  # noqa: E402
from garrison.explain import Explainer, attributions  # noqa: E402

torch.set_num_threads(1)


def _mlp(n_in: int = 5, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


class _Squares(torch.nn.Module):
    """Multiplicative interactions: DeepLift's rescale rule does not add up here."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        return torch.cat([z * z, -z * z + 3 * z[:, :1]], dim=1)


def _rows(n: int, f: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, f))


def _logits(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


def test_torch_routes_to_integrated_gradients_which_is_complete():
    module = _mlp()
    model = TorchClassifier(module, input_spec=InputSpec((5,)))
    x = _rows(12, 5)
    a = attributions(model, x)
    assert a.method == "captum.integrated-gradients"
    assert a.output == "logit"
    out = _logits(module, x)[np.arange(12), a.target]
    ref = _logits(module, np.zeros((1, 5)))[0, a.target]
    np.testing.assert_allclose(a.values.sum(axis=1), out - ref, atol=2e-2)
    np.testing.assert_allclose(a.base_values, ref, atol=1e-6)


def test_integrated_gradients_baseline_is_the_background_mean():
    module = _mlp(seed=1)
    model = TorchClassifier(module, input_spec=InputSpec((5,)))
    x, bg = _rows(6, 5, seed=2), _rows(50, 5, seed=3) + 1.0
    a = attributions(model, x, background=bg, target=1)
    ref = _logits(module, bg.mean(axis=0, keepdims=True))[0, 1]
    np.testing.assert_allclose(a.values.sum(axis=1), _logits(module, x)[:, 1] - ref, atol=2e-2)


def test_a_network_reading_only_feature_0_is_attributed_to_feature_0():
    lin = torch.nn.Linear(5, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, 0], lin.weight[1, 0] = -2.0, 2.0
        lin.bias.zero_()
    model = TorchClassifier(lin, input_spec=InputSpec((5,)))
    for method in ("integrated-gradients", "saliency", "deeplift"):
        a = attributions(model, _rows(10, 5), method=method)
        share = a.global_importance() / a.global_importance().sum()
        assert share[0] > 0.99, method


def test_saliency_is_non_negative_and_image_inputs_are_flattened():
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model = TorchClassifier(module, input_spec=InputSpec((1, 4, 4)))
    a = attributions(model, _rows(3, 16).reshape(3, 1, 4, 4), method="saliency")
    assert a.method == "captum.saliency"
    assert a.values.shape == (3, 16)
    assert (a.values >= 0).all()


def test_deeplift_is_kept_within_tolerance_and_is_complete():
    module = _mlp(seed=4)
    model = TorchClassifier(module, input_spec=InputSpec((5,)))
    x = _rows(8, 5, seed=5)
    a = attributions(model, x, method="deeplift")
    assert a.method == "captum.deeplift"
    out = _logits(module, x)[np.arange(8), a.target]
    ref = _logits(module, np.zeros((1, 5)))[0, a.target]
    np.testing.assert_allclose(a.values.sum(axis=1), out - ref, atol=1e-3)


def test_deeplift_beyond_tolerance_falls_back_to_integrated_gradients():
    model = TorchClassifier(_Squares(), input_spec=InputSpec((4,)))
    a = Explainer(model, method="deeplift", deeplift_tolerance=1e-3).explain(_rows(6, 4, seed=6) * 3)
    assert a.method == "captum.integrated-gradients"
    assert any("DeepLift" in n and "Integrated Gradients used instead" in n for n in a.notes)


def test_torch_attributions_are_deterministic_and_targets_are_checked():
    model = TorchClassifier(_mlp(seed=7), input_spec=InputSpec((5,)))
    x = _rows(5, 5, seed=8)
    first, again = attributions(model, x), attributions(model, x)
    np.testing.assert_array_equal(first.values, again.values)
    with pytest.raises(ModelInputMismatchError, match="target"):
        attributions(model, x, target=3)
    with pytest.raises(ModelInputMismatchError):
        attributions(model, _rows(5, 4))
