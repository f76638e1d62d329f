"""Signed audit attestations: an in-toto statement about a model file, in a DSSE envelope signed with an EC key.

Why: a report says what an audit found, but anyone can edit a JSON file. An attestation binds the audit's verdict
to the exact bytes of the model (its SHA-256 is the statement's subject) under a signature by the same
elliptic-curve keys ``garrison keygen`` makes for model signing, so a registry, a deployment gate or the guarded
service can refuse a model that was not audited, or was changed since.

Format (all standard, so other tools can verify it):

- the statement is in-toto Statement v1 (``https://in-toto.io/Statement/v1``) whose predicate is the in-toto
  Test Result predicate (``https://in-toto.io/attestation/test-result/v0.1``);
- the envelope is DSSE v1: ``{"payloadType": "application/vnd.in-toto+json", "payload": <base64 statement>,
  "signatures": [{"keyid": ..., "sig": <base64 DER ECDSA>}]}``; the signature is over
  ``PAE = "DSSEv1" SP len(type) SP type SP len(body) SP body`` with SHA-256 (P-256), SHA-384 (P-384) or
  SHA-512 (P-521); ``keyid`` is the hex SHA-256 of the public key's DER SubjectPublicKeyInfo (a hint only: the
  verifier tries the key it is given).

Mapping of the audit to the predicate. The Test Result predicate has a closed list of fields (``result``,
``configuration``, ``url``, ``passedTests``, ``warnedTests``, ``failedTests``); in-toto consumers ignore unknown
fields, but a field of our own could collide with a later version of the predicate, so none is added. Instead:

- ``result``: ``FAILED`` when the verdict is failed or incomplete; ``WARNED`` when it passed with open findings
  below the gate; else ``PASSED``;
- test names (stable, greppable): ``check:<id>`` per check that ran (ok: passed, error: failed; a skipped check,
  one that did not apply, is no test and is listed with its reason in the annotations' ``skippedChecks``);
  ``threshold:<metric> >= <bound> (<value>)`` per policy threshold; ``finding:<rule>:<fingerprint>`` per open
  finding (blocking: failed, other: warned). Triaged findings are left out;
- Garrison's key figures go in the ``annotations`` of the one ``configuration`` ResourceDescriptor, which the
  in-toto ResourceDescriptor defines as free-form: that descriptor names the canonical report JSON by its
  SHA-256 and carries the verdict, gate, finding counts, thresholds and every measured metric, so a policy engine
  can read numbers without parsing test names, and the report file itself can be checked against the digest.

Parsing an envelope is parsing untrusted bytes: a size cap, one JSON object, strict base64 and required fields;
malformed input is an :class:`InputError`, a well-formed envelope that does not verify is a result with reasons.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.atomic_write import write_atomic
from garrison.core.audit_report import Report, Verdict
from garrison.core.errors import InputError, MissingDependencyError
from garrison.core.results import CheckStatus
from garrison.report.json_report import to_json

__all__ = [
    "ATTESTATION_SUFFIX",
    "MAX_ENVELOPE_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AttestationCheck",
    "attestation_problems",
    "build_statement",
    "default_attestation_path",
    "key_id",
    "pae",
    "read_attestation",
    "sign_statement",
    "verify_attestation",
    "write_attestation",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
ATTESTATION_SUFFIX = ".intoto.jsonl"
MAX_ENVELOPE_BYTES = 4 << 20
"""Largest envelope read or parsed (a Garrison attestation is a few kilobytes)."""

_MAX_SIGNATURES = 16
_MAX_SIG_CHARS = 1024  # base64 of a DER ECDSA signature on P-521 is under 200 characters
_EXTRA = "signing"
_CURVES = ("secp256r1", "secp384r1", "secp521r1")
_STD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_B64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RESULTS = ("PASSED", "WARNED", "FAILED")


@dataclass(frozen=True, slots=True)
class AttestationCheck:
    """The outcome of verifying an attestation: ``ok``, or why not (``reasons``, one line each).

    ``statement`` is the decoded in-toto statement once a signature verified (None before that: an unsigned
    payload is never handed out).
    """

    ok: bool
    reasons: tuple[str, ...]
    statement: dict[str, Any] | None = None

    @property
    def result(self) -> str | None:
        """The attested test result (PASSED, WARNED, FAILED) when the statement carries one."""
        predicate = (self.statement or {}).get("predicate")
        value = predicate.get("result") if isinstance(predicate, dict) else None
        return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------------- building


def default_attestation_path(model_path: Path) -> Path:
    """``<model file>.intoto.jsonl`` beside the model."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ATTESTATION_SUFFIX)


