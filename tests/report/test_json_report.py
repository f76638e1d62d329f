import contextlib
import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from garrison.core import (
    CheckResult,
    Evidence,
    Finding,
    Metric,
    Report,
    ReportError,
    Severity,
    Stage,
    Subject,
    SubjectKind,
)
from garrison.report import load_report_schema, read_report, to_json, validate_report


def test_to_json_is_canonical(report: Report) -> None:
    text = to_json(report)
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert to_json(report) == text
    assert ": NaN" not in text
    assert "Infinity" not in text


def test_non_finite_numbers_are_written_as_null(report: Report) -> None:
    data = json.loads(to_json(report))
    fuzzing = next(r for r in data["results"] if r["check_id"] == "fuzzing")
    assert next(m for m in fuzzing["metrics"] if m["name"] == "invalid_output_rate")["value"] is None
    crash = next(f for f in fuzzing["findings"] if f["rule_id"] == "GAR-FZ-001")
    record = next(e for e in crash["evidence"] if e["key"] == "record")
    assert record["value"] == {"income": None, "ssn": "078-05-1120"}


def test_numpy_values_in_evidence_become_plain_json() -> None:
    finding = Finding(
        rule_id="GAR-FZ-001",
        title="t",
        severity=Severity.LOW,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "m"),
        message="m",
        evidence=(
            Evidence("rows", np.array([1, 2])),
            Evidence("rate", np.float32(0.5)),
            Evidence("x", np.nan),
        ),
    )
    report = _minimal(findings=(finding,))
    evidence = json.loads(to_json(report))["results"][0]["findings"][0]["evidence"]
    assert [e["value"] for e in evidence] == [[1, 2], 0.5, None]


def test_an_unserialisable_value_names_its_path() -> None:
    finding = Finding(
        rule_id="R",
        title="t",
        severity=Severity.LOW,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "m"),
        message="m",
        evidence=(Evidence("obj", object()),),
    )
    with pytest.raises(ReportError, match=r"\$\.results\[0\]\.findings\[0\]\.evidence\[0\]\.value"):
        to_json(_minimal(findings=(finding,)))


def test_schema_is_a_valid_draft_2020_12_schema_and_a_copy() -> None:
    schema = load_report_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    schema["properties"].clear()
    assert load_report_schema()["properties"], "callers must not be able to change the shipped schema"


def test_real_reports_validate(report: Report) -> None:
    validate_report(json.loads(to_json(report)))
    validate_report(json.loads(to_json(_minimal())))  # decision null, no findings


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["run"].pop("seed"), "$.run"),
        (lambda d: d["run"].__setitem__("seed", "7"), "$.run.seed"),
        (lambda d: d.__setitem__("extra", 1), "$"),
        (lambda d: d["results"][0].__setitem__("status", "crashed"), "$.results[0].status"),
        (
            lambda d: d["decision"]["findings"][0].__setitem__("severity", "urgent"),
            "$.decision.findings[0].severity",
        ),
        (lambda d: d["decision"]["counts"].pop("info"), "$.decision.counts"),
        (lambda d: d.__setitem__("schema_version", "2.0"), "$.schema_version"),
    ],
)
def test_validate_report_names_the_first_problem(report: Report, mutate, path: str) -> None:
    data = json.loads(to_json(report))
    mutate(data)
    with pytest.raises(ReportError) as info:
        validate_report(data)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


def test_read_report_round_trips(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(to_json(report), encoding="utf-8")
    again = read_report(path)
    assert to_json(again) == to_json(report)
    assert again.decision is not None
    assert again.decision.verdict.value == "failed"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "invalid JSON at line 1"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema_version": "2.0"}', "unsupported report schema_version '2.0'"),
        (b'{"schema_version": 1}', "unsupported report schema_version 1"),
        (b'{"schema_version": "1.0"}', "'tool' is a required property"),
        (b'{"schema_version": "1.0", "x": NaN}', "NaN is not a JSON number"),
    ],
)
def test_read_report_errors_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ReportError) as info:
        read_report(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_read_report_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"missing\.json: cannot read report"):
        read_report(tmp_path / "missing.json")


def test_a_newer_minor_version_is_read(report: Report, tmp_path: Path) -> None:
    data = json.loads(to_json(report))
    data["schema_version"] = "1.7"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert read_report(path).schema_version == "1.7"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_read_report_on_arbitrary_bytes_raises_only_report_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(raw)
    with contextlib.suppress(ReportError):
        read_report(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_read_report_on_mutated_reports_raises_only_report_error(
    report: Report, tmp_path: Path, data
) -> None:
    doc = json.loads(to_json(report))
    node = doc
    for _ in range(data.draw(st.integers(1, 4))):  # walk down to some container and break one value
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        if isinstance(node[key], (dict, list)) and data.draw(st.booleans()):
            node = node[key]
            continue
        node[key] = data.draw(
            st.none() | st.integers() | st.text(max_size=5) | st.lists(st.integers(), max_size=2)
        )
        break
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with contextlib.suppress(ReportError):
        read_report(path)


_text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=40, deadline=None)
@given(
    message=_text,
    location=st.none() | _text,
    line=st.none() | st.integers(1, 10**6),
    value=st.floats(allow_nan=True, allow_infinity=True),
    evidence=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | _text,
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(_text, kids, max_size=3),
        max_leaves=8,
    ),
)
def test_any_report_made_of_core_objects_validates_and_round_trips(
    message, location, line, value, evidence
) -> None:
    finding = Finding(
        rule_id="GAR-FZ-001",
        title="t",
        severity=Severity.HIGH,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "m"),
        message=message,
        location=location,
        line=line,
        evidence=(Evidence("e", evidence, sensitive=True),),
    )
    report = _minimal(findings=(finding,), metrics=(Metric("x", value, ci_low=value, ci_high=value),))
    text = to_json(report)
    data = json.loads(text)
    validate_report(copy.deepcopy(data))
    assert to_json(Report.from_dict(data)) == text
    if not math.isfinite(value):
        assert data["results"][0]["metrics"][0]["value"] is None


def _minimal(findings: tuple[Finding, ...] = (), metrics: tuple[Metric, ...] = ()) -> Report:
    from garrison.core import RunInfo

    run = RunInfo("p", "2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z", 0, "0.1.0", "3.11", "linux")
    return Report(run, (CheckResult("fuzzing", Stage.MODEL, findings=findings, metrics=metrics),))
