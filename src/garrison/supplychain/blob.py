"""Bytes under inspection, named by where they came from. Never executed."""

from __future__ import annotations

import mmap
from pathlib import Path
from types import TracebackType

__all__ = ["Blob"]


class Blob:
    """Bytes under inspection, named by location; never executed.

    mmap-backed for files (zero-copy), bytes otherwise. ``location`` is the file as given on the command line,
    with ``!member`` per archive level (``models/x.pt!archive/data.pkl``); ``depth`` counts those levels;
    ``path`` is the real file when the blob is one (scanners that need the directory around it use it).
    """

    __slots__ = ("_mmap", "_view", "depth", "location", "path", "size")

    def __init__(
        self,
        view: memoryview,
        location: str,
        *,
        depth: int = 0,
        path: Path | None = None,
        mapping: mmap.mmap | None = None,
    ) -> None:
        self._view = view
        self._mmap = mapping
        self.location = location
        self.depth = depth
        self.path = path
        self.size = len(view)

    @classmethod
    def from_path(cls, path: Path, location: str) -> Blob:
        """Map a file read-only. Raises ``OSError`` when it cannot be opened."""
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size == 0:
                return cls(memoryview(b""), location, path=path)
            mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(memoryview(mapping), location, path=path, mapping=mapping)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, location: str, *, depth: int = 0, path: Path | None = None
    ) -> Blob:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        return cls(view, location, depth=depth, path=path)

    def child(self, data: bytes | bytearray | memoryview, name: str) -> Blob:
        """A blob nested in this one (an archive member, a decompressed payload)."""
        return Blob.from_bytes(data, f"{self.location}!{name}", depth=self.depth + 1)

    def view(self) -> memoryview:
        """The whole content, zero-copy."""
        return self._view

    def head(self, n: int = 64) -> bytes:
        return bytes(self._view[:n])

    def tail(self, n: int = 64) -> bytes:
        return bytes(self._view[max(0, self.size - n) :])

    def close(self) -> None:
        """Release the mapping. Views still held elsewhere keep it alive until they are released."""
        if self._mmap is not None:
            try:
                self._view.release()
                self._mmap.close()
            except BufferError:
                pass  # a slice still references the mapping; it is freed with the last view
            self._mmap = None

    def __enter__(self) -> Blob:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Blob({self.location!r}, size={self.size}, depth={self.depth})"
