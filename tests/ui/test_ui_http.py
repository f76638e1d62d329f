"""The dashboard over real HTTP (httpx against uvicorn on 127.0.0.1, a real SQLite store): sign-in, sessions,
CSRF, roles, triage written to .garrison/triage.yaml or proposed as a patch, incidents."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ui_site import CSRF_FIELD, PASSWORDS, Site, csrf_of, login, signed_in

from garrison.core.triage import load_triage
from garrison.store.users import get_session
from garrison.ui import UiSettings


@pytest.fixture(scope="module")
def tom(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "tom") as c:
        yield c


@pytest.fixture(scope="module")
def vera(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "vera") as c:
        yield c


def test_pages_need_a_session(site: Site) -> None:
    with httpx.Client(base_url=site.url) as c:
        for path in ("/", "/findings", f"/audits/{site.audit_id}", "/incidents", "/users"):
            r = c.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/login"


def test_session_cookie_is_httponly_strict_and_only_its_hash_is_stored(site: Site) -> None:
    with httpx.Client(base_url=site.url) as c:
        token = CSRF_FIELD.search(c.get("/login").text).group(1)  # type: ignore[union-attr]
        r = c.post("/login", data={"name": "vera", "password": PASSWORDS["vera"], "csrf_token": token})
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("garrison_session="))
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # served on 127.0.0.1
        session_token = c.cookies["garrison_session"]
    with sqlite3.connect(site.root / "garrison.db") as db:
        rows = [r[0] for r in db.execute("SELECT token_hash FROM ui_sessions")]
        hashes = [r[0] for r in db.execute("SELECT password_hash FROM users")]
    assert session_token not in rows and len(rows[0]) == 64
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert get_session(site.store, session_token) is not None


def test_wrong_password_and_missing_login_csrf_are_refused(site: Site) -> None:
    with httpx.Client(base_url=site.url) as c:
        token = CSRF_FIELD.search(c.get("/login").text).group(1)  # type: ignore[union-attr]
        wrong = c.post("/login", data={"name": "vera", "password": "nope-nope", "csrf_token": token})
        assert wrong.status_code == 401 and "garrison_session" not in c.cookies
        token = CSRF_FIELD.search(wrong.text).group(1)  # type: ignore[union-attr]  # a new one per form
        unknown = c.post("/login", data={"name": "nobody", "password": "nope-nope", "csrf_token": token})
        assert unknown.status_code == 401
    with httpx.Client(base_url=site.url) as c:  # no login-form cookie: a cross-site sign-in attempt
        r = c.post("/login", data={"name": "vera", "password": PASSWORDS["vera"], "csrf_token": token})
        assert r.status_code == 403 and "garrison_session" not in c.cookies


def test_logout_ends_the_session(site: Site) -> None:
    c = login(site, "vera")
    token = c.cookies["garrison_session"]
    assert c.post("/logout", data={"csrf_token": csrf_of(c)}).status_code == 303
    assert get_session(site.store, token) is None
    c.cookies.set("garrison_session", token)
    assert c.get("/").status_code == 303
    c.close()


def test_pages_render_the_store(tom: httpx.Client, site: Site) -> None:
    home = tom.get("/")
    assert home.status_code == 200 and "breast-cancer-logreg" in home.text and "verified" in home.text
    assert "<svg" in home.text  # the verdict trend
    assert "default-src 'none'" in home.headers["content-security-policy"]
    page = tom.get(f"/audits/{site.audit_id}")
    assert page.status_code == 200
    assert "New (1)" in page.text  # the earlier audit lacked one finding
    assert f"/audits/{site.previous_id}" in page.text
    report = tom.get(f"/audits/{site.audit_id}/report.html")
    assert report.status_code == 200 and "<script" not in report.text.lower()
    assert tom.get("/audits/999999").status_code == 404
    assert "GAR-DI-005" in tom.get("/findings?severity=medium").text
    assert tom.get("/findings?severity=bogus").status_code == 400
    incident = tom.get(f"/incidents/{site.incident_id}")
    assert "stop-probing" in incident.text and "block" in incident.text


def test_post_without_or_with_a_wrong_csrf_token_is_refused(tom: httpx.Client, site: Site) -> None:
    before = site.triage_file.read_text()
    form = {"status": "false-positive", "reason": "csrf probe"}
    assert tom.post(f"/findings/{site.gate_fingerprint}/triage", data=form).status_code == 403
    r = tom.post(f"/findings/{site.gate_fingerprint}/triage", data={**form, "csrf_token": "x" * 43})
    assert r.status_code == 403
    assert site.triage_file.read_text() == before


def test_roles_are_checked_on_every_page_and_action(
    tom: httpx.Client, vera: httpx.Client, site: Site
) -> None:
    assert vera.get("/users").status_code == 403
    assert tom.get("/users").status_code == 403
    token = csrf_of(vera)
    before = site.triage_file.read_text()
    r = vera.post(f"/findings/{site.gate_fingerprint}/triage",
                  data={"csrf_token": token, "status": "false-positive", "reason": "viewer"})  # fmt: skip
    assert r.status_code == 403 and site.triage_file.read_text() == before
    r = vera.post(f"/incidents/{site.incident_id}/status", data={"csrf_token": token, "status": "resolved"})
    assert r.status_code == 403
    r = vera.post(
        "/users", data={"csrf_token": token, "name": "mallory", "role": "admin", "password": "x" * 12}
    )
    assert r.status_code == 403
    with signed_in(site, "alice") as alice:
        assert alice.get("/users").status_code == 200
        assert "mallory" not in alice.get("/users").text


def test_triager_acknowledges_an_incident_and_it_is_recorded(tom: httpx.Client, site: Site) -> None:
    r = tom.post(f"/incidents/{site.incident_id}/status",
                 data={"csrf_token": csrf_of(tom), "status": "acknowledged", "note": "looking"})  # fmt: skip
    assert r.status_code == 303
    incident = next(i for i in site.store.list_incidents() if i.id == site.incident_id)
    assert incident.status == "acknowledged"
    assert incident.history[-1].actor == "tom" and incident.history[-1].note == "looking"


def test_triage_writes_the_file_and_records_who(tom: httpx.Client, site: Site) -> None:
    fp = site.gate_fingerprint
    r = tom.post(f"/findings/{fp}/triage",
                 data={"csrf_token": csrf_of(tom), "status": "open", "owner": "tom", "reason": "looking into it"})  # fmt: skip
    assert r.status_code == 303
    entry = load_triage(site.triage_file).get(fp)
    assert entry is not None and entry.owner == "tom" and entry.updated_by == "tom"
    history = site.store.triage_history(fp)
    assert history[-1].actor == "tom" and history[-1].new_status is not None
    # an accepted risk without an expiry is refused, and nothing changes
    before = site.triage_file.read_text()
    r = tom.post(f"/findings/{fp}/triage",
                 data={"csrf_token": csrf_of(tom), "status": "accepted-risk", "owner": "tom", "reason": "r"})  # fmt: skip
    assert r.status_code == 400 and "expires" in r.text
    assert site.triage_file.read_text() == before


@pytest.fixture(scope="module")
def readonly(site_factory) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    yield from site_factory(UiSettings(write_triage=False))


def test_a_read_only_triage_file_gets_a_patch_instead(readonly: Site) -> None:
    before = readonly.triage_file.read_text()
    with signed_in(readonly, "tom") as c:
        r = c.post(f"/findings/{readonly.gate_fingerprint}/triage",
                   data={"csrf_token": csrf_of(c), "status": "false-positive", "reason": "not reachable"})  # fmt: skip
    assert r.status_code == 200
    assert "+++ b/.garrison/triage.yaml" in r.text and "+    status: false-positive" in r.text
    assert readonly.triage_file.read_text() == before
    assert readonly.store.triage_history(readonly.gate_fingerprint) == []  # the store is unchanged too


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    status=st.text(max_size=30),
    severity=st.text(max_size=30),
    model=st.text(max_size=30),
    page=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_findings_filters_never_crash(
    vera: httpx.Client, status: str, severity: str, model: str, page: int
) -> None:
    r = vera.get("/findings", params={"status": status, "severity": severity, "model": model, "page": page})
    assert r.status_code in (200, 400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cookie=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=300))
def test_any_session_cookie_is_either_valid_or_sent_to_sign_in(site: Site, cookie: str) -> None:
    with httpx.Client(base_url=site.url, cookies={"garrison_session": cookie}) as c:
        r = c.get("/", follow_redirects=False)
    assert r.status_code == 303