def build_statement(report: Report, model_path: Path, *, url: str | None = None) -> dict[str, Any]:
    """The in-toto statement attesting ``report``'s evaluated audit of the model file at ``model_path``.

    ``url`` (optional) links the test run, e.g. the CI job. Raises :class:`InputError` when the model is not a
    readable file, the report was never evaluated, or the report audited a model with another digest.
    """
    model = Path(model_path)
    digest = _file_sha256(model)
    decision = report.decision
    if decision is None:
        raise InputError("the report has no policy decision; evaluate it first (`garrison report`)")
    audited = [a for a in report.run.artifacts if a.role == "model"]
    if audited and all(a.sha256 != digest for a in audited):
        raise InputError(
            f"the report audited a model with SHA-256 {audited[0].sha256[:16]}..., not this file "
            f"({digest[:16]}...)",
            path=model,
        )
    passed, warned, failed = _tests(report)
    result = "FAILED" if decision.verdict is not Verdict.PASSED else ("WARNED" if warned else "PASSED")
    predicate: dict[str, Any] = {
        "result": result,
        "configuration": [_report_descriptor(report)],
        "passedTests": passed,
        "warnedTests": warned,
        "failedTests": failed,
    }
    if url is not None:
        if not isinstance(url, str) or not url:
            raise InputError(f"`url` must be a non-empty string, got {url!r}")
        predicate["url"] = url
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model.name, "digest": {"sha256": digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def _tests(report: Report) -> tuple[list[str], list[str], list[str]]:
    assert report.decision is not None
    decision = report.decision
    passed: list[str] = []
    warned: list[str] = []
    failed: list[str] = []
    for r in sorted(report.results, key=lambda r: r.check_id):
        if r.status is not CheckStatus.SKIPPED:  # a check that did not apply is no test; see skippedChecks
            (passed if r.status is CheckStatus.OK else failed).append(f"check:{r.check_id}")
    for t in sorted(decision.thresholds, key=lambda t: (t.metric, t.op)):
        sign = ">=" if t.op == "min" else "<="
        value = "not measured" if t.value is None else f"{t.value:.4g}"
        (passed if t.passed else failed).append(f"threshold:{t.metric} {sign} {t.bound:g} ({value})")
    blocking = set(decision.blocking)
    for f in decision.findings:
        if f.is_active:
            name = f"finding:{f.rule_id}:{f.fingerprint}"
            (failed if f.fingerprint in blocking else warned).append(name)
    return passed, sorted(set(warned)), sorted(set(failed))


def _report_descriptor(report: Report) -> dict[str, Any]:
    assert report.decision is not None
    decision = report.decision
    metrics = {
        f"{r.check_id}.{m.name}": _finite(m.value)
        for r in report.results
        for m in r.metrics
        if isinstance(m.value, int | float)
    }
    annotations = {
        "project": report.run.project,
        "modelName": report.run.model_name,
        "garrisonVersion": report.run.garrison_version,
        "reportSchemaVersion": report.schema_version,
        "seed": report.run.seed,
        "startedAt": report.run.started_at,
        "finishedAt": report.run.finished_at,
        "configPath": report.run.config_path,
        "verdict": decision.verdict.value,
        "exitCode": int(decision.exit_code),
        "failOn": decision.fail_on.value,
        "openFindings": decision.counts(),
        "blockingFindings": len(decision.blocking),
        "incompleteChecks": sorted(decision.incomplete_checks),
        "skippedChecks": {
            r.check_id: r.reason or "" for r in report.results if r.status is CheckStatus.SKIPPED
        },
        "thresholds": [
            {
                "metric": t.metric,
                "op": t.op,
                "bound": _finite(t.bound),
                "value": None if t.value is None else _finite(t.value),
                "passed": t.passed,
            }
            for t in sorted(decision.thresholds, key=lambda t: (t.metric, t.op))
        ],
        "metrics": dict(sorted(metrics.items())),
    }
    return {
        "name": "garrison-report.json",
        "mediaType": "application/json",
        "digest": {"sha256": hashlib.sha256(to_json(report).encode("utf-8")).hexdigest()},
        "annotations": annotations,
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------------- signing


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 <len(type)> <type> <len(body)> <body>`` (lengths in bytes)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def key_id(public_key: Any) -> str:
    """Hex SHA-256 of a public key's DER SubjectPublicKeyInfo (a ``cryptography`` public key object)."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def sign_statement(statement: Mapping[str, Any], private_key_pem: Path) -> dict[str, Any]:
    """The DSSE envelope of ``statement`` signed with the elliptic-curve private key in ``private_key_pem``.

    Raises :class:`InputError` for an unreadable or non-EC key, or a statement that is not JSON data.
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _load_private_key(Path(private_key_pem))
    try:
        payload = json.dumps(
            statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InputError(f"the statement is not JSON data: {exc}") from None
    signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(_hash_for(key.curve.name)))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


def write_attestation(envelope: Mapping[str, Any], path: Path) -> Path:
    """Write ``envelope`` as one JSON line (the ``.intoto.jsonl`` convention), atomically; return ``path``."""
    return write_atomic(Path(path), json.dumps(envelope, sort_keys=True, separators=(",", ":")) + "\n")


def _hash_for(curve: str) -> Any:
    from cryptography.hazmat.primitives import hashes

    return {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384()}.get(curve, hashes.SHA512())


def _read_key(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(1 << 16)
    except OSError as exc:
        raise InputError(f"cannot read the {what} key: {exc.strerror or exc}", path=path) from None
    return data


def _cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise MissingDependencyError("cryptography", extra=_EXTRA) from None


def _load_private_key(path: Path) -> Any:
    _cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(_read_key(path, "private"), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an unencrypted PEM private key ({_first_line(exc)})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise InputError(f"the private key must be an elliptic-curve key on {', '.join(_CURVES)}", path=path)
    return key


def _load_public_key(path: Path) -> Any:
    _cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(_read_key(path, "public"))
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a PEM public key ({_first_line(exc)})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InputError(f"the public key must be an elliptic-curve key on {', '.join(_CURVES)}", path=path)
    return key


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------------- verifying


def read_attestation(path: Path) -> bytes:
    """The bytes of an attestation file, at most :data:`MAX_ENVELOPE_BYTES`; :class:`InputError` otherwise."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_ENVELOPE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the attestation: {exc.strerror or exc}", path=p) from None
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InputError(f"the attestation is larger than {MAX_ENVELOPE_BYTES} bytes", path=p)
    return data


def verify_attestation(
    envelope: bytes | Mapping[str, Any], *, public_key: Path, model_path: Path | None = None
) -> AttestationCheck:
    """Verify a DSSE envelope (bytes of an ``.intoto.jsonl`` file, or the parsed object) against ``public_key``.

    Checks the payload type, an ECDSA signature over the PAE by this key, the statement and predicate types, the
    predicate's shape and, when ``model_path`` is given, that the model file's SHA-256 is an attested subject.
    A failed check is a reason in the result. Raises :class:`InputError` for a malformed envelope, an unusable
    key or an unreadable model file; never anything else.
    """
    key = _load_public_key(Path(public_key))
    digest = _file_sha256(Path(model_path)) if model_path is not None else None
    return _verify(envelope, key, digest)


def attestation_problems(model_path: Path, *, attestation: Path, public_key: Path) -> list[str]:
    """Why the model at ``model_path`` may not serve under the attestation requirement (empty when it may).

    The attestation must verify against ``public_key``, name the model's current SHA-256 and attest a passing
    audit (PASSED or WARNED). A missing or malformed attestation, or a missing model, is a problem; an unusable
    public key raises :class:`InputError` (a configuration error, not a property of the model).
    """
    key = _load_public_key(Path(public_key))
    model = Path(model_path)
    if not model.is_file():
        what = "is a directory (attestations cover one model file)" if model.is_dir() else "is missing"
        return [f"attestation: the model {model} {what}"]
    try:
        data = read_attestation(Path(attestation))
        check = _verify(data, key, _file_sha256(model))
    except InputError as exc:
        return [f"attestation: {exc.reason}"]
    problems = [f"attestation: {reason}" for reason in check.reasons]
    if check.ok and check.result == "FAILED":
        problems.append("attestation: the attested audit FAILED")
    return problems


def _verify(envelope: bytes | Mapping[str, Any], key: Any, digest: str | None) -> AttestationCheck:
    payload_type, payload, signatures = _parse_envelope(envelope)
    if payload_type != PAYLOAD_TYPE:
        return AttestationCheck(
            False, (f"payload type is {payload_type[:100]!r}, expected {PAYLOAD_TYPE!r}",), None
        )
    if not _signed(key, pae(payload_type, payload), signatures):
        return AttestationCheck(False, ("no signature verifies with this public key",), None)
    try:
        statement = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return AttestationCheck(False, ("the signed payload is not a JSON statement",), None)
    if not isinstance(statement, dict):
        return AttestationCheck(False, ("the signed payload is not a JSON object",), None)
    reasons = _statement_problems(statement)
    subjects = _subject_digests(statement)
    if digest is not None and subjects is not None and digest not in subjects:
        shown = ", ".join(s[:16] + "..." for s in sorted(subjects)) or "none"
        reasons.append(f"the model's SHA-256 {digest[:16]}... is not an attested subject ({shown})")
    return AttestationCheck(not reasons, tuple(reasons), statement)


def _parse_envelope(envelope: bytes | Mapping[str, Any]) -> tuple[str, bytes, list[tuple[str, bytes]]]:
    if isinstance(envelope, bytes | bytearray | memoryview):
        data = _parse_json_bytes(bytes(envelope))
    elif isinstance(envelope, Mapping):
        data = envelope
    else:
        raise InputError(f"an envelope must be bytes or a JSON object, got {type(envelope).__name__}")
    payload_type = data.get("payloadType")
    if not isinstance(payload_type, str):
        raise InputError("the envelope needs a string `payloadType`", field="payloadType")
    payload_text = data.get("payload")
    if not isinstance(payload_text, str):
        raise InputError("the envelope needs a base64 string `payload`", field="payload")
    payload = _b64decode(payload_text, "payload")
    raw_sigs = data.get("signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise InputError("the envelope needs a non-empty list `signatures`", field="signatures")
    if len(raw_sigs) > _MAX_SIGNATURES:
        raise InputError(f"more than {_MAX_SIGNATURES} signatures", field="signatures")
    signatures: list[tuple[str, bytes]] = []
    for i, item in enumerate(raw_sigs):
        where = f"signatures[{i}]"
        if not isinstance(item, Mapping):
            raise InputError("each signature must be a JSON object", field=where)
        sig, keyid = item.get("sig"), item.get("keyid", "")
        if not isinstance(sig, str) or not sig or len(sig) > _MAX_SIG_CHARS:
            raise InputError(
                f"`sig` must be a base64 string of at most {_MAX_SIG_CHARS} characters", field=where
            )
        if not isinstance(keyid, str):
            raise InputError("`keyid` must be a string", field=where)
        signatures.append((keyid, _b64decode(sig, f"{where}.sig")))
    return payload_type, payload, signatures


def _parse_json_bytes(raw: bytes) -> Mapping[str, Any]:
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise InputError(f"the envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the envelope is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise InputError("the envelope is not one valid JSON object (one envelope per file)") from None
    if not isinstance(data, dict):
        raise InputError("the envelope must be a JSON object")
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _b64decode(text: str, field: str) -> bytes:
    if len(text) > 2 * MAX_ENVELOPE_BYTES:
        raise InputError("too long", field=field)
    if _STD_B64.fullmatch(text):
        alphabet = text
    elif _URL_B64.fullmatch(text):  # DSSE allows the URL-safe alphabet too
        alphabet = text.replace("-", "+").replace("_", "/")
    else:
        raise InputError("not base64 (standard or URL-safe alphabet)", field=field)
    if len(alphabet) % 4 == 1:
        raise InputError("not base64 (impossible length)", field=field)
    padded = alphabet.rstrip("=") + "=" * (-len(alphabet.rstrip("=")) % 4)
    try:
        decoded = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("not base64", field=field) from None
    if base64.b64encode(decoded).decode("ascii").rstrip("=") != alphabet.rstrip("="):
        raise InputError("not canonical base64 (non-zero padding bits)", field=field)
    return decoded


def _signed(key: Any, message: bytes, signatures: list[tuple[str, bytes]]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec

    algorithm = ec.ECDSA(_hash_for(key.curve.name))
    for (
        _keyid,
        sig,
    ) in signatures:  # keyid is an unauthenticated hint: the given key is tried on every signature
        try:
            key.verify(sig, message, algorithm)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def _statement_problems(statement: Mapping[str, Any]) -> list[str]:
    reasons = []
    if statement.get("_type") != STATEMENT_TYPE:
        reasons.append(f"statement type is {_short(statement.get('_type'))}, expected {STATEMENT_TYPE!r}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        reasons.append(
            f"predicate type is {_short(statement.get('predicateType'))}, expected {PREDICATE_TYPE!r}"
        )
    if _subject_digests(statement) is None:
        reasons.append("the statement's `subject` is not a non-empty list of {name, digest: {sha256}}")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        reasons.append("the statement has no `predicate` object")
        return reasons
    if predicate.get("result") not in _RESULTS:
        reasons.append(f"predicate `result` is {_short(predicate.get('result'))}, expected one of {_RESULTS}")
    if not isinstance(predicate.get("configuration"), list):
        reasons.append("predicate `configuration` must be a list of resource descriptors")
    for name in ("passedTests", "warnedTests", "failedTests"):
        tests = predicate.get(name, [])
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            reasons.append(f"predicate `{name}` must be a list of strings")
    return reasons


def _subject_digests(statement: Mapping[str, Any]) -> set[str] | None:
    """The subjects' sha256 digests; None when ``subject`` is malformed."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return None
    out = set()
    for s in subjects:
        digest = s.get("digest") if isinstance(s, dict) else None
        value = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            return None
        out.add(value)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _file_sha256(path: Path) -> str:
    if not path.is_file():
        raise InputError(
            "model file not found" if not path.exists() else "the model must be a file", path=path
        )
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read the model: {exc.strerror or exc}", path=path) from None
    return digest.hexdigest()
