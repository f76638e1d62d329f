"""Streaming AES-256-GCM encryption of files (the STREAM construction), key wrapping and key rotation.

Body: the plaintext is cut into chunks of ``chunk_size`` bytes (the last one shorter or, for an empty file, empty;
a plaintext that is a multiple of the chunk size ends with a full chunk). Chunk ``i`` is
``AES-256-GCM(data key, nonce, chunk, associated data = header bytes 0..19)`` (ciphertext then 16-byte tag) with
``nonce = nonce prefix (7) || i as uint32 big-endian (4) || last flag (1: 0x01 on the final chunk, else 0x00)``.
So a dropped, duplicated or reordered chunk fails (wrong counter), a truncation at a chunk boundary fails (no
chunk carries the last flag), and appended bytes fail (the real last chunk is no longer last). Memory is two
chunk buffers whatever the file size.
"""

from __future__ import annotations

import os
import queue
import secrets
import stat
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from garrison.core.atomic_write import atomic_output
from garrison.core.errors import InputError, IntegrityError, WrongKeyError
from garrison.protect.header import HEADER_SIZE, MAX_CHUNK_SIZE, NONCE_PREFIX_SIZE, WRAP_NONCE_SIZE, Header
from garrison.protect.keys import KEY_SIZE, KeyEncryptionKey

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "decrypt_file",
    "decrypt_stream",
    "encrypt_file",
    "encrypt_stream",
    "read_header",
    "rotate_key",
]

DEFAULT_CHUNK_SIZE = 1024 * 1024
TAG_SIZE = 16
MAX_CHUNKS = 2**32
_LAST = b"\x01"
_NOT_LAST = b"\x00"

Progress = Callable[[int], None]


