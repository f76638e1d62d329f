import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.report import sanitize_svg

SVG = 'xmlns="http://www.w3.org/2000/svg"'


def test_a_plain_drawing_survives() -> None:
    svg = (
        f'<svg {SVG} viewBox="0 0 10 10"><g transform="translate(1,1)"><rect width="5" height="5" '
        'fill="url(#grad)"/><text x="1" y="2">a &lt; b</text></g></svg>'
    )
    out = sanitize_svg(svg)
    assert out == (
        f'<svg {SVG} viewBox="0 0 10 10"><g transform="translate(1,1)"><rect width="5" height="5" '
        'fill="url(#grad)"></rect><text x="1" y="2">a &lt; b</text></g></svg>'
    )


@pytest.mark.parametrize(
    ("svg", "gone"),
    [
        (f"<svg {SVG}><script>alert(1)</script></svg>", "alert"),
        (f'<svg {SVG} onload="alert(1)"><rect/></svg>', "onload"),
        (f'<svg {SVG}><rect ONCLICK="alert(1)"/></svg>', "alert"),
        (f'<svg {SVG}><style>@import "https://evil.example/x.css";</style></svg>', "evil"),
        (
            f'<svg {SVG}><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject></svg>',
            "hi",
        ),
        (
            f'<svg {SVG} xmlns:x="http://www.w3.org/1999/xlink"><use x:href="https://evil.example/s.svg#a"/></svg>',
            "evil",
        ),
        (f'<svg {SVG}><use href="javascript:alert(1)"/></svg>', "javascript"),
        (f'<svg {SVG}><rect fill="url(https://evil.example/p)"/></svg>', "evil"),
        (f"<svg {SVG}><rect style=\"fill: url( '//evil.example/p')\"/></svg>", "evil"),
        (f'<svg {SVG}><rect style="background:url(data:image/png;base64,AAAA)"/></svg>', "data:"),
        (f'<svg {SVG}><image href="https://evil.example/i.png"/></svg>', "evil"),
        (f'<svg {SVG}><a href="https://evil.example"><rect/></a></svg>', "evil"),
        (f'<svg {SVG}><animate attributeName="href" to="javascript:alert(1)"/></svg>', "javascript"),
        (f'<svg {SVG}><set attributeName="onload" to="alert(1)"/></svg>', "alert"),
        (f'<svg {SVG}><rect fill="java&#x9;script:alert(1)"/></svg>', "alert"),
    ],
)
def test_dangerous_content_is_removed(svg: str, gone: str) -> None:
    out = sanitize_svg(svg)
    assert out is not None
    assert out.startswith("<svg ")
    assert gone.lower() not in out.lower()


def test_internal_references_are_kept() -> None:
    out = sanitize_svg(
        f'<svg {SVG}><defs><path id="p" d="M0 0"/></defs><use href="#p" clip-path="url(#c)"/></svg>'
    )
    assert out is not None
    assert 'href="#p"' in out
    assert 'clip-path="url(#c)"' in out


@pytest.mark.parametrize(
    "svg",
    [
        "not xml",
        "<html><body/></html>",
        f"<svg {SVG}><rect></svg>",
        '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
        '<svg xmlns="http://example.com/not-svg"/>',
        "<svg>" + "<g>" * 10 + "</svg>",
        "",
    ],
)
def test_anything_but_a_parseable_svg_document_is_refused(svg: str) -> None:
    assert sanitize_svg(svg) is None


def test_deep_nesting_is_cut() -> None:
    svg = f"<svg {SVG}>" + "<g>" * 200 + "</g>" * 200 + "</svg>"
    out = sanitize_svg(svg)
    assert out is not None
    assert out.count("<g>") == 64


_ELEMENTS = [
    "svg",
    "g",
    "rect",
    "text",
    "script",
    "style",
    "foreignObject",
    "a",
    "image",
    "use",
    "animate",
    "title",
]
_ATTRS = [
    "fill",
    "style",
    "href",
    "onload",
    "onclick",
    "xlink:href",
    "transform",
    "id",
    "width",
    "src",
    "class",
]
_VALUES = st.sampled_from(
    [
        "red",
        "url(#a)",
        "url(http://e.x/a)",
        "javascript:alert(1)",
        "#a",
        "https://e.x/",
        "data:x",
        "1",
        " jAvAsCrIpT:x",
    ]
) | st.text(max_size=12)


@st.composite
def _svg_documents(draw: st.DrawFn, depth: int = 0) -> str:
    name = "svg" if depth == 0 else draw(st.sampled_from(_ELEMENTS))
    attrs = draw(st.dictionaries(st.sampled_from(_ATTRS), _VALUES, max_size=4))
    rendered = "".join(f' {k}="{_attr(v)}"' for k, v in attrs.items())
    if depth == 0:
        rendered = f' {SVG} xmlns:xlink="http://www.w3.org/1999/xlink"' + rendered
    children = draw(st.lists(_svg_documents(depth + 1), max_size=3)) if depth < 3 else []
    text = _text(draw(st.text(max_size=10)))
    return f"<{name}{rendered}>{text}{''.join(children)}</{name}>"


def _attr(v: str) -> str:
    return _text(v).replace('"', "&quot;")


def _text(v: str) -> str:
    return re.sub(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd]", "", v).replace("&", "&amp;").replace("<", "&lt;")


def _assert_safe(out: str) -> None:
    root = ET.fromstring(out)  # the output is well-formed XML
    for el in root.iter():
        local = el.tag.split("}")[-1]
        assert local not in {"script", "style", "foreignObject", "a", "image", "animate"}
        for key, value in el.attrib.items():
            assert not key.split("}")[-1].lower().startswith("on")
            assert key.split("}")[-1] != "src"
            squashed = re.sub(r"\s", "", value).lower()
            assert "javascript:" not in squashed
            assert "data:" not in squashed
            if key.endswith("href"):
                assert value.startswith("#")
            assert not re.search(r"url\(\s*['\"]?\s*[^#'\"\s]", value)


@settings(max_examples=80, deadline=None)
@given(_svg_documents())
def test_sanitised_generated_svg_is_always_safe(svg: str) -> None:
    out = sanitize_svg(svg)
    assert out is not None
    _assert_safe(out)
    assert sanitize_svg(out) == out  # sanitising is idempotent


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_never_raises(svg: str) -> None:
    out = sanitize_svg(svg)
    if out is not None:
        _assert_safe(out)
