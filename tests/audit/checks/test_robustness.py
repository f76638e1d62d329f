from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from garrison.adapters import SklearnClassifier
from garrison.audit.checks.robustness import RobustnessCheck, threat_bounds
from garrison.audit.context import AuditContext
from garrison.core.config import DataSourceConfig
from garrison.core.results import CheckStatus
from garrison.data import load_datasets
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
    assert [f.id for f in result.figures] == ["robustness-curve", "robustness-classes", "robustness-slices"]
    assert "<svg" in (result.figures[0].svg or "")
    assert all(0 <= row["robust_accuracy"] <= 1 for row in result.figures[2].table)
    assert result.metric("worst_slice_gap") is not None


def test_rows_near_the_boundary_are_a_weak_robustness_slice(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 600
    group = rng.choice(["near", "far"], size=n)
    side = rng.choice([-1.0, 1.0], size=n)
    # the same accuracy everywhere, but "near" rows sit just beside the boundary and "far" rows well away from it
    x1 = np.where(group == "near", side * rng.uniform(0.05, 0.3, n), side * rng.uniform(2.0, 3.0, n))
    frame = pd.DataFrame(
        {"x1": x1, "x2": rng.normal(size=n), "group": group, "label": (side > 0).astype(int)}
    )
    frame.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[300:].to_csv(tmp_path / "test.csv", index=False)
    data = load_datasets(
        {r: DataSourceConfig(str(tmp_path / f"{r}.csv"), label="label") for r in ("train", "test")}
    )
    model = SklearnClassifier(LogisticRegression().fit(data["train"].x, data["train"].y))
    result = RobustnessCheck(
        eps=[0.05], n_samples=300, queries=60, selftest=False, min_perturbation=False
    ).run(AuditContext(model=model, test=data["test"], seed=0))
    assert result.status is CheckStatus.OK, result.error
    weak = [f.location for f in result.findings if f.rule_id == "GAR-XP-003"]
    assert "slice group = near (robust accuracy)" in weak
    assert "slice group = far (robust accuracy)" not in weak
    assert result.metric("worst_slice_gap").value < -0.3  # type: ignore[union-attr]


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
