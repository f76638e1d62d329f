from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.protect import generalize_to_k, k_anonymity, l_diversity, measure, mondrian
from garrison.protect.kanon import coarsen_date, numeric_bands, truncate_postcode


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "zip": [f"{z:05d}" for z in rng.integers(10000, 99999, n)],
            "sex": rng.choice(["F", "M"], n),
            "dx": rng.choice(["flu", "asthma", "none", "cancer"], n),
        }
    )


def test_k_and_l_by_hand() -> None:
    f = pd.DataFrame({"a": [1, 1, 2, 2, 2], "s": ["x", "y", "x", "x", "x"]})
    assert k_anonymity(f, ["a"]) == 2
    assert l_diversity(f, ["a"], "s") == 1
    m = measure(f, ["a"], sensitive="s", target_k=3)
    assert (m.k, m.l, m.classes, m.records, m.at_risk) == (2, 1, 2, 5, 2)


def test_unknown_qi_names_the_column() -> None:
    with pytest.raises(InputError, match="'nope'"):
        k_anonymity(_frame(), ["age", "nope"])


def test_mondrian_reaches_k_and_l() -> None:
    f = _frame()
    assert k_anonymity(f, ["age", "zip", "sex"]) < 5
    res = mondrian(f, ["age", "zip", "sex"], k=5, l=2, sensitive="dx")
    assert len(res.frame) == len(f) and res.suppressed == 0
    assert k_anonymity(res.frame, ["age", "zip", "sex"]) >= 5
    assert l_diversity(res.frame, ["age", "zip", "sex"], "dx") >= 2
    assert (res.frame["dx"].to_numpy() == f["dx"].to_numpy()).all()  # the sensitive attribute is kept
    # ranges contain the original ages
    for orig, gen in zip(f["age"], res.frame["age"], strict=True):
        lo, _, hi = gen.partition("-")
        assert int(lo) <= orig <= int(hi or lo)


def test_mondrian_too_small_table() -> None:
    with pytest.raises(InputError):
        mondrian(_frame(3), ["age"], k=5)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=2, max_value=8),
    st.lists(
        st.tuples(st.integers(0, 30), st.sampled_from("abcde"), st.floats(0, 1)), min_size=8, max_size=120
    ),
)
def test_mondrian_output_is_k_anonymous(k: int, rows: list[tuple[int, str, float]]) -> None:
    f = pd.DataFrame(rows, columns=["n", "c", "x"])
    if len(f) < k:
        return
    res = mondrian(f, ["n", "c", "x"], k=k)
    assert k_anonymity(res.frame, ["n", "c", "x"]) >= k
    assert res.achieved_k >= k


def test_generalize_to_k_with_suppression_budget() -> None:
    f = _frame(600, seed=2)
    res = generalize_to_k(
        f, {"age": "numeric", "zip": "postcode", "sex": "category"}, k=5, max_suppression=0.02
    )
    assert res.suppressed <= 0.02 * len(f)
    assert len(res.frame) == len(f) - res.suppressed
    assert k_anonymity(res.frame, ["age", "zip", "sex"]) >= 5
    assert max(res.levels.values()) > 0


def test_simple_generalisations() -> None:
    assert numeric_bands(pd.Series([42, 7]), 10).tolist() == ["40-49", "0-9"]
    assert truncate_postcode(pd.Series(["75011", "SW1A 1AA"]), 3).tolist() == ["750*", "SW1*"]
    d = pd.Series(["1985-03-12", "not a date"])
    assert coarsen_date(d, "month").tolist() == ["1985-03", "*"]
    assert coarsen_date(d, "decade").tolist()[0] == "1980s"
