"""The dashboard's pages and actions: models, audits, findings and their triage, incidents, users.

Every route names the role it needs (viewer reads; triager also triages, comments on findings and acknowledges or
resolves incidents; admin also manages users) and every POST checks the session's CSRF token before doing anything.
A finding's comments are ``finding.comment`` events in the store, shown with its triage changes as one timeline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Form, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import Request

from garrison.core import ConfigError, Finding, Policy, Report, Severity, StoreError, TriageStatus, Verdict
from garrison.core.triage import Triage, parse_triage
from garrison.store import INCIDENT_STATUSES, AuditSummary, IncidentRecord, Store, TriageEvent
from garrison.store.users import (
    ROLES,
    UiSession,
    add_user,
    create_session,
    delete_session,
    list_users,
    set_disabled,
    verify_password,
)
from garrison.ui.app import cookie_secure, render
from garrison.ui.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Forbidden,
    csrf_ok,
    current_session,
)
from garrison.ui.gate import audit_diff, gate, severity_stage_counts
from garrison.ui.triage_file import TriageChange, apply_change, triage_path

__all__ = ["router"]

router = APIRouter()
_TREND = 12  # verdicts in a model's trend
INCIDENT_ACTIONS = ("acknowledged", "resolved")
COMMENT_KIND = "finding.comment"
MAX_COMMENT = 2000  # characters, after stripping


# ------------------------------------------------------------------------------------------------- helpers


def _store(request: Request) -> Store:
    return request.app.state.store  # type: ignore[no-any-return]


def _post(request: Request, role: str, token: str) -> UiSession:
    """The session of a POST: signed in, holding ``role``, with the right CSRF token."""
    session = current_session(request, role)
    if not csrf_ok(session.csrf_token, token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
    return session


def _finding(store: Store, fingerprint: str) -> Finding:
    """The stored finding, or a 404."""
    try:
        return store.get_finding(fingerprint)
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from None


def _paging(total: int, page: int, size: int) -> tuple[int, int, int]:
    """``(page, pages, offset)``: the requested page clamped to those that exist (at least one)."""
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    return page, pages, (page - 1) * size


def _policy(request: Request, report: Report) -> Policy:
    configured: Policy | None = request.app.state.settings.policy
    if configured is not None:
        return configured
    fail_on = report.decision.fail_on if report.decision is not None else Severity.HIGH
    return Policy(fail_on=fail_on)


class _TriageCache:
    """The triage file parsed once per content: parsing YAML costs about 0.5 ms an entry, reading and hashing the
    file microseconds. Keyed by the SHA-256 of the bytes, so any change to the file (by the dashboard, an editor or
    a ``git pull``) is seen at the next request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digest: bytes | None = None
        self._triage = Triage.empty()

    def load(self, path: Path) -> Triage:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Triage.empty()
        except OSError as exc:
            raise ConfigError(f"cannot read triage file: {exc.__class__.__name__}", path=path) from None
        digest = hashlib.sha256(data).digest()
        with self._lock:
            if digest == self._digest:
                return self._triage
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"cannot read triage file: {exc.__class__.__name__}", path=path) from None
        triage = parse_triage(text, path=path)
        with self._lock:
            self._digest, self._triage = digest, triage
        return triage


_CACHE_LOCK = threading.Lock()


def _triage(request: Request) -> tuple[Triage, str | None]:
    """Today's triage file (and the first line of its error, if it cannot be read), cached per app."""
    path = triage_path(request.app.state.project_dir)
    with _CACHE_LOCK:
        cache: _TriageCache | None = getattr(request.app.state, "triage_cache", None)
        if cache is None:
            cache = request.app.state.triage_cache = _TriageCache()
    try:
        return cache.load(path), None
    except ConfigError as exc:
        return Triage.empty(), str(exc).splitlines()[0]


@dataclass(frozen=True, slots=True)
class ModelRow:
    name: str
    project: str
    latest: AuditSummary
    trend: list[str]
    versions: int
    serving: str | None
    signature: str | None


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One line of a finding's timeline: a triage change (``change``) or a comment (``comment``)."""

    at: dt.datetime
    actor: str
    change: TriageEvent | None = None
    comment: str | None = None


