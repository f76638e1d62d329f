"""Writing a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from garrison.core.errors import InputError

__all__ = ["atomic_output", "write_atomic"]


@contextmanager
def atomic_output(
    path: str | Path,
    *,
    mode: int = 0o644,
    durable: bool = True,
    make_parents: bool = True,
    buffered: bool = True,
) -> Iterator[BinaryIO]:
    """A binary file (unbuffered with ``buffered=False``: raw ``write`` calls, which may take less than they are
    given) to write ``path``'s new content into: a temporary file beside ``path``, created
    0600 (a secret never sits on disk with wider permissions), flushed to disk when ``durable``, set to ``mode``
    and renamed over ``path`` when the block ends normally. On an exception the temporary file is removed and
    ``path`` is untouched. Missing parent directories are created, or with ``make_parents=False`` an
    :class:`InputError` (so is any other failure to create the temporary file)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        if make_parents:
            parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise InputError(f"cannot create the output: {exc.strerror}", path=p) from None
    try:
        with os.fdopen(fd, "wb", buffering=-1 if buffered else 0) as fh:
            yield fh  # type: ignore[misc]
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_output` (durable; parents created)."""
    with atomic_output(path, mode=mode) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)
