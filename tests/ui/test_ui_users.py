"""Dashboard users and sessions in a real SQLite store, the sign-in limiter, triage edits, and `garrison users`."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from garrison.cli.users_cmd import users_app
from garrison.core import ConfigError, StoreError, TriageStatus
from garrison.core.triage import load_triage
from garrison.store import Store
from garrison.store.users import (
    add_user,
    create_session,
    delete_session,
    get_session,
    list_users,
    set_disabled,
    verify_password,
)
from garrison.ui import TriageChange, apply_change
from garrison.ui.auth import LoginLimiter, csrf_ok

FP = "0123456789abcdef0123456789abcdef"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield s  # type: ignore[misc]
    s.close()


def test_passwords_are_argon2id_and_verified(store: Store) -> None:
    user = add_user(store, "ana", "correct horse", role="triager")
    assert user.can("viewer") and user.can("triager") and not user.can("admin")
    assert verify_password(store, "ana", "correct horse") == user
    assert verify_password(store, "ana", "wrong horse!") is None
    assert verify_password(store, "nobody", "correct horse") is None
    with pytest.raises(StoreError, match="already exists"):
        add_user(store, "ana", "another pass", role="viewer")
    with pytest.raises(StoreError, match="`role` must be one of"):
        add_user(store, "bo", "long enough", role="root")
    with pytest.raises(StoreError, match="`password` must be at least 8"):
        add_user(store, "bo", "short", role="viewer")
    with pytest.raises(StoreError, match="`name` must be"):
        add_user(store, "two words", "long enough", role="viewer")


def test_an_outdated_hash_is_rehashed_on_sign_in(store: Store, tmp_path: Path) -> None:
    add_user(store, "ana", "correct horse", role="viewer", hasher=CHEAP)
    import sqlite3

    def stored() -> str:
        with sqlite3.connect(tmp_path / "garrison.db") as db:
            return str(db.execute("SELECT password_hash FROM users").fetchone()[0])

    old = stored()
    assert "m=1024" in old
    assert verify_password(store, "ana", "correct horse") is not None  # default parameters: rehash
    assert stored() != old and "m=65536" in stored() and stored().startswith("$argon2id$")


def test_sessions_expire_end_and_die_with_a_disabled_user(store: Store) -> None:
    user = add_user(store, "ana", "correct horse", role="admin", hasher=CHEAP)
    token, session = create_session(store, user)
    assert get_session(store, token) == session and session.csrf_token
    assert session.csrf_token not in repr(session)
    short, _ = create_session(store, user, ttl=dt.timedelta(microseconds=1))
    assert get_session(store, short) is None
    delete_session(store, token)
    assert get_session(store, token) is None
    token, _ = create_session(store, user)
    set_disabled(store, "ana")
    assert get_session(store, token) is None
    assert verify_password(store, "ana", "correct horse", hasher=CHEAP) is None
    assert list_users(store)[0].disabled
    with pytest.raises(StoreError, match="`ttl` must be > 0"):
        create_session(store, user, ttl=dt.timedelta(0))


@settings(max_examples=50, deadline=None)
@given(token=st.text(max_size=400))
def test_any_token_is_a_session_or_none(tmp_path_factory: pytest.TempPathFactory, token: str) -> None:
    with Store.open(f"sqlite:///{tmp_path_factory.getbasetemp() / 'tokens.db'}") as s:
        assert get_session(s, token) is None


@given(
    expected=st.text(min_size=1, max_size=50),
    given_=st.one_of(st.none(), st.integers(), st.text(max_size=50)),
)
def test_csrf_tokens_match_only_themselves(expected: str, given_: object) -> None:
    assert csrf_ok(expected, given_) == (given_ == expected)
    assert csrf_ok(expected, expected)
    assert not csrf_ok("", "")


def test_login_limiter_refuses_a_burst_and_refills() -> None:
    limiter = LoginLimiter(per_minute=6, burst=3)
    assert [limiter.allow("1.2.3.4", now=0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("5.6.7.8", now=0)  # per address
    assert not limiter.allow("1.2.3.4", now=5)
    assert limiter.allow("1.2.3.4", now=10)  # 6 per minute: one back after 10 s
    with pytest.raises(ValueError, match="`per_minute` must be > 0, got 0"):
        LoginLimiter(per_minute=0)


def test_apply_change_writes_the_file_and_records_the_actor(store: Store, tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    change = TriageChange(FP, TriageStatus.ACCEPTED_RISK, owner="ana", reason="compensating control",
                          expires=dt.date(2026, 3, 1), rule_id="GAR-X-001")  # fmt: skip
    outcome = apply_change(store, tmp_path, change, actor="ana", now=now)
    assert outcome.written and "+    status: accepted-risk" in outcome.patch
    entry = load_triage(tmp_path / ".garrison" / "triage.yaml").get(FP)
    assert entry is not None and entry.updated_by == "ana" and entry.expires == dt.date(2026, 3, 1)
    assert [e.actor for e in store.triage_history(FP)] == ["ana"]
    with pytest.raises(ConfigError, match="needs"):
        apply_change(store, tmp_path, TriageChange(FP, TriageStatus.ACCEPTED_RISK, owner="ana"), actor="ana")
    with pytest.raises(ConfigError, match="after today"):
        apply_change(store, tmp_path, TriageChange(FP, TriageStatus.ACCEPTED_RISK, owner="a", reason="r",
                                                   expires=dt.date(2025, 1, 1)), actor="ana", now=now)  # fmt: skip
    reopened = apply_change(store, tmp_path, TriageChange(FP, TriageStatus.OPEN), actor="bo", now=now)
    assert reopened.written and load_triage(tmp_path / ".garrison" / "triage.yaml").get(FP) is None
    assert store.triage_history(FP)[-1].actor == "bo" and store.triage_history(FP)[-1].new_status is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders")
def test_a_read_only_folder_gets_a_patch(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / ".garrison"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        out = apply_change(store, tmp_path, TriageChange(FP, TriageStatus.FIXED), actor="ana")
    finally:
        folder.chmod(0o755)
    assert not out.written and "+++ b/.garrison/triage.yaml" in out.patch
    assert not (folder / "triage.yaml").exists() and store.triage_history(FP) == []


def test_users_cli_adds_lists_and_disables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'garrison.db'}"
    runner = CliRunner()
    r = runner.invoke(users_app, ["add", "ana", "--role", "admin", "--password-stdin", "--store", url],
                      input="correct horse\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(users_app, ["add", "bo", "--role", "viewer", "--store", url],
                      input="pass-word-1\npass-word-1\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        users_app, ["add", "cy", "--role", "god", "--password-stdin", "--store", url], input="x\n"
    )
    assert r.exit_code == 2
    r = runner.invoke(users_app, ["disable", "bo", "--store", url])
    assert r.exit_code == 0
    r = runner.invoke(users_app, ["list", "--format", "json", "--store", url])
    assert '"name": "ana"' in r.stdout and '"disabled": true' in r.stdout and "argon2" not in r.stdout
    with Store.open(url) as s:
        assert verify_password(s, "ana", "correct horse") is not None
        assert verify_password(s, "bo", "pass-word-1") is None  # disabled
