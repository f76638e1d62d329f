"""The dashboard in a real browser: Debian's Chromium driven by Playwright against uvicorn on 127.0.0.1 with a real
SQLite store. Sign in, accept a risk and watch the policy gate turn green, a viewer refused an admin page, a form
without its CSRF token refused; screenshots of the main pages go to ``GARRISON_SCREENSHOTS`` (or a temporary
folder)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from ui_site import PASSWORDS, Site

from garrison.core import TriageStatus
from garrison.core.triage import load_triage


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("GARRISON_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def page_of(browser, site: Site):  # type: ignore[no-untyped-def]
    """``page_of(name)``: a fresh browser context signed in as ``name`` through the sign-in form."""
    contexts = []

    def open_as(name: str):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        external: list[str] = []
        page.on("request", lambda r: external.append(r.url) if not r.url.startswith(site.url) else None)
        page.goto(f"{site.url}/")
        assert page.url.endswith("/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORDS[name])
        page.click("button[type=submit]")
        page.wait_for_url(f"{site.url}/")
        page.external = external  # type: ignore[attr-defined]
        return page

    yield open_as
    for c in contexts:
        c.close()


def _gate(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#gate-now").inner_text().strip().lower()


def test_triage_an_accepted_risk_and_see_the_gate_pass(page_of, site: Site, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page = page_of("tom")
    assert "breast-cancer-logreg" in page.locator("table.models").inner_text()
    page.screenshot(path=str(shots / "models.png"), full_page=True)

    page.goto(f"{site.url}/audits/{site.audit_id}")
    assert _gate(page) == "failed"
    page.screenshot(path=str(shots / "audit-before.png"), full_page=True)

    page.goto(f"{site.url}/findings")
    page.screenshot(path=str(shots / "findings.png"), full_page=True)
    page.goto(f"{site.url}/findings/{site.gate_fingerprint}")
    expiry = dt.date.today() + dt.timedelta(days=30)
    page.select_option("select[name=status]", "accepted-risk")
    page.fill("input[name=owner]", "tom")
    page.fill("textarea[name=reason]", "drift of one feature is expected after the schema change")
    page.fill("input[name=expires]", expiry.isoformat())
    page.click("form.triage button[type=submit]")
    assert page.locator("#saved").is_visible()
    assert "accepted-risk" in page.locator("#triage-status").inner_text()
    assert "tom" in page.locator("table.history").inner_text()
    page.screenshot(path=str(shots / "finding.png"), full_page=True)

    entry = load_triage(site.triage_file).get(site.gate_fingerprint)  # what CI's gate will read
    assert entry is not None and entry.status is TriageStatus.ACCEPTED_RISK
    assert entry.owner == "tom" and entry.expires == expiry and entry.updated_by == "tom"

    page.goto(f"{site.url}/audits/{site.audit_id}")
    assert _gate(page) == "passed"
    page.screenshot(path=str(shots / "audit-after.png"), full_page=True)

    page.goto(f"{site.url}/incidents/{site.incident_id}")
    page.click("button[value=acknowledged]")
    assert page.locator("#incident-status").inner_text() == "acknowledged"
    page.screenshot(path=str(shots / "incident.png"), full_page=True)
    assert page.external == []  # type: ignore[attr-defined]  # nothing fetched from anywhere else


def test_a_viewer_is_refused_an_admin_page(page_of, site: Site, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page = page_of("vera")
    assert page.locator("a[href='/users']").count() == 0
    response = page.goto(f"{site.url}/users")
    assert response is not None and response.status == 403
    assert "Forbidden" in page.locator("h1").inner_text()
    page.screenshot(path=str(shots / "forbidden.png"), full_page=True)
    admin = page_of("alice")
    admin.goto(f"{site.url}/users")
    assert "vera" in admin.locator("table").inner_text()
    admin.screenshot(path=str(shots / "users.png"), full_page=True)


def test_a_form_without_its_csrf_token_is_refused(page_of, site: Site) -> None:  # type: ignore[no-untyped-def]
    page = page_of("tom")
    before = site.triage_file.read_text()
    page.goto(f"{site.url}/findings/{site.gate_fingerprint}")
    page.locator("form.triage input[name=csrf_token]").evaluate("e => e.remove()")
    page.select_option("select[name=status]", "false-positive")
    with page.expect_navigation() as nav:
        page.click("form.triage button[type=submit]")
    assert nav.value is not None and nav.value.status == 403
    assert "CSRF" in page.locator(".error-message").inner_text()
    assert site.triage_file.read_text() == before


def test_screenshots_were_saved(shots: Path) -> None:
    names = {p.name for p in shots.glob("*.png") if p.stat().st_size > 5_000}
    assert {"models.png", "audit-before.png", "audit-after.png", "findings.png", "forbidden.png"} <= names
