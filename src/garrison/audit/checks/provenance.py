"""The ``data`` stage: verify the datasets against their signed manifests (``garrison protect manifest``).

The manifest is the ``manifest`` option, or ``garrison-manifest.json`` in the directory of each configured data
file. Every file that changed, appeared or vanished since the manifest was written is a finding (its locator is the
path relative to the dataset root, so triage survives a re-run); so is every path that cannot be hashed safely
(a link out of the dataset, a FIFO). With ``public_key``, a missing or invalid signature is a critical finding;
without it the data is checked for integrity only (metric ``signature_checked`` is 0). No manifest: skipped.
A malformed manifest makes the result ``error`` (the audit is incomplete).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from garrison.audit.context import AuditContext
from garrison.core.errors import DataError
from garrison.core.findings import Finding, Subject, SubjectKind
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.rules import get_rule
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

if TYPE_CHECKING:
    from garrison.audit.progress import ProgressTask
    from garrison.supplychain.manifest import ManifestDiff

__all__ = ["RULE_FILE_CHANGED", "RULE_SIGNATURE", "RULE_UNSAFE_PATH", "ProvenanceCheck"]

RULE_FILE_CHANGED = "GAR-DS-001"
RULE_SIGNATURE = "GAR-DS-002"
RULE_UNSAFE_PATH = "GAR-DS-003"


class ProvenanceCheck:
    """Verify each dataset directory against its manifest and, given a public key, the manifest's signature."""

    id: ClassVar[str] = "provenance"
    stage: ClassVar[Stage] = Stage.DATA
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = (
        "Dataset provenance: each dataset directory is hashed again and compared with its signed manifest "
        "(`garrison protect manifest`); every file that changed, appeared or vanished, and a missing or invalid "
        "signature, is a finding."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "manifest": Spec(
            "str",
            default=None,
            doc="manifest file, relative to the config (default: garrison-manifest.json beside each data file)",
        ),
        "directory": Spec(
            "str",
            default=None,
            doc="dataset directory the manifest covers (default: the manifest's directory)",
        ),
        "public_key": Spec(
            "str", default=None, doc="the signer's public key (PEM); without it only integrity is checked"
        ),
    }

    def __init__(
        self, *, manifest: str | None = None, directory: str | None = None, public_key: str | None = None
    ) -> None:
        self.manifest = manifest
        self.directory = directory
        self.public_key = public_key

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.supplychain.manifest import verify_manifest

        ctx.budget.check()
        targets, looked = self._targets(ctx)
        if not targets:
            where = ", ".join(str(p) for p in looked) or "no data file configured"
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason=f"no dataset manifest found ({where})"
            )
        key = self._resolve(ctx, self.public_key) if self.public_key else None
        start = time.perf_counter()
        findings: list[Finding] = []
        diffs: list[ManifestDiff] = []
        task = ctx.progress.task("provenance: hashing dataset files", total=None)
        for directory, manifest in targets:
            try:
                diff = verify_manifest(
                    directory, public_key=key, manifest=manifest, progress=lambda _p: _tick(ctx, task)
                )
            except DataError as exc:
                return CheckResult(self.id, self.stage, CheckStatus.ERROR, error=str(exc).splitlines()[0])
            diffs.append(diff)
            findings.extend(self._findings(diff, _subject(ctx, directory), key))
        task.done()
        return CheckResult(
            self.id,
            self.stage,
            metrics=_metrics(diffs, checked=key is not None),
            findings=tuple(findings),
            duration_s=time.perf_counter() - start,
        )

    def _targets(self, ctx: AuditContext) -> tuple[list[tuple[Path, Path]], list[Path]]:
        """(dataset directory, manifest) pairs that exist, and every manifest path looked for."""
        from garrison.supplychain.manifest import default_manifest_path

        if self.manifest is not None:
            manifest = self._resolve(ctx, self.manifest)
            directory = self._resolve(ctx, self.directory) if self.directory else manifest.parent
            return ([(directory, manifest)] if manifest.is_file() else []), [manifest]
        directories: dict[Path, Path] = {}
        if self.directory is not None:
            resolved = self._resolve(ctx, self.directory)
            directories[resolved.resolve()] = resolved
        for path in _data_paths(ctx):
            directories.setdefault(path.parent.resolve(), path.parent)
        looked = [default_manifest_path(d) for _, d in sorted(directories.items())]
        return [(m.parent, m) for m in looked if m.is_file()], looked

    @staticmethod
    def _resolve(ctx: AuditContext, path: str) -> Path:
        return ctx.config.resolve(path) if ctx.config is not None else Path(path)

    def _findings(self, diff: ManifestDiff, subject: Subject, key: Path | None) -> Iterator[Finding]:
        changed = get_rule(RULE_FILE_CHANGED)
        manifest_name = diff.manifest.name
        for kind, paths in (
            ("changed", diff.changed),
            ("appeared", diff.appeared),
            ("vanished", diff.vanished),
        ):
            for path in paths:
                before, after = diff.expected.get(path), diff.actual.get(path)
                evidence: dict[str, object] = {"change": kind, "manifest": str(diff.manifest)}
                if before is not None:
                    evidence.update(expected_sha256=before.sha256, expected_size=before.size)
                if after is not None:
                    evidence.update(actual_sha256=after.sha256, actual_size=after.size)
                yield changed.finding(
                    subject=subject,
                    location=path,
                    check_id=self.id,
                    message=_MESSAGES[kind].format(path=path, manifest=manifest_name),
                    evidence=evidence,
                )
        unsafe = get_rule(RULE_UNSAFE_PATH)
        for entry in diff.unsafe:
            yield unsafe.finding(
                subject=subject,
                location=entry.path,
                check_id=self.id,
                message=f"{entry.path} cannot be verified against {manifest_name}: {entry.reason}.",
                evidence={"reason": entry.reason, "manifest": str(diff.manifest)},
            )
        if key is not None and diff.signature_status.value in ("invalid", "missing"):
            yield get_rule(RULE_SIGNATURE).finding(
                subject=subject,
                location=manifest_name,
                check_id=self.id,
                message=f"A signature of {manifest_name} by the key {key.name} is required: "
                f"{diff.signature_reason}.",
                evidence={"signature": diff.signature_status.value, "reason": diff.signature_reason},
            )


