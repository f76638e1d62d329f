"""The ``artifact`` stage: scan the model files for code that loading them would run, before anything loads them.

Findings come from :func:`garrison.supplychain.scan.scan_paths` as they are. Anything not fully scanned (corrupt,
truncated, unsupported, a limit hit) makes the result ``error``, so the audit is incomplete (exit 3) and never
passes on a file nobody could read. With ``scan.require_signature`` in the config, each artifact must also carry a
valid signature by that key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from garrison.audit.context import AuditContext
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

__all__ = ["ArtifactScanCheck"]


class ArtifactScanCheck:
    """Scan the audit's artifacts (model files, directories, archives) without loading them."""

    id: ClassVar[str] = "artifact"
    stage: ClassVar[Stage] = Stage.ARTIFACT
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"artifacts"})
    description: ClassVar[str] = (
        "Model artifact scan: pickle, joblib, torch, numpy, Keras, TensorFlow, ONNX, safetensors, GGUF files and "
        "archives are read as bytes, never loaded; code execution, unknown globals and format abuse are "
        "findings, and anything that cannot be fully scanned makes the audit incomplete."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "allowlist": Spec(
            "list",
            items=Spec("str"),
            default=None,
            doc="extra safe callables, exact 'module.qualname' (added to scan.allowlist of the config)",
        ),
    }

    def __init__(self, *, allowlist: list[str] | None = None) -> None:
        self.allowlist = allowlist

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.supplychain.limits import ScanLimits
        from garrison.supplychain.pickle_policy import default_allowlist
        from garrison.supplychain.result import ScanResult
        from garrison.supplychain.scan import scan_paths
        from garrison.supplychain.signing import signature_findings

        if not ctx.artifacts:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED, reason="no model artifacts to scan")
        ctx.budget.check()
        start = time.perf_counter()
        section = ctx.config.scan if ctx.config is not None else None
        names = [*(section.allowlist if section else ()), *(self.allowlist or ())]
        allowlist = default_allowlist().extended(names) if names else None
        limits = ScanLimits.from_mapping(dict(section.limits)) if section else ScanLimits()

        task = ctx.progress.task("artifact: scanning model files", total=len(ctx.artifacts))
        result = ScanResult()
        for path in ctx.artifacts:
            ctx.budget.check()
            result = result.merged(scan_paths([path], limits=limits, allowlist=allowlist))
            task.advance()
        task.done()
        if section is not None and section.require_signature and ctx.config is not None:
            key = ctx.config.resolve(section.require_signature)
            result = result.merged(ScanResult(findings=signature_findings(ctx.artifacts, public_key=key)))

        scanned = result.to_check_result(duration_s=time.perf_counter() - start)
        return replace(
            scanned,
            check_id=self.id,
            findings=tuple(replace(f, check_id=self.id) for f in scanned.findings),
            deterministic=self.deterministic,
        )
