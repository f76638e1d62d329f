"""Group fairness of a classifier's predictions across the values of one named sensitive attribute.

Per group: the selection rate (share of rows predicted ``positive``), the true-positive rate (TPR, recall on the
rows whose label is ``positive``), the false-positive rate (FPR, on the rows whose label is not) and the accuracy,
each with its count and a 95 % Wilson score interval. Across groups:

- **demographic parity difference**: largest minus smallest selection rate;
- **demographic parity ratio** (disparate impact): smallest over largest selection rate — the "four-fifths rule"
  asks for ≥ 0.8; 1.0 when no group is selected at all;
- **equal opportunity difference**: largest minus smallest TPR;
- **equalized odds difference**: the larger of the TPR gap and the FPR gap.

Groups without a positive (negative) label have no TPR (FPR); they are left out of that gap, which is NaN when
fewer than two groups define it. With more than two label values the task is read as ``positive`` against the
rest (the report's ``binarized`` flag and ``note`` say so); accuracy still compares the labels as given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from garrison.core.errors import InputError
from garrison.core.metrics import wilson_interval

__all__ = ["FairnessReport", "GroupRates", "group_fairness"]


@dataclass(frozen=True)
class GroupRates:
    """One group's counts (``tp``, ``fp``, ``tn``, ``fn`` of the positive-vs-rest task, ``correct`` of the labels
    as given) and rates with 95 % Wilson intervals; a rate without rows to define it is NaN."""

    group: str
    size: int
    tp: int
    fp: int
    tn: int
    fn: int
    correct: int
    selection_rate: float
    selection_rate_ci: tuple[float, float]
    tpr: float
    tpr_ci: tuple[float, float]
    fpr: float
    fpr_ci: tuple[float, float]
    accuracy: float
    accuracy_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "size": self.size,
            "counts": {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn, "correct": self.correct},
            "selection_rate": _num(self.selection_rate),
            "selection_rate_ci": [_num(v) for v in self.selection_rate_ci],
            "tpr": _num(self.tpr),
            "tpr_ci": [_num(v) for v in self.tpr_ci],
            "fpr": _num(self.fpr),
            "fpr_ci": [_num(v) for v in self.fpr_ci],
            "accuracy": _num(self.accuracy),
            "accuracy_ci": [_num(v) for v in self.accuracy_ci],
        }


@dataclass(frozen=True)
class FairnessReport:
    """Per-group :class:`GroupRates` (sorted by group name) and the gaps between groups (see the module
    docstring)."""

    attribute: str
    positive: Any
    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equal_opportunity_difference: float
    equalized_odds_difference: float
    binarized: bool
    note: str | None

    def group(self, name: str) -> GroupRates:
        for g in self.groups:
            if g.group == name:
                return g
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "positive": _plain(self.positive),
            "binarized": self.binarized,
            "note": self.note,
            "demographic_parity_difference": _num(self.demographic_parity_difference),
            "demographic_parity_ratio": _num(self.demographic_parity_ratio),
            "equal_opportunity_difference": _num(self.equal_opportunity_difference),
            "equalized_odds_difference": _num(self.equalized_odds_difference),
            "groups": [g.to_dict() for g in self.groups],
        }


def group_fairness(
    y_true: Any, y_pred: Any, groups: Any, *, positive: Any = 1, attribute: str = "group"
) -> FairnessReport:
    """Group fairness of ``y_pred`` against ``y_true`` across the values of ``groups`` (one per row), the
    sensitive attribute named ``attribute`` (see the module docstring)."""
    truth = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    group_values = _labels(groups, "groups")
    if not len(truth) == len(pred) == len(group_values):
        raise InputError(
            f"lengths differ: y_true {len(truth)}, y_pred {len(pred)}, groups {len(group_values)}",
            field="groups",
        )
    if len(truth) == 0:
        raise InputError("no rows", field="y_true")
    labels = set(truth.tolist()) | set(pred.tolist())
    if positive not in labels:
        raise InputError(
            f"`positive` {positive!r} is not among the labels {sorted(map(str, labels))}", field="positive"
        )
    binarized = len(labels) > 2
    note = (
        f"{len(labels)} label values: read as {positive!r} against the rest (accuracy uses the labels as given)"
        if binarized
        else None
    )
    names = np.array(["missing" if _is_na(v) else str(v) for v in group_values], dtype=object)
    distinct = sorted(set(names.tolist()))
    if len(distinct) < 2:
        raise InputError(
            f"`groups` holds a single group ({distinct[0]!r}): nothing to compare", field="groups"
        )
    actual = truth == positive
    chosen = pred == positive
    right = truth == pred
    rates = [
        _rates(name, actual[names == name], chosen[names == name], right[names == name]) for name in distinct
    ]
    selection = [g.selection_rate for g in rates]
    tpr_gap = _gap([g.tpr for g in rates])
    fpr_gap = _gap([g.fpr for g in rates])
    high = max(selection)
    return FairnessReport(
        attribute=attribute,
        positive=positive,
        groups=tuple(rates),
        demographic_parity_difference=high - min(selection),
        demographic_parity_ratio=min(selection) / high if high > 0 else 1.0,
        equal_opportunity_difference=tpr_gap,
        equalized_odds_difference=max((g for g in (tpr_gap, fpr_gap) if not math.isnan(g)), default=math.nan),
        binarized=binarized,
        note=note,
    )


def _labels(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"`{what}` must be 1-d, got shape {array.shape}", field=what)
    return array


def _is_na(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _rates(name: str, actual: np.ndarray, chosen: np.ndarray, right: np.ndarray) -> GroupRates:
    n = len(actual)
    tp = int(np.sum(actual & chosen))
    fn = int(np.sum(actual & ~chosen))
    fp = int(np.sum(~actual & chosen))
    tn = int(np.sum(~actual & ~chosen))
    correct = int(right.sum())
    return GroupRates(
        group=name,
        size=n,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        correct=correct,
        selection_rate=(tp + fp) / n,
        selection_rate_ci=wilson_interval(tp + fp, n),
        tpr=tp / (tp + fn) if tp + fn else math.nan,
        tpr_ci=wilson_interval(tp, tp + fn),
        fpr=fp / (fp + tn) if fp + tn else math.nan,
        fpr_ci=wilson_interval(fp, fp + tn),
        accuracy=correct / n,
        accuracy_ci=wilson_interval(correct, n),
    )


def _gap(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return max(defined) - min(defined) if len(defined) >= 2 else math.nan


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
