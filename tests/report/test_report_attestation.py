"""Signed audit attestations: a real EC key pair, a real skops model file and the fixed report of conftest.py.

The bar: the attestation verifies, and fails after any byte of the model or of the statement changes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from garrison.cli import attest_cmd
from garrison.core import InputError, Report, Verdict
from garrison.core.audit_report import ArtifactDigest
from garrison.report import to_json
from garrison.report.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    attestation_problems,
    build_statement,
    default_attestation_path,
    key_id,
    pae,
    sign_statement,
    verify_attestation,
    write_attestation,
)
from garrison.supplychain.signing import generate_keypair


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    generate_keypair(d / "private.pem", d / "public.pem")
    generate_keypair(d / "other.pem", d / "other.pub.pem")
    return {"private": d / "private.pem", "public": d / "public.pem", "other_public": d / "other.pub.pem"}


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    return bytes(skops.io.dumps(LogisticRegression(max_iter=300).fit(x, y)))


@pytest.fixture
def model(tmp_path: Path, model_bytes: bytes) -> Path:
    path = tmp_path / "model.skops"
    path.write_bytes(model_bytes)
    return path


def _for_model(report: Report, model: Path) -> Report:
    """The conftest report, as if it had audited ``model``."""
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    artifact = ArtifactDigest("model", model.name, digest, model.stat().st_size)
    return replace(report, run=replace(report.run, artifacts=(artifact,)))


def _passing(report: Report) -> Report:
    """Only the checks that ran, no blocking finding, every threshold met: a passed verdict."""
    assert report.decision is not None
    results = tuple(r for r in report.results if r.check_id in ("supplychain", "performance"))
    decision = replace(
        report.decision,
        verdict=Verdict.PASSED,
        findings=(),
        blocking=(),
        thresholds=tuple(t for t in report.decision.thresholds if t.passed),
    )
    return replace(report, results=results, decision=decision)


@pytest.fixture
def envelope(report: Report, model: Path, keys: dict[str, Path]) -> dict[str, Any]:
    return sign_statement(build_statement(_for_model(report, model), model), keys["private"])


def _with_payload(envelope: dict[str, Any], payload: bytes) -> dict[str, Any]:
    return {**envelope, "payload": base64.b64encode(payload).decode("ascii")}


# ------------------------------------------------------------------------------------------- the statement


def test_statement_maps_the_failed_audit_to_the_test_result_predicate(report: Report, model: Path) -> None:
    report = _for_model(report, model)
    statement = build_statement(report, model, url="https://ci.example/run/7")
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": "model.skops", "digest": {"sha256": hashlib.sha256(model.read_bytes()).hexdigest()}}
    ]
    predicate = statement["predicate"]
    assert predicate["result"] == "FAILED"
    assert predicate["url"] == "https://ci.example/run/7"
    assert set(predicate) == {"result", "configuration", "url", "passedTests", "warnedTests", "failedTests"}
    assert {"check:supplychain", "check:fuzzing", "check:performance"} <= set(predicate["passedTests"])
    assert "check:privacy" in predicate["failedTests"]
    every_test = predicate["passedTests"] + predicate["warnedTests"] + predicate["failedTests"]
    assert not [t for t in every_test if "drift" in t]  # skipped: no test
    assert "threshold:performance.accuracy >= 0.9 (0.81)" in predicate["failedTests"]
    assert "threshold:fuzzing.crash_rate <= 0.05 (0.024)" in predicate["passedTests"]
    assert report.decision is not None
    blocking = set(report.decision.blocking)
    for f in report.decision.findings:
        name = f"finding:{f.rule_id}:{f.fingerprint}"
        if not f.is_active:  # triaged findings are left out
            assert name not in predicate["failedTests"] + predicate["warnedTests"]
        else:
            assert name in predicate["failedTests" if f.fingerprint in blocking else "warnedTests"]
    [descriptor] = predicate["configuration"]
    assert descriptor["digest"] == {"sha256": hashlib.sha256(to_json(report).encode()).hexdigest()}
    notes = descriptor["annotations"]
    assert notes["verdict"] == "failed" and notes["exitCode"] == 1 and notes["failOn"] == "high"
    assert notes["skippedChecks"] == {"drift": "no production data configured"}
    assert notes["metrics"]["performance.accuracy"] == 0.81
    assert notes["metrics"]["fuzzing.invalid_output_rate"] is None  # NaN is not JSON
    assert {t["metric"]: t["passed"] for t in notes["thresholds"]} == {
        "performance.accuracy": False,
        "fuzzing.crash_rate": True,
    }


def test_a_passed_audit_is_passed_and_an_open_finding_below_the_gate_makes_it_warned(
    report: Report, model: Path
) -> None:
    passing = _passing(_for_model(report, model))
    skipped = report.result("drift")
    assert skipped is not None
    passing = replace(passing, results=(*passing.results, skipped))  # a skipped check does not warn
    predicate = build_statement(passing, model)["predicate"]
    assert (predicate["result"], predicate["failedTests"], predicate["warnedTests"]) == ("PASSED", [], [])
    assert predicate["passedTests"] == [
        "check:performance",
        "check:supplychain",
        "threshold:fuzzing.crash_rate <= 0.05 (0.024)",
    ]
    assert report.decision is not None and passing.decision is not None
    code = next(
        f for f in report.decision.findings if f.is_active and f.fingerprint not in report.decision.blocking
    )
    warned = replace(passing, decision=replace(passing.decision, findings=(code,)))
    predicate = build_statement(warned, model)["predicate"]
    assert (predicate["result"], predicate["warnedTests"]) == (
        "WARNED",
        [f"finding:{code.rule_id}:{code.fingerprint}"],
    )


def test_the_statement_fits_the_in_toto_protobuf_schemas_with_no_unknown_field(
    report: Report, model: Path
) -> None:
    json_format = pytest.importorskip("google.protobuf.json_format")
    test_result_pb2 = pytest.importorskip("in_toto_attestation.predicates.test_result.v0.test_result_pb2")
    statement_mod = pytest.importorskip("in_toto_attestation.v1.statement")

    statement = build_statement(_for_model(report, model), model, url="https://ci.example/run/7")
    parsed = json_format.ParseDict(statement, statement_mod.spb.Statement())  # unknown fields raise
    statement_mod.Statement.copy_from_pb(parsed).validate()
    json_format.ParseDict(statement["predicate"], test_result_pb2.TestResult())


def test_build_refuses_a_report_of_another_model_or_without_a_decision(
    report: Report, model: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.skops"
    other.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(InputError, match="audited a model with SHA-256"):
        build_statement(_for_model(report, model), other)
    with pytest.raises(InputError, match="no policy decision"):
        build_statement(replace(_for_model(report, model), decision=None), model)
    with pytest.raises(InputError, match="not found"):
        build_statement(report, tmp_path / "missing.skops")


# ------------------------------------------------------------------------------------------- sign and verify


def test_a_signed_attestation_verifies_and_returns_the_statement(
    report: Report, model: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    statement = build_statement(_for_model(report, model), model)
    envelope = sign_statement(statement, keys["private"])
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert json.loads(base64.b64decode(envelope["payload"])) == statement
    check = verify_attestation(envelope, public_key=keys["public"], model_path=model)
    assert (check.ok, check.reasons, check.statement, check.result) == (True, (), statement, "FAILED")
    # the file form: one JSON line, read back as bytes
    path = write_attestation(envelope, default_attestation_path(model))
    assert path.name == "model.skops.intoto.jsonl"
    assert path.read_bytes().count(b"\n") == 1
    assert verify_attestation(path.read_bytes(), public_key=keys["public"], model_path=model).ok


def test_the_signature_is_plain_dsse_over_the_pae_with_the_spki_keyid(
    envelope: dict[str, Any], keys: dict[str, Path]
) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"  # the DSSE protocol's example
    )
    public = serialization.load_pem_public_key(keys["public"].read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    payload = base64.b64decode(envelope["payload"])
    message = b"DSSEv1 %d %b %d %b" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    [sig] = envelope["signatures"]
    public.verify(base64.b64decode(sig["sig"]), message, ec.ECDSA(hashes.SHA256()))  # raises if not
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert sig["keyid"] == hashlib.sha256(der).hexdigest() == key_id(public)


def test_an_independent_dsse_implementation_verifies_it(
    envelope: dict[str, Any], keys: dict[str, Path]
) -> None:
    dsse = pytest.importorskip("securesystemslib.dsse")
    signer = pytest.importorskip("securesystemslib.signer")
    from cryptography.hazmat.primitives import serialization

    keyid = envelope["signatures"][0]["keyid"]
    public = serialization.load_pem_public_key(keys["public"].read_bytes())
    key = signer.SSlibKey.from_crypto(public, keyid=keyid)
    accepted = dsse.Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)
    assert list(accepted) == [keyid]


def test_flipping_any_single_byte_of_the_model_fails(
    envelope: dict[str, Any], model: Path, model_bytes: bytes, keys: dict[str, Path]
) -> None:
    assert verify_attestation(envelope, public_key=keys["public"], model_path=model).ok
    failures = 0
    with model.open("r+b") as fh:
        for i, byte in enumerate(model_bytes):
            fh.seek(i)
            fh.write(bytes([byte ^ 0x01]))
            fh.flush()
            check = verify_attestation(envelope, public_key=keys["public"], model_path=model)
            failures += (not check.ok) and "not an attested subject" in check.reasons[0]
            fh.seek(i)
            fh.write(bytes([byte]))
    assert failures == len(model_bytes)
    model.write_bytes(model_bytes + b"\0")  # and an appended byte
    assert not verify_attestation(envelope, public_key=keys["public"], model_path=model).ok


def test_changing_any_byte_of_the_statement_or_the_envelope_fails(
    envelope: dict[str, Any], keys: dict[str, Path]
) -> None:
    payload = base64.b64decode(envelope["payload"])
    for i in range(len(payload)):
        for flip in (0x01, 0x80):
            changed = bytearray(payload)
            changed[i] ^= flip
            check = verify_attestation(_with_payload(envelope, bytes(changed)), public_key=keys["public"])
            assert (check.ok, check.reasons, check.statement) == (
                False,
                ("no signature verifies with this public key",),
                None,
            ), i
    assert not verify_attestation(_with_payload(envelope, payload + b" "), public_key=keys["public"]).ok
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    for i in range(len(sig)):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        tampered = {**envelope, "signatures": [{"sig": base64.b64encode(bytes(bad)).decode()}]}
        assert not verify_attestation(tampered, public_key=keys["public"]).ok
    other_type = {**envelope, "payloadType": "application/json"}
    assert not verify_attestation(other_type, public_key=keys["public"]).ok


def test_a_different_key_fails(envelope: dict[str, Any], model: Path, keys: dict[str, Path]) -> None:
    check = verify_attestation(envelope, public_key=keys["other_public"], model_path=model)
    assert (check.ok, check.reasons) == (False, ("no signature verifies with this public key",))


def test_a_signed_statement_of_the_wrong_kind_is_not_verified(
    report: Report, model: Path, keys: dict[str, Path]
) -> None:
    statement = build_statement(_for_model(report, model), model)
    for changed, expected in (
        ({**statement, "_type": "https://in-toto.io/Statement/v0.1"}, "statement type"),
        ({**statement, "predicateType": "https://slsa.dev/provenance/v1"}, "predicate type"),
        ({**statement, "subject": []}, "subject"),
        ({**statement, "predicate": {**statement["predicate"], "result": "MAYBE"}}, "result"),
    ):
        check = verify_attestation(sign_statement(changed, keys["private"]), public_key=keys["public"])
        assert not check.ok and expected in " ".join(check.reasons)
        assert check.statement == changed  # signed, so handed back for inspection


def test_malformed_envelopes_are_input_errors(envelope: dict[str, Any], keys: dict[str, Path]) -> None:
    line = json.dumps(envelope).encode()
    for bad in (
        b"",
        b"[]",
        b"\xff\xfe",
        line + b"\n" + line,  # two envelopes in one file
        b"[" * 100_000,  # deeper than the JSON parser recurses
        json.dumps({**envelope, "payload": envelope["payload"] + "!"}).encode(),
        json.dumps({**envelope, "payload": envelope["payload"][:4] + "=" + envelope["payload"][4:]}).encode(),
        json.dumps({**envelope, "payload": "QR=="}).encode(),  # non-zero padding bits: not canonical
        json.dumps({**envelope, "signatures": []}).encode(),
        json.dumps({**envelope, "signatures": [{"keyid": 1, "sig": "AA=="}]}).encode(),
        json.dumps({k: v for k, v in envelope.items() if k != "payloadType"}).encode(),
        b" " * (4 << 20) + line,  # over the size cap
    ):
        with pytest.raises(InputError):
            verify_attestation(bad, public_key=keys["public"])


# ------------------------------------------------------------------------------------------- untrusted bytes

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_b64 = st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode())
_field = _json | _b64 | st.just(PAYLOAD_TYPE)
_envelopes = st.fixed_dictionaries(
    {},
    optional={
        "payloadType": _field,
        "payload": _field,
        "signatures": st.lists(
            st.fixed_dictionaries({}, optional={"keyid": _field, "sig": _field}) | _json, max_size=3
        )
        | _json,
        "extra": _json,
    },
)


def _never_raises_other_than_input_error(envelope: Any, public_key: Path) -> None:
    try:
        check = verify_attestation(envelope, public_key=public_key)
    except InputError:
        return
    assert not check.ok and check.reasons


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_cleanly(raw: bytes, keys: dict[str, Path]) -> None:
    _never_raises_other_than_input_error(raw, keys["public"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope=_envelopes, as_bytes=st.booleans())
def test_json_ish_envelopes_are_refused_cleanly(
    envelope: dict[str, Any], as_bytes: bool, keys: dict[str, Path]
) -> None:
    _never_raises_other_than_input_error(
        json.dumps(envelope).encode() if as_bytes else envelope, keys["public"]
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=200) | _json.map(lambda v: json.dumps(v).encode()))
def test_validly_signed_garbage_is_not_verified(payload: bytes, keys: dict[str, Path]) -> None:
    """Even a payload our own key signed is only verified when it is a well-formed test-result statement."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = serialization.load_pem_private_key(keys["private"].read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    sig = private.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"sig": base64.b64encode(sig).decode()}],
    }
    check = verify_attestation(envelope, public_key=keys["public"])
    assert not check.ok and check.reasons


