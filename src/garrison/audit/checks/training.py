"""The ``training`` stage: is the training data sound, and does the model carry a backdoor?

Three parts, each on by default and each skipped with a reason when its inputs are missing:

1. data integrity of ``data.train`` (exact and near duplicates, leakage into ``data.test``, conflicting labels,
   class imbalance, cleanlab label issues from out-of-fold probabilities) — :func:`garrison.poisoning.check_integrity`;
2. poison and backdoor detection in ``data.train`` (spectral signatures and activation clustering on a torch model's
   penultimate layer, the nearest-neighbour method otherwise) — :func:`garrison.poisoning.scan_training_set`;
3. trigger reverse-engineering of a torch model on a clean sample of ``data.test`` (Neural Cleanse) —
   :func:`garrison.poisoning.reverse_engineer_triggers`.

The finding builders are public so that ``garrison data scan`` reports exactly what the audit reports.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from garrison.audit.context import AuditContext
from garrison.core.errors import InputError
from garrison.core.findings import Finding, Subject
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import get_rule
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

if TYPE_CHECKING:
    from garrison.poisoning import IntegrityReport, NeuralCleanseResult, PoisonScan

__all__ = [
    "RULE_CONFLICTING_LABELS",
    "RULE_DUPLICATES",
    "RULE_IMBALANCE",
    "RULE_LABEL_ISSUES",
    "RULE_LEAKAGE",
    "RULE_MODEL_BACKDOOR",
    "RULE_POISONED_CLASS",
    "TrainingCheck",
    "backdoor_metrics",
    "backdoor_outputs",
    "integrity_findings",
    "integrity_metrics",
    "poison_outputs",
]

RULE_DUPLICATES = "GAR-DI-001"
RULE_LEAKAGE = "GAR-DI-002"
RULE_CONFLICTING_LABELS = "GAR-DI-003"
RULE_IMBALANCE = "GAR-DI-004"
RULE_LABEL_ISSUES = "GAR-DI-005"
RULE_POISONED_CLASS = "GAR-BD-001"
RULE_MODEL_BACKDOOR = "GAR-BD-002"

_LISTED = 1000  # row indices listed in a finding's evidence at most (the count is always complete)


def integrity_metrics(report: IntegrityReport) -> list[Metric]:
    """The integrity measurements as metrics a policy can put thresholds on."""
    n = report.n_rows
    metrics = [
        Metric("duplicate_rows", float(report.duplicate_rows), n=n, higher_is_better=False,
               description="training rows that repeat an earlier row exactly"),
        Metric("near_duplicate_groups", float(len(report.near_duplicates)), n=n, higher_is_better=False,
               description=f"groups of distinct rows within {report.near_tolerance:g} standard deviations (RMS per feature)"),
        Metric("conflicting_label_groups", float(len(report.conflicting_labels)), n=n, higher_is_better=False,
               description="groups of identical rows that carry different labels"),
        Metric("imbalance_ratio", report.imbalance_ratio, n=n, higher_is_better=False,
               description="rows of the largest class over rows of the smallest"),
    ]  # fmt: skip
    if report.n_test_rows:
        metrics.append(Metric("leaked_test_rows", float(report.leaked_test_rows), n=report.n_test_rows,
                              higher_is_better=False,
                              description="test rows equal or nearly equal to a training row"))  # fmt: skip
    if report.label_issues is not None:
        metrics.append(Metric("label_issue_rate", len(report.label_issues.indices) / n, n=n, higher_is_better=False,
                              description=f"share of training rows cleanlab finds likely mislabelled ({report.label_issues.source})"))  # fmt: skip
    return metrics


def integrity_findings(
    report: IntegrityReport, subject: Subject, *, check_id: str, imbalance_ratio: float = 10.0
) -> Iterator[Finding]:
    """One finding per kind of integrity problem found, row indices (capped at 1000) in the evidence."""
    classes = [_plain(c) for c in report.classes]
    if report.exact_duplicates or report.near_duplicates:
        rows = sorted({i for g in report.exact_duplicates for i in g[1:]})
        yield get_rule(RULE_DUPLICATES).finding(
            subject=subject, location="rows", check_id=check_id,
            message=f"{report.duplicate_rows} of {report.n_rows} training rows repeat an earlier row exactly; "
            f"{_count(len(report.near_duplicates), 'group')} of rows are near duplicates.",
            evidence={"indices": rows[:_LISTED], "count": len(rows),
                      "exact_groups": report.exact_duplicates[:_LISTED],
                      "near_groups": report.near_duplicates[:_LISTED], "near_tolerance": report.near_tolerance},
        )  # fmt: skip
    if report.leakage_exact or report.leakage_near:
        tests = sorted({t for _, t in report.leakage_exact} | {t for _, t in report.leakage_near})
        yield get_rule(RULE_LEAKAGE).finding(
            subject=subject, location="test rows", check_id=check_id,
            message=f"{report.leaked_test_rows} of {report.n_test_rows} test rows equal or nearly equal a training "
            f"row ({len(report.leakage_exact)} exact).",
            evidence={"test_indices": tests[:_LISTED], "count": len(tests),
                      "exact_pairs": [list(p) for p in report.leakage_exact[:_LISTED]],
                      "near_pairs": [list(p) for p in report.leakage_near[:_LISTED]]},
        )  # fmt: skip
    if report.conflicting_labels:
        rows = sorted(i for g in report.conflicting_labels for i in g)
        yield get_rule(RULE_CONFLICTING_LABELS).finding(
            subject=subject, location="labels", check_id=check_id,
            message=f"{_count(len(report.conflicting_labels), 'group')} of identical training rows carry different labels.",
            evidence={"indices": rows[:_LISTED], "count": len(rows), "groups": report.conflicting_labels[:_LISTED]},
        )  # fmt: skip
    if report.imbalance_ratio >= imbalance_ratio:
        counts = {str(c): int(n) for c, n in zip(classes, report.class_counts, strict=True)}
        yield get_rule(RULE_IMBALANCE).finding(
            subject=subject, location="classes", check_id=check_id,
            message=f"The largest class has {report.imbalance_ratio:.1f}× the rows of the smallest.",
            evidence={"imbalance_ratio": round(report.imbalance_ratio, 3), "class_counts": counts},
        )  # fmt: skip
    issues = report.label_issues
    if issues is not None and len(issues.indices):
        yield get_rule(RULE_LABEL_ISSUES).finding(
            subject=subject, location="labels", check_id=check_id,
            message=f"{len(issues.indices)} of {report.n_rows} training rows are likely mislabelled "
            f"(cleanlab, {issues.source}).",
            evidence={"indices": [int(i) for i in issues.indices[:_LISTED]], "count": len(issues.indices),
                      "quality": [round(float(q), 4) for q in issues.quality[:_LISTED]],
                      "suggested_labels": [classes[s] for s in issues.suggested[:_LISTED]]},
        )  # fmt: skip


class TrainingCheck:
    """Data integrity and poison detection on the training set; a backdoor scan of a torch model."""

    id: ClassVar[str] = "training"
    stage: ClassVar[Stage] = Stage.TRAINING
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = (
        "Training data and training outcome: duplicates, train/test leakage, conflicting labels, class imbalance and "
        "label issues (cleanlab); poisoned classes in the training set (spectral signatures and activation "
        "clustering on a torch model's penultimate layer, nearest-neighbour label disagreement otherwise); and a "
        "backdoor scan of a torch model by trigger reverse-engineering (Neural Cleanse)."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "integrity": Spec("bool", default=True, doc="run the data-integrity checks"),
        "label_issues": Spec("bool", default=True, doc="look for label issues with cleanlab (out-of-fold probabilities)"),
        "near_tolerance": Spec("float", default=0.05, ge=0, le=1,
                               doc="near duplicates: RMS difference per feature, in standard deviations"),
        "imbalance_ratio": Spec("float", default=10.0, ge=1, doc="largest-to-smallest class ratio that is a finding"),
        "poison_scan": Spec("bool", default=True, doc="look for poisoned classes in the training set"),
        "method": Spec("str", default="auto", choices=("auto", "spectral-clustering", "knn"),
                       doc="poison detector (auto: spectral-clustering with a torch model, knn otherwise)"),
        "layer": Spec("str", default=None, nullable=True,
                      doc="torch submodule whose output is the representation (default: the penultimate layer)"),
        "backdoor_scan": Spec("bool", default=True, doc="reverse-engineer triggers of a torch model (Neural Cleanse)"),
        "clean_samples": Spec("int", default=200, ge=20, doc="clean test rows the backdoor scan optimises on"),
        "image_shape": Spec("list", default=None, nullable=True,
                            doc="(h, w) or (c, h, w) of flat image rows, for the backdoor scan"),
        "alpha": Spec("float", default=0.05, gt=0, le=0.5,
                      doc="backdoor scan: chance that a clean model has some class flagged (calibrates the threshold)"),
    }  # fmt: skip

    def __init__(
        self,
        *,
        integrity: bool = True,
        label_issues: bool = True,
        near_tolerance: float = 0.05,
        imbalance_ratio: float = 10.0,
        poison_scan: bool = True,
        method: str = "auto",
        layer: str | None = None,
        backdoor_scan: bool = True,
        clean_samples: int = 200,
        image_shape: list[int] | None = None,
        alpha: float = 0.05,
    ) -> None:
        self.integrity = integrity
        self.label_issues = label_issues
        self.near_tolerance = near_tolerance
        self.imbalance_ratio = imbalance_ratio
        self.poison_scan = poison_scan
        self.method = method
        self.layer = layer
        self.backdoor_scan = backdoor_scan
        self.clean_samples = clean_samples
        self.image_shape = image_shape
        self.alpha = alpha

    def run(self, ctx: AuditContext) -> CheckResult:
        train = ctx.train
        if train is None or train.y is None:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="needs a labelled training set (data.train)"
            )
        start = time.perf_counter()
        subject = ctx.dataset_subject("train")
        metrics: list[Metric] = []
        findings: list[Finding] = []
        figures: list[Figure] = []
        notes: list[str] = []
        if self.integrity:
            from garrison.poisoning import check_integrity

            ctx.budget.check()
            task = ctx.progress.task("training: data integrity", total=None)
            x_test = ctx.test.x if ctx.test is not None else None
            probabilities, note = self._model_probabilities(ctx) if self.label_issues else (None, None)
            if note:
                notes.append(note)
            try:
                report = check_integrity(train.x, train.y, x_test=x_test, near_tolerance=self.near_tolerance,
                                         label_issues=self.label_issues, probabilities=probabilities,
                                         probability_source="out-of-fold model (the audited estimator, refitted)",
                                         seed=ctx.seed)  # fmt: skip
            except InputError as exc:  # e.g. missing values, which the integrity tests cannot compare
                notes.append(f"data integrity skipped: {exc}")
            else:
                metrics.extend(integrity_metrics(report))
                findings.extend(
                    integrity_findings(
                        report, subject, check_id=self.id, imbalance_ratio=self.imbalance_ratio
                    )
                )
                figures.append(_class_table(report))
                notes.extend(report.notes)
            task.done()
        if self.poison_scan:
            ctx.budget.check()
            task = ctx.progress.task("training: poisoned classes", total=None)
            found = self._poison_scan(ctx)
            task.done()
            if isinstance(found, str):
                notes.append(found)
            else:
                metrics.extend(found[0])
                findings.extend(found[1])
                figures.append(found[2])
        if self.backdoor_scan:
            ctx.budget.check()
            scanned = self._backdoor_scan(ctx)
            if isinstance(scanned, str):
                notes.append(scanned)
            else:
                metrics.extend(scanned[0])
                findings.extend(scanned[1])
                figures.append(scanned[2])
        for note in notes:
            figures.append(Figure("training-note", "Note", caption=note))
        return CheckResult(
            self.id,
            self.stage,
            metrics=tuple(metrics),
            findings=tuple(findings),
            figures=tuple(figures),
            duration_s=time.perf_counter() - start,
        )

    def _model_probabilities(self, ctx: AuditContext) -> tuple[np.ndarray | None, str | None]:
        """Out-of-fold probabilities of the user's own scikit-learn model (cloned and refitted per fold) for the
        label-issue search; ``None`` (the default model) for other models, or with a note when refitting fails."""
        from garrison.poisoning.integrity import out_of_fold_probabilities

        model, train = ctx.model, ctx.train
        if (
            model is None
            or train is None
            or not hasattr(model, "estimator")
            or not hasattr(model, "model_input")
        ):
            return None, None
        _, codes, counts = np.unique(np.asarray(train.y), return_inverse=True, return_counts=True)
        if len(counts) < 2 or counts.min() < 5:
            return None, None
        try:
            probs = out_of_fold_probabilities(model.model_input(np.asarray(train.x)), codes, estimator=model.estimator,
                                              seed=ctx.seed)  # fmt: skip
        except (ValueError, TypeError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None, f"label issues use a logistic regression: refitting the model failed ({first})"
        return probs, None

    def _poison_scan(self, ctx: AuditContext) -> tuple[list[Metric], list[Finding], Figure] | str:
        """The training set scanned for poisoned classes; a note saying why not when it cannot run."""
        from garrison.poisoning import scan_training_set

        train = ctx.train
        assert train is not None
        assert train.y is not None
        module_model = ctx.model if getattr(ctx.model, "torch_module", None) is not None else None
        if self.method == "spectral-clustering" and module_model is None:
            return "poison scan skipped: method spectral-clustering needs a torch model"
        x = np.asarray(train.x)
        if self.image_shape and x.ndim == 2:
            x = x.reshape(len(x), *self.image_shape)
        classes, codes = np.unique(np.asarray(train.y), return_inverse=True)
        try:
            scan = scan_training_set(
                x, codes, model=module_model, layer=self.layer, method=self.method, seed=ctx.seed
            )
        except InputError as exc:
            return f"poison scan skipped: {exc}"
        return poison_outputs(
            scan, codes, ctx.dataset_subject("train"), check_id=self.id, class_names=classes
        )

    def _backdoor_scan(self, ctx: AuditContext) -> tuple[list[Metric], list[Finding], Figure] | str:
        """Neural Cleanse on a clean sample of the test set; a note saying why not when it cannot run."""
        import math

        from garrison.data.labels import encode_labels
        from garrison.poisoning import neural_cleanse

        model, test = ctx.model, ctx.test
        if model is None or getattr(model, "torch_module", None) is None:
            return "backdoor scan skipped: it needs a torch model (model.factory + weights)"
        if test is None or test.y is None or len(test) < 20:
            return "backdoor scan skipped: it needs at least 20 labelled clean rows in data.test"
        sample_shape = tuple(test.x.shape[1:])
        image_shape = tuple(self.image_shape) if self.image_shape else None
        if image_shape is None and len(sample_shape) not in (2, 3):
            return (
                "backdoor scan skipped: the inputs are not images; set checks.training.image_shape "
                "([h, w] or [c, h, w]) for flat image rows"
            )
        rng = ctx.rng(f"{self.id}:backdoor")
        idx = np.sort(rng.choice(len(test), size=min(self.clean_samples, len(test)), replace=False))
        n_classes = int(model.n_classes)
        y = encode_labels(np.asarray(test.y)[idx], model.classes, n_classes)
        remaining = ctx.budget.remaining
        deadline = time.monotonic() + 0.8 * remaining if math.isfinite(remaining) else None
        task = ctx.progress.task("training: reverse-engineering triggers", total=None)
        result = neural_cleanse(model, np.asarray(test.x)[idx], y=y, image_shape=image_shape, alpha=self.alpha,
                                seed=ctx.seed, deadline=deadline, progress=lambda *_: task.advance())  # fmt: skip
        task.done()
        return backdoor_outputs(result, ctx.model_subject, check_id=self.id, class_names=model.classes)


def poison_outputs(
    scan: PoisonScan, labels: np.ndarray, subject: Subject, *, check_id: str, class_names: Any = None
) -> tuple[list[Metric], list[Finding], Figure]:
    """Metrics, one finding per flagged class (its suspect rows under ``indices``), and the per-class table of a
    training-set poison scan of rows labelled ``labels`` (the integer labels the scan was given)."""
    names = list(class_names) if class_names is not None else None

    def name(label: int) -> str:
        return str(_plain(names[label])) if names is not None and label < len(names) else str(label)

    n = len(scan.scores)
    metrics = [
        Metric("poison.flagged_classes", float(len(scan.flagged_classes)), n=len(scan.classes), higher_is_better=False,
               description=f"classes whose rows split into a second population ({scan.method})"),
        Metric("poison.suspect_rows", float(len(scan.suspects)), n=n, higher_is_better=False,
               description="training rows judged poisoned (in flagged classes only)"),
    ]  # fmt: skip
    findings = []
    for summary in scan.classes:
        if not summary.flagged:
            continue
        rows = [int(i) for i in scan.suspects if labels[i] == summary.label]
        findings.append(
            get_rule(RULE_POISONED_CLASS).finding(
                subject=subject, location=f"class {name(summary.label)}", check_id=check_id,
                message=f"Class {name(summary.label)} holds a separate population of {summary.n_suspects} of its "
                f"{summary.n} rows ({' and '.join(summary.evidence)} evidence, z {summary.statistic:.1f} > "
                f"{summary.threshold:g}).",
                evidence={"indices": rows[:_LISTED], "count": len(rows),
                          "scores": [round(float(scan.scores[i]), 4) for i in rows[:_LISTED]],
                          "class": name(summary.label), "statistic": round(summary.statistic, 3),
                          "threshold": summary.threshold, "evidence": list(summary.evidence),
                          "method": scan.method, "representation": scan.representation},
            )
        )  # fmt: skip
    table = tuple(
        {"class": name(c.label), "rows": c.n, "z": None if not np.isfinite(c.statistic) else round(c.statistic, 3),
         "flagged": c.flagged, "suspects": c.n_suspects, "evidence": ", ".join(c.evidence)}
        for c in scan.classes
    )  # fmt: skip
    figure = Figure("training-poison", f"Poison scan per class ({scan.method})", table=table,
                    caption=f"A class is flagged when its evidence z exceeds the robust null across classes; "
                    f"representation: {scan.representation or 'input features'}.",
                    columns=("class", "rows", "z", "flagged", "suspects", "evidence"))  # fmt: skip
    return metrics, findings, figure


def backdoor_metrics(result: NeuralCleanseResult) -> list[Metric]:
    """The backdoor scan's measurements."""
    n = len(result.classes)
    smallest = int(np.argmin(result.mask_norms))
    return [
        Metric("backdoor.flagged_classes", float(len(result.flagged_classes)), n=n, higher_is_better=False,
               description="classes whose reversed trigger is anomalously small (Neural Cleanse)"),
        Metric("backdoor.anomaly_index", float(result.anomaly_index[smallest]), n=n, higher_is_better=False,
               description=f"anomaly index of the class with the smallest reversed trigger (flagged above {result.threshold:.2f})"),
    ]  # fmt: skip


