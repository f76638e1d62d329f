"""Findings: what a check (or the policy gate) found, with a fingerprint that survives retraining."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from garrison.core.severity import Severity, Stage

__all__ = ["Evidence", "Finding", "Subject", "SubjectKind", "TriageStatus", "fingerprint_of"]


class SubjectKind(str, Enum):
    """What a finding is about."""

    MODEL = "model"
    DATASET = "dataset"
    ARTIFACT = "artifact"
    CODE = "code"
    SERVICE = "service"
    POLICY = "policy"


class TriageStatus(str, Enum):
    """A finding's triage state (from ``.garrison/triage.yaml``)."""

    OPEN = "open"
    ACCEPTED_RISK = "accepted-risk"
    FALSE_POSITIVE = "false-positive"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Subject:
    """The thing a finding is about. ``name`` is its logical name (stable across retraining); ``uri`` where it
    lives (a path relative to the working directory, or a URL); ``sha256`` its digest when it is a file."""

    kind: SubjectKind
    name: str
    uri: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "name": self.name, "uri": self.uri, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subject:
        return cls(SubjectKind(data["kind"]), data["name"], data.get("uri"), data.get("sha256"))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence. ``sensitive`` values (e.g. raw records) are left out of SARIF, Markdown and HTML
    unless the caller asks for them."""

    key: str
    value: Any
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "sensitive": self.sensitive}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(data["key"], data.get("value"), bool(data.get("sensitive", False)))


def fingerprint_of(rule_id: str, subject_name: str, location: str | None, symbol: str | None = None) -> str:
    """Stable identity of a finding: rule, the subject's logical name and the locator (location plus symbol);
    never digests, line numbers or evidence values."""
    raw = "\x1f".join((rule_id, subject_name, location or "", *((symbol,) if symbol else ())))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem found in a subject.

    ``symbol`` names what inside the location the finding is about (a callable, a test id, a function), so that two
    findings of one rule in one file keep distinct fingerprints that survive edits shifting ``line``.
    ``location`` is a locator inside the subject (a file path with ``!member`` for archives, a feature name, a
    probe id such as ``fuzz:nan``). ``references`` are versioned ids (``atlas:AML.T0011.000``,
    ``owasp-ml:2023:ML06``). The fingerprint is derived, never passed in.
    """

    rule_id: str
    title: str
    severity: Severity
    stage: Stage
    subject: Subject
    message: str
    threat_model: str = ""
    evidence: tuple[Evidence, ...] = ()
    location: str | None = None
    symbol: str | None = None
    line: int | None = None
    references: tuple[str, ...] = ()
    remediation: str = ""
    check_id: str | None = None
    triage: TriageStatus = TriageStatus.OPEN
    triage_note: str | None = None
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(
                self,
                "fingerprint",
                fingerprint_of(self.rule_id, self.subject.name, self.location, self.symbol),
            )

    @property
    def is_active(self) -> bool:
        """Still counts against the policy (open, not accepted, not a false positive, not fixed)."""
        return self.triage is TriageStatus.OPEN

    def with_triage(self, status: TriageStatus, note: str | None = None) -> Finding:
        return replace(self, triage=status, triage_note=note)

    def sort_key(self) -> tuple[int, int, str, str, str]:
        return (
            -self.severity.rank,
            self.stage.order,
            self.rule_id,
            self.location or "",
            self.symbol or "",
            self.fingerprint,
        )

    def evidence_dict(self, *, include_sensitive: bool = False) -> dict[str, Any]:
        return {e.key: e.value for e in self.evidence if include_sensitive or not e.sensitive}

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "stage": self.stage.value,
            "subject": self.subject.to_dict(),
            "message": self.message,
            "threat_model": self.threat_model,
            "evidence": [e.to_dict() for e in self.evidence],
            "location": self.location,
            "symbol": self.symbol,
            "line": self.line,
            "references": list(self.references),
            "remediation": self.remediation,
            "check_id": self.check_id,
            "triage": self.triage.value,
            "triage_note": self.triage_note,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            rule_id=data["rule_id"],
            title=data["title"],
            severity=Severity(data["severity"]),
            stage=Stage(data["stage"]),
            subject=Subject.from_dict(data["subject"]),
            message=data["message"],
            threat_model=data.get("threat_model", ""),
            evidence=tuple(Evidence.from_dict(e) for e in data.get("evidence", [])),
            location=data.get("location"),
            symbol=data.get("symbol"),
            line=data.get("line"),
            references=tuple(data.get("references", [])),
            remediation=data.get("remediation", ""),
            check_id=data.get("check_id"),
            triage=TriageStatus(data.get("triage", "open")),
            triage_note=data.get("triage_note"),
            fingerprint=data.get("fingerprint", ""),
        )
