"""The report model and its renderers (JSON-ready dict, Markdown, SVG), on a hand-made result."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from garrison.federated import RoundRecord, SimulationResult, StrategyRun, accuracy_svg, backdoor_svg
from garrison.federated.config import FLConfig, parse_fl_config
from garrison.report.svg import sanitize_svg


def _result(kind: str = "backdoor") -> SimulationResult:
    cfg: FLConfig = parse_fl_config({"clients": 4, "malicious": 1, "attack": {"kind": kind}, "rounds": 2})
    bd = kind == "backdoor"
    runs = (
        StrategyRun(
            "fedavg",
            tuple(RoundRecord(r, a, 0.5 if bd else None) for r, a in enumerate((0.1, 0.6, 0.8))),
            3.0,
        ),
        StrategyRun(
            "screened:fedavg",
            (
                RoundRecord(0, 0.1, 0.0 if bd else None),
                RoundRecord(1, 0.7, 0.0 if bd else None, (3,)),
                RoundRecord(2, 0.9, 0.01 if bd else None, (1, 3)),
            ),
            2.0,
            screened=True,
        ),
    )
    return SimulationResult(cfg.to_dict(), frozenset({3}), runs, (10, 10, 10, 10), 5.0)


def test_rejection_rates_count_honest_and_malicious_clients_apart() -> None:
    result = _result()
    screened = result.run("screened:fedavg")
    assert screened.malicious_rejection_rate(result.malicious) == 1.0
    assert (
        screened.honest_rejection_rate(result.malicious, 4) == 1 / 6
    )  # client 1 once, of 3 honest x 2 rounds
    assert result.run("fedavg").honest_rejection_rate(result.malicious, 4) is None


def test_json_and_markdown_carry_the_figures() -> None:
    result = _result()
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["schema_version"] == 1
    assert data["malicious"] == [3]
    assert data["strategies"][1]["rounds"][2]["rejected"] == [1, 3]
    md = result.to_markdown()
    assert "| screened:fedavg | 90.0% | 1.0% | 16.7% | 100.0% | 2.0 |" in md
    assert "r2: 1,3" in md


def test_figures_are_svg_that_survive_the_report_sanitiser() -> None:
    result = _result()
    for svg in (accuracy_svg(result), backdoor_svg(result)):
        assert svg is not None
        root = ET.fromstring(svg)
        assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2
        assert sanitize_svg(svg) is not None
    assert backdoor_svg(_result("ipm")) is None
