"""The audit log's write-ahead journal: acknowledged on write, moved into the chain, recovered after a crash."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core import StoreError, WriterBusyError
from garrison.store import AuditJournal, AuditLog, Store, recover_journal, verify_log
from garrison.store.auditlog import _time_text, entry_hash

PAYLOAD = {"request_id": "r-1", "rows": 2, "predicted": [0, 1], "sha256": "ab" * 32}


def _segments(directory: Path, worker: str = "w0") -> list[Path]:
    return sorted(directory.glob(f"{worker}.*.journal"))


def test_entries_are_journalled_then_moved_into_a_verified_chain(store: Store, tmp_path: Path) -> None:
    log = AuditLog(store, worker="w0")
    journal = AuditJournal.open(log, tmp_path / "j", move_every_s=60)  # the test moves, not the thread
    try:
        before = dt.datetime.now(dt.UTC)
        seqs = [journal.append("predict", f"key-{i}", {**PAYLOAD, "i": i}) for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        assert log.head().seq == 0  # written ahead, not yet in the store
        assert journal.flush() == 5 and journal.flush() == 0
        entries = log.entries()
        assert [e.seq for e in entries] == seqs
        assert [e.payload["i"] for e in entries] == list(range(5)) and entries[0].payload["predicted"] == [
            0,
            1,
        ]
        assert all(before - dt.timedelta(seconds=1) <= e.time.replace(tzinfo=dt.UTC) <= dt.datetime.now(dt.UTC)
                   for e in entries)  # fmt: skip
        assert verify_log(store).ok
        assert journal.append_many([("admin.revoke", "ops", {"key": "k"}), ("predict", "k", None)]) == [6, 7]
        assert journal.head().seq == 7  # head() moves first
    finally:
        journal.close()
    assert not _segments(tmp_path / "j")  # everything moved: nothing left behind
    assert verify_log(store).ok


def test_the_mover_thread_moves_on_its_own(store: Store, tmp_path: Path) -> None:
    log = AuditLog(store, worker="w0")
    journal = AuditJournal.open(log, tmp_path / "j", move_every_s=0.05)
    try:
        journal.append("predict", "k", PAYLOAD)
        deadline = time.monotonic() + 10
        while log.head().seq < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log.head().seq == 1 and journal.moved == 1
    finally:
        journal.close()


def test_journalled_hashes_equal_those_of_the_plain_log(tmp_path: Path) -> None:
    """The journal's fast path (payload encoded once, the document assembled around it) hashes exactly as
    :func:`entry_hash` does."""
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        journal = AuditJournal.open(AuditLog(store, worker="w0"), tmp_path / "j")
        journal.append("predict", "k\u00e9y", {"b": [1, 2.5, None], "a": {"z": "\u2603", "y": True}})
        journal.close()
        entry = AuditLog(store, worker="w0").entries()[0]
    assert entry.hash == entry_hash(entry.prev_hash, worker="w0", seq=1, time=entry.time.replace(tzinfo=dt.UTC),
                                    kind="predict", actor="k\u00e9y", payload=entry.payload)  # fmt: skip


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(payload=st.dictionaries(st.text(max_size=8), JSON, max_size=4), kind=st.text(min_size=1, max_size=10),
       actor=st.text(min_size=1, max_size=10), worker=st.text(min_size=1, max_size=10),
       seq=st.integers(1, 2**53))  # fmt: skip
def test_the_assembled_document_is_the_canonical_json(
    payload: dict[str, Any], kind: str, actor: str, worker: str, seq: int
) -> None:
    at = dt.datetime(2026, 11, 27, 15, 0, 0, 123456, tzinfo=dt.UTC)
    document = {"actor": actor, "kind": kind, "payload": payload, "seq": seq, "time": _time_text(at),
                "worker": worker}  # fmt: skip
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    expected = hashlib.sha256(("0" * 64 + text).encode()).hexdigest()
    got = entry_hash("0" * 64, worker=worker, seq=seq, time=at, kind=kind, actor=actor, payload=payload)
    assert got == expected


_WRITER = textwrap.dedent(
    """
    import sys, time
    from garrison.store import AuditJournal, AuditLog, Store
    store = Store.open(sys.argv[1])
    journal = AuditJournal.open(AuditLog(store, worker="w0"), sys.argv[2], move_every_s=3600)
    for i in range(int(sys.argv[3])):
        journal.append("predict", "k", {"i": i})
        print(i, flush=True)  # acknowledged: the write returned
    time.sleep(3600)  # killed here, before anything moves
    """
)


def _killed_writer(url: str, directory: Path, n: int) -> list[int]:
    """A process that journals ``n`` entries, acknowledges each on stdout, and is killed with SIGKILL."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, url, str(directory), str(n)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stdout is not None
    with proc.stdout:
        acknowledged = [int(proc.stdout.readline()) for _ in range(n)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    return acknowledged


def test_a_killed_writer_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    directory = tmp_path / "j"
    acknowledged = _killed_writer(url, directory, 50)
    assert len(acknowledged) == 50 and _segments(directory)
    with Store.open(url) as store:
        log = AuditLog(store, worker="w0")
        assert log.head().seq == 0  # nothing had moved
        journal = AuditJournal.open(log, directory)  # recovery, as a restarted service does
        assert journal.recovered == 50
        journal.append("predict", "k", {"i": 50})  # numbering continues after the recovered entries
        journal.close()
        assert [e.payload["i"] for e in log.entries()] == list(range(51))
        assert verify_log(store).ok
        assert recover_journal(log, directory) == 0  # idempotent


def test_recovery_after_the_store_already_took_part_of_the_journal(store: Store, tmp_path: Path) -> None:
    """A crash between the store's commit and a segment's deletion: recovery repeats nothing."""
    directory = tmp_path / "j"
    log = AuditLog(store, worker="w0")
    journal = AuditJournal.open(log, directory, move_every_s=3600)
    journal.append_many([("predict", "k", {"i": i}) for i in range(4)])
    segment = _segments(directory)[0]
    kept = segment.read_bytes()
    journal.flush()  # in the store; the segment is deleted ...
    journal.append("predict", "k", {"i": 4})
    journal._release_lock()  # ... simulate the crash: the lock dies with the process, the files stay
    segment.write_bytes(kept)  # ... as if the deletion had not happened
    assert recover_journal(log, directory) == 1
    assert [e.payload["i"] for e in log.entries()] == [0, 1, 2, 3, 4]
    assert verify_log(store).ok
    journal._stop.set()


def _journal_file(directory: Path, lines: list[bytes], number: int = 1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"w0.{number}.journal"
    path.write_bytes(b"".join(lines))
    return path


def _line(seq: int, payload: str = '{"i":0}') -> bytes:
    return b'[%d,1764255600000000,"predict","k",%s]\n' % (seq, payload.encode())


def test_a_torn_last_line_is_dropped(store: Store, tmp_path: Path) -> None:
    _journal_file(tmp_path, [_line(1), _line(2), b"[3,17642556000000"])  # a power cut mid-write
    assert recover_journal(AuditLog(store, worker="w0"), tmp_path) == 2
    assert not _segments(tmp_path)


def test_a_damaged_line_inside_the_journal_is_an_error(store: Store, tmp_path: Path) -> None:
    path = _journal_file(tmp_path, [_line(1), b"not json\n", _line(3)])
    with pytest.raises(StoreError, match="line 2 is not a journal entry"):
        recover_journal(AuditLog(store, worker="w0"), tmp_path)
    assert path.exists()  # kept for a person to look at


def test_a_gap_in_the_numbering_is_an_error(store: Store, tmp_path: Path) -> None:
    _journal_file(tmp_path, [_line(1), _line(3)])
    with pytest.raises(StoreError, match="does not continue the chain"):
        recover_journal(AuditLog(store, worker="w0"), tmp_path)


def test_segments_are_read_in_numeric_order(store: Store, tmp_path: Path) -> None:
    _journal_file(tmp_path, [_line(3, '{"i":2}')], number=10)
    _journal_file(tmp_path, [_line(1), _line(2, '{"i":1}')], number=9)
    log = AuditLog(store, worker="w0")
    assert recover_journal(log, tmp_path) == 3
    assert [e.payload["i"] for e in log.entries()] == [0, 1, 2]


def test_a_second_writer_of_the_same_worker_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    holder = subprocess.Popen([sys.executable, "-c", _WRITER, url, str(tmp_path / "j"), "1"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "0"
        with Store.open(url) as store, pytest.raises(WriterBusyError, match=r"serve\.worker") as caught:
            AuditJournal.open(AuditLog(store, worker="w0"), tmp_path / "j")
        assert caught.value.worker == "w0"
        with Store.open(url) as store:  # another worker is fine
            AuditJournal.open(AuditLog(store, worker="w1"), tmp_path / "j").close()
    finally:
        holder.kill()
        holder.wait(10)
        assert holder.stdout is not None
        holder.stdout.close()


def test_a_store_that_refuses_keeps_the_entries_and_says_so(store: Store, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    log = AuditLog(store, worker="w0")
    journal = AuditJournal.open(log, tmp_path / "j", move_every_s=3600, on_error=errors.append)
    journal.append_many([("predict", "k", {"i": i}) for i in range(3)])
    AuditLog(store, worker="w0").append("predict", "intruder", {})  # someone else took seq 1
    with pytest.raises(StoreError):
        journal.flush()
    assert len(errors) == 1 and journal.failed_moves == 1
    assert _segments(tmp_path / "j")  # nothing deleted: the entries are still on disk ...
    assert [r[0] for r in journal._pending] == [1, 2, 3]  # ... and in memory for the next pass
    journal._stop.set()
    journal._release_lock()


def test_fsync_and_closed_journals(store: Store, tmp_path: Path) -> None:
    journal = AuditJournal.open(AuditLog(store, worker="w0"), tmp_path / "j", fsync=True)
    assert journal.append("predict", "k", PAYLOAD) == 1
    with pytest.raises(StoreError, match="cannot be stored as JSON"):
        journal.append("predict", "k", {"x": float("nan")})
    with pytest.raises(StoreError, match="kind"):
        journal.append("", "k", {})
    with pytest.raises(StoreError, match="actor"):
        journal.append("predict", ["not", "text"], {})  # type: ignore[arg-type]
    assert journal.append("predict", "k", {}) == 2  # refused entries took no number
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        journal.append("predict", "k", {})
    assert AuditLog(store, worker="w0").head().seq == 2


def test_a_worker_name_becomes_a_safe_file_name(store: Store, tmp_path: Path) -> None:
    journal = AuditJournal.open(AuditLog(store, worker="../api 1"), tmp_path / "j", move_every_s=3600)
    journal.append("predict", "k", {})
    names = [p.name for p in (tmp_path / "j").iterdir()]
    assert all("/" not in n and " " not in n for n in names) and any(n.endswith(".journal") for n in names)
    assert not (tmp_path / "api 1.lock").exists()
    journal.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.lists(st.sampled_from([_line(1), _line(2), b"\n", b"[", b"]\n",
                                                                         b'[1,2,"k","a",{}]\n', b"\xff"]),
                                                        max_size=6).map(b"".join)))  # fmt: skip
def test_any_journal_bytes_recover_or_raise_a_store_error(tmp_path: Path, data: bytes) -> None:
    with Store.open("sqlite://") as store:
        directory = tmp_path / "fuzz"
        _journal_file(directory, [data])
        try:
            n = recover_journal(AuditLog(store, worker="w0"), directory)
        except StoreError:
            return
        assert n == AuditLog(store, worker="w0").head().seq and verify_log(store).ok


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.integers(0, 4_102_444_800_000_000), min_size=1, max_size=6),
       kinds=st.lists(st.sampled_from(["predict", "explain", "admin.revoke"]), min_size=6, max_size=6))  # fmt: skip
def test_any_journalled_times_hash_as_the_plain_log_does(times: list[int], kinds: list[str]) -> None:
    """The mover's batch encoding (the time's second and the names encoded once) must hash exactly as
    :func:`entry_hash`, which `verify_log` recomputes from the stored rows."""
    with (
        tempfile.TemporaryDirectory() as folder,
        Store.open(f"sqlite:///{folder}/g.db", durable=False) as store,
    ):
        log = AuditLog(store, worker="w\u00e9")  # a file: the raw SQLite insert, as the service's mover
        head = log.append_encoded([(i, t, kinds[i - 1], f"key-{i % 2}", b'{"i":%d}' % i)
                                   for i, t in enumerate(times, start=1)])  # fmt: skip
        assert head.seq == len(times)
        assert verify_log(store).ok
        entries = log.entries()
        assert [e.time.replace(tzinfo=dt.UTC) for e in entries] == [
            dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=t) for t in times
        ]