# ------------------------------------------------------------------------------------------- the service check


def test_attestation_problems_is_empty_only_for_an_attested_passing_unchanged_model(
    report: Report, model: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "passing.intoto.jsonl"
    write_attestation(
        sign_statement(build_statement(_passing(_for_model(report, model)), model), keys["private"]), path
    )
    assert attestation_problems(model, attestation=path, public_key=keys["public"]) == []
    assert attestation_problems(model, attestation=tmp_path / "none.jsonl", public_key=keys["public"]) == [
        "attestation: cannot read the attestation: No such file or directory"
    ]
    other = attestation_problems(model, attestation=path, public_key=keys["other_public"])
    assert other == ["attestation: no signature verifies with this public key"]

    failing = tmp_path / "failing.intoto.jsonl"
    write_attestation(
        sign_statement(build_statement(_for_model(report, model), model), keys["private"]), failing
    )
    assert attestation_problems(model, attestation=failing, public_key=keys["public"]) == [
        "attestation: the attested audit FAILED"
    ]
    assert attestation_problems(tmp_path, attestation=path, public_key=keys["public"]) == [
        f"attestation: the model {tmp_path} is a directory (attestations cover one model file)"
    ]
    model.write_bytes(model.read_bytes() + b"\0")
    [problem] = attestation_problems(model, attestation=path, public_key=keys["public"])
    assert "not an attested subject" in problem
    with pytest.raises(InputError, match="PEM public key"):
        attestation_problems(model, attestation=path, public_key=keys["private"])


# ------------------------------------------------------------------------------------------- the CLI


def test_cli_round_trip_verifies_then_fails_after_the_model_changes(
    report: Report, model: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    app = typer.Typer()
    attest_cmd.register(app)
    report_path = tmp_path / "report.json"
    report_path.write_text(to_json(_for_model(report, model)))
    runner = CliRunner()

    made = runner.invoke(
        app, ["attest", "--report", str(report_path), "--model", str(model), "--key", str(keys["private"])]
    )
    assert made.exit_code == 0, made.output
    attestation = default_attestation_path(model)
    assert attestation.is_file()
    args = [
        "verify-attestation",
        str(attestation),
        "--model",
        str(model),
        "--public-key",
        str(keys["public"]),
    ]
    verified = runner.invoke(app, args)
    assert verified.exit_code == 0, verified.output
    assert "FAILED" in verified.stderr  # the attested result is shown

    model.write_bytes(model.read_bytes()[:-1])
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "NOT VERIFIED" in lines[0] and "not an attested subject" in lines[0]

    usage = runner.invoke(app, ["verify-attestation", str(attestation), "--model", str(model)])
    assert usage.exit_code == 2  # --public-key is required
