"""Weak slices: a planted weak region is found and significant, random errors raise nothing after
Benjamini–Hochberg, the slices of one column partition the rows, and the intervals are the textbook ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from garrison.core.errors import InputError
from garrison.core.metrics import wilson_interval
from garrison.explain.slices import find_slices


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], size=n),
            "age": rng.normal(40, 12, size=n),
            "premium": rng.random(n) < 0.3,
            "children": rng.integers(0, 4, size=n),
        }
    )


def test_a_planted_weak_slice_is_found_and_significant() -> None:
    rng = np.random.default_rng(0)
    frame = _frame(2000, 0)
    east = (frame["region"] == "east").to_numpy()
    correct = rng.random(len(frame)) < 0.92
    correct[east] = rng.random(int(east.sum())) < 0.62  # wrong on 38 % of the east rows, 8 % elsewhere
    report = find_slices(correct, frame)
    worst = report.slices[0]
    assert (worst.feature, worst.label, worst.kind) == ("region", "east", "category")
    assert worst.significant and worst.p_adjusted < 1e-6
    assert worst.difference == pytest.approx(correct[east].mean() - correct[~east].mean())
    assert worst.ci_low < correct[east].mean() < worst.ci_high
    assert worst.difference_ci_high < 0
    assert worst.size == int(east.sum())
    assert [(s.feature, s.label) for s in report.significant] == [("region", "east")]
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["slices"][0]["label"] == "east"
    assert payload["interval"] == "wilson" and payload["test"] == "fisher-exact"
    assert payload["n_significant"] == 1


@pytest.mark.parametrize("seed", range(4))
def test_random_errors_raise_nothing(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    frame = _frame(1500, seed)
    correct = rng.random(len(frame)) < 0.85
    report = find_slices(correct, frame)
    assert len(report.slices) >= 10  # 4 regions, 4 age bins, 2 premium values, 4 children values
    assert report.significant == ()


@pytest.mark.parametrize("seed", range(3))
def test_a_float_metric_uses_welch_and_finds_the_weak_bin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1200
    x = rng.normal(size=(n, 3))
    score = rng.normal(0.0, 1.0, size=n)
    score[x[:, 1] > np.quantile(x[:, 1], 0.75)] -= 0.6  # the top quartile of f1 is worse
    report = find_slices(score, x, metric="negative calibration error")
    assert report.metric_kind == "mean" and report.test == "welch-t" and report.interval == "student-t"
    assert [(s.feature, s.kind) for s in report.significant] == [("f1", "bin")]
    assert report.significant[0].label.endswith("]")  # the last, closed bin
    quiet = find_slices(rng.normal(size=n), x)
    assert quiet.significant == ()


def test_sensitive_attributes_given_apart_are_sliced_by_value() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    x = rng.normal(size=(n, 2))
    sex = rng.choice(["f", "m"], size=n)
    correct = np.where(sex == "f", rng.random(n) < 0.7, rng.random(n) < 0.9)
    report = find_slices(correct, x, feature_names=["a", "b"], sensitive={"sex": sex})
    assert (report.slices[0].feature, report.slices[0].label) == ("sex", "f")
    assert report.slices[0].sensitive and report.slices[0].significant
    assert not any(s.sensitive for s in report.slices if s.feature != "sex")


def test_small_slices_are_counted_not_tested() -> None:
    rng = np.random.default_rng(4)
    n = 400
    column = np.array(["common"] * (n - 10) + ["rare"] * 10)
    correct = rng.random(n) < 0.8
    report = find_slices(correct, {"kind": column}, min_size=30)
    assert report.slices == ()  # "common" leaves a complement of 10, "rare" has 10 rows
    assert report.n_untested == 2


def test_categorical_names_force_slicing_by_value_and_missing_gets_its_slice() -> None:
    rng = np.random.default_rng(5)
    n = 600
    code = rng.integers(0, 30, size=n).astype(np.float64)
    code[:60] = np.nan
    correct = rng.random(n) < 0.8
    binned = find_slices(correct, {"code": code}, min_size=1)
    by_value = find_slices(correct, {"code": code}, categorical=["code"], min_size=1)
    assert {s.kind for s in binned.slices} == {"bin", "missing"}
    assert len(by_value.slices) == len(np.unique(code[60:])) + 1
    missing = [s for s in by_value.slices if s.kind == "missing"]
    assert len(missing) == 1 and missing[0].size == 60


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.integers(min_value=2, max_value=80),
        elements=st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([np.nan, np.inf])),
    ),
    n_bins=st.integers(min_value=2, max_value=7),
)
def test_the_slices_of_a_column_cover_every_row_exactly_once(values: np.ndarray, n_bins: int) -> None:
    finite = np.isfinite(values)
    assume(len(np.unique(values[finite])) + int(not finite.all()) >= 2)
    correct = np.arange(len(values)) % 2 == 0
    report = find_slices(correct, {"v": values}, n_bins=n_bins, min_size=1)
    rows = np.concatenate([s.rows for s in report.slices])
    assert np.array_equal(np.sort(rows), np.arange(len(values)))
    assert report.n_untested == 0
    assert sum(s.kind == "bin" for s in report.slices) <= n_bins


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = wilson_interval(81, 263)  # Wilson (1927) example as given by Newcombe (1998): 0.2553–0.3662
    assert low == pytest.approx(0.2553, abs=1e-4)
    assert high == pytest.approx(0.3662, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_bad_inputs_are_refused() -> None:
    correct = np.ones(50, dtype=bool)
    with pytest.raises(InputError, match="shape"):
        find_slices(correct, np.zeros((40, 2)))
    with pytest.raises(InputError, match="NaN"):
        find_slices(np.full(50, np.nan), np.zeros((50, 2)))
    with pytest.raises(InputError, match="unknown columns: zz"):
        find_slices(correct, np.zeros((50, 2)), categorical=["zz"])
    with pytest.raises(InputError, match="also a column"):
        find_slices(correct, np.zeros((50, 2)), sensitive={"f0": np.zeros(50)})
    with pytest.raises(ValueError, match="`n_bins` must be >= 2"):
        find_slices(correct, np.zeros((50, 2)), n_bins=1)
    with pytest.raises(ValueError, match="2 feature names for 3 columns"):
        find_slices(correct, np.zeros((50, 3)), feature_names=["a", "b"])


def test_the_doc_examples_print_what_the_doc_says(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).parents[2] / "docs" / "slices.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "print(" in b]
    assert len(blocks) == 2
    for block in blocks:
        expected = [line[2:] for line in block.splitlines() if line.startswith("# ")]
        exec(compile(block, "docs/slices.md", "exec"), {})  # our own documentation
        assert capsys.readouterr().out.splitlines() == expected
