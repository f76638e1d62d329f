"""Triage changes made in the dashboard, written to the committed ``.garrison/triage.yaml``.

The file is the source of truth that CI's gate reads, so the UI edits the file (atomically, through
:mod:`garrison.core.triage`) and then mirrors it into the store with the user as the actor, which records who and
when. When the file or its folder is not writable (a read-only checkout), nothing is written: the change comes
back as a unified diff for someone to apply and commit.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from garrison.core import ConfigError, TriageStatus
from garrison.core.triage import DEFAULT_TRIAGE_PATH, Triage, TriageEntry, load_triage, save_triage
from garrison.store import Store

__all__ = ["TriageChange", "TriageOutcome", "apply_change", "triage_path"]


@dataclass(frozen=True, slots=True)
class TriageChange:
    """What a triager decided about one finding. ``status`` open with no owner and no reason removes the entry."""

    fingerprint: str
    status: TriageStatus
    owner: str | None = None
    reason: str | None = None
    expires: dt.date | None = None
    rule_id: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class TriageOutcome:
    """``written`` when the file was updated (and the store synced); else ``patch`` holds the diff to apply."""

    written: bool
    path: Path
    patch: str
    triage: Triage


def triage_path(project_dir: Path) -> Path:
    return Path(project_dir) / DEFAULT_TRIAGE_PATH


def _writable(path: Path) -> bool:
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


def _render(triage: Triage) -> str:
    with tempfile.TemporaryDirectory(prefix="garrison-triage-") as tmp:
        return save_triage(triage, Path(tmp) / "triage.yaml").read_text(encoding="utf-8")


def apply_change(
    store: Store,
    project_dir: Path,
    change: TriageChange,
    *,
    actor: str,
    write: bool | None = None,
    now: dt.datetime | None = None,
) -> TriageOutcome:
    """Apply ``change`` to the project's triage file and mirror it in the store, as ``actor``.

    ``write`` None writes when the file (or its folder) is writable; False always proposes the patch instead.

    Raises :class:`~garrison.core.ConfigError` when the entry is invalid (an accepted risk without reason, owner or
    expiry) or the current file cannot be parsed.
    """
    path = triage_path(project_dir)
    current = load_triage(path)
    old_text = path.read_text(encoding="utf-8") if path.exists() else ""
    when = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    owner = (change.owner or "").strip() or None
    reason = (change.reason or "").strip() or None
    if change.status is TriageStatus.OPEN and owner is None and reason is None:
        new = current.without(change.fingerprint)
    else:
        if change.status is TriageStatus.ACCEPTED_RISK and change.expires is not None:
            today = (now or dt.datetime.now(dt.UTC)).date()
            if change.expires <= today:
                raise ConfigError(f"`expires` must be after today ({today}), got {change.expires}")
        entry = TriageEntry(
            fingerprint=change.fingerprint,
            status=change.status,
            reason=reason,
            owner=owner,
            expires=change.expires if change.status is TriageStatus.ACCEPTED_RISK else None,
            rule_id=change.rule_id,
            title=change.title,
            updated_by=actor,
            updated_at=when,
        )
        new = current.with_entry(entry)
    new_text = _render(new)
    rel = DEFAULT_TRIAGE_PATH.as_posix()
    patch = "".join(
        difflib.unified_diff(
            old_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{rel}" if old_text else "/dev/null",
            tofile=f"b/{rel}",
        )
    )
    if write is False or not _writable(path):
        return TriageOutcome(written=False, path=path, patch=patch, triage=new)
    save_triage(new, path)
    store.sync_triage(new, actor=actor)
    return TriageOutcome(written=True, path=path, patch=patch, triage=new)
