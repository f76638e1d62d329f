"""White-box attacks on a CPU conv net run a channels-last copy of the module, only where the copy reproduces the
module; Square scores white-box models through the module's logits. Neither may change an attack's outcome."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from garrison.adapters import InputSpec, TorchClassifier  # noqa: E402
from garrison.adapters.base import BaseClassifier  # noqa: E402
from garrison.robustness import APGD, Square, ThreatModel  # noqa: E402
from garrison.robustness.attacks.torch_view import torch_view  # noqa: E402

try:
    from tests.adapters.models import digits, fit, small_cnn
except ImportError:  # pragma: no cover - run from inside tests/
    from adapters.models import digits, fit, small_cnn


@pytest.fixture(scope="module")
def cnn() -> tuple[nn.Module, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = digits()
    module = fit(small_cnn(), x_train.reshape(-1, 1, 8, 8), y_train, epochs=8)
    return module, x_test[:60].reshape(-1, 1, 8, 8), y_test[:60]


def classifier(module: nn.Module) -> TorchClassifier:
    return TorchClassifier(module, input_spec=InputSpec((1, 8, 8)), n_classes=10)


def test_a_conv_net_is_attacked_through_a_channels_last_copy_and_the_users_module_is_untouched(cnn) -> None:
    module, x, _ = cnn
    before = {k: v.clone() for k, v in module.state_dict().items()}
    view = torch_view(classifier(module))
    assert view is not None
    assert view.module is not module
    xt = torch.as_tensor(x)
    with torch.no_grad():
        activation = view.module[0](xt)  # 8 channels: the two layouts differ
        assert activation.is_contiguous(memory_format=torch.channels_last) and not activation.is_contiguous()
        assert module[0](xt).is_contiguous()
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    with torch.no_grad():
        assert torch.allclose(view.logits(xt), module(xt), rtol=1e-4, atol=1e-5)


class Flattening(nn.Module):
    """A conv net that flattens with ``.view`` — which a channels-last activation refuses."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inner[2](self.inner[1](self.inner[0](x)))
        return self.inner[4](h.view(len(h), -1))


class Noisy(nn.Module):
    """A randomised defence: fresh input noise on every pass."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 0.05 * torch.randn_like(x))


@pytest.mark.parametrize("wrap", [Flattening, Noisy], ids=["view-after-conv", "randomised"])
def test_a_module_the_copy_cannot_reproduce_is_attacked_as_it_is(cnn, wrap) -> None:
    module, x, y = cnn
    wrapped = wrap(module).eval()
    view = torch_view(classifier(wrapped))
    assert view is not None and view.module is wrapped
    result = APGD(steps=10).run(classifier(wrapped), x, y, ThreatModel("linf", 0.2), seed=0)
    assert result.success.mean() > 0.5


def test_layouts_do_not_change_what_apgd_finds(cnn) -> None:
    module, x, y = cnn
    threat = ThreatModel("linf", 0.1)
    fast = APGD(steps=20).run(classifier(module), x, y, threat, seed=3)
    plain = APGD(steps=20).run(classifier(Flattening(module).eval()), x, y, threat, seed=3)
    assert abs(int(fast.success.sum()) - int(plain.success.sum())) <= 1
    np.testing.assert_allclose(fast.x_adv, plain.x_adv, atol=2e-3 if fast.success.sum() else 0)


class ScoresOnly(BaseClassifier):
    """The same network behind ``predict_proba`` only (no torch module): Square's numpy path."""

    def __init__(self, inner: TorchClassifier) -> None:
        super().__init__(name="scores-only", n_classes=10, input_spec=inner.input_spec)
        self.inner = inner

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.inner.predict_proba(x)


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.15), ("l2", 1.0)])
def test_square_scores_a_white_box_model_through_its_logits_with_the_same_outcome(cnn, norm, eps) -> None:
    module, x, y = cnn
    clf = classifier(module)
    threat = ThreatModel(norm, eps)
    logits = Square(queries=300, batch_size=7).run(clf, x, y, threat, seed=1)
    scores = Square(queries=300).run(ScoresOnly(clf), x, y, threat, seed=1)
    assert 0 < logits.success.sum() < len(x)
    assert abs(int(logits.success.sum()) - int(scores.success.sum())) <= 2
    assert threat.contains(logits.x_adv, x).all()


def test_square_refuses_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Square(batch_size=0)
