import json
from dataclasses import replace
from pathlib import Path

import pytest
from sarif_kit.validate import validation_errors

from garrison.core import Finding, Report, Severity, Stage, Subject, SubjectKind, TriageStatus
from garrison.core.rules import get_rule
from garrison.report import render_sarif


def _run(report: Report, **kwargs) -> dict:
    log = json.loads(render_sarif(report, **kwargs))
    assert validation_errors(log) == []  # the OASIS SARIF 2.1.0 schema
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-schema-2.1.0.json")
    assert len(log["runs"]) == 1
    return log["runs"][0]


def _result(run: dict, finding: Finding) -> dict:
    matches = [
        r for r in run["results"] if r["partialFingerprints"]["garrisonFingerprint/v1"] == finding.fingerprint
    ]
    assert len(matches) == 1
    return matches[0]


def test_driver_and_rules(report: Report) -> None:
    run = _run(report)
    driver = run["tool"]["driver"]
    assert driver["name"] == "Garrison"
    assert driver["version"] == "0.1.0"
    assert "informationUri" not in driver  # no invented home page
    ids = [r["id"] for r in driver["rules"]]
    assert ids == sorted({r["ruleId"] for r in run["results"]})
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    fz = driver["rules"][ids.index("GAR-FZ-001")]
    rule = get_rule("GAR-FZ-001")
    assert fz["shortDescription"]["text"] == rule.title
    assert fz["fullDescription"]["text"] == rule.description
    assert rule.remediation in fz["help"]["text"]
    assert rule.remediation in fz["help"]["markdown"]
    assert "[cwe:20](https://cwe.mitre.org/data/definitions/20.html)" in fz["help"]["markdown"]
    assert fz["helpUri"] == "https://atlas.mitre.org/techniques/AML.T0029"
    assert fz["name"] == "ModelCrashesOnMalformedInput"
    assert fz["properties"]["tags"] == [
        "security",
        "model",
        "atlas:AML.T0029",
        "owasp-ml:2023:ML01",
        "cwe:20",
    ]
    assert fz["properties"]["security-severity"] == "5.5"
    assert fz["properties"]["problem.severity"] == "warning"


def test_security_severity_and_level_follow_the_worst_result(report: Report) -> None:
    run = _run(report)
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    expected = {
        "PLUGIN-PKL-001": ("9.5", "error", "error"),
        "GAR-FZ-002": ("8.0", "error", "error"),
        "GAR-POL-001": ("8.0", "error", "error"),
        "GAR-FZ-001": ("5.5", "warning", "warning"),
        "GAR-PF-001": ("3.0", "note", "recommendation"),
        "PLUGIN-CODE-002": ("0.0", "note", "recommendation"),
    }
    for rule_id, (score, level, problem) in expected.items():
        props = rules[rule_id]["properties"]
        assert isinstance(props["security-severity"], str)
        assert (props["security-severity"], rules[rule_id]["defaultConfiguration"]["level"]) == (score, level)
        assert props["problem.severity"] == problem
        assert {r["level"] for r in run["results"] if r["ruleId"] == rule_id} == {level}


def test_unregistered_rules_are_described_from_their_finding(report: Report, findings: dict) -> None:
    run = _run(report)
    rule = next(r for r in run["tool"]["driver"]["rules"] if r["id"] == "PLUGIN-PKL-001")
    assert rule["shortDescription"]["text"] == findings["pickle"].title
    assert findings["pickle"].remediation in rule["help"]["text"]


def test_results_carry_fingerprints_messages_and_safe_evidence(report: Report, findings: dict) -> None:
    run = _run(report)
    assert [r["partialFingerprints"]["garrisonFingerprint/v1"] for r in run["results"]] == [
        f.fingerprint
        for f in sorted(report.findings, key=Finding.sort_key)
        if f.triage is not TriageStatus.FIXED
    ]
    crash = _result(run, findings["crash"])
    assert crash["message"]["text"].startswith("predict_proba raised ValueError")
    assert crash["properties"]["evidence"] == {"exception": "ValueError"}
    assert crash["properties"]["garrison/location"] == "fuzz:nan"
    assert crash["properties"]["garrison/new"] is False
    assert "078-05-1120" not in render_sarif(report)
    sensitive = _result(_run(report, include_sensitive=True), findings["crash"])
    assert sensitive["properties"]["evidence"]["record"] == {"income": None, "ssn": "078-05-1120"}


