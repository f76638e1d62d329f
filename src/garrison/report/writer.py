"""Rendering a report by format name, and writing report files atomically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from garrison.core.atomic_write import write_atomic
from garrison.core.audit_report import Report
from garrison.core.errors import RegistryError
from garrison.report.html import render_html
from garrison.report.json_report import to_json
from garrison.report.junit import render_junit
from garrison.report.markdown import render_markdown
from garrison.report.sarif import render_sarif

__all__ = ["FILE_NAMES", "FORMATS", "render", "write_reports"]

_RENDERERS: Mapping[str, Callable[..., str]] = MappingProxyType(
    {
        "json": to_json,
        "html": render_html,
        "sarif": render_sarif,
        "junit": render_junit,
        "markdown": render_markdown,
    }
)
FORMATS: tuple[str, ...] = tuple(_RENDERERS)
"""Every report format, in the order files are written."""

FILE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "json": "report.json",
        "html": "index.html",
        "sarif": "report.sarif",
        "junit": "junit.xml",
        "markdown": "summary.md",
    }
)
_OPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "json": frozenset(),
        "html": frozenset({"include_sensitive"}),
        "sarif": frozenset({"repo_root", "include_sensitive"}),
        "junit": frozenset(),
        "markdown": frozenset({"include_sensitive"}),
    }
)


def _renderer(fmt: str) -> Callable[..., str]:
    try:
        return _RENDERERS[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        raise RegistryError(f"unknown report format {fmt!r} (known: {known})", name=fmt) from None


def render(report: Report, fmt: str, **options: Any) -> str:
    """Render ``report`` in format ``fmt`` (json, html, sarif, junit, markdown) with that renderer's options."""
    renderer = _renderer(fmt)
    unknown = sorted(set(options) - _OPTIONS[fmt])
    if unknown:
        raise TypeError(f"report format {fmt!r} takes no option {unknown[0]!r}")
    return renderer(report, **options)


def write_reports(
    report: Report,
    out_dir: Path,
    formats: Sequence[str],
    *,
    repo_root: Path | None = None,
    include_sensitive: bool = False,
) -> dict[str, Path]:
    """Write ``report`` in each of ``formats`` into ``out_dir`` (created if missing) under the names of
    :data:`FILE_NAMES`; returns the path of each. Every format is rendered before anything is written, and each
    file is replaced atomically, so no file is ever half written. With ``include_sensitive`` the files are
    readable by their owner only."""
    wanted = [fmt for fmt in FORMATS if fmt in set(formats)]
    for fmt in formats:
        _renderer(fmt)
    shared = {"repo_root": repo_root, "include_sensitive": include_sensitive}
    texts = {
        fmt: render(report, fmt, **{k: v for k, v in shared.items() if k in _OPTIONS[fmt]}) for fmt in wanted
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if include_sensitive else 0o644
    return {fmt: write_atomic(out / FILE_NAMES[fmt], texts[fmt], mode=mode) for fmt in wanted}
