from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from garrison.audit.checks.anonymity import AnonymityCheck
from garrison.audit.context import AuditContext
from garrison.core.config import DataConfig, DataSourceConfig, GarrisonConfig
from garrison.core.results import CheckStatus
from garrison.data import load_dataset
from garrison.protect import mondrian
from garrison.testing import assert_conforms, make_context


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "zip": [f"{z:05d}" for z in rng.integers(10000, 99999, n)],
            "email": [f"user{i}@example.org" for i in range(n)],
            "dx": rng.choice(["flu", "asthma", "none"], n),
            "label": rng.integers(0, 2, n),
        }
    )
    frame.to_csv(tmp_path / "train.csv", index=False)
    anon = mondrian(frame, ["age", "zip"], k=5).frame.drop(columns=["email"])
    anon.to_csv(tmp_path / "shared.csv", index=False)
    return tmp_path


def _context(project: Path) -> AuditContext:
    train = load_dataset(project / "train.csv", label="label", name="train")
    ctx = make_context(test=train, train=train)
    ctx.config = GarrisonConfig(
        data=DataConfig(train=DataSourceConfig("train.csv", label="label")), base_dir=project
    )
    return ctx


def test_conforms(project: Path) -> None:
    assert_conforms(AnonymityCheck, lambda: _context(project))


def test_measures_raw_and_anonymised_tables(project: Path) -> None:
    raw = AnonymityCheck(quasi_identifiers=["age", "zip"], sensitive="dx").run(_context(project))
    assert raw.status == CheckStatus.OK
    assert raw.metric("k_anonymity").value == 1
    assert raw.metric("pii_columns").value >= 1  # the e-mail column
    shared = AnonymityCheck(path="shared.csv", quasi_identifiers=["age", "zip"], sensitive="dx").run(
        _context(project)
    )
    assert shared.metric("k_anonymity").value >= 5
    assert shared.metric("l_diversity").value >= 1
    assert shared.metric("pii_columns").value == 0


def test_unknown_quasi_identifier_is_an_error(project: Path) -> None:
    result = AnonymityCheck(quasi_identifiers=["age", "postcode"]).run(_context(project))
    assert result.status == CheckStatus.ERROR and "'postcode'" in (result.error or "")


def test_a_k_anonymity_threshold_fails_a_real_audit(project: Path) -> None:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    from garrison.audit.check import CheckRegistry
    from garrison.audit.runner import audit
    from garrison.core.config import load_config

    train = pd.read_csv(project / "train.csv")
    skops.io.dump(LogisticRegression().fit(train[["age"]], train["label"]), project / "model.skops")
    pd.DataFrame({"age": train["age"], "label": train["label"]}).to_csv(project / "model.csv", index=False)
    registry = CheckRegistry()
    registry.register(AnonymityCheck)

    def run(path: str) -> int:
        (project / "garrison.yaml").write_text(
            "model: {name: m, path: model.skops}\n"
            "data:\n  train: {path: model.csv, label: label}\n  test: {path: model.csv, label: label}\n"
            f"checks:\n  anonymity: {{path: {path}, quasi_identifiers: [age, zip], sensitive: dx}}\n"
            "policy:\n  thresholds:\n    anonymity.k_anonymity: {min: 5}\n"
        )
        report = audit(load_config(project / "garrison.yaml"), registry=registry)
        assert report.decision is not None
        return int(report.decision.exit_code)

    assert run("train.csv") == 1  # k = 1 on the raw table
    assert run("shared.csv") == 0  # Mondrian to k = 5
