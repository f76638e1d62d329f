"""The team dashboard's web application: :func:`create_ui_app` builds a FastAPI app over a store.

Server-rendered Jinja templates (autoescaped), one CSS file and no JavaScript; nothing is fetched from elsewhere,
and the Content-Security-Policy says so to the browser. The pages live in ``pages.py``; sessions, CSRF and roles in
``auth.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from garrison.core import GarrisonError, Policy
from garrison.store import Store
from garrison.store.users import DEFAULT_SESSION_TTL
from garrison.ui.auth import LOOPBACK_HOSTS, Forbidden, LoginLimiter, NotSignedIn

__all__ = ["UiSettings", "create_ui_app"]

_HERE = Path(__file__).parent
PAGE_SIZE = 50
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class UiSettings:
    """How the dashboard behaves.

    ``secure_cookies`` None: Secure cookies unless the request came to a loopback address (127.0.0.1, localhost).
    ``policy`` None: each audit is judged by the ``fail_on`` its report was evaluated with.
    ``write_triage`` None: write ``.garrison/triage.yaml`` when it is writable; False: only ever propose patches.
    """

    policy: Policy | None = None
    secure_cookies: bool | None = None
    write_triage: bool | None = None
    session_ttl: dt.timedelta = DEFAULT_SESSION_TTL
    login_per_minute: float = 10.0
    login_burst: int = 10
    page_size: int = PAGE_SIZE

    def __post_init__(self) -> None:
        if self.session_ttl <= dt.timedelta(0):
            raise ValueError(f"`session_ttl` must be > 0, got {self.session_ttl}")
        if self.page_size < 1:
            raise ValueError(f"`page_size` must be >= 1, got {self.page_size}")


def create_ui_app(store: Store, *, project_dir: Path, settings: UiSettings | None = None) -> FastAPI:
    """The dashboard over ``store`` for the project at ``project_dir`` (whose ``.garrison/triage.yaml`` it edits)."""
    from garrison.ui.pages import router

    settings = settings or UiSettings()
    app = FastAPI(title="Garrison", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.project_dir = Path(project_dir)
    app.state.settings = settings
    app.state.limiter = LoginLimiter(per_minute=settings.login_per_minute, burst=settings.login_burst)
    app.state.templates = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.include_router(router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        return render(
            request, "error.html", status_code=401, title="Sign in first", message="Your session ended."
        )

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return render(request, "error.html", status_code=403, title="Forbidden", message=exc.message)

    @app.exception_handler(GarrisonError)
    async def garrison_error(request: Request, exc: GarrisonError) -> Response:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return render(request, "error.html", status_code=400, title="Cannot do that", message=message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return render(
            request, "error.html", status_code=exc.status_code, title="Error", message=str(exc.detail)
        )

    return app


def cookie_secure(request: Request) -> bool:
    """Whether cookies get the Secure flag for this request (see :class:`UiSettings`)."""
    setting: bool | None = request.app.state.settings.secure_cookies
    if setting is not None:
        return setting
    return (request.url.hostname or "") not in LOOPBACK_HOSTS


def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page; the template sees ``session`` (or None) and ``csrf`` for its forms."""
    session = getattr(request.state, "session", None)
    context.setdefault("session", session)
    context.setdefault("csrf", "" if session is None else session.csrf_token)
    html = request.app.state.templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code)
