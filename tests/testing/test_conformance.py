from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

from garrison.audit.checks import InputFuzzingCheck, PerformanceCheck
from garrison.audit.context import AuditContext
from garrison.core import (
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    Metric,
    Severity,
    Stage,
    Subject,
    SubjectKind,
)
from garrison.core.schema_spec import Spec
from garrison.testing import (
    CONTRACT,
    ContextFactory,
    TinyTabular,
    assert_conforms,
    check_conformance,
    make_context,
    parametrize_checks,
    tiny_tabular_dataset,
)


@pytest.fixture(scope="module")
def reference() -> TinyTabular:
    return tiny_tabular_dataset(seed=0)


@pytest.fixture
def factory(reference: TinyTabular) -> ContextFactory:
    """Fresh contexts over one fitted reference model (fitting once keeps the tests fast)."""
    return lambda: make_context(reference.model, reference.test, reference.train, seed=1)


class GoodCheck:
    """A minimal conforming check: the mean top-class confidence on a few seeded rows."""

    id: ClassVar[str] = "good"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"model", "test"})
    options: ClassVar[Mapping[str, Spec]] = {"n_rows": Spec("int", default=5, ge=1)}
    description: ClassVar[str] = "mean top-class confidence on a few rows"

    def __init__(self, *, n_rows: int = 5) -> None:
        self.n_rows = n_rows

    def confidence(self, ctx: AuditContext) -> float:
        assert ctx.model is not None
        assert ctx.test is not None
        ctx.budget.check()
        rows = ctx.rng(self.id).choice(len(ctx.test.x), self.n_rows, replace=False)
        return float(np.asarray(ctx.model.predict_proba(ctx.test.x[rows])).max(axis=1).mean())

    def run(self, ctx: AuditContext) -> CheckResult:
        return CheckResult(self.id, self.stage, metrics=(Metric("confidence", self.confidence(ctx)),))


def finding(rule_id: str = "GAR-FZ-001", check_id: str | None = "good", **evidence: Any) -> Finding:
    return Finding(
        rule_id=rule_id,
        title="t",
        severity=Severity.LOW,
        stage=Stage.MODEL,
        subject=Subject(SubjectKind.MODEL, "m"),
        message="m",
        evidence=tuple(Evidence(k, v) for k, v in evidence.items()),
        check_id=check_id,
    )


def problems_of(check_cls: type, factory: ContextFactory) -> str:
    return "\n".join(check_conformance(check_cls, factory))


def test_a_good_check_conforms(factory: ContextFactory) -> None:
    assert check_conformance(GoodCheck, factory) == []
    assert_conforms(GoodCheck, factory)


def test_default_context_is_the_reference_problem() -> None:
    assert check_conformance(GoodCheck) == []


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("id", "Good Check", "`id` must be lower-case letters, digits"),
        ("id", 7, "`id` must be a str"),
        ("stage", "model", "`stage` must be a Stage"),
        ("deterministic", 1, "`deterministic` must be a bool"),
        ("requires", {"model"}, "`requires` must be a frozenset"),
        (
            "requires",
            frozenset({"model", "gpu"}),
            "`requires` may only name artifacts, model, test, train; got gpu",
        ),
        ("description", "  ", "`description` must not be empty"),
        ("options", [("n_rows", Spec("int"))], "`options` must be a Mapping"),
    ],
)
def test_bad_class_attributes(attribute: str, value: object, problem: str, factory: ContextFactory) -> None:
    bad = type("Bad", (GoodCheck,), {attribute: value})
    problems = check_conformance(bad, factory)
    assert any(problem in p for p in problems), problems
    # nothing else is run on a class whose attributes are broken
    assert all(p.startswith("attributes: ") for p in problems)


def test_missing_attribute(factory: ContextFactory) -> None:
    class NoStage:
        id = "no-stage"
        deterministic = True
        requires = frozenset()
        options: ClassVar[dict[str, Spec]] = {}
        description = "x"

        def run(self, ctx: AuditContext) -> CheckResult:
            raise AssertionError

    assert check_conformance(NoStage, factory) == ["attributes: missing class attribute `stage`"]


def test_option_problems(factory: ContextFactory) -> None:
    class BadOptions(GoodCheck):
        options: ClassVar[Mapping[str, Spec]] = {
            "n_rows": Spec("int", default=0, ge=1),  # default breaks its own Spec, and the constructor's
            "ghost": Spec("str", default="x"),  # not a constructor keyword
            "plain": "not a spec",  # type: ignore[dict-item]
        }

        def __init__(self, positional: int = 1, *, n_rows: int = 5, plain: str = "p") -> None:
            self.positional, self.n_rows, self.plain = positional, n_rows, plain

    text = problems_of(BadOptions, factory)
    assert "options: default of option `n_rows` fails its own Spec: `n_rows` must be >= 1, got 0" in text
    assert "options: option `ghost` is not a constructor keyword" in text
    assert "options: option `plain` must be a garrison.core.schema_spec.Spec, got str" in text
    assert "options: constructor parameter `positional` must be keyword-only" in text
    assert "options: constructor parameter `positional` has no Spec in `options`" in text
    assert "options: constructor default of `n_rows` (5) differs from its Spec default (0)" in text
    assert "options: constructing with the Spec defaults raised TypeError" in text


