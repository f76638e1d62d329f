"""The CycloneDX 1.6 ML-BOM (``garrison bom``) of a real audit: validity against the schema the cyclonedx library
ships, the model with its SHA-256 and a model card that carries the audit's numbers, the datasets, the Python
dependencies with purls, determinism, and a validator that does reject bad documents."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import math
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from garrison.audit.check import CheckRegistry
from garrison.audit.demo import write_demo_project
from garrison.audit.runner import audit
from garrison.cli import bom_cmd
from garrison.core import CheckResult, Metric, Report, RunInfo, Stage
from garrison.core.audit_report import ArtifactDigest
from garrison.core.config import load_config
from garrison.core.errors import ReportError
from garrison.report import to_json
from garrison.report.bom import build_ml_bom, validate_ml_bom, write_ml_bom
from garrison.store import Store

pytest.importorskip("cyclonedx")

SERIAL = uuid.UUID("12345678-1234-5678-1234-567812345678")
WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
CONFIG = """\
project: bom-test
seed: 0
model: {name: cancer-logreg, path: model.skops}
data:
  train: {path: train.csv, label: target}
  test: {path: test.csv, label: target}
checks:
  robustness: {n_samples: 40}
policy:
  fail_on: high
  thresholds:
    performance.accuracy: {min: 0.99}
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    """A real audit of the demo model (breast-cancer logistic regression) by four real checks; its accuracy
    threshold is set out of reach so the policy fails."""
    work = tmp_path_factory.mktemp("bom")
    write_demo_project(work, report_dir=work / "report")
    (work / "garrison.yaml").write_text(CONFIG, encoding="utf-8")
    installed = CheckRegistry().load_entry_points()
    registry = CheckRegistry()
    for check_id in ("artifact", "performance", "privacy", "robustness"):
        registry.register(installed.get(check_id))
    return work, audit(load_config(work / "garrison.yaml"), registry=registry)


@pytest.fixture(scope="module")
def bom(audited: tuple[Path, Report]) -> dict[str, Any]:
    return build_ml_bom(audited[1], serial_number=SERIAL, timestamp=WHEN)


