"""The tamper-evident audit log: chains, signed heads, tamper detection on the real SQLite file, and kill -9."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from garrison.core import InputError, StoreError
from garrison.store import (
    GENESIS_HASH,
    AuditLog,
    ChainHead,
    SignedHead,
    Store,
    default_url,
    load_heads,
    payload_digest,
    sign_head,
    verify_head,
    verify_log,
)
from garrison.store.auditlog import entry_hash

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Store, Path]]:
    """A store on a real SQLite file, and the file's path for direct SQL."""
    with Store.open(default_url(tmp_path)) as store:
        yield store, tmp_path / ".garrison/garrison.db"


def _fill(store: Store, worker: str = "api-1", n: int = 10) -> AuditLog:
    log = AuditLog(store, worker=worker)
    for i in range(n):
        log.append("predict", "key-0123", {"request": payload_digest(f"body {i}".encode()), "status": 200})
    return log


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


# ------------------------------------------------------------------------------------------ the chain itself


def test_entries_form_a_chain_from_genesis(store: Store) -> None:
    log = _fill(store, n=5)
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    for e in entries:
        expected = entry_hash(
            e.prev_hash,
            worker=e.worker,
            seq=e.seq,
            time=e.time,
            kind=e.kind,
            actor=e.actor,
            payload=e.payload,
        )
        assert e.hash == expected
    assert log.head() == ChainHead("api-1", 5, entries[-1].hash)
    assert verify_log(store).ok


def test_the_returned_entry_is_the_stored_one(store: Store) -> None:
    log = AuditLog(store, worker="api-1")
    written = log.append("explain", "key-1", {"n": 3, "tags": ("a", "b"), "digest": payload_digest(b"x")})
    assert log.entries() == [written]
    digest = "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    assert written.payload == {"n": 3, "tags": ["a", "b"], "digest": digest}


def test_a_new_log_object_continues_the_chain_after_a_restart(store: Store) -> None:
    _fill(store, n=3)
    again = AuditLog(store, worker="api-1")
    entry = again.append("predict", "key-1", {})
    assert entry.seq == 4
    assert verify_log(store).ok


def test_workers_keep_separate_chains(store: Store) -> None:
    a, b = AuditLog(store, worker="api-1"), AuditLog(store, worker="api-2")
    for i in range(3):
        a.append("predict", "k", {"i": i})
        b.append("predict", "k", {"i": i})
    result = verify_log(store)
    assert result.ok
    assert {w: h.seq for w, h in result.chains.items()} == {"api-1": 3, "api-2": 3}
    assert a.entries()[0].prev_hash == b.entries()[0].prev_hash == GENESIS_HASH


def test_append_many_is_one_transaction(store: Store) -> None:
    log = AuditLog(store, worker="api-1")
    entries = log.append_many([("predict", "k", {"i": i}) for i in range(4)])
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        log.append_many([("predict", "k", {"ok": 1}), ("predict", "k", {"bad": object()})])
    with pytest.raises(StoreError, match="`kind` must be 1 to 100 characters"):
        log.append_many([("predict", "k", {}), ("", "k", {})])
    assert [e.seq for e in log.entries()] == [1, 2, 3, 4]
    assert log.append_many([]) == []
    assert verify_log(store).ok


def test_a_second_process_on_the_same_worker_is_refused_not_forked(store: Store) -> None:
    first, second = AuditLog(store, worker="api-1"), AuditLog(store, worker="api-1")
    first.head()
    second.head()  # both believe the chain is empty
    first.append("predict", "k", {})
    with pytest.raises(StoreError):
        second.append("predict", "k", {})
    assert second.append("predict", "k", {}).seq == 2  # it reads the tip again after a failure
    assert verify_log(store).ok


def test_sqlite_runs_in_wal_mode_with_full_sync(db: tuple[Store, Path]) -> None:
    store, _ = db
    assert store._engine is not None
    with store._engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


# ------------------------------------------------------------------------------------------------- heads


def test_signed_heads_round_trip_and_verify(store: Store) -> None:
    log = _fill(store, n=3)
    sent: list[dict[str, Any]] = []
    signed = log.export_head(sent.append, private_key=KEY)
    assert signed.head == log.head() and verify_head(signed, PUBLIC)
    assert load_heads(json.dumps(sent[0]) + "\n\n") == [signed]
    assert SignedHead.from_dict(sent[0]) == signed
    assert not verify_head(signed, Ed25519PrivateKey.generate().public_key())
    forged = SignedHead(signed.worker, signed.seq - 1, signed.hash, signed.time, signed.signature)
    assert not verify_head(forged, PUBLIC)
    with pytest.raises(InputError, match="no signing key"):
        log.export_head(sent.append)
    assert AuditLog(store, worker="api-1", signing_key=KEY).export_head(sent.append).head == signed.head


