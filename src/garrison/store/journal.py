"""A write-ahead journal in front of the audit log: an entry is acknowledged after one ``write(2)`` and joins the
hash chain in the store a moment later, in batches.

Why: the guarded service must commit each request's entry before it answers. A SQLite commit costs about 60 µs
alone and over 100 µs amid the service's own work (WAL pages, file locks, system calls): the largest single cost of
a guarded request at one client. A journal line costs one write to the operating system's page cache, which
survives a killed process exactly as a WAL commit with ``synchronous=NORMAL`` does; with ``fsync`` each write is
also synced to disk (a power cut, as ``synchronous=FULL``).

Format: one JSON array per line, ``[seq, time_us, kind, actor, payload]`` (``time_us``: microseconds since the
epoch, UTC), in segment files ``<directory>/<worker>.<n>.journal``. The journal numbers the entries itself, so it
must be the only writer of its worker's chain while it is open (a lock file enforces one process per worker). A
mover thread every ``move_every_s`` seals the current segment (later lines go to the next one), appends the sealed
lines to the chain with their own ``seq`` and time (:meth:`AuditLog.append_at`), then deletes the segment. A store
that refuses keeps the lines and their segments for the next pass.

Recovery (:func:`recover_journal`, run by :meth:`AuditJournal.open` and by ``garrison log verify --journal``)
reads every segment of the worker in order and appends the entries the chain does not hold yet (``seq`` above its
head): a crash between the store's commit and a segment's deletion repeats nothing. A torn last line (a power cut
mid-write without ``fsync``) was never acknowledged and is dropped; any other unreadable line is an error, as is a
gap in the numbering.

Entries wait in the journal, not yet hashed, for at most about ``move_every_s``; the chain's tamper evidence starts
when they join it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.core import StoreError, WriterBusyError
from garrison.store.auditlog import AuditLog, ChainHead, SignedHead, _canonical, _json_string

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["AuditJournal", "recover_journal"]

_Record = tuple[
    int, int, str, str, bytes
]  # seq, time (µs since the epoch), kind, actor, canonical payload JSON
_BATCH = 2000  # entries per store transaction when moving or recovering
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class AuditJournal:
    """The write-ahead journal of one worker's chain (see the module docstring); thread-safe.

    Open it with :meth:`open`, which recovers what a previous process left and starts the mover; :meth:`close`
    moves everything still journalled and stops. ``on_error(exc)`` hears of a move the store refused.
    """

    def __init__(
        self,
        log: AuditLog,
        directory: Path,
        *,
        move_every_s: float = 0.1,
        fsync: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if not move_every_s > 0:
            raise ValueError(f"`move_every_s` must be > 0, got {move_every_s!r}")
        self.log = log
        self.directory = Path(directory)
        self.move_every_s = move_every_s
        self.fsync = fsync
        self.on_error = on_error
        self.moved = 0
        self.recovered = 0
        self.failed_moves = 0
        self._lock = threading.Lock()  # the open segment, the numbering, the pending lines
        self._move_lock = threading.Lock()  # one move at a time (the thread, flush, close)
        self._pending: list[_Record] = []
        self._name_cache: dict[tuple[str, str], bytes] = {}
        self._sealed: list[Path] = []
        self._fd: int | None = None
        self._segment = 0
        self._next_seq = 0
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        log: AuditLog,
        directory: Path,
        *,
        move_every_s: float = 0.1,
        fsync: bool = False,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> AuditJournal:
        """Take the worker's journal (:class:`StoreError` when another process holds it), recover what is left
        in it, and start the mover thread."""
        journal = cls(log, directory, move_every_s=move_every_s, fsync=fsync, on_error=on_error)
        journal.directory.mkdir(parents=True, exist_ok=True)
        journal._take_lock()
        try:
            journal.recovered = recover_journal(log, journal.directory)
            journal._next_seq = log.head().seq + 1
            journal._open_segment(1)
        except BaseException:
            journal._release_lock()
            raise
        journal._thread = threading.Thread(
            target=journal._run, name=f"garrison-journal-{log.worker}", daemon=True
        )
        journal._thread.start()
        return journal

    @property
    def worker(self) -> str:
        return self.log.worker

    # ------------------------------------------------------------------------------------------ writing

    def append(self, kind: str, actor: str, payload: Mapping[str, Any] | None = None) -> int:
        """Journal one entry; returns its ``seq`` once written (see :meth:`append_many`)."""
        return self.append_many([(kind, actor, payload)])[0]

    def append_many(self, items: Iterable[tuple[str, str, Mapping[str, Any] | None]]) -> list[int]:
        """Journal entries ``(kind, actor, payload)`` with one write; returns their ``seq`` once the write
        returned (and was synced, with ``fsync``). :class:`StoreError` when the journal is closed, a payload is
        not JSON, or the write fails (nothing is numbered then)."""
        now_us = time.time_ns() // 1000
        encoded = []
        for kind, actor, payload in items:
            try:  # the payload's canonical JSON: what the chain hashes and stores, made once
                text = _canonical(payload if type(payload) is dict else dict(payload or {}))
            except (TypeError, ValueError, RecursionError) as exc:
                raise StoreError(f"the audit log payload cannot be stored as JSON: {exc}") from None
            encoded.append((kind, actor, self._names(kind, actor), text))
        if not encoded:
            return []
        with self._lock:
            if self._fd is None:
                raise StoreError(f"the audit-log journal of {self.worker!r} is closed")
            first = seq = self._next_seq
            records: list[_Record] = []
            lines = []
            for kind, actor, names, text in encoded:
                records.append((seq, now_us, kind, actor, text))
                lines.append(b"[%d,%d,%s,%s]\n" % (seq, now_us, names, text))
                seq += 1
            try:
                _write_all(self._fd, b"".join(lines))
                if self.fsync:
                    os.fdatasync(self._fd)
            except OSError as exc:
                raise StoreError(f"cannot write the audit-log journal: {exc.strerror or exc}") from None
            self._next_seq = seq
            self._pending.extend(records)
            return list(range(first, seq))

    def _names(self, kind: str, actor: str) -> bytes:
        """``"kind","actor"`` as they go in a journal line, checked and encoded once per pair (they repeat: a
        route and an API key id)."""
        names = self._name_cache.get((kind, actor)) if type(kind) is str and type(actor) is str else None
        if names is None:
            _check_text(kind, "kind", 100)
            _check_text(actor, "actor", 200)
            if len(self._name_cache) >= 4096:
                self._name_cache.clear()
            names = self._name_cache[(kind, actor)] = f"{_json_string(kind)},{_json_string(actor)}".encode()
        return names

    def head(self) -> ChainHead:
        """The chain's head in the store, after moving everything journalled so far."""
        self.flush()
        return self.log.head()

    def export_head(
        self, sink: Callable[[dict[str, Any]], object], *, private_key: Ed25519PrivateKey | None = None
    ) -> SignedHead:
        """:meth:`AuditLog.export_head` after moving everything journalled so far: the head signed is one the
        store holds."""
        self.flush()
        return self.log.export_head(sink, private_key=private_key)

    # ------------------------------------------------------------------------------------------ moving

    def flush(self) -> int:
        """Move everything journalled so far into the chain now; returns how many entries moved."""
        return self._move()

    def close(self) -> None:
        """Move what is left, stop the mover and release the worker's journal. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with contextlib.suppress(StoreError):
            self._move()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                if not self._pending:  # everything is in the store: the empty segment can go
                    _segment_path(self.directory, self.worker, self._segment).unlink(missing_ok=True)
        self._release_lock()

    def _run(self) -> None:
        while not self._stop.wait(self.move_every_s):
            with contextlib.suppress(StoreError):  # reported through on_error; retried next pass
                self._move()

    def _move(self) -> int:
        with self._move_lock:
            with self._lock:
                if not self._pending:
                    return 0
                records, self._pending = self._pending, []
                if self._fd is not None:  # later lines go to a new segment; this one is deleted once moved
                    self._sealed.append(_segment_path(self.directory, self.worker, self._segment))
                    self._open_segment(self._segment + 1)
            moved = 0
            try:
                for start in range(0, len(records), _BATCH):
                    batch = records[start : start + _BATCH]
                    self.log.append_encoded(batch)
                    moved += len(batch)
            except StoreError as exc:
                with self._lock:  # keep what did not make it, in order, for the next pass
                    self._pending[:0] = records[moved:]
                self.moved += moved
                self.failed_moves += 1
                if self.on_error is not None:
                    self.on_error(exc)
                raise
            for path in self._sealed:
                path.unlink(missing_ok=True)
            self._sealed.clear()
            self.moved += len(records)
            return len(records)

    # ------------------------------------------------------------------------------------------ files

    def _open_segment(self, number: int) -> None:
        """Switch writing to segment ``number`` (the caller holds ``_lock`` or is opening)."""
        path = _segment_path(self.directory, self.worker, number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._segment = fd, number

    def _take_lock(self) -> None:
        path = self.directory / f"{_safe(self.worker)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process guard
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise WriterBusyError(f"another process writes the audit-log journal of worker {self.worker!r} "
                                  f"({self.directory}); give each worker its own `serve.worker`",
                                  worker=self.worker) from None  # fmt: skip
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def __repr__(self) -> str:
        return f"AuditJournal(worker={self.worker!r}, directory={str(self.directory)!r}, pending={len(self._pending)})"


def recover_journal(log: AuditLog, directory: Path) -> int:
    """Append to ``log`` the entries its worker's journal segments in ``directory`` hold beyond the chain's head,
    then delete the segments; returns how many entries were appended (see the module docstring).
    :class:`StoreError` for an unreadable line other than a torn last one, or a gap in the numbering."""
    directory = Path(directory)
    segments = _segments(directory, log.worker)
    if not segments:
        return 0
    head = log.head().seq
    records: list[tuple[int, dt.datetime, str, str, dict[str, Any]]] = []
    for index, path in enumerate(segments):
        lines = path.read_bytes().split(b"\n")
        last = len(lines) - 1
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                record = _parse(line)
            except StoreError:
                if index == len(segments) - 1 and number == last + 1:  # torn tail: never acknowledged
                    continue
                raise StoreError(f"{path}: line {number} is not a journal entry") from None
            if record[0] > head:
                records.append(record)
    records.sort(key=lambda r: r[0])
    appended = 0
    for start in range(0, len(records), _BATCH):
        appended += len(log.append_at(records[start : start + _BATCH], plain=True))
    for path in segments:
        path.unlink()
    return appended


def _parse(line: bytes) -> tuple[int, dt.datetime, str, str, dict[str, Any]]:
    try:
        seq, time_us, kind, actor, payload = json.loads(line.decode("ascii"))
        if not (isinstance(seq, int) and isinstance(time_us, int) and isinstance(payload, dict)):
            raise TypeError
        return seq, _EPOCH + dt.timedelta(microseconds=time_us), kind, actor, payload
    except (ValueError, TypeError, RecursionError, OverflowError):
        raise StoreError("not a journal entry") from None


def _segments(directory: Path, worker: str) -> list[Path]:
    pattern = re.compile(re.escape(_safe(worker)) + r"\.(\d+)\.journal")
    found = []
    for path in directory.glob(f"{_safe(worker)}.*.journal") if directory.is_dir() else ():
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def _segment_path(directory: Path, worker: str, number: int) -> Path:
    return directory / f"{_safe(worker)}.{number}.journal"


def _safe(worker: str) -> str:
    """The worker's name as a file name: other characters than letters, digits, ``-`` and ``_`` as ``%XX``."""
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), worker)


def _check_text(value: Any, name: str, limit: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise StoreError(f"`{name}` must be 1 to {limit} characters, got {value!r}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
