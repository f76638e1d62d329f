"""Comments on findings over real HTTP (httpx against uvicorn on 127.0.0.1, a real SQLite store): a triager's
comment joins the finding's timeline with their name, viewers and forged forms are refused, the length is checked
and HTML stays text."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ui_site import Site, csrf_of, signed_in


def comments(site: Site) -> list[tuple[str, str]]:
    """``(who, text)`` of the gate finding's comments in the store, oldest first."""
    return [(e.source, e.payload["text"]) for e in site.store.list_finding_comments(site.gate_fingerprint)]


def timeline_rows(page: str) -> list[str]:
    """The rows of the finding page's timeline, in page order, as ``kind|cells`` text."""
    body = page[page.index('id="timeline"') :]
    return re.findall(r'<tr class="(comment|triage-change)">(.*?)</tr>', body, flags=re.S)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def tom(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "tom") as c:
        yield c


@pytest.fixture(scope="module")
def vera(site: Site) -> Iterator[httpx.Client]:
    with signed_in(site, "vera") as c:
        yield c


def test_a_triager_comments_and_it_shows_with_their_name_after_the_triage(
    tom: httpx.Client, site: Site
) -> None:
    fp = site.gate_fingerprint
    page = f"/findings/{fp}"
    r = tom.post(f"{page}/triage",
                 data={"csrf_token": csrf_of(tom, page), "status": "open", "owner": "tom", "reason": "triaging"})  # fmt: skip
    assert r.status_code == 303
    r = tom.post(
        f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": "  first look: real drift  "}
    )
    assert r.status_code == 303 and r.headers["location"].startswith(page)
    assert comments(site)[-1] == ("tom", "first look: real drift")  # stripped
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": "second thought"})
    assert r.status_code == 303
    html = tom.get(page).text
    assert html.count('id="timeline"') == 1 and html.count('action="' + page + '/comments"') == 1
    rows = timeline_rows(html)
    kinds = [k for k, _ in rows]
    assert kinds[-3:] == ["triage-change", "comment", "comment"]  # one timeline, newest last
    first, second = rows[-2][1], rows[-1][1]
    assert "<td>tom</td>" in first and "first look: real drift" in first
    assert "second thought" in second
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", second)  # when
    # the triage reason is still the reason, not overwritten by comments
    assert "reason: triaging" in rows[-3][1]


def test_an_admin_may_comment_too(site: Site) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    with signed_in(site, "alice") as alice:
        r = alice.post(f"{page}/comments", data={"csrf_token": csrf_of(alice, page), "text": "admin note"})
    assert r.status_code == 303 and comments(site)[-1] == ("alice", "admin note")


def test_a_viewer_cannot_comment_nor_sees_the_form(vera: httpx.Client, site: Site) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    before = comments(site)
    assert f'action="{page}/comments"' not in vera.get(page).text
    r = vera.post(f"{page}/comments", data={"csrf_token": csrf_of(vera), "text": "viewer was here"})
    assert r.status_code == 403 and comments(site) == before


def test_a_missing_or_wrong_csrf_token_is_refused(tom: httpx.Client, site: Site) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    before = comments(site)
    assert tom.post(f"{page}/comments", data={"text": "no token"}).status_code == 403
    assert tom.post(f"{page}/comments", data={"text": "bad token", "csrf_token": "x" * 43}).status_code == 403
    assert comments(site) == before


@pytest.mark.parametrize("text", ["", "   \n\t ", "x" * 2001, " " + "y" * 2001 + " "])
def test_an_empty_or_too_long_comment_is_refused(tom: httpx.Client, site: Site, text: str) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    before = comments(site)
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": text})
    assert r.status_code == 400 and "`text` must have 1 to 2000 characters" in r.text
    assert comments(site) == before


def test_a_comment_of_exactly_2000_characters_is_kept(tom: httpx.Client, site: Site) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": "z" * 2000})
    assert r.status_code == 303 and comments(site)[-1] == ("tom", "z" * 2000)


def test_html_in_a_comment_is_shown_escaped(tom: httpx.Client, site: Site) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    payload = '<script>alert("x")</script><b onmouseover=1>bold</b>'
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": payload})
    assert r.status_code == 303
    html = tom.get(page).text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b onmouseover=1&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html.lower() and "<b onmouseover" not in html


def test_comments_of_another_finding_do_not_show(tom: httpx.Client, site: Site) -> None:
    other = next(f.fingerprint for f in site.store.list_findings() if f.fingerprint != site.gate_fingerprint)
    page = f"/findings/{other}"
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": "only on the other one"})
    assert r.status_code == 303
    assert "only on the other one" in tom.get(page).text
    assert "only on the other one" not in tom.get(f"/findings/{site.gate_fingerprint}").text
    assert tom.post("/findings/ffffffffffff/comments",
                    data={"csrf_token": csrf_of(tom, page), "text": "nowhere"}).status_code == 404  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=2100))
def test_any_comment_is_stored_as_text_or_refused(tom: httpx.Client, site: Site, text: str) -> None:
    page = f"/findings/{site.gate_fingerprint}"
    r = tom.post(f"{page}/comments", data={"csrf_token": csrf_of(tom, page), "text": text})
    stripped = text.strip()
    if 1 <= len(stripped) <= 2000:
        assert r.status_code == 303 and comments(site)[-1] == ("tom", stripped)
    else:
        assert r.status_code == 400
