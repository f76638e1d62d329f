"""``garrison explain``: global importance and per-row attributions from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

from garrison.cli import main

pytest.importorskip("shap")


@pytest.fixture
def model_and_data(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 2] > 0).astype(int)  # only feature 2 matters
    skops.io.dump(LogisticRegression().fit(x, y), tmp_path / "model.skops")
    np.savez(tmp_path / "test.npz", x=x[:100], y=y[:100])
    return tmp_path / "model.skops", tmp_path / "test.npz"


def test_explain_ranks_the_only_informative_feature_first(
    model_and_data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, data = model_and_data
    out = tmp_path / "explained.json"
    args = ["explain", "--model", str(model), "--data", str(data), "--rows", "40", "--format", "json"]
    assert main([*args, "--output", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["method"] == "shap.linear"
    assert payload["global_importance"][0]["feature"] == "f2"
    assert payload["global_importance"][0]["importance"] > 5 * payload["global_importance"][1]["importance"]
    written = json.loads(out.read_text())
    assert len(written["attributions"]["values"]) == 40
    assert main(["explain", "--model", str(model), "--data", str(data)]) == 0
    assert "f2" in capsys.readouterr().out.splitlines()[1]


def test_bad_options_exit_2(model_and_data: tuple[Path, Path]) -> None:
    model, data = model_and_data
    assert main(["explain", "--model", str(model), "--data", str(data), "--method", "magic"]) == 2
    assert main(["explain", "--data", str(data)]) == 2
