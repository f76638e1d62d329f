import xml.etree.ElementTree as ET
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core import CheckResult, CheckStatus, Finding, Report, Severity, Stage, Subject, SubjectKind
from garrison.report import render_junit


def _parse(report: Report) -> ET.Element:
    text = render_junit(report)
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    return ET.fromstring(text.encode("utf-8"))


def _case(root: ET.Element, classname: str, name: str) -> ET.Element:
    matches = [c for c in root.iter("testcase") if (c.get("classname"), c.get("name")) == (classname, name)]
    assert len(matches) == 1, (classname, name)
    return matches[0]


def test_one_suite_per_stage_and_one_for_the_policy(report: Report) -> None:
    root = _parse(report)
    assert [s.get("name") for s in root] == [
        "garrison.artifact",
        "garrison.training",
        "garrison.model",
        "garrison.deployment",
        "garrison.policy",
    ]
    assert [(c.get("classname"), c.get("name")) for c in root.iter("testcase")] == [
        ("garrison.artifact", "supplychain"),
        ("garrison.training", "privacy"),
        ("garrison.model", "fuzzing"),
        ("garrison.model", "performance"),
        ("garrison.deployment", "drift"),
        ("policy.thresholds", "fuzzing.crash_rate"),
        ("policy.thresholds", "performance.accuracy"),
    ]


def test_counts_add_up(report: Report) -> None:
    root = _parse(report)
    for element in [root, *root]:
        cases = list(element.iter("testcase"))
        assert element.get("tests") == str(len(cases))
        for kind, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert element.get(attr) == str(sum(1 for c in cases if c.find(kind) is not None))
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "7",
        "3",
        "1",
        "1",
    )
    assert root.get("time") == "5.912"


def test_check_outcomes(report: Report, findings: dict) -> None:
    root = _parse(report)
    error = _case(root, "garrison.training", "privacy").find("error")
    assert error is not None
    assert error.get("message") == "ValueError: shadow models need at least 2 classes"
    assert "see the privacy check docs" in (error.text or "")
    skipped = _case(root, "garrison.deployment", "drift").find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "no production data configured"
    failure = _case(root, "garrison.model", "fuzzing").find("failure")
    assert failure is not None
    assert failure.get("message") == "1 finding blocks the release"
    assert findings["invalid"].fingerprint in (failure.text or "")
    assert findings["crash"].fingerprint not in (failure.text or "")  # medium: does not block
    assert '<script>alert("pwned")</script>' in (failure.text or "")  # survives as text, escaped in the XML
    assert list(_case(root, "garrison.model", "performance")) == []  # its threshold breach is a policy case
    assert _case(root, "garrison.model", "performance").get("time") == "1.500"


def test_thresholds_are_test_cases(report: Report) -> None:
    root = _parse(report)
    assert list(_case(root, "policy.thresholds", "fuzzing.crash_rate")) == []
    failure = _case(root, "policy.thresholds", "performance.accuracy").find("failure")
    assert failure is not None
    assert failure.get("message") == "value 0.81 < min 0.9"


def test_blocking_findings_of_no_check_are_not_lost(report: Report) -> None:
    gate = Finding(
        rule_id="GAR-POL-002",
        title="Accepted risk has expired",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "credit-model"),
        message="expired",
        location="triage:abc",
    )
    decision = report.decision
    assert decision is not None
    decided = replace(
        report,
        decision=replace(
            decision, findings=(*decision.findings, gate), blocking=(*decision.blocking, gate.fingerprint)
        ),
    )
    failure = _case(_parse(decided), "policy.findings", "gate").find("failure")
    assert failure is not None
    assert gate.fingerprint in (failure.text or "")


def test_unevaluated_report_has_no_failures(report: Report) -> None:
    root = _parse(replace(report, decision=None))
    assert root.get("failures") == "0"
    assert root.get("errors") == "1"
    assert [s.get("name") for s in root][-1] == "garrison.deployment"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40), name=st.text(min_size=1, max_size=20))
def test_any_text_gives_parseable_xml(report: Report, text: str, name: str) -> None:
    result = CheckResult(name, Stage.MODEL, status=CheckStatus.ERROR, error=text or None)
    root = _parse(replace(report, results=(result,), decision=None))
    assert root.get("errors") == "1"
