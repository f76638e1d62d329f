"""The TPR ceiling differential privacy implies, from a claim or from Opacus' accountants."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from garrison.privacy.dp_bound import bound_from_accountant, bound_from_claim, judge_claim
from garrison.privacy.roc import OperatingPoint

FPRS = np.geomspace(1e-5, 1.0, 60)


def test_claim_bound_formula_and_monotonicity() -> None:
    bound = bound_from_claim(1.0, 1e-5)
    tpr = bound.max_tpr(FPRS)
    assert tpr.dtype == np.float64
    assert np.all(np.diff(tpr) >= 0) and np.all(tpr <= 1) and tpr[-1] == 1.0
    assert bound.max_tpr(0.01) == pytest.approx(math.e * 0.01 + 1e-5)
    # the symmetric (false-negative) side binds at large FPR
    assert bound.max_tpr(0.5) == pytest.approx(1 - math.exp(-1) * (1 - 1e-5 - 0.5))
    # a larger ε never lowers the ceiling
    assert np.all(bound_from_claim(2.0, 1e-5).max_tpr(FPRS) >= tpr)
    # ε = 0, δ = 0: no attack beats chance
    assert np.allclose(bound_from_claim(0.0, 0.0).max_tpr(FPRS), FPRS)


def test_accountant_bound_is_tighter_than_its_single_point() -> None:
    history = [(1.0, 0.01, 300)]
    prv = bound_from_accountant(history, accountant="prv")
    rdp = bound_from_accountant(history, accountant="rdp")
    assert len(prv.points) == 12
    # ε(δ) decreases as δ grows
    eps = [e for e, _ in sorted(prv.points, key=lambda p: p[1])]
    assert all(a >= b for a, b in itertools.pairwise(eps))
    assert eps[0] > 1.0 and eps[-1] >= 0.0
    low = np.array([1e-4, 1e-3, 1e-2, 0.1])
    # the curve over δ is at least as tight as any one of its points, and PRV is tighter than RDP
    for e, d in prv.points:
        assert np.all(prv.max_tpr(low) <= bound_from_claim(e, d).max_tpr(low) + 1e-12)
    assert np.all(prv.max_tpr(low) <= rdp.max_tpr(low) + 1e-9)
    assert np.all(np.diff(prv.max_tpr(FPRS)) >= 0)


def test_more_noise_gives_a_lower_ceiling_and_no_noise_none() -> None:
    low = np.array([1e-3, 1e-2])
    a = bound_from_accountant([(0.8, 0.01, 500)], accountant="rdp").max_tpr(low)
    b = bound_from_accountant([(2.0, 0.01, 500)], accountant="rdp").max_tpr(low)
    assert np.all(b < a)
    none = bound_from_accountant([(0.0, 0.01, 500)])
    assert np.all(none.max_tpr(low) == 1.0) and math.isinf(none.epsilon)


def _point(tp: int, n_m: int, fp: int, n_n: int, fpr: float) -> OperatingPoint:
    return OperatingPoint(fpr, 0.0, tp / n_m, (0, 1), fp / n_n, (0, 1), n_m, n_n, tp, fp, 0.95)


def test_judge_claim_needs_the_lower_bound_above_the_ceiling() -> None:
    bound = bound_from_claim(1.0, 1e-5)
    # TPR 10 % at FPR 0.1 % on 10,000 records each: far above e * 0.1 % -> contradicted
    assert judge_claim([_point(1000, 10_000, 10, 10_000, 0.001)], bound).contradicted
    # the same rates on 50 records: the intervals are too wide to say
    verdict = judge_claim([_point(5, 50, 0, 50, 0.001)], bound)
    assert not verdict.contradicted and verdict.margin < 0
    # exactly at the ceiling: not contradicted
    assert not judge_claim([_point(27, 10_000, 10, 10_000, 0.001)], bound).contradicted
