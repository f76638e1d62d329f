"""The audit runner: checks in stage order, each under its own cooperative budget; one check's error never stops
the others. :func:`run_checks` is the engine; :func:`audit` builds everything from a ``garrison.yaml``."""

from __future__ import annotations

import datetime as dt
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import garrison
from garrison.adapters.base import Classifier
from garrison.audit.budget import Budget
from garrison.audit.check import Check, CheckRegistry, default_registry
from garrison.audit.context import AuditContext
from garrison.audit.evaluate import evaluate
from garrison.audit.progress import NullProgress, Progress
from garrison.core.audit_report import ArtifactDigest, Report, RunInfo
from garrison.core.config import CheckConfig, GarrisonConfig
from garrison.core.errors import BudgetExceeded, ConfigError, ModelInputMismatchError, ScanBlockedError
from garrison.core.findings import Subject, SubjectKind
from garrison.core.results import CheckResult, CheckStatus
from garrison.core.schema_spec import Spec, validate
from garrison.core.triage import Triage

__all__ = ["DEFAULT_BUDGET_S", "PlannedCheck", "audit", "plan_checks", "run_checks"]

DEFAULT_BUDGET_S = 600.0
_PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "onnxruntime", "skops", "safetensors")


@dataclass(frozen=True)
class PlannedCheck:
    """A constructed check and its budget."""

    check: Check
    budget_s: float | None


def plan_checks(
    checks: Mapping[str, CheckConfig] | None,
    *,
    registry: CheckRegistry | None = None,
    config_path: str | None = None,
) -> list[PlannedCheck]:
    """Every registered check, enabled unless its section says ``enabled: false``, options validated and the check
    constructed, in stage order. A section naming an unknown check, or a bad option, is a ConfigError."""
    registry = registry or default_registry()
    checks = checks or {}
    for check_id, section in checks.items():
        if check_id not in registry:
            raise ConfigError(
                f"unknown check (installed: {', '.join(registry.ids())})",
                path=config_path,
                key=f"checks.{check_id}",
                line=section.line,
            )
    planned: list[PlannedCheck] = []
    for check_id in registry.ids():
        section = checks.get(check_id, CheckConfig())
        if not section.enabled:
            continue
        cls = registry.get(check_id)
        spec = Spec("map", fields=dict(getattr(cls, "options", {}) or {}))
        options = validate(
            dict(section.options), spec, path=config_path, key=f"checks.{check_id}", line=section.line
        )
        planned.append(
            PlannedCheck(cls(**options), section.budget_s if section.budget_s else DEFAULT_BUDGET_S)
        )
    return planned


def _missing_requirements(check: Check, ctx: AuditContext) -> list[str]:
    have = {
        "model": ctx.model is not None,
        "test": ctx.test is not None,
        "train": ctx.train is not None,
        "artifacts": bool(ctx.artifacts),
    }
    return sorted(r for r in getattr(check, "requires", frozenset()) if not have.get(r, False))


def run_checks(planned: Sequence[PlannedCheck], ctx: AuditContext) -> tuple[CheckResult, ...]:
    """Run checks in stage order. Errors and spent budgets become ``error`` results; unmet requirements ``skipped``."""
    results: list[CheckResult] = []
    overall = ctx.progress.task("audit", total=len(planned))
    for item in sorted(planned, key=lambda p: (p.check.stage.order, p.check.id)):
        results.append(_run_one(item, ctx))
        overall.advance()
    overall.done()
    return tuple(results)


def _run_one(item: PlannedCheck, ctx: AuditContext) -> CheckResult:
    check = item.check
    missing = _missing_requirements(check, ctx)
    if missing:
        reason = f"needs {', '.join(missing)}"
        return CheckResult(
            check.id, check.stage, CheckStatus.SKIPPED, reason=reason, deterministic=check.deterministic
        )
    start = time.perf_counter()
    try:
        result = check.run(replace(ctx, budget=Budget(item.budget_s)))
    except BudgetExceeded as exc:
        result = CheckResult(check.id, check.stage, CheckStatus.ERROR, error=str(exc), partial=True)
    except Exception as exc:  # one check's failure never stops the others
        first_line = (str(exc).splitlines() or [""])[0][:300]
        result = CheckResult(
            check.id, check.stage, CheckStatus.ERROR, error=f"{type(exc).__name__}: {first_line}"
        )
    return replace(result, duration_s=time.perf_counter() - start, deterministic=check.deterministic)


def _sha256_artifact(role: str, path: Path) -> ArtifactDigest:
    """``path`` as the caller reaches it: the config file's directory joined with the configured path."""
    from garrison.data import file_sha256

    return ArtifactDigest(role, path.as_posix(), file_sha256(path), path.stat().st_size)


