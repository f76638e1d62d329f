"""What one check returns: metrics, raw findings, figures, status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.severity import Stage

__all__ = ["CheckResult", "CheckStatus", "Figure"]


class CheckStatus(str, Enum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Figure:
    """A figure for the report: an inline SVG (preferred, self-contained) or a table of rows.

    ``columns`` orders the table's columns for display (default: sorted keys); JSON keys are sorted on disk.
    """

    id: str
    title: str
    svg: str | None = None
    table: tuple[dict[str, Any], ...] = ()
    caption: str = ""
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "svg": self.svg,
            "table": [dict(r) for r in self.table],
            "caption": self.caption,
            "columns": list(self.columns),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        return cls(
            data["id"],
            data["title"],
            data.get("svg"),
            tuple(data.get("table", [])),
            data.get("caption", ""),
            tuple(data.get("columns", [])),
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check. Checks measure; the policy gate judges (``garrison.audit.evaluate``).

    ``status`` is ``error`` when the check raised or ran out of budget (``error`` says what), ``skipped`` when it
    could not apply (``reason`` says why); ``partial`` is true when the budget cut the work short but the metrics
    that were measured are still valid.
    """

    check_id: str
    stage: Stage
    status: CheckStatus = CheckStatus.OK
    metrics: tuple[Metric, ...] = ()
    findings: tuple[Finding, ...] = ()
    figures: tuple[Figure, ...] = ()
    duration_s: float = 0.0
    error: str | None = None
    reason: str | None = None
    partial: bool = False
    deterministic: bool = True

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "stage": self.stage.value,
            "status": self.status.value,
            "metrics": [m.to_dict() for m in sorted(self.metrics, key=lambda m: m.name)],
            "findings": [f.to_dict() for f in sorted(self.findings, key=Finding.sort_key)],
            "figures": [f.to_dict() for f in self.figures],
            "duration_s": round(self.duration_s, 6),
            "error": self.error,
            "reason": self.reason,
            "partial": self.partial,
            "deterministic": self.deterministic,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            check_id=data["check_id"],
            stage=Stage(data["stage"]),
            status=CheckStatus(data["status"]),
            metrics=tuple(Metric.from_dict(m) for m in data.get("metrics", [])),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            figures=tuple(Figure.from_dict(f) for f in data.get("figures", [])),
            duration_s=float(data.get("duration_s", 0.0)),
            error=data.get("error"),
            reason=data.get("reason"),
            partial=bool(data.get("partial", False)),
            deterministic=bool(data.get("deterministic", True)),
        )
