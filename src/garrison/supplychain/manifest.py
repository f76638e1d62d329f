"""Dataset manifests: a readable, signed list of every file of a dataset directory with its size and SHA-256.

``write_manifest`` hashes every file under a directory (streamed, in a deterministic order) into
``garrison-manifest.json`` and, given an elliptic-curve private key, signs that file with OpenSSF model signing
(the same keys as ``garrison sign``; the signature is ``garrison-manifest.json.sig`` beside it).
``verify_manifest`` checks the signature over the manifest's exact bytes, hashes the directory again and says
which files changed, appeared or vanished.

The manifest and its signature are left out of the hashing. A symbolic link whose target lies outside the
directory, a dangling link and anything that is not a regular file (a FIFO, a socket, a device) cannot be
vouched for: writing refuses them, verifying reports them as ``unsafe``. A link to a file inside the directory
is hashed under the link's own path; a link to a directory inside it is not followed (its files are listed
under their real paths).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from garrison.core.atomic_write import write_atomic
from garrison.core.errors import DataError, InputError

__all__ = [
    "MANIFEST_FILE_NAME",
    "MANIFEST_SCHEMA_VERSION",
    "FileEntry",
    "Manifest",
    "ManifestDiff",
    "SignatureState",
    "UnsafeEntry",
    "default_manifest_path",
    "manifest_signature_path",
    "parse_manifest",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_FILE_NAME = "garrison-manifest.json"
"""The manifest's default name, inside the dataset directory."""
MANIFEST_SCHEMA_VERSION = 1
_KIND = "garrison-dataset-manifest"
_ALGORITHM = "sha256"
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOWN = 5  # unsafe entries named in an error message


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the dataset: its POSIX path relative to the dataset root, size in bytes, and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class UnsafeEntry:
    """A path under the dataset directory that cannot be hashed safely, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest. ``files`` are sorted by path."""

    root: str
    created: str
    files: tuple[FileEntry, ...]
    hash_algorithm: str = _ALGORITHM
    schema_version: int = MANIFEST_SCHEMA_VERSION

    def to_json(self) -> str:
        """The canonical text: sorted keys, two-space indent, ASCII, a final newline."""
        doc = {
            "schema_version": self.schema_version,
            "kind": _KIND,
            "root": self.root,
            "created": self.created,
            "hash_algorithm": self.hash_algorithm,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"


class SignatureState(str, Enum):
    """What verifying the manifest's signature found."""

    VERIFIED = "verified"
    """The signature verifies the manifest's exact bytes with the given public key."""
    INVALID = "invalid"
    """A signature is there but does not verify: the manifest was edited, another key signed it, or it is damaged."""
    MISSING = "missing"
    """A public key was given but there is no signature file."""
    UNCHECKED = "unchecked"
    """No public key was given: the directory was checked against the manifest for integrity only."""


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """The directory compared with its manifest. Paths are POSIX, relative to the dataset root, sorted.

    ``changed``: listed files whose size or digest differ; ``appeared``: files not in the manifest; ``vanished``:
    listed files that are gone (a rename is one vanished and one appeared path); ``unsafe``: paths that could not
    be hashed safely. ``expected`` and ``actual`` map each path to its entry in the manifest and on disk.
    """

    manifest: Path
    changed: tuple[str, ...]
    appeared: tuple[str, ...]
    vanished: tuple[str, ...]
    unsafe: tuple[UnsafeEntry, ...]
    signature_status: SignatureState
    signature_reason: str
    expected: Mapping[str, FileEntry] = field(default_factory=dict, compare=False, repr=False)
    actual: Mapping[str, FileEntry] = field(default_factory=dict, compare=False, repr=False)

    @property
    def intact(self) -> bool:
        """No file changed, appeared or vanished, and nothing unsafe was found."""
        return not (self.changed or self.appeared or self.vanished or self.unsafe)

    @property
    def ok(self) -> bool:
        """Intact, and the signature verified or was not asked for."""
        return self.intact and self.signature_status in (SignatureState.VERIFIED, SignatureState.UNCHECKED)


def default_manifest_path(directory: str | Path) -> Path:
    """``<directory>/garrison-manifest.json``."""
    return Path(directory) / MANIFEST_FILE_NAME


def manifest_signature_path(manifest: str | Path) -> Path:
    """The detached signature beside a manifest: ``<manifest>.sig``."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + ".sig")


# --- parsing (untrusted bytes) ----------------------------------------------------------------------------------


def parse_manifest(data: bytes, *, source: str | Path | None = None) -> Manifest:
    """Parse and validate a manifest's bytes. Anything malformed is a :class:`DataError` naming ``source``."""

    def bad(message: str) -> DataError:
        return DataError(f"not a valid dataset manifest: {message}", path=source)

    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise bad(f"not UTF-8 JSON ({_first_line(exc)})") from None
    if not isinstance(doc, dict):
        raise bad("the top level must be an object")
    if doc.get("kind") != _KIND:
        raise bad(f"`kind` must be {_KIND!r}")
    version = doc.get("schema_version")
    if type(version) is not int or version != MANIFEST_SCHEMA_VERSION:
        raise bad(
            f"unsupported `schema_version` {_short(version)} (this Garrison reads {MANIFEST_SCHEMA_VERSION})"
        )
    if doc.get("hash_algorithm") != _ALGORITHM:
        raise bad(f"`hash_algorithm` must be {_ALGORITHM!r}")
    root, created = doc.get("root"), doc.get("created")
    if not isinstance(root, str) or not isinstance(created, str):
        raise bad("`root` and `created` must be strings")
    files = doc.get("files")
    if not isinstance(files, list):
        raise bad("`files` must be a list")
    entries: dict[str, FileEntry] = {}
    for i, item in enumerate(files):
        entry = _entry(item, i, bad)
        if entry.path in entries:
            raise bad(f"`files[{i}].path` {_short(entry.path)} is listed twice")
        entries[entry.path] = entry
    return Manifest(root=root, created=created, files=tuple(entries[p] for p in sorted(entries)))


def _entry(item: Any, i: int, bad: Callable[[str], DataError]) -> FileEntry:
    if not isinstance(item, dict):
        raise bad(f"`files[{i}]` must be an object")
    path, size, digest = item.get("path"), item.get("size"), item.get("sha256")
    if not isinstance(path, str) or not _relative_posix(path):
        raise bad(f"`files[{i}].path` must be a relative POSIX path inside the dataset, got {_short(path)}")
    if type(size) is not int or size < 0:
        raise bad(f"`files[{i}].size` must be an integer >= 0, got {_short(size)}")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise bad(f"`files[{i}].sha256` must be 64 lowercase hex digits, got {_short(digest)}")
    return FileEntry(path, size, digest)


def _relative_posix(path: str) -> bool:
    if not path or "\0" in path or path.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# --- hashing the directory --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scan:
    files: dict[str, FileEntry]
    unsafe: tuple[UnsafeEntry, ...]


def _existing_directory(directory: str | Path) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise InputError("not a directory" if path.exists() else "directory not found", path=path)
    return path.resolve()


def _relative_inside(path: Path, root: Path) -> str | None:
    """``path`` (resolved) as a POSIX path relative to ``root``, or None when it lies outside."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def _scan(root: Path, skip: frozenset[str], progress: Callable[[str], None] | None) -> _Scan:
    """Hash every file under ``root`` (already resolved), leaving out the relative paths in ``skip``."""
    files: dict[str, FileEntry] = {}
    unsafe: list[UnsafeEntry] = []
    prefix = str(root).rstrip(os.sep) + os.sep

    def inside(real: str) -> bool:
        return real == str(root) or real.startswith(prefix)

    def walk_error(exc: OSError) -> None:
        where = _relative_inside(Path(exc.filename), root) if exc.filename else None
        unsafe.append(UnsafeEntry(where or ".", f"cannot list the directory: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error, followlinks=False):
        base = Path(dirpath)
        rel_base = base.relative_to(root).as_posix()
        dirnames.sort()
        for name in sorted(dirnames):
            full = base / name
            if full.is_symlink() and not inside(os.path.realpath(full)):
                unsafe.append(UnsafeEntry(_join(rel_base, name), "a link to a directory outside the dataset"))
        for name in sorted(filenames):
            rel = _join(rel_base, name)
            if rel in skip:
                continue
            if progress is not None:
                progress(rel)
            entry = _hash_entry(base / name, rel, inside)
            if isinstance(entry, UnsafeEntry):
                unsafe.append(entry)
            else:
                files[rel] = entry
    return _Scan(files, tuple(sorted(unsafe, key=lambda u: u.path)))


def _join(base: str, name: str) -> str:
    return name if base == "." else f"{base}/{name}"


def _hash_entry(full: Path, rel: str, inside: Callable[[str], bool]) -> FileEntry | UnsafeEntry:
    target = full
    try:
        if stat.S_ISLNK(os.lstat(full).st_mode):
            real = os.path.realpath(full)
            if not inside(real):
                return UnsafeEntry(rel, "a link to a file outside the dataset")
            if not os.path.exists(real):
                return UnsafeEntry(rel, "a dangling link")
            if os.path.isdir(real):
                return UnsafeEntry(rel, "a link to a directory")  # os.walk lists those as directories; a race
            target = Path(real)
        # O_NOFOLLOW: a file swapped for a link after the check is not followed; O_NONBLOCK: a FIFO never blocks
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(target, flags)
    except OSError as exc:
        return UnsafeEntry(rel, f"cannot open: {exc.strerror or exc}")
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return UnsafeEntry(rel, "not a regular file")
        try:
            digest = hashlib.file_digest(fh, _ALGORITHM).hexdigest()
        except OSError as exc:
            return UnsafeEntry(rel, f"cannot read: {exc.strerror or exc}")
    return FileEntry(rel, info.st_size, digest)


def _skipped(root: Path, manifest: Path) -> frozenset[str]:
    """The manifest and its signature, when they lie inside the dataset directory."""
    paths = (_relative_inside(p, root) for p in (manifest, manifest_signature_path(manifest)))
    return frozenset(p for p in paths if p is not None)


# --- writing and verifying ----------------------------------------------------------------------------------------


def write_manifest(
    directory: str | Path,
    *,
    private_key: str | Path | None = None,
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Hash every file under ``directory`` into a manifest; sign it when ``private_key`` (PEM) is given.

    The manifest goes to ``output`` or :func:`default_manifest_path`, its signature to
    :func:`manifest_signature_path`; both are written atomically, and a stale signature of an unsigned manifest
    is removed. ``progress`` is called with each relative path before it is hashed. Returns the manifest path.
    Raises :class:`InputError` for a missing directory, an unusable key, or paths that cannot be hashed safely
    (named in the message).
    """
    root = _existing_directory(directory)
    target = Path(output) if output is not None else default_manifest_path(Path(directory))
    scanned = _scan(root, _skipped(root, target), progress)
    if scanned.unsafe:
        shown = "; ".join(f"{u.path} ({u.reason})" for u in scanned.unsafe[:_SHOWN])
        more = f" and {len(scanned.unsafe) - _SHOWN} more" if len(scanned.unsafe) > _SHOWN else ""
        raise InputError(
            f"refusing to write a manifest: {len(scanned.unsafe)} path(s) cannot be hashed safely: {shown}{more}",
            path=directory,
        )
    manifest = Manifest(
        root=root.name,
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        files=tuple(scanned.files[p] for p in sorted(scanned.files)),
    )
    text = manifest.to_json().encode("ascii")
    signature_path = manifest_signature_path(target)
    if private_key is None:
        write_atomic(target, text)
        signature_path.unlink(missing_ok=True)
        return target

    from garrison.supplychain.signing import sign_model

    # signed under its final name in a scratch directory, so the signed bytes are exactly the ones written
    with tempfile.TemporaryDirectory(prefix="garrison-manifest-") as scratch:
        staged = Path(scratch) / target.name
        staged.write_bytes(text)
        produced = sign_model(staged, private_key=private_key, signature=Path(scratch) / "manifest.sig")
        signature = produced.read_bytes()
    write_atomic(target, text)
    write_atomic(signature_path, signature)
    return target


def verify_manifest(
    directory: str | Path,
    *,
    public_key: str | Path | None = None,
    manifest: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ManifestDiff:
    """Compare ``directory`` with its manifest and, given the signer's ``public_key`` (PEM), check the signature.

    The manifest is ``manifest`` or :func:`default_manifest_path`. Never raises for a changed directory or a
    bad signature: the diff says what. Raises :class:`InputError` for a missing directory, manifest or an
    unreadable key, and :class:`DataError` for a malformed manifest.
    """
    root = _existing_directory(directory)
    path = Path(manifest) if manifest is not None else default_manifest_path(Path(directory))
    data = _read_manifest(path)
    state, reason = _signature(path, data, public_key)
    expected = {f.path: f for f in parse_manifest(data, source=path).files}
    scanned = _scan(root, _skipped(root, path), progress)
    actual = scanned.files
    changed = sorted(
        p
        for p in expected.keys() & actual.keys()
        if (expected[p].sha256, expected[p].size) != (actual[p].sha256, actual[p].size)
    )
    unsafe_paths = {u.path for u in scanned.unsafe}
    return ManifestDiff(
        manifest=path,
        changed=tuple(changed),
        appeared=tuple(sorted(actual.keys() - expected.keys())),
        # a listed file now behind an unsafe link is reported as unsafe, not also as vanished
        vanished=tuple(sorted(expected.keys() - actual.keys() - unsafe_paths)),
        unsafe=scanned.unsafe,
        signature_status=state,
        signature_reason=reason,
        expected=expected,
        actual=actual,
    )


def _read_manifest(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise InputError(
            "no dataset manifest (write one with `garrison protect manifest`)", path=path
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the manifest: {exc.strerror or exc}", path=path) from None
    if len(data) > _MAX_MANIFEST_BYTES:
        raise DataError(f"the manifest is larger than {_MAX_MANIFEST_BYTES} bytes", path=path)
    return data


def _signature(path: Path, data: bytes, public_key: str | Path | None) -> tuple[SignatureState, str]:
    if public_key is None:
        return (
            SignatureState.UNCHECKED,
            "no public key given: checked for integrity only, not for authenticity",
        )
    from garrison.supplychain.signing import _check_public_key, verify_model

    public_key = Path(public_key)
    _check_public_key(public_key)  # a bad key is an input error whether or not there is a signature
    signature = manifest_signature_path(path)
    if not signature.is_file():
        return SignatureState.MISSING, f"no signature file at {signature}"

    # the bytes verified are the bytes parsed: a copy under the manifest's name, not the file read again
    with tempfile.TemporaryDirectory(prefix="garrison-manifest-") as scratch:
        staged = Path(scratch) / path.name
        staged.write_bytes(data)
        status = verify_model(staged, public_key=public_key, signature=signature)
    if status.ok:
        return SignatureState.VERIFIED, "signature verified"
    return SignatureState.INVALID, _manifest_reason(status.reason)


def _manifest_reason(reason: str) -> str:
    if reason.startswith("the model changed after signing"):
        return "the manifest was edited after signing"
    return reason.replace("the model was", "the manifest was")
