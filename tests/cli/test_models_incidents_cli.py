"""`garrison models` and `garrison incidents` on a real SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from garrison.cli.app import app
from garrison.core import Severity
from garrison.store import Store


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"GARRISON_DB_URL": f"sqlite:///{tmp_path / 'g.db'}"}


def test_an_unaudited_version_is_registered_but_refused_promotion(
    tmp_path: Path, env: dict[str, str]
) -> None:
    model = tmp_path / "m.skops"
    model.write_bytes(b"weights")
    runner = CliRunner()
    assert runner.invoke(app, ["models", "register", "credit", "1", str(model)], env=env).exit_code == 0
    refused = runner.invoke(app, ["models", "promote", "credit", "1"], env=env)
    assert refused.exit_code == 1 and "it has no audit" in refused.output
    listed = runner.invoke(app, ["models", "list", "credit", "--json"], env=env)
    assert '"problems": [\n      "it has no audit"' in listed.output


def test_incidents_are_listed_shown_and_resolved(env: dict[str, str]) -> None:
    with Store.open(env["GARRISON_DB_URL"]) as store:
        incident = store.open_incident(
            title="probing: key k1", severity=Severity.HIGH, model_name="m", details={}
        )
        store.add_event(
            kind="incident.action", source="pb", payload={"incident": incident, "result": "blocked k1"}
        )
    runner = CliRunner()
    assert "probing: key k1" in runner.invoke(app, ["incidents", "list", "--json"], env=env).output
    shown = runner.invoke(app, ["incidents", "show", str(incident)], env=env)
    assert shown.exit_code == 0 and "blocked k1" in shown.output
    assert (
        runner.invoke(
            app, ["incidents", "resolve", str(incident), "--note", "key revoked"], env=env
        ).exit_code
        == 0
    )
    with Store.open(env["GARRISON_DB_URL"]) as store:
        record = store.list_incidents()[0]
        assert record.status == "resolved" and record.history[-1].note == "key revoked"
    assert runner.invoke(app, ["incidents", "show", "999"], env=env).exit_code == 2
