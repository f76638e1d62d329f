from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import brier_score_loss

from garrison.adapters import FunctionClassifier, InputSpec
from garrison.audit.checks import PerformanceCheck, expected_calibration_error, wilson_interval
from garrison.core import BudgetExceeded, CheckResult, CheckStatus, ModelInputMismatchError
from garrison.data import Dataset, infer_array_schema
from garrison.testing import CountingClassifier, TinyTabular, assert_conforms, make_context


def table_model(probs: np.ndarray, classes: tuple[Any, ...] | None = None) -> FunctionClassifier:
    """A model whose input is a row number and whose output is that row of ``probs``."""

    def fn(x: np.ndarray) -> np.ndarray:
        return probs[np.asarray(x, dtype=np.float64)[:, 0].astype(int)]

    return FunctionClassifier(fn, n_classes=probs.shape[1], input_spec=InputSpec((1,)), classes=classes)


def row_dataset(y: np.ndarray) -> Dataset:
    x = np.arange(len(y), dtype=np.float64).reshape(-1, 1)
    return Dataset("rows", x, np.asarray(y), infer_array_schema(x))


def random_problem(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    # labels drawn from the predicted distribution, then made worse on a third: a miscalibrated model
    y = np.array([rng.choice(k, p=p) for p in probs])
    y[: n // 3] = rng.integers(0, k, n // 3)
    return probs, y


def run(probs: np.ndarray, y: np.ndarray, classes: tuple[Any, ...] | None = None, **opts: Any) -> CheckResult:
    return PerformanceCheck(**opts).run(make_context(table_model(probs, classes), row_dataset(y), seed=5))


def naive_ece(probs: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Straightforward ECE for n divisible by n_bins: sort by confidence, cut into equal chunks, loop."""
    n = len(y)
    assert n % n_bins == 0
    confidence = [float(max(row)) for row in probs]
    correct = [float(int(np.argmax(row)) == int(label)) for row, label in zip(probs, y, strict=True)]
    order = sorted(range(n), key=lambda i: confidence[i])
    size = n // n_bins
    total = 0.0
    for b in range(n_bins):
        members = order[b * size : (b + 1) * size]
        accuracy = sum(correct[i] for i in members) / size
        mean_confidence = sum(confidence[i] for i in members) / size
        total += size / n * abs(accuracy - mean_confidence)
    return total


def test_ece_by_hand() -> None:
    # sorted confidences 0.6 (wrong), 0.7, 0.8, 0.9 (right); two bins: |0.5-0.65| and |1-0.85| -> 0.15
    confidence = np.array([0.9, 0.8, 0.6, 0.7])
    correct = np.array([True, True, False, True])
    assert expected_calibration_error(confidence, correct, n_bins=2) == pytest.approx(0.15)
    assert expected_calibration_error(confidence, correct, n_bins=1) == pytest.approx(abs(0.75 - 0.75))
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0.0
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0, dtype=bool)))


def test_ece_metric_matches_an_independent_computation() -> None:
    probs, y = random_problem(300, 3, seed=11)
    result = run(probs, y)
    ece = result.metric("ece")
    assert ece is not None
    assert ece.value == pytest.approx(naive_ece(probs, y, 15), abs=1e-12)
    assert ece.value > 0.02  # the problem is miscalibrated on purpose
    assert ece.n == 300
    assert ece.higher_is_better is False
    assert ece.ci_low is not None
    assert ece.ci_high is not None
    assert 0.0 <= ece.ci_low <= ece.value <= ece.ci_high


def test_perfect_calibration_has_zero_ece() -> None:
    probs = np.tile([[1.0, 0.0], [0.0, 1.0]], (15, 1))
    y = np.tile([0, 1], 15)
    result = run(probs, y)
    assert result.metric("ece").value == 0.0  # type: ignore[union-attr]
    assert result.metric("accuracy").value == 1.0  # type: ignore[union-attr]
    assert result.metric("brier").value == 0.0  # type: ignore[union-attr]


def test_accuracy_recall_and_brier_against_references() -> None:
    probs, y = random_problem(150, 3, seed=2)
    labels = np.array(["cat", "dog", "eel"], dtype=object)[y]
    result = run(probs, labels, classes=("cat", "dog", "eel"), n_bootstrap=0)
    by_index = run(probs, y, n_bootstrap=0)
    assert by_index.metric("recall.0").value == result.metric("recall.cat").value  # type: ignore[union-attr]

    pred = probs.argmax(axis=1)
    k = int((pred == y).sum())
    accuracy = result.metric("accuracy")
    assert accuracy is not None
    assert accuracy.value == k / 150
    reference = binomtest(k, 150).proportion_ci(method="wilson")
    assert (accuracy.ci_low, accuracy.ci_high) == pytest.approx((reference.low, reference.high), abs=1e-9)

    recalls = []
    for c, name in enumerate(("cat", "dog", "eel")):
        metric = result.metric(f"recall.{name}")
        assert metric is not None
        assert metric.higher_is_better is True
        support, hits = int((y == c).sum()), int(((y == c) & (pred == c)).sum())
        assert (metric.value, metric.n) == (hits / support, support)
        recalls.append(hits / support)
    assert result.metric("macro_recall").value == pytest.approx(np.mean(recalls))  # type: ignore[union-attr]

    brier = result.metric("brier")
    assert brier is not None
    assert brier.higher_is_better is False
    assert brier.value == pytest.approx(brier_score_loss(y, probs, labels=[0, 1, 2]))
    assert brier.ci_low < brier.value < brier.ci_high  # type: ignore[operator]
    assert result.metric("n").value == 150  # type: ignore[union-attr]
    assert result.metric("ece").ci_low is None  # type: ignore[union-attr]  # no bootstrap asked for


def test_wilson_interval_known_values() -> None:
    assert wilson_interval(8, 10) == pytest.approx((0.4901624715, 0.9433178485))
    assert wilson_interval(0, 5)[0] == 0.0
    assert wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_a_class_never_recognised_is_a_finding() -> None:
    # class 1 ("b") is never the top class
    probs = np.tile([[0.7, 0.2, 0.1], [0.2, 0.1, 0.7]], (10, 1))
    y = np.tile(np.array(["a", "c"], dtype=object), 10)
    y[:4] = "b"
    result = run(probs, y, classes=("a", "b", "c"))

    [dead] = result.findings
    assert dead.rule_id == "GAR-PF-001"
    assert dead.location == "class:b"
    assert dead.check_id == "performance"
    assert dead.evidence_dict() == {
        "class": "b",
        "support": 4,
        "recall": 0.0,
        "predicted_as": {"a": 2, "c": 2},
    }
    assert result.metric("recall.b").value == 0.0  # type: ignore[union-attr]


def test_a_class_absent_from_the_test_set_is_no_finding() -> None:
    probs = np.tile([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]], (10, 1))
    y = np.tile(np.array(["a", "b"], dtype=object), 10)
    result = run(probs, y, classes=("a", "b", "c"))
    assert result.findings == ()
    assert result.metric("recall.c") is None
    rows = {r["class"]: r for r in result.figures[1].table}
    assert rows["c"] == {
        "class": "c",
        "support": 0,
        "correct": 0,
        "recall": None,
        "ci_low": None,
        "ci_high": None,
    }


def test_batches_give_the_same_metrics() -> None:
    probs, y = random_problem(45, 2, seed=4)
    counting = CountingClassifier(table_model(probs))
    small = PerformanceCheck(batch_size=7).run(make_context(counting, row_dataset(y), seed=5))
    assert counting.calls == math.ceil(45 / 7)
    assert small.to_dict()["metrics"] == run(probs, y).to_dict()["metrics"]


def test_bootstrap_is_seeded() -> None:
    probs, y = random_problem(90, 3, seed=8)
    model, data = table_model(probs), row_dataset(y)
    check = PerformanceCheck()
    a = check.run(make_context(model, data, seed=1)).metric("ece")
    b = check.run(make_context(model, data, seed=1)).metric("ece")
    c = check.run(make_context(model, data, seed=2)).metric("ece")
    assert a == b
    assert a is not None
    assert c is not None
    assert a.value == c.value
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_reliability_diagram_is_valid_svg() -> None:
    probs, y = random_problem(150, 3, seed=1)
    figure = run(probs, y).figures[0]
    assert figure.svg is not None
    root = ET.fromstring(figure.svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(root.findall("{http://www.w3.org/2000/svg}circle")) == 15
    assert [b["n"] for b in figure.table] == [10] * 15
    assert all(0 <= b["accuracy"] <= 1 for b in figure.table)


def test_unknown_labels_are_a_mismatch() -> None:
    probs = np.full((4, 2), 0.5)
    with pytest.raises(ModelInputMismatchError, match="'zebra'"):
        run(probs, np.array(["a", "b", "zebra", "a"], dtype=object), classes=("a", "b"))


def test_wrong_output_shape_is_a_mismatch() -> None:
    model = FunctionClassifier(lambda x: np.full((len(x), 3), 1 / 3), n_classes=2, input_spec=InputSpec((1,)))
    with pytest.raises(ModelInputMismatchError, match="shape"):
        PerformanceCheck().run(make_context(model, row_dataset(np.array([0, 1]))))


def test_spent_budget_stops_the_run() -> None:
    probs, y = random_problem(30, 2, seed=0)
    ctx = make_context(table_model(probs), row_dataset(y), budget_s=1e-12)
    with pytest.raises(BudgetExceeded):
        PerformanceCheck().run(ctx)


def test_skips_unlabelled_data() -> None:
    data = row_dataset(np.array([0, 1]))
    unlabelled = Dataset(data.name, data.x, None, data.schema)
    result = PerformanceCheck().run(make_context(table_model(np.eye(2)), unlabelled))
    assert result.status is CheckStatus.SKIPPED
    assert result.reason == "the test set has no labels"


def test_reference_model_is_better_than_chance(tiny: TinyTabular) -> None:
    result = PerformanceCheck().run(make_context(tiny.model, tiny.test))
    assert result.metric("accuracy").value > 0.5  # type: ignore[union-attr]
    assert {m.name for m in result.metrics} >= {"recall.high", "recall.low", "recall.medium"}


def test_conforms_to_the_check_contract(tiny: TinyTabular) -> None:
    assert_conforms(PerformanceCheck, lambda: make_context(tiny.model, tiny.test, tiny.train, seed=3))