def _model(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["metadata"]["component"]


def _metrics(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    card = _model(doc)["modelCard"]
    return [m for m in card["quantitativeAnalysis"]["performanceMetrics"] if m["type"] == kind]


def test_the_bom_of_a_real_audit_validates_against_cyclonedx_1_6(bom: dict[str, Any]) -> None:
    assert validate_ml_bom(bom) == []
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    assert bom["serialNumber"] == f"urn:uuid:{SERIAL}"
    assert dt.datetime.fromisoformat(bom["metadata"]["timestamp"]) == WHEN
    assert [t["name"] for t in bom["metadata"]["tools"]["components"]] == ["garrison"]


def test_the_model_is_named_with_the_sha256_of_its_file(
    bom: dict[str, Any], audited: tuple[Path, Report]
) -> None:
    work, _ = audited
    model = _model(bom)
    assert model["type"] == "machine-learning-model" and model["name"] == "cancer-logreg"
    digest = hashlib.sha256((work / "model.skops").read_bytes()).hexdigest()
    assert model["hashes"] == [{"alg": "SHA-256", "content": digest}]
    props = {p["name"]: p["value"] for p in model["properties"]}
    assert props["garrison:audit:verdict"] == "failed"


def test_the_datasets_are_data_components_with_their_sha256(
    bom: dict[str, Any], audited: tuple[Path, Report]
) -> None:
    work, _ = audited
    data = {c["bom-ref"]: c for c in bom["components"] if c["type"] == "data"}
    assert set(data) == {"data:train", "data:test"}
    for role in ("train", "test"):
        component = data[f"data:{role}"]
        digest = hashlib.sha256((work / f"{role}.csv").read_bytes()).hexdigest()
        assert component["hashes"] == [{"alg": "SHA-256", "content": digest}]
        [entry] = component["data"]
        assert entry["type"] == "dataset" and entry["name"] == f"{role}.csv"
        assert entry["contents"]["url"].endswith(f"/{role}.csv")
    params = _model(bom)["modelCard"]["modelParameters"]
    assert params["datasets"] == [{"ref": "data:test"}, {"ref": "data:train"}]
    assert params["approach"] == {"type": "supervised"} and params["task"] == "classification"


def test_the_python_dependencies_are_libraries_with_purls(bom: dict[str, Any]) -> None:
    libraries = {c["name"].lower(): c for c in bom["components"] if c["type"] == "library"}
    for name in ("scikit-learn", "numpy", "cyclonedx-python-lib"):
        version = metadata.version(name)
        assert libraries[name]["purl"] == f"pkg:pypi/{name}@{version}"
        assert libraries[name]["version"] == version
    assert any("licenses" in c for c in libraries.values())
    graph = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    sklearn = libraries["scikit-learn"]["bom-ref"]
    assert {"data:train", "data:test", sklearn} <= set(graph[_model(bom)["bom-ref"]])
    assert libraries["numpy"]["bom-ref"] in graph[sklearn]  # scikit-learn requires numpy


def test_the_model_card_carries_the_audits_numbers(bom: dict[str, Any], audited: tuple[Path, Report]) -> None:
    _, report = audited
    performance = report.result("performance")
    assert performance is not None
    accuracy = performance.metric("accuracy")
    assert accuracy is not None
    [card_accuracy] = _metrics(bom, "performance.accuracy")
    assert float(card_accuracy["value"]) == accuracy.value
    assert float(card_accuracy["confidenceInterval"]["lowerBound"]) == accuracy.ci_low
    assert float(card_accuracy["confidenceInterval"]["upperBound"]) == accuracy.ci_high
    assert card_accuracy["slice"] == f"n={accuracy.n}"
    robustness = report.result("robustness")
    assert robustness is not None
    per_eps = {
        m.name.split("@")[1]: m.value for m in robustness.metrics if m.name.startswith("robust_accuracy@")
    }
    assert per_eps
    card_eps = {m["slice"].split(",")[0].removeprefix("epsilon="): float(m["value"]) for m in _metrics(bom, "robustness.robust_accuracy") if "epsilon=" in m["slice"]}  # fmt: skip
    assert card_eps == per_eps
    privacy = report.result("privacy")
    assert privacy is not None and privacy.metric("auc") is not None
    [card_auc] = _metrics(bom, "privacy.auc")
    assert float(card_auc["value"]) == privacy.metric("auc").value  # type: ignore[union-attr]


def test_the_considerations_hold_the_verdict_the_failing_threshold_and_the_privacy_risk(
    bom: dict[str, Any],
) -> None:
    considerations = _model(bom)["modelCard"]["considerations"]
    limitations = considerations["technicalLimitations"]
    assert limitations[0].startswith("Garrison audit verdict: failed")
    assert any("GAR-POL-001" in line and "performance.accuracy" in line for line in limitations)
    assert any(r["name"].startswith("Membership inference") for r in considerations["ethicalConsiderations"])
    assert any("under evasion attacks" in t for t in considerations["performanceTradeoffs"])


def test_errored_and_skipped_checks_are_limitations_and_svg_figures_are_sanitised_graphics(
    report: Report,
) -> None:
    doc = build_ml_bom(report, dependencies=False, serial_number=SERIAL, timestamp=WHEN)
    assert validate_ml_bom(doc) == []
    limitations = _model(doc)["modelCard"]["considerations"]["technicalLimitations"]
    assert any(line.startswith("check privacy errored") for line in limitations)
    assert any(
        line.startswith("check drift was skipped") and "no production data" in line for line in limitations
    )
    assert not [c for c in doc.get("components", []) if c["type"] == "library"]
    [graphic] = _model(doc)["modelCard"]["quantitativeAnalysis"]["graphics"]["collection"]
    svg = base64.b64decode(graphic["image"]["content"]).decode()
    assert "<svg" in svg and "script" not in svg and "onload" not in svg


def test_two_builds_of_the_same_report_are_identical(
    audited: tuple[Path, Report], bom: dict[str, Any]
) -> None:
    again = build_ml_bom(audited[1], serial_number=SERIAL, timestamp=WHEN)
    assert json.dumps(again) == json.dumps(bom)
    fresh = build_ml_bom(audited[1], dependencies=False)
    assert fresh["serialNumber"] != bom["serialNumber"]
    uuid.UUID(fresh["serialNumber"].removeprefix("urn:uuid:"))


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["metadata"]["component"].__setitem__("modelCard", "a card"), "$.metadata.component"),
        (
            lambda d: d["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][
                0
            ].__setitem__("value", 0.5),
            "$.metadata.component",
        ),
        (
            lambda d: d["metadata"]["component"]["modelCard"]["modelParameters"].__setitem__(
                "approach", {"type": "guesswork"}
            ),
            "$.metadata.component",
        ),
        (
            lambda d: d["metadata"]["component"]["modelCard"].__setitem__("owner", "me"),
            "$.metadata.component",
        ),
        (lambda d: d.__setitem__("specVersion", 1.6), "$.specVersion"),
    ],
)
def test_the_validator_reports_an_invalid_document(bom: dict[str, Any], mutate: Any, where: str) -> None:
    broken = copy.deepcopy(bom)
    mutate(broken)
    problems = validate_ml_bom(broken)
    assert problems and all(isinstance(p, str) for p in problems)
    assert any(p.startswith(where) for p in problems)


