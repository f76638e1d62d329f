"""The model registry: versions with their digest, signature status and audit verdict, and which one serves.

A version is loadable when its file still has the registered SHA-256, its audit (when ``require_audit``) passed,
its signature verifies against ``public_key`` (when one is required), and a signed attestation of a passing audit
(``<model>.intoto.jsonl``, :mod:`garrison.report.attestation`) verifies against ``attestation_key`` (when one is
required). :meth:`ModelRegistry.problems` says
why not, one line per reason; :meth:`ModelRegistry.promote` refuses a version with problems; the service refuses
to start on one. :meth:`ModelRegistry.rollback_target` is the newest version registered before the serving one
that has no problems: what a ``rollback`` playbook action serves.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from garrison.core.errors import GarrisonError

if TYPE_CHECKING:
    from garrison.store import ModelVersionRecord, Store

__all__ = ["ModelRegistry", "RegistryRefusal"]


class RegistryRefusal(GarrisonError):
    """A model version may not serve: ``problems`` says why."""

    def __init__(self, model_name: str, version: str, problems: list[str]) -> None:
        self.model_name = model_name
        self.version = version
        self.problems = problems
        super().__init__(f"model {model_name!r} version {version!r} may not serve: {'; '.join(problems)}")


class ModelRegistry:
    """Model versions in ``store``; ``public_key`` (PEM path) makes a verified signature required,
    ``attestation_key`` (PEM path) a verified attestation of a passing audit."""

    def __init__(
        self,
        store: Store,
        *,
        public_key: str | Path | None = None,
        require_audit: bool = True,
        attestation_key: str | Path | None = None,
    ) -> None:
        self.store = store
        self.public_key = Path(public_key) if public_key is not None else None
        self.require_audit = require_audit
        self.attestation_key = Path(attestation_key) if attestation_key is not None else None

    def register(
        self, model_name: str, version: str, path: str | Path, *, audit_id: int | None = None
    ) -> int:
        """Record ``version`` of ``model_name`` at ``path`` (its digest, and its signature status when a key is
        set); returns its id. Registering does not make it serve."""
        p = Path(path)
        status = "unsigned"
        if self.public_key is not None:
            from garrison.supplychain.signing import verify_model

            status = "verified" if verify_model(p, public_key=self.public_key).ok else "invalid"
        return self.store.add_model_version(model_name=model_name, version=version, sha256=_sha256(p),
                                            uri=str(p.resolve()), signature_status=status, audit_id=audit_id)  # fmt: skip

    def versions(self, model_name: str) -> list[ModelVersionRecord]:
        return self.store.list_model_versions(model_name)

    def serving(self, model_name: str) -> ModelVersionRecord | None:
        return next((v for v in self.versions(model_name) if v.serving), None)

    def problems(self, record: ModelVersionRecord) -> list[str]:
        """Why ``record`` may not serve (empty when it may)."""
        out = []
        path = Path(record.uri)
        if not path.exists():
            out.append(f"the file {path} is gone")
        elif _sha256(path) != record.sha256:
            out.append("the file changed since it was registered (SHA-256 differs)")
        if self.require_audit:
            if record.audit_id is None:
                out.append("it has no audit")
            else:
                verdict = _verdict(self.store.get_audit(record.audit_id))
                if verdict != "passed":
                    out.append(f"its audit #{record.audit_id} {verdict}")
        if self.public_key is not None and path.exists():
            from garrison.supplychain.signing import verify_model

            status = verify_model(path, public_key=self.public_key)
            if not status.ok:
                out.append(f"signature: {status.reason}")
        if self.attestation_key is not None and path.exists():
            from garrison.report.attestation import attestation_problems, default_attestation_path

            out.extend(attestation_problems(path, attestation=default_attestation_path(path),
                                            public_key=self.attestation_key))  # fmt: skip
        return out

    def promote(self, model_name: str, version: str) -> None:
        """Make ``version`` serve; :class:`RegistryRefusal` when it has problems."""
        record = next((v for v in self.versions(model_name) if v.version == version), None)
        if record is None:
            raise RegistryRefusal(model_name, version, ["no such version is registered"])
        problems = self.problems(record)
        if problems:
            raise RegistryRefusal(model_name, version, problems)
        self.store.set_serving(model_name, version)

    def rollback_target(self, model_name: str) -> ModelVersionRecord | None:
        """The newest version registered before the serving one that may serve."""
        versions = self.versions(model_name)
        current = next((i for i, v in enumerate(versions) if v.serving), len(versions))
        for record in reversed(versions[:current]):
            if not self.problems(record):
                return record
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f.relative_to(path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(f.read_bytes()).digest())
        return digest.hexdigest()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verdict(report: Any) -> str:
    decision = getattr(report, "decision", None)
    return "was never evaluated" if decision is None else str(decision.verdict.value)
