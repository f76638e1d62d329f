from __future__ import annotations

import numpy as np
import pytest

from garrison.audit.checks.robustness import RobustnessCheck, threat_bounds
from garrison.audit.context import AuditContext
from garrison.core.results import CheckStatus
from garrison.testing import assert_conforms, make_context


def test_conforms_on_the_reference_data() -> None:
    assert_conforms(RobustnessCheck)


def test_tabular_metrics_and_figures() -> None:
    result = RobustnessCheck(eps=[0.05, 0.3], n_samples=40, queries=50, selftest=False).run(make_context())
    assert result.status is CheckStatus.OK
    names = {m.name for m in result.metrics}
    assert {"clean_accuracy", "robust_accuracy@0.05", "robust_accuracy@0.3", "robust_accuracy",
            "attack_success_rate", "median_min_perturbation"} <= names  # fmt: skip
    clean = result.metric("clean_accuracy")
    strong = result.metric("robust_accuracy@0.3")
    assert clean is not None and strong is not None and clean.n == 40
    assert strong.value < clean.value
    assert result.metric("robust_accuracy").value == strong.value  # type: ignore[union-attr]
    assert [f.id for f in result.figures] == ["robustness-curve", "robustness-classes"]
    assert "<svg" in (result.figures[0].svg or "")


def test_threat_bounds_of_tabular_data_are_constrained() -> None:
    ctx = make_context()
    assert ctx.test is not None
    lower, upper, project, uniform = threat_bounds(ctx.test)
    assert not uniform and project is not None
    assert np.isfinite(lower).all() and np.isfinite(upper).all()
    moved = project(ctx.test.x + 0.4, ctx.test.x)
    assert not ctx.test.schema.violations(moved).any()


def test_skips_without_labels() -> None:
    ctx = make_context()
    assert ctx.test is not None
    from dataclasses import replace

    unlabeled = AuditContext(model=ctx.model, test=replace(ctx.test, y=None))
    assert RobustnessCheck().run(unlabeled).status is CheckStatus.SKIPPED


def test_image_model_gets_the_white_box_ensemble_and_an_example_grid() -> None:
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    from garrison.adapters.base import InputSpec
    from garrison.adapters.torch_model import TorchClassifier
    from garrison.data import Dataset, infer_array_schema

    data = load_digits()
    x = (data.images / 16.0)[:, None]
    y = data.target.astype(np.int64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    xt, yt = torch.as_tensor(x[:1400], dtype=torch.float32), torch.from_numpy(y[:1400])
    for _ in range(80):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    model = TorchClassifier(net.eval(), input_spec=InputSpec((1, 8, 8)), n_classes=10)
    test = Dataset("digits", x[1400:1460], y[1400:1460], infer_array_schema(x))
    result = RobustnessCheck(eps=[0.05, 0.2], steps=10, queries=50).run(AuditContext(model=model, test=test))
    assert result.status is CheckStatus.OK, result.error
    assert not [f for f in result.findings if f.rule_id == "GAR-RB-001"]
    assert {f.id for f in result.figures} == {"robustness-curve", "robustness-classes", "robustness-examples"}
    assert result.metric("robust_accuracy@0.2").value < 0.2  # type: ignore[union-attr]
    caption = result.figures[0].caption
    assert "apgd" in caption.lower() or "default-ensemble" in caption
