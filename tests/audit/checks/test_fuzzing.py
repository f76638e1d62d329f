from __future__ import annotations

import json
from typing import Any

import numpy as np
from tabular_models import logistic_pipeline
from threadpoolctl import threadpool_limits

from garrison.adapters import FunctionClassifier, InputSpec, SklearnClassifier, linear_classifier
from garrison.audit.checks import InputFuzzingCheck
from garrison.audit.context import AuditContext
from garrison.core import CheckResult, CheckStatus, InputError, RemoteModelError
from garrison.data import Dataset, infer_array_schema
from garrison.testing import TinyTabular, assert_conforms, make_context

ALL_PROBES = {
    "nan", "posinf", "neginf", "huge", "tiny", "out_of_bounds", "category", "dtype_object", "dtype_int",
    "shape_extra", "shape_missing", "shape_1d", "empty", "repeat", "one_at_a_time", "shuffled",
}  # fmt: skip


def fuzz(model: Any, test: Dataset, *, seed: int = 0, **options: Any) -> CheckResult:
    return InputFuzzingCheck(**options).run(make_context(model, test, seed=seed))


def table(result: CheckResult) -> dict[str, dict[str, Any]]:
    return {row["probe"]: row for row in result.figures[0].table}


def locations(result: CheckResult, rule_id: str) -> set[str]:
    return {f.location for f in result.findings if f.rule_id == rule_id and f.location is not None}


def finding(result: CheckResult, rule_id: str, location: str) -> Any:
    return next(f for f in result.findings if f.rule_id == rule_id and f.location == location)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_logistic_pipeline_rejects_nan_cleanly(tiny: TinyTabular) -> None:
    model = logistic_pipeline(tiny, handle_unknown="error")
    result = fuzz(model, tiny.test)

    rows = table(result)
    assert rows["nan"]["outcome"] == "rejected"
    assert rows["nan"]["rejected"] == rows["nan"]["probes"] == 5  # every feature of the schema
    assert not locations(result, "GAR-FZ-001")
    assert "fuzz:nan" not in locations(result, "GAR-FZ-004")
    # an out-of-range colour code reaches the pipeline as an unknown category, which OneHotEncoder refuses...
    category = finding(result, "GAR-FZ-004", "fuzz:category")
    # ...while the lenient boolean decode turns code 2 into True: only `member` is accepted silently
    assert category.evidence_dict()["features"] == ["member"]
    assert rows["shape_extra"]["outcome"] == rows["shape_1d"]["outcome"] == "rejected"


def test_unknown_categories_ignored_by_the_pipeline_are_silent_acceptance(tiny: TinyTabular) -> None:
    model = logistic_pipeline(tiny, handle_unknown="ignore")
    result = fuzz(model, tiny.test)

    category = finding(result, "GAR-FZ-004", "fuzz:category")
    evidence = category.evidence_dict()
    assert evidence["features"] == ["colour", "member"]
    assert evidence["outcomes"] == {"silent_acceptance": 4}
    assert evidence["max_confidence"] >= 0.5


def test_hist_gradient_boosting_accepts_nan_silently(
    tiny: TinyTabular, hist_gradient_boosting: SklearnClassifier
) -> None:
    with threadpool_limits(limits=1, user_api="openmp"):  # OpenMP start-up dominates 60 tiny batches
        result = fuzz(hist_gradient_boosting, tiny.test)

    nan = finding(result, "GAR-FZ-004", "fuzz:nan")
    evidence = nan.evidence_dict()
    assert evidence["probe"] == "nan"
    assert evidence["n_inputs"] == 5 * 8
    assert evidence["outcomes"] == {"silent_acceptance": 5}
    assert 0.5 <= evidence["max_confidence"] <= 1.0
    assert nan.check_id == "fuzzing"
    assert not locations(result, "GAR-FZ-001")
    assert not locations(result, "GAR-FZ-003")
    assert result.metric("silent_acceptances").value >= 5  # type: ignore[union-attr]


