"""The ``explain`` check: why the model decides, where it does worse, and whether its explanations hold.

On a seeded sample of the test set (at most 50 rows against 20 background rows and 10 permutations per row when
the model can only be queried, since each row then costs hundreds of model calls) it computes attributions (:func:`garrison.explain.attributions`: SHAP for
scikit-learn trees and linear models, Captum for torch, budgeted permutation SHAP otherwise) and reports:

- the global importance figure (mean |attribution| per feature);
- leaky identifiers (GAR-XP-001): a feature that carries most of the decision and looks like an id or row number;
- explanation stability (GAR-XP-002): the share of rows whose attributions reorder under 1 % noise;
- slices (GAR-XP-003): categories, feature ranges and sensitive attributes where accuracy, or calibration (the
  top-label Brier score, ``(confidence - correct)²`` per row), is significantly worse than on the rest (Wilson or t
  intervals, Fisher's or Welch's test, Benjamini–Hochberg across slices), on the whole test set;
- group fairness (GAR-XP-004) for each named ``sensitive`` feature of a binary task: the demographic parity ratio
  below 0.8 (the four-fifths rule) is a finding; every rate and gap is a metric;
- a per-class summary and, for image inputs, attribution heat maps of representative and misclassified rows;
- trigger localisation (GAR-XP-005) for image inputs, on ``data.train`` (where poisoned rows are): a class whose
  rows' few most attributed pixels, pasted into other inputs, hijack them (:func:`garrison.explain.localise_triggers`).

Explanations can be fooled (Slack et al. 2020): these findings add evidence, they are not a control on their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from garrison.audit.checks.explain_figures import (
    class_summary_figure,
    heat_map_figure,
    importance_figure,
    trigger_figure,
)
from garrison.audit.checks.slicing import ACCURACY, CALIBRATION, dataset_columns, slice_output
from garrison.audit.context import AuditContext
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import get_rule
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

if TYPE_CHECKING:
    pass

__all__ = ["ExplainCheck"]

RULE_LEAKY = "GAR-XP-001"
RULE_UNSTABLE = "GAR-XP-002"
RULE_FAIRNESS = "GAR-XP-004"
RULE_TRIGGER = "GAR-XP-005"
_FOUR_FIFTHS = 0.8
_BLACK_BOX_ROWS = 50  # rows explained when only predict_proba is available
_BLACK_BOX_BACKGROUND = 20
_PERMUTATIONS = 10  # antithetic permutations per row (each costs 2 × features + 1 evaluations)


class ExplainCheck:
    """Attributions, leaky identifiers, explanation stability, weak slices, group fairness and trigger regions."""

    id: ClassVar[str] = "explain"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = (
        "Explainability: global feature importance, leaky identifiers, explanation stability under small noise, "
        "slices where accuracy is significantly worse, group fairness for named sensitive attributes, and "
        "backdoor trigger regions localised from attributions (image inputs)."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "rows": Spec("int", default=200, ge=10, doc="test rows explained (a seeded sample)"),
        "method": Spec("str", default="auto", doc="attribution method (auto, tree, linear, permutation, integrated-gradients, ...)"),
        "sensitive": Spec("list", default=None, nullable=True, doc="features whose groups get fairness metrics and slices"),
        "stability_rows": Spec("int", default=50, ge=0, doc="rows checked for explanation stability (0: off)"),
        "stability_threshold": Spec("float", default=0.8, ge=-1, le=1, doc="rank correlation below which a row is unstable"),
        "unstable_share": Spec("float", default=0.25, ge=0, le=1, doc="share of unstable rows that is a finding"),
        "leak_share": Spec("float", default=0.5, gt=0, le=1, doc="importance share an identifier needs to be flagged"),
        "min_slice": Spec("int", default=30, ge=5, doc="smallest slice tested"),
        "alpha": Spec("float", default=0.05, gt=0, le=0.5, doc="false discovery rate across slices"),
        "trigger_rows": Spec("int", default=300, ge=0, doc="training rows per class scanned for a trigger region (0: off)"),
    }  # fmt: skip

    def __init__(
        self,
        *,
        rows: int = 200,
        method: str = "auto",
        sensitive: list[str] | None = None,
        stability_rows: int = 50,
        stability_threshold: float = 0.8,
        unstable_share: float = 0.25,
        leak_share: float = 0.5,
        min_slice: int = 30,
        alpha: float = 0.05,
        trigger_rows: int = 300,
    ) -> None:
        self.rows = rows
        self.method = method
        self.sensitive = sensitive
        self.stability_rows = stability_rows
        self.stability_threshold = stability_threshold
        self.unstable_share = unstable_share
        self.leak_share = leak_share
        self.min_slice = min_slice
        self.alpha = alpha
        self.trigger_rows = trigger_rows

    def run(self, ctx: AuditContext) -> CheckResult:
        from garrison.data.labels import encode_labels
        from garrison.explain import Explainer, explanation_stability, leaky_features

        model, test = ctx.model, ctx.test
        if model is None or test is None or test.y is None or len(test) < 10:
            return CheckResult(
                self.id,
                self.stage,
                CheckStatus.SKIPPED,
                reason="needs a model and at least 10 labelled test rows",
            )
        names = list(test.schema.names())
        missing = [s for s in self.sensitive or () if s not in names]
        if missing:
            return CheckResult(self.id, self.stage, CheckStatus.ERROR,
                               error=f"`sensitive` names features the test set does not have: {', '.join(missing)}")  # fmt: skip
        start = time.perf_counter()
        x = np.asarray(test.x)
        rng = ctx.rng(self.id)
        remaining = ctx.budget.remaining
        budget = 0.4 * remaining if math.isfinite(remaining) else None
        explainer = Explainer(model, background=x, method=self.method, budget_s=budget, seed=ctx.seed)
        black_box = explainer.route == "permutation"
        if black_box:  # every row costs max_evals × background model calls (over HTTP for a remote model)
            n_features = int(np.prod(x.shape[1:]))
            explainer = Explainer(model, background=x, method=self.method, budget_s=budget, seed=ctx.seed,
                                  max_background=_BLACK_BOX_BACKGROUND,
                                  max_evals=min(500, _PERMUTATIONS * (2 * n_features + 1)))  # fmt: skip
        n_rows = min(self.rows, _BLACK_BOX_ROWS) if black_box else self.rows
        picked = np.sort(rng.choice(len(x), size=min(n_rows, len(x)), replace=False))
        task = ctx.progress.task("explain: attributions", total=None)
        result = explainer.explain(x[picked])
        task.done()
        ctx.budget.check()
        subject = ctx.model_subject
        importance = result.global_importance()
        share = importance / importance.sum() if importance.sum() > 0 else importance
        metrics = [
            Metric("top_feature_share", float(share.max()) if len(share) else 0.0, n=len(picked),
                   description=f"share of the mean |attribution| carried by the most important feature ({result.method})"),
        ]  # fmt: skip
        labels = encode_labels(np.asarray(test.y), model.classes, int(model.n_classes))
        class_names = list(model.classes or range(model.n_classes))
        image = test.records is None and x.ndim > 2
        figures = [
            importance_figure(names, importance, result.method, result.output),
            class_summary_figure(result, labels[picked], names, class_names),
            *(Figure("explain-note", "Note", caption=n) for n in result.notes),
        ]
        if image:
            picked_proba = np.asarray(model.predict_proba(x[picked]))
            figures.append(heat_map_figure(x[picked], result, labels[picked], picked_proba, class_names))
        findings: list[Finding] = []
        leaks = leaky_features(result.values, x[picked], feature_names=names, share_threshold=self.leak_share)
        for leak in leaks.flagged:
            findings.append(get_rule(RULE_LEAKY).finding(
                subject=subject, location=f"feature {leak.feature}", check_id=self.id,
                message=f"{leak.feature} carries {100 * leak.share:.0f} % of the decision and looks like an "
                f"identifier ({leak.identifier}: {100 * leak.unique_ratio:.0f} % distinct values, rank correlation "
                f"with the row order {leak.order_correlation:+.2f}).",
                evidence=leak.to_dict(),
            ))  # fmt: skip
        if black_box and self.stability_rows:
            figures.append(Figure("explain-note", "Note", caption="explanation stability skipped: the model is "
                                  "explained by sampling (permutation SHAP), whose own noise would dominate"))  # fmt: skip
        elif self.stability_rows:
            ctx.budget.check()
            subset = x[picked[: self.stability_rows]]
            fixed = result.target[: self.stability_rows]
            stability = explanation_stability(lambda rows: explainer.explain(rows, target=fixed).values, subset,
                                              threshold=self.stability_threshold, seed=ctx.seed)  # fmt: skip
            metrics.append(Metric("stability", stability.median_correlation, n=len(subset),
                                  description="median rank correlation of a row's attributions with those under 1 % noise"))  # fmt: skip
            if stability.unstable_share >= self.unstable_share:
                findings.append(get_rule(RULE_UNSTABLE).finding(
                    subject=subject, location="attributions", check_id=self.id,
                    message=f"{100 * stability.unstable_share:.0f} % of {len(subset)} rows reorder their attributions "
                    f"under 1 % noise (median rank correlation {stability.median_correlation:.2f}).",
                    evidence=stability.to_dict(),
                ))  # fmt: skip
        ctx.budget.check()
        probabilities = np.asarray(model.predict_proba(x))
        predictions = probabilities.argmax(axis=1)
        correct = predictions == labels
        columns = dataset_columns(test)
        if image:  # pixels are not meaningful slices
            figures.append(Figure("explain-note", "Note", caption="slices skipped: the inputs are images"))
        else:
            confidence = probabilities.max(axis=1)
            for what, values in ((ACCURACY, correct), (CALIBRATION, -((confidence - correct) ** 2))):
                slice_metrics, slice_findings, slice_figure = slice_output(
                    values, columns, what=what, subject=subject, check_id=self.id,
                    sensitive=self.sensitive or (), min_size=self.min_slice, alpha=self.alpha,
                )  # fmt: skip
                metrics.extend(slice_metrics)
                findings.extend(slice_findings)
                figures.append(slice_figure)
        for feature in self.sensitive or ():
            fair_metrics, fair_findings, note = self._fairness(
                labels, predictions, columns[feature], feature, subject
            )
            metrics.extend(fair_metrics)
            findings.extend(fair_findings)
            if note:
                figures.append(Figure("explain-note", "Note", caption=note))
        if image and self.trigger_rows:
            ctx.budget.check()
            note, trigger_findings, trigger_figures = self._triggers(ctx, explainer.route, subject)
            findings.extend(trigger_findings)
            figures.extend(trigger_figures)
            if note:
                figures.append(Figure("explain-note", "Note", caption=note))
        return CheckResult(self.id, self.stage, metrics=tuple(metrics), findings=tuple(findings),
                           figures=tuple(figures), duration_s=time.perf_counter() - start)  # fmt: skip

    def _triggers(
        self, ctx: AuditContext, route: str, subject: Any
    ) -> tuple[str | None, list[Finding], list[Figure]]:
        from garrison.explain import localise_triggers

        train, model = ctx.train, ctx.model
        assert model is not None
        if train is None:
            return (
                "trigger localisation skipped: it needs data.train (poisoned rows live in the training set)",
                [],
                [],
            )
        if route == "permutation":
            return ("trigger localisation skipped: the model is explained by sampling (permutation SHAP), too "
                    "slow for every training row"), [], []  # fmt: skip
        x = np.asarray(train.x)
        task = ctx.progress.task("explain: trigger localisation", total=model.n_classes)
        scan = localise_triggers(model, x, method=self.method, max_rows_per_class=self.trigger_rows, seed=ctx.seed,
                                 progress=lambda _stage, done, _total: task.advance() if done else None)  # fmt: skip
        task.done()
        findings = []
        for c in scan.flagged:
            where = (
                f"rows {c.box[0]}-{c.box[2]}, columns {c.box[1]}-{c.box[3]}"
                if c.box
                else ", ".join(scan.region_names(c.index))
            )
            findings.append(get_rule(RULE_TRIGGER).finding(
                subject=subject, location=f"class {c.label}", check_id=self.id,
                message=f"{c.hijacking} of {c.rows} training rows predicted as {c.label} ({100 * c.share:.0f} %) are "
                f"decided by {scan.top_k} features that, pasted into inputs of other classes, send at least "
                f"{100 * scan.fool_rate:.0f} % of them to {c.label}; other classes: at most "
                f"{100 * max((o.share for o in scan.classes if o.index != c.index), default=0.0):.0f} %. "
                f"Region: {where}.",
                evidence={**c.to_dict(), "top_k": scan.top_k, "hosts": scan.hosts, "method": scan.method,
                          "region_features": scan.region_names(c.index)},
            ))  # fmt: skip
        return None, findings, [trigger_figure(scan, x)]

    def _fairness(
        self, labels: np.ndarray, predictions: np.ndarray, groups: Any, feature: str, subject: Any
    ) -> tuple[list[Metric], list[Finding], str | None]:
        from garrison.core.errors import InputError
        from garrison.explain import group_fairness

        if len(np.unique(labels)) != 2:
            return [], [], f"fairness metrics for {feature} skipped: they need a binary task"
        try:
            report = group_fairness(labels, predictions, np.asarray(groups), positive=1, attribute=feature)
        except InputError as exc:
            return [], [], f"fairness metrics for {feature} skipped: {exc}"
        n = len(labels)
        metrics = [
            Metric(f"fairness.{feature}.demographic_parity_ratio", report.demographic_parity_ratio, n=n, higher_is_better=True,
                   description=f"lowest over highest selection rate across {feature} groups"),
            Metric(f"fairness.{feature}.equalized_odds_difference", report.equalized_odds_difference, n=n, higher_is_better=False,
                   description=f"largest TPR or FPR gap across {feature} groups"),
        ]  # fmt: skip
        findings = []
        if report.demographic_parity_ratio < _FOUR_FIFTHS:
            data = report.to_dict()
            findings.append(get_rule(RULE_FAIRNESS).finding(
                subject=subject, location=f"sensitive {feature}", check_id=self.id,
                message=f"Selection rates across {feature} groups differ: the lowest is "
                f"{100 * report.demographic_parity_ratio:.0f} % of the highest (four-fifths rule: 80 %).",
                evidence={"attribute": feature, "groups": data.get("groups"),
                          "demographic_parity_ratio": report.demographic_parity_ratio,
                          "equalized_odds_difference": report.equalized_odds_difference},
            ))  # fmt: skip
        return metrics, findings, None
