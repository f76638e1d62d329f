"""One real Flower simulation (``run_simulation``, ServerApp + ClientApp on Ray), driven through the CLI, whose
report several tests read. Ray start-up is slow, so there is exactly one run in this module."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("flwr")
pytest.importorskip("ray")

import typer
from typer.testing import CliRunner

from garrison.cli import fl_cmd

pytestmark = [
    pytest.mark.torch,
    # Ray leaves /dev/null handles and its raylet process to the garbage collector (ResourceWarning, theirs)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

STRATEGIES = ["fedavg", "fedmedian", "screened:fedavg", "screened:multikrum", "bulyan", "dp-fixed:fedavg"]
CONFIG = f"""
seed: 3
clients: 7
malicious: 1
attack: {{kind: backdoor, target: 0, scale: 30}}
strategies: [{", ".join(STRATEGIES)}]
rounds: 2
dp: {{noise_multiplier: 0.01, clipping_norm: 5.0}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("fl")
    (tmp / "fl.yaml").write_text(CONFIG, encoding="utf-8")
    app = typer.Typer()
    fl_cmd.register(app)
    app.command("noop")(lambda: None)  # two commands keep `fl` a sub-command group
    out = tmp / "report"
    result = CliRunner().invoke(
        app, ["fl", "simulate", "--config", str(tmp / "fl.yaml"), "--output", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return {"out": out, "stdout": result.stdout, "report": json.loads((out / "report.json").read_text())}


def test_every_strategy_ran_every_round(run: dict[str, Any]) -> None:
    report = run["report"]
    assert report["schema_version"] == 1
    assert [s["strategy"] for s in report["strategies"]] == STRATEGIES
    for s in report["strategies"]:
        assert [r["round"] for r in s["rounds"]] == [0, 1, 2]
    assert json.loads(run["stdout"]) == report


def test_accuracy_rises_above_chance(run: dict[str, Any]) -> None:
    for s in run["report"]["strategies"]:
        assert s["final_accuracy"] > 0.3, s["strategy"]
        assert s["final_accuracy"] > s["rounds"][0]["accuracy"]


def test_screening_rejects_the_boosted_backdoor_and_records_it(run: dict[str, Any]) -> None:
    report = run["report"]
    (bad,) = report["malicious"]
    screened = next(s for s in report["strategies"] if s["strategy"] == "screened:fedavg")
    assert all(bad in r["rejected"] for r in screened["rounds"][1:])
    assert screened["malicious_rejection_rate"] == 1.0
    assert screened["honest_rejection_rate"] <= 0.2
    assert screened["final_backdoor"] is not None
    fedavg = next(s for s in report["strategies"] if s["strategy"] == "fedavg")
    assert fedavg["honest_rejection_rate"] is None
    assert all(r["rejected"] == [] for r in fedavg["rounds"])


def test_report_files_and_figures_are_written(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.svg",
        "backdoor.svg",
        "report.json",
        "report.md",
    ]
    markdown = (out / "report.md").read_text()
    assert "| screened:fedavg |" in markdown
    assert "Clients rejected by screening" in markdown
    for name in ("accuracy.svg", "backdoor.svg"):
        root = ET.fromstring((out / name).read_text())
        assert root.tag.endswith("svg")
        assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == len(STRATEGIES)


def test_a_bad_config_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    from garrison.core.errors import ConfigError

    path = tmp_path / "fl.yaml"
    path.write_text("clients: 12\nstrategy: fedavg\n", encoding="utf-8")
    app = typer.Typer()
    fl_cmd.register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["fl", "simulate", "--config", str(path)])
    assert isinstance(result.exception, ConfigError)  # garrison.cli.app.main turns it into exit code 2
    assert result.exception.key == "strategy"
    assert result.exception.line == 2