def test_index_error_on_a_wrong_shape_is_a_crash(numbers: Dataset) -> None:
    w = np.eye(4, 3)

    def fn(x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != 4:
            raise IndexError(f"index 4 is out of bounds for axis 1 with size {x.shape[-1]}")
        return softmax(np.asarray(x, dtype=np.float64) @ w)

    model = FunctionClassifier(fn, n_classes=3, input_spec=InputSpec((4,)))
    result = fuzz(model, numbers)

    assert locations(result, "GAR-FZ-001") == {"fuzz:shape_extra", "fuzz:shape_missing", "fuzz:shape_1d"}
    crash = finding(result, "GAR-FZ-001", "fuzz:shape_extra")
    assert crash.evidence_dict()["exception_type"] == "IndexError"
    # the message may echo input values: it is kept, but marked sensitive
    assert "exception_message" not in crash.evidence_dict()
    assert crash.evidence_dict(include_sensitive=True)["exception_message"].startswith(
        "index 4 is out of bounds"
    )
    assert result.metric("crashes").value == 3  # type: ignore[union-attr]


def test_nan_probabilities_are_invalid_output(numbers: Dataset) -> None:
    model = linear_classifier(np.eye(4, 3))  # softmax of NaN is NaN: no validation, no rejection
    result = fuzz(model, numbers)

    invalid = finding(result, "GAR-FZ-002", "fuzz:nan")
    assert invalid.evidence_dict()["problems"] == ["non-finite probabilities"]
    assert invalid.evidence_dict()["outcomes"] == {"invalid_output": 4}
    assert {"fuzz:nan", "fuzz:posinf", "fuzz:neginf"} <= locations(result, "GAR-FZ-002")
    assert "fuzz:tiny" not in locations(result, "GAR-FZ-002")
    assert result.metric("invalid_outputs").value >= 12  # type: ignore[union-attr]


def test_wrong_output_shape_on_an_empty_batch_is_invalid_output(numbers: Dataset) -> None:
    inner = linear_classifier(np.eye(4, 3))

    def fn(x: np.ndarray) -> np.ndarray:
        return np.zeros(0) if len(x) == 0 else inner.predict_proba(x)

    result = fuzz(FunctionClassifier(fn, n_classes=3, input_spec=InputSpec((4,))), numbers)

    empty = finding(result, "GAR-FZ-002", "fuzz:empty")
    assert empty.evidence_dict()["problems"] == ["shape (0,) instead of (0, 3)"]


def test_random_noise_is_nondeterministic(numbers: Dataset) -> None:
    noise = np.random.default_rng()

    def fn(x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ np.eye(4, 3)
        return softmax(z + noise.normal(scale=0.1, size=z.shape))

    result = fuzz(FunctionClassifier(fn, n_classes=3, input_spec=InputSpec((4,))), numbers)

    assert locations(result, "GAR-FZ-003") == {"fuzz:repeat", "fuzz:one_at_a_time", "fuzz:shuffled"}
    repeat = finding(result, "GAR-FZ-003", "fuzz:repeat").evidence_dict()
    assert repeat["max_abs_diff"] > 1e-6
    assert repeat["atol"] == 1e-6
    assert result.metric("nondeterministic").value == 3  # type: ignore[union-attr]


def test_noise_below_atol_is_deterministic_enough(numbers: Dataset) -> None:
    noise = np.random.default_rng()

    def fn(x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ np.eye(4, 3)
        return softmax(z + noise.normal(scale=1e-9, size=z.shape))

    result = fuzz(FunctionClassifier(fn, n_classes=3, input_spec=InputSpec((4,))), numbers, atol=1e-3)
    assert not locations(result, "GAR-FZ-003")


def validating_model(
    test: Dataset, inner: Any, *, reject: type[Exception] | None = None
) -> FunctionClassifier:
    """A model that checks dtype, shape and schema before predicting, and rejects everything invalid."""
    schema = test.schema

    def refuse(message: str) -> Exception:
        return reject(message) if reject is not None else InputError(message, field="x")

    def fn(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind not in "fiu":
            raise refuse(f"expected a numeric array, got {x.dtype}")
        if x.ndim != 2 or x.shape[1:] != schema.sample_shape:
            raise refuse(f"expected shape (n, {schema.n_features}), got {x.shape}")
        if schema.violations(x).any():
            raise refuse("input violates the schema")
        return np.asarray(inner.predict_proba(x))

    return FunctionClassifier(
        fn, n_classes=inner.n_classes, input_spec=inner.input_spec, classes=inner.classes
    )


def test_a_model_that_validates_its_schema_has_no_findings(tiny: TinyTabular) -> None:
    result = fuzz(validating_model(tiny.test, tiny.model), tiny.test)

    assert result.status is CheckStatus.OK
    assert result.findings == ()
    metrics = {m.name: m for m in result.metrics}
    assert metrics["rejection_rate"].value == 1.0
    assert metrics["rejection_rate"].higher_is_better is True
    assert metrics["crashes"].value == metrics["invalid_outputs"].value == 0
    assert metrics["silent_acceptances"].value == metrics["nondeterministic"].value == 0
    rows = table(result)
    assert set(rows) == ALL_PROBES
    assert metrics["probes_run"].value == sum(r["probes"] for r in rows.values())
    assert rows["empty"]["outcome"] == "accepted"  # a (0, n_classes) answer is fine
    assert {rows[p]["outcome"] for p in ("nan", "posinf", "out_of_bounds", "category", "shape_1d")} == {
        "rejected"
    }


def test_remote_4xx_is_a_rejection_and_5xx_a_crash(numbers: Dataset) -> None:
    def remote(status: int) -> FunctionClassifier:
        model = validating_model(numbers, linear_classifier(np.eye(4, 3)), reject=None)

        def fn(x: np.ndarray) -> np.ndarray:
            try:
                return model.predict_proba(x)
            except (InputError, ValueError, TypeError) as exc:
                raise RemoteModelError(
                    "request refused", url="http://127.0.0.1:9/predict", status_code=status
                ) from exc

        return FunctionClassifier(fn, n_classes=3, input_spec=InputSpec((4,)))

    assert not fuzz(remote(422), numbers).findings
    crashed = fuzz(remote(503), numbers)
    assert "fuzz:nan" in locations(crashed, "GAR-FZ-001")
    assert finding(crashed, "GAR-FZ-001", "fuzz:nan").evidence_dict()["exception_type"] == "RemoteModelError"


def test_same_seed_gives_the_same_result(tiny: TinyTabular) -> None:
    first = fuzz(tiny.model, tiny.test, seed=1).to_dict()
    second = fuzz(tiny.model, tiny.test, seed=1).to_dict()
    first.pop("duration_s"), second.pop("duration_s")
    assert first == second
    json.dumps(first, allow_nan=False)


def test_max_features_limits_the_feature_probes(numbers: Dataset) -> None:
    result = fuzz(linear_classifier(np.eye(4, 3)), numbers, max_features=2, n_rows=3)
    rows = table(result)
    assert rows["nan"]["probes"] == 2
    assert rows["nan"]["inputs"] == 2 * 3
    assert rows["huge"]["probes"] == 2 * 3  # 1e300, 1e30, -1e30


class RecordingTask:
    def __init__(self, total: int | None) -> None:
        self.total = total
        self.advanced = 0
        self.finished = 0

    def advance(self, n: int = 1) -> None:
        self.advanced += n

    def done(self) -> None:
        self.finished += 1


class RecordingProgress:
    def __init__(self) -> None:
        self.tasks: list[RecordingTask] = []

    def task(self, description: str, total: int | None = None) -> RecordingTask:
        self.tasks.append(RecordingTask(total))
        return self.tasks[-1]


def test_progress_is_reported(numbers: Dataset) -> None:
    progress = RecordingProgress()
    InputFuzzingCheck().run(make_context(linear_classifier(np.eye(4, 3)), numbers, progress=progress))
    [task] = progress.tasks
    assert task.total == task.advanced > 0
    assert task.finished == 1


def test_skips_without_a_model() -> None:
    result = InputFuzzingCheck().run(AuditContext())
    assert result.status is CheckStatus.SKIPPED
    assert result.reason == "needs a model and a test set"


def test_conforms_to_the_check_contract(tiny: TinyTabular) -> None:
    assert_conforms(InputFuzzingCheck, lambda: make_context(tiny.model, tiny.test, tiny.train, seed=3))


def test_image_like_samples() -> None:
    x = np.random.default_rng(0).random((12, 1, 4, 4))
    images = Dataset("images", x, np.arange(12) % 2, infer_array_schema(x))
    result = fuzz(linear_classifier(np.ones((16, 2))), images, max_features=3)
    rows = table(result)
    assert rows["nan"]["probes"] == 3
    assert rows["shape_extra"]["outcome"] == "rejected"  # (n, 1, 4, 5) does not fit the weights
    assert rows["out_of_bounds"]["probes"] == 6  # pixel range from the data
    assert "fuzz:nan" in locations(result, "GAR-FZ-002")
