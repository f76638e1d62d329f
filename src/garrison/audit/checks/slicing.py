"""Weak slices as check output (the ``explain`` and ``robustness`` checks): a dataset's columns as the user has them,
GAR-XP-003 findings and the slice table, for any per-row metric :func:`garrison.explain.find_slices` accepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import Figure
from garrison.core.rules import get_rule

if TYPE_CHECKING:
    import pandas as pd

    from garrison.data import Dataset

__all__ = ["ACCURACY", "CALIBRATION", "ROBUST_ACCURACY", "SliceMetric", "dataset_columns", "slice_output"]

RULE_SLICE = "GAR-XP-003"


@dataclass(frozen=True)
class SliceMetric:
    """What a per-row value means in a report: ``name`` (in messages), ``key`` (in evidence and tables), the
    check-local ``metric`` and ``figure`` ids, and ``negate`` when the values are negated scores (a Brier score
    passed as ``-brier`` so that higher is better) to be shown with their own sign. Without ``range_findings`` only
    categories and sensitive attributes become findings: calibration and robustness are worse near the decision
    boundary by geometry, so a numeric range there is expected and stays in the table."""

    name: str
    key: str
    metric: str
    figure: str
    negate: bool = False
    percent: bool = True
    range_findings: bool = True

    def show(self, value: float) -> str:
        v = -value if self.negate else value
        return f"{100 * v:.1f} %" if self.percent else f"{v:.3f}"

    def show_interval(self, low: float, high: float) -> str:
        lo, hi = (-high, -low) if self.negate else (low, high)
        return f"[{100 * lo:.1f}, {100 * hi:.1f}]" if self.percent else f"[{lo:.3f}, {hi:.3f}]"


ACCURACY = SliceMetric("accuracy", "accuracy", "worst_slice_gap", "explain-slices")
CALIBRATION = SliceMetric(
    "top-label Brier score",
    "brier",
    "calibration_worst_slice_gap",
    "explain-calibration-slices",
    negate=True,
    percent=False,
    range_findings=False,
)
ROBUST_ACCURACY = SliceMetric(
    "robust accuracy", "robust_accuracy", "worst_slice_gap", "robustness-slices", range_findings=False
)


def dataset_columns(dataset: Dataset, rows: np.ndarray | None = None) -> pd.DataFrame:
    """The dataset's features as the user has them (records for tabular data, the numeric array otherwise), for
    ``rows`` (all rows by default), indexed from 0."""
    import pandas as pd

    names = list(dataset.schema.names())
    if dataset.records is not None:
        frame = dataset.records[names].reset_index(drop=True)
        return frame.iloc[rows].reset_index(drop=True) if rows is not None else frame
    x = np.asarray(dataset.x)
    x = x[rows] if rows is not None else x
    return pd.DataFrame(x.reshape(len(x), -1), columns=names)


def slice_output(
    values: np.ndarray,
    columns: pd.DataFrame,
    *,
    what: SliceMetric,
    subject: Any,
    check_id: str,
    sensitive: Sequence[str] = (),
    min_size: int = 30,
    alpha: float = 0.05,
) -> tuple[list[Metric], list[Finding], Figure]:
    """The worst-slice-gap metric, one GAR-XP-003 finding per significant slice and the table of the worst ten."""
    from garrison.explain import find_slices

    report = find_slices(values, columns, sensitive=list(sensitive), min_size=min_size, alpha=alpha)
    rule = get_rule(RULE_SLICE)
    sign = -1.0 if what.negate else 1.0
    suffix = "" if what is ACCURACY else f" ({what.name})"
    findings = [
        rule.finding(
            subject=subject,
            location=f"slice {s.feature} = {s.label}{suffix}",
            check_id=check_id,
            message=f"{what.name[0].upper()}{what.name[1:]} on {s.feature} = {s.label} ({s.size} rows) is {what.show(s.value)} "
            f"{what.show_interval(s.ci_low, s.ci_high)} against {what.show(s.rest_value)} on the rest "
            f"(adjusted p = {s.p_adjusted:.2g}).",
            evidence={
                "metric": what.name,
                "feature": s.feature,
                "slice": s.label,
                "size": s.size,
                what.name: sign * s.value,
                "ci": sorted([sign * s.ci_low, sign * s.ci_high]),
                f"rest_{what.name}": sign * s.rest_value,
                "p_adjusted": s.p_adjusted,
                "sensitive": s.sensitive,
            },
        )
        for s in report.significant
        if what.range_findings or s.kind != "bin" or s.sensitive
    ]
    gap = min((s.difference for s in report.slices), default=0.0)
    metrics = [
        Metric(what.metric, float(gap), n=report.n_rows, higher_is_better=True,
               description=f"{what.name} of the worst slice minus that of the rest"
               + (" (negated: lower is worse)" if what.negate else ""))
    ]  # fmt: skip
    table = tuple(
        {"slice": f"{s.feature} = {s.label}", "rows": s.size, what.key: round(sign * s.value, 4),
         "rest": round(sign * s.rest_value, 4), "p_adjusted": float(f"{s.p_adjusted:.3g}"), "significant": s.significant}
        for s in report.worst(10)
    )  # fmt: skip
    figure = Figure(
        what.figure,
        f"Worst slices ({what.name})",
        table=table,
        caption=f"{len(report.slices)} slices tested; significant: adjusted p ≤ {alpha} (Benjamini–Hochberg) and "
        "worse than the rest."
        + (
            ""
            if what.range_findings
            else " Only categories and sensitive attributes become findings: "
            f"{what.name} is worse near the decision boundary by geometry, so numeric ranges stay here."
        ),
        columns=("slice", "rows", what.key, "rest", "p_adjusted", "significant"),
    )
    return metrics, findings, figure
