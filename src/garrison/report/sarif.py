"""SARIF 2.1.0 output, as GitHub code scanning reads it: one run, one rule per rule id used, one result per
finding that is not fixed."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from garrison.core.audit_report import Report
from garrison.core.errors import RegistryError
from garrison.core.findings import Finding, SubjectKind, TriageStatus
from garrison.core.results import CheckStatus
from garrison.core.rules import get_rule, reference_url
from garrison.core.severity import Severity, Stage
from garrison.report.display import ordered_findings
from garrison.report.jsonable import jsonable

__all__ = [
    "SARIF_SCHEMA_URI",
    "SARIF_VERSION",
    "SECURITY_SEVERITY",
    "render_sarif",
]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SRCROOT = "%SRCROOT%"
DEFAULT_CONFIG_FILE = "garrison.yaml"

SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
_PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "note": "recommendation"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_FILE_SUBJECTS = (SubjectKind.ARTIFACT, SubjectKind.CODE)

_Chain = tuple[tuple[str, bool], ...]
"""A file, then archive members down to the innermost: each ``(uri, relative to %SRCROOT%)``."""


@dataclass(frozen=True, slots=True)
class _RuleInfo:
    id: str
    title: str
    description: str
    remediation: str
    references: tuple[str, ...]
    stage: Stage
    severity: Severity


def render_sarif(report: Report, *, repo_root: Path | None = None, include_sensitive: bool = False) -> str:
    """``report`` as a SARIF 2.1.0 log. File locations are made relative to ``repo_root`` (``%SRCROOT%``);
    relative paths in the report are taken as relative to it already. Sensitive evidence is left out unless
    ``include_sensitive``."""
    findings = [f for f in ordered_findings(report) if f.triage is not TriageStatus.FIXED]
    rules = _rules(findings)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    chains = [_artifact_chain(f, report, repo_root) for f in findings]
    artifacts = _artifacts(chains, report)
    artifact_index = {key: i for i, (key, _) in enumerate(artifacts)}
    results = [
        _result(f, report, rule_index[f.rule_id], chain, artifact_index, include_sensitive)
        for f, chain in zip(findings, chains, strict=True)
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "Garrison",
                "version": report.run.garrison_version,
                "semanticVersion": report.run.garrison_version,
                "rules": [_rule_descriptor(r) for r in rules],
            }
        },
        "automationDetails": {"id": f"garrison/{report.run.project}/"},
        "artifacts": [entry for _, entry in artifacts],
        "invocations": [_invocation(report)],
        "results": results,
        "properties": {
            "garrison/project": report.run.project,
            "garrison/model": report.run.model_name,
            "garrison/reportSchemaVersion": report.schema_version,
            "garrison/verdict": None if report.decision is None else report.decision.verdict.value,
        },
    }
    log = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(jsonable(log), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# --- rules ----------------------------------------------------------------------------------------------------


def _rules(findings: list[Finding]) -> list[_RuleInfo]:
    """One descriptor per rule id used, sorted by id; its severity is the worst of its results in this run."""
    by_id: dict[str, list[Finding]] = {}
    for f in findings:
        by_id.setdefault(f.rule_id, []).append(f)
    out: list[_RuleInfo] = []
    for rule_id in sorted(by_id):
        worst = max((f.severity for f in by_id[rule_id]), key=lambda s: s.rank)
        first = by_id[rule_id][0]
        try:
            rule = get_rule(rule_id)
        except RegistryError:  # a plugin's rule whose module is not imported: describe it from its finding
            out.append(
                _RuleInfo(
                    rule_id, first.title, first.title, first.remediation, first.references, first.stage, worst
                )
            )
            continue
        out.append(
            _RuleInfo(
                rule.id, rule.title, rule.description, rule.remediation, rule.references, rule.stage, worst
            )
        )
    return out


def _rule_descriptor(rule: _RuleInfo) -> dict[str, Any]:
    level = _LEVEL[rule.severity]
    links = [f"[{ref}]({url})" if (url := reference_url(ref)) else ref for ref in rule.references]
    help_text = rule.description + (f"\n\nRemediation: {rule.remediation}" if rule.remediation else "")
    if rule.references:
        help_text += f"\n\nReferences: {', '.join(rule.references)}"
    help_md = f"{rule.description}" + (f"\n\n**Remediation:** {rule.remediation}" if rule.remediation else "")
    if links:
        help_md += f"\n\n**References:** {', '.join(links)}"
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": _pascal_case(rule.title) or rule.id,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {"text": help_text, "markdown": help_md},
        "defaultConfiguration": {"level": level},
        "properties": {
            "tags": ["security", rule.stage.value, *rule.references],
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "problem.severity": _PROBLEM_SEVERITY[level],
            "precision": "high",
        },
    }
    # the project has no public home page yet: the help link is the rule's first external reference, if any
    help_uri = next((u for u in (reference_url(r) for r in rule.references) if u), None)
    if help_uri:
        descriptor["helpUri"] = help_uri
    return descriptor


def _pascal_case(title: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", title))


# --- locations ------------------------------------------------------------------------------------------------


def _relative_uri(path: str, repo_root: Path | None) -> tuple[str, bool]:
    """``(uri, relative)``: a percent-encoded posix path relative to the repository root, or an absolute URI."""
    if _URL.match(path):
        return path, False
    posix = path.replace("\\", "/")
    if re.match(r"^[A-Za-z]:/", posix):  # a Windows drive path
        return "file:///" + quote(posix, safe="/:"), False
    p = PurePosixPath(posix)
    if p.is_absolute():
        for root in _roots(repo_root):
            try:
                return quote(p.relative_to(root).as_posix(), safe="/"), True
            except ValueError:
                continue
        return "file://" + quote(posixpath.normpath(posix), safe="/"), False
    return quote(posixpath.normpath(posix), safe="/"), True


def _roots(repo_root: Path | None) -> list[PurePosixPath]:
    if repo_root is None:
        return []
    roots = [PurePosixPath(repo_root.absolute().as_posix())]
    resolved = PurePosixPath(repo_root.resolve().as_posix())
    return roots if resolved in roots else [*roots, resolved]


def _artifact_chain(finding: Finding, report: Report, repo_root: Path | None) -> _Chain:
    """The file a finding is in, then any archive members down to the innermost (``a.zip!inner/x.pkl``)."""
    if finding.location and finding.subject.kind in _FILE_SUBJECTS:
        outer, *members = finding.location.split("!")
        if outer:
            return (
                _relative_uri(outer, repo_root),
                *((quote(m.replace("\\", "/").lstrip("/"), safe="/"), True) for m in members if m),
            )
    uri = finding.subject.uri
    if uri and not _URL.match(uri):
        return (_relative_uri(uri, repo_root),)
    return (_relative_uri(report.run.config_path or DEFAULT_CONFIG_FILE, repo_root),)


def _is_file_location(finding: Finding) -> bool:
    return bool(finding.location) and finding.subject.kind in _FILE_SUBJECTS


def _artifacts(chains: list[_Chain], report: Report) -> list[tuple[_Chain, dict[str, Any]]]:
    """Every artifact a result points at, archive members after their archive, sorted; keyed by chain prefix."""
    keys: set[_Chain] = set()
    for chain in chains:
        keys.update(chain[: i + 1] for i in range(len(chain)))
    ordered = sorted(keys)
    index = {k: i for i, k in enumerate(ordered)}
    digests = {a.path.replace("\\", "/"): a.sha256 for a in report.run.artifacts}
    out = []
    for key in ordered:
        uri, relative = key[-1]
        entry: dict[str, Any] = {"location": {"uri": uri}}
        if len(key) > 1:
            entry["parentIndex"] = index[key[:-1]]
        elif relative:
            entry["location"]["uriBaseId"] = SRCROOT
        if len(key) == 1 and (digest := digests.get(uri)):
            entry["hashes"] = {"sha-256": digest}
        out.append((key, entry))
    return out


def _location(chain: _Chain, artifact_index: dict[_Chain, int]) -> dict[str, Any]:
    uri, relative = chain[-1]
    loc: dict[str, Any] = {"uri": uri, "index": artifact_index[chain]}
    if relative and len(chain) == 1:
        loc["uriBaseId"] = SRCROOT
    return {"artifactLocation": loc}


# --- results --------------------------------------------------------------------------------------------------


def _result(
    finding: Finding,
    report: Report,
    rule_index: int,
    chain: _Chain,
    artifact_index: dict[_Chain, int],
    include_sensitive: bool,
) -> dict[str, Any]:
    decision = report.decision
    outer = _location(chain[:1], artifact_index)
    text = finding.message or finding.title
    properties: dict[str, Any] = {
        "garrison/severity": finding.severity.value,
        "garrison/stage": finding.stage.value,
        "garrison/subject": finding.subject.name,
        "garrison/subjectKind": finding.subject.kind.value,
        "garrison/triage": finding.triage.value,
    }
    if finding.check_id:
        properties["garrison/checkId"] = finding.check_id
    if finding.location and not _is_file_location(finding):
        properties["garrison/location"] = finding.location
        text += f" (at {finding.location})"
    if decision is not None:
        properties["garrison/blocking"] = finding.fingerprint in decision.blocking
        if decision.baseline_fingerprints is not None:
            properties["garrison/new"] = decision.is_new(finding)
    evidence = finding.evidence_dict(include_sensitive=include_sensitive)
    if evidence:
        properties["evidence"] = evidence
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "partialFingerprints": {"garrisonFingerprint/v1": finding.fingerprint},
        "locations": [{"physicalLocation": outer}],
        "properties": properties,
    }
    if len(chain) > 1:  # inside an archive: the alert sits on the archive, the member is a related location
        inner = _location(chain, artifact_index)
        if finding.line is not None:
            inner["region"] = {"startLine": finding.line}
        result["relatedLocations"] = [
            {"id": 1, "physicalLocation": inner, "message": {"text": f"archive member {finding.location}"}}
        ]
    elif finding.line is not None:
        outer["region"] = {"startLine": finding.line}
    if finding.triage in (TriageStatus.ACCEPTED_RISK, TriageStatus.FALSE_POSITIVE):
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": finding.triage_note or finding.triage.value,
            }
        ]
    return result


def _invocation(report: Report) -> dict[str, Any]:
    notifications = []
    for r in sorted(report.results, key=lambda r: r.check_id):
        if r.status is CheckStatus.ERROR:
            notifications.append(
                {
                    "level": "error",
                    "descriptor": {"id": r.check_id},
                    "message": {"text": f"check {r.check_id} errored: {r.error or 'no detail'}"},
                }
            )
        elif r.status is CheckStatus.SKIPPED:
            notifications.append(
                {
                    "level": "note",
                    "descriptor": {"id": r.check_id},
                    "message": {"text": f"check {r.check_id} skipped: {r.reason or 'no reason given'}"},
                }
            )
    invocation: dict[str, Any] = {
        "executionSuccessful": not report.errored_checks,
        "toolExecutionNotifications": notifications,
    }
    if report.decision is not None:
        invocation["exitCode"] = int(report.decision.exit_code)
    return invocation
