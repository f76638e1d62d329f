"""The `explain` check end to end: a planted leaky id, a region where the model is weak, fairness metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from garrison.adapters import SklearnClassifier
from garrison.audit.checks.explain import ExplainCheck
from garrison.audit.context import AuditContext
from garrison.core.config import DataSourceConfig
from garrison.core.results import CheckStatus
from garrison.data import load_datasets

pytest.importorskip("shap")


def _split(frame: pd.DataFrame, tmp_path: Path) -> tuple[object, object]:
    frame.iloc[: len(frame) // 2].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[len(frame) // 2 :].to_csv(tmp_path / "test.csv", index=False)
    sources = {
        role: DataSourceConfig(str(tmp_path / f"{role}.csv"), label="label") for role in ("train", "test")
    }
    data = load_datasets(sources)
    return data["train"], data["test"]


def test_a_planted_leaky_id_is_a_finding_and_the_clean_model_has_none(tmp_path: Path) -> None:
    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"}).sort_values("label", kind="stable")
    frame.insert(0, "record_id", np.arange(5000, 5000 + len(frame)))  # numbered after sorting by outcome
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = _split(frame, tmp_path)
    model = GradientBoostingClassifier(n_estimators=40, random_state=0).fit(train.x, train.y)
    check = ExplainCheck(rows=120, stability_rows=0)
    result = check.run(AuditContext(model=SklearnClassifier(model), test=test, seed=0))
    assert result.status is CheckStatus.OK, result.error
    assert [f.location for f in result.findings if f.rule_id == "GAR-XP-001"] == ["feature record_id"]
    figure = next(f for f in result.figures if f.id == "explain-importance")
    assert figure.table[0]["feature"] == "record_id" and figure.svg

    clean_train, clean_test = _split(frame.drop(columns="record_id"), tmp_path)
    clean = GradientBoostingClassifier(n_estimators=40, random_state=0).fit(clean_train.x, clean_train.y)
    clean_result = check.run(AuditContext(model=SklearnClassifier(clean), test=clean_test, seed=0))
    assert not [f for f in clean_result.findings if f.rule_id == "GAR-XP-001"]


def test_a_region_the_model_gets_wrong_is_a_weak_slice_with_fairness_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 1600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    label = (x1 + x2 > 0).astype(int)
    east = region == "east"
    label[east] = rng.integers(0, 2, size=int(east.sum()))  # nothing predicts the east's labels
    frame = pd.DataFrame({"x1": x1, "x2": x2, "region": region, "label": label})
    train, test = _split(frame, tmp_path)
    wrapped = SklearnClassifier(LogisticRegression().fit(train.x, train.y))
    result = ExplainCheck(rows=60, stability_rows=20, sensitive=["region"]).run(
        AuditContext(model=wrapped, test=test, seed=0)
    )
    assert result.status is CheckStatus.OK, result.error
    slices = [f.location for f in result.findings if f.rule_id == "GAR-XP-003"]
    assert "slice region = east" in slices
    # east's confident guesses are half wrong: its top-label Brier score is worse too
    assert "slice region = east (top-label Brier score)" in slices
    calibration = next(f for f in result.figures if f.id == "explain-calibration-slices")
    assert calibration.table[0]["slice"] == "region = east" and calibration.table[0]["brier"] > 0
    assert result.metric("fairness.region.demographic_parity_ratio") is not None
    assert result.metric("stability").value > 0.9  # linear SHAP is smooth


def test_image_inputs_are_explained_but_not_sliced_by_pixel(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    from garrison.data import load_dataset

    digits = load_digits()
    np.savez(tmp_path / "test.npz", x=digits.images[:300] / 16.0, y=digits.target[:300])
    model = LogisticRegression(max_iter=500).fit(digits.data[300:] / 16.0, digits.target[300:])
    result = ExplainCheck(rows=40, stability_rows=10).run(
        AuditContext(model=SklearnClassifier(model), test=load_dataset(tmp_path / "test.npz"), seed=0)
    )
    assert result.status is CheckStatus.OK, result.error
    assert any(f.caption == "slices skipped: the inputs are images" for f in result.figures)
    assert not [f for f in result.findings if f.rule_id == "GAR-XP-003"]
    assert result.metric("top_feature_share").value < 0.5
