"""Key-encryption keys: a random 256-bit key (file or environment variable) or a passphrase stretched by a KDF.

A key's text form is ``garrison-kek-v1:`` followed by the 32 key bytes in unpadded base64url (59 characters). The
same text goes in a key file (written 0600, never overwritten unless asked) or in an environment variable. No
message, ``repr`` or exception of this module contains key material or a passphrase.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from garrison.core.errors import InputError

__all__ = [
    "KEY_PREFIX",
    "Argon2idParams",
    "KeyEncryptionKey",
    "ScryptParams",
    "generate_key",
    "write_key_file",
]

KEY_PREFIX = "garrison-kek-v1:"
KEY_SIZE = 32
SALT_SIZE = 16
# Resource caps for KDF parameters read from a file (a forged header must not make us allocate 64 GiB).
MAX_KDF_MEMORY = 1 << 30
MAX_KDF_ITERATIONS = 64
MAX_KDF_LANES = 64


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters: ``n`` (a power of two), ``r`` and ``p``; memory is ``128 * n * r`` bytes."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    kdf_id = 1
    name = "scrypt"

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ValueError(f"`n` must be a power of two >= 2, got {self.n}")
        if not 1 <= self.r <= 32:
            raise ValueError(f"`r` must be in [1, 32], got {self.r}")
        if not 1 <= self.p <= 16:
            raise ValueError(f"`p` must be in [1, 16], got {self.p}")
        if 128 * self.n * self.r > MAX_KDF_MEMORY:
            raise ValueError(f"scrypt memory 128*n*r must be <= 1 GiB, got {128 * self.n * self.r} bytes")

    def as_fields(self) -> tuple[int, int, int]:
        return (self.n, self.r, self.p)

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        return Scrypt(salt=salt, length=KEY_SIZE, n=self.n, r=self.r, p=self.p).derive(passphrase)


@dataclass(frozen=True)
class Argon2idParams:
    """Argon2id cost parameters (RFC 9106): ``iterations``, ``lanes`` and ``memory_kib`` (KiB)."""

    iterations: int = 3
    lanes: int = 4
    memory_kib: int = 64 * 1024

    kdf_id = 2
    name = "argon2id"

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= MAX_KDF_ITERATIONS:
            raise ValueError(f"`iterations` must be in [1, {MAX_KDF_ITERATIONS}], got {self.iterations}")
        if not 1 <= self.lanes <= MAX_KDF_LANES:
            raise ValueError(f"`lanes` must be in [1, {MAX_KDF_LANES}], got {self.lanes}")
        if not 8 * self.lanes <= self.memory_kib <= MAX_KDF_MEMORY // 1024:
            raise ValueError(f"`memory_kib` must be in [8 * lanes, 1048576], got {self.memory_kib}")

    def as_fields(self) -> tuple[int, int, int]:
        return (self.iterations, self.lanes, self.memory_kib)

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        try:
            from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        except ImportError:  # cryptography < 44
            from garrison.core.errors import MissingDependencyError

            raise MissingDependencyError("cryptography>=44 (Argon2id)", extra="all") from None
        return Argon2id(
            salt=salt,
            length=KEY_SIZE,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(passphrase)


KdfParams = ScryptParams | Argon2idParams
KDF_BY_ID: dict[int, type[ScryptParams] | type[Argon2idParams]] = {1: ScryptParams, 2: Argon2idParams}


def generate_key() -> str:
    """A new random 256-bit key-encryption key in its text form (``garrison-kek-v1:...``)."""
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(KEY_SIZE)).rstrip(b"=").decode("ascii")


def write_key_file(path: str | Path, *, force: bool = False) -> Path:
    """Write a new key to ``path`` with mode 0600 (created with ``O_EXCL``: an existing file is refused unless
    ``force``, which replaces it atomically). Returns the path; the key itself is never returned or printed."""
    p = Path(path)
    if force:
        from garrison.core.atomic_write import write_atomic

        return write_atomic(p, generate_key() + "\n", mode=0o600)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise InputError("already exists; refusing to overwrite a key (use --force)", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot create the key file: {exc.strerror}", path=p) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(generate_key() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return p


def _parse_key_text(text: str, *, source: str) -> bytes:
    text = text.strip()
    if not text.startswith(KEY_PREFIX):
        raise InputError(f"{source} is not a Garrison key (expected text starting with {KEY_PREFIX!r})")
    body = text[len(KEY_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise InputError(f"{source} is not a valid Garrison key (bad base64url)") from None
    if len(raw) != KEY_SIZE:
        raise InputError(f"{source} is not a valid Garrison key (expected {KEY_SIZE} bytes, got {len(raw)})")
    return raw


class KeyEncryptionKey:
    """The key that wraps each file's random data key: a raw 256-bit key, or a passphrase that a KDF stretches
    with the salt stored in each file. Build one with :meth:`from_text`, :meth:`from_file`, :meth:`from_env` or
    :meth:`from_passphrase`. Its ``repr`` names where it came from, never the key."""

    __slots__ = ("_kdf", "_key", "_passphrase", "source")

    def __init__(
        self,
        *,
        key: bytes | None = None,
        passphrase: bytes | None = None,
        kdf: KdfParams | None = None,
        source: str = "key",
    ) -> None:
        if (key is None) == (passphrase is None):
            raise ValueError("give exactly one of `key` and `passphrase`")
        if key is not None and len(key) != KEY_SIZE:
            raise ValueError(f"`key` must be {KEY_SIZE} bytes, got {len(key)}")
        if passphrase is not None and not passphrase:
            raise InputError(f"{source} is empty")
        self._key = bytes(key) if key is not None else None
        self._passphrase = bytes(passphrase) if passphrase is not None else None
        self._kdf: KdfParams = kdf if kdf is not None else ScryptParams()
        self.source = source

    @classmethod
    def from_text(cls, text: str, *, source: str = "key") -> KeyEncryptionKey:
        """Parse the text form ``garrison-kek-v1:<base64url>``."""
        return cls(key=_parse_key_text(text, source=source), source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> KeyEncryptionKey:
        """Read a key file written by :func:`write_key_file` (``garrison protect keygen``)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="ascii")
        except UnicodeDecodeError:
            raise InputError("is not a Garrison key file (not ASCII text)", path=p) from None
        except OSError as exc:
            raise InputError(f"cannot read the key file: {exc.strerror}", path=p) from None
        return cls.from_text(text, source=f"key file {p}")

    @classmethod
    def from_env(cls, name: str, *, environ: Mapping[str, str] | None = None) -> KeyEncryptionKey:
        """Read the key text from environment variable ``name`` (of ``environ``, by default ``os.environ``)."""
        env = os.environ if environ is None else environ
        if not env.get(name):
            raise InputError(f"environment variable {name} is not set or empty")
        return cls.from_text(env[name], source=f"environment variable {name}")

    @classmethod
    def from_passphrase(
        cls, passphrase: str | bytes, *, kdf: KdfParams | None = None, source: str = "passphrase"
    ) -> KeyEncryptionKey:
        """A passphrase (text is UTF-8 encoded). ``kdf`` sets the KDF and its cost for files this key encrypts
        (default scrypt n=2**17, r=8, p=1); to decrypt, the parameters stored in the file are used."""
        raw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        return cls(passphrase=raw, kdf=kdf, source=source)

    @classmethod
    def passphrase_from_env(
        cls, name: str, *, kdf: KdfParams | None = None, environ: Mapping[str, str] | None = None
    ) -> KeyEncryptionKey:
        """A passphrase read from environment variable ``name`` (never from a command-line argument)."""
        env = os.environ if environ is None else environ
        if not env.get(name):
            raise InputError(f"environment variable {name} is not set or empty")
        return cls.from_passphrase(env[name], kdf=kdf, source=f"passphrase in {name}")

    @property
    def is_passphrase(self) -> bool:
        return self._passphrase is not None

    @property
    def kdf(self) -> KdfParams | None:
        """The KDF used for new files (``None`` for a raw key)."""
        return self._kdf if self._passphrase is not None else None

    def _new_slot_kek(self) -> tuple[int, tuple[int, int, int], bytes, bytes]:
        """``(kdf_id, params, salt, kek)`` for wrapping a new data key."""
        if self._key is not None:
            return 0, (0, 0, 0), bytes(SALT_SIZE), self._key
        assert self._passphrase is not None
        salt = secrets.token_bytes(SALT_SIZE)
        return self._kdf.kdf_id, self._kdf.as_fields(), salt, self._kdf.derive(self._passphrase, salt)

    def _slot_kek(self, kdf: KdfParams | None, salt: bytes) -> bytes | None:
        """The KEK for an existing key slot, or ``None`` when this kind of key cannot open it."""
        if kdf is None:
            return self._key
        if self._passphrase is None:
            return None
        return kdf.derive(self._passphrase, salt)

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(<{self.source}>)"

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("a KeyEncryptionKey cannot be pickled")
