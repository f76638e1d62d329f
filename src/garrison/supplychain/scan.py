"""Scanning files, directories and bytes: the entry points of the artifact scanner."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from garrison.core.errors import InputError
from garrison.supplychain.blob import Blob
from garrison.supplychain.context import LimitHit, ScanContext
from garrison.supplychain.formats import detect_directory
from garrison.supplychain.limits import ScanLimits
from garrison.supplychain.result import ScanResult
from garrison.supplychain.router import dispatch_directory

if TYPE_CHECKING:
    from garrison.supplychain.pickle_policy import Allowlist

__all__ = ["scan_bytes", "scan_paths"]

_HASH_CHUNK = 8 << 20


def scan_paths(
    paths: Sequence[str | Path],
    *,
    limits: ScanLimits | None = None,
    allowlist: Allowlist | None = None,
    progress: Callable[[str], None] | None = None,
    digest: bool = False,
) -> ScanResult:
    """Scan files, directories (recursively, in sorted order) and archives without executing anything.

    Locations name each file as given, joined with its path inside a given directory, and archive members with
    ``!`` (``a.zip!b.zip!c.pkl``). Anything not fully scanned is in ``incomplete``. ``digest`` hashes every file
    (otherwise only files with findings are hashed, for the findings' subject). A missing path raises
    :class:`~garrison.core.InputError`; file content never makes it raise.
    """
    for given in paths:
        if not os.path.lexists(given):
            raise InputError("no such file or directory", path=given)
    ctx = ScanContext(limits=limits, allowlist=allowlist, progress=progress)
    for given in paths:
        location = str(given) if isinstance(given, str) else Path(given).as_posix()
        path = Path(given)
        if path.is_dir():
            _scan_directory(path, location, ctx, digest=digest)
        else:
            _scan_file(path, location, ctx, digest=digest)
    return ctx.result()


def scan_bytes(
    data: bytes | bytearray | memoryview,
    *,
    name: str = "<bytes>",
    limits: ScanLimits | None = None,
    allowlist: Allowlist | None = None,
) -> ScanResult:
    """Scan bytes in memory as if they were a file called ``name``. Never raises for any content."""
    ctx = ScanContext(limits=limits, allowlist=allowlist)
    sha256 = hashlib.sha256(data).hexdigest()
    ctx.begin_file(name, sha256, len(data))
    with Blob.from_bytes(data, name) as blob:
        _scan_top(blob, ctx)
    ctx.end_file(sha256)
    return ctx.result()


def _scan_top(blob: Blob, ctx: ScanContext) -> None:
    try:
        ctx.scan_child(blob)
    except LimitHit as hit:
        ctx.incomplete(blob.location, hit.message, limit=hit.limit)
    except Exception as exc:  # scan_child already contains scanner bugs; this is the last line of defence
        ctx.incomplete(blob.location, f"scan failed: {type(exc).__name__}: {exc}")


def _scan_file(path: Path, location: str, ctx: ScanContext, *, digest: bool) -> None:
    try:
        info = path.stat()
    except OSError as exc:
        ctx.begin_file(location, None)
        ctx.incomplete(location, f"cannot be read: {exc.strerror or exc}")
        return
    if not stat.S_ISREG(info.st_mode):
        ctx.begin_file(location, None)
        ctx.incomplete(location, "not a regular file; not read")
        return
    ctx.begin_file(location, None, info.st_size)
    n_before = ctx.n_findings
    try:
        blob = Blob.from_path(path, location)
    except (OSError, ValueError) as exc:
        ctx.incomplete(location, f"cannot be read: {exc}")
        return
    with blob:
        _scan_top(blob, ctx)
        sha256 = None
        if digest or ctx.n_findings > n_before:
            sha256 = hashlib.sha256(blob.view()).hexdigest() if blob.size else hashlib.sha256(b"").hexdigest()
        ctx.end_file(sha256)


def _scan_directory(root: Path, root_location: str, ctx: ScanContext, *, digest: bool) -> None:
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        current = Path(dirpath)
        rel_dir = current.relative_to(root).as_posix()
        dir_location = root_location if rel_dir == "." else posixpath.join(root_location, rel_dir)
        for kind in detect_directory(current):
            ctx.begin_file(dir_location, None)
            try:
                dispatch_directory(kind, current, dir_location, ctx)
            except LimitHit as hit:
                ctx.incomplete(dir_location, hit.message, limit=hit.limit)
            except Exception as exc:  # a directory scanner bug must not stop the scan
                ctx.incomplete(dir_location, f"{kind} scan failed: {type(exc).__name__}: {exc}")
        for name in sorted(filenames + [d for d in dirnames if (current / d).is_symlink()]):
            path = current / name
            location = posixpath.join(dir_location, name)
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    ctx.begin_file(location, None)
                    ctx.incomplete(location, "symbolic link leads out of the scanned directory; not followed")
                # A link inside the tree is scanned at its target.
                continue
            _scan_file(path, location, ctx, digest=digest)