def _timeline(store: Store, fingerprint: str) -> list[TimelineItem]:
    """A finding's triage changes and comments, oldest first (a change before a comment at the same instant)."""
    items = [TimelineItem(at=h.at, actor=h.actor, change=h) for h in store.triage_history(fingerprint)]
    items += [
        TimelineItem(at=c.created_at, actor=c.source, comment=str(c.payload.get("text", "")))
        for c in store.list_finding_comments(fingerprint)
    ]
    return sorted(items, key=lambda i: (i.at, i.change is None))  # stable: each source is already in order


# ---------------------------------------------------------------------------------------------- sign in/out


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", login_csrf=token, session=None, error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=cookie_secure(request))  # fmt: skip
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, name: str = Form(""), password: str = Form(""), csrf_token: str = Form("")
) -> Response:
    client = request.client.host if request.client else "unknown"
    if not request.app.state.limiter.allow(client):
        return render(request, "error.html", status_code=429, session=None, title="Too many attempts",
                      message="Too many sign-in attempts from your address: wait a minute.")  # fmt: skip
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf_token):
        raise Forbidden("the sign-in form's CSRF token is missing or wrong: reload the page")
    user = verify_password(_store(request), name, password)
    if user is None:
        retry = secrets.token_urlsafe(32)
        response = render(request, "login.html", status_code=401, login_csrf=retry, session=None,
                          error="Wrong name or password.")  # fmt: skip
        response.set_cookie(LOGIN_CSRF_COOKIE, retry, max_age=3600, httponly=True, samesite="strict",
                            secure=cookie_secure(request))  # fmt: skip
        return response
    ttl = request.app.state.settings.session_ttl
    token, _ = create_session(_store(request), user, ttl=ttl)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(ttl.total_seconds()), httponly=True,
                        samesite="strict", secure=cookie_secure(request), path="/")  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> Response:
    _post(request, "viewer", csrf_token)
    delete_session(_store(request), request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------------------ models, audits


@router.get("/", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    current_session(request, "viewer")
    store = _store(request)
    recent = store.recent_audits(per_model=_TREND)  # by model, newest first: one query
    counts = store.count_model_versions()
    serving = store.serving_versions()
    grouped: dict[tuple[str, str], list[AuditSummary]] = {}
    for a in recent:
        grouped.setdefault((a.project, a.model_name), []).append(a)
    rows: list[ModelRow] = []
    for (project, name), items in sorted(grouped.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        version = serving.get(name)
        rows.append(
            ModelRow(
                name=name,
                project=project,
                latest=items[0],
                trend=[_verdict(a.verdict) for a in reversed(items)],
                versions=counts.get(name, 0),
                serving=None if version is None else version.version,
                signature=None if version is None else version.signature_status,
            )
        )
    return render(request, "models.html", models=rows)


def _verdict(v: Verdict | None) -> str:
    return "unevaluated" if v is None else v.value


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(request: Request, name: str) -> Response:
    current_session(request, "viewer")
    store = _store(request)
    audits = store.list_audits(model_name=name, limit=request.app.state.settings.page_size)
    versions = store.list_model_versions(name)
    if not audits and not versions:
        raise HTTPException(404, f"no model named {name!r}")
    return render(request, "model.html", name=name, audits=audits, versions=versions, verdict=_verdict)


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, audit_id: int) -> Response:
    current_session(request, "viewer")
    store = _store(request)
    try:
        report = store.get_audit(audit_id)
    except StoreError:
        raise HTTPException(404, f"no audit with id {audit_id}") from None
    run = report.run
    before = store.list_audits(project=run.project, model_name=run.model_name, before=audit_id, limit=1)
    previous_id = before[0].id if before else None
    previous = store.get_audit(previous_id) if previous_id is not None else None
    triage, triage_error = _triage(request)
    decision = gate(report, _policy(request, report), triage)
    columns, table = severity_stage_counts(decision.findings)
    return render(
        request,
        "audit.html",
        audit_id=audit_id,
        report=report,
        decision=decision,
        recorded=report.decision,
        columns=columns,
        table=table,
        diff=audit_diff(report, previous),
        previous_id=previous_id,
        triage_error=triage_error,
    )


@router.get("/audits/{audit_id}/report.html", response_class=HTMLResponse)
def audit_report(request: Request, audit_id: int) -> Response:
    current_session(request, "viewer")
    from garrison.report import render_html

    try:
        report = _store(request).get_audit(audit_id)
    except StoreError:
        raise HTTPException(404, f"no audit with id {audit_id}") from None
    response = HTMLResponse(render_html(report))
    # the report is self-contained: inline styles and data: images, never a script
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    return response


# ------------------------------------------------------------------------------------------------ findings


@router.get("/findings", response_class=HTMLResponse)
def findings_page(
    request: Request,
    status: str = Query(""),
    severity: str = Query(""),
    model: str = Query(""),
    page: int = Query(1),
) -> Response:
    current_session(request, "viewer")
    try:
        wanted_status = TriageStatus(status) if status else None
        min_severity = Severity(severity) if severity else None
    except ValueError:
        raise HTTPException(400, "unknown status or severity") from None
    store = _store(request)
    size = request.app.state.settings.page_size
    model_name = model or None
    total = store.count_findings(status=wanted_status, min_severity=min_severity, model_name=model_name)
    page, pages, offset = _paging(total, page, size)
    return render(
        request,
        "findings.html",
        findings=store.list_findings(
            status=wanted_status, min_severity=min_severity, model_name=model_name, offset=offset, limit=size
        ),
        total=total,
        page=page,
        pages=pages,
        status=status,
        severity=severity,
        model=model,
        statuses=[s.value for s in TriageStatus],
        severities=[s.value for s in sorted(Severity, reverse=True)],
    )


@router.get("/findings/{fingerprint}", response_class=HTMLResponse)
def finding_page(request: Request, fingerprint: str) -> Response:
    session = current_session(request, "viewer")
    store = _store(request)
    finding = _finding(store, fingerprint)
    triage, triage_error = _triage(request)
    return render(
        request,
        "finding.html",
        finding=finding,
        entry=triage.get(finding.fingerprint),
        timeline=_timeline(store, finding.fingerprint),
        max_comment=MAX_COMMENT,
        statuses=[s.value for s in TriageStatus],
        can_triage=session.user.can("triager"),
        triage_error=triage_error,
        saved=request.query_params.get("saved") == "1",
        min_expiry=(dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat(),
    )


@router.post("/findings/{fingerprint}/triage", response_class=HTMLResponse)
def triage_finding(
    request: Request,
    fingerprint: str,
    csrf_token: str = Form(""),
    status: str = Form(""),
    owner: str = Form(""),
    reason: str = Form(""),
    expires: str = Form(""),
) -> Response:
    session = _post(request, "triager", csrf_token)
    store = _store(request)
    finding = _finding(store, fingerprint)
    try:
        new_status = TriageStatus(status)
    except ValueError:
        raise HTTPException(
            400, f"`status` must be one of {', '.join(s.value for s in TriageStatus)}"
        ) from None
    try:
        expiry = dt.date.fromisoformat(expires) if expires.strip() else None
    except ValueError:
        raise HTTPException(400, f"`expires` must be a date YYYY-MM-DD, got {expires!r}") from None
    change = TriageChange(
        fingerprint=finding.fingerprint,
        status=new_status,
        owner=owner,
        reason=reason,
        expires=expiry,
        rule_id=finding.rule_id,
        title=finding.title,
    )
    outcome = apply_change(
        store,
        request.app.state.project_dir,
        change,
        actor=session.user.name,
        write=request.app.state.settings.write_triage,
    )
    if outcome.written:
        return RedirectResponse(f"/findings/{finding.fingerprint}?saved=1", status_code=303)
    return render(request, "patch.html", finding=finding, patch=outcome.patch, path=outcome.path)


@router.post("/findings/{fingerprint}/comments")
def comment_finding(
    request: Request, fingerprint: str, csrf_token: str = Form(""), text: str = Form("")
) -> Response:
    session = _post(request, "triager", csrf_token)
    store = _store(request)
    finding = _finding(store, fingerprint)
    comment = text.strip()
    if not 1 <= len(comment) <= MAX_COMMENT:
        raise HTTPException(400, f"`text` must have 1 to {MAX_COMMENT} characters, got {len(comment)}")
    store.add_event(
        kind=COMMENT_KIND,
        source=session.user.name,
        payload={"fingerprint": finding.fingerprint, "text": comment},
    )
    return RedirectResponse(f"/findings/{finding.fingerprint}#timeline", status_code=303)


# ----------------------------------------------------------------------------------------------- incidents


def _incident(store: Store, incident_id: int) -> IncidentRecord:
    try:
        return store.get_incident(incident_id)
    except StoreError:
        raise HTTPException(404, f"no incident with id {incident_id}") from None


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, status: str = Query(""), page: int = Query(1)) -> Response:
    current_session(request, "viewer")
    if status and status not in INCIDENT_STATUSES:
        raise HTTPException(400, f"`status` must be one of {', '.join(INCIDENT_STATUSES)}")
    store = _store(request)
    size = request.app.state.settings.page_size
    total = store.count_incidents(status=status or None)
    page, pages, offset = _paging(total, page, size)
    shown = store.list_incidents(status=status or None, offset=offset, limit=size)
    return render(request, "incidents.html", incidents=shown, total=total, page=page, pages=pages,
                  status=status, statuses=INCIDENT_STATUSES)  # fmt: skip


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, incident_id: int) -> Response:
    session = current_session(request, "viewer")
    incident = _incident(_store(request), incident_id)
    details = dict(incident.details)
    actions = details.pop("actions", None)
    return render(request, "incident.html", incident=incident, evidence=details, actions=actions,
                  can_act=session.user.can("triager"), choices=INCIDENT_ACTIONS)  # fmt: skip


@router.post("/incidents/{incident_id}/status")
def incident_status(
    request: Request,
    incident_id: int,
    csrf_token: str = Form(""),
    status: str = Form(""),
    note: str = Form(""),
) -> Response:
    session = _post(request, "triager", csrf_token)
    if status not in INCIDENT_ACTIONS:
        raise HTTPException(400, f"`status` must be one of {', '.join(INCIDENT_ACTIONS)}, got {status!r}")
    try:
        _store(request).update_incident(
            incident_id, status=status, actor=session.user.name, note=note.strip()
        )
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


# --------------------------------------------------------------------------------------------------- users


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request) -> Response:
    current_session(request, "admin")
    return render(request, "users.html", users=list_users(_store(request)), roles=ROLES, error=None)


@router.post("/users", response_class=HTMLResponse)
def add_user_action(
    request: Request,
    csrf_token: str = Form(""),
    name: str = Form(""),
    role: str = Form(""),
    password: str = Form(""),
) -> Response:
    session = _post(request, "admin", csrf_token)
    store = _store(request)
    try:
        user = add_user(store, name, password, role=role)
    except StoreError as exc:
        return render(
            request, "users.html", status_code=400, users=list_users(store), roles=ROLES, error=str(exc)
        )
    store.add_event(
        kind="ui.user.add", source=session.user.name, payload={"name": user.name, "role": user.role}
    )
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{name}/disable")
def disable_user_action(request: Request, name: str, csrf_token: str = Form("")) -> Response:
    session = _post(request, "admin", csrf_token)
    if name == session.user.name:
        raise HTTPException(400, "you cannot disable yourself")
    store = _store(request)
    user = set_disabled(store, name)
    store.add_event(kind="ui.user.disable", source=session.user.name, payload={"name": user.name})
    return RedirectResponse("/users", status_code=303)
