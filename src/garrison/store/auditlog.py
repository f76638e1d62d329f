"""The tamper-evident audit log of the inference service: one SHA-256 hash chain per worker, signed chain heads.

Each entry is ``(worker, seq, time, kind, actor, payload, prev_hash, hash)`` with::

    hash = SHA-256(prev_hash || canonical_json({"actor", "kind", "payload", "seq", "time", "worker"}))

where ``prev_hash`` is the previous entry's hash as 64 ASCII hexadecimal digits (64 zeros for ``seq`` 1), and the
canonical JSON has sorted keys, no spaces, ASCII only, and ``time`` as ISO 8601 in UTC with microseconds. Every
worker (process) of the service keeps its own chain, so workers never wait on one another for the chain's tip.

Entries hold what the caller gives: the service logs digests of request bodies (:func:`payload_digest`), not the
bodies. :meth:`AuditLog.append` returns only once the entry is committed (SQLite: WAL; ``synchronous=FULL`` for a
store opened ``durable``, else ``NORMAL``), so an acknowledged request has an entry that survives a killed process
(and, when durable, a power cut).

The chain alone detects an edited, deleted or reordered entry; it cannot detect the loss of the *last* entries, nor
a log rewritten from scratch with fresh hashes. A signed chain head (:func:`sign_head`, :meth:`AuditLog.export_head`)
sent away from the database (an alert sink, a file on another host) closes both: :func:`verify_log` checks that the
chain still reaches every signed head, with the same hash. It cannot help against someone who holds the signing key
*and* can write the database: they can rewrite the log and sign new heads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select

from garrison.core import InputError, StoreError
from garrison.store.models import AuditLogRow
from garrison.store.records import AuditEntry

if TYPE_CHECKING:
    from garrison.store.store import Store

__all__ = [
    "GENESIS_HASH",
    "HEAD_SCHEMA",
    "PROBLEM_KINDS",
    "AuditLog",
    "ChainHead",
    "LogProblem",
    "LogVerification",
    "SignedHead",
    "entry_hash",
    "load_heads",
    "load_private_key",
    "load_public_key",
    "payload_digest",
    "sign_head",
    "verify_head",
    "verify_log",
]

GENESIS_HASH = "0" * 64
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
HEAD_SCHEMA = "garrison.audit-log-head/1"
PROBLEM_KINDS: tuple[str, ...] = (
    "edited",  # an entry's content no longer matches its hash
    "gap",  # entries missing from the chain: deleted
    "reordered",  # an entry stored under another seq than the one it was written with
    "broken_link",  # an entry's prev_hash is not the hash of the entry before it
    "duplicate_seq",  # two entries claim the same seq
    "truncated",  # the chain ends before a signed head it should reach
    "head_mismatch",  # the entry a signed head vouches for has another hash: the log was rewritten
    "bad_signature",  # a head whose signature does not verify (it is then ignored)
)
_HEX = frozenset("0123456789abcdef")
_INSERT_SQL = "INSERT INTO audit_log (worker, seq, time, kind, actor, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_REORDER_WINDOW = 8  # how far from its place an intact entry is looked for, besides after its predecessor


def payload_digest(data: bytes) -> str:
    """``"sha256:<hex>"`` of ``data``: what the service logs in place of a request body."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_json_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # C; what the encoder writes


