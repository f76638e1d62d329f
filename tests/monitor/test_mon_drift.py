"""Drift primitives: the per-column tests equal scipy's, the drift rule needs an effect, the reference file is
untrusted input, and the sliding window tests the rows it holds."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from garrison.core.errors import DataError, GarrisonError, InputError
from garrison.explain import benjamini_hochberg
from garrison.monitor import (
    DriftMonitor,
    DriftReference,
    detect_drift,
    ks_2samp_sorted,
    ks_columns,
    linear_mmd,
    prediction_drift,
    psi,
    wasserstein_sorted,
)

_samples = st.lists(st.integers(-6, 6), min_size=1, max_size=120).map(lambda v: np.array(v, float) / 2)
_continuous = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=120).map(np.array)


# ---------------------------------------------------------------------- KS equals scipy.stats.ks_2samp
@settings(max_examples=150, deadline=None)
@given(ref=st.one_of(_samples, _continuous), cur=st.one_of(_samples, _continuous))
def test_ks_statistic_and_p_value_equal_scipy_with_ties(ref: np.ndarray, cur: np.ndarray) -> None:
    with (
        warnings.catch_warnings()
    ):  # scipy warns when its exact path fails and it falls back: so do we, silently
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = ks_2samp(ref, cur)  # method="auto": exact at these sizes
    reference = DriftReference.fit(ref[:, None], mmd_size=0)
    stat, p = ks_columns(reference, cur[:, None])
    assert stat[0] == pytest.approx(expected.statistic, abs=1e-9)
    assert p[0] == pytest.approx(expected.pvalue, abs=1e-9)


@pytest.mark.parametrize(("n", "m"), [(20_000, 700), (12_000, 12_000), (10_000, 9_000), (30_000, 25_000)])
def test_ks_matches_scipy_on_both_sides_of_the_exact_limit(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    ref = np.round(rng.normal(size=n), 2)  # ties within and across samples
    cur = np.round(rng.normal(0.03, 1.0, size=m), 2)
    expected = ks_2samp(ref, cur)
    stat, p = ks_columns(DriftReference.fit(ref[:, None], mmd_size=0), cur[:, None])
    assert stat[0] == pytest.approx(expected.statistic, abs=1e-9)
    assert p[0] == pytest.approx(expected.pvalue, abs=1e-9)
    assert ks_2samp_sorted(np.sort(ref), np.sort(cur)) == pytest.approx(expected.statistic, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(ref=st.one_of(_samples, _continuous), cur=st.one_of(_samples, _continuous))
def test_wasserstein_equals_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    got = wasserstein_sorted(np.sort(ref), np.sort(cur))
    assert got == pytest.approx(wasserstein_distance(ref, cur), rel=1e-9, abs=1e-9)


def test_wasserstein_is_exact_far_from_zero_and_for_unequal_sizes() -> None:
    rng = np.random.default_rng(3)
    ref = np.sort(rng.normal(1e6, 1.0, size=50_000))
    cur = np.sort(rng.normal(1e6 + 0.2, 1.0, size=777))
    assert wasserstein_sorted(ref, cur) == pytest.approx(wasserstein_distance(ref, cur), rel=1e-7)


def test_psi_matches_its_formula_and_is_zero_for_equal_shares() -> None:
    r = np.array([0.5, 0.3, 0.2, 0.0])
    c = np.array([0.25, 0.25, 0.25, 0.25])
    expected = sum((ci - ri) * np.log(ci / ri) for ri, ci in zip(np.maximum(r, 1e-4), c, strict=True))
    assert psi(r, c) == pytest.approx(expected)
    assert psi(r, r) == 0.0


# ---------------------------------------------------------------------- categorical, BH and the drift rule
def test_categorical_chi_squared_equals_scipy_and_counts_unseen_categories_as_other() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"city": rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"city": rng.choice(["a", "b", "c", "zz", "yy"], 1000, p=[0.3, 0.3, 0.2, 0.1, 0.1])})
    report = detect_drift(DriftReference.fit(ref), cur)
    col = report.column("city")
    counts_ref = [(ref.city == k).sum() for k in "abc"] + [0]
    counts_cur = [(cur.city == k).sum() for k in "abc"] + [cur.city.isin(["zz", "yy"]).sum()]
    expected = chi2_contingency(np.array([counts_ref, counts_cur]), correction=False)
    assert (col.kind, col.test, col.effect_name) == ("categorical", "chi2", "psi")
    assert col.statistic == pytest.approx(expected.statistic)
    assert col.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert col.psi > 0.2 and col.drifted


def test_adjusted_p_values_are_benjamini_hochberg_across_all_columns() -> None:
    rng = np.random.default_rng(1)
    ref = {"a": rng.normal(size=800), "b": rng.normal(size=800), "c": rng.choice(["x", "y"], 800)}
    cur = {"a": rng.normal(0.2, 1, 300), "b": rng.normal(size=300), "c": rng.choice(["x", "y"], 300)}
    report = detect_drift(DriftReference.fit(ref), cur)
    p = np.array([c.p_value for c in report.columns])
    np.testing.assert_allclose([c.p_adjusted for c in report.columns], benjamini_hochberg(p))


def test_a_significant_but_tiny_shift_is_not_drift_and_a_large_one_is() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(200_000, 3))
    cur = rng.normal(size=(200_000, 3))
    cur[:, 0] += 0.03  # p far below 1e-6 at this size, a thirtieth of a standard deviation
    cur[:, 1] += 0.3
    report = detect_drift(DriftReference.fit(ref, mmd_size=0), cur)
    a, b, c = report.columns
    assert a.p_adjusted < 1e-6 and a.effect < 0.1 and not a.drifted
    assert b.drifted and b.effect == pytest.approx(0.3, abs=0.02)
    assert not c.drifted
    assert report.drifted_columns == ("f1",)
    assert report.multivariate is None
    strict = detect_drift(DriftReference.fit(ref, mmd_size=0), cur, min_wasserstein=0.0)
    assert strict.drifted_columns == ("f0", "f1")


@pytest.mark.parametrize("seed", range(4))
def test_the_same_distribution_does_not_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {"x": rng.normal(size=5000), "y": rng.exponential(size=5000), "k": rng.integers(0, 4, 5000)}
    )
    cur = pd.DataFrame(
        {"x": rng.normal(size=2000), "y": rng.exponential(size=2000), "k": rng.integers(0, 4, 2000)}
    )
    report = detect_drift(DriftReference.fit(ref, categorical=["k"]), cur)
    assert report.drifted_columns == ()
    assert report.column("k").kind == "categorical"


def test_missing_values_are_left_out_and_counted() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(1000, 2))
    ref[::10, 0] = np.nan
    cur = rng.normal(size=(400, 2))
    cur[:100, 1] = np.nan
    reference = DriftReference.fit(ref, mmd_size=0)
    report = detect_drift(reference, cur)
    assert reference.num_counts.tolist() == [900, 1000]
    assert report.columns[1].n_missing == 100 and report.columns[1].n_current == 300
    expected = ks_2samp(ref[~np.isnan(ref[:, 1]), 1], cur[100:, 1])
    assert report.columns[1].p_value == pytest.approx(expected.pvalue, abs=1e-9)
    all_missing = detect_drift(reference, np.column_stack([cur[:, 0], np.full(400, np.nan)]))
    assert np.isnan(all_missing.columns[1].p_value) and not all_missing.columns[1].drifted
    assert json.dumps(all_missing.to_dict(), allow_nan=False)


def test_the_quantile_sketch_stays_within_its_resolution() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(100_000, 1))
    cur = rng.normal(0.05, 1, size=(5000, 1))
    exact, _ = ks_columns(DriftReference.fit(ref, mmd_size=0), cur)
    sketched_ref = DriftReference.fit(ref, max_values=2000, mmd_size=0)
    sketched, _ = ks_columns(sketched_ref, cur)
    assert len(sketched_ref.sorted_values(0)) == 2000 and sketched_ref.num_counts[0] == 100_000
    assert abs(sketched[0] - exact[0]) <= 1.5 / 2000


# ---------------------------------------------------------------------- multivariate and prediction drift
def test_linear_mmd_sees_a_flipped_correlation_that_no_column_shows() -> None:
    rng = np.random.default_rng(6)
    ref = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=20_000)
    cur = rng.multivariate_normal([0, 0], [[1, -0.9], [-0.9, 1]], size=20_000)
    report = detect_drift(DriftReference.fit(ref, seed=1), cur, seed=1)
    assert report.drifted_columns == ()
    assert report.multivariate is not None
    assert report.multivariate.drifted and report.multivariate.p_value < 1e-6
    quiet = detect_drift(DriftReference.fit(ref, seed=1), ref[::-1][:8000], seed=2)
    assert quiet.multivariate is not None and not quiet.multivariate.drifted


def test_linear_mmd_is_seeded_and_checks_its_inputs() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(4000, 3)), rng.normal(0.5, 1, size=(4000, 3))
    assert linear_mmd(x, y, bandwidth=1.0, seed=3) == linear_mmd(x, y, bandwidth=1.0, seed=3)
    assert linear_mmd(x, y, bandwidth=1.0).z > 3
    with pytest.raises(ValueError, match="`bandwidth` must be > 0"):
        linear_mmd(x, y, bandwidth=0.0)
    with pytest.raises(InputError, match="at least 4 rows"):
        linear_mmd(x[:3], y, bandwidth=1.0)


def test_prediction_drift_tests_the_probability_columns() -> None:
    rng = np.random.default_rng(8)
    logits_ref, logits_cur = rng.normal(size=3000), rng.normal(1.0, 1.0, size=3000)
    probs = [
        np.column_stack([1 - 1 / (1 + np.exp(-z)), 1 / (1 + np.exp(-z))]) for z in (logits_ref, logits_cur)
    ]
    report = prediction_drift(probs[0], probs[1], class_names=["no", "yes"])
    assert report.drifted_columns == ("p_no", "p_yes")
    assert prediction_drift(probs[0], probs[0][::-1]).drifted_columns == ()


# ---------------------------------------------------------------------- the sliding window
def test_the_monitor_tests_exactly_the_last_window_rows() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"a": rng.normal(size=4000), "c": rng.choice(["u", "v"], 4000)})
    reference = DriftReference.fit(ref)
    stream = pd.DataFrame({"a": rng.normal(size=2500), "c": rng.choice(["u", "v"], 2500)})
    monitor = DriftMonitor(reference, window=1000)
    for start in range(0, 2300, 230):  # wraps around the ring more than once
        monitor.update(stream.iloc[start : start + 230])
    monitor.update({"a": stream.a.to_numpy()[2300:], "c": stream.c.to_numpy()[2300:]})
    assert len(monitor) == 1000 and monitor.n_seen == 2500
    direct = detect_drift(reference, stream.iloc[1500:])
    got = monitor.check()
    assert [c.statistic for c in got.columns] == [c.statistic for c in direct.columns]
    assert [c.p_value for c in got.columns] == pytest.approx([c.p_value for c in direct.columns])


def test_the_monitor_flags_drift_once_shifted_rows_fill_the_window() -> None:
    rng = np.random.default_rng(10)
    reference = DriftReference.fit(rng.normal(size=(5000, 2)))
    monitor = DriftMonitor(reference, window=2000)
    for row in rng.normal(size=(2100, 2)):
        monitor.update(row)  # one request at a time
    assert monitor.check().drifted_columns == ()
    monitor.update(rng.normal(size=(2000, 2)) + np.array([0.0, 0.8]))
    assert monitor.check().drifted_columns == ("f1",)
    monitor.reset()
    with pytest.raises(InputError, match="empty"):
        monitor.check()
    with pytest.raises(ValueError, match="`window` must be >= 2"):
        DriftMonitor(reference, window=1)


# ---------------------------------------------------------------------- results and inputs
def test_reports_are_json_ready_with_sorted_keys_and_a_schema_version() -> None:
    rng = np.random.default_rng(11)
    report = detect_drift(DriftReference.fit(rng.normal(size=(300, 2))), rng.normal(size=(200, 2)))
    payload = report.to_dict()
    assert payload["schema_version"] == 1
    assert list(payload) == sorted(payload)
    assert all(list(c) == sorted(c) for c in payload["columns"])
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_bad_inputs_are_clear_errors() -> None:
    reference = DriftReference.fit(np.zeros((10, 2)) + np.arange(10)[:, None])
    with pytest.raises(InputError, match=r"shape \(n, 2\)"):
        detect_drift(reference, np.zeros((5, 3)))
    with pytest.raises(InputError, match="missing from the current data"):
        detect_drift(reference, {"f0": np.zeros(3)})
    with pytest.raises(ValueError, match="`alpha` must be in"):
        detect_drift(reference, np.zeros((5, 2)), alpha=1.5)
    with pytest.raises(InputError, match="infinite"):
        detect_drift(reference, np.array([[np.inf, 0.0]]))
    with pytest.raises(InputError, match="non-numeric"):
        detect_drift(reference, {"f0": np.array(["a"]), "f1": np.array([1.0])})
    with pytest.raises(ValueError, match="`bins` must be >= 2"):
        DriftReference.fit(np.zeros((5, 1)), bins=1)
    with pytest.raises(InputError, match="categorical column not found"):
        DriftReference.fit(np.zeros((5, 1)), categorical=["nope"])


# ---------------------------------------------------------------------- the reference file
@pytest.fixture(scope="module")
def saved_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    rng = np.random.default_rng(12)
    frame = pd.DataFrame(
        {"a": rng.normal(size=60), "b": rng.integers(0, 3, 60), "c": rng.choice(["x", "y"], 60)}
    )
    reference = DriftReference.fit(frame, categorical=["c"], mmd_size=20)
    return reference.save(tmp_path_factory.mktemp("reference") / "ref.npz").read_bytes()


def test_a_saved_reference_loads_back_to_the_same_results(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    frame = pd.DataFrame({"a": rng.normal(size=500), "c": rng.choice(["x", "y", "z"], 500)})
    reference = DriftReference.fit(frame, max_values=100)
    path = reference.save(tmp_path / "sub" / "ref.npz")
    assert [p.name for p in path.parent.iterdir()] == ["ref.npz"]  # no temporary file left behind
    loaded = DriftReference.load(path)
    assert loaded.feature_names == ("a", "c") and loaded.kinds == ("numeric", "categorical")
    cur = pd.DataFrame({"a": rng.normal(0.4, 1, 300), "c": rng.choice(["x", "y"], 300)})
    assert detect_drift(loaded, cur).to_dict() == detect_drift(reference, cur).to_dict()
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(np.load(io.BytesIO(zf.read("metadata.npy"))).tobytes())
    assert meta["schema_version"] == 1 and meta["max_values"] == 100


def _rewrite(data: bytes, **changes: np.ndarray) -> bytes:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def _meta(data: bytes, **changes: object) -> np.ndarray:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(npz["metadata"].tobytes())
    meta.update(changes)
    return np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: {"metadata": _meta(d, schema_version=99)}, "unsupported schema_version 99"),
        (lambda d: {"metadata": _meta(d, kinds=["numeric"])}, "kinds"),
        (lambda d: {"metadata": _meta(d, bins=1)}, "`bins` must be an integer >= 2"),
        (lambda d: {"metadata": np.frombuffer(b"{not json", dtype=np.uint8)}, "metadata is not JSON"),
        (lambda d: {"num_values": np.arange(5.0)[::-1]}, "offsets"),
        (lambda d: {"num_std": np.array([-1.0, 1.0])}, "negative standard deviation"),
        (lambda d: {"cat_values": np.array(["y", "x"])}, "sorted and unique"),
        (lambda d: {"num_offsets": np.array([0, 70, 120])}, "column sizes"),
        (lambda d: {"psi_ref": np.ones((2, 10))}, "sum to 1"),
        (lambda d: {"num_mean": np.array(["a", "b"])}, "unexpected dtype"),
    ],
)
def test_a_tampered_reference_is_a_data_error(
    saved_bytes: bytes, tmp_path: Path, change: object, message: str
) -> None:
    path = tmp_path / "ref.npz"
    path.write_bytes(_rewrite(saved_bytes, **change(saved_bytes)))  # type: ignore[operator]
    with pytest.raises(DataError, match=message) as info:
        DriftReference.load(path)
    assert str(path) in str(info.value)


def test_pickles_missing_arrays_and_non_archives_are_refused(saved_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ref.npz"
    path.write_bytes(_rewrite(saved_bytes, cat_values=np.array([object()], dtype=object)))
    with pytest.raises(DataError, match="pickle"):
        DriftReference.load(path)
    with np.load(io.BytesIO(saved_bytes)) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "psi_edges"}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'psi_edges' missing"):
        DriftReference.load(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="cannot read drift reference"):
        DriftReference.load(path)
    with pytest.raises(DataError, match="file not found"):
        DriftReference.load(tmp_path / "absent.npz")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_reference_bytes_load_or_fail_with_a_data_error(
    saved_bytes: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    raw = bytearray(saved_bytes)
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw)), label="length")]
    for _ in range(data.draw(st.integers(0, 8), label="flips")):
        if raw:
            i = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[i] = data.draw(st.integers(0, 255), label="byte")
    path = tmp_path / "fuzzed.npz"
    path.write_bytes(bytes(raw))
    try:
        loaded = DriftReference.load(path)
    except DataError:
        return
    except GarrisonError as exc:  # pragma: no cover - the assertion explains
        pytest.fail(f"not a DataError: {exc!r}")
    assert len(loaded.feature_names) == len(loaded.kinds)
    detect_drift(loaded, {n: np.zeros(4) for n in loaded.feature_names})


def test_the_monitor_takes_numeric_arrays_with_categorical_codes_and_refuses_infinities() -> None:
    rng = np.random.default_rng(14)
    ref = np.column_stack([rng.normal(size=3000), rng.integers(0, 3, 3000)])
    reference = DriftReference.fit(ref, categorical=[1])
    monitor = DriftMonitor(reference, window=1000, multivariate=False)
    cur = np.column_stack([rng.normal(size=1000), rng.choice([0, 1, 2], 1000, p=[0.1, 0.1, 0.8])])
    monitor.update(cur)
    report = monitor.check()
    assert report.drifted_columns == ("f1",)
    assert report.column("f1").kind == "categorical"
    assert report.column("f1").statistic == detect_drift(reference, cur).column("f1").statistic
    with pytest.raises(InputError, match="infinite"):
        monitor.update(np.array([np.inf, 1.0]))
    assert len(monitor) == 1000


def test_an_array_header_declaring_a_huge_shape_is_a_data_error(saved_bytes: bytes, tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(io.BytesIO(saved_bytes)) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = header.getvalue() + b"\0" * 64 if name == "num_values.npy" else src.read(name)
            dst.writestr(name, data)
    with pytest.raises(DataError, match="cannot read drift reference"):
        DriftReference.load(path)


def test_the_asymptotic_window_check_agrees_with_the_exact_one() -> None:
    from garrison.monitor import DriftMonitor, DriftReference

    rng = np.random.default_rng(3)
    reference = DriftReference.fit(rng.normal(size=(3000, 4)))
    window = rng.normal(size=(800, 4))
    window[:, 0] += 0.4
    exact, asymp = DriftMonitor(reference, window=800), DriftMonitor(reference, window=800, exact=False)
    for m in (exact, asymp):
        m.update(window)
    a, b = exact.check(), asymp.check()
    assert a.drifted_columns == b.drifted_columns == ("f0",)
    for col_a, col_b in zip(a.columns, b.columns, strict=True):
        assert col_a.statistic == pytest.approx(col_b.statistic, abs=1e-12)
        assert abs(col_a.p_value - col_b.p_value) <= 0.05 * max(col_a.p_value, 1e-12) + 1e-12


def test_the_window_returns_its_rows_oldest_first() -> None:
    from garrison.monitor import DriftMonitor, DriftReference

    monitor = DriftMonitor(DriftReference.fit(np.zeros((10, 2)) + np.arange(10)[:, None]), window=4)
    monitor.update(np.arange(6, dtype=float).repeat(2).reshape(6, 2))
    assert monitor.rows()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    monitor.update(np.array([[9.0, 9.0]]))
    assert monitor.rows()[:, 0].tolist() == [3.0, 4.0, 5.0, 9.0]
