"""``garrison train`` through a Typer app built here (``train_cmd.register(app)``), and through ``garrison.cli.main``
once the command is registered there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from garrison.cli import train_cmd  # noqa: E402
from garrison.core.errors import ConfigError  # noqa: E402
from garrison.privacy import IncompatibleModuleError  # noqa: E402

MODEL_CODE = """\
import torch.nn as nn


def build():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def build_bn():
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:  # a group, so the command keeps its name as in `garrison train`
        pass

    train_cmd.register(app)
    return app


@pytest.fixture
def digits_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A factory module, freshly initialised weights, flat digits train/test .npz files and a garrison.yaml."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    (tmp_path / "dp_train_digits_model.py").write_text(MODEL_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from dp_train_digits_model import build, build_bn

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target, train_size=1000, test_size=300, random_state=0, stratify=d.target
    )
    np.savez(tmp_path / "train.npz", x=x_tr, y=y_tr)
    np.savez(tmp_path / "test.npz", x=x_te, y=y_te)
    torch.manual_seed(0)
    save_file(build().state_dict(), str(tmp_path / "weights.safetensors"))
    save_file(build_bn().state_dict(), str(tmp_path / "weights_bn.safetensors"))
    config = """\
project: dp-train-test
model: {{name: digits, factory: "dp_train_digits_model:{factory}", weights: {weights}}}
data:
  train: {{path: train.npz}}
  test: {{path: test.npz}}
"""
    (tmp_path / "garrison.yaml").write_text(config.format(factory="build", weights="weights.safetensors"))
    (tmp_path / "bn.yaml").write_text(config.format(factory="build_bn", weights="weights_bn.safetensors"))
    return tmp_path


def test_train_dp_writes_weights_and_the_ledger(app: typer.Typer, digits_project: Path) -> None:
    from dp_train_digits_model import build

    from garrison.adapters.torch_model import load_weights

    out = digits_project / "private.safetensors"
    args = ["train", "-c", str(digits_project / "garrison.yaml"), "--dp", "--epsilon", "2", "--epochs", "4"]
    result = CliRunner().invoke(app, [*args, "--lr", "0.5", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "privacy ledger" in result.output and "noise multiplier" in result.output

    doc = json.loads((digits_project / "private.json").read_text())
    ledger = doc["privacy"]
    assert doc["schema_version"] == 1 and doc["dp"] is True
    assert ledger["delta"] == 1e-4  # 1000 training samples: strictly below 1/n
    assert ledger["target_epsilon"] == 2.0 and 2.0 - 0.011 <= ledger["epsilon"] <= 2.0
    assert ledger["steps"] == 4 * 16 and ledger["sample_rate"] == pytest.approx(1 / 16)
    assert ledger["noise_multiplier"] > 0.5 and ledger["max_grad_norm"] == 1.0
    assert doc["metrics"][0]["name"] == "epsilon" and doc["metrics"][0]["value"] == ledger["epsilon"]
    assert doc["evaluation"]["accuracy"] > 0.5  # ten classes: chance is 0.1

    module = load_weights(build(), out)  # the weights load back into the configured factory
    original = load_weights(build(), digits_project / "weights.safetensors")
    assert not torch.equal(module[0].weight, original[0].weight)


def test_train_without_dp_trains_normally(app: typer.Typer, digits_project: Path) -> None:
    args = ["train", "-c", str(digits_project / "garrison.yaml"), "--no-dp", "--epochs", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "privacy ledger" not in result.output
    doc = json.loads((digits_project / "weights-trained.json").read_text())
    assert doc["dp"] is False and doc["privacy"] is None
    assert doc["evaluation"]["accuracy"] > 0.85
    assert (digits_project / "weights-trained.safetensors").is_file()


@pytest.mark.parametrize(
    "extra",
    [
        ["--dp", "--epsilon", "-1"],
        ["--dp", "--epsilon", "0"],
        ["--dp"],  # ε is required
        ["--dp", "--epsilon", "1", "--delta", "1.5"],
        ["--dp", "--epsilon", "1", "--accountant", "moments"],
        ["--epsilon", "1"],  # ε without --dp would silently train without privacy
    ],
)
def test_bad_options_exit_2(app: typer.Typer, digits_project: Path, extra: list[str]) -> None:
    result = CliRunner().invoke(app, ["train", "-c", str(digits_project / "garrison.yaml"), *extra])
    assert result.exit_code == 2, result.output
    assert not list(digits_project.glob("*-dp.*"))


def test_batchnorm_is_refused_so_the_weights_still_fit_the_factory(
    app: typer.Typer, digits_project: Path
) -> None:
    result = CliRunner().invoke(
        app, ["train", "-c", str(digits_project / "bn.yaml"), "--dp", "--epsilon", "1"]
    )
    assert isinstance(result.exception, ConfigError)  # garrison.cli.main maps it to exit 2
    assert isinstance(result.exception.__cause__, IncompatibleModuleError)
    assert result.exception.key == "model.factory"
    assert "1 (BatchNorm1d: BatchNorm cannot support training with differential privacy)" in str(
        result.exception
    )
    assert not list(digits_project.glob("weights_bn-dp*"))


def test_a_model_without_a_factory_is_a_config_error(app: typer.Typer, digits_project: Path) -> None:
    (digits_project / "sk.yaml").write_text(
        "model: {name: m, path: model.skops}\ndata:\n  train: {path: train.npz}\n"
    )
    result = CliRunner().invoke(
        app, ["train", "-c", str(digits_project / "sk.yaml"), "--dp", "--epsilon", "1"]
    )
    assert isinstance(result.exception, ConfigError)
    assert "model" in str(result.exception.key)


def test_main_exit_codes_once_registered(digits_project: Path) -> None:
    from garrison.cli.app import app as garrison_app
    from garrison.cli.app import main

    if not any(c.name == "train" for c in garrison_app.registered_commands):
        pytest.skip("`train` is not registered in garrison.cli.app yet")
    config = str(digits_project / "bn.yaml")
    assert main(["train", "-c", config, "--dp", "--epsilon", "-1"]) == 2
    assert main(["train", "-c", config, "--dp", "--epsilon", "1"]) == 2  # BatchNorm refused
