"""The HTML report in a real browser: Debian's Chromium driven by Playwright, loading nothing from outside."""

from __future__ import annotations

from pathlib import Path

from garrison.core import Report
from garrison.report import write_reports


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
