"""What the UI tests share besides fixtures: the users' passwords and the running site's handles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from garrison.core import Report
from garrison.store import Store

PASSWORDS = {"alice": "admin-pass-123", "tom": "triager-pass-123", "vera": "viewer-pass-123"}
ROLES = {"alice": "admin", "tom": "triager", "vera": "viewer"}
GATE_RULE = "GAR-DI-005"  # the one finding the tests leave open: accepting its risk turns the gate green


@dataclass(frozen=True)
class Audited:
    config: Path
    report: Report


@dataclass
class Site:
    url: str
    root: Path
    store: Store
    audit_id: int
    previous_id: int
    gate_fingerprint: str
    incident_id: int

    @property
    def triage_file(self) -> Path:
        return self.root / ".garrison" / "triage.yaml"