def _packages() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _check_model_fits_data(ctx: AuditContext) -> None:
    """A model that cannot take the data, or whose classes do not cover the labels, is a usage error."""
    from garrison.data import encode_labels

    assert ctx.model is not None
    for ds in (ctx.test, ctx.train):
        if ds is None:
            continue
        shape = tuple(ctx.model.input_spec.shape)
        if shape and tuple(ds.x.shape[1:]) != shape:
            raise ModelInputMismatchError(
                f"the model takes inputs of shape {shape}, the data has {tuple(ds.x.shape[1:])}", path=ds.path
            )
        try:
            out = ctx.model.predict_proba(ds.x[:2])
        except Exception as exc:
            raise ModelInputMismatchError(
                f"the model rejects this data: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}",
                path=ds.path,
            ) from exc
        if getattr(out, "shape", None) != (min(2, len(ds)), ctx.model.n_classes):
            raise ModelInputMismatchError(
                f"the model returned output of shape {getattr(out, 'shape', None)} for 2 rows", path=ds.path
            )
        if ds.y is not None:
            try:
                encode_labels(ds.y, ctx.model.classes, ctx.model.n_classes)
            except ModelInputMismatchError as exc:
                raise ModelInputMismatchError(exc.reason, path=ds.path, field=ds.label or "y") from None


def audit(
    config: GarrisonConfig,
    *,
    registry: CheckRegistry | None = None,
    progress: Progress | None = None,
    triage: Triage | None = None,
    baseline: Report | None = None,
    allow_factory: bool = True,
    today: dt.date | None = None,
) -> Report:
    """Load model and data from ``config``, run every enabled check, and evaluate the policy."""
    from garrison.adapters.loading import load_classifier
    from garrison.data import load_datasets

    if config.model is None:
        raise ConfigError(
            "`model` is required to audit (this config has no model section)", path=config.source, key="model"
        )
    model_cfg = config.model
    started = dt.datetime.now(dt.UTC)
    planned = plan_checks(config.checks, registry=registry, config_path=config.source)
    sources = {role: src for role, src in (("train", config.data.train), ("test", config.data.test)) if src}
    datasets = (
        load_datasets(sources, base_dir=config.base_dir, overrides=config.data.features) if sources else {}
    )
    reference = datasets.get("test") or datasets.get("train")
    try:
        model: Classifier | None = load_classifier(
            model_cfg,
            base_dir=config.base_dir,
            sample_shape=tuple(reference.x.shape[1:]) if reference is not None else None,
            codec=reference.codec if reference is not None else None,
            feature_names=reference.schema.names() if reference is not None else None,
            allow_factory=allow_factory,
            trusted_types=config.scan.allowlist,
        )
    except ModelInputMismatchError as exc:
        if exc.path is not None or reference is None:
            raise
        raise ModelInputMismatchError(exc.reason, path=reference.path, field=exc.field) from exc
    except ScanBlockedError as exc:
        # the artifact stage still runs and reports what the scan found; model checks are skipped
        model, blocked = None, exc.reason
    else:
        blocked = None
    artifacts: list[ArtifactDigest] = []
    model_path = config.resolve(model_cfg.path) if model_cfg.path else None
    if model_path is not None:
        artifacts.append(_sha256_artifact("model", model_path))
    if model_cfg.weights:
        artifacts.append(_sha256_artifact("weights", config.resolve(model_cfg.weights)))
    for role, src in sources.items():
        artifacts.append(_sha256_artifact(role, config.resolve(src.path)))
    model_digest = next((a.sha256 for a in artifacts if a.role in ("model", "weights")), None)
    ctx = AuditContext(
        model=model,
        test=datasets.get("test"),
        train=datasets.get("train"),
        artifacts=tuple(Path(a.path) for a in artifacts if a.role in ("model", "weights")),
        seed=config.seed,
        progress=progress or NullProgress(),
        config=config,
        model_subject=Subject(
            SubjectKind.MODEL,
            model_cfg.name,
            model_path.as_posix() if model_path is not None else model_cfg.url,
            model_digest,
        ),
    )
    if model is not None:
        _check_model_fits_data(ctx)
    results = run_checks(planned, ctx)
    if blocked is not None:
        results = tuple(
            replace(r, reason=f"model not loaded: {blocked}")
            if r.status is CheckStatus.SKIPPED and r.reason and "model" in r.reason
            else r
            for r in results
        )
    run = RunInfo(
        project=config.project,
        model_name=model_cfg.name,
        started_at=started.isoformat(timespec="seconds"),
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        seed=config.seed,
        garrison_version=garrison.__version__,
        python=sys.version.split()[0],
        platform=platform.platform(terse=True),
        packages=_packages(),
        config=config.redacted(),
        config_path=config.source,
        artifacts=tuple(artifacts),
    )
    report = Report(run=run, results=results)
    return replace(report, decision=evaluate(report, config.policy, triage, today=today, baseline=baseline))
