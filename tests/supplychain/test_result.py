import datetime as dt

from garrison.core import CheckStatus, Severity, Stage, Subject, SubjectKind
from garrison.core.rules import SC_ARCHIVE, SC_CODE_ARCHIVE
from garrison.supplychain import Incomplete, ScannedFile, ScanResult


def _finding(rule, severity=None):  # type: ignore[no-untyped-def]
    subject = Subject(SubjectKind.ARTIFACT, "m.pt", "m.pt")
    return rule.finding(subject=subject, message="x", location="m.pt", severity=severity)


def test_exit_codes() -> None:
    assert ScanResult().exit_code() == 0
    assert ScanResult(findings=(_finding(SC_CODE_ARCHIVE),)).exit_code() == 1
    assert ScanResult(findings=(_finding(SC_CODE_ARCHIVE),)).exit_code(Severity.HIGH) == 0
    assert ScanResult(findings=(_finding(SC_CODE_ARCHIVE, Severity.LOW),)).exit_code() == 0
    both = ScanResult(findings=(_finding(SC_ARCHIVE),), incomplete=(Incomplete("m.pt", "truncated"),))
    assert both.exit_code() == 3


def test_to_report_holds_one_scan_check() -> None:
    result = ScanResult(
        findings=(_finding(SC_CODE_ARCHIVE), _finding(SC_ARCHIVE)),
        files=(ScannedFile("m.pt", "torchscript", 10, None),),
    )
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    report = result.to_report(project="p", started_at=start, finished_at=start + dt.timedelta(seconds=2))
    (check,) = report.results
    assert check.check_id == "scan"
    assert check.stage is Stage.ARTIFACT
    assert check.status is CheckStatus.OK
    assert [f.rule_id for f in check.findings] == ["GAR-SC-004", "GAR-SC-012"]
    assert check.metric("files_scanned").value == 1  # type: ignore[union-attr]
    assert check.metric("findings").value == 2  # type: ignore[union-attr]
    assert check.duration_s == 2.0
    assert report.run.project == "p"
    assert report.to_dict()["results"][0]["check_id"] == "scan"


def test_incomplete_report_is_an_error_naming_the_items() -> None:
    result = ScanResult(incomplete=(Incomplete("a.7z", "7z archives are not supported"),))
    (check,) = result.to_report().results
    assert check.status is CheckStatus.ERROR
    assert "a.7z: 7z archives are not supported" in (check.error or "")
    assert check.metric("incomplete").value == 1  # type: ignore[union-attr]
