"""``garrison data scan``: findings, JSON evidence, --write-clean with a manifest, config mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from garrison.cli import main
from garrison.supplychain.manifest import verify_manifest


@pytest.fixture
def digits_files(tmp_path: Path) -> tuple[Path, Path]:
    d = load_digits()
    x, y = d.data / 16.0, d.target.copy()
    x[5] = x[6]
    y[5] = (y[6] + 1) % 10  # identical image, another label
    train, test = tmp_path / "train.npz", tmp_path / "test.npz"
    np.savez(train, x=x[:1400], y=y[:1400])
    np.savez(test, x=np.vstack([x[1400:], x[20:23]]), y=np.concatenate([y[1400:], y[20:23]]))
    return train, test


def _findings(out: str) -> dict[str, dict[str, object]]:
    payload = json.loads(out)
    return {
        f["rule_id"]: {e["key"]: e["value"] for e in f["evidence"]} | {"_severity": f["severity"]}
        for f in payload["findings"]
    }


def test_scan_reports_conflicts_leakage_and_label_issues_as_json(
    digits_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = digits_files
    code = main(["data", "scan", "--data", str(train), "--test", str(test), "--format", "json"])
    assert code == 0  # medium findings only; --fail-on high
    found = _findings(capsys.readouterr().out)
    assert found["GAR-DI-003"]["indices"] == [5, 6]
    assert found["GAR-DI-002"]["test_indices"] == [397, 398, 399]
    assert found["GAR-DI-001"]["indices"] == [6]
    assert 5 in found["GAR-DI-005"]["indices"]
    assert main(["data", "scan", "--data", str(train), "--test", str(test), "--fail-on", "medium"]) == 1


def test_write_clean_drops_the_named_rows_and_writes_a_verifiable_manifest(
    digits_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, _ = digits_files
    out = tmp_path / "clean"
    args = ["data", "scan", "--data", str(train), "--no-label-issues", "--write-clean", str(out)]
    assert main([*args, "--drop", "conflicts,duplicates", "--format", "json"]) == 0
    clean = json.loads(capsys.readouterr().out)["clean"]
    assert clean["removed"] == [5, 6]
    with np.load(out / "train.npz") as arrays:
        assert arrays["x"].shape == (1398, 64)
        original = np.load(train)
        assert np.array_equal(arrays["y"], np.delete(original["y"], [5, 6]))
    diff = verify_manifest(out)
    assert not (diff.changed or diff.appeared or diff.vanished)
    assert sorted(e for e in diff.actual) == ["removed.json", "train.npz"]
    assert main(args) == 2  # not empty: refuses without --force
    assert main([*args, "--force", "--drop", "nonsense"]) == 2


def test_tabular_csv_keeps_its_columns_when_cleaned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 200).round(2), "region": rng.choice(["n", "s"], 200)})
    frame["label"] = (frame["income"] > 50).astype(int)
    frame.loc[7] = frame.loc[3]
    frame.loc[7, "label"] = 1 - frame.loc[3, "label"]
    frame.to_csv(tmp_path / "train.csv", index=False)
    args = ["data", "scan", "--data", str(tmp_path / "train.csv"), "--label", "label", "--format", "json"]
    assert main([*args, "--write-clean", str(tmp_path / "clean"), "--drop", "conflicts"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert _findings(json.dumps(payload))["GAR-DI-003"]["indices"] == [3, 7]
    cleaned = pd.read_csv(tmp_path / "clean" / "train.csv")
    assert list(cleaned.columns) == ["income", "region", "label"]
    assert len(cleaned) == 198


def test_unlabelled_data_and_bad_options_exit_2(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", x=np.zeros((10, 3)))
    assert main(["data", "scan", "--data", str(tmp_path / "x.npz")]) == 2
    assert main(["data", "scan", "--data", str(tmp_path / "x.npz"), "--format", "xml"]) == 2
    assert main(["data", "scan"]) == 2


def test_config_mode_uses_the_projects_model_and_data(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "scan", "--config", "garrison.yaml", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["status"] == "ok"
    assert payload["metrics"]["leaked_test_rows"] == 0
    assert payload["tables"]["training-classes"][0]["rows"] > 0


MODEL_CODE = """\
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )
"""


@pytest.mark.torch
def test_poisoned_class_found_through_the_configs_torch_model_and_written_out_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from garrison.poisoning import poison

    torch.set_num_threads(1)
    (tmp_path / "data_scan_model.py").write_text(MODEL_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from data_scan_model import build

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    poisoned = poison(x[:1200], y[:1200], kind="badnets", rate=120 / np.sum(y[:1200] != 0), target=0, size=2)
    np.savez(tmp_path / "train.npz", x=poisoned.x, y=poisoned.y)
    np.savez(tmp_path / "test.npz", x=x[1200:], y=y[1200:])
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(poisoned.x), torch.from_numpy(poisoned.y)
    gen = torch.Generator().manual_seed(0)
    for _ in range(15):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    (tmp_path / "garrison.yaml").write_text(
        "project: scan\n"
        'model: {name: digits, factory: "data_scan_model:build", weights: weights.safetensors}\n'
        "data: {train: {path: train.npz}, test: {path: test.npz}}\n"
    )
    args = ["data", "scan", "--config", "garrison.yaml", "--no-label-issues", "--format", "json"]
    assert main([*args, "--write-clean", "clean"]) == 1  # a poisoned class is a high finding
    payload = json.loads(capsys.readouterr().out)
    finding = _findings(json.dumps(payload))["GAR-BD-001"]
    truth = set(poisoned.indices.tolist())
    found = set(finding["indices"])
    assert len(found & truth) >= 0.9 * len(truth)
    assert len(found & truth) >= 0.8 * len(found)
    assert payload["clean"]["removed"] == sorted(found)
    with np.load(tmp_path / "clean" / "train.npz") as arrays:
        assert len(arrays["y"]) == 1200 - len(found)
