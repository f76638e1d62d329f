"""Self-contained SVG figures of a robustness evaluation: accuracy against ε, and originals / perturbations /
adversarials of image inputs. Deterministic text, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

import numpy as np

__all__ = ["accuracy_curve_svg", "example_grid_svg"]

_W, _H, _M = 360, 280, 44


def accuracy_curve_svg(
    eps: Sequence[float],
    accuracy: Sequence[float],
    ci_low: Sequence[float],
    ci_high: Sequence[float],
    *,
    clean: float,
    title: str = "Robust accuracy against ε",
) -> str:
    """Robust accuracy (with its 95 % interval as a band) at each ε; ε = 0 is the clean accuracy."""
    xs = [0.0, *map(float, eps)]
    ys = [clean, *map(float, accuracy)]
    lows = [clean, *map(float, ci_low)]
    highs = [clean, *map(float, ci_high)]
    top = max(xs) or 1.0
    pw, ph = _W - 2 * _M, _H - 2 * _M

    def px(v: float) -> str:
        return f"{_M + v / top * pw:.2f}"

    def py(v: float) -> str:
        return f"{_H - _M - min(max(v, 0.0), 1.0) * ph:.2f}"

    band = " ".join(f"{px(a)},{py(b)}" for a, b in zip(xs, highs, strict=True))
    band += " " + " ".join(f"{px(a)},{py(b)}" for a, b in reversed(list(zip(xs, lows, strict=True))))
    line = " ".join(f"{px(a)},{py(b)}" for a, b in zip(xs, ys, strict=True))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{_M}" y="{_M}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
        f'<polygon points="{band}" fill="#1f77b4" fill-opacity="0.2" stroke="none"/>',
        f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>',
    ]
    for a, b in zip(xs, ys, strict=True):
        parts.append(
            f'<circle cx="{px(a)}" cy="{py(b)}" r="3" fill="#1f77b4"><title>ε {a:g}: {b:.3f}</title></circle>'
        )
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{_M - 6}" y="{float(py(tick)) + 3:.2f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    for a in xs:
        parts.append(f'<text x="{px(a)}" y="{_H - _M + 14}" font-size="10" text-anchor="middle">{a:g}</text>')
    parts.append(f'<text x="{_W / 2:g}" y="{_H - 8}" font-size="11" text-anchor="middle">ε</text>')
    parts.append(
        f'<text x="12" y="{_H / 2:g}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_H / 2:g})">accuracy</text></svg>'
    )
    return "".join(parts)


def example_grid_svg(original: np.ndarray, adversarial: np.ndarray, *, cell: int = 6, title: str = "") -> str:
    """Rows of (original, perturbation, adversarial) images, grey scale; the perturbation is scaled to its own
    largest magnitude (mid-grey is zero). ``original`` and ``adversarial``: ``(n, h, w)`` or ``(n, c, h, w)``
    (channels averaged)."""
    o = _images(original)
    a = _images(adversarial)
    n, h, w = o.shape
    lo, hi = float(min(o.min(), a.min())), float(max(o.max(), a.max()))
    span = hi - lo or 1.0
    delta = a - o
    scale = float(np.abs(delta).max()) or 1.0
    gap = cell * 2
    width = 3 * w * cell + 4 * gap
    height = n * (h * cell + gap) + gap + 14
    label = title or "Originals, perturbations and adversarial examples"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>',
    ]
    for col, name in enumerate(("original", "perturbation", "adversarial")):
        x0 = gap + col * (w * cell + gap)
        parts.append(f'<text x="{x0}" y="11" font-size="10">{name}</text>')
    for i in range(n):
        y0 = 14 + gap + i * (h * cell + gap)
        panels = ((o[i] - lo) / span, 0.5 + delta[i] / (2 * scale), (a[i] - lo) / span)
        for col, img in enumerate(panels):
            x0 = gap + col * (w * cell + gap)
            for r in range(h):
                for c in range(w):
                    g = round(255 * min(max(float(img[r, c]), 0.0), 1.0))
                    parts.append(
                        f'<rect x="{x0 + c * cell}" y="{y0 + r * cell}" width="{cell}" height="{cell}" '
                        f'fill="#{g:02x}{g:02x}{g:02x}"/>'
                    )
    parts.append("</svg>")
    return "".join(parts)


def _images(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 4:
        arr = arr.mean(axis=1)
    if arr.ndim != 3:
        raise ValueError(f"expected images of shape (n, h, w) or (n, c, h, w), got {arr.shape}")
    return arr
