from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small real project: a skops pipeline with a string column, train/test CSVs and a garrison.yaml."""
    import numpy as np
    import pandas as pd
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n).round(2),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    frame["label"] = ((frame["income"] > 50) ^ (frame["region"] == "east")).astype(int)
    train, test = frame.iloc[:160], frame.iloc[160:]
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["income", "age"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ]
        ),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(train.drop(columns="label"), train["label"])
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    skops.io.dump(pipe, tmp_path / "model.skops")
    (tmp_path / "garrison.yaml").write_text(
        """\
project: cli-test
model: {name: credit, path: model.skops}
data:
  train: {path: train.csv, label: label}
  test: {path: test.csv, label: label}
checks:
  fuzzing: {budget_s: 60}
  performance: {budget_s: 60, n_bootstrap: 50}
policy:
  fail_on: high
  thresholds:
    performance.accuracy: {min: 0.5}
report: {output: out}
"""
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GARRISON_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    return tmp_path
