"""Terminal output: a rich console on stderr for progress and messages, stdout for requested output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from garrison.cli.state import STATE

if TYPE_CHECKING:
    from rich.console import Console

    from garrison.audit.progress import Progress, ProgressTask

__all__ = ["RichProgress", "err_console", "info", "warn"]

_ERR: Console | None = None


def err_console() -> Console:
    global _ERR
    if _ERR is None:
        from rich.console import Console

        _ERR = Console(stderr=True, highlight=False)
    return _ERR


def info(message: str) -> None:
    if not STATE.quiet:
        err_console().print(message)


def warn(message: str) -> None:
    err_console().print(f"[yellow]warning:[/yellow] {message}")


class _RichTask:
    def __init__(self, progress: Any, task_id: Any) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._id, n)

    def done(self) -> None:
        task = next((t for t in self._progress.tasks if t.id == self._id), None)
        if task is not None:
            total = task.total if task.total is not None else task.completed
            self._progress.update(self._id, total=total, completed=total)


class RichProgress:
    """Progress bars on stderr (nothing when --quiet or stderr is not a terminal)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console(),
            transient=True,
            disable=STATE.quiet or not sys.stderr.isatty(),
        )

    def __enter__(self) -> Progress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def task(self, description: str, total: int | None = None) -> ProgressTask:
        return _RichTask(self._progress, self._progress.add_task(description, total=total))
