"""Adversarial robustness: how accurate the model stays when an attacker with budget ε tries to fool it.

The default evaluation is the attack ensemble of :func:`garrison.robustness.default_ensemble` (each sample keeps
its worst case), checked against gradient masking; when masking is suspected the robust accuracy includes the
adaptive attack (BPDA, EOT), never the flattering white-box number. ε is in the input's own units when every
feature shares one range (images in [0, 1]); otherwise (tabular data) each ε is a fraction of every feature's
range, and attacks respect the schema (bounds, integer and categorical features, immutable ones).

Metrics: ``clean_accuracy``, ``robust_accuracy@<eps>`` per ε, ``robust_accuracy`` (at the middle ε of the sorted
list), ``attack_success_rate`` (at the middle ε, among correctly classified samples) and
``median_min_perturbation``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from garrison.audit.checks.slicing import ROBUST_ACCURACY, dataset_columns, slice_output
from garrison.audit.context import AuditContext
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import ROBUST_GRADIENT_MASKING, ROBUST_SELFTEST_FAILED
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage
from garrison.data import encode_labels

if TYPE_CHECKING:
    from garrison.data import Dataset
    from garrison.robustness.evaluate import RobustnessEvaluation

__all__ = ["RobustnessCheck", "threat_bounds"]

_GRID_EXAMPLES = 6


def threat_bounds(dataset: Dataset) -> tuple[np.ndarray, np.ndarray, Any, bool]:
    """``(lower, upper, project, uniform)`` for attacks on ``dataset``: the schema's bounds (observed data where a
    bound is infinite), its projection when a feature is discrete or immutable, and whether every feature shares
    one range."""
    from garrison.data import FeatureKind

    schema = dataset.schema
    lower, upper = schema.bounds()
    x = np.asarray(dataset.x, dtype=np.float64).reshape((len(dataset.x), *lower.shape))
    if len(x):
        lower = np.where(np.isfinite(lower), lower, np.nanmin(x, axis=0))
        upper = np.where(np.isfinite(upper), upper, np.nanmax(x, axis=0))
    constrained = any(f.kind is not FeatureKind.NUMERIC or f.immutable for f in schema.features)

    def project(x_adv: np.ndarray, x_orig: np.ndarray) -> np.ndarray:
        return schema.project(x_adv, original=x_orig)

    uniform = bool(np.ptp(lower) == 0 and np.ptp(upper) == 0 and not constrained)
    return lower, upper, project if constrained else None, uniform


class RobustnessCheck:
    """Robust accuracy against the default attack ensemble at several ε, with gradient-masking diagnostics."""

    id: ClassVar[str] = "robustness"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"model", "test"})
    description: ClassVar[str] = (
        "Adversarial robustness: clean and robust accuracy per ε (Wilson intervals), per class, attack success "
        "rate and median minimal perturbation against the default attack ensemble; flags suspected gradient "
        "masking and reports the adaptive (BPDA/EOT) result instead; self-tests the attacks."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "eps": Spec("list", default=None, nullable=True, doc="attack radii, default [0.03, 0.1, 0.3] "
                    "(fractions of each feature's range for tabular data)"),
        "norm": Spec("str", default="linf", choices=("linf", "l2"), doc="threat-model norm"),
        "n_samples": Spec("int", default=100, ge=1, doc="test rows evaluated (a seeded sample)"),
        "attacks": Spec("str", default="auto", choices=("auto", "full"), doc="auto: the default ensemble on "
                        "white-box models, Square on black-box ones; full: the default ensemble on both (adds "
                        "HopSkipJump, slow on black-box models)"),
        "steps": Spec("int", default=50, ge=1, doc="iterations of each white-box attack"),
        "queries": Spec("int", default=100, ge=1, doc="queries per sample of each black-box attack"),
        "min_perturbation": Spec("bool", default=True, doc="bisect for the median minimal perturbation"),
        "selftest": Spec("bool", default=True, doc="run the attack self-tests (planted adversarial examples)"),
    }  # fmt: skip

    def __init__(
        self,
        *,
        eps: list[float] | None = None,
        norm: str = "linf",
        n_samples: int = 100,
        attacks: str = "auto",
        steps: int = 50,
        queries: int = 100,
        min_perturbation: bool = True,
        selftest: bool = True,
    ) -> None:
        self.eps = [0.03, 0.1, 0.3] if eps is None else list(eps)
        self.norm = norm
        self.n_samples = n_samples
        self.attacks = attacks
        self.steps = steps
        self.queries = queries
        self.min_perturbation = min_perturbation
        self.selftest = selftest

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.robustness import Ensemble, Square, default_ensemble
        from garrison.robustness.evaluate import evaluate_robustness

        model, test = ctx.model, ctx.test
        if model is None or test is None:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="needs a model and a test set"
            )
        if test.y is None or len(test.x) == 0:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="the test set has no labelled rows"
            )
        radii = sorted(float(e) for e in self.eps)
        if not radii or radii[0] < 0:
            return CheckResult(self.id, self.stage, CheckStatus.ERROR, error="`eps` must list radii >= 0")
        ctx.budget.check()
        rng = ctx.rng(self.id)
        n_classes = int(model.n_classes)
        idx = np.arange(len(test.x))
        if len(idx) > self.n_samples:
            idx = np.sort(rng.choice(idx, self.n_samples, replace=False))
        x = np.array(test.x[idx], dtype=np.float64)
        y = np.asarray(encode_labels(np.asarray(test.y)[idx], model.classes, n_classes), dtype=np.int64)
        lower, upper, project, uniform = threat_bounds(test)
        unit = "absolute" if uniform else "range"
        bounds: dict[str, Any] = (
            {"lower": float(lower.flat[0]), "upper": float(upper.flat[0])}
            if uniform
            else {"lower": lower, "upper": upper}
        )
        white_box = uniform and getattr(model, "torch_module", None) is not None
        if white_box or self.attacks == "full":
            ensemble = default_ensemble(
                model if white_box else _BlackBox(model), n_classes, steps=self.steps, queries=self.queries
            )
        else:
            ensemble = Ensemble([Square(queries=self.queries)], name="square")
        deadline = time.monotonic() + ctx.budget.remaining if math.isfinite(ctx.budget.remaining) else None
        task = ctx.progress.task("robustness: attacking", total=len(radii))
        evaluation = evaluate_robustness(
            model, x, y, eps=radii, norm=self.norm, project=project, eps_unit=unit,  # type: ignore[arg-type]
            attacks=ensemble, min_perturbation=self.min_perturbation, bisection_rounds=3, seed=ctx.seed, deadline=deadline,
            progress=lambda stage, done, total: task.advance(1) if stage == "attacking" and done else None,
            **bounds,
        )  # fmt: skip
        task.done()
        ctx.budget.check()
        findings = list(self._masking_findings(ctx, evaluation))
        if self.selftest and white_box:
            findings.extend(self._selftest_findings(ctx, ensemble, x, radii, bounds, n_classes))
        metrics = _metrics(evaluation, radii)
        figures = _figures(evaluation, radii, test.schema.sample_shape)
        middle = radii[len(radii) // 2]
        if x.ndim == 2 and middle in evaluation.eps:  # tabular rows: where is robustness significantly worse?
            robust = evaluation.robust_correct[evaluation.eps.index(middle)]
            slice_metrics, slice_findings, slice_figure = slice_output(
                robust, dataset_columns(test, idx), what=ROBUST_ACCURACY, subject=ctx.model_subject,
                check_id=self.id, min_size=min(30, max(5, len(idx) // 4)),
            )  # fmt: skip
            metrics.extend(slice_metrics)
            findings.extend(slice_findings)
            figures.append(slice_figure)
        return CheckResult(
            self.id,
            self.stage,
            metrics=tuple(metrics),
            findings=tuple(findings),
            figures=tuple(figures),
            partial=evaluation.partial,
        )

    def _masking_findings(self, ctx: AuditContext, evaluation: RobustnessEvaluation) -> list[Finding]:
        diagnosis = evaluation.masking
        if diagnosis is None or not diagnosis.suspected:
            return []
        fired = [s for s in diagnosis.signals if s.fired]
        evidence: dict[str, Any] = {
            "signals": ", ".join(s.name for s in fired),
            "n": diagnosis.n,
            **{f"{s.name}.{k}": round(v, 6) for s in fired for k, v in sorted(s.values.items())},
        }
        if evaluation.white_box_robust_accuracy is not None:
            evidence["white_box_robust_accuracy"] = [
                round(v, 6) for v in evaluation.white_box_robust_accuracy
            ]
            evidence["reported_robust_accuracy"] = [round(p.robust_accuracy, 6) for p in evaluation.curve]
        return [
            ROBUST_GRADIENT_MASKING.finding(
                subject=ctx.model_subject,
                location="robustness",
                check_id=self.id,
                message="Gradient masking suspected: " + "; ".join(s.detail for s in fired) + ".",
                evidence=evidence,
            )
        ]

    def _selftest_findings(
        self,
        ctx: AuditContext,
        ensemble: Any,
        x: np.ndarray,
        radii: list[float],
        bounds: dict[str, Any],
        n_classes: int,
    ) -> list[Finding]:
        from garrison.robustness import ThreatModel, run_selftest

        threat = ThreatModel(self.norm, radii[len(radii) // 2], **bounds)  # type: ignore[arg-type]
        findings = []
        for attack in getattr(ensemble, "attacks", [ensemble]):
            ctx.budget.check()
            result = run_selftest(attack, x, threat, n_classes=n_classes, n_samples=8, seed=ctx.seed)
            if not result.passed:
                findings.append(
                    ROBUST_SELFTEST_FAILED.finding(
                        subject=ctx.model_subject,
                        location=f"attack:{result.attack}",
                        check_id=self.id,
                        message=result.detail,
                        evidence={
                            "attack": result.attack,
                            "success_rate": result.success_rate,
                            "n_samples": result.n_samples,
                        },
                    )
                )
        return findings


class _BlackBox:
    """A classifier seen through ``predict_proba`` only (the default ensemble then picks black-box attacks)."""

    def __init__(self, model: Any) -> None:
        self.name = model.name
        self.n_classes = model.n_classes
        self.input_spec = model.input_spec
        self.classes = model.classes
        self.predict_proba = model.predict_proba


def _metrics(evaluation: RobustnessEvaluation, radii: list[float]) -> list[Metric]:
    n = evaluation.n
    unit = "" if evaluation.eps_unit == "absolute" else " (fraction of each feature's range)"
    metrics = [
        Metric("n", float(n), n=n, description="test rows evaluated"),
        Metric("clean_accuracy", evaluation.clean_accuracy, n, *evaluation.clean_ci, higher_is_better=True,
               description="accuracy without attack (Wilson 95 % interval)"),
    ]  # fmt: skip
    curve = evaluation.curve
    for point in curve:
        metrics.append(
            Metric(f"robust_accuracy@{point.eps:g}", point.robust_accuracy, n, *point.ci, higher_is_better=True,
                   description=f"accuracy under the strongest attack found within {evaluation.norm} "
                   f"ε={point.eps:g}{unit} (Wilson 95 % interval)")
        )  # fmt: skip
    middle = curve[len(curve) // 2]
    metrics.append(
        Metric("robust_accuracy", middle.robust_accuracy, n, *middle.ci, higher_is_better=True,
               description=f"robust accuracy at the middle ε of the list ({middle.eps:g})")
    )  # fmt: skip
    success_lo, success_hi = middle.success_ci
    metrics.append(
        Metric("attack_success_rate", middle.success_rate, middle.clean, success_lo, success_hi,
               higher_is_better=False, description=f"share of correctly classified rows fooled at ε={middle.eps:g}")
    )  # fmt: skip
    median = evaluation.median_min_perturbation
    if not math.isnan(median):
        metrics.append(
            Metric("median_min_perturbation", median, int(evaluation.clean_correct.sum()), higher_is_better=True,
                   description=f"smallest {evaluation.norm} ε fooling half the correctly classified rows (bisection, "
                   f"capped at 2 × {max(radii):g}; infinite beyond)")
        )  # fmt: skip
    return metrics


def _figures(
    evaluation: RobustnessEvaluation, radii: list[float], sample_shape: tuple[int, ...]
) -> list[Figure]:
    from garrison.robustness.figures import accuracy_curve_svg, example_grid_svg

    curve = evaluation.curve
    rows = tuple(p.to_dict() for p in curve)
    figures = [
        Figure(
            "robustness-curve",
            "Robust accuracy against ε",
            svg=accuracy_curve_svg(
                [p.eps for p in curve],
                [p.robust_accuracy for p in curve],
                [p.ci[0] for p in curve],
                [p.ci[1] for p in curve],
                clean=evaluation.clean_accuracy,
            ),
            table=rows,
            columns=("eps", "n", "robust_accuracy", "ci_low", "ci_high", "success_rate"),
            caption=f"{evaluation.norm} threat model; attacks: {', '.join(evaluation.attacks)}; the band is the "
            "Wilson 95 % interval",
        ),
        Figure(
            "robustness-classes",
            "Robust accuracy per class",
            table=tuple(evaluation.per_class(curve[len(curve) // 2].eps)),
            columns=("class", "support", "clean_accuracy", "robust_accuracy", "ci_low", "ci_high"),
        ),
    ]
    images = len(sample_shape) >= 2 and evaluation.examples is not None
    if images and evaluation.examples is not None:
        original, adversarial = evaluation.examples
        fooled = np.flatnonzero(evaluation.clean_correct & np.any(original != adversarial, axis=tuple(
            range(1, original.ndim))))[:_GRID_EXAMPLES]  # fmt: skip
        if len(fooled):
            shape = (len(fooled), *sample_shape)
            figures.append(
                Figure(
                    "robustness-examples",
                    "Adversarial examples",
                    svg=example_grid_svg(original[fooled].reshape(shape), adversarial[fooled].reshape(shape)),
                    caption="originals, perturbations (scaled, mid-grey is zero) and adversarial examples at the "
                    "middle ε",
                )
            )
    return figures
