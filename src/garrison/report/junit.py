"""JUnit XML output: one test suite per lifecycle stage (one test case per check) and one ``policy`` suite with a
test case per threshold, so any CI that shows test results shows the audit."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from garrison.core.audit_report import Report
from garrison.core.findings import Finding
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.rules import POLICY_THRESHOLD
from garrison.core.severity import STAGE_ORDER
from garrison.report.display import ordered_findings, threshold_bound, threshold_failure, where

__all__ = ["render_junit"]

# XML 1.0 cannot carry most control characters, even escaped; messages may contain anything.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_TEXT = 20_000


def _xml_text(text: str) -> str:
    text = _NOT_XML.sub("\ufffd", text)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + " [truncated]"


def render_junit(report: Report) -> str:
    """``report`` as JUnit XML. A check's test case fails when it has findings that block the policy (only once
    the report is evaluated), errors when the check errored, and is skipped when the check was skipped."""
    blocking = set() if report.decision is None else set(report.decision.blocking)
    by_check: dict[str, list[Finding]] = {}
    for f in ordered_findings(report):
        if f.fingerprint in blocking and f.rule_id != POLICY_THRESHOLD.id:
            by_check.setdefault(f.check_id or "", []).append(f)

    root = ET.Element("testsuites", {"name": f"garrison: {_xml_text(report.run.project)}"})
    for stage in STAGE_ORDER:
        results = sorted((r for r in report.results if r.stage is stage), key=lambda r: r.check_id)
        if results:
            suite = _suite(root, f"garrison.{stage.value}")
            for r in results:
                _check_case(suite, r, by_check.get(r.check_id, []))

    policy = _suite(root, "garrison.policy")
    decision = report.decision
    for t in [] if decision is None else sorted(decision.thresholds, key=lambda t: (t.metric, t.op)):
        case = ET.SubElement(
            policy,
            "testcase",
            {"classname": "policy.thresholds", "name": _xml_text(t.metric), "time": "0.000"},
        )
        if not t.passed:
            message = threshold_failure(t)
            failure = ET.SubElement(case, "failure", {"message": _xml_text(message), "type": "threshold"})
            failure.text = _xml_text(f"{t.metric} must be {threshold_bound(t)}: {message}")
    known = {r.check_id for r in report.results}
    orphans = [f for key, fs in sorted(by_check.items()) if key not in known for f in fs]
    if orphans:  # blocking findings that no check owns (e.g. the gate's own): one case so none is lost
        case = ET.SubElement(
            policy, "testcase", {"classname": "policy.findings", "name": "gate", "time": "0.000"}
        )
        _failure(case, orphans)
    if len(policy) == 0:
        root.remove(policy)

    for suite in root:
        _count(suite)
    _count(root)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", {"name": name})


def _check_case(suite: ET.Element, result: CheckResult, blocking: list[Finding]) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": f"garrison.{result.stage.value}",
            "name": _xml_text(result.check_id),
            "time": f"{result.duration_s:.3f}",
        },
    )
    if result.status is CheckStatus.ERROR:
        detail = result.error or "the check errored"
        error = ET.SubElement(
            case, "error", {"message": _xml_text(detail.splitlines()[0]), "type": "CheckError"}
        )
        error.text = _xml_text("\n".join([detail, *_lines(blocking)]))
    elif result.status is CheckStatus.SKIPPED:
        ET.SubElement(case, "skipped", {"message": _xml_text(result.reason or "skipped")})
    elif blocking:
        _failure(case, blocking)


def _failure(case: ET.Element, findings: list[Finding]) -> None:
    n = len(findings)
    failure = ET.SubElement(
        case,
        "failure",
        {
            "message": f"{n} finding{'s' if n != 1 else ''} block{'s' if n == 1 else ''} the release",
            "type": "policy",
        },
    )
    failure.text = _xml_text("\n".join(_lines(findings)))


def _lines(findings: list[Finding]) -> list[str]:
    return [
        f"[{f.severity.value.upper()}] {f.rule_id} {f.title} at {where(f)}: {f.message} (fingerprint {f.fingerprint})"
        for f in sorted(findings, key=Finding.sort_key)
    ]


def _count(element: ET.Element) -> None:
    """Set the tests / failures / errors / skipped / time attributes from the test cases below ``element``."""
    cases = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    element.set("time", f"{sum(float(c.get('time', '0')) for c in cases):.3f}")
