"""The state of one scan that every format scanner writes into: findings, incomplete items, limits, deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from garrison.core.errors import MissingDependencyError
from garrison.core.findings import Finding, Subject, SubjectKind
from garrison.core.rules import Rule
from garrison.core.severity import Severity
from garrison.supplychain.blob import Blob
from garrison.supplychain.limits import ScanLimits
from garrison.supplychain.result import SCAN_CHECK_ID, Incomplete, ScannedFile, ScanResult

if TYPE_CHECKING:
    from garrison.supplychain.pickle_policy import Allowlist

__all__ = ["MIN_DECOMPRESSION_ALLOWANCE", "LimitHit", "ScanContext"]

# Tiny compressed members (an empty file, a short config) may expand past the ratio; this much is always allowed.
MIN_DECOMPRESSION_ALLOWANCE = 1 << 20


class LimitHit(Exception):
    """Raised inside a scanner to abandon the current blob when a :class:`ScanLimits` bound is hit.

    ``limit`` is the ScanLimits field name. The scan records an :class:`Incomplete`; it never escapes a scan.
    """

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit
        self.message = message
        super().__init__(f"{limit}: {message}")


class ScanContext:
    """Collects what scanners find in the files of one scan.

    ``deadline`` is the ``time.monotonic()`` deadline of the current top-level file (``begin_file`` sets it).
    Findings name the current top-level file as their subject.
    """

    def __init__(
        self,
        *,
        limits: ScanLimits | None = None,
        allowlist: Allowlist | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits or ScanLimits()
        self._allowlist = allowlist
        self.progress = progress
        self.deadline = time.monotonic() + self.limits.timeout_s
        self._subject = Subject(SubjectKind.ARTIFACT, "<bytes>", "<bytes>")
        self._findings: list[Finding] = []
        self._incomplete: list[Incomplete] = []
        self._files: list[ScannedFile] = []
        self._decompressed_left = self._budget_for(0)
        self._file_start = 0
        self._files_start = 0

    def _budget_for(self, size: int) -> float:
        return max(self.limits.max_decompression_ratio * size, float(MIN_DECOMPRESSION_ALLOWANCE))

    def charge_decompressed(self, nbytes: int) -> None:
        """Count bytes decompressed anywhere inside the current file (nested archives included).

        All levels together may expand at most ``max_decompression_ratio`` times the file's size, which stops
        nested and overlapping-member bombs that stay under the ratio at each level.
        """
        self._decompressed_left -= nbytes
        if self._decompressed_left < 0:
            raise LimitHit(
                "max_decompression_ratio",
                f"archive expands to more than {self.limits.max_decompression_ratio:g} times the file's size",
            )

    @property
    def allowlist(self) -> Allowlist:
        """The allowlist of pickle globals (the default one unless the scan was given another)."""
        if self._allowlist is None:
            from garrison.supplychain.pickle_policy import default_allowlist

            self._allowlist = default_allowlist()
        return self._allowlist

    def begin_file(self, location: str, sha256: str | None, size: int = 0) -> None:
        """Start a top-level file: findings from now on are about it; its deadline and budgets start now."""
        self._subject = Subject(SubjectKind.ARTIFACT, location, location, sha256)
        self.deadline = time.monotonic() + self.limits.timeout_s
        self._decompressed_left = self._budget_for(size)
        self._file_start = len(self._findings)
        self._files_start = len(self._files)
        if self.progress is not None:
            self.progress(location)

    def end_file(self, sha256: str | None) -> None:
        """Finish the current top-level file, setting its digest on the findings made about it."""
        if sha256 is None:
            return
        if self._subject.sha256 != sha256:
            self._subject = replace(self._subject, sha256=sha256)
            for i in range(self._file_start, len(self._findings)):
                self._findings[i] = replace(self._findings[i], subject=self._subject)
        for i in range(self._files_start, len(self._files)):
            if self._files[i].location == self._subject.name:
                self._files[i] = replace(self._files[i], sha256=sha256)
                break

    @property
    def n_findings(self) -> int:
        return len(self._findings)

    def report(
        self,
        rule: Rule,
        where: Blob | str,
        message: str,
        *,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
        sensitive: Iterable[str] = (),
        symbol: str | None = None,
    ) -> None:
        """Record a finding of ``rule`` located at a blob (its location) or an explicit location string.
        ``symbol`` (e.g. the callable) keeps several findings of one rule in one file apart."""
        location = where.location if isinstance(where, Blob) else where
        self._findings.append(
            rule.finding(
                subject=self._subject,
                message=message,
                location=location,
                symbol=symbol,
                evidence=dict(evidence or {}),
                severity=severity,
                check_id=SCAN_CHECK_ID,
                sensitive=sensitive,
            )
        )

    def incomplete(self, location: str, reason: str, *, limit: str | None = None) -> None:
        """Record that ``location`` could not be fully scanned (it will never be reported clean)."""
        item = Incomplete(location, reason, limit)
        if item not in self._incomplete:
            self._incomplete.append(item)

    def scanned(self, blob: Blob, fmt: str, *, sha256: str | None = None) -> None:
        """Record that ``blob`` was scanned as ``fmt``."""
        self._files.append(ScannedFile(blob.location, fmt, blob.size, sha256))

    def check_deadline(self) -> None:
        """Raise :class:`LimitHit` (``timeout_s``) when the current file's time is up."""
        if time.monotonic() > self.deadline:
            raise LimitHit("timeout_s", f"scan took longer than {self.limits.timeout_s:g} s")

    def scan_child(self, blob: Blob) -> None:
        """Detect the format of a nested blob and scan it. Too deep -> incomplete.

        A limit hit or a scanner bug inside the child makes the child incomplete and the scan goes on with its
        siblings; running out of time abandons the whole file.
        """
        from garrison.supplychain.router import dispatch

        if blob.depth > self.limits.max_nesting_depth:
            self.incomplete(
                blob.location,
                f"nested deeper than {self.limits.max_nesting_depth} levels",
                limit="max_nesting_depth",
            )
            return
        self.check_deadline()
        try:
            dispatch(blob, self)
        except LimitHit as hit:
            if hit.limit == "timeout_s":
                raise
            self.incomplete(blob.location, hit.message, limit=hit.limit)
        except MissingDependencyError as exc:
            self.incomplete(blob.location, str(exc))
        except (MemoryError, RecursionError) as exc:
            self.incomplete(blob.location, f"scanner ran out of resources ({type(exc).__name__})")
        except Exception as exc:  # a scanner bug must not hide the rest of the file
            self.incomplete(blob.location, f"scanner failed: {type(exc).__name__}: {exc}")

    def result(self) -> ScanResult:
        """Everything recorded so far."""
        return ScanResult(
            tuple(sorted(self._findings, key=Finding.sort_key)), tuple(self._incomplete), tuple(self._files)
        )
