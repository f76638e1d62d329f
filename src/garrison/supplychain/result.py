"""What a scan returns: findings, what could not be fully scanned, and what was scanned."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from dataclasses import dataclass

from garrison.core.audit_report import Report, RunInfo
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.severity import Severity, Stage

__all__ = ["SCAN_CHECK_ID", "Incomplete", "ScanResult", "ScannedFile"]

SCAN_CHECK_ID = "scan"


@dataclass(frozen=True, slots=True)
class Incomplete:
    """Something that could not be fully scanned (corrupt, truncated, unsupported, a limit hit).

    ``limit`` names the :class:`~garrison.supplychain.ScanLimits` field that was hit, if one was.
    """

    location: str
    reason: str
    limit: str | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """A file or archive member that was scanned, with the format it was detected as.

    ``sha256`` is set for files on disk, ``None`` for members.
    """

    location: str
    format: str
    size: int
    sha256: str | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of a scan. Anything in ``incomplete`` was not fully scanned and is never reported clean."""

    findings: tuple[Finding, ...] = ()
    incomplete: tuple[Incomplete, ...] = ()
    files: tuple[ScannedFile, ...] = ()

    @property
    def is_complete(self) -> bool:
        return not self.incomplete

    def exit_code(self, fail_on: Severity = Severity.MEDIUM) -> int:
        """3 when anything was not fully scanned, else 1 when a finding is at or above ``fail_on``, else 0."""
        if self.incomplete:
            return 3
        if any(f.severity >= fail_on for f in self.findings if f.is_active):
            return 1
        return 0

    def merged(self, other: ScanResult) -> ScanResult:
        return ScanResult(
            tuple(sorted((*self.findings, *other.findings), key=Finding.sort_key)),
            (*self.incomplete, *other.incomplete),
            (*self.files, *other.files),
        )

    def to_check_result(self, *, duration_s: float = 0.0) -> CheckResult:
        """One check result (``scan``, stage artifact) holding every finding; ``error`` when incomplete."""
        metrics = (
            Metric("files_scanned", float(len(self.files)), unit="files"),
            Metric("findings", float(len(self.findings)), unit="findings", higher_is_better=False),
            Metric("incomplete", float(len(self.incomplete)), unit="items", higher_is_better=False),
        )
        error = None
        if self.incomplete:
            error = "not fully scanned: " + "; ".join(str(i) for i in self.incomplete)
        return CheckResult(
            check_id=SCAN_CHECK_ID,
            stage=Stage.ARTIFACT,
            status=CheckStatus.ERROR if self.incomplete else CheckStatus.OK,
            metrics=metrics,
            findings=tuple(sorted(self.findings, key=Finding.sort_key)),
            duration_s=duration_s,
            error=error,
            reason=error,
        )

    def to_report(
        self,
        *,
        project: str = "scan",
        started_at: dt.datetime | str | None = None,
        finished_at: dt.datetime | str | None = None,
    ) -> Report:
        """The canonical report of this scan: one ``scan`` check result. Not yet evaluated against a policy."""
        import garrison

        now = dt.datetime.now(dt.UTC)
        start = _iso(started_at or now)
        end = _iso(finished_at or now)
        duration = 0.0
        if isinstance(started_at, dt.datetime) and isinstance(finished_at, dt.datetime):
            duration = max(0.0, (finished_at - started_at).total_seconds())
        run = RunInfo(
            project=project,
            model_name=project,
            started_at=start,
            finished_at=end,
            seed=0,
            garrison_version=garrison.__version__,
            python=sys.version.split()[0],
            platform=platform.platform(terse=True),
        )
        return Report(run=run, results=(self.to_check_result(duration_s=duration),))


def _iso(value: dt.datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat(timespec="seconds")
