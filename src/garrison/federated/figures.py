"""Self-contained SVG line charts of a federated simulation: test accuracy and backdoor success per round, one
line per strategy. Deterministic text, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from garrison.federated.results import SimulationResult

__all__ = ["accuracy_svg", "backdoor_svg", "rounds_svg"]

_W, _H, _M, _LEGEND = 480, 300, 44, 150
_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def rounds_svg(series: Sequence[tuple[str, Sequence[float]]], *, title: str, ylabel: str) -> str:
    """Lines of values in [0, 1] against the round (0, 1, ...), one per ``(name, values)``, with a legend."""
    n_rounds = max((len(v) for _, v in series), default=1)
    top = max(n_rounds - 1, 1)
    pw, ph = _W - _LEGEND - 2 * _M, _H - 2 * _M

    def px(r: float) -> str:
        return f"{_M + r / top * pw:.2f}"

    def py(v: float) -> str:
        return f"{_H - _M - min(max(v, 0.0), 1.0) * ph:.2f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{_M}" y="{_M}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
        f'<text x="{_M + pw / 2:g}" y="{_M - 12}" font-size="12" text-anchor="middle">{escape(title)}</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = py(tick)
        parts.append(f'<line x1="{_M}" y1="{y}" x2="{_M + pw}" y2="{y}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{_M - 6}" y="{float(y) + 3:.2f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    step = max(1, top // 10)
    for r in range(0, top + 1, step):
        parts.append(f'<text x="{px(r)}" y="{_H - _M + 14}" font-size="10" text-anchor="middle">{r}</text>')
    for i, (name, values) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        dash = ' stroke-dasharray="5 3"' if i >= len(_COLOURS) else ""
        points = " ".join(f"{px(r)},{py(v)}" for r, v in enumerate(values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for r, v in enumerate(values):
            parts.append(
                f'<circle cx="{px(r)}" cy="{py(v)}" r="2.5" fill="{colour}"><title>{escape(name)}, round {r}: '
                f"{v:.3f}</title></circle>"
            )
        ly = _M + 14 * i + 6
        lx = _W - _LEGEND + 4
        parts.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(f'<text x="{lx + 22}" y="{ly + 3}" font-size="10">{escape(name)}</text>')
    parts.append(f'<text x="{_M + pw / 2:g}" y="{_H - 8}" font-size="11" text-anchor="middle">round</text>')
    parts.append(
        f'<text x="12" y="{_H / 2:g}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_H / 2:g})">{escape(ylabel)}</text></svg>'
    )
    return "".join(parts)


def accuracy_svg(result: SimulationResult) -> str:
    """Test accuracy per round, one line per strategy."""
    attack = result.config["attack"]["kind"]
    series = [(r.strategy, [rec.accuracy for rec in r.rounds]) for r in result.runs]
    return rounds_svg(series, title=f"Test accuracy per round (attack: {attack})", ylabel="test accuracy")


def backdoor_svg(result: SimulationResult) -> str | None:
    """Backdoor success per round, one line per strategy; ``None`` when no backdoor attack ran."""
    if result.config["attack"]["kind"] != "backdoor":
        return None
    series = [(r.strategy, [rec.backdoor or 0.0 for rec in r.rounds]) for r in result.runs]
    return rounds_svg(series, title="Backdoor success per round", ylabel="backdoor success")
