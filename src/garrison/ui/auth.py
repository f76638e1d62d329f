"""Who is asking, and may they: session cookies, CSRF tokens, role checks and the sign-in rate limit.

The session cookie ``garrison_session`` holds a random token (HttpOnly, SameSite=Strict, Secure unless the UI is
served on a loopback address); the store keeps only its SHA-256. Every POST carries the session's CSRF token in a
hidden form field, compared in constant time. The sign-in form, which has no session yet, uses a double-submit
token: a random cookie that the form must repeat.
"""

from __future__ import annotations

import secrets
import threading
import time

from starlette.requests import Request

from garrison.store.users import UiSession, get_session

__all__ = [
    "CSRF_FIELD",
    "LOGIN_CSRF_COOKIE",
    "LOOPBACK_HOSTS",
    "SESSION_COOKIE",
    "Forbidden",
    "LoginLimiter",
    "NotSignedIn",
    "csrf_ok",
    "current_session",
]

SESSION_COOKIE = "garrison_session"
LOGIN_CSRF_COOKIE = "garrison_login_csrf"
CSRF_FIELD = "csrf_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class NotSignedIn(Exception):
    """No live session: pages redirect to the sign-in form."""


class Forbidden(Exception):
    """The session's role does not allow the action, or the CSRF token is missing or wrong (HTTP 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def current_session(request: Request, role: str = "viewer") -> UiSession:
    """The request's live session when its user holds ``role`` (or a stronger one).

    Raises :class:`NotSignedIn` without a live session and :class:`Forbidden` when the role is too weak.
    """
    store = request.app.state.store
    token = request.cookies.get(SESSION_COOKIE, "")
    session = get_session(store, token) if token else None
    if session is None:
        raise NotSignedIn
    request.state.session = session  # the 403 page still shows who is signed in
    if not session.user.can(role):
        raise Forbidden(f"this needs the {role} role; {session.user.name} is a {session.user.role}")
    return session


def csrf_ok(expected: str, given: object) -> bool:
    """Whether the form's token ``given`` equals ``expected`` (constant time; an absent token never matches)."""
    if not expected or not isinstance(given, str):
        return False
    # bytes: compare_digest refuses non-ASCII str, and a form may send anything
    return secrets.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


class LoginLimiter:
    """Sign-in attempts per client address: a token bucket of ``burst`` attempts refilled at ``per_minute``.

    Bounded memory: at most ``max_clients`` addresses, the oldest forgotten first (which errs towards allowing).
    """

    def __init__(self, *, per_minute: float = 10.0, burst: int = 10, max_clients: int = 10_000) -> None:
        if not per_minute > 0:
            raise ValueError(f"`per_minute` must be > 0, got {per_minute!r}")
        if burst < 1:
            raise ValueError(f"`burst` must be >= 1, got {burst!r}")
        self.per_minute = per_minute
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, *, now: float | None = None) -> bool:
        """Take one attempt from ``client``'s bucket; False when it is empty."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), t))
            tokens = min(float(self.burst), tokens + (t - last) * self.per_minute / 60.0)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, t)
            while len(self._buckets) > self.max_clients:
                del self._buckets[next(iter(self._buckets))]
            return allowed