def test_file_locations_are_relative_with_srcroot_and_lines(report: Report, findings: dict) -> None:
    run = _run(report)
    code = _result(run, findings["code"])["locations"][0]["physicalLocation"]
    assert code["artifactLocation"]["uri"] == "src/train.py"
    assert code["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert code["region"] == {"startLine": 42}
    model = _result(run, findings["crash"])["locations"][0]["physicalLocation"]
    assert model["artifactLocation"]["uri"] == "models/model.onnx"
    assert "region" not in model
    threshold = next(r for r in run["results"] if r["ruleId"] == "GAR-POL-001")["locations"][0][
        "physicalLocation"
    ]
    assert threshold["artifactLocation"]["uri"] == "garrison.yaml"
    assert threshold["region"] == {"startLine": 12}
    for result in run["results"]:
        loc = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert run["artifacts"][loc["index"]]["location"]["uri"] == loc["uri"]


def test_archive_members_become_nested_artifacts(report: Report, findings: dict) -> None:
    run = _run(report)
    pickle = _result(run, findings["pickle"])
    outer = pickle["locations"][0]["physicalLocation"]["artifactLocation"]
    assert outer["uri"] == "models/bundle.zip"
    assert outer["uriBaseId"] == "%SRCROOT%"
    member = pickle["relatedLocations"][0]["physicalLocation"]["artifactLocation"]
    assert member["uri"] == "weights/model.pkl"
    assert "uriBaseId" not in member
    entry = run["artifacts"][member["index"]]
    assert entry["location"]["uri"] == "weights/model.pkl"
    assert entry["parentIndex"] == outer["index"]
    assert run["artifacts"][outer["index"]]["hashes"] == {"sha-256": "cd" * 32}


def test_nested_archives_chain_parent_indexes(report: Report) -> None:
    finding = Finding(
        rule_id="GAR-FZ-001",
        title="t",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        subject=Subject(SubjectKind.ARTIFACT, "outer"),
        message="nested",
        location="dist/outer.tar!inner.zip!deep/x.pkl",
        line=3,
    )
    run = _run(replace(report, decision=None, results=(replace(report.results[0], findings=(finding,)),)))
    result = run["results"][0]
    deep = result["relatedLocations"][0]["physicalLocation"]
    assert deep["region"] == {"startLine": 3}
    chain = []
    index = deep["artifactLocation"]["index"]
    while index is not None:
        chain.append(run["artifacts"][index]["location"]["uri"])
        index = run["artifacts"][index].get("parentIndex")
    assert chain == ["deep/x.pkl", "inner.zip", "dist/outer.tar"]


def test_paths_are_made_relative_to_repo_root(report: Report, tmp_path: Path) -> None:
    finding = Finding(
        rule_id="GAR-FZ-001",
        title="t",
        severity=Severity.HIGH,
        stage=Stage.ARTIFACT,
        subject=Subject(SubjectKind.CODE, "x"),
        message="m",
        location=str(tmp_path / "src" / "my model.py"),
    )
    outside = Finding(
        **{
            **{
                k: getattr(finding, k)
                for k in ("rule_id", "title", "severity", "stage", "subject", "message")
            },
            "location": "/elsewhere/a.py",
        }
    )
    base = replace(report, decision=None, results=(replace(report.results[0], findings=(finding, outside)),))
    run = _run(base, repo_root=tmp_path)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"src/my%20model.py", "file:///elsewhere/a.py"}
    absolute = next(
        r
        for r in run["results"]
        if "elsewhere" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    )
    assert "uriBaseId" not in absolute["locations"][0]["physicalLocation"]["artifactLocation"]


@pytest.mark.parametrize(
    ("config_path", "expected"), [("conf/garrison.yaml", "conf/garrison.yaml"), (None, "garrison.yaml")]
)
def test_findings_without_a_file_fall_back_to_the_config_file(
    report: Report, config_path, expected: str
) -> None:
    finding = Finding(
        rule_id="GAR-POL-004",
        title="t",
        severity=Severity.MEDIUM,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.SERVICE, "api", "https://api.example.com/predict"),
        message="m",
        location="policy:x.y",
    )
    base = replace(
        report,
        run=replace(report.run, config_path=config_path),
        decision=None,
        results=(replace(report.results[0], findings=(finding,)),),
    )
    loc = _run(base)["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc["uri"] == expected


def test_triage_suppresses_accepted_and_drops_fixed(report: Report, findings: dict) -> None:
    run = _run(report)
    accepted = _result(run, findings["nondeterminism"])
    assert accepted["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "Known dropout in eval; fix in 2.0 (owner: ml)",
        }
    ]
    fps = {r["partialFingerprints"]["garrisonFingerprint/v1"] for r in run["results"]}
    assert findings["silent"].fingerprint not in fps
    assert all("suppressions" not in r for r in run["results"] if r is not accepted)


def test_run_metadata(report: Report) -> None:
    run = _run(report)
    assert run["automationDetails"]["id"] == "garrison/credit-scoring/"
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 1
    notes = {n["descriptor"]["id"]: n["level"] for n in invocation["toolExecutionNotifications"]}
    assert notes == {"privacy": "error", "drift": "note"}


def test_a_report_without_findings_is_valid(report: Report) -> None:
    run = _run(replace(report, decision=None, results=()))
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert run["artifacts"] == []
