from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from garrison.cli import main

GARRISON = str(Path(sys.executable).parent / "garrison")


def test_help_is_light_and_lists_commands() -> None:
    out = subprocess.run([GARRISON, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("audit", "report", "init", "demo", "findings", "rules", "checks"):
        assert command in out
    probe = "import sys, garrison.cli; print(sorted(m for m in ('numpy','pandas','sklearn','torch') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_init_writes_valid_config_and_refuses_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "garrison.yaml"
    args = ["init", "--model", "m.onnx", "--test", "t.csv", "--label", "y", "--output", str(target)]
    assert main(args) == 0
    from garrison.core import load_config

    cfg = load_config(target)
    assert cfg.model.path == "m.onnx" and cfg.data.test is not None and cfg.data.test.label == "y"
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err


def test_bad_config_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "garrison.yaml"
    cfg.write_text("model:\n  path: m.skops\n  retries: lots\n")
    assert main(["audit", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "garrison.yaml:3" in err[0] and "model.retries" in err[0] and "Traceback" not in err[0]


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "garrison.yaml"
    cfg.write_text("model:\n  path: m.skops\n  bogus: 1\n")
    assert main(["--debug", "audit", "--config", str(cfg)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_audit_end_to_end(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "--config", "garrison.yaml", "--format", "json", "--output", "r.json"])
    assert code in (0, 1)
    out = project / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "junit.xml",
        "report.json",
        "report.sarif",
        "summary.md",
    ]
    report = json.loads((project / "r.json").read_text())
    assert report["decision"]["exit_code"] == code
    assert {r["check_id"] for r in report["results"]} >= {"fuzzing", "performance"}
    # provenance is skipped: the demo data has no manifest
    assert {r["check_id"]: r["status"] for r in report["results"] if r["status"] != "ok"} == {
        "provenance": "skipped"
    }
    roles = {a["role"] for a in report["run"]["artifacts"]}
    assert roles == {"model", "train", "test"}
    # re-render and re-evaluate without rerunning checks
    assert main(["report", str(out / "report.json"), "--format", "markdown", "--output", "s.md"]) == code
    assert "credit" in (project / "s.md").read_text() or "cli-test" in (project / "s.md").read_text()
    strict = project / "strict.yaml"
    strict.write_text((project / "garrison.yaml").read_text().replace("min: 0.5", "min: 0.999"))
    assert (
        main(
            ["report", str(out / "report.json"), "--config", str(strict), "--format", "json", "-o", "x.json"]
        )
        == 1
    )
    # baseline: nothing is new against itself
    assert main(["audit", "--config", str(strict), "--baseline", str(out / "report.json"), "--no-store"]) in (
        0,
        1,
    )
    # the first audit was recorded in the store (the --no-store one was not)
    capsys.readouterr()
    assert main(["findings", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {row["fingerprint"] for row in listed} == {
        f["fingerprint"] for f in report["decision"]["findings"]
    }


def test_triage_flow(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strict = project / "garrison.yaml"
    strict.write_text(strict.read_text().replace("min: 0.5", "min: 0.999"))
    assert main(["audit", "--config", "garrison.yaml"]) == 1
    capsys.readouterr()
    assert main(["findings", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    breach = next(r for r in rows if r["rule_id"] == "GAR-POL-001")
    fp = breach["fingerprint"]
    assert (
        main(
            [
                "findings",
                "triage",
                fp[:10],
                "--status",
                "accepted-risk",
                "--reason",
                "pilot only",
                "--owner",
                "alice",
                "--expires",
                "2099-01-01",
            ]
        )
        == 0
    )
    triage_text = (project / ".garrison" / "triage.yaml").read_text()
    assert fp in triage_text and "pilot only" in triage_text
    # accepted risk no longer fails the gate; re-evaluation from the report agrees
    assert main(["audit", "--config", "garrison.yaml"]) == 0
    assert (
        main(["report", "out/report.json", "--triage", ".garrison/triage.yaml", "-f", "json", "-o", "r.json"])
        == 0
    )
    assert (
        main(["findings", "triage", fp[:10], "--status", "accepted-risk"]) == 2
    )  # reason/owner/expiry required


def test_model_data_mismatch_is_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    test = pd.read_csv(project / "test.csv")
    test["label"] = test["label"] + 5  # labels the model has never seen
    test.to_csv(project / "test.csv", index=False)
    assert main(["audit", "--config", "garrison.yaml", "--no-store"]) == 2
    err = capsys.readouterr().err
    assert "test.csv" in err and "label" in err
    assert not (project / "out").exists()  # nothing half written


def test_empty_dataset_is_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "test.csv").write_text("income,age,region,label\n")
    assert main(["audit", "--config", "garrison.yaml", "--no-store"]) == 2
    assert "test.csv" in capsys.readouterr().err


def test_rules_and_checks_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    assert "GAR-FZ-001" in capsys.readouterr().out
    assert main(["checks"]) == 0
    out = capsys.readouterr().out
    assert "fuzzing" in out and "performance" in out


def test_data_missing_a_model_feature_is_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    pd.read_csv(project / "test.csv").drop(columns=["age"]).to_csv(project / "test.csv", index=False)
    cfg = project / "garrison.yaml"
    cfg.write_text(cfg.read_text().replace("  train: {path: train.csv, label: label}\n", ""))
    assert main(["audit", "--config", "garrison.yaml", "--no-store"]) == 2
    err = capsys.readouterr().err
    assert "test.csv" in err and "age" in err


def test_ci_mode_refuses_factory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    np.savez(tmp_path / "test.npz", x=np.zeros((4, 3), dtype=np.float32), y=np.array([0, 1, 0, 1]))
    cfg = tmp_path / "garrison.yaml"
    cfg.write_text('model: {factory: "os:getcwd"}\ndata: {test: {path: test.npz}}\n')
    pytest.importorskip("torch")
    assert main(["audit", "--config", str(cfg), "--ci", "--no-store"]) == 2
    assert "--allow-factory" in capsys.readouterr().err


def test_findings_show_prints_history(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--config", "garrison.yaml"]) in (0, 1)
    capsys.readouterr()
    assert main(["findings", "list", "--json"]) == 0
    fp = json.loads(capsys.readouterr().out)[0]["fingerprint"]
    assert (
        main(["findings", "triage", fp, "--status", "false-positive", "--reason", "probe is not reachable"])
        == 0
    )
    capsys.readouterr()
    assert main(["findings", "show", fp[:8]]) == 0
    out = capsys.readouterr().out
    assert f"fingerprint: {fp}" in out
    assert "(none) -> false-positive: probe is not reachable" in out
    assert main(["findings", "show", fp[:8], "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fingerprint"] == fp and shown["history"][0]["new_status"] == "false-positive"
    assert main(["findings", "show", "zzzzzzzz"]) == 2


def test_sarif_paths_are_relative_to_the_repository_root(project: Path) -> None:
    import shutil

    subprocess.run(["git", "init", "-q", str(project)], check=True)
    sub = project / "ml"
    sub.mkdir()
    for name in ("model.skops", "train.csv", "test.csv", "garrison.yaml"):
        shutil.move(project / name, sub / name)
    code = main(["audit", "-c", "ml/garrison.yaml", "-f", "sarif", "-o", "scan.sarif", "--no-store"])
    assert code in (0, 1)
    run = json.loads((project / "scan.sarif").read_text())["runs"][0]
    uris = {a["location"]["uri"] for a in run["artifacts"]}
    assert "ml/model.skops" in uris
    assert all(
        a["location"].get("uriBaseId") == "%SRCROOT%" for a in run["artifacts"] if "parentIndex" not in a
    )
    assert (sub / "out" / "report.sarif").is_file()  # report.output is relative to the config file


def test_joblib_model_is_scanned_then_audited(project: Path) -> None:
    import joblib
    import skops.io

    pipe = skops.io.load(
        project / "model.skops", trusted=skops.io.get_untrusted_types(file=project / "model.skops")
    )
    joblib.dump(pipe, project / "model.joblib", compress=3)
    cfg = project / "garrison.yaml"
    cfg.write_text(cfg.read_text().replace("path: model.skops", "path: model.joblib"))
    assert main(["audit", "--config", "garrison.yaml", "-f", "json", "-o", "r.json", "--no-store"]) in (0, 1)
    report = json.loads((project / "r.json").read_text())
    status = {r["check_id"]: r["status"] for r in report["results"]}
    assert status == {
        "anonymity": "ok",
        "explain": "ok",
        "artifact": "ok",
        "fuzzing": "ok",
        "performance": "ok",
        "privacy": "ok",
        "provenance": "skipped",  # no dataset manifest in the project
        "robustness": "ok",
        "training": "ok",
    }
    assert not any(f["rule_id"].startswith("GAR-SC") for f in report["decision"]["findings"])


def test_malicious_pickle_model_fails_the_audit_without_loading(project: Path) -> None:
    from tests.supplychain import pickles

    marker = project / "pwned"
    (project / "model.pkl").write_bytes(pickles.marker_payload(str(marker)))
    cfg = project / "garrison.yaml"
    cfg.write_text(cfg.read_text().replace("path: model.skops", "path: model.pkl"))
    assert main(["audit", "--config", "garrison.yaml", "-f", "json", "-o", "r.json", "--no-store"]) == 1
    assert not marker.exists()
    report = json.loads((project / "r.json").read_text())
    results = {r["check_id"]: r for r in report["results"]}
    assert results["artifact"]["status"] == "ok"
    assert any(f["rule_id"] == "GAR-SC-001" for f in results["artifact"]["findings"])
    assert results["performance"]["status"] == "skipped"
    assert results["performance"]["reason"].startswith("model not loaded")
