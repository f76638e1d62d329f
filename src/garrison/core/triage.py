"""Triage decisions, kept in ``.garrison/triage.yaml`` next to the code: the source of truth for what the team
decided about each finding (by fingerprint). The store mirrors it and the UI edits it, so CI on a fresh clone
sees the same triage.

An ``accepted-risk`` entry needs a reason, an owner and an expiry date; once that date has passed the acceptance
no longer applies (and the gate raises GAR-POL-002).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from garrison.core.atomic_write import write_atomic
from garrison.core.errors import ConfigError
from garrison.core.findings import TriageStatus
from garrison.core.schema_spec import Spec, line_of, load_yaml, validate

__all__ = ["DEFAULT_TRIAGE_PATH", "Triage", "TriageEntry", "load_triage", "save_triage"]

DEFAULT_TRIAGE_PATH = Path(".garrison") / "triage.yaml"

_ENTRY_SPEC = Spec(
    "map",
    fields={
        "status": Spec("str", required=True, choices=tuple(s.value for s in TriageStatus)),
        "reason": Spec("str", default=None),
        "owner": Spec("str", default=None),
        "expires": Spec("str", default=None, doc="YYYY-MM-DD"),
        "rule_id": Spec("str", default=None),
        "title": Spec("str", default=None),
        "updated_by": Spec("str", default=None),
        "updated_at": Spec("str", default=None),
    },
)
_TRIAGE_SPEC = Spec(
    "map",
    fields={
        "version": Spec("int", default=1, choices=(1,)),
        "findings": Spec("dict", values=_ENTRY_SPEC, default=None),
    },
)


@dataclass(frozen=True, slots=True)
class TriageEntry:
    fingerprint: str
    status: TriageStatus
    reason: str | None = None
    owner: str | None = None
    expires: dt.date | None = None
    rule_id: str | None = None
    title: str | None = None
    updated_by: str | None = None
    updated_at: str | None = None

    def is_expired(self, today: dt.date) -> bool:
        return self.status is TriageStatus.ACCEPTED_RISK and self.expires is not None and self.expires < today

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value}
        for key in ("reason", "owner", "rule_id", "title", "updated_by", "updated_at"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        return out


@dataclass(frozen=True, slots=True)
class Triage:
    """An immutable set of triage entries keyed by fingerprint. Changes return a new ``Triage``."""

    entries: Mapping[str, TriageEntry]

    @classmethod
    def empty(cls) -> Triage:
        return cls({})

    def get(self, fingerprint: str) -> TriageEntry | None:
        return self.entries.get(fingerprint)

    def __iter__(self) -> Iterator[TriageEntry]:
        return iter(self.entries[k] for k in sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def with_entry(self, entry: TriageEntry) -> Triage:
        _check_entry(entry, None, None)
        return Triage({**self.entries, entry.fingerprint: entry})

    def without(self, fingerprint: str) -> Triage:
        return Triage({k: v for k, v in self.entries.items() if k != fingerprint})

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "findings": {e.fingerprint: e.to_dict() for e in self}}


def _check_entry(entry: TriageEntry, path: str | Path | None, line: int | None) -> None:
    if entry.status is TriageStatus.ACCEPTED_RISK:
        key = f"findings.{entry.fingerprint}"
        missing = [k for k in ("reason", "owner", "expires") if getattr(entry, k) in (None, "")]
        if missing:
            raise ConfigError(
                f"an accepted risk needs {', '.join(missing)}",
                path=path,
                key=f"{key}.{missing[0]}",
                line=line,
            )


def _parse_date(value: str, *, path: str | Path | None, key: str, line: int | None) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"`{key}` must be a date YYYY-MM-DD, got {value!r}", path=path, key=key, line=line
        ) from None


def parse_triage(text: str, *, path: str | Path | None = None) -> Triage:
    doc = load_yaml(text, path=path)
    if doc is None:
        return Triage.empty()
    if isinstance(doc, Mapping) and isinstance(doc.get("findings"), Mapping):
        for entry in doc["findings"].values():  # YAML dates arrive as date objects: keep them as text
            if isinstance(entry, dict) and isinstance(entry.get("expires"), dt.date):
                entry["expires"] = entry["expires"].isoformat()
    plain = validate(doc, _TRIAGE_SPEC, path=path)
    nodes = doc.get("findings") or {}
    entries: dict[str, TriageEntry] = {}
    for fp, e in (plain["findings"] or {}).items():
        line = line_of(nodes, fp)
        expires = (
            _parse_date(e["expires"], path=path, key=f"findings.{fp}.expires", line=line)
            if e["expires"]
            else None
        )
        entry = TriageEntry(
            fingerprint=fp,
            status=TriageStatus(e["status"]),
            reason=e["reason"],
            owner=e["owner"],
            expires=expires,
            rule_id=e["rule_id"],
            title=e["title"],
            updated_by=e["updated_by"],
            updated_at=e["updated_at"],
        )
        _check_entry(entry, path, line)
        entries[fp] = entry
    return Triage(entries)


def load_triage(path: str | Path = DEFAULT_TRIAGE_PATH) -> Triage:
    """Read a triage file; a missing file is an empty triage."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Triage.empty()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read triage file: {exc.__class__.__name__}", path=p) from None
    return parse_triage(text, path=p)


_HEADER = """\
# Garrison triage decisions, keyed by finding fingerprint. Commit this file: CI's gate reads it.
# status: open | accepted-risk (needs reason, owner, expires: YYYY-MM-DD) | false-positive | fixed
"""


def save_triage(triage: Triage, path: str | Path = DEFAULT_TRIAGE_PATH) -> Path:
    """Write the triage file atomically (temporary file, then rename)."""
    from ruamel.yaml import YAML

    p = Path(path)
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buffer = io.StringIO()
    buffer.write(_HEADER)
    yaml.dump(triage.to_dict(), buffer)
    write_atomic(p, buffer.getvalue())
    return p


def updated(entry: TriageEntry, **changes: Any) -> TriageEntry:
    """A copy of ``entry`` with ``changes``; validated like a parsed entry."""
    new = replace(entry, **changes)
    _check_entry(new, None, None)
    return new
