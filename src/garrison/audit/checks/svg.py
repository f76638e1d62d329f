"""Tiny hand-written SVG figures for check results: self-contained, deterministic text, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

import numpy as np

__all__ = ["bar_chart", "image_grid", "reliability_diagram"]

_SIZE = 320
_MARGIN = 40


def _fmt(v: float) -> str:
    return f"{v:.2f}"


def reliability_diagram(
    confidence: Sequence[float],
    accuracy: Sequence[float],
    counts: Sequence[int],
    *,
    title: str = "Reliability diagram",
) -> str:
    """Mean predicted confidence against observed accuracy per bin, with the diagonal of perfect calibration.

    Points are drawn with an area proportional to the bin's count; bins with no rows are left out.
    """
    plot = _SIZE - 2 * _MARGIN

    def px(v: float) -> float:
        return _MARGIN + min(max(v, 0.0), 1.0) * plot

    def py(v: float) -> float:
        return _SIZE - _MARGIN - min(max(v, 0.0), 1.0) * plot

    top = max((c for c in counts), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_SIZE} {_SIZE}" width="{_SIZE}" height="{_SIZE}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_MARGIN}" y="{_MARGIN}" width="{plot}" height="{plot}" fill="none" stroke="#888"/>',
        f'<line x1="{_fmt(px(0))}" y1="{_fmt(py(0))}" x2="{_fmt(px(1))}" y2="{_fmt(py(1))}" '
        'stroke="#888" stroke-dasharray="4 4"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{_fmt(px(tick))}" y="{_SIZE - _MARGIN + 14}" font-size="10" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        parts.append(
            f'<text x="{_MARGIN - 6}" y="{_fmt(py(tick) + 3)}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{_SIZE / 2:g}" y="{_SIZE - 8}" font-size="11" text-anchor="middle">mean confidence</text>'
    )
    parts.append(
        f'<text x="12" y="{_SIZE / 2:g}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_SIZE / 2:g})">accuracy</text>'
    )
    points = [(c, a, n) for c, a, n in zip(confidence, accuracy, counts, strict=True) if n > 0]
    if points:
        path = " ".join(f"{_fmt(px(c))},{_fmt(py(a))}" for c, a, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4"/>')
    for c, a, n in points:
        radius = 2.0 + 4.0 * (n / top) ** 0.5
        parts.append(
            f'<circle cx="{_fmt(px(c))}" cy="{_fmt(py(a))}" r="{_fmt(radius)}" fill="#1f77b4">'
            f"<title>confidence {c:.3f}, accuracy {a:.3f}, n={n}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, unit: str = "") -> str:
    """Horizontal bars, largest first as given, one row per label; values must be >= 0."""
    row, label_width, bar_width = 18, 170, 220
    height = 30 + row * len(labels)
    peak = max((float(v) for v in values), default=0.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 80}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 26 + i * row
        width = max(1.0, bar_width * float(value) / peak)
        short = label if len(label) <= 26 else label[:25] + "…"
        parts.append(
            f'<text x="{label_width - 4}" y="{y + 12}" font-size="11" text-anchor="end">{escape(short)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{width:.1f}" height="{row - 5}" fill="#4a78b5"/>'
        )
        parts.append(
            f'<text x="{label_width + width + 4:.1f}" y="{y + 12}" font-size="10">{float(value):.3g}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def image_grid(
    panels: Sequence[tuple[str, np.ndarray, bool]], *, title: str, columns: int = 8, cell: int = 72
) -> str:
    """Small images in a grid, each ``(caption, values (h, w), signed)``: unsigned panels in grey from their
    minimum (black) to maximum (white), signed ones (attributions) blue for negative, white for zero and red for
    positive, scaled to the panel's largest magnitude. Images larger than 32 × 32 are block-averaged down."""
    rows = -(-len(panels) // columns) if panels else 0
    width = columns * (cell + 8) + 8
    height = 28 + rows * (cell + 22)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="4" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (caption, values, signed) in enumerate(panels):
        grid = _downsample(np.asarray(values, dtype=np.float64), 32)
        h, w = grid.shape
        x0 = 8 + (i % columns) * (cell + 8)
        y0 = 26 + (i // columns) * (cell + 22)
        px = cell / max(h, w)
        parts.append(f'<g transform="translate({x0},{y0})"><title>{escape(caption)}</title>')
        if signed:
            peak = float(np.abs(grid).max()) or 1.0
            colours = [[_diverging(v / peak) for v in row] for row in grid]
        else:
            lo, hi = float(grid.min()), float(grid.max())
            span = (hi - lo) or 1.0
            colours = [[_grey((v - lo) / span) for v in row] for row in grid]
        for r in range(h):
            for c in range(w):
                parts.append(
                    f'<rect x="{c * px:.1f}" y="{r * px:.1f}" width="{px:.2f}" height="{px:.2f}" '
                    f'fill="{colours[r][c]}"/>'
                )
        parts.append(
            f'<rect x="0" y="0" width="{w * px:.1f}" height="{h * px:.1f}" fill="none" stroke="#888"/>'
            f'<text x="0" y="{cell + 13}" font-size="9">{escape(caption[:18])}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _downsample(grid: np.ndarray, limit: int) -> np.ndarray:
    h, w = grid.shape
    step = max(1, -(-max(h, w) // limit))
    if step == 1:
        return grid
    hh, ww = -(-h // step) * step, -(-w // step) * step
    padded = np.pad(grid, ((0, hh - h), (0, ww - w)), mode="edge")
    return padded.reshape(hh // step, step, ww // step, step).mean(axis=(1, 3))


def _grey(t: float) -> str:
    v = round(255 * min(max(t, 0.0), 1.0))
    return f"#{v:02x}{v:02x}{v:02x}"


def _diverging(t: float) -> str:
    """-1 blue, 0 white, +1 red."""
    t = min(max(t, -1.0), 1.0)
    fade = round(255 * (1 - abs(t)))
    return f"#ff{fade:02x}{fade:02x}" if t >= 0 else f"#{fade:02x}{fade:02x}ff"
