"""Users and sessions of the team dashboard (``garrison ui``), kept in the store.

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher``, RFC 9106 low-memory profile: 3 passes, 64 MiB,
4 lanes) and rehashed on sign-in when the parameters change. An unknown or disabled user costs one full
verification, the same as a wrong password, so timing does not tell which names exist. A session is a random token
that the browser holds in a cookie; the store keeps only its SHA-256, next to the session's CSRF token.

These are functions taking a :class:`~garrison.store.Store` rather than methods, so the dashboard's tables stay in
one module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from garrison.core import MissingDependencyError, StoreError
from garrison.store.models import UiSessionRow, UserRow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from garrison.store.store import Store

__all__ = [
    "DEFAULT_SESSION_TTL",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "UiSession",
    "UserRecord",
    "add_user",
    "create_session",
    "delete_session",
    "get_session",
    "get_user",
    "list_users",
    "password_hasher",
    "set_disabled",
    "verify_password",
]

ROLES: tuple[str, ...] = ("viewer", "triager", "admin")  # each role can do what the ones before it can
MIN_PASSWORD_LENGTH = 8
DEFAULT_SESSION_TTL = dt.timedelta(hours=8)
_MAX_NAME = 200
_DUMMY: dict[str, str] = {}  # a hash of a random password, verified for unknown users


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A dashboard user: never the password nor its hash."""

    id: int
    name: str
    role: str
    created_at: dt.datetime
    disabled: bool

    def can(self, role: str) -> bool:
        """Whether this user holds ``role`` or a stronger one (admin > triager > viewer)."""
        return not self.disabled and ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True, slots=True)
class UiSession:
    """A signed-in session: its user, its CSRF token and when it expires."""

    user: UserRecord
    csrf_token: str
    expires_at: dt.datetime

    def __repr__(self) -> str:  # the CSRF token stays out of logs
        return f"UiSession(user={self.user.name!r}, expires_at={self.expires_at.isoformat()!r})"


def password_hasher() -> PasswordHasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile)."""
    try:
        from argon2 import PasswordHasher, Type
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "argon2", extra="ui") from None
    return PasswordHasher(type=Type.ID)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _MAX_NAME or any(c.isspace() or not c.isprintable() for c in name):
        raise StoreError(f"`name` must be 1 to {_MAX_NAME} printable characters without spaces, got {name!r}")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise StoreError(f"`role` must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def _record(r: UserRow) -> UserRecord:
    return UserRecord(id=r.id, name=r.name, role=r.role, created_at=r.created_at, disabled=r.disabled)


def add_user(
    store: Store, name: str, password: str, *, role: str, hasher: PasswordHasher | None = None
) -> UserRecord:
    """Add a user with an Argon2id hash of ``password``; names are unique."""
    name = _check_name(name)
    _check_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StoreError(f"`password` must be at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}")
    digest = (hasher or password_hasher()).hash(password)
    with store._session() as s:
        if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
            raise StoreError(f"a user named {name!r} already exists")
        row = UserRow(name=name, role=role, password_hash=digest, created_at=_now(), disabled=False)
        s.add(row)
        s.flush()
        return _record(row)


def list_users(store: Store) -> list[UserRecord]:
    """Every user, by name."""
    with store._session() as s:
        return [_record(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def get_user(store: Store, name: str) -> UserRecord | None:
    with store._session() as s:
        row = s.scalar(select(UserRow).where(UserRow.name == name.strip()))
        return None if row is None else _record(row)


def set_disabled(store: Store, name: str, *, disabled: bool = True) -> UserRecord:
    """Disable (or enable again) a user; disabling also ends every session of theirs."""
    with store._session() as s:
        row = s.scalar(select(UserRow).where(UserRow.name == name.strip()))
        if row is None:
            raise StoreError(f"no user named {name.strip()!r}")
        row.disabled = disabled
        if disabled:
            s.execute(delete(UiSessionRow).where(UiSessionRow.user_id == row.id))
        return _record(row)


def verify_password(
    store: Store, name: str, password: str, *, hasher: PasswordHasher | None = None
) -> UserRecord | None:
    """The user when ``password`` is theirs and they are enabled, else None; rehashes an outdated hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    ph = hasher or password_hasher()
    with store._session() as s:
        row = s.scalar(select(UserRow).where(UserRow.name == name.strip()))
        stored = row.password_hash if row is not None else _dummy_hash(ph)
        try:
            ph.verify(stored, password)  # constant-time comparison inside argon2
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        if ph.check_needs_rehash(row.password_hash):
            row.password_hash = ph.hash(password)
        return _record(row)


def _dummy_hash(ph: PasswordHasher) -> str:
    key = f"{ph.time_cost}:{ph.memory_cost}:{ph.parallelism}"
    if key not in _DUMMY:
        _DUMMY[key] = ph.hash(secrets.token_urlsafe(16))
    return _DUMMY[key]


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(
    store: Store, user: UserRecord, *, ttl: dt.timedelta = DEFAULT_SESSION_TTL
) -> tuple[str, UiSession]:
    """Start a session for ``user``; returns ``(token, session)``. Only the token's SHA-256 is stored."""
    if ttl <= dt.timedelta(0):
        raise StoreError(f"`ttl` must be > 0, got {ttl}")
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = _now()
    with store._session() as s:
        s.execute(delete(UiSessionRow).where(UiSessionRow.expires_at <= now))  # sweep expired sessions
        s.add(
            UiSessionRow(
                token_hash=_token_hash(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    return token, UiSession(user=user, csrf_token=csrf, expires_at=now + ttl)


def get_session(store: Store, token: str) -> UiSession | None:
    """The live session of ``token``; None when unknown, expired or its user is disabled."""
    if not token or len(token) > 200:
        return None
    with store._session() as s:
        found = s.execute(
            select(UiSessionRow, UserRow)
            .join(UserRow, UserRow.id == UiSessionRow.user_id)
            .where(UiSessionRow.token_hash == _token_hash(token))
        ).one_or_none()
        if found is None:
            return None
        session, user = found
        if session.expires_at <= _now() or user.disabled:
            s.delete(session)
            return None
        return UiSession(user=_record(user), csrf_token=session.csrf_token, expires_at=session.expires_at)


def delete_session(store: Store, token: str) -> None:
    """End a session (signing out); an unknown token changes nothing."""
    with store._session() as s:
        s.execute(delete(UiSessionRow).where(UiSessionRow.token_hash == _token_hash(token)))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