def _canonical(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


def _time_text(time: dt.datetime) -> str:
    return time.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(
    prev_hash: str,
    *,
    worker: str,
    seq: int,
    time: dt.datetime,
    kind: str,
    actor: str,
    payload: Mapping[str, Any],
) -> str:
    """The hash of an entry: SHA-256 of ``prev_hash`` (ASCII hex) followed by the entry's canonical JSON."""
    return _digest(prev_hash, worker, seq, _time_text(time), kind, actor, _canonical(payload))


def _digest(
    prev_hash: str, worker: str, seq: int, time: str, kind: str, actor: str, payload_json: bytes
) -> str:
    """:func:`entry_hash` from the payload's canonical JSON, which the log also stores: the document's canonical
    JSON is assembled around it (keys in sorted order, as ``json.dumps(sort_keys=True)`` writes them) instead of
    encoding the payload twice."""
    head = f'{{"actor":{_json_string(actor)},"kind":{_json_string(kind)},"payload":'
    tail = f',"seq":{seq},"time":{_json_string(time)},"worker":{_json_string(worker)}}}'
    return hashlib.sha256(
        b"".join((prev_hash.encode("ascii"), head.encode(), payload_json, tail.encode()))
    ).hexdigest()


def _row_hash(row: Any, *, seq: int | None = None) -> str:
    return entry_hash(
        row.prev_hash,
        worker=row.worker,
        seq=row.seq if seq is None else seq,
        time=row.time,
        kind=row.kind,
        actor=row.actor,
        payload=row.payload,
    )


# ------------------------------------------------------------------------------------------------------- heads


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The tip of one worker's chain: ``seq`` 0 and the genesis hash for an empty chain."""

    worker: str
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A chain head signed with Ed25519 at ``time``; ``signature`` is hexadecimal."""

    worker: str
    seq: int
    hash: str
    time: dt.datetime
    signature: str

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.worker, self.seq, self.hash)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, one line of a heads file (``.jsonl``)."""
        return {
            "schema": HEAD_SCHEMA,
            "algorithm": "ed25519",
            "worker": self.worker,
            "seq": self.seq,
            "hash": self.hash,
            "time": _time_text(self.time),
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SignedHead:
        """Parse the JSON form; :class:`InputError` naming the field when it is not one."""
        if not isinstance(data, dict):
            raise InputError(f"a signed head must be a JSON object, got {type(data).__name__}")
        if data.get("schema") != HEAD_SCHEMA:
            raise InputError(f"`schema` must be {HEAD_SCHEMA!r}, got {data.get('schema')!r}", field="schema")
        if data.get("algorithm") != "ed25519":
            raise InputError(
                f"`algorithm` must be 'ed25519', got {data.get('algorithm')!r}", field="algorithm"
            )
        worker, seq, digest = data.get("worker"), data.get("seq"), data.get("hash")
        if not isinstance(worker, str) or not worker:
            raise InputError("`worker` must be a non-empty string", field="worker")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise InputError(f"`seq` must be an integer >= 0, got {seq!r}", field="seq")
        if not _is_hex(digest, 64):
            raise InputError("`hash` must be 64 hexadecimal digits", field="hash")
        signature = data.get("signature")
        if not _is_hex(signature, 128):
            raise InputError("`signature` must be 128 hexadecimal digits", field="signature")
        try:
            time = dt.datetime.fromisoformat(data.get("time"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError("`time` must be an ISO 8601 time", field="time") from None
        if time.tzinfo is None:
            raise InputError("`time` must carry a UTC offset", field="time")
        return cls(worker, seq, digest, time.astimezone(dt.UTC), signature)  # type: ignore[arg-type]


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX


def _head_message(worker: str, seq: int, digest: str, time: dt.datetime) -> bytes:
    return _canonical(
        {"schema": HEAD_SCHEMA, "worker": worker, "seq": seq, "hash": digest, "time": _time_text(time)}
    )


def sign_head(
    head: ChainHead, private_key: Ed25519PrivateKey, *, time: dt.datetime | None = None
) -> SignedHead:
    """Sign ``head`` (with the time of signing, now unless given)."""
    at = dt.datetime.now(dt.UTC) if time is None else time.astimezone(dt.UTC)
    signature = private_key.sign(_head_message(head.worker, head.seq, head.hash, at))
    return SignedHead(head.worker, head.seq, head.hash, at, signature.hex())


def verify_head(signed: SignedHead, public_key: Ed25519PublicKey) -> bool:
    """Whether ``signed`` carries a valid signature by the key pair of ``public_key``."""
    try:
        public_key.verify(
            bytes.fromhex(signed.signature),
            _head_message(signed.worker, signed.seq, signed.hash, signed.time),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_heads(text: str) -> list[SignedHead]:
    """The signed heads of a JSON Lines text (blank lines skipped); :class:`InputError` naming the line."""
    heads: list[SignedHead] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            heads.append(SignedHead.from_dict(json.loads(line)))
        except (ValueError, RecursionError) as exc:  # InputError is a ValueError; so is a JSON decode error
            reason = exc.reason if isinstance(exc, InputError) else "not valid JSON"
            raise InputError(f"line {number}: {reason}") from None
    return heads


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM bytes; :class:`InputError` for anything else."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise InputError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"the public key must be Ed25519, got {type(key).__name__}")
    return key


def load_private_key(data: bytes, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM bytes; :class:`InputError` (never showing the key) for anything else."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InputError("not a PEM private key, or the wrong password") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"the private key must be Ed25519, got {type(key).__name__}")
    return key


# -------------------------------------------------------------------------------------------------- the log


def _check_text(value: str, name: str, limit: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise StoreError(f"`{name}` must be 1 to {limit} characters, got {value!r}")
    return value


def _plain_json(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain-JSON copy of ``payload`` (tuples become lists, keys strings), refusing what JSON cannot hold."""
    try:
        return json.loads(_canonical(dict(payload or {})))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(f"the audit log payload cannot be stored as JSON: {exc}") from None


class AuditLog:
    """The chain of one worker: ``AuditLog(store, worker="api-1")``; safe to share between threads.

    Two processes must not use the same ``worker`` at once (the second one's appends fail with
    :class:`StoreError`: the database refuses a second entry with the same ``(worker, seq)``).
    """

    def __init__(self, store: Store, *, worker: str, signing_key: Ed25519PrivateKey | None = None) -> None:
        self.store = store
        self.worker = worker
        self.signing_key = signing_key
        self._lock = threading.Lock()
        self._head: ChainHead | None = None
        self._raw: Any = None

    def __repr__(self) -> str:
        return f"AuditLog(worker={self.worker!r}, store={self.store!r})"

    def append(self, kind: str, actor: str, payload: Mapping[str, Any] | None = None) -> AuditEntry:
        """Add an entry; returns it once committed to the database (durably: an acknowledged entry stays)."""
        return self.append_many([(kind, actor, payload)])[0]

    def append_many(self, items: Iterable[tuple[str, str, Mapping[str, Any] | None]]) -> list[AuditEntry]:
        """Add entries ``(kind, actor, payload)`` in one transaction: all of them are committed, or none."""
        prepared = [
            (_check_text(k, "kind", 100), _check_text(a, "actor", 200), _plain_json(p)) for k, a, p in items
        ]
        with self._lock:
            seq, now = self._load_head().seq, dt.datetime.now(dt.UTC)
            return self._commit([(seq + i, now, k, a, p) for i, (k, a, p) in enumerate(prepared, start=1)])

    def append_at(
        self,
        records: Sequence[tuple[int, dt.datetime, str, str, Mapping[str, Any] | None]],
        *,
        plain: bool = False,
    ) -> list[AuditEntry]:
        """Add entries ``(seq, time, kind, actor, payload)`` written ahead elsewhere (the service's
        :class:`~garrison.store.journal.AuditJournal`), in one transaction. Their ``seq`` must continue the chain
        one by one (:class:`StoreError` otherwise); their ``time`` is kept. ``plain``: the payloads are dicts just
        parsed from JSON (not copied again)."""
        prepared = [
            (seq, time.astimezone(dt.UTC), _check_text(k, "kind", 100), _check_text(a, "actor", 200),
             p if plain else _plain_json(p))
            for seq, time, k, a, p in records
        ]  # fmt: skip
        with self._lock:
            expected = self._load_head().seq + 1
            for offset, record in enumerate(prepared):
                if record[0] != expected + offset:
                    raise StoreError(f"audit log {self.worker!r}: entry {record[0]} does not continue the chain "
                                     f"at {expected + offset}")  # fmt: skip
            return self._commit(prepared)

    def append_encoded(self, records: Sequence[tuple[int, int, str, str, bytes]]) -> ChainHead:
        """The journal's fast path of :meth:`append_at`: ``(seq, time_us, kind, actor, payload_json)`` with the
        time in microseconds since the epoch (UTC) and the payload already in its canonical JSON (the log's own
        encoding: sorted keys, compact, ASCII); the kind and actor were checked when journalled. Returns the new
        head; no :class:`AuditEntry` objects are made."""
        if not records:
            return self.head()
        with self._lock:
            head = self._load_head()
            rows = []
            prev, worker = head.hash, self.worker
            # what repeats from entry to entry is encoded once per batch: the kind and actor (a route and a key),
            # the worker, and the time's second ("2026-11-27T15:00:00"); the document is the one entry_hash makes
            names: dict[tuple[str, str], bytes] = {}
            tail_worker = f',"worker":{_json_string(worker)}}}'.encode()
            second, prefix = -1, ""
            for expected, (seq, time_us, kind, actor, payload) in enumerate(records, start=head.seq + 1):
                if seq != expected:
                    raise StoreError(
                        f"audit log {worker!r}: entry {seq} does not continue the chain at {expected}"
                    )
                if time_us // 1_000_000 != second:
                    second = time_us // 1_000_000
                    prefix = (_EPOCH + dt.timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S")
                iso = f"{prefix}.{time_us % 1_000_000:06d}+00:00"
                start = names.get((kind, actor))
                if start is None:
                    start = names[(kind, actor)] = (
                        f'{{"actor":{_json_string(actor)},"kind":{_json_string(kind)},"payload":'.encode()
                    )
                digest = hashlib.sha256(b"".join((prev.encode("ascii"), start, payload,
                                                  f',"seq":{seq},"time":"{iso}"'.encode(), tail_worker))).hexdigest()  # fmt: skip
                # SQLite's text form of the naive UTC time the ORM stores: "YYYY-MM-DD HH:MM:SS.ffffff"
                rows.append((worker, seq, f"{iso[:10]} {iso[11:26]}", kind, actor, payload.decode("ascii"), prev,
                             digest))  # fmt: skip
                prev = digest
            try:
                if self._sqlite():
                    self._execute_sqlite(rows)
                else:
                    self._insert_orm([AuditEntry(w, q, _EPOCH + dt.timedelta(microseconds=r[1]), k, a,
                                                 json.loads(r[4]), p, h)
                                      for (w, q, _, k, a, _, p, h), r in zip(rows, records, strict=True)])  # fmt: skip
            except StoreError:
                self._head = None
                raise
            self._head = ChainHead(worker, records[-1][0], prev)
            return self._head

    def _commit(self, prepared: list[tuple[int, dt.datetime, str, str, dict[str, Any]]]) -> list[AuditEntry]:
        """Hash and store entries that continue the chain (the caller holds the lock and checked their seq)."""
        _check_text(self.worker, "worker", 200)
        if not prepared:
            return []
        head = self._load_head()
        entries: list[AuditEntry] = []
        texts: list[bytes] = []
        prev = head.hash
        for seq, time, kind, actor, payload in prepared:
            text = _canonical(payload)
            digest = _digest(prev, self.worker, seq, _time_text(time), kind, actor, text)
            entries.append(AuditEntry(self.worker, seq, time, kind, actor, payload, prev, digest))
            texts.append(text)
            prev = digest
        try:
            if self._sqlite():
                self._insert_sqlite(entries, texts)
            else:
                self._insert_orm(entries)
        except StoreError:
            self._head = None  # read the tip again next time: another process may have written it
            raise
        self._head = ChainHead(self.worker, entries[-1].seq, prev)
        return entries

    def close(self) -> None:
        """Return the log's own database connection (SQLite) to the pool."""
        with self._lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None

    def _sqlite(self) -> bool:
        engine = self.store._engine
        return engine is not None and engine.dialect.name == "sqlite" and self.store.url != "sqlite://"

    def _insert_sqlite(self, entries: list[AuditEntry], payloads: list[bytes]) -> None:
        """One executemany and commit on a connection kept for the log: about 20 µs an entry where the ORM's
        session costs 300 µs. The values are stored as the ORM stores them (naive UTC text, compact JSON: here the
        payload's canonical JSON, already made for the hash), so both read them back alike."""
        rows = [
            (e.worker, e.seq, e.time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), e.kind, e.actor,
             text.decode("ascii"), e.prev_hash, e.hash)
            for e, text in zip(entries, payloads, strict=True)
        ]  # fmt: skip
        self._execute_sqlite(rows)

    def _execute_sqlite(self, rows: list[tuple[Any, ...]]) -> None:
        import sqlite3

        if self._raw is None:
            assert self.store._engine is not None
            self._raw = self.store._engine.raw_connection()
        try:
            cursor = self._raw.cursor()
            cursor.executemany(_INSERT_SQL, rows)
            self._raw.commit()
        except sqlite3.Error as exc:
            self._raw.rollback()
            raise StoreError(f"cannot append to the audit log: {exc}") from None

    def _insert_orm(self, entries: list[AuditEntry]) -> None:
        with self.store._session() as s:
            s.add_all(
                AuditLogRow(worker=e.worker, seq=e.seq, time=e.time, kind=e.kind, actor=e.actor, payload=e.payload,
                            prev_hash=e.prev_hash, hash=e.hash)
                for e in entries
            )  # fmt: skip

    def head(self) -> ChainHead:
        """The tip of this worker's chain as committed."""
        with self._lock:
            return self._load_head()

    def export_head(
        self, sink: Callable[[dict[str, Any]], object], *, private_key: Ed25519PrivateKey | None = None
    ) -> SignedHead:
        """Sign the current head (with ``private_key``, else the log's ``signing_key``) and pass its JSON form to
        ``sink`` (an alert sink, a function appending to a file elsewhere); returns the signed head."""
        key = private_key if private_key is not None else self.signing_key
        if key is None:
            raise InputError("no signing key: give AuditLog(signing_key=...) or export_head(private_key=...)")
        signed = sign_head(self.head(), key)
        sink(signed.to_dict())
        return signed

    def entries(self, *, after_seq: int = 0) -> list[AuditEntry]:
        """This worker's entries with ``seq > after_seq``, in order (as stored: check them with :func:`verify_log`)."""
        query = (
            select(AuditLogRow)
            .where(AuditLogRow.worker == self.worker, AuditLogRow.seq > after_seq)
            .order_by(AuditLogRow.seq, AuditLogRow.id)
        )
        with self.store._session() as s:
            return [_entry(r) for r in s.scalars(query)]

    def _load_head(self) -> ChainHead:
        if self._head is None:
            with self.store._session() as s:
                row = s.execute(
                    select(AuditLogRow.seq, AuditLogRow.hash)
                    .where(AuditLogRow.worker == self.worker)
                    .order_by(AuditLogRow.seq.desc())
                    .limit(1)
                ).first()
            self._head = (
                ChainHead(self.worker, 0, GENESIS_HASH) if row is None else ChainHead(self.worker, *row)
            )
        return self._head


def _entry(r: AuditLogRow) -> AuditEntry:
    return AuditEntry(r.worker, r.seq, r.time, r.kind, r.actor, r.payload, r.prev_hash, r.hash)


# ------------------------------------------------------------------------------------------------ verification


@dataclass(frozen=True, slots=True)
class LogProblem:
    """One thing wrong with the log: ``kind`` is one of ``PROBLEM_KINDS``; ``seq`` None when no entry applies."""

    worker: str
    seq: int | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"worker": self.worker, "seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class LogVerification:
    """What :func:`verify_log` found: the problems, and the tip of each chain it read."""

    problems: tuple[LogProblem, ...]
    chains: dict[str, ChainHead] = field(default_factory=dict)
    heads_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "chains": {w: {"seq": h.seq, "hash": h.hash} for w, h in sorted(self.chains.items())},
            "heads_checked": self.heads_checked,
        }


def verify_log(
    store: Store,
    *,
    heads: Iterable[SignedHead | Mapping[str, Any]] | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> LogVerification:
    """Check every worker's chain, and that it still reaches each signed head in ``heads``.

    Returns the problems found (see ``PROBLEM_KINDS``), never raises for them. Heads need ``public_key``: a head
    whose signature does not verify is reported and ignored. :class:`InputError` for a head that cannot be parsed
    or heads without a key.
    """
    signed = [h if isinstance(h, SignedHead) else SignedHead.from_dict(h) for h in heads or ()]
    if signed and public_key is None:
        raise InputError("`public_key` is required to check signed heads")
    problems: list[LogProblem] = []
    chains: dict[str, ChainHead] = {}
    wanted: dict[str, set[int]] = {}
    for head in signed:
        wanted.setdefault(head.worker, set()).add(head.seq)
    hashes: dict[str, dict[int, str]] = {}  # only at the seqs that signed heads name
    columns = AuditLogRow.__table__.c
    with store._session() as s:
        workers = list(s.scalars(select(AuditLogRow.worker).distinct().order_by(AuditLogRow.worker)))
        for worker in workers:
            # plain rows, not ORM objects: nothing accumulates in the session across workers
            rows = s.execute(
                select(*columns).where(columns.worker == worker).order_by(columns.seq, columns.id)
            ).all()
            problems.extend(_check_chain(worker, rows))
            chains[worker] = ChainHead(worker, rows[-1].seq, rows[-1].hash)
            seqs = wanted.get(worker, set())
            hashes[worker] = {r.seq: r.hash for r in rows if r.seq in seqs}
    checked = 0
    for head in signed:
        assert public_key is not None
        if not verify_head(head, public_key):
            problems.append(
                LogProblem(
                    head.worker,
                    head.seq,
                    "bad_signature",
                    f"the signed head of seq {head.seq} does not verify",
                )
            )
            continue
        checked += 1
        problems.extend(_check_head(head, chains.get(head.worker), hashes.get(head.worker, {})))
    problems.sort(key=lambda p: (p.worker, -1 if p.seq is None else p.seq, p.kind))
    return LogVerification(tuple(problems), chains, checked)


def _check_chain(worker: str, rows: Sequence[Any]) -> list[LogProblem]:
    problems: list[LogProblem] = []
    seq_of_hash = {r.hash: r.seq for r in rows}
    seq_of_hash[GENESIS_HASH] = 0
    previous: Any = None
    previous_sound = True
    for row in rows:
        expected = 1 if previous is None else previous.seq + 1
        if previous is not None and row.seq == previous.seq:
            problems.append(LogProblem(worker, row.seq, "duplicate_seq", f"two entries have seq {row.seq}"))
        elif row.seq > expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected} to {row.seq - 1}"
            problems.append(LogProblem(worker, expected, "gap", f"entries {missing} are missing (deleted)"))
        sound = _row_hash(row) == row.hash
        if not sound:
            written_as = _written_as(row, seq_of_hash)
            if written_as is not None:
                problems.append(
                    LogProblem(
                        worker,
                        row.seq,
                        "reordered",
                        f"entry stored as seq {row.seq} was written as seq {written_as}",
                    )
                )
            else:
                problems.append(
                    LogProblem(
                        worker, row.seq, "edited", f"entry {row.seq} does not match its hash: it was altered"
                    )
                )
        elif previous_sound and row.seq == expected:
            link = GENESIS_HASH if previous is None else previous.hash
            if row.prev_hash != link:
                problems.append(
                    LogProblem(
                        worker,
                        row.seq,
                        "broken_link",
                        f"entry {row.seq} does not link to the entry before it",
                    )
                )
        previous, previous_sound = row, sound
    return problems


def _written_as(row: Any, seq_of_hash: dict[str, int]) -> int | None:
    """The seq ``row`` was written with, when it is intact but stored under another seq; else None."""
    candidates = {row.seq + d for d in range(-_REORDER_WINDOW, _REORDER_WINDOW + 1) if d and row.seq + d > 0}
    linked = seq_of_hash.get(row.prev_hash)  # the seq its predecessor is stored under now (moved or not)
    if linked is not None:
        candidates.add(linked + 1)
    for seq in sorted(candidates - {row.seq}):
        if _row_hash(row, seq=seq) == row.hash:
            return seq
    return None


def _check_head(head: SignedHead, chain: ChainHead | None, hashes: dict[int, str]) -> list[LogProblem]:
    if head.seq == 0:
        return []
    when = _time_text(head.time)
    if chain is None or chain.seq < head.seq:
        end = "is empty" if chain is None else f"ends at seq {chain.seq}"
        return [
            LogProblem(
                head.worker,
                head.seq,
                "truncated",
                f"the chain {end}, but a head signed at {when} vouches for seq {head.seq}",
            )
        ]
    stored = hashes.get(head.seq)
    if stored is not None and stored != head.hash:
        return [
            LogProblem(
                head.worker,
                head.seq,
                "head_mismatch",
                f"entry {head.seq} differs from the head signed at {when}: the log was rewritten",
            )
        ]
    return []
