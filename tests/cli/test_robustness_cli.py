from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.cli import main


def test_json_curve_on_a_skops_pipeline(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["robustness", "--model", "model.skops", "--data", "test.csv", "--label", "label",
                 "--eps", "0.05", "--eps", "0.3", "--n-samples", "40", "--format", "json"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    payload = json.loads(out)
    assert payload["schema_version"] == 1 and payload["status"] == "ok"
    assert [row["eps"] for row in payload["curve"]] == [0.05, 0.3]
    clean = payload["metrics"]["clean_accuracy"]
    assert clean["n"] == 40 and 0.0 < clean["value"] <= 1.0
    assert payload["curve"][1]["robust_accuracy"] <= payload["curve"][0]["robust_accuracy"] <= clean["value"]
    assert payload["curve"][1]["success_rate"] > 0.0


def test_text_output_and_bad_norm(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "robustness", "-m", "model.skops", "-d", "test.csv", "--label", "label", "--eps", "0.1",
                 "--n-samples", "20"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "clean accuracy" in out and "0.1" in out
    assert main(["robustness", "-m", "model.skops", "-d", "test.csv", "--eps", "0.1", "--norm", "l1"]) == 2
