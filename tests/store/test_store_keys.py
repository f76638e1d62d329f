"""API keys in the store and the key ring of the inference service (SQLite and PostgreSQL, see conftest.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core import StoreError
from garrison.store import KeyInfo, KeyRing, Store, default_url
from garrison.store.keys import hash_secret, parse_key_id

SECRET_RE = re.compile(r"gk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
UTC = dt.UTC


def test_create_returns_a_secret_embedding_the_id_and_the_ring_accepts_it(store: Store) -> None:
    key_id, secret = store.create_key("billing-client", ["predict", "explain"])
    match = SECRET_RE.fullmatch(secret)
    assert match is not None and match.group(1) == key_id
    info = KeyRing.from_store(store).authenticate(secret)
    assert info is not None
    assert (info.id, info.name, info.scopes) == (key_id, "billing-client", frozenset({"predict", "explain"}))
    assert info.allows("predict") and not info.allows("admin")


def test_two_keys_never_share_a_secret_or_an_id(store: Store) -> None:
    made = [store.create_key(f"k{i}", ["predict"]) for i in range(20)]
    assert len({i for i, _ in made}) == len({s for _, s in made}) == 20


def test_wrong_unknown_and_malformed_secrets_are_refused(store: Store) -> None:
    key_id, secret = store.create_key("a", ["predict"])
    other_id, other = store.create_key("b", ["predict"])
    ring = KeyRing.from_store(store)
    last = "A" if secret[-1] != "A" else "B"
    refused = [
        secret[:-1] + last,  # one character of the random part changed
        other.replace(other_id, key_id),  # another key's random part under this id
        secret.replace(key_id, "0123456789abcdef"),  # an id that does not exist
        secret.upper(),
        secret + "x",
        secret[:-1],
        "",
        "gk_",
        "Bearer " + secret,
        secret + "A" * 200,  # far too long: refused before hashing
    ]
    for candidate in refused:
        assert ring.authenticate(candidate) is None, candidate
    assert ring.authenticate(secret) is not None and ring.authenticate(other) is not None


def test_revoked_keys_are_refused_once_the_ring_reloads(store: Store) -> None:
    key_id, secret = store.create_key("a", ["predict"])
    ring = KeyRing.from_store(store)
    revoked = store.revoke_key(key_id)
    assert revoked.revoked_at is not None
    assert ring.authenticate(secret) is not None  # the ring is loaded once; the service reloads it
    ring.reload()
    assert ring.authenticate(secret) is None
    assert store.revoke_key(key_id).revoked_at == revoked.revoked_at  # revoking twice changes nothing
    assert [k.id for k in store.list_keys(include_revoked=False)] == []
    assert [k.id for k in store.list_keys()] == [key_id]


def test_expired_keys_are_refused_at_the_time_of_the_call(store: Store) -> None:
    expires = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    _, secret = store.create_key("a", ["predict"], expires=expires)
    before = expires.timestamp() - 1
    assert KeyRing.from_store(store, clock=lambda: before).authenticate(secret) is not None
    assert KeyRing.from_store(store, clock=lambda: expires.timestamp()).authenticate(secret) is None
    stored = store.list_keys()[0].expires_at
    assert stored is not None and abs((stored - expires).total_seconds()) < 1e-3


def test_a_date_expiry_means_the_start_of_that_day_utc(store: Store) -> None:
    day = dt.datetime.now(UTC).date() + dt.timedelta(days=400)
    store.create_key("a", ["admin"], expires=day)
    assert store.list_keys()[0].expires_at == dt.datetime.combine(day, dt.time(), tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "scopes", "expires", "message"),
    [
        ("a", [], None, "`scopes` must be one or more of"),
        ("a", ["predict", "root"], None, "`scopes` must be one or more of"),
        ("  ", ["predict"], None, "`name` must be 1 to 200 characters"),
        ("a", ["predict"], dt.datetime(2020, 1, 1, tzinfo=UTC), "`expires` must be in the future"),
        ("a", ["predict"], dt.datetime(2999, 1, 1), "`expires` must be an aware datetime"),
    ],
)
def test_bad_key_requests_are_store_errors(
    store: Store, name: str, scopes: list[str], expires: dt.datetime | None, message: str
) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        store.create_key(name, scopes, expires=expires)
    assert store.list_keys() == []


def test_revoking_an_unknown_id_is_a_store_error_that_never_echoes_a_secret(store: Store) -> None:
    _, secret = store.create_key("a", ["predict"])
    with pytest.raises(StoreError, match="no API key with id 'ffffffffffffffff'"):
        store.revoke_key("ffffffffffffffff")
    with pytest.raises(StoreError) as caught:
        store.revoke_key(secret)  # a secret pasted where an id belongs
    assert secret not in str(caught.value) and secret[20:] not in str(caught.value)


def test_only_the_hash_is_stored_and_nothing_returned_shows_the_secret(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    with Store.open(url) as store:
        key_id, secret = store.create_key("a", ["predict", "admin"])
        listed = store.list_keys()
        ring = KeyRing.from_store(store)
        info = ring.authenticate(secret)
    assert info is not None
    random_part = secret.split("_", 2)[2]
    digest = hash_secret(secret)
    shown = [repr(info), str(info), repr(listed), repr(ring), repr(dataclasses.asdict(info))]
    for text in shown:
        assert random_part not in text and digest not in text
    assert key_id in repr(info) and "predict" in repr(info)
    raw = (tmp_path / ".garrison/garrison.db").read_bytes()
    for name in ("garrison.db-wal",):  # WAL mode: recent pages may still be in the log file
        wal = tmp_path / ".garrison" / name
        raw += wal.read_bytes() if wal.exists() else b""
    assert random_part.encode() not in raw
    with sqlite3.connect(tmp_path / ".garrison/garrison.db") as conn:
        assert conn.execute("SELECT secret_hash FROM api_keys").fetchall() == [(digest,)]


def test_key_info_admin_allows_every_scope() -> None:
    now = dt.datetime.now(UTC)
    info = KeyInfo("0" * 16, "ops", frozenset({"admin"}), now)
    assert info.allows("predict") and info.allows("explain") and info.allows("admin")
    assert info.is_active(now)
    assert not dataclasses.replace(info, revoked_at=now).is_active(now)
    assert not dataclasses.replace(info, expires_at=now).is_active(now)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_authenticate_refuses_any_text_without_raising(text: str) -> None:
    ring = KeyRing(Store("sqlite://"))  # an empty ring: nothing is accepted
    assert ring.authenticate(text) is None
    key_id = parse_key_id(text)
    assert key_id is None or (len(key_id) == 16 and text.startswith(f"gk_{key_id}_"))


@pytest.fixture(scope="module")
def real_ring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KeyRing, str]]:
    with Store.open(default_url(tmp_path_factory.mktemp("ring"))) as store:
        key_id, _ = store.create_key("a", ["predict"])
        yield KeyRing.from_store(store), f"gk_{key_id}_"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_no_guess_opens_a_real_key(real_ring: tuple[KeyRing, str], text: str) -> None:
    ring, prefix = real_ring
    assert ring.authenticate(prefix + text) is None