def backdoor_outputs(
    result: NeuralCleanseResult, subject: Subject, *, check_id: str, class_names: Any = None
) -> tuple[list[Metric], list[Finding], Figure]:
    """Metrics, one finding per flagged class, and the per-class table of a Neural Cleanse result."""
    summary = result.to_dict()
    names = list(class_names) if class_names is not None else None

    def name(cls: int) -> str:
        return str(_plain(names[cls])) if names is not None and cls < len(names) else str(cls)

    findings = []
    for row in summary["classes"]:
        if not row["flagged"]:
            continue
        findings.append(
            get_rule(RULE_MODEL_BACKDOOR).finding(
                subject=subject, location=f"class {name(row['class'])}", check_id=check_id,
                message=f"A trigger of L1 size {row['mask_norm']:.1f} sends {100 * row['attack_success']:.0f} % of "
                f"other inputs to class {name(row['class'])}, against a median of {result.median_norm:.1f} for the "
                f"other classes (anomaly index {row['anomaly_index']:.1f} > {result.threshold:.2f}).",
                evidence={"class": name(row["class"]), "anomaly_index": row["anomaly_index"],
                          "mask_norm": row["mask_norm"], "median_norm": result.median_norm,
                          "attack_success": row["attack_success"], "mask_bbox": row["mask_bbox"],
                          "threshold": result.threshold, "partial": result.partial},
            )
        )  # fmt: skip
    table = tuple(
        {"class": name(r["class"]), "mask_norm": round(r["mask_norm"], 3), "anomaly_index": r["anomaly_index"]
         if isinstance(r["anomaly_index"], str) else round(r["anomaly_index"], 3),
         "attack_success": round(r["attack_success"], 3), "flagged": r["flagged"]}
        for r in summary["classes"]
    )  # fmt: skip
    figure = Figure("training-backdoor", "Reversed triggers per class (Neural Cleanse)", table=table,
                    caption=f"Flagged when the anomaly index of the (log) mask norm exceeds {result.threshold:.2f}, calibrated so that a "
                    "clean model passes with probability 1 - checks.training.alpha.",
                    columns=("class", "mask_norm", "anomaly_index", "attack_success", "flagged"))  # fmt: skip
    return backdoor_metrics(result), findings, figure


def _class_table(report: IntegrityReport) -> Figure:
    issues = report.label_issues
    per_class = np.zeros(len(report.classes), dtype=np.int64)
    if issues is not None:
        per_class = np.bincount(issues.given, minlength=len(report.classes))
    rows = [
        {"class": str(_plain(cls)), "rows": int(count), "label_issues": int(found)}
        for cls, count, found in zip(report.classes, report.class_counts, per_class, strict=True)
    ]
    return Figure(
        "training-classes", "Rows per class", table=tuple(rows), columns=("class", "rows", "label_issues")
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
