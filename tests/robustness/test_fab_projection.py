"""FAB's L∞ projection onto a hyperplane inside the box, checked against a linear program (scipy's HiGHS)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

torch = pytest.importorskip("torch")

from garrison.robustness.attacks.fab import _to_plane_linf_box  # noqa: E402


def _lp(w: np.ndarray, g: float, start: np.ndarray) -> float | None:
    """min t s.t. |d_i| <= t, 0 <= start + d <= 1, w . d = -g; None when infeasible."""
    n = len(w)
    c = np.r_[np.zeros(n), 1.0]
    a_ub = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
    bounds = [(-s, 1 - s) for s in start] + [(0, None)]
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(2 * n), A_eq=np.r_[w, 0.0][None], b_eq=[-g], bounds=bounds)
    return float(res.x[-1]) if res.status == 0 else None


# zero, or well away from zero: the LP solver's tolerances make near-degenerate planes ambiguous
_VALUE = st.one_of(st.just(0.0), st.floats(1e-3, 3), st.floats(-3, -1e-3))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(_VALUE, min_size=n, max_size=n),
            _VALUE,
            st.lists(st.floats(0, 1), min_size=n, max_size=n),
        )
    )
)
def test_linf_box_projection_is_the_lp_optimum(case: tuple[list[float], float, list[float]]) -> None:
    w, g, start = np.array(case[0]), case[1], np.array(case[2])
    d = _to_plane_linf_box(
        torch.tensor(w)[None],
        torch.tensor([g]),
        torch.tensor(start)[None],
        torch.tensor(0.0),
        torch.tensor(1.0),
    )[0].numpy()
    assert np.all(start + d >= -1e-9) and np.all(start + d <= 1 + 1e-9)
    optimum = _lp(w, g, start)
    if optimum is not None:
        assert abs(g + w @ d) <= 1e-6 * max(1.0, abs(g))
        assert np.abs(d).max() <= optimum + 1e-6
    else:  # out of reach inside the box: as far towards the plane as the box allows
        best = (
            -np.sign(g)
            * np.where(-np.sign(g) * np.sign(w) > 0, (1 - start) * np.abs(w), start * np.abs(w)).sum()
        )
        assert abs(w @ d - best) <= 1e-6 * max(1.0, abs(best))