def test_heads_need_a_public_key(store: Store) -> None:
    signed = sign_head(_fill(store, n=1).head(), KEY)
    with pytest.raises(InputError, match="`public_key` is required"):
        verify_log(store, heads=[signed])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "line 1: not valid JSON"),
        ("[1]", "line 1: a signed head must be a JSON object"),
        ('{"schema": "other"}', "line 1: `schema` must be"),
    ],
)
def test_bad_heads_files_name_the_line(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_heads(line)


HEAD_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "schema": st.sampled_from(["garrison.audit-log-head/1", "x"]),
        "algorithm": st.sampled_from(["ed25519", "rsa"]),
        "worker": st.one_of(st.text(max_size=5), st.integers()),
        "seq": st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=3)),
        "hash": st.one_of(st.just("a" * 64), st.text(max_size=70)),
        "time": st.one_of(
            st.just("2026-01-01T00:00:00+00:00"), st.just("2026-01-01T00:00:00"), st.text(max_size=30)
        ),
        "signature": st.one_of(st.just("b" * 128), st.text(max_size=5)),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), HEAD_FIELDS.map(json.dumps)))
def test_the_heads_parser_returns_heads_or_an_input_error(text_: str) -> None:
    try:
        heads = load_heads(text_)
    except InputError as exc:
        heads, error = [], str(exc)
    else:
        error = "line "
    assert error.startswith("line ")
    for h in heads:
        assert h.time.tzinfo is not None and len(h.hash) == 64 and h.seq >= 0
        assert not verify_head(h, PUBLIC)  # nothing random is signed by our key


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.dictionaries(st.text(max_size=8), JSON, max_size=5), actor=st.text(min_size=1, max_size=20))
def test_any_json_payload_survives_the_round_trip_and_verifies(
    db: tuple[Store, Path], payload: dict[str, Any], actor: str
) -> None:
    store, _ = db
    entry = AuditLog(store, worker="prop").append("predict", actor, payload)
    assert AuditLog(store, worker="prop").entries(after_seq=entry.seq - 1) == [entry]
    assert verify_log(store).ok


# ------------------------------------------------------------------------------- tampering, by direct SQL


def test_an_edited_payload_is_detected(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store)
    _sql(path, "UPDATE audit_log SET payload = '{\"status\": 500}' WHERE worker = 'api-1' AND seq = 4")
    result = verify_log(store)
    assert [(p.seq, p.kind) for p in result.problems] == [(4, "edited")]


def test_an_edited_actor_and_time_are_detected(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store)
    _sql(
        path,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2",
        "UPDATE audit_log SET time = '2020-01-01 00:00:00.000000' WHERE seq = 7",
    )
    assert [(p.seq, p.kind) for p in verify_log(store).problems] == [(2, "edited"), (7, "edited")]


def test_a_deleted_entry_is_a_gap(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store)
    _sql(path, "DELETE FROM audit_log WHERE seq IN (5, 6)")
    problems = verify_log(store).problems
    assert [(p.seq, p.kind) for p in problems] == [(5, "gap")]
    assert "5 to 6" in problems[0].message


def test_deleting_the_first_entry_is_a_gap(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store)
    _sql(path, "DELETE FROM audit_log WHERE seq = 1")
    assert [(p.seq, p.kind) for p in verify_log(store).problems] == [(1, "gap")]


def test_swapped_seqs_are_reported_as_reordered(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store)
    _sql(
        path,
        "UPDATE audit_log SET seq = -1 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = -1",
    )
    assert [(p.seq, p.kind) for p in verify_log(store).problems] == [(3, "reordered"), (4, "reordered")]


def test_far_apart_swaps_are_reordered_too(db: tuple[Store, Path]) -> None:
    store, path = db
    _fill(store, n=30)
    _sql(
        path,
        "UPDATE audit_log SET seq = -1 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 27",
        "UPDATE audit_log SET seq = 27 WHERE seq = -1",
    )
    assert [(p.seq, p.kind) for p in verify_log(store).problems] == [(2, "reordered"), (27, "reordered")]


def test_a_rehashed_edit_breaks_the_next_link(db: tuple[Store, Path]) -> None:
    store, path = db
    log = _fill(store)
    e = log.entries()[4]
    forged = {"status": 500}
    digest = entry_hash(
        e.prev_hash, worker=e.worker, seq=e.seq, time=e.time, kind=e.kind, actor=e.actor, payload=forged
    )
    _sql(
        path, f"UPDATE audit_log SET payload = '{json.dumps(forged)}', hash = '{digest}' WHERE seq = {e.seq}"
    )
    assert [(p.seq, p.kind) for p in verify_log(store).problems] == [(6, "broken_link")]


