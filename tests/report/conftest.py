"""One fixed report, built from real core objects, that every renderer test and golden file uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.core import (
    ArtifactDigest,
    CheckResult,
    CheckStatus,
    Decision,
    Evidence,
    Figure,
    Finding,
    Metric,
    Report,
    RunInfo,
    Severity,
    Stage,
    Subject,
    SubjectKind,
    ThresholdResult,
    TriageStatus,
    Verdict,
)
from garrison.core.rules import (
    FUZZ_CRASH,
    FUZZ_INVALID_OUTPUT,
    FUZZ_NONDETERMINISM,
    FUZZ_SILENT_ACCEPTANCE,
    PERF_DEAD_CLASS,
    POLICY_THRESHOLD,
)

GOLDEN_DIR = Path(__file__).parent / "golden"
MODEL = Subject(SubjectKind.MODEL, "credit-model", "models/model.onnx", "ab" * 32)
XSS = '<script>alert("pwned")</script> & <img src=x onerror=alert(1)>'

SVG_FIGURE = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 40" '
    'onload="alert(1)"><script>alert(2)</script>'
    '<defs><clipPath id="c"><rect width="100" height="40"/></clipPath></defs>'
    '<g clip-path="url(#c)"><rect x="0" y="10" width="60" height="20" fill="#c62828" onclick="steal()"/>'
    '<image xlink:href="https://evil.example/track.png" width="1" height="1"/>'
    '<use xlink:href="https://evil.example/sprite.svg#x"/>'
    '<text x="2" y="8" font-size="6">crash rate by probe &lt;nan&gt;</text></g></svg>'
)


def _run() -> RunInfo:
    return RunInfo(
        project="credit-scoring",
        model_name="credit-model",
        started_at="2025-03-01T12:00:00Z",
        finished_at="2025-03-01T12:03:30Z",
        seed=1234,
        garrison_version="0.1.0",
        python="3.11.9",
        platform="Linux-6.8-x86_64",
        packages={"scikit-learn": "1.9.0", "numpy": "2.1.3", "onnxruntime": "1.20.1"},
        config={
            "project": "credit-scoring",
            "model": {"path": "models/model.onnx", "headers": {"Authorization": "***"}},
            "policy": {"fail_on": "high", "thresholds": {"performance.accuracy": {"min": 0.9}}},
        },
        config_path="garrison.yaml",
        artifacts=(
            ArtifactDigest("model", "models/model.onnx", "ab" * 32, 20480),
            ArtifactDigest("bundle", "models/bundle.zip", "cd" * 32, 4096),
            ArtifactDigest("test", "data/test.csv", "ef" * 32, 102400),
        ),
    )


def _findings() -> dict[str, Finding]:
    bundle = Subject(SubjectKind.ARTIFACT, "model-bundle", "models/bundle.zip", "cd" * 32)
    return {
        "pickle": Finding(
            rule_id="PLUGIN-PKL-001",
            title="Pickle member imports os.system",
            severity=Severity.CRITICAL,
            stage=Stage.ARTIFACT,
            subject=bundle,
            message="Loading weights/model.pkl would call os.system.",
            evidence=(Evidence("global", "os.system"), Evidence("opcode_offset", 17)),
            location="models/bundle.zip!weights/model.pkl",
            references=("atlas:AML.T0011.000", "owasp-ml:2023:ML06"),
            remediation="Do not load this file; ship weights as safetensors.",
            check_id="supplychain",
        ),
        "code": Finding(
            rule_id="PLUGIN-CODE-002",
            title="Training script disables TLS verification",
            severity=Severity.INFO,
            stage=Stage.ARTIFACT,
            subject=Subject(SubjectKind.CODE, "train.py", "src/train.py"),
            message="requests.get(..., verify=False) downloads training data without TLS verification.",
            location="src/train.py",
            line=42,
            references=("cwe:295",),
            remediation="Remove verify=False.",
            check_id="supplychain",
        ),
        "crash": FUZZ_CRASH.finding(
            subject=MODEL,
            message="predict_proba raised ValueError on a NaN in feature 'income'.",
            location="fuzz:nan",
            evidence={"exception": "ValueError", "record": {"income": float("nan"), "ssn": "078-05-1120"}},
            sensitive=("record",),
            check_id="fuzzing",
        ),
        "invalid": FUZZ_INVALID_OUTPUT.finding(
            subject=MODEL,
            message=f"Rows do not sum to 1 | worst row {XSS}",
            location="fuzz:extreme",
            evidence={"max_row_sum_error": 0.25, "rows": [3, 17]},
            check_id="fuzzing",
        ),
        "nondeterminism": FUZZ_NONDETERMINISM.finding(
            subject=MODEL,
            message="Two calls on the same batch differ.",
            location="fuzz:repeat",
            check_id="fuzzing",
        ),
        "silent": FUZZ_SILENT_ACCEPTANCE.finding(
            subject=MODEL, message="Unknown category accepted.", location="fuzz:category", check_id="fuzzing"
        ),
        "dead_class": PERF_DEAD_CLASS.finding(
            subject=MODEL,
            message="Class 'fraud' is never predicted correctly.",
            location="class:fraud",
            severity=Severity.LOW,
            evidence={"recall": 0.0, "support": 12},
            check_id="performance",
        ),
    }


def _figures() -> tuple[Figure, ...]:
    return (
        Figure("crash-rate", "Crash rate by probe", svg=SVG_FIGURE, caption="Share of probes that crashed."),
        Figure(
            "probe-table",
            "Probes",
            table=(
                {"probe": "nan", "crashes": 12, "rate": 0.024},
                {"probe": "extreme", "crashes": 0, "rate": 0.0},
            ),
        ),
    )


def build_report() -> Report:
    """The fixed report behind the golden files: every severity, an archive member, sensitive evidence, triage
    (accepted, fixed), an errored and a skipped check, passed and failed thresholds, SVG and table figures."""
    f = _findings()
    results = (
        CheckResult(
            check_id="supplychain",
            stage=Stage.ARTIFACT,
            findings=(f["pickle"], f["code"]),
            metrics=(Metric("files_scanned", 3.0, n=3),),
            duration_s=0.412,
        ),
        CheckResult(
            check_id="fuzzing",
            stage=Stage.MODEL,
            findings=(f["crash"], f["invalid"], f["nondeterminism"], f["silent"]),
            metrics=(
                Metric("crash_rate", 0.024, n=500, ci_low=0.014, ci_high=0.041, higher_is_better=False),
                Metric("invalid_output_rate", float("nan"), n=0, description="no valid probe"),
            ),
            figures=_figures(),
            duration_s=3.25,
        ),
        CheckResult(
            check_id="performance",
            stage=Stage.MODEL,
            findings=(f["dead_class"],),
            metrics=(Metric("accuracy", 0.81, n=500, ci_low=0.774, ci_high=0.842, higher_is_better=True),),
            duration_s=1.5,
        ),
        CheckResult(
            check_id="privacy",
            stage=Stage.TRAINING,
            status=CheckStatus.ERROR,
            error="ValueError: shadow models need at least 2 classes\nsee the privacy check docs",
            duration_s=0.75,
        ),
        CheckResult(
            check_id="drift",
            stage=Stage.DEPLOYMENT,
            status=CheckStatus.SKIPPED,
            reason="no production data configured",
        ),
    )
    threshold_finding = POLICY_THRESHOLD.finding(  # as garrison.audit.evaluate makes it
        subject=Subject(SubjectKind.MODEL, "credit-model"),
        message="performance.accuracy = 0.81 < min 0.9 (95% CI 0.774–0.842, n=500)",
        location="policy:performance.accuracy",
        evidence={"metric": "performance.accuracy", "value": 0.81, "op": "min", "bound": 0.9, "n": 500},
        check_id="performance",
        line=12,
    )
    triaged = (
        f["pickle"],
        f["code"],
        f["crash"],
        f["invalid"],
        f["nondeterminism"].with_triage(
            TriageStatus.ACCEPTED_RISK, "Known dropout in eval; fix in 2.0 (owner: ml)"
        ),
        f["silent"].with_triage(TriageStatus.FIXED, "Schema validation added"),
        f["dead_class"],
        threshold_finding,
    )
    decision = Decision(
        verdict=Verdict.FAILED,
        fail_on=Severity.HIGH,
        findings=triaged,
        blocking=(f["pickle"].fingerprint, f["invalid"].fingerprint, threshold_finding.fingerprint),
        thresholds=(
            ThresholdResult("performance.accuracy", "min", 0.9, 0.81, False, "performance"),
            ThresholdResult("fuzzing.crash_rate", "max", 0.05, 0.024, True, "fuzzing"),
        ),
        baseline_fingerprints=(f["crash"].fingerprint, f["code"].fingerprint, f["dead_class"].fingerprint),
    )
    return Report(run=_run(), results=results, decision=decision)


@pytest.fixture
def report() -> Report:
    return build_report()


@pytest.fixture
def findings() -> dict[str, Finding]:
    return _findings()
