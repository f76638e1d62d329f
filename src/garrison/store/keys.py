"""API keys of the guarded inference service: their format, their hash, and the in-memory ring that checks them.

A secret looks like ``gk_<id>_<random>``: ``<id>`` is 16 hexadecimal digits naming the key (not secret; it is how
the ring finds the key in O(1)), ``<random>`` is ``secrets.token_urlsafe(32)``, 256 bits from the OS's CSPRNG. The
store keeps only ``SHA-256("garrison-api-key/v1\\0" || secret)``; the secret is shown once, when it is created.

Why a fast hash and not a password hash (bcrypt, scrypt, Argon2): a slow hash exists to make guessing a
*low-entropy* secret (a human password) from a stolen hash expensive. A 256-bit random secret cannot be guessed at
any hashing speed: 2^255 SHA-256 evaluations on average is out of reach however fast each one is, so slowing each
one down buys nothing. It would cost a great deal instead: the service checks a key on every request, and a
deliberately slow hash (tens of milliseconds) would cap a worker at a few dozen requests per second and hand an
attacker a cheap denial of service (send bad keys, burn CPU). SHA-256 of a 60-byte secret takes about a
microsecond, so :meth:`KeyRing.authenticate` stays in the microseconds.

Comparison is constant-time (:func:`hmac.compare_digest`) so that timing does not reveal how much of a hash matched.
The key id is not secret: whether an id exists may be observable through timing, which reveals nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from garrison.store.records import KeyInfo

if TYPE_CHECKING:
    from garrison.store.store import Store

__all__ = ["KEY_PREFIX", "KeyRing", "hash_secret", "is_key_id", "new_secret", "parse_key_id"]

KEY_PREFIX = "gk_"
_ID_LENGTH = 16  # hexadecimal digits: 64 bits, plenty for naming keys
_RANDOM_BYTES = 32
_MAX_SECRET_LENGTH = (
    128  # a genuine secret is 3 + 16 + 1 + 43 = 63 characters; refuse anything far longer unhashed
)
_ID_RE = re.compile(r"[0-9a-f]{16}")
_HASHER = hashlib.sha256(b"garrison-api-key/v1\0")  # domain separation; copied for each secret


def new_secret() -> tuple[str, str]:
    """A fresh ``(key_id, secret)``; the secret embeds the id."""
    key_id = secrets.token_hex(_ID_LENGTH // 2)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_RANDOM_BYTES)}"


def hash_secret(secret: str) -> str:
    """The hexadecimal hash the store keeps in place of ``secret``."""
    h = _HASHER.copy()
    h.update(secret.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the shape of a key id (16 lowercase hexadecimal digits)."""
    return _ID_RE.fullmatch(text) is not None


def parse_key_id(secret: str) -> str | None:
    """The key id embedded in ``secret``, or None when it does not have the shape of a Garrison key."""
    if len(secret) > _MAX_SECRET_LENGTH or not secret.startswith(KEY_PREFIX):
        return None
    key_id = secret[len(KEY_PREFIX) : len(KEY_PREFIX) + _ID_LENGTH]
    if secret[len(KEY_PREFIX) + _ID_LENGTH : len(KEY_PREFIX) + _ID_LENGTH + 1] != "_":
        return None
    return key_id if _ID_RE.fullmatch(key_id) else None


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    info: KeyInfo
    expires: float  # POSIX time; +inf when the key never expires


class KeyRing:
    """The keys a service accepts, loaded once from the store: ``KeyRing.from_store(store)``.

    :meth:`authenticate` touches no database; call :meth:`reload` after keys are created or revoked (the service
    does so on a signal or a timer). Revoked keys are not loaded; expired ones are refused at the time of the call.
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    @classmethod
    def from_store(cls, store: Store, *, clock: Callable[[], float] = time.time) -> KeyRing:
        """A ring holding every key of ``store`` that is not revoked."""
        ring = cls(store, clock=clock)
        ring.reload()
        return ring

    def reload(self) -> None:
        """Read the keys again (a single swap: concurrent calls of :meth:`authenticate` see old or new keys)."""
        entries: dict[str, _Entry] = {}
        for info, digest in self.store._key_hashes():
            expires = float("inf") if info.expires_at is None else info.expires_at.timestamp()
            entries[info.id] = _Entry(bytes.fromhex(digest), info, expires)
        self._entries = entries

    def authenticate(self, secret: str) -> KeyInfo | None:
        """The key that ``secret`` belongs to, or None when it is unknown, wrong, revoked or expired."""
        key_id = parse_key_id(secret)
        if key_id is None:
            return None
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        h = _HASHER.copy()
        h.update(secret.encode("utf-8", "surrogatepass"))
        if not hmac.compare_digest(h.digest(), entry.digest):
            return None
        if self.clock() >= entry.expires:
            return None
        return entry.info

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeyRing({len(self._entries)} keys from {self.store!r})"
