"""Performance sanity: accuracy, per-class recall, calibration and Brier score on the test set, with intervals.

Accuracy and recalls carry Wilson 95 % intervals; the expected calibration error (15 equal-mass top-label bins)
and the macro recall carry percentile intervals from a seeded bootstrap; the Brier score a normal interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from garrison.audit.checks.svg import reliability_diagram
from garrison.audit.context import AuditContext
from garrison.core.errors import ModelInputMismatchError
from garrison.core.findings import Finding
from garrison.core.metrics import Z95, Metric, wilson_interval
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import PERF_DEAD_CLASS
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage
from garrison.data import encode_labels

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier

__all__ = ["PerformanceCheck", "expected_calibration_error", "wilson_interval"]

_BOOTSTRAP_BUDGET_EVERY = 10


def _bin_sizes(n: int, n_bins: int) -> np.ndarray:
    """Sizes of ``min(n_bins, n)`` equal-mass bins over ``n`` sorted rows (the first ``n % k`` get one more)."""
    k = min(n_bins, n)
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    return sizes


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-mass bins: rows sorted by confidence (stable) are cut into ``n_bins`` bins of
    (nearly) equal size, and ``ECE = sum_b |b| / n * |accuracy_b - mean confidence_b|``. NaN for no rows."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    n = len(conf)
    if n == 0:
        return math.nan
    order = np.argsort(conf, kind="stable")
    starts = np.concatenate([[0], np.cumsum(_bin_sizes(n, n_bins))[:-1]])
    gap = np.add.reduceat(hit[order] - conf[order], starts)
    return float(np.abs(gap).sum() / n)


def _reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int
) -> list[dict[str, float | int]]:
    order = np.argsort(confidence, kind="stable")
    bins = []
    start = 0
    for i, size in enumerate(_bin_sizes(len(order), n_bins)):
        idx = order[start : start + size]
        start += size
        bins.append(
            {
                "bin": i,
                "n": int(size),
                "confidence_low": float(confidence[idx].min()),
                "confidence_high": float(confidence[idx].max()),
                "mean_confidence": float(confidence[idx].mean()),
                "accuracy": float(correct[idx].mean()),
            }
        )
    return bins


def _macro_recall(y: np.ndarray, correct: np.ndarray, n_classes: int) -> float:
    support = np.bincount(y, minlength=n_classes)
    hits = np.bincount(y[correct], minlength=n_classes)
    present = support > 0
    return float((hits[present] / support[present]).mean()) if present.any() else math.nan


def _finite_or_none(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


class PerformanceCheck:
    """Measure accuracy, per-class and macro recall, expected calibration error and Brier score on the test set."""

    id: ClassVar[str] = "performance"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"model", "test"})
    description: ClassVar[str] = (
        "Performance sanity on the test set: accuracy and per-class recall (Wilson intervals), macro recall, "
        "expected calibration error (equal-mass bins, bootstrap interval) and Brier score; flags classes that "
        "are never recognised."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "batch_size": Spec("int", default=1024, ge=1, doc="rows per predict_proba call"),
        "n_bins": Spec("int", default=15, ge=1, doc="equal-mass confidence bins of the calibration error"),
        "n_bootstrap": Spec("int", default=200, ge=0, doc="bootstrap resamples for intervals (0: none)"),
    }

    def __init__(self, *, batch_size: int = 1024, n_bins: int = 15, n_bootstrap: int = 200) -> None:
        self.batch_size = batch_size
        self.n_bins = n_bins
        self.n_bootstrap = n_bootstrap

    def run(self, ctx: AuditContext) -> CheckResult:
        model, test = ctx.model, ctx.test
        if model is None or test is None:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="needs a model and a test set"
            )
        n = len(test.x)
        if n == 0:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED, reason="the test set is empty")
        if test.y is None:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED, reason="the test set has no labels")
        n_classes = int(model.n_classes)
        y = np.asarray(encode_labels(test.y, model.classes, n_classes), dtype=np.int64)
        probs = self._predict(ctx, model, np.asarray(test.x), n_classes)

        pred = probs.argmax(axis=1)
        correct = pred == y
        confidence = probs.max(axis=1)
        labels = _label_names(model.classes, n_classes)
        support = np.bincount(y, minlength=n_classes)
        hits = np.bincount(y[correct], minlength=n_classes)

        ece = expected_calibration_error(confidence, correct, self.n_bins)
        macro = _macro_recall(y, correct, n_classes)
        ece_ci, macro_ci = self._bootstrap(ctx, y, confidence, correct, n_classes, ece, macro)
        onehot = np.eye(n_classes)[y]
        brier_rows = ((probs - onehot) ** 2).sum(axis=1)
        brier = float(brier_rows.mean())
        brier_half = Z95 * float(brier_rows.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan

        n_correct = int(correct.sum())
        metrics = [
            Metric("n", float(n), n=n, description="test rows evaluated"),
            Metric("accuracy", n_correct / n, n, *wilson_interval(n_correct, n), higher_is_better=True,
                   description="share of rows whose top class is the label (Wilson 95 % interval)"),
            Metric("macro_recall", macro, n, *macro_ci, higher_is_better=True,
                   description="mean recall over classes present in the test set (bootstrap 95 % interval)"),
            Metric("ece", ece, n, *ece_ci, higher_is_better=False,
                   description=f"expected calibration error, {self.n_bins} equal-mass top-label bins "
                   "(bootstrap 95 % percentile interval, widened to include the estimate)"),
            Metric("brier", brier, n, brier - brier_half, brier + brier_half, higher_is_better=False,
                   description="multiclass Brier score: squared error summed over classes, mean over rows"),
        ]  # fmt: skip
        for c in range(n_classes):
            if support[c]:
                metrics.append(
                    Metric(
                        f"recall.{labels[c]}",
                        int(hits[c]) / int(support[c]),
                        int(support[c]),
                        *wilson_interval(int(hits[c]), int(support[c])),
                        higher_is_better=True,
                        description=f"recall of class {labels[c]} (Wilson 95 % interval)",
                    )
                )

        bins = _reliability_bins(confidence, correct.astype(np.float64), self.n_bins)
        figures = (
            Figure(
                "performance-reliability",
                "Reliability diagram",
                svg=reliability_diagram(
                    [float(b["mean_confidence"]) for b in bins],
                    [float(b["accuracy"]) for b in bins],
                    [int(b["n"]) for b in bins],
                ),
                table=tuple(bins),
                columns=("bin", "n", "confidence_low", "confidence_high", "mean_confidence", "accuracy"),
                caption=f"{len(bins)} equal-mass bins of top-class confidence; the dashed diagonal is perfect "
                "calibration",
            ),
            Figure(
                "performance-classes",
                "Recall per class",
                table=tuple(_class_table(labels, support, hits)),
                columns=("class", "support", "correct", "recall", "ci_low", "ci_high"),
            ),
        )
        return CheckResult(
            self.id,
            self.stage,
            metrics=tuple(metrics),
            findings=tuple(self._dead_classes(ctx, labels, y, pred, support, hits)),
            figures=figures,
        )

    def _predict(self, ctx: AuditContext, model: Classifier, x: np.ndarray, n_classes: int) -> np.ndarray:
        task = ctx.progress.task("performance: predicting the test set", total=len(x))
        batches = []
        for start in range(0, len(x), self.batch_size):
            ctx.budget.check()
            batch = x[start : start + self.batch_size]
            p = np.asarray(model.predict_proba(batch), dtype=np.float64)
            if p.shape != (len(batch), n_classes):
                raise ModelInputMismatchError(
                    f"model returned probabilities of shape {p.shape} for a batch of {len(batch)} rows "
                    f"and {n_classes} classes"
                )
            batches.append(p)
            task.advance(len(batch))
        task.done()
        return np.concatenate(batches)

    def _bootstrap(
        self,
        ctx: AuditContext,
        y: np.ndarray,
        confidence: np.ndarray,
        correct: np.ndarray,
        n_classes: int,
        ece: float,
        macro: float,
    ) -> tuple[tuple[float | None, float | None], tuple[float | None, float | None]]:
        """Percentile 95 % intervals of ECE and macro recall over seeded bootstrap resamples, each widened to
        include its point estimate."""
        if self.n_bootstrap == 0:
            return (None, None), (None, None)
        rng = ctx.rng(self.id)
        n = len(y)
        eces = np.empty(self.n_bootstrap)
        macros = np.empty(self.n_bootstrap)
        for b in range(self.n_bootstrap):
            if b % _BOOTSTRAP_BUDGET_EVERY == 0:
                ctx.budget.check()
            idx = rng.integers(0, n, n)
            eces[b] = expected_calibration_error(confidence[idx], correct[idx], self.n_bins)
            macros[b] = _macro_recall(y[idx], correct[idx], n_classes)

        def interval(values: np.ndarray, estimate: float) -> tuple[float | None, float | None]:
            # ECE is biased upwards on small bins, and resampling adds to the bias: the percentile interval can
            # miss the estimate itself, so it is widened to include it.
            lo, hi = np.percentile(values, [2.5, 97.5])
            return _finite_or_none(min(float(lo), estimate)), _finite_or_none(max(float(hi), estimate))

        return interval(eces, ece), interval(macros, macro)

    def _dead_classes(
        self,
        ctx: AuditContext,
        labels: Sequence[str],
        y: np.ndarray,
        pred: np.ndarray,
        support: np.ndarray,
        hits: np.ndarray,
    ) -> Iterator[Finding]:
        for c, label in enumerate(labels):
            if support[c] >= 1 and hits[c] == 0:
                predicted = np.bincount(pred[y == c], minlength=len(labels))
                yield PERF_DEAD_CLASS.finding(
                    subject=ctx.model_subject,
                    location=f"class:{label}",
                    check_id=self.id,
                    message=f"None of the {int(support[c])} test rows of class {label} is predicted as {label}; "
                    f"most are predicted as {labels[int(predicted.argmax())]}.",
                    evidence={
                        "class": label,
                        "support": int(support[c]),
                        "recall": 0.0,
                        "predicted_as": {labels[i]: int(k) for i, k in enumerate(predicted) if k},
                    },
                )


def _label_names(classes: Sequence[object] | None, n_classes: int) -> list[str]:
    """Class labels as metric-name suffixes; indices when labels are missing or not distinct as text."""
    names = [str(c) for c in classes] if classes is not None and len(classes) == n_classes else []
    return names if len(set(names)) == n_classes else [str(i) for i in range(n_classes)]


def _class_table(labels: Sequence[str], support: np.ndarray, hits: np.ndarray) -> Iterator[dict[str, object]]:
    for c, label in enumerate(labels):
        n, k = int(support[c]), int(hits[c])
        lo, hi = wilson_interval(k, n)
        yield {
            "class": label,
            "support": n,
            "correct": k,
            "recall": k / n if n else None,
            "ci_low": _finite_or_none(lo),
            "ci_high": _finite_or_none(hi),
        }
