"""``garrison monitor drift`` on real files: exit codes 0/1/2, JSON output, a saved reference, unlabelled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from garrison.cli import main
from garrison.cli.app import app
from garrison.cli.monitor_cmd import register

if not any(group.name == "monitor" for group in app.registered_groups):  # until app.py registers it
    register(app)


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)

    def frame(n: int, shift: float, p_city: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "income": rng.normal(50 + shift, 10, n).round(2),
                "age": rng.integers(18, 80, n),
                "city": rng.choice(["paris", "lyon", "nice"], n, p=p_city),
                "label": rng.integers(0, 2, n),
            }
        )

    paths = {
        "ref": tmp_path / "ref.csv",
        "same": tmp_path / "same.csv",
        "shifted": tmp_path / "shifted.parquet",
    }
    frame(4000, 0.0, [0.5, 0.3, 0.2]).to_csv(paths["ref"], index=False)
    frame(1500, 0.0, [0.5, 0.3, 0.2]).to_csv(paths["same"], index=False)
    frame(1500, 5.0, [0.1, 0.3, 0.6]).to_parquet(paths["shifted"], index=False)
    return paths


def test_no_drift_exits_0_and_drift_exits_1_naming_the_columns(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "drift", str(tables["ref"]), str(tables["same"])]) == 0
    assert "no column drifted" in capsys.readouterr().out
    out = tmp_path / "report.json"
    code = main(
        [
            "monitor",
            "drift",
            str(tables["ref"]),
            str(tables["shifted"]),
            "--format",
            "json",
            "--output",
            str(out),
        ]
    )
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["drifted_columns"] == ["income", "city"]
    assert payload["schema_version"] == 1
    kinds = {c["name"]: (c["kind"], c["test"]) for c in payload["columns"]}
    assert kinds == {"income": ("numeric", "ks"), "age": ("numeric", "ks"), "city": ("categorical", "chi2")}
    assert json.loads(out.read_text()) == payload  # the label column is not a feature


def test_a_saved_reference_gives_the_same_report(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "reference.npz"
    assert main(["monitor", "drift", str(tables["ref"]), "--fit-only", str(saved)]) == 0
    assert saved.is_file()
    capsys.readouterr()
    args = [str(tables["shifted"]), "--format", "json"]
    assert main(["monitor", "drift", str(saved), *args]) == 1
    from_saved = json.loads(capsys.readouterr().out)
    assert main(["monitor", "drift", str(tables["ref"]), *args]) == 1
    from_data = json.loads(capsys.readouterr().out)
    assert from_saved["columns"] == from_data["columns"]


def test_unlabelled_files_and_a_stricter_alpha(tables: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ref, cur = tmp_path / "ref.npz", tmp_path / "cur.csv"
    np.savez(ref, x=rng.normal(size=(2000, 3)))  # no y
    pd.DataFrame(rng.normal(0.15, 1, size=(2000, 3)), columns=["f0", "f1", "f2"]).to_csv(cur, index=False)
    assert main(["monitor", "drift", str(ref), str(cur)]) == 1
    assert main(["monitor", "drift", str(ref), str(cur), "--alpha", "1e-30"]) == 0


def test_bad_input_exits_2_with_one_line(
    tables: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = str(tables["ref"])
    assert main(["monitor", "drift", ref, str(tmp_path / "absent.csv")]) == 2
    assert "file not found" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    pd.DataFrame({"income": [1.0, 2.0], "label": [0, 1]}).to_csv(other, index=False)
    assert main(["monitor", "drift", ref, str(other)]) == 2
    assert "missing from the current data" in capsys.readouterr().err
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["monitor", "drift", str(fake), ref]) == 2
    assert main(["monitor", "drift", ref]) == 2  # neither CURRENT nor --fit-only
    assert main(["monitor", "drift", ref, ref, "--format", "xml"]) == 2
    assert main(["monitor", "drift", ref, ref, "--alpha", "2"]) == 2


def test_register_adds_a_monitor_group_with_drift(tables: dict[str, Path]) -> None:
    own = typer.Typer()

    @own.callback()
    def _root() -> None:
        """A bare app."""

    register(own)
    result = CliRunner().invoke(own, ["monitor", "drift", str(tables["ref"]), str(tables["same"])])
    assert result.exit_code == 0, result.output
    assert "no column drifted" in result.output
