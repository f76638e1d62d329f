"""Progress reporting, injected by the caller (the CLI passes a rich implementation; the library never prints)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullProgress", "Progress", "ProgressTask"]


class ProgressTask(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def done(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None = None) -> ProgressTask: ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        return None

    def done(self) -> None:
        return None


class NullProgress:
    """Reports nothing."""

    def task(self, description: str, total: int | None = None) -> ProgressTask:
        return _NullTask()
