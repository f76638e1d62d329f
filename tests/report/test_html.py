from dataclasses import replace
from html.parser import HTMLParser

import pytest

from garrison.core import CheckResult, Figure, Report, Stage
from garrison.core.rules import reference_url
from garrison.report import render_html

XSS_TEXT = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>'


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and the contents of <style>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def test_page_is_self_contained_and_runs_no_code(report: Report) -> None:
    page = Page(render_html(report, include_sensitive=True))
    names = {tag for tag, _ in page.tags}
    assert {"html", "head", "body", "style", "svg", "table"} <= names
    assert not names & {
        "script",
        "link",
        "img",
        "iframe",
        "object",
        "embed",
        "base",
        "image",
        "foreignobject",
    }
    for tag, attrs in page.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not {"src", "srcset", "xlink:href"} & set(attrs), (tag, attrs)
        if "href" in attrs:
            assert (tag, attrs["href"][:8]) == ("a", "https://"), (tag, attrs)
        if tag == "meta":
            assert "http-equiv" not in attrs
        assert "url(" not in (attrs.get("style") or "")
    assert len(page.styles) == 1
    assert "url(" not in page.styles[0]
    assert "@import" not in page.styles[0]


def test_attacker_controlled_text_is_escaped(report: Report) -> None:
    html = render_html(report)
    assert (
        "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in html
    )
    assert XSS_TEXT in Page(html).all_text  # shown to the reader as text


def test_names_in_the_head_and_attributes_are_escaped(report: Report) -> None:
    evil = '"><script>alert(3)</script>'
    run = replace(report.run, model_name=evil, project=evil)
    result = CheckResult(check_id=evil, stage=Stage.MODEL)
    page = Page(render_html(replace(report, run=run, results=(*report.results, result))))
    assert "script" not in {tag for tag, _ in page.tags}
    assert evil in page.all_text
    assert any(attrs.get("id") == f"check-{evil}" for _, attrs in page.tags)


def test_verdict_comes_first_with_exit_code_and_counts(report: Report) -> None:
    html = render_html(report)
    verdict = html.index('class="verdict failed"')
    assert verdict < html.index('id="findings"') < html.index('id="thresholds"') < html.index('id="checks"')
    head = html[verdict : html.index('id="findings"')]
    assert "Exit code 1" in head
    for count in ("1 critical", "2 high", "1 medium", "1 low", "1 info"):
        assert f'<span class="count">{count}</span>' in head


def test_findings_are_grouped_worst_first(report: Report) -> None:
    html = render_html(report)
    positions = [
        html.index(f'<span class="sev sev-{s}">{s}</span> ') for s in ("critical", "high", "medium", "low")
    ]
    assert positions == sorted(positions)
    assert html.index("PLUGIN-PKL-001") < html.index("GAR-FZ-002") < html.index("GAR-FZ-001")


def test_sensitive_evidence_only_when_asked(report: Report) -> None:
    default = render_html(report)
    assert "078-05-1120" not in default
    assert "1 sensitive value omitted" in default
    assert "078-05-1120" in render_html(report, include_sensitive=True)


def test_new_badge_only_for_findings_not_in_the_baseline(report: Report) -> None:
    html = render_html(report)
    decision = report.decision
    assert decision is not None
    assert decision.baseline_fingerprints is not None
    for f in report.findings:
        article = html[html.index(f'id="finding-{f.fingerprint}"') :]
        article = article[: article.index("</article>")]
        assert ('class="badge new"' in article) == (f.fingerprint not in decision.baseline_fingerprints)
    without_baseline = replace(report, decision=replace(decision, baseline_fingerprints=None))
    assert 'class="badge new"' not in render_html(without_baseline)


def test_references_link_to_their_pages_and_triage_is_shown(report: Report) -> None:
    page = Page(render_html(report))
    links = {attrs["href"] for tag, attrs in page.tags if tag == "a"}
    refs = {ref for f in report.findings for ref in f.references}
    assert links == {reference_url(ref) for ref in refs}
    assert "accepted-risk — Known dropout in eval" in page.all_text
    assert "Triage: fixed — Schema validation added" in page.all_text


def test_checks_show_status_metrics_and_figures(report: Report) -> None:
    page = Page(render_html(report))
    text = page.all_text
    assert "ValueError: shadow models need at least 2 classes" in text
    assert "Skipped because: no production data configured" in text
    assert "[0.774, 0.842]" in text
    assert "500" in text
    html = render_html(report)
    assert "evil.example" not in html
    assert [tag for tag, _ in page.tags].count("rect") == 2  # the figure's drawing survives sanitising
    table = html[html.index('id="figure-probe-table"') :]
    assert "<tr><th>crashes</th><th>probe</th><th>rate</th></tr>" in table
    assert "<tr><td>12</td><td>nan</td><td>0.024</td></tr>" in table


def test_provenance_lists_versions_seed_artifacts_and_redacted_config(report: Report) -> None:
    text = Page(render_html(report)).all_text
    provenance = text[text.index("Provenance") :]
    for needle in (
        "1234",
        "3.11.9",
        "scikit-learn",
        "1.9.0",
        "models/bundle.zip",
        "cd" * 32,
        '"Authorization": "***"',
    ):
        assert needle in provenance


def test_unsafe_or_broken_svg_is_left_out_with_a_note(report: Report) -> None:
    figure = Figure("bad", "Bad figure", svg="<html><script>alert(7)</script></html>")
    result = CheckResult("figures", Stage.MODEL, figures=(figure,))
    html = render_html(replace(report, results=(result,)))
    assert "not an SVG drawing Garrison can show safely" in html
    assert "alert(7)" not in html


@pytest.mark.parametrize("include_sensitive", [False, True])
def test_unevaluated_report_says_so(report: Report, include_sensitive: bool) -> None:
    html = render_html(replace(report, decision=None), include_sensitive=include_sensitive)
    assert 'class="verdict none"' in html
    assert "Not evaluated" in html
    assert "No thresholds were tested." in html
    assert 'class="badge new"' not in html
    assert "blocks release" not in html
