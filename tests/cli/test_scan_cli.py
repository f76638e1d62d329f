from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from garrison.cli import main

# GLOBAL os.getcwd, empty tuple, REDUCE: loading it would call os.getcwd() (a harmless payload)
GETCWD_PICKLE = b"\x80\x02cos\ngetcwd\n)R."


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    benign = folder / "benign.pkl"
    benign.write_bytes(pickle.dumps(model, protocol=4))
    malicious = folder / "evil.pkl"
    malicious.write_bytes(GETCWD_PICKLE)
    truncated = folder / "truncated.pkl"
    truncated.write_bytes(pickle.dumps(model, protocol=4)[:60])
    code = folder / "code"
    code.mkdir()
    (code / "train.py").write_text("import torch\nmodel = torch.load('m.pt', weights_only=False)\n")
    keys = folder / "keys"
    assert main(["keygen", str(keys / "k.pem"), str(keys / "k.pub")]) == 0
    return {
        "benign": benign,
        "malicious": malicious,
        "truncated": truncated,
        "code": code,
        "private": keys / "k.pem",
        "public": keys / "k.pub",
    }


def test_benign_sklearn_pickle_is_clean(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files["benign"])]) == 0
    out = capsys.readouterr().out
    assert "1 files scanned, 0 findings" in out


def test_reduce_of_os_getcwd_fails(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files["malicious"])]) == 1
    out = capsys.readouterr().out
    assert "GAR-SC-001" in out and "critical" in out and str(files["malicious"]) in out


def test_fail_on_critical_still_fails_and_above_critical_cannot_be_asked(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", "--fail-on", "critical", str(files["malicious"])]) == 1
    assert main(["scan", "--fail-on", "fatal", str(files["malicious"])]) == 2
    assert "--fail-on" in capsys.readouterr().err


def test_truncated_file_is_incomplete(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files["truncated"])]) == 3
    assert "not fully scanned" in capsys.readouterr().out


def test_incomplete_wins_over_findings(files: dict[str, Path]) -> None:
    assert main(["scan", str(files["malicious"]), str(files["truncated"])]) == 3


def test_missing_path_and_usage_errors_exit_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tmp_path / "absent.pkl")]) == 2
    err = capsys.readouterr().err
    assert "absent.pkl" in err and "Traceback" not in err
    assert main(["scan"]) == 2
    assert main(["scan", "--format", "html", str(files["benign"])]) == 2
    # a missing path wins over findings in the other paths
    assert main(["scan", str(files["malicious"]), str(tmp_path / "absent.pkl")]) == 2


def test_json_is_the_canonical_report(files: dict[str, Path], tmp_path: Path) -> None:
    from garrison.report import validate_report

    out = tmp_path / "scan.json"
    code = main(
        ["scan", str(files["malicious"]), str(files["benign"]), "--format", "json", "--output", str(out)]
    )
    assert code == 1
    data = json.loads(out.read_text())
    validate_report(data)
    assert data["decision"]["exit_code"] == 1
    (result,) = data["results"]
    assert result["status"] == "ok"
    metrics = {m["name"]: m["value"] for m in result["metrics"]}
    assert metrics["files_scanned"] == 2 and metrics["incomplete"] == 0
    assert {f["rule_id"] for f in result["findings"]} == {"GAR-SC-001"}
    assert result["findings"][0]["location"] == str(files["malicious"])


def test_sarif_output(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(files["malicious"]), "--format", "sarif"]) == 1
    log = json.loads(capsys.readouterr().out)
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["GAR-SC-001"]
    assert results[0]["level"] == "error"


def test_code_scan_alone_and_with_models(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--code", str(files["code"])]) == 1
    out = capsys.readouterr().out
    assert "GAR-CS-001" in out and "train.py:2" in out
    assert main(["scan", str(files["benign"]), "--code", str(files["code"]), "--fail-on", "critical"]) == 0


def test_require_signature(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "signed.pkl"
    model.write_bytes(files["benign"].read_bytes())
    args = ["scan", str(model), "--require-signature", str(files["public"])]
    assert main(args) == 1  # no signature yet: a critical finding
    assert "GAR-SC-011" in capsys.readouterr().out
    assert main(["sign", str(model), "--key", str(files["private"])]) == 0
    assert model.with_name("signed.pkl.sig").is_file()
    assert main(args) == 0
    capsys.readouterr()
    model.write_bytes(model.read_bytes() + b"\x00")
    assert main([*args, "--format", "json"]) == 1
    results = json.loads(capsys.readouterr().out)["results"]
    (signature,) = [f for f in results[0]["findings"] if f["rule_id"] == "GAR-SC-011"]
    assert signature["severity"] == "critical" and signature["location"] == str(model)
    reason = next(e["value"] for e in signature["evidence"] if e["key"] == "reason")
    assert "changed after signing" in reason


def test_sign_and_verify_commands(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x01\x02\x03")
    assert main(["verify", str(folder), "--key", str(files["public"])]) == 1
    assert "NOT VERIFIED" in capsys.readouterr().err
    assert main(["sign", str(folder), "--key", str(files["private"])]) == 0
    assert (folder / "model.sig").is_file()
    assert main(["verify", str(folder), "--key", str(files["public"])]) == 0
    (folder / "weights.bin").write_bytes(b"\x01\x02\x04")
    assert main(["verify", str(folder), "--key", str(files["public"])]) == 1
    assert main(["verify", str(tmp_path / "absent"), "--key", str(files["public"])]) == 2
    # the private key is never accepted where the public one is expected, and vice versa
    assert main(["sign", str(folder), "--key", str(files["public"])]) == 2


def test_keygen_refuses_overwrite(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen", str(files["private"]), str(files["public"])]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_limits_and_allowlist_options_are_validated(files: dict[str, Path]) -> None:
    assert main(["scan", str(files["benign"]), "--max-decompression-ratio", "-1"]) == 2
    assert main(["scan", str(files["benign"]), "--timeout", "0"]) == 2
    assert main(["scan", str(files["benign"]), "--timeout", "30", "--max-decompression-ratio", "50"]) == 0


UNKNOWN_PICKLE = b"\x80\x02cmylab.layers\nGatedUnit\n)R."


def test_allowlist_from_option_and_config(tmp_path: Path) -> None:
    model = tmp_path / "custom.pkl"
    model.write_bytes(UNKNOWN_PICKLE)
    assert main(["scan", str(model)]) == 1  # an unknown global is high
    assert main(["scan", str(model), "--allowlist", "mylab.layers.GatedUnit"]) == 0
    assert (
        main(["scan", str(model), "--allowlist", "mylab.layers"]) == 1
    )  # a module is not an entry for its members
    config = tmp_path / "garrison.yaml"
    config.write_text(
        "model: {path: custom.pkl}\nscan:\n  allowlist: [mylab.layers.GatedUnit]\n  limits: {timeout_s: 30}\n"
    )
    assert main(["scan", str(model), "--config", str(config)]) == 0
    config.write_text("model: {path: custom.pkl}\nscan:\n  limits: {timeout_s: -1}\n")
    assert main(["scan", str(model), "--config", str(config)]) == 2
