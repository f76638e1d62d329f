from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from garrison.cli.manifest_cmd import register
from garrison.core.errors import DataError, InputError
from garrison.supplychain.signing import generate_keypair


@pytest.fixture
def app() -> typer.Typer:
    # a stand-in for `garrison protect`; garrison.cli.app.main maps an InputError escaping a command to exit 2
    protect = typer.Typer(name="protect", no_args_is_help=True)
    register(protect)
    return protect


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "train.csv").write_text("a,label\n1,0\n2,1\n")
    (tmp_path / "data" / "images" / "x.bin").write_bytes(b"\x00\x01\x02")
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    generate_keypair(tmp_path / "o.pem", tmp_path / "o.pub")
    return tmp_path


def test_manifest_then_verify_exit_codes(app: typer.Typer, work: Path) -> None:
    runner = CliRunner()
    data = str(work / "data")
    made = runner.invoke(app, ["manifest", data, "--private-key", str(work / "k.pem")])
    assert made.exit_code == 0, made.output
    assert (work / "data" / "garrison-manifest.json.sig").is_file()

    ok = runner.invoke(app, ["verify-manifest", data, "--public-key", str(work / "k.pub")])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("signature: verified")

    wrong = runner.invoke(app, ["verify-manifest", data, "--public-key", str(work / "o.pub")])
    assert wrong.exit_code == 1
    assert "signature: invalid" in wrong.stdout

    (work / "data" / "train.csv").write_text("a,label\n1,1\n2,1\n")
    (work / "data" / "images" / "x.bin").rename(work / "data" / "images" / "y.bin")
    changed = runner.invoke(app, ["verify-manifest", data, "--public-key", str(work / "k.pub")])
    assert changed.exit_code == 1
    lines = changed.stdout.splitlines()
    assert lines[1:] == ["changed   train.csv", "appeared  images/y.bin", "vanished  images/x.bin"]


def test_unsigned_manifest_and_custom_paths(app: typer.Typer, work: Path) -> None:
    runner = CliRunner()
    data, out = str(work / "data"), str(work / "m.json")
    assert runner.invoke(app, ["manifest", data, "--output", out]).exit_code == 0
    assert [f["path"] for f in json.loads((work / "m.json").read_text())["files"]] == [
        "images/x.bin",
        "train.csv",
    ]
    checked = runner.invoke(app, ["verify-manifest", data, "--manifest", out])
    assert checked.exit_code == 0
    assert "signature: unchecked" in checked.stdout
    needs_sig = runner.invoke(
        app, ["verify-manifest", data, "--manifest", out, "--public-key", str(work / "k.pub")]
    )
    assert needs_sig.exit_code == 1
    assert "signature: missing" in needs_sig.stdout


def test_bad_input_raises_input_errors(app: typer.Typer, work: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["verify-manifest", str(work / "data")])
    assert isinstance(missing.exception, InputError)
    assert "no dataset manifest" in str(missing.exception)
    nodir = runner.invoke(app, ["manifest", str(work / "absent")])
    assert isinstance(nodir.exception, InputError)
    (work / "data" / "garrison-manifest.json").write_bytes(b"\xff\xfe garbage")
    broken = runner.invoke(app, ["verify-manifest", str(work / "data")])
    assert isinstance(broken.exception, DataError)


def test_control_characters_in_file_names_are_escaped(app: typer.Typer, work: Path) -> None:
    runner = CliRunner()
    data = str(work / "data")
    assert runner.invoke(app, ["manifest", data]).exit_code == 0
    (work / "data" / "evil\nchanged   train.csv").write_text("x")
    result = runner.invoke(app, ["verify-manifest", data])
    assert result.exit_code == 1
    assert "appeared  evil\\nchanged   train.csv" in result.stdout.splitlines()
