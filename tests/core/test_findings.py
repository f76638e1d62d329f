from __future__ import annotations

import json

import pytest

from garrison.core import (
    Finding,
    RegistryError,
    Rule,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    all_rules,
    get_rule,
    reference_url,
    register_rule,
)

MODEL = Subject(SubjectKind.MODEL, "credit", "models/credit.onnx", "aa" * 32)


def test_fingerprint_ignores_digest_and_evidence() -> None:
    rule = get_rule("GAR-FZ-004")
    a = rule.finding(subject=MODEL, message="m1", location="fuzz:nan", evidence={"n": 1})
    retrained = Subject(SubjectKind.MODEL, "credit", "models/credit-v2.onnx", "bb" * 32)
    b = rule.finding(subject=retrained, message="m2", location="fuzz:nan", evidence={"n": 2})
    c = rule.finding(subject=MODEL, message="m1", location="fuzz:inf")
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 32


def test_finding_round_trips_through_json() -> None:
    f = get_rule("GAR-FZ-001").finding(
        subject=MODEL,
        message="boom",
        location="fuzz:shape",
        evidence={"row": [1, 2], "type": "IndexError"},
        sensitive=["row"],
    )
    again = Finding.from_dict(json.loads(json.dumps(f.to_dict())))
    assert again == f and again.fingerprint == f.fingerprint
    assert f.evidence_dict() == {"type": "IndexError"}
    assert f.evidence_dict(include_sensitive=True)["row"] == [1, 2]


def test_severity_order() -> None:
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert max([Severity.LOW, Severity.HIGH, Severity.INFO]) is Severity.HIGH


def test_rule_catalogue_is_strict_and_referenced() -> None:
    rules = all_rules()
    assert [r.id for r in rules] == sorted(r.id for r in rules)
    for rule in rules:
        assert rule.remediation and rule.description
        for ref in rule.references:
            assert reference_url(ref), ref
    with pytest.raises(RegistryError):
        register_rule(Rule("GAR-FZ-001", "other", Severity.LOW, Stage.MODEL, "d", "r"))
    with pytest.raises(RegistryError):
        get_rule("GAR-NOPE-000")


def test_reference_urls() -> None:
    assert reference_url("atlas:AML.T0011.000") == "https://atlas.mitre.org/techniques/AML.T0011.000"
    assert reference_url(
        "owasp-ml:2023:ML06",
    ).endswith("ML06_2023-ai-supply-chain-attacks")
    assert reference_url("cwe:20") == "https://cwe.mitre.org/data/definitions/20.html"
    assert reference_url("unknown:1") is None
