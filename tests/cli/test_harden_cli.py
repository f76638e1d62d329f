from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from garrison.cli import main

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # tiny models run as fast on one thread, and OpenMP's two threads crawl when other processes share the cores
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


MODEL_CODE = """\
import torch.nn as nn


def build():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)
    )
"""


@pytest.fixture
def digits_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A factory module, weights of a plainly trained CNN, digits train/test .npz files and a garrison.yaml."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    (tmp_path / "harden_digits_model.py").write_text(MODEL_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from harden_digits_model import build

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    # small files keep the end-to-end run quick: 600 training and 300 test samples
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target, train_size=600, test_size=300, random_state=0, stratify=d.target
    )
    np.savez(tmp_path / "train.npz", x=x_tr, y=y_tr)
    np.savez(tmp_path / "test.npz", x=x_te, y=y_te)
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr.astype(np.int64))
    for _ in range(6):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[i : i + 64]), yt[i : i + 64]).backward()
            opt.step()
    save_file(model.state_dict(), str(tmp_path / "weights.safetensors"))
    (tmp_path / "garrison.yaml").write_text(
        """\
project: harden-test
model: {name: digits, factory: "harden_digits_model:build", weights: weights.safetensors}
data:
  train: {path: train.npz}
  test: {path: test.npz}
report: {output: out}
"""
    )
    return tmp_path


def test_harden_writes_weights_that_load_back_and_a_before_after_report(
    digits_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harden_digits_model import build

    from garrison.adapters.torch_model import load_weights

    out = digits_project / "hardened.safetensors"
    args = ["harden", "--config", str(digits_project / "garrison.yaml"), "--eps", "0.15", "--epochs", "6"]
    code = main(
        [
            *args,
            "--lr",
            "0.01",
            "--batch-size",
            "64",
            "--output",
            str(out),
            "--eval-samples",
            "200",
            "--attack",
            "pgd",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "robust accuracy" in capsys.readouterr().out

    report = json.loads((digits_project / "out" / "harden.json").read_text())
    assert (digits_project / "out" / "harden.txt").read_text().startswith("garrison harden: digits")
    assert report["schema_version"] == 1 and report["method"] == "pgd-at" and report["eps"] == 0.15
    assert report["evaluation"]["n"] == 200
    assert report["training"]["epochs_run"] == 6 and len(report["training"]["history"]) == 6
    assert report["after"]["robust_acc"] > report["before"]["robust_acc"] + 0.1
    assert report["before"]["clean_acc"] > 0.85

    module = load_weights(build(), out)  # garrison's own strict loader accepts the new weights
    original = load_weights(build(), digits_project / "weights.safetensors")
    assert not torch.equal(module[0].weight, original[0].weight)
    import hashlib

    assert report["weights"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_harden_default_output_sits_beside_the_weights_and_trades_runs(
    digits_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(digits_project / "garrison.yaml")
    report_dir = digits_project / "rep"
    args = ["harden", "-c", config, "--eps", "0.1", "--method", "trades", "--epochs", "1"]
    assert main([*args, "--eval-samples", "30", "--report", str(report_dir)]) == 0, capsys.readouterr().err
    assert (digits_project / "weights-hardened.safetensors").is_file()
    report = json.loads((report_dir / "harden.json").read_text())
    assert report["method"] == "trades" and report["evaluation"]["attack"].startswith("the default ensemble")
    for row in (report["before"], report["after"]):  # the ensemble evaluation, with its masking diagnostics
        assert isinstance(row["gradient_masking_suspected"], bool)
        assert 0.0 <= row["robust_acc"] <= row["clean_acc"]


def test_harden_refuses_a_non_torch_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), y=np.array([0, 1, 0, 1]))
    (tmp_path / "garrison.yaml").write_text(
        "model: {path: model.onnx, format: onnx}\ndata:\n  train: {path: d.npz}\n  test: {path: d.npz}\n"
    )
    assert main(["harden", "--config", str(tmp_path / "garrison.yaml"), "--eps", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "garrison harden needs a torch model (model.factory + weights)" in err
    assert len(err.strip().splitlines()) == 1


def test_harden_refuses_bad_options_and_missing_data(
    digits_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = digits_project / "garrison.yaml"
    assert main(["harden", "--config", str(config), "--eps", "0.1", "--method", "fgsm"]) == 2
    assert main(["harden", "--config", str(config), "--eps", "-1"]) == 2
    assert main(["harden", "--config", str(config), "--eps", "0.1", "--attack", "fab"]) == 2
    config.write_text('model: {factory: "harden_digits_model:build"}\ndata:\n  test: {path: test.npz}\n')
    assert main(["harden", "--config", str(config), "--eps", "0.1"]) == 2
    assert "garrison harden needs `data.train`" in capsys.readouterr().err
