"""Sanitising the SVG figures that checks attach, before they are inlined in an HTML report.

A figure is data a check produced from inputs that may be attacker-controlled, so only the static drawing subset
of SVG that Garrison's own figures use survives: no scripts, event handlers, styles sheets, foreign objects,
animation, or references to anything outside the figure.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import escape

__all__ = ["MAX_SVG_CHARS", "sanitize_svg"]

MAX_SVG_CHARS = 2_000_000
_MAX_DEPTH = 64
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"

_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc", "path", "rect", "circle", "ellipse", "line",
        "polyline", "polygon", "text", "tspan", "linearGradient", "radialGradient", "stop", "clipPath", "mask",
        "pattern", "marker",
    }
)  # fmt: skip
_ATTRIBUTES = frozenset(
    {
        "id", "class", "transform", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy",
        "r", "rx", "ry", "d", "points", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
        "stroke-opacity", "stroke-dasharray", "stroke-dashoffset", "stroke-linecap", "stroke-linejoin",
        "stroke-miterlimit", "opacity", "font-family", "font-size", "font-weight", "font-style", "text-anchor",
        "dominant-baseline", "alignment-baseline", "baseline-shift", "dx", "dy", "rotate", "letter-spacing",
        "textLength", "lengthAdjust", "style", "preserveAspectRatio", "role", "aria-label", "aria-hidden",
        "clip-path", "clip-rule", "mask", "marker-start", "marker-mid", "marker-end", "markerWidth",
        "markerHeight", "refX", "refY", "orient", "markerUnits", "offset", "stop-color", "stop-opacity",
        "gradientUnits", "gradientTransform", "spreadMethod", "fx", "fy", "patternUnits", "patternTransform",
        "patternContentUnits", "clipPathUnits", "maskUnits", "maskContentUnits", "href", "version",
        "shape-rendering", "text-rendering", "vector-effect", "visibility", "display", "color",
    }
)  # fmt: skip
# url(...) may only point at an element of the figure itself (url(#clip0)); anything else could load a resource.
_EXTERNAL_URL = re.compile(r"url\s*\(\s*(?!['\"]?\s*#)", re.IGNORECASE)
_DANGEROUS = ("javascript:", "data:", "vbscript:", "expression(", "@import", "\\")


def sanitize_svg(svg: str) -> str | None:
    """A safe copy of ``svg`` for inlining in HTML, or ``None`` when it is not a parseable SVG document.

    Unknown elements are dropped with their content; unknown or dangerous attributes are dropped; ``href`` may
    only point inside the figure (``#id``). The result is re-serialised, so no markup of the input survives as is.
    """
    if len(svg) > MAX_SVG_CHARS or re.search(r"<!(DOCTYPE|ENTITY)", svg, re.IGNORECASE):
        return None
    try:
        # No DTD can reach the parser (refused above), so neither entity expansion nor external entities can.
        root = ET.fromstring(svg)  # noqa: S314
    except (ET.ParseError, ValueError):
        return None
    if _local_name(root.tag, {_SVG_NS}) != "svg":
        return None
    out: list[str] = []
    _write(root, out, depth=0)
    return "".join(out)


def _local_name(tag: object, namespaces: set[str]) -> str | None:
    """The local name of ``tag`` when it is in no namespace or in one of ``namespaces``."""
    if not isinstance(tag, str):  # comments and processing instructions
        return None
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return local if ns in namespaces else None
    return tag


def _safe_attributes(element: ET.Element) -> list[tuple[str, str]]:
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, value in element.attrib.items():
        name = _local_name(key, {_XLINK_NS})
        if name is None or name not in _ATTRIBUTES or name.lower().startswith("on") or name in seen:
            continue  # (``href`` and ``xlink:href`` both become ``href``: the first one wins)
        lowered = re.sub(r"\s+", "", value).lower()
        if any(d in lowered for d in _DANGEROUS) or _EXTERNAL_URL.search(value):
            continue
        if name == "href" and not value.startswith("#"):
            continue
        kept.append((name, value))
        seen.add(name)
    return kept


def _write(element: ET.Element, out: list[str], *, depth: int) -> None:
    name = _local_name(element.tag, {_SVG_NS})
    if name is None or name not in _ELEMENTS or depth > _MAX_DEPTH:
        return
    attrs = "".join(f' {k}="{escape(v, quote=True)}"' for k, v in _safe_attributes(element))
    if depth == 0:
        attrs = f' xmlns="{_SVG_NS}"' + attrs
    out.append(f"<{name}{attrs}>")
    if element.text:
        out.append(escape(element.text, quote=False))
    for child in element:
        _write(child, out, depth=depth + 1)
        if child.tail:
            out.append(escape(child.tail, quote=False))
    out.append(f"</{name}>")