def test_write_ml_bom_writes_a_valid_file_and_refuses_an_unreadable_document(
    audited: tuple[Path, Report], tmp_path: Path
) -> None:
    out = write_ml_bom(audited[1], tmp_path / "out" / "model.cdx.json", dependencies=False)
    assert validate_ml_bom(json.loads(out.read_text(encoding="utf-8"))) == []
    assert validate_ml_bom({"x": float("nan")})[0].startswith("$: not JSON-serialisable")


# ------------------------------------------------------------------------------------------------ properties

_finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=_finite_or_not,
    low=st.none() | _finite_or_not,
    high=st.none() | _finite_or_not,
    name=st.text(min_size=1, max_size=20),
    check_id=st.sampled_from(["performance", "robustness", "privacy", "a.plugin"]),
)
def test_any_metric_gives_a_valid_bom_and_finite_values_read_back_exactly(
    value: float, low: float | None, high: float | None, name: str, check_id: str
) -> None:
    report = Report(
        run=RunInfo(
            project="p",
            model_name="m",
            started_at="2025-01-01T00:00:00Z",
            finished_at="2025-01-01T00:00:01Z",
            seed=0,
            garrison_version="0.1.0",
            python="3.11",
            platform="linux",
            artifacts=(ArtifactDigest("model", "m.onnx", "0" * 64, 1),),
        ),
        results=(
            CheckResult(check_id, Stage.MODEL, metrics=(Metric(name, value, n=3, ci_low=low, ci_high=high),)),
        ),
    )
    doc = build_ml_bom(report, dependencies=False, serial_number=SERIAL, timestamp=WHEN)
    assert validate_ml_bom(doc) == []
    card = _model(doc)["modelCard"]
    entries = card.get("quantitativeAnalysis", {}).get("performanceMetrics", [])
    assert len(entries) == (1 if math.isfinite(value) and name != "n" and not name.startswith("n_") else 0)
    for entry in entries:
        assert float(entry["value"]) == value


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card=_json)
def test_the_validator_never_raises_on_arbitrary_model_cards(card: Any) -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {"component": {"type": "machine-learning-model", "name": "m", "modelCard": card}},
    }
    problems = validate_ml_bom(doc)
    assert all(isinstance(p, str) for p in problems)
    if not isinstance(card, dict):
        assert problems


# ------------------------------------------------------------------------------------------------ the CLI


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Garrison (the bom command alone)."""

    bom_cmd.register(app)
    return app


def test_the_cli_writes_a_valid_bom_from_a_report_file(audited: tuple[Path, Report], tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    report_file.write_text(to_json(audited[1]), encoding="utf-8")
    out = tmp_path / "model.cdx.json"
    result = CliRunner().invoke(
        _app(), ["bom", "--report", str(report_file), "-o", str(out), "--no-dependencies"]
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert validate_ml_bom(doc) == []
    assert _model(doc)["name"] == "cancer-logreg"
    assert not [c for c in doc["components"] if c["type"] == "library"]


def test_the_cli_takes_the_latest_audit_of_the_configs_model_from_the_store(
    audited: tuple[Path, Report], tmp_path: Path
) -> None:
    work, report = audited
    env = {"GARRISON_DB_URL": f"sqlite:///{tmp_path / 'g.db'}"}
    runner, out = CliRunner(), tmp_path / "bom.cdx.json"
    args = ["bom", "--config", str(work / "garrison.yaml"), "-o", str(out)]
    missing = runner.invoke(_app(), args, env=env)
    assert isinstance(missing.exception, ReportError) and "no audit of model 'cancer-logreg'" in str(
        missing.exception
    )
    assert not out.exists()
    with Store.open(env["GARRISON_DB_URL"]) as store:
        store.record_audit(report)
    result = runner.invoke(_app(), args, env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert validate_ml_bom(doc) == []
    [accuracy] = _metrics(doc, "performance.accuracy")
    assert float(accuracy["value"]) == report.result("performance").metric("accuracy").value  # type: ignore[union-attr]
    assert any(c["type"] == "library" for c in doc["components"])


def test_the_cli_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text("{not json", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(_app(), ["bom", "--report", str(bad), "-o", str(tmp_path / "x.json")])
    assert isinstance(result.exception, ReportError) and "invalid JSON" in str(result.exception)
    both = runner.invoke(_app(), ["bom", "--report", str(bad), "--config", "garrison.yaml"])
    assert both.exit_code == 2 and "not both" in both.output
    assert not (tmp_path / "x.json").exists()
