"""The fixed-size header of a Garrison encrypted file (format version 1), parsed from untrusted bytes.

Layout (integers big-endian)::

    offset size  field
         0    8  magic b"GRSN-ENC"
         8    1  format version (1)
         9    4  chunk size: plaintext bytes per chunk, 1 .. 64 MiB
        13    7  nonce prefix (random per file)
    ---- bytes 0..19 are bound to the data key: the associated data of every chunk and of the key wrap
        20    1  KDF id: 0 raw key (key file / env), 1 scrypt, 2 argon2id
        21   12  KDF parameters, three uint32: scrypt (n, r, p); argon2id (iterations, lanes, memory KiB); 0 for raw
        33   16  KDF salt (zeros for a raw key)
        49   12  wrap nonce (random at every wrap)
        61   48  wrapped data key: AES-256-GCM(KEK, wrap nonce, data key, associated data = bytes 0..60)
       109    8  checksum: SHA-256(bytes 0..108)[:8]
       117       body: the chunks

The checksum is not a security mechanism (anyone can recompute it); it tells accidental corruption of the key slot
(an integrity failure, exit 1) from a key that does not open the file (exit 2). Security comes from GCM: bytes 0..60
are authenticated by the key wrap, bytes 0..19 also by every chunk.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from garrison.core.errors import InputError, IntegrityError
from garrison.protect.keys import KDF_BY_ID, SALT_SIZE, KdfParams

__all__ = ["HEADER_SIZE", "MAGIC", "MAX_CHUNK_SIZE", "VERSION", "Header"]

MAGIC = b"GRSN-ENC"
VERSION = 1
NONCE_PREFIX_SIZE = 7
WRAP_NONCE_SIZE = 12
WRAPPED_KEY_SIZE = 48
CHECKSUM_SIZE = 8
MAX_CHUNK_SIZE = 64 * 1024 * 1024

_BOUND = struct.Struct(">8sBI7s")  # magic, version, chunk size, nonce prefix
_SLOT = struct.Struct(">BIII16s12s48s")  # kdf id, 3 params, salt, wrap nonce, wrapped key
BOUND_SIZE = _BOUND.size  # 20
WRAP_AAD_SIZE = BOUND_SIZE + _SLOT.size - WRAPPED_KEY_SIZE  # 61
HEADER_SIZE = BOUND_SIZE + _SLOT.size + CHECKSUM_SIZE  # 117


def _checksum(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:CHECKSUM_SIZE]


@dataclass(frozen=True)
class Header:
    """One parsed (or to-be-written) header. ``kdf`` is ``None`` for a raw key."""

    chunk_size: int
    nonce_prefix: bytes
    kdf: KdfParams | None
    salt: bytes
    wrap_nonce: bytes
    wrapped_key: bytes

    @property
    def bound(self) -> bytes:
        """Bytes 0..19: associated data of every chunk (rotation never changes them)."""
        return _BOUND.pack(MAGIC, VERSION, self.chunk_size, self.nonce_prefix)

    def _slot_fields(self) -> bytes:
        kdf_id, params = (0, (0, 0, 0)) if self.kdf is None else (self.kdf.kdf_id, self.kdf.as_fields())
        return _SLOT.pack(kdf_id, *params, self.salt, self.wrap_nonce, self.wrapped_key)

    @property
    def wrap_aad(self) -> bytes:
        """Bytes 0..60: associated data of the key wrap."""
        return (self.bound + self._slot_fields())[:WRAP_AAD_SIZE]

    def to_bytes(self) -> bytes:
        body = self.bound + self._slot_fields()
        return body + _checksum(body)

    @classmethod
    def parse(cls, raw: bytes, *, path: str | Path | None = None) -> Header:
        """Parse the first bytes of a file. Raises :class:`InputError` when they are not a Garrison encrypted
        file of a version this code reads, :class:`IntegrityError` when they are one that was damaged."""
        raw = bytes(raw[:HEADER_SIZE])
        if not raw:
            raise InputError("is empty, not a Garrison encrypted file", path=path)
        if raw[: len(MAGIC)] != MAGIC[: len(raw)]:
            raise InputError("is not a Garrison encrypted file (bad magic bytes)", path=path)
        if len(raw) <= len(MAGIC):
            raise IntegrityError("truncated: the file ends inside the header", path=path)
        if raw[8] != VERSION:
            raise InputError(
                f"unsupported encrypted-file format version {raw[8]} (this Garrison reads {VERSION})",
                path=path,
            )
        if len(raw) < HEADER_SIZE:
            raise IntegrityError("truncated: the file ends inside the header", path=path)
        if _checksum(raw[:-CHECKSUM_SIZE]) != raw[-CHECKSUM_SIZE:]:
            raise IntegrityError("corrupt header (checksum mismatch)", path=path)
        _, _, chunk_size, prefix = _BOUND.unpack_from(raw, 0)
        kdf_id, a, b, c, salt, wrap_nonce, wrapped = _SLOT.unpack_from(raw, BOUND_SIZE)
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise IntegrityError(f"corrupt header (chunk size {chunk_size} out of range)", path=path)
        kdf: KdfParams | None
        if kdf_id == 0:
            if (a, b, c) != (0, 0, 0) or salt != bytes(SALT_SIZE):
                raise IntegrityError("corrupt header (KDF fields set for a raw key)", path=path)
            kdf = None
        elif kdf_id in KDF_BY_ID:
            kind = KDF_BY_ID[kdf_id]
            try:
                kdf = kind(a, b, c)
            except ValueError as exc:
                # an honest writer may have used costs above our caps: a usage problem, not tampering
                raise InputError(
                    f"{kind.name} parameters out of the accepted range: {exc}", path=path
                ) from None
        else:
            raise IntegrityError(f"corrupt header (unknown KDF id {kdf_id})", path=path)
        return cls(
            chunk_size=chunk_size,
            nonce_prefix=prefix,
            kdf=kdf,
            salt=salt,
            wrap_nonce=wrap_nonce,
            wrapped_key=wrapped,
        )