def test_a_truncated_tail_is_detected_only_with_a_signed_head(db: tuple[Store, Path]) -> None:
    store, path = db
    log = _fill(store)
    heads: list[dict[str, Any]] = []
    log.export_head(heads.append, private_key=KEY)
    _sql(path, "DELETE FROM audit_log WHERE seq > 7")
    assert verify_log(store).ok  # the chain alone cannot see a lost tail
    result = verify_log(store, heads=heads, public_key=PUBLIC)
    assert [(p.seq, p.kind) for p in result.problems] == [(10, "truncated")]
    assert result.heads_checked == 1


def test_a_whole_log_deleted_is_truncation(db: tuple[Store, Path]) -> None:
    store, path = db
    heads: list[dict[str, Any]] = []
    _fill(store).export_head(heads.append, private_key=KEY)
    _sql(path, "DELETE FROM audit_log")
    assert [(p.worker, p.kind) for p in verify_log(store, heads=heads, public_key=PUBLIC).problems] == [
        ("api-1", "truncated")
    ]


def test_a_rewritten_log_contradicts_its_signed_head(db: tuple[Store, Path]) -> None:
    store, path = db
    heads: list[dict[str, Any]] = []
    _fill(store).export_head(heads.append, private_key=KEY)
    _sql(path, "DELETE FROM audit_log")
    forger = AuditLog(store, worker="api-1")
    for i in range(12):  # a consistent chain, of other entries, longer than the signed one
        forger.append("predict", "key-0123", {"i": i})
    assert verify_log(store).ok
    result = verify_log(store, heads=heads, public_key=PUBLIC)
    assert [(p.seq, p.kind) for p in result.problems] == [(10, "head_mismatch")]


def test_a_head_signed_by_another_key_is_reported_and_ignored(db: tuple[Store, Path]) -> None:
    store, path = db
    log = _fill(store)
    heads = [sign_head(log.head(), Ed25519PrivateKey.generate())]
    _sql(path, "DELETE FROM audit_log WHERE seq > 7")
    result = verify_log(store, heads=heads, public_key=PUBLIC)
    assert [(p.seq, p.kind) for p in result.problems] == [(10, "bad_signature")]
    assert result.heads_checked == 0


def test_a_head_of_an_earlier_seq_still_holds_after_more_appends(db: tuple[Store, Path]) -> None:
    store, _ = db
    log = _fill(store, n=4)
    heads = [sign_head(log.head(), KEY, time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))]
    _fill(store, n=4)
    result = verify_log(store, heads=heads, public_key=PUBLIC)
    assert result.ok and result.chains["api-1"].seq == 8


# -------------------------------------------------------------------------------------- kill -9 reliability

WRITER = textwrap.dedent(
    """
    import sys
    from garrison.store import AuditLog, Store

    store = Store.open(sys.argv[1])
    log = AuditLog(store, worker=sys.argv[2])
    i = 0
    while True:
        i += 1
        entry = log.append("predict", "key-0123", {"i": i, "pad": "x" * 200})
        print(entry.seq, flush=True)  # acknowledged: append has returned
    """
)


def test_every_acknowledged_entry_survives_kill_9(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    Store.open(url).close()  # migrate once, before the writers race
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    writers = {
        worker: subprocess.Popen(
            [sys.executable, str(script), url, worker], stdout=subprocess.PIPE, text=True, env=env
        )
        for worker in ("w1", "w2")  # two processes writing the same SQLite file at once
    }
    acked: dict[str, list[int]] = {w: [] for w in writers}
    try:
        for worker, proc in writers.items():
            assert proc.stdout is not None
            while len(acked[worker]) < 40:
                line = proc.stdout.readline()
                assert line, f"writer {worker} died early"
                acked[worker].append(int(line))
        for proc in writers.values():
            os.kill(proc.pid, signal.SIGKILL)
        for worker, proc in writers.items():
            assert proc.stdout is not None
            # lines printed before the kill were acknowledged too; read() drains what the text buffer already
            # holds (communicate() would read the pipe's file descriptor and skip that)
            rest = proc.stdout.read()
            proc.stdout.close()
            proc.wait(timeout=30)
            acked[worker].extend(int(x) for x in rest.split())
            assert proc.returncode == -signal.SIGKILL
    finally:
        for proc in writers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with Store.open(url) as store:
        result = verify_log(store)
        assert result.problems == ()
        for worker, seqs in acked.items():
            stored = [e.seq for e in AuditLog(store, worker=worker).entries()]
            assert seqs == list(range(1, len(seqs) + 1))
            assert stored[: len(seqs)] == seqs  # every acknowledged seq is there (and maybe one in flight)
            assert stored == list(range(1, len(stored) + 1))
