"""The canonical audit report and the policy decision. Every output format is rendered from these objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from garrison.core.errors import ReportError
from garrison.core.findings import Finding
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.severity import Severity

__all__ = [
    "REPORT_SCHEMA_VERSION",
    "ArtifactDigest",
    "Decision",
    "ExitCode",
    "Report",
    "RunInfo",
    "ThresholdResult",
    "Verdict",
]

REPORT_SCHEMA_VERSION = "1.0"


class ExitCode(int, Enum):
    """Exit codes of every Garrison command. When several apply: USAGE over INCOMPLETE over FAILED over PASSED."""

    PASSED = 0
    FAILED = 1
    USAGE = 2
    INCOMPLETE = 3

    @classmethod
    def worst(cls, *codes: ExitCode) -> ExitCode:
        precedence = [cls.USAGE, cls.INCOMPLETE, cls.FAILED, cls.PASSED]
        return next((c for c in precedence if c in codes), cls.PASSED)


class Verdict(str, Enum):
    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.PASSED: ExitCode.PASSED,
            Verdict.FAILED: ExitCode.FAILED,
            Verdict.INCOMPLETE: ExitCode.INCOMPLETE,
        }[self]


@dataclass(frozen=True, slots=True)
class ArtifactDigest:
    """A file the audit read: its role (model, train, test...), path as configured, sha256 and size."""

    role: str
    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArtifactDigest:
        return cls(d["role"], d["path"], d["sha256"], int(d["size"]))


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Provenance of one audit run. ``config`` has every secret redacted."""

    project: str
    started_at: str
    finished_at: str
    seed: int
    garrison_version: str
    python: str
    platform: str
    packages: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_path: str | None = None
    artifacts: tuple[ArtifactDigest, ...] = ()
    model_name: str = "model"

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "model_name": self.model_name,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seed": self.seed,
            "garrison_version": self.garrison_version,
            "python": self.python,
            "platform": self.platform,
            "packages": dict(sorted(self.packages.items())),
            "config": self.config,
            "config_path": self.config_path,
            "artifacts": [a.to_dict() for a in sorted(self.artifacts, key=lambda a: (a.role, a.path))],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        return cls(
            project=d["project"],
            model_name=d.get("model_name", "model"),
            started_at=d["started_at"],
            finished_at=d["finished_at"],
            seed=int(d["seed"]),
            garrison_version=d["garrison_version"],
            python=d["python"],
            platform=d["platform"],
            packages=dict(d.get("packages", {})),
            config=dict(d.get("config", {})),
            config_path=d.get("config_path"),
            artifacts=tuple(ArtifactDigest.from_dict(a) for a in d.get("artifacts", [])),
        )


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """One policy threshold tested against a measured metric (``value`` is None when no check measured it)."""

    metric: str
    op: str  # "min" or "max"
    bound: float
    value: float | None
    passed: bool
    check_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "op": self.op,
            "bound": self.bound,
            "value": self.value,
            "passed": self.passed,
            "check_id": self.check_id,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThresholdResult:
        return cls(d["metric"], d["op"], float(d["bound"]), d.get("value"), bool(d["passed"]), d["check_id"])


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on a report: every finding (triage applied), thresholds, and the exit code."""

    verdict: Verdict
    fail_on: Severity
    findings: tuple[Finding, ...]
    blocking: tuple[str, ...]  # fingerprints of findings that fail the policy
    thresholds: tuple[ThresholdResult, ...] = ()
    incomplete_checks: tuple[str, ...] = ()
    baseline_fingerprints: tuple[str, ...] | None = None  # set when evaluated against a baseline report

    @property
    def exit_code(self) -> ExitCode:
        return self.verdict.exit_code

    def counts(self) -> dict[str, int]:
        """Active (untriaged) findings per severity, every severity present."""
        out = {s.value: 0 for s in reversed(Severity)}
        for f in self.findings:
            if f.is_active:
                out[f.severity.value] += 1
        return out

    def is_new(self, finding: Finding) -> bool:
        return self.baseline_fingerprints is None or finding.fingerprint not in self.baseline_fingerprints

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "exit_code": int(self.exit_code),
            "fail_on": self.fail_on.value,
            "counts": self.counts(),
            "findings": [f.to_dict() for f in sorted(self.findings, key=Finding.sort_key)],
            "blocking": sorted(self.blocking),
            "thresholds": [t.to_dict() for t in sorted(self.thresholds, key=lambda t: (t.metric, t.op))],
            "incomplete_checks": sorted(self.incomplete_checks),
            "baseline_fingerprints": (
                None if self.baseline_fingerprints is None else sorted(self.baseline_fingerprints)
            ),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        base = d.get("baseline_fingerprints")
        return cls(
            verdict=Verdict(d["verdict"]),
            fail_on=Severity(d["fail_on"]),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings", [])),
            blocking=tuple(d.get("blocking", [])),
            thresholds=tuple(ThresholdResult.from_dict(t) for t in d.get("thresholds", [])),
            incomplete_checks=tuple(d.get("incomplete_checks", [])),
            baseline_fingerprints=None if base is None else tuple(base),
        )


@dataclass(frozen=True, slots=True)
class Report:
    """One audit: provenance, every check's result, and (once evaluated) the decision."""

    run: RunInfo
    results: tuple[CheckResult, ...]
    decision: Decision | None = None
    schema_version: str = REPORT_SCHEMA_VERSION

    @property
    def findings(self) -> tuple[Finding, ...]:
        """The findings to show: the decision's when evaluated, else the checks' raw findings."""
        if self.decision is not None:
            return self.decision.findings
        return tuple(sorted((f for r in self.results for f in r.findings), key=Finding.sort_key))

    def result(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.check_id == check_id), None)

    @property
    def errored_checks(self) -> tuple[str, ...]:
        return tuple(r.check_id for r in self.results if r.status is CheckStatus.ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tool": {"name": "garrison", "version": self.run.garrison_version},
            "run": self.run.to_dict(),
            "results": [r.to_dict() for r in self.results],
            "decision": None if self.decision is None else self.decision.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        version = str(d.get("schema_version", ""))
        if version.split(".")[0] != REPORT_SCHEMA_VERSION.split(".")[0]:
            raise ReportError(f"unsupported report schema_version {version!r} (this Garrison reads 1.x)")
        try:
            return cls(
                run=RunInfo.from_dict(d["run"]),
                results=tuple(CheckResult.from_dict(r) for r in d.get("results", [])),
                decision=None if d.get("decision") is None else Decision.from_dict(d["decision"]),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"malformed report: {exc}") from exc
