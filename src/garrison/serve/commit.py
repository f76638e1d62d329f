"""Group commit of audit-log entries on the event loop: one transaction for the requests of one loop turn.

Each request must have its entry committed before its response is sent. Committing each entry alone costs a
transaction per request; when many requests are in flight, :class:`GroupCommit` queues their entries and commits
them together right after the current turn of the event loop (``loop.call_soon``), then resolves every waiting
request. One client waits for one commit, as before; sixteen concurrent clients share one. No thread is involved:
the commit runs on the loop (tens of microseconds for SQLite in WAL mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["GroupCommit"]


class _Log(Protocol):
    def append_many(self, items: list[tuple[str, str, Mapping[str, Any] | None]]) -> list[Any]: ...


class GroupCommit:
    """Batches :meth:`append` calls of concurrent requests into one ``log.append_many`` (see the module docstring)."""

    def __init__(self, log: _Log) -> None:
        self.log = log
        self._pending: list[tuple[str, str, Mapping[str, Any] | None, asyncio.Future[Any]]] = []
        self._scheduled = False
        self.commits = 0
        self.entries = 0

    async def append(self, kind: str, actor: str, payload: Mapping[str, Any] | None) -> Any:
        """The committed entry, once the batch it joined is committed (its exception if that failed)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((kind, actor, payload, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            entries = self.log.append_many([(k, a, p) for k, a, p, _ in batch])
        except Exception as exc:
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.commits += 1
        self.entries += len(batch)
        for (*_, future), entry in zip(batch, entries, strict=True):
            if not future.done():
                future.set_result(entry)
