"""Membership-inference metrics in float64: ROC, AUC, TPR at a fixed FPR with Clopper–Pearson intervals.

A score is larger for records the attack believes are members. Thresholds for a target FPR are fixed on one half of
the non-member scores (the *calibration* half) and measured on the other half and on the members, so the reported
TPR at 0.1 % FPR is not tuned on the data it is measured on. Both the TPR and the FPR actually reached carry exact
(Clopper–Pearson) intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

__all__ = [
    "MembershipEvaluation",
    "OperatingPoint",
    "auc_score",
    "clopper_pearson",
    "evaluate_membership",
    "roc_curve",
    "roc_loglog_svg",
    "split_calibration",
    "threshold_at_fpr",
]


def clopper_pearson(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper–Pearson interval of a binomial proportion; ``(nan, nan)`` when ``n`` is 0."""
    from scipy.stats import beta

    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence}")
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= successes <= n:
        raise ValueError(f"`successes` must be in [0, {n}], got {successes}")
    alpha = 1.0 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def _as_scores(scores: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if np.isnan(arr).any():
        raise ValueError(f"`{name}` contains NaN scores")
    return arr


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` for the rule "member when score >= threshold", one point per distinct score,
    from (0, 0) to (1, 1). Tied scores form one point, so ties never inflate the curve."""
    pos = _as_scores(members, "members")
    neg = _as_scores(nonmembers, "nonmembers")
    if not len(pos) or not len(neg):
        raise ValueError("both `members` and `nonmembers` need at least one score")
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(labels)[last_of_run]
    fp = (last_of_run + 1) - tp
    tpr = np.r_[0.0, tp / len(pos)]
    fpr = np.r_[0.0, fp / len(neg)]
    thresholds = np.r_[np.inf, scores[last_of_run]]
    return fpr, tpr, thresholds


def auc_score(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """Area under the ROC curve: P(member score > non-member score) + ½ P(tie) (Mann–Whitney), float64."""
    from scipy.stats import rankdata

    pos = _as_scores(members, "members")
    neg = _as_scores(nonmembers, "nonmembers")
    if not len(pos) or not len(neg):
        return math.nan
    ranks = rankdata(np.concatenate([pos, neg]))
    rank_sum = float(ranks[: len(pos)].sum())
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def _auc_interval(auc: float, n_pos: int, n_neg: int, z: float) -> tuple[float, float]:
    """Hanley–McNeil (1982) normal interval of the AUC."""
    if not math.isfinite(auc) or n_pos < 1 or n_neg < 1:
        return math.nan, math.nan
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def threshold_at_fpr(calibration: np.ndarray, fpr: float) -> float:
    """The threshold ``t`` for "member when score > t" that flags at most ``floor(fpr * n)`` of the calibration
    non-member scores (ties at ``t`` are not flagged); ``-inf`` when ``fpr`` allows flagging them all."""
    if not 0 <= fpr <= 1:
        raise ValueError(f"`fpr` must be in [0, 1], got {fpr}")
    cal = np.sort(_as_scores(calibration, "calibration"))[::-1]
    if not len(cal):
        raise ValueError("`calibration` needs at least one score")
    allowed = math.floor(fpr * len(cal) + 1e-9)
    if allowed >= len(cal):
        return -math.inf
    return float(cal[allowed])


def split_calibration(n: int, *, seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random half of ``n`` non-member scores that fixes thresholds, and of the other half, which
    measures the FPR (``ceil(n / 2)`` calibration indices)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    perm = rng.permutation(n)
    half = (n + 1) // 2
    return np.sort(perm[:half]), np.sort(perm[half:])


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """The attack at one target FPR: threshold from the calibration non-members, TPR over all members, FPR
    reached on the held-out non-members; intervals are Clopper–Pearson at ``confidence``."""

    target_fpr: float
    threshold: float
    tpr: float
    tpr_ci: tuple[float, float]
    fpr: float
    fpr_ci: tuple[float, float]
    n_members: int
    n_nonmembers: int
    true_positives: int
    false_positives: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_fpr": self.target_fpr,
            "threshold": self.threshold if math.isfinite(self.threshold) else None,
            "tpr": self.tpr,
            "tpr_ci_low": self.tpr_ci[0],
            "tpr_ci_high": self.tpr_ci[1],
            "fpr": self.fpr,
            "fpr_ci_low": self.fpr_ci[0],
            "fpr_ci_high": self.fpr_ci[1],
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
        }


@dataclass(frozen=True, slots=True)
class MembershipEvaluation:
    """How well one attack's scores separate members from non-members."""

    method: str
    auc: float
    auc_ci: tuple[float, float]
    points: tuple[OperatingPoint, ...]
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray
    n_members: int
    n_nonmembers: int
    n_calibration: int

    def point(self, fpr: float) -> OperatingPoint:
        """The operating point at target FPR ``fpr``."""
        for p in self.points:
            if math.isclose(p.target_fpr, fpr, rel_tol=1e-9, abs_tol=0.0):
                return p
        raise KeyError(f"no operating point at FPR {fpr:g}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "auc": self.auc,
            "auc_ci_low": self.auc_ci[0],
            "auc_ci_high": self.auc_ci[1],
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "n_calibration": self.n_calibration,
            "points": [p.to_dict() for p in self.points],
        }


def evaluate_membership(
    members: np.ndarray,
    nonmembers: np.ndarray,
    *,
    method: str = "attack",
    fprs: Sequence[float] = (0.001, 0.01),
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    calibration: np.ndarray | None = None,
) -> MembershipEvaluation:
    """AUC (all scores) and TPR at each target FPR with thresholds fixed on held-out non-members.

    Without ``calibration`` (indices into ``nonmembers``), a seeded random half of the non-member scores fixes
    the thresholds and the other half measures the FPR; the TPR is measured on every member.
    """
    from garrison.core.metrics import Z95

    pos = _as_scores(members, "members")
    neg = _as_scores(nonmembers, "nonmembers")
    if len(pos) < 1 or len(neg) < 2:
        raise ValueError("need at least one member and two non-member scores")
    if calibration is None:
        cal_idx, eval_idx = split_calibration(len(neg), seed=seed)
    else:
        cal_idx = np.asarray(calibration, dtype=np.int64)
        eval_idx = np.setdiff1d(np.arange(len(neg)), cal_idx)
    cal, held = neg[cal_idx], neg[eval_idx]
    points = []
    for target in fprs:
        t = threshold_at_fpr(cal, float(target))
        tp = int((pos > t).sum())
        fp = int((held > t).sum())
        points.append(
            OperatingPoint(
                target_fpr=float(target),
                threshold=t,
                tpr=tp / len(pos),
                tpr_ci=clopper_pearson(tp, len(pos), confidence=confidence),
                fpr=fp / len(held) if len(held) else math.nan,
                fpr_ci=clopper_pearson(fp, len(held), confidence=confidence),
                n_members=len(pos),
                n_nonmembers=len(held),
                true_positives=tp,
                false_positives=fp,
                confidence=confidence,
            )
        )
    auc = auc_score(pos, neg)
    fpr_curve, tpr_curve, _ = roc_curve(pos, neg)
    return MembershipEvaluation(
        method=method,
        auc=auc,
        auc_ci=_auc_interval(auc, len(pos), len(neg), Z95),
        points=tuple(points),
        roc_fpr=fpr_curve,
        roc_tpr=tpr_curve,
        n_members=len(pos),
        n_nonmembers=len(neg),
        n_calibration=len(cal),
    )


_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def roc_loglog_svg(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    title: str = "Membership inference ROC (log-log)",
    bound: tuple[np.ndarray, np.ndarray] | None = None,
    size: int = 360,
) -> str:
    """A log-log ROC figure (FPR and TPR from 1e-4 or 1/n to 1) of ``(label, fpr, tpr)`` curves, with the chance
    diagonal and, when given, a ``(fpr, max_tpr)`` bound (the DP bound) dashed. Deterministic SVG text."""
    margin = 48
    plot = size - 2 * margin
    smallest = [float(np.min(f[f > 0])) for _, f, _ in curves if np.any(f > 0)]
    lo_exp = math.floor(math.log10(min([1e-3, *smallest])))
    lo_exp = max(lo_exp, -6)

    def scale(v: float) -> float:
        v = min(max(v, 10.0**lo_exp), 1.0)
        return (math.log10(v) - lo_exp) / -lo_exp

    def px(v: float) -> float:
        return margin + scale(v) * plot

    def py(v: float) -> float:
        return size - margin - scale(v) * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{margin}" y="{margin}" width="{plot}" height="{plot}" fill="none" stroke="#888"/>',
        f'<line x1="{px(10.0**lo_exp):.2f}" y1="{py(10.0**lo_exp):.2f}" x2="{px(1):.2f}" y2="{py(1):.2f}" '
        'stroke="#888" stroke-dasharray="4 4"/>',
    ]
    for e in range(lo_exp, 1):
        label = f"1e{e}" if e < 0 else "1"
        parts.append(
            f'<text x="{px(10.0**e):.2f}" y="{size - margin + 14}" font-size="9" text-anchor="middle">{label}</text>'
        )
        parts.append(
            f'<text x="{margin - 4}" y="{py(10.0**e) + 3:.2f}" font-size="9" text-anchor="end">{label}</text>'
        )
    parts.append(f'<text x="{size / 2:g}" y="{size - 10}" font-size="11" text-anchor="middle">FPR</text>')
    parts.append(
        f'<text x="12" y="{size / 2:g}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {size / 2:g})">TPR</text>'
    )
    if bound is not None:
        bf, bt = bound
        pts = " ".join(f"{px(float(f)):.2f},{py(float(t)):.2f}" for f, t in zip(bf, bt, strict=True) if f > 0)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#000" stroke-dasharray="2 3"><title>DP bound'
                     "</title></polyline>")  # fmt: skip
    for i, (label, fpr, tpr) in enumerate(curves):
        colour = _COLOURS[i % len(_COLOURS)]
        keep = _thin(np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64))
        pts = " ".join(f"{px(f):.2f},{py(t):.2f}" for f, t in keep)
        parts.append(
            f'<polyline points="{pts}" fill="none" stroke="{colour}"><title>{escape(label)}</title></polyline>'
        )
        parts.append(
            f'<text x="{margin + 6}" y="{margin + 14 + 13 * i}" font-size="10" fill="{colour}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _thin(fpr: np.ndarray, tpr: np.ndarray, points: int = 200) -> list[tuple[float, float]]:
    """At most ``points`` ROC points spread evenly in log FPR (the step shape survives: the last point at or below
    each grid value is kept)."""
    mask = fpr > 0
    f, t = fpr[mask], tpr[mask]
    if len(f) <= points:
        return list(zip(f.tolist(), t.tolist(), strict=True))
    grid = np.geomspace(f[0], 1.0, points)
    idx = np.unique(np.clip(np.searchsorted(f, grid, side="right") - 1, 0, len(f) - 1))
    return list(zip(f[idx].tolist(), t[idx].tolist(), strict=True))