def _read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src``; fewer bytes only at end of file."""
    total = 0
    size = len(buf)
    while total < size:
        n = src.readinto(buf[total:])
        if not n:
            break
        total += n
    return total


def _write_all(dst: BinaryIO, data: memoryview) -> None:
    while data:
        n = dst.write(data)
        if n is None:  # a non-blocking raw stream; files never do this
            raise OSError("output stream would block")
        data = data[n:]


def _wrap(data_key: bytes, *, chunk_size: int, nonce_prefix: bytes, key: KeyEncryptionKey) -> Header:
    from garrison.protect.keys import KDF_BY_ID

    kdf_id, params, salt, kek = key._new_slot_kek()
    draft = Header(
        chunk_size=chunk_size,
        nonce_prefix=nonce_prefix,
        kdf=KDF_BY_ID[kdf_id](*params) if kdf_id else None,
        salt=salt,
        wrap_nonce=secrets.token_bytes(WRAP_NONCE_SIZE),
        wrapped_key=bytes(KEY_SIZE + TAG_SIZE),
    )
    wrapped = AESGCM(kek).encrypt(draft.wrap_nonce, data_key, draft.wrap_aad)
    return replace(draft, wrapped_key=wrapped)


def _unwrap(header: Header, key: KeyEncryptionKey, *, path: str | Path | None) -> bytes:
    if header.kdf is not None and not key.is_passphrase:
        raise WrongKeyError(
            f"the file is protected by a passphrase ({header.kdf.name}), but {key.source} was given",
            path=path,
        )
    kek = key._slot_kek(header.kdf, header.salt)
    if kek is None:
        raise WrongKeyError(f"the file is protected by a key, but {key.source} was given", path=path)
    try:
        return AESGCM(kek).decrypt(header.wrap_nonce, header.wrapped_key, header.wrap_aad)
    except InvalidTag:
        raise WrongKeyError(f"{key.source} does not open this file", path=path) from None


def read_header(src: BinaryIO, *, path: str | Path | None = None) -> Header:
    """Read and parse the header at the current position of ``src``."""
    buf = bytearray(HEADER_SIZE)
    n = _read_full(src, memoryview(buf))
    return Header.parse(bytes(buf[:n]), path=path)


def _regular_fd(stream: BinaryIO) -> int | None:
    try:
        fd = stream.fileno()
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None


class _Writer:
    """Writes output chunks on a background thread, so the (GIL-free) write of chunk ``i`` overlaps the
    encryption of chunk ``i + 1``. A few fixed buffers circulate: memory does not grow with the file.

    With ``flush_early`` on a regular file, a second thread also ``fdatasync``s the file after every completed
    window, so the disk writes while we encrypt and the caller's final ``fsync`` finds at most a window or two
    left instead of the whole file."""

    _DEPTH = 3
    _WINDOW = 16 * 1024 * 1024

    def __init__(self, dst: BinaryIO, size: int, *, flush_early: bool = False) -> None:
        self._dst = dst
        self._fd = _regular_fd(dst) if flush_early else None
        self._unsynced = 0
        self._kick = threading.Event()
        self._closing = False
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(self._DEPTH):
            self._free.put(memoryview(bytearray(size)))
        self._todo: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="garrison-protect-writer", daemon=True)
        self._syncer = (
            threading.Thread(target=self._sync, name="garrison-protect-sync", daemon=True)
            if self._fd is not None
            else None
        )

    def __enter__(self) -> _Writer:
        self._thread.start()
        if self._syncer is not None:
            self._syncer.start()
        return self

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            if self._error is None:
                try:
                    _write_all(self._dst, item)
                    self._unsynced += len(item)
                    if self._syncer is not None and self._unsynced >= self._WINDOW:
                        self._unsynced = 0
                        self._kick.set()
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc
            self._free.put(item.obj if isinstance(item.obj, memoryview) else memoryview(item.obj))

    def _sync(self) -> None:
        assert self._fd is not None
        sync = getattr(os, "fdatasync", os.fsync)
        while True:
            self._kick.wait()
            self._kick.clear()
            if self._closing:
                return
            try:
                sync(self._fd)
            except OSError as exc:
                self._error = self._error or exc
                return

    def buffer(self) -> memoryview:
        out = self._free.get()
        if self._error is not None:
            raise self._error
        return out

    def submit(self, data: memoryview) -> None:
        self._todo.put(data)

    def __exit__(self, *exc: object) -> None:
        self._todo.put(None)
        self._thread.join()
        if self._syncer is not None:
            self._closing = True
            self._kick.set()
            self._syncer.join()
        if self._error is not None and exc[0] is None:
            raise self._error


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: KeyEncryptionKey,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
    flush_early: bool = False,
) -> int:
    """Encrypt ``src`` into ``dst`` (binary streams) under a new random data key wrapped by ``key``.
    Returns the number of plaintext bytes. ``progress`` is called with each chunk's plaintext length.
    ``flush_early`` (for a caller that will ``fsync`` ``dst``) syncs a regular file as it is written, so the
    disk works while we encrypt."""
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"`chunk_size` must be in [1, {MAX_CHUNK_SIZE}], got {chunk_size}")
    data_key = AESGCM.generate_key(bit_length=256)
    prefix = secrets.token_bytes(NONCE_PREFIX_SIZE)
    header = _wrap(data_key, chunk_size=chunk_size, nonce_prefix=prefix, key=key)
    _write_all(dst, memoryview(header.to_bytes()))
    aead, aad = AESGCM(data_key), header.bound
    cur, nxt = memoryview(bytearray(chunk_size)), memoryview(bytearray(chunk_size))
    total, counter = 0, 0
    with _Writer(dst, chunk_size + TAG_SIZE, flush_early=flush_early) as writer:
        n = _read_full(src, cur)
        while True:
            # a full chunk is the last one only when nothing follows it: read ahead to know
            m = _read_full(src, nxt) if n == chunk_size else 0
            last = m == 0
            if counter >= MAX_CHUNKS:
                raise InputError(f"input too large for chunk size {chunk_size} (more than 2**32 chunks)")
            nonce = prefix + counter.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)
            out = writer.buffer()
            k = aead.encrypt_into(nonce, cur[:n], aad, out[: n + TAG_SIZE])
            writer.submit(out[:k])
            total += n
            if progress is not None:
                progress(n)
            if last:
                return total
            cur, nxt, n = nxt, cur, m
            counter += 1


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: KeyEncryptionKey,
    *,
    path: str | Path | None = None,
    progress: Progress | None = None,
    flush_early: bool = False,
) -> int:
    """Decrypt ``src`` into ``dst`` (``flush_early`` as for :func:`encrypt_stream`); returns the plaintext
    length. Each chunk is verified before it is written, but the stream as a whole is only known complete when
    this returns: on an error, discard what ``dst`` received (:func:`decrypt_file` does). ``path`` names the
    input in errors."""
    header = read_header(src, path=path)
    data_key = _unwrap(header, key, path=path)
    return _decrypt_body(src, dst, header, data_key, path=path, progress=progress, flush_early=flush_early)


def _decrypt_body(
    src: BinaryIO,
    dst: BinaryIO,
    header: Header,
    data_key: bytes,
    *,
    path: str | Path | None,
    progress: Progress | None,
    flush_early: bool = False,
) -> int:
    aead, aad, prefix = AESGCM(data_key), header.bound, header.nonce_prefix
    size = header.chunk_size + TAG_SIZE
    cur, nxt = memoryview(bytearray(size)), memoryview(bytearray(size))
    total, counter = 0, 0
    with _Writer(dst, header.chunk_size, flush_early=flush_early) as writer:
        n = _read_full(src, cur)
        while True:
            if n < TAG_SIZE:
                where = "after the header" if counter == 0 and n == 0 else f"inside chunk {counter}"
                raise IntegrityError(f"truncated: the ciphertext ends {where}", path=path)
            m = _read_full(src, nxt) if n == size else 0
            last = m == 0
            if counter >= MAX_CHUNKS:
                raise IntegrityError("more than 2**32 chunks", path=path)
            nonce = prefix + counter.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)
            out = writer.buffer()
            try:
                k = aead.decrypt_into(nonce, cur[:n], aad, out[: n - TAG_SIZE])
            except InvalidTag:
                detail = (
                    "truncated, extended, reordered or altered"
                    if last
                    else "altered, reordered or a chunk is missing or duplicated"
                )
                raise IntegrityError(f"chunk {counter} failed authentication ({detail})", path=path) from None
            writer.submit(out[:k])
            total += k
            if progress is not None:
                progress(k)
            if last:
                return total
            cur, nxt, n = nxt, cur, m
            counter += 1


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _open_input(path: Path) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)  # raw reads: readinto straight into our buffers
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from None


def _write_via_temp(dst: Path, write: Callable[[BinaryIO], int], *, mode: int, durable: bool) -> int:
    """Run ``write`` into :func:`~garrison.core.atomic_write.atomic_output` for ``dst``: the output appears only
    when ``write`` returned. A missing output folder is an error here, not created (a mistyped ``-o``)."""
    with atomic_output(dst, mode=mode, durable=durable, make_parents=False, buffered=False) as fh:
        return write(fh)


def encrypt_file(
    src: str | Path,
    dst: str | Path,
    key: KeyEncryptionKey,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    mode: int = 0o600,
    durable: bool = True,
    progress: Progress | None = None,
) -> int:
    """Encrypt file ``src`` to ``dst`` (written atomically, ``mode`` 0600 by default). Returns the plaintext
    length. Memory stays at a few chunk buffers whatever the size of the file. ``durable=False`` skips the
    ``fsync`` before the rename (the output is still never partial, but a crash soon after may lose it)."""
    src_p, dst_p = Path(src), Path(dst)
    if _same_file(src_p, dst_p):
        raise InputError("input and output are the same file", path=dst_p)
    with _open_input(src_p) as fin:
        return _write_via_temp(
            dst_p,
            lambda out: encrypt_stream(
                fin, out, key, chunk_size=chunk_size, progress=progress, flush_early=durable
            ),
            mode=mode,
            durable=durable,
        )


def decrypt_file(
    src: str | Path,
    dst: str | Path,
    key: KeyEncryptionKey,
    *,
    mode: int = 0o600,
    durable: bool = True,
    progress: Progress | None = None,
) -> int:
    """Decrypt file ``src`` to ``dst`` (``durable`` as for :func:`encrypt_file`). The plaintext goes to a temporary file beside ``dst`` that is renamed
    over it only after the last chunk verified; on any failure no output (and no temporary file) is left.
    Raises :class:`WrongKeyError` (the key does not open the file) before anything is written, and
    :class:`IntegrityError` when the file was altered, truncated, reordered or extended."""
    src_p, dst_p = Path(src), Path(dst)
    if _same_file(src_p, dst_p):
        raise InputError("input and output are the same file", path=dst_p)
    with _open_input(src_p) as fin:
        header = read_header(fin, path=src_p)  # type: ignore[arg-type]
        data_key = _unwrap(header, key, path=src_p)
        return _write_via_temp(
            dst_p,
            lambda out: _decrypt_body(  # type: ignore[arg-type]
                fin, out, header, data_key, path=src_p, progress=progress, flush_early=durable
            ),
            mode=mode,
            durable=durable,
        )


def rotate_key(path: str | Path, old_key: KeyEncryptionKey, new_key: KeyEncryptionKey) -> None:
    """Re-wrap the file's data key under ``new_key``: the fixed-size header is rewritten in place and the body
    is not touched, so rotating a 10 GB file costs one small write. The body is not verified here.

    This replaces the key that opens the file; it does not change the data key, so whoever already learned
    the data key (or kept the old header and the old key) can still read it: re-encrypt for that."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDWR)
    except OSError as exc:
        raise InputError(f"cannot open for rotation: {exc.strerror}", path=p) from None
    with os.fdopen(fd, "r+b", buffering=0) as fh:
        header = read_header(fh, path=p)  # type: ignore[arg-type]
        data_key = _unwrap(header, old_key, path=p)
        new = _wrap(data_key, chunk_size=header.chunk_size, nonce_prefix=header.nonce_prefix, key=new_key)
        raw = new.to_bytes()
        assert len(raw) == HEADER_SIZE
        # one write of 117 bytes at offset 0 lies within one disk sector; a torn write would fail the checksum
        os.pwrite(fh.fileno(), raw, 0)
        os.fsync(fh.fileno())