def test_constructor_must_only_store(factory: ContextFactory) -> None:
    class Stateful(GoodCheck):
        def __init__(self, *, n_rows: int = 5) -> None:
            super().__init__(n_rows=n_rows)
            self.created = time.perf_counter_ns()

    assert "constructor: constructing twice gave different state" in problems_of(Stateful, factory)


def test_result_problems(factory: ContextFactory) -> None:
    class Sloppy(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            value = self.confidence(ctx)
            return CheckResult(
                "sloppy",
                Stage.DATA,
                metrics=(Metric("confidence", value), Metric("confidence", value)),
                findings=(
                    finding("GAR-NOPE-001"),
                    finding(check_id=None),
                    finding(count=np.int64(3)),
                ),
            )

    text = problems_of(Sloppy, factory)
    assert "run: result.check_id is 'sloppy', expected the check's id 'good'" in text
    assert "run: result.stage is <Stage.DATA: 'data'>, expected the check's stage" in text
    assert "run: metric name 'confidence' appears more than once" in text
    assert "run: finding rule 'GAR-NOPE-001' is not in the rule catalogue" in text
    assert "run: finding GAR-FZ-001 has check_id None, expected 'good'" in text
    assert "run: result.to_dict() is not strict JSON" in text


def test_nan_in_evidence_is_not_strict_json(factory: ContextFactory) -> None:
    class NanEvidence(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            return CheckResult(self.id, self.stage, findings=(finding(ratio=float("nan")),))

    assert "run: result.to_dict() is not strict JSON: Out of range float values" in problems_of(
        NanEvidence, factory
    )


def test_run_must_not_raise_or_skip(factory: ContextFactory) -> None:
    class Raises(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            raise KeyError("boom")

    class Skips(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            return CheckResult(self.id, self.stage, status=CheckStatus.SKIPPED, reason="needs artifacts")

    assert "run: run() raised KeyError: 'boom'" in problems_of(Raises, factory)
    assert "run: run() skipped on the given context (needs artifacts)" in problems_of(Skips, factory)


def test_run_must_not_modify_the_data(reference: TinyTabular) -> None:
    class Mutates(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            assert ctx.test is not None
            ctx.test.x[0, 0] += 1.0
            return super().run(ctx)

    def fresh() -> AuditContext:
        data = tiny_tabular_dataset(seed=0)
        return make_context(reference.model, data.test, data.train)

    assert "run: run() modified ctx.test.x in place" in problems_of(Mutates, fresh)


def test_deterministic_checks_must_repeat(factory: ContextFactory) -> None:
    noise = np.random.default_rng()

    class Random(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            ctx.budget.check()
            return CheckResult(self.id, self.stage, metrics=(Metric("noise", float(noise.random())),))

    text = problems_of(Random, factory)
    assert "determinism: declared deterministic, but two runs with the same seed differ in: metrics" in text
    assert check_conformance(type("Honest", (Random,), {"deterministic": False}), factory) == []


def test_budget_must_be_honoured(factory: ContextFactory) -> None:
    class IgnoresBudget(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            return CheckResult(self.id, self.stage, metrics=(Metric("x", 1.0),))

    class StopsEarly(GoodCheck):
        def run(self, ctx: AuditContext) -> CheckResult:
            if ctx.budget.expired:
                return CheckResult(self.id, self.stage, partial=True)
            return super().run(ctx)

    class Dawdles(StopsEarly):
        def run(self, ctx: AuditContext) -> CheckResult:
            if ctx.budget.expired:
                time.sleep(0.6)
            return super().run(ctx)

    assert check_conformance(IgnoresBudget, factory) == [
        "budget: with a spent budget, run() neither raised BudgetExceeded nor returned partial=True"
    ]
    assert check_conformance(StopsEarly, factory) == []
    assert "budget: with a spent budget, run() took" in problems_of(Dawdles, factory)


def test_assert_conforms_lists_every_problem(factory: ContextFactory) -> None:
    bad = type("Bad", (GoodCheck,), {"id": "Bad!", "description": ""})
    with pytest.raises(AssertionError) as info:
        assert_conforms(bad, factory)
    message = str(info.value)
    assert message.startswith("Bad breaks the check contract:")
    assert "- attributes: `id` must be lower-case" in message
    assert "- attributes: `description` must not be empty" in message


def test_a_factory_must_build_contexts() -> None:
    problems = check_conformance(GoodCheck, lambda: "not a context")  # type: ignore[arg-type,return-value]
    assert "constructor: raised TypeError: ctx_factory must return an AuditContext, got str" in problems


@parametrize_checks(InputFuzzingCheck, PerformanceCheck)
def test_garrisons_own_checks_conform(case: Any) -> None:
    case()


def test_parametrize_checks_makes_one_case_per_contract_item() -> None:
    mark = parametrize_checks(GoodCheck, PerformanceCheck)
    assert mark.args[0] == "case"
    ids = mark.kwargs["ids"]
    assert ids == [f"good-{item}" for item in CONTRACT] + [f"performance-{item}" for item in CONTRACT]


def test_a_failing_case_raises_with_its_problems(factory: ContextFactory) -> None:
    mark = parametrize_checks(type("Bad", (GoodCheck,), {"deterministic": "yes"}), ctx_factory=factory)
    cases = {case.item: case for case in mark.args[1]}
    with pytest.raises(AssertionError, match="`deterministic` must be a bool"):
        cases["attributes"]()
    with pytest.raises(AssertionError, match="fix the class attributes first"):
        cases["run"]()