_MESSAGES = {
    "changed": "{path} differs from the digest recorded in {manifest}.",
    "appeared": "{path} is not listed in {manifest}: it was added after the manifest was written.",
    "vanished": "{path} is listed in {manifest} but is gone (deleted or renamed).",
}


def _tick(ctx: AuditContext, task: ProgressTask) -> None:
    ctx.budget.check()
    task.advance()


def _data_paths(ctx: AuditContext) -> Iterator[Path]:
    """The data files of the audit: the loaded datasets' paths, and the config's data section."""
    for ds in (ctx.train, ctx.test):
        if ds is not None and ds.path is not None:
            yield Path(ds.path)
    if ctx.config is not None:
        for source in (ctx.config.data.train, ctx.config.data.test):
            if source is not None:
                yield ctx.config.resolve(source.path)


def _subject(ctx: AuditContext, directory: Path) -> Subject:
    """The dataset directory, named relative to the config's directory when inside it, so fingerprints are stable
    across clones."""
    name = directory.name or str(directory)
    if ctx.config is not None and directory.resolve().is_relative_to(
        base := Path(ctx.config.base_dir).resolve()
    ):
        name = directory.resolve().relative_to(base).as_posix()
    return Subject(SubjectKind.DATASET, name, str(directory))


def _metrics(diffs: list[ManifestDiff], *, checked: bool) -> tuple[Metric, ...]:
    def total(attr: str) -> int:
        return sum(len(getattr(d, attr)) for d in diffs)

    n_files = sum(len(d.expected) for d in diffs)
    failed = sum(1 for d in diffs if d.signature_status.value in ("invalid", "missing"))
    return (
        Metric("manifests", float(len(diffs)), n=len(diffs), description="dataset manifests verified"),
        Metric("files", float(n_files), n=n_files, description="files listed in the manifests"),
        Metric("changed", float(total("changed")), n=n_files, higher_is_better=False,
               description="listed files whose content changed"),
        Metric("appeared", float(total("appeared")), higher_is_better=False,
               description="files not listed in their manifest"),
        Metric("vanished", float(total("vanished")), n=n_files, higher_is_better=False,
               description="listed files that are gone"),
        Metric("unsafe", float(total("unsafe")), higher_is_better=False,
               description="paths that cannot be hashed safely (links out of the dataset, non-regular files)"),
        Metric("signature_checked", float(checked), description="1 when a public key was given"),
        Metric("signature_failures", float(failed), n=len(diffs) if checked else None, higher_is_better=False,
               description="manifests whose signature is missing or invalid (0 when not checked)"),
    )  # fmt: skip
