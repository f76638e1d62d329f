"""QueryMonitor: extraction scripts are flagged within a few dozen queries, replayed benign traffic never is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from garrison.adapters import SklearnClassifier
from garrison.core.errors import InputError
from garrison.monitor.detectors import OODDetector
from garrison.monitor.probing import SIGNAL_KINDS, ProbingThresholds, QueryMonitor
from garrison.testing.extraction import boundary_queries, uniform_queries

# Measured with the defaults (bench/probing_bench.py, docs/detectors.md): both extraction scripts are flagged at
# query 30, the first query at which share-based signals may fire (min_queries).
QUERIES_TO_FLAG = 30


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    """Breast cancer, shuffled: 200 rows train the model, 140 calibrate the monitor, 229 are replayed."""
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    train, cal, replay = x[:200], x[200:340], x[340:]
    model = SklearnClassifier(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train, y[:200])
    )
    ood = OODDetector().fit(x[:340])
    return {
        "model": model,
        "cal": cal,
        "replay": replay,
        "ood": ood,
        "lo": x.min(axis=0),
        "hi": x.max(axis=0),
    }


def monitor(setup: dict[str, Any], **kwargs: Any) -> QueryMonitor:
    return QueryMonitor(ood=setup["ood"], **kwargs).fit(
        setup["cal"], setup["model"].predict_proba(setup["cal"])
    )


def first_flag(
    mon: QueryMonitor, model: Any, key: str, queries: Iterator[np.ndarray], limit: int = 2000
) -> tuple[int, list[str]]:
    """Send ``queries`` one per second as ``key``; the query count and signal kinds at the first flag."""
    for n, row in enumerate(queries, 1):
        signals = mon.observe(key, row, model.predict_proba(row[None, :]), now=float(n))
        if signals:
            return n, [s.kind for s in signals]
        if n >= limit:
            break
    return -1, []


def test_random_query_extraction_is_flagged_quickly(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    n, kinds = first_flag(mon, setup["model"], "attacker", uniform_queries(setup["lo"], setup["hi"]))
    assert 0 < n <= QUERIES_TO_FLAG
    assert "ood_share" in kinds


def test_boundary_probing_extraction_is_flagged_quickly(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    queries = boundary_queries(setup["model"], setup["cal"][:10], setup["hi"] - setup["lo"])
    n, kinds = first_flag(mon, setup["model"], "attacker", queries)
    assert 0 < n <= QUERIES_TO_FLAG
    assert "boundary" in kinds


def test_replayed_benign_traffic_is_never_flagged(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    model, replay = setup["model"], setup["replay"]
    rng = np.random.default_rng(3)
    now, sent, fired = 0.0, 0, []
    for k in range(14):  # 14 keys, each replaying the held-out rows once in its own random order
        for i in rng.permutation(len(replay)):
            now += 0.25
            sent += 1
            fired += mon.observe(f"key-{k}", replay[i], model.predict_proba(replay[i : i + 1]), now)
    assert sent >= 3000
    assert fired == []
    summary = mon.key_summary("key-0")
    assert summary is not None
    assert summary["total"] == len(replay)
    assert summary["n_recent"] == mon.thresholds.history
    assert summary["boundary_share"] < mon.thresholds.boundary_share


def test_batched_benign_traffic_is_not_flagged_but_a_repeated_batch_is(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    model, replay = setup["model"], setup["replay"]
    for start in range(0, len(replay), 16):
        batch = replay[start : start + 16]
        assert mon.observe("benign", batch, model.predict_proba(batch), now=float(start)) == []
    batch = replay[:40]
    probs = model.predict_proba(batch)
    assert mon.observe("replayer", batch, probs, now=0.0) == []
    signals = mon.observe(
        "replayer", batch, probs, now=1.0
    )  # the same 40 rows again: membership-style probing
    assert [s.kind for s in signals] == ["near_duplicates"]
    assert signals[0].score >= 0.5
    assert json.loads(json.dumps(signals[0].to_dict()))["detail"]["n_recent"] == 80


def test_volume_counts_a_sliding_window(setup: dict[str, Any]) -> None:
    mon = monitor(setup, thresholds=ProbingThresholds(window_s=60.0, max_queries=100))
    model, replay = setup["model"], setup["replay"]
    rows = replay[:60]
    probs = model.predict_proba(rows)
    assert mon.observe("k", rows, probs, now=0.0) == []
    signals = mon.observe("k", rows, probs, now=10.0)
    assert any(s.kind == "volume" and s.score == 120 for s in signals)
    later = [s.kind for s in mon.observe("k", rows[:5], probs[:5], now=200.0)]
    assert "volume" not in later


def test_state_is_bounded_per_key_and_in_keys(setup: dict[str, Any]) -> None:
    mon = monitor(setup, max_keys=3, thresholds=ProbingThresholds(history=32, min_queries=16))
    model, replay = setup["model"], setup["replay"]
    probs = model.predict_proba(replay)
    for key in ("a", "b", "c", "d"):
        mon.observe(key, replay[:5], probs[:5], now=0.0)
    assert len(mon) == 3
    assert "a" not in mon
    mon.observe("b", replay[:5], probs[:5], now=1.0)  # b is now the most recent
    mon.observe("e", replay[:5], probs[:5], now=2.0)
    assert "b" in mon
    assert "c" not in mon
    mon.observe("b", replay, probs, now=3.0)  # a batch larger than the history keeps only its last rows
    summary = mon.key_summary("b")
    assert summary is not None
    assert summary["n_recent"] == 32
    assert summary["total"] == 10 + len(replay)
    mon.forget("b")
    assert mon.key_summary("b") is None


def test_observe_validates_its_inputs(setup: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        QueryMonitor().observe("k", np.zeros((1, 30)), np.ones((1, 2)) / 2, now=0.0)
    mon = monitor(setup)
    with pytest.raises(InputError, match="30 features"):
        mon.observe("k", np.zeros((1, 5)), np.ones((1, 2)) / 2, now=0.0)
    with pytest.raises(InputError, match="`probs`"):
        mon.observe("k", np.zeros((2, 30)), np.ones((1, 2)) / 2, now=0.0)
    with pytest.raises(ValueError, match="`now`"):
        mon.observe("k", np.zeros((1, 30)), np.ones((1, 2)) / 2, now=float("nan"))
    with pytest.raises(ValueError, match="`min_queries`"):
        ProbingThresholds(history=10, min_queries=20)
    with pytest.raises(ValueError, match="`boundary_share`"):
        ProbingThresholds(boundary_share=0.0)


def test_non_finite_queries_count_as_out_of_distribution(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    rows = np.full((40, 30), np.nan)
    signals = mon.observe("k", rows, np.full((40, 2), 0.5), now=0.0)
    assert "ood_share" in [s.kind for s in signals]


def test_to_dict_reports_the_calibration(setup: dict[str, Any]) -> None:
    mon = monitor(setup)
    d = json.loads(json.dumps(mon.to_dict()))
    assert d["duplicate_radius"] > 0
    assert 0 < d["margin_threshold"] < 1
    assert d["ood"]["n_features"] == 30
    assert set(SIGNAL_KINDS) == {"volume", "near_duplicates", "boundary", "ood_share"}


def test_old_rows_leave_the_shares_when_the_history_wraps(setup: dict[str, Any]) -> None:
    mon = monitor(setup, thresholds=ProbingThresholds(history=64, min_queries=16))
    model, replay = setup["model"], setup["replay"]
    assert "ood_share" in [
        s.kind for s in mon.observe("k", np.full((50, 30), np.nan), np.full((50, 2), 0.5), 0.0)
    ]
    for start, size in ((0, 7), (7, 20), (27, 1), (28, 30), (58, 13)):  # 71 benign rows in odd-sized batches
        rows = replay[start : start + size]
        signals = mon.observe("k", rows, model.predict_proba(rows), now=1.0 + start)
    summary = mon.key_summary("k")
    assert summary is not None
    assert summary["ood_share"] < 0.05  # every NaN row has been pushed out of the 64-row history
    assert signals == []
