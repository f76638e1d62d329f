from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from garrison.adapters import linear_classifier
from garrison.audit import AuditContext, CheckRegistry, plan_checks, run_checks
from garrison.core import CheckConfig, CheckResult, CheckStatus, ConfigError, Metric, RegistryError, Stage
from garrison.core.schema_spec import Spec


class _Order:
    seen: ClassVar[list[str]] = []


class DataCheck:
    id = "a-data"
    stage = Stage.DATA
    deterministic = True
    requires = frozenset()
    options: ClassVar[dict[str, Spec]] = {"factor": Spec("float", default=2.0, gt=0)}
    description = "test check"

    def __init__(self, *, factor: float = 2.0) -> None:
        self.factor = factor

    def run(self, ctx: AuditContext) -> CheckResult:
        _Order.seen.append(self.id)
        return CheckResult(self.id, self.stage, metrics=(Metric("x", self.factor),))


class BrokenCheck:
    id = "broken"
    stage = Stage.MODEL
    deterministic = True
    requires = frozenset({"model"})
    options: ClassVar[dict[str, Spec]] = {}
    description = "raises"

    def run(self, ctx: AuditContext) -> CheckResult:
        _Order.seen.append(self.id)
        raise RuntimeError("boom\nsecond line")


class SlowCheck:
    id = "slow"
    stage = Stage.MODEL
    deterministic = True
    requires = frozenset({"model"})
    options: ClassVar[dict[str, Spec]] = {}
    description = "spins until its budget is spent"

    def run(self, ctx: AuditContext) -> CheckResult:
        _Order.seen.append(self.id)
        while True:
            ctx.budget.check()


class NeedsTrain(DataCheck):
    id = "needs-train"
    requires = frozenset({"train"})


def _registry(*classes: type) -> CheckRegistry:
    reg = CheckRegistry()
    for cls in classes:
        reg.register(cls)
    return reg


def test_stage_order_isolation_budget_and_skips() -> None:
    _Order.seen.clear()
    reg = _registry(SlowCheck, BrokenCheck, DataCheck, NeedsTrain)
    planned = plan_checks({"slow": CheckConfig(budget_s=0.05)}, registry=reg)
    ctx = AuditContext(model=linear_classifier(np.eye(2)))
    results = {r.check_id: r for r in run_checks(planned, ctx)}
    assert _Order.seen == ["a-data", "broken", "slow"]
    assert results["a-data"].status is CheckStatus.OK and results["a-data"].metric("x").value == 2.0
    assert results["broken"].status is CheckStatus.ERROR
    assert results["broken"].error == "RuntimeError: boom"
    assert results["slow"].status is CheckStatus.ERROR and "budget" in (results["slow"].error or "")
    assert (
        results["needs-train"].status is CheckStatus.SKIPPED
        and results["needs-train"].reason == "needs train"
    )


def test_options_are_validated_and_disabled_checks_dropped() -> None:
    reg = _registry(DataCheck, BrokenCheck)
    planned = plan_checks(
        {"a-data": CheckConfig(options={"factor": 3.0}), "broken": CheckConfig(enabled=False)}, registry=reg
    )
    assert [p.check.id for p in planned] == ["a-data"]
    assert planned[0].check.factor == 3.0
    with pytest.raises(ConfigError) as info:
        plan_checks(
            {"a-data": CheckConfig(options={"factor": -1.0}, line=9)}, registry=reg, config_path="g.yaml"
        )
    assert info.value.key == "checks.a-data.factor"
    with pytest.raises(ConfigError) as info:
        plan_checks({"a-data": CheckConfig(options={"nope": 1})}, registry=reg)
    assert info.value.key == "checks.a-data.nope"
    with pytest.raises(ConfigError, match="unknown check"):
        plan_checks({"missing": CheckConfig()}, registry=reg)


def test_registry_refuses_duplicates() -> None:
    reg = _registry(DataCheck)
    reg.register(DataCheck)  # the same class again is harmless

    class Other(DataCheck):
        pass

    with pytest.raises(RegistryError, match="already registered"):
        reg.register(Other)


def test_context_rng_is_seeded_and_independent() -> None:
    a = AuditContext(seed=1).rng("fuzzing").random(3)
    b = AuditContext(seed=1).rng("fuzzing").random(3)
    c = AuditContext(seed=1).rng("performance").random(3)
    d = AuditContext(seed=2).rng("fuzzing").random(3)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)


def test_audit_needs_a_model() -> None:
    from garrison.audit import audit
    from garrison.core import parse_config

    with pytest.raises(ConfigError, match="model") as info:
        audit(parse_config("scan: {allowlist: [a.B]}\n", path="g.yaml"))
    assert info.value.key == "model"
