"""Model signing with OpenSSF model signing (the ``model-signing`` library), key-based so it works offline.

A model is a file or a directory. Signing hashes every file (a directory's signature file itself, and git
metadata, are left out), puts the manifest in an in-toto statement and signs it with an elliptic-curve private
key; the signature is a Sigstore bundle. Verifying recomputes the manifest: a changed, added or removed file, a
signature made with another key or a damaged signature file all fail verification.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.atomic_write import write_atomic
from garrison.core.errors import InputError, MissingDependencyError
from garrison.core.findings import Finding, Subject, SubjectKind
from garrison.core.rules import SC_SIGNATURE

__all__ = [
    "SIGNATURE_FILE_NAME",
    "SignatureStatus",
    "default_signature_path",
    "generate_keypair",
    "sign_model",
    "signature_findings",
    "verify_model",
]

SIGNATURE_FILE_NAME = "model.sig"
"""The signature file inside a signed model directory (the ``model-signing`` convention)."""

_EXTRA = "signing"
_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # what model-signing accepts


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """The outcome of verifying a model: ``ok``, or why not (``reason``), and the signature file used."""

    ok: bool
    reason: str
    signature: Path


def default_signature_path(model_path: Path) -> Path:
    """``<dir>/model.sig`` for a directory, ``<file>.sig`` beside a file."""
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / SIGNATURE_FILE_NAME
    return model_path.with_name(model_path.name + ".sig")


def _model_signing() -> Any:
    try:
        import model_signing.hashing
        import model_signing.signing
        import model_signing.verifying
    except ImportError:
        raise MissingDependencyError("model-signing", extra=_EXTRA) from None
    return model_signing


def _existing_model(model_path: Path) -> Path:
    path = Path(model_path)
    if not path.exists():
        raise InputError("model not found", path=path)
    if not (path.is_file() or path.is_dir()):
        raise InputError("model must be a file or a directory", path=path)
    return path


def _read_key(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} key: {exc.strerror or exc}", path=path) from None


def _check_private_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(_read_key(path, "private"), password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an unencrypted PEM private key ({_first_line(exc)})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _CURVES:
        raise InputError(f"the private key must be an elliptic-curve key on {', '.join(_CURVES)}", path=path)


def _check_public_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(_read_key(path, "public"))
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a PEM public key ({_first_line(exc)})", path=path) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise InputError(f"the public key must be an elliptic-curve key on {', '.join(_CURVES)}", path=path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ignored_inside(model_path: Path, signature: Path) -> list[Path]:
    """The signature file, relative to the model directory, when it lies inside it."""
    if not model_path.is_dir():
        return []
    try:
        return [signature.resolve().relative_to(model_path.resolve())]
    except ValueError:
        return []


def sign_model(model_path: Path, *, private_key: Path, signature: Path | None = None) -> Path:
    """Sign a model file or directory with an elliptic-curve private key (PEM); return the signature path.

    The signature goes to ``signature`` or :func:`default_signature_path`; it is written atomically.
    Raises :class:`InputError` for a missing model or an unusable key.
    """
    ms = _model_signing()
    model = _existing_model(model_path)
    _check_private_key(private_key)
    target = Path(signature) if signature is not None else default_signature_path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    hashing = ms.hashing.Config().set_ignored_paths(
        paths=_ignored_inside(model, target), ignore_git_paths=True
    )
    config = (
        ms.signing.Config().use_elliptic_key_signer(private_key=Path(private_key)).set_hashing_config(hashing)
    )
    # signed into a scratch directory outside the model (so no temporary name is hashed or ignored), then moved
    # into place atomically
    with tempfile.TemporaryDirectory(prefix="garrison-sign-") as scratch:
        produced = Path(scratch) / SIGNATURE_FILE_NAME
        try:
            config.sign(model, produced)
            write_atomic(target, produced.read_bytes(), mode=0o644)
        except OSError as exc:
            raise InputError(f"cannot sign the model: {exc.strerror or exc}", path=model) from None
    return target


def verify_model(model_path: Path, *, public_key: Path, signature: Path | None = None) -> SignatureStatus:
    """Verify a model file or directory against its signature and the signer's public key (PEM).

    Never raises for a missing, damaged or non-matching signature or a changed model: the status says why.
    Raises :class:`InputError` for a missing model or an unreadable key.
    """
    ms = _model_signing()
    model = _existing_model(model_path)
    _check_public_key(public_key)
    sig = Path(signature) if signature is not None else default_signature_path(model)
    if not sig.is_file():
        return SignatureStatus(False, f"no signature file at {sig}", sig)
    config = ms.verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key))
    try:
        config.verify(model, sig)
    except Exception as exc:  # the library raises ValueError, InvalidSignature, protobuf/JSON errors alike
        return SignatureStatus(False, _reason(exc), sig)
    return SignatureStatus(True, "signature verified", sig)


def _reason(exc: BaseException) -> str:
    from cryptography.exceptions import InvalidSignature

    if isinstance(exc, InvalidSignature):
        return "the signature does not verify with this public key"
    text = _first_line(exc)
    if text.startswith("Key mismatch"):
        return "the model was signed with a different key"
    if text.startswith("Signature mismatch"):
        return f"the model changed after signing: {_changes(text)}"
    return f"unreadable or invalid signature: {type(exc).__name__}: {text}"[:500]


def signature_findings(paths: Iterable[str | Path], *, public_key: Path) -> tuple[Finding, ...]:
    """A critical GAR-SC-011 finding for each model path (as given) whose signature is missing or invalid.

    Each path's signature is at its :func:`default_signature_path`. Raises :class:`InputError` for a missing
    path or an unreadable key.
    """
    findings = []
    for given in paths:
        status = verify_model(Path(given), public_key=public_key)
        if status.ok:
            continue
        where = str(given)
        findings.append(
            SC_SIGNATURE.finding(
                subject=Subject(SubjectKind.ARTIFACT, name=where, uri=where),
                location=where,
                message=f"A signature by the key {Path(public_key).name} is required: {status.reason}.",
                evidence={"signature": str(status.signature), "reason": status.reason},
            )
        )
    return tuple(findings)


def _changes(message: str) -> str:
    """The library's manifest diff, without its digest dumps: which files were added, removed or changed."""
    parts = []
    for pattern, label in (
        (r"Extra files found in model '[^']*': ([^\"\]]+)", "added"),
        (r"Missing files in model '[^']*': ([^\"\]]+)", "removed"),
    ):
        if found := re.search(pattern, message):
            parts.append(f"{label} {found.group(1).strip()}")
    changed = re.findall(r"Hash mismatch for '([^']+)'", message)
    if changed:
        parts.append(f"changed {', '.join(changed)}")
    return ("; ".join(parts) or "the files differ from the signed manifest")[:500]


def generate_keypair(private_key: Path, public_key: Path, *, overwrite: bool = False) -> None:
    """Write a new elliptic-curve (P-256) key pair as PEM: the private key with mode 0600, unencrypted.

    Refuses to replace existing files unless ``overwrite``.
    """
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise MissingDependencyError("cryptography", extra=_EXTRA) from None

    private_key, public_key = Path(private_key), Path(public_key)
    if private_key.resolve() == public_key.resolve():
        raise InputError("the private and public key paths must differ", path=private_key)
    for path in (private_key, public_key):
        if path.exists() and not overwrite:
            raise InputError("exists; refusing to overwrite a key", path=path)
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(private_key, private_pem, mode=0o600)
    write_atomic(public_key, public_pem, mode=0o644)
