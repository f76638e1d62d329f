"""The HTML report in a real browser: Debian's Chromium driven by Playwright, loading nothing from outside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from garrison.core import Report
from garrison.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI installs Debian's chromium package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def test_html_report_renders_verdict_first_and_loads_nothing_external(
    browser, report: Report, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    files = write_reports(report, tmp_path, ["html"])
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    dialogs: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(files["html"].as_uri())
    verdict = page.locator(".verdict").first
    assert verdict.is_visible()
    box = verdict.bounding_box()
    assert box is not None and box["y"] < 400  # the verdict is the first thing a reader sees
    assert report.decision is not None
    assert report.decision.verdict.value.lower() in verdict.inner_text().lower()
    findings_heading = page.locator("h2#findings").inner_text()
    assert str(len(report.decision.findings)) in findings_heading
    # the fixture's attacker-controlled messages (<script>alert(...)</script>, onerror=...) never execute
    assert dialogs == []
    assert page.locator("script").count() == 0
    assert "<script>" in page.locator("body").inner_text()  # shown as text instead
    assert [u for u in requests if not u.startswith("file://")] == []
    assert errors == []
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    page.close()
