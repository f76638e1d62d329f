"""``garrison keys`` and ``garrison log``, through Typer's CliRunner, on a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from garrison.cli import keys_cmd, log_cmd
from garrison.core import InputError
from garrison.store import AuditLog, KeyRing, Store, default_url

SECRET_RE = re.compile(r"gk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    keys_cmd.register(app)
    log_cmd.register(app)
    return app


@pytest.fixture
def url(tmp_path: Path) -> str:
    return default_url(tmp_path)


def run(app: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_create_prints_the_secret_once_list_never_shows_it_revoke_stops_it(
    cli: typer.Typer, url: str
) -> None:
    created = run(
        cli, "keys", "create", "billing", "--scope", "predict", "--scope", "explain", "--store", url
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    match = SECRET_RE.fullmatch(secret)
    assert match is not None
    key_id = match.group(1)
    assert key_id in created.stderr and secret not in created.stderr

    listed = run(cli, "keys", "list", "--format", "json", "--store", url)
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["scopes"], r["revoked_at"]) for r in rows] == [
        (key_id, "billing", ["explain", "predict"], None)
    ]
    table = run(cli, "keys", "list", "--store", url)
    random_part = secret.split("_", 2)[2]
    for out in (listed.output, table.output):
        assert random_part not in out
    assert key_id in table.stdout and "active" in table.stdout

    with Store.open(url) as store:
        assert KeyRing.from_store(store).authenticate(secret) is not None
    assert run(cli, "keys", "revoke", key_id, "--store", url).exit_code == 0
    with Store.open(url) as store:
        assert KeyRing.from_store(store).authenticate(secret) is None
    rows = json.loads(run(cli, "keys", "list", "--format", "json", "--store", url).stdout)
    assert rows[0]["revoked_at"] is not None
    assert json.loads(run(cli, "keys", "list", "--active", "--format", "json", "--store", url).stdout) == []


def test_the_store_defaults_to_garrison_db_url(
    cli: typer.Typer, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_DB_URL", url)
    created = run(cli, "keys", "create", "ops", "--scope", "admin", "--expires", "2999-01-01")
    assert created.exit_code == 0, created.output
    with Store.open(url) as store:
        [key] = store.list_keys()
    assert key.name == "ops" and key.expires_at is not None and key.expires_at.year == 2999


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "x", "--scope", "root"],
        ["keys", "create", "x"],
        ["keys", "create", "x", "--scope", "predict", "--expires", "tomorrow"],
        ["keys", "create", "x", "--scope", "predict", "--expires", "2020-01-01"],
        ["keys", "list", "--format", "xml"],
        ["log", "verify", "--format", "xml"],
        ["log", "verify", "--heads", "heads.jsonl"],
    ],
)
def test_usage_errors_exit_2(cli: typer.Typer, url: str, args: list[str]) -> None:
    result = run(cli, *args, "--store", url)
    assert result.exit_code == 2, result.output


def _keys(tmp_path: Path) -> tuple[Ed25519PrivateKey, Path, Path]:
    key = Ed25519PrivateKey.generate()
    private = tmp_path / "head.key"
    public = tmp_path / "head.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, private, public


def _fill(url: str, n: int = 6) -> None:
    with Store.open(url) as store:
        log = AuditLog(store, worker="api-1")
        for i in range(n):
            log.append("predict", "key-1", {"i": i})


def test_log_verify_exits_0_when_intact_and_1_when_tampered(
    cli: typer.Typer, url: str, tmp_path: Path
) -> None:
    _fill(url)
    clean = run(cli, "log", "verify", "--store", url, "--format", "json")
    assert clean.exit_code == 0, clean.output
    report: dict[str, Any] = json.loads(clean.stdout)
    assert report["ok"] is True and report["chains"]["api-1"]["seq"] == 6
    text = run(cli, "log", "verify", "--store", url)
    assert text.exit_code == 0 and "api-1: 6 entries" in text.stdout

    with sqlite3.connect(tmp_path / ".garrison/garrison.db") as conn:
        conn.execute("UPDATE audit_log SET payload = '{\"i\": 99}' WHERE seq = 3")
    tampered = run(cli, "log", "verify", "--store", url, "--format", "json")
    assert tampered.exit_code == 1
    assert [(p["seq"], p["kind"]) for p in json.loads(tampered.stdout)["problems"]] == [(3, "edited")]
    assert "PROBLEM edited: api-1 seq 3" in run(cli, "log", "verify", "--store", url).stdout


def test_signed_heads_from_sign_head_catch_a_truncated_tail(
    cli: typer.Typer, url: str, tmp_path: Path
) -> None:
    _fill(url)
    _, private, public = _keys(tmp_path)
    signed = run(cli, "log", "sign-head", "--worker", "api-1", "--private-key", str(private), "--store", url)
    assert signed.exit_code == 0, signed.output
    heads = tmp_path / "heads.jsonl"
    heads.write_text(signed.stdout)
    args = [
        "log",
        "verify",
        "--store",
        url,
        "--heads",
        str(heads),
        "--public-key",
        str(public),
        "--format",
        "json",
    ]
    ok = run(cli, *args)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["heads_checked"] == 1
    with sqlite3.connect(tmp_path / ".garrison/garrison.db") as conn:
        conn.execute("DELETE FROM audit_log WHERE seq > 4")
    assert (
        run(cli, "log", "verify", "--store", url).exit_code == 0
    )  # without the head, a lost tail is invisible
    cut = run(cli, *args)
    assert cut.exit_code == 1
    assert [p["kind"] for p in json.loads(cut.stdout)["problems"]] == ["truncated"]


def test_unreadable_heads_and_keys_are_input_errors(cli: typer.Typer, url: str, tmp_path: Path) -> None:
    _, private, public = _keys(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"schema": "garrison.audit-log-head/1"}\n')
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cases = [
        ["--heads", str(bad), "--public-key", str(public)],  # a malformed head
        ["--heads", str(tmp_path / "missing.jsonl"), "--public-key", str(public)],
        ["--heads", str(empty), "--public-key", str(private)],  # a private key where the public one belongs
    ]
    for extra in cases:
        result = run(cli, "log", "verify", "--store", url, *extra)
        # garrison's main() turns an InputError into one line and exit code 2
        assert isinstance(result.exception, InputError), result.output
        assert "BEGIN" not in str(result.exception)
    result = run(cli, "log", "verify", "--store", url, "--heads", str(bad), "--public-key", str(public))
    assert "bad.jsonl" in str(result.exception) and "line 1" in str(result.exception)
