"""The check contract as runnable tests: the same ones Garrison runs on its own checks.

:func:`check_conformance` returns the problems it finds (empty: the check conforms); :func:`assert_conforms`
raises ``AssertionError`` listing them; :func:`parametrize_checks` turns every contract item of every check into
its own pytest case, the way scikit-learn's ``parametrize_with_checks`` does for estimators.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from garrison.adapters.base import Classifier, InputSpec
from garrison.audit.budget import Budget
from garrison.audit.context import AuditContext
from garrison.core.errors import BudgetExceeded, ConfigError, RegistryError
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import get_rule
from garrison.core.schema_spec import Spec, validate
from garrison.core.severity import Stage

__all__ = [
    "CONTRACT",
    "ConformanceCase",
    "ContextFactory",
    "CountingClassifier",
    "assert_conforms",
    "check_conformance",
    "parametrize_checks",
]

ContextFactory = Callable[[], AuditContext]
"""Builds a fresh context the check applies to; called once per run (the kit runs a check several times)."""

_ID_PATTERN = re.compile(r"[a-z0-9_-]+")
_REQUIREMENTS = frozenset({"model", "test", "train", "artifacts"})
_SPEC_KINDS = frozenset({"str", "int", "float", "bool", "list", "map", "dict", "any"})
_ATTRIBUTES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "stage": Stage,
    "deterministic": bool,
    "requires": frozenset,
    "options": Mapping,
    "description": str,
}
# A budgeted run "returns promptly" when it takes at most this share of a full run, or this many seconds.
_PROMPT_SHARE = 0.5
_PROMPT_FLOOR_S = 0.5


class CountingClassifier:
    """Wraps a classifier and counts ``predict_proba`` calls; every other attribute is the wrapped model's."""

    def __init__(self, model: Classifier) -> None:
        self.model = model
        self.calls = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def n_classes(self) -> int:
        return self.model.n_classes

    @property
    def input_spec(self) -> InputSpec:
        return self.model.input_spec

    @property
    def classes(self) -> tuple[Any, ...] | None:
        return self.model.classes

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.predict_proba(x)

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes not defined here: loss_gradient, torch_module...
        return getattr(self.__dict__["model"], name)


def _default_factory() -> AuditContext:
    from garrison.testing.reference import make_context

    return make_context()


def _options_defaults(check_cls: type) -> dict[str, Any]:
    return {name: getattr(spec, "default", None) for name, spec in getattr(check_cls, "options", {}).items()}


def _construct(check_cls: type) -> Any:
    return check_cls(**_options_defaults(check_cls))


def _describe(exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _fresh_context(factory: ContextFactory) -> AuditContext:
    ctx = factory()
    if not isinstance(ctx, AuditContext):
        raise TypeError(f"ctx_factory must return an AuditContext, got {type(ctx).__name__}")
    return ctx


def _run(check_cls: type, factory: ContextFactory, **replace: Any) -> CheckResult:
    ctx = _fresh_context(factory)
    if replace:
        ctx = dataclasses.replace(ctx, **replace)
    return _construct(check_cls).run(ctx)


def _comparable(result: CheckResult) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("duration_s", None)
    return data


# -- contract items ------------------------------------------------------------------------------------------


def _attributes(check_cls: type, factory: ContextFactory) -> list[str]:
    problems = []
    for name, expected in _ATTRIBUTES.items():
        if not hasattr(check_cls, name):
            problems.append(f"missing class attribute `{name}`")
            continue
        value = getattr(check_cls, name)
        if not isinstance(value, expected) or (expected is bool and not isinstance(value, bool)):
            problems.append(f"`{name}` must be a {getattr(expected, '__name__', expected)}, got {value!r}")
    check_id = getattr(check_cls, "id", None)
    if isinstance(check_id, str) and not _ID_PATTERN.fullmatch(check_id):
        problems.append(f"`id` must be lower-case letters, digits, '_' or '-', got {check_id!r}")
    requires = getattr(check_cls, "requires", None)
    if isinstance(requires, frozenset) and not requires <= _REQUIREMENTS:
        unknown = ", ".join(sorted(map(str, requires - _REQUIREMENTS)))
        problems.append(f"`requires` may only name {', '.join(sorted(_REQUIREMENTS))}; got {unknown}")
    description = getattr(check_cls, "description", None)
    if isinstance(description, str) and not description.strip():
        problems.append("`description` must not be empty")
    if not callable(getattr(check_cls, "run", None)):
        problems.append("missing method `run(ctx)`")
    return problems


def _options(check_cls: type, factory: ContextFactory) -> list[str]:
    options = getattr(check_cls, "options", None)
    if not isinstance(options, Mapping):
        return ["`options` must be a mapping of option name to Spec"]
    problems = []
    for name, spec in options.items():
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(f"option name {name!r} is not a valid keyword")
        if not isinstance(spec, Spec):
            problems.append(
                f"option `{name}` must be a garrison.core.schema_spec.Spec, got {type(spec).__name__}"
            )
        elif spec.kind not in _SPEC_KINDS:
            problems.append(f"option `{name}` has unknown Spec kind {spec.kind!r}")
        elif spec.default is not None:
            try:
                validate(spec.default, spec, key=str(name))
            except ConfigError as exc:
                problems.append(f"default of option `{name}` fails its own Spec: {exc.reason}")
    try:
        params = inspect.signature(check_cls.__init__).parameters
    except (TypeError, ValueError):
        return [*problems, "the constructor's signature cannot be read"]
    keywords = {}
    for p in list(params.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is not p.KEYWORD_ONLY:
            problems.append(f"constructor parameter `{p.name}` must be keyword-only")
        keywords[p.name] = p
    for name in sorted(set(keywords) - set(options)):
        problems.append(f"constructor parameter `{name}` has no Spec in `options`")
    for name in sorted(set(options) - set(keywords)):
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            problems.append(f"option `{name}` is not a constructor keyword")
    for name, p in keywords.items():
        spec = options.get(name)
        if isinstance(spec, Spec) and p.default is not p.empty and p.default != spec.default:
            problems.append(
                f"constructor default of `{name}` ({p.default!r}) differs from its Spec default ({spec.default!r})"
            )
    try:
        _construct(check_cls)
    except Exception as exc:
        problems.append(f"constructing with the Spec defaults raised {_describe(exc)}")
    return problems


def _same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, np.ndarray) or isinstance(other, np.ndarray):
            if not np.array_equal(np.asarray(value), np.asarray(other)):
                return False
        elif value != other:
            return False
    return True


def _constructor(check_cls: type, factory: ContextFactory) -> list[str]:
    # The context (and its model) exists before the check is built, as in the runner; building must not touch it.
    ctx = _fresh_context(factory)
    counting = CountingClassifier(ctx.model) if ctx.model is not None else None
    try:
        first, second = _construct(check_cls), _construct(check_cls)
    except Exception as exc:
        return [f"constructing with the Spec defaults raised {_describe(exc)}"]
    problems = []
    try:
        state_a, state_b = vars(first), vars(second)
    except TypeError:
        return ["the check instance has no __dict__ to compare (do not use __slots__)"]
    if not _same_state(state_a, state_b):
        problems.append(
            "constructing twice gave different state: the constructor must only store its options"
        )
    if counting is not None and counting.calls:
        problems.append(f"the constructor called the model {counting.calls} times; only run() may")
    return problems


def _result_problems(check_cls: type, result: object) -> list[str]:
    if not isinstance(result, CheckResult):
        return [f"run() must return a CheckResult, got {type(result).__name__}"]
    problems = []
    check_id = getattr(check_cls, "id", None)
    if result.check_id != check_id:
        problems.append(f"result.check_id is {result.check_id!r}, expected the check's id {check_id!r}")
    if result.stage != getattr(check_cls, "stage", None):
        problems.append(f"result.stage is {result.stage!r}, expected the check's stage")
    if result.status is CheckStatus.SKIPPED:
        problems.append(
            f"run() skipped on the given context ({result.reason}); pass a ctx_factory the check applies to"
        )
    elif result.status is not CheckStatus.OK:
        problems.append(f"run() returned status {result.status.value}: {result.error}")
    names = [m.name for m in result.metrics if isinstance(m, Metric)]
    if len(names) != len(result.metrics):
        problems.append("every metric must be a Metric")
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"metric name {name!r} appears more than once")
    for metric in result.metrics:
        if isinstance(metric, Metric) and (
            isinstance(metric.value, bool) or not isinstance(metric.value, Real)
        ):
            problems.append(f"metric {metric.name!r} has a non-numeric value {metric.value!r}")
    for finding in result.findings:
        if not isinstance(finding, Finding):
            problems.append(f"every finding must be a Finding, got {type(finding).__name__}")
            continue
        if finding.check_id != check_id:
            problems.append(
                f"finding {finding.rule_id} has check_id {finding.check_id!r}, expected {check_id!r}"
            )
        try:
            get_rule(finding.rule_id)
        except RegistryError:
            problems.append(
                f"finding rule {finding.rule_id!r} is not in the rule catalogue (register_rule it)"
            )
    figure_ids = [f.id for f in result.figures if isinstance(f, Figure)]
    if len(figure_ids) != len(result.figures):
        problems.append("every figure must be a Figure")
    for fid in sorted({i for i in figure_ids if figure_ids.count(i) > 1}):
        problems.append(f"figure id {fid!r} appears more than once")
    try:
        json.dumps(result.to_dict(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"result.to_dict() is not strict JSON: {exc}")
    return problems


def _dataset_arrays(ctx: AuditContext) -> dict[str, np.ndarray]:
    arrays = {}
    for role in ("test", "train"):
        ds = getattr(ctx, role)
        if ds is not None:
            arrays[f"{role}.x"] = np.array(ds.x, copy=True)
            arrays[f"{role}.y"] = np.array(ds.y, copy=True)
    return arrays


def _run_result(check_cls: type, factory: ContextFactory) -> list[str]:
    ctx = _fresh_context(factory)
    before = _dataset_arrays(ctx)
    try:
        result = _construct(check_cls).run(ctx)
    except Exception as exc:
        return [f"run() raised {_describe(exc)}"]
    problems = _result_problems(check_cls, result)
    after = _dataset_arrays(ctx)
    for key, array in before.items():
        same_nan = array.dtype.kind in "fc"
        if not np.array_equal(array, after[key], equal_nan=same_nan):
            problems.append(f"run() modified ctx.{key} in place; copy before changing data")
    return problems


def _determinism(check_cls: type, factory: ContextFactory) -> list[str]:
    if not getattr(check_cls, "deterministic", False):
        return []
    try:
        first, second = _run(check_cls, factory), _run(check_cls, factory)
    except Exception as exc:
        return [f"run() raised {_describe(exc)}"]
    if not isinstance(first, CheckResult) or not isinstance(second, CheckResult):
        return ["run() must return a CheckResult"]
    a, b = _comparable(first), _comparable(second)
    if a == b:
        return []
    differing = sorted(k for k in a if a[k] != b.get(k))
    return [f"declared deterministic, but two runs with the same seed differ in: {', '.join(differing)}"]


def _budget(check_cls: type, factory: ContextFactory) -> list[str]:
    try:
        start = time.perf_counter()
        _run(check_cls, factory)
        full_s = time.perf_counter() - start
    except Exception as exc:
        return [f"run() raised {_describe(exc)}"]
    ticks = itertools.count()
    spent = Budget(1e-9, clock=lambda: float(next(ticks)))  # every look at the clock finds it spent
    start = time.perf_counter()
    try:
        result = _run(check_cls, factory, budget=spent)
    except BudgetExceeded:
        return []
    except Exception as exc:
        return [f"with a spent budget, run() raised {_describe(exc)} instead of BudgetExceeded"]
    took_s = time.perf_counter() - start
    limit_s = max(_PROMPT_FLOOR_S, _PROMPT_SHARE * full_s)
    if not isinstance(result, CheckResult) or not result.partial:
        return ["with a spent budget, run() neither raised BudgetExceeded nor returned partial=True"]
    if took_s > limit_s:
        return [
            f"with a spent budget, run() took {took_s:.2f} s (limit {limit_s:.2f} s): call ctx.budget.check()"
        ]
    return []


CONTRACT: dict[str, Callable[[type, ContextFactory], list[str]]] = {
    "attributes": _attributes,
    "options": _options,
    "constructor": _constructor,
    "run": _run_result,
    "determinism": _determinism,
    "budget": _budget,
}
"""The contract items by name, in the order they run."""


def _run_item(
    item: Callable[[type, ContextFactory], list[str]], check_cls: type, factory: ContextFactory
) -> list[str]:
    try:
        return item(check_cls, factory)
    except Exception as exc:  # a broken factory or check must show up as a problem, not abort the kit
        return [f"raised {_describe(exc)}"]


def check_conformance(check_cls: type, ctx_factory: ContextFactory | None = None) -> list[str]:
    """Every way ``check_cls`` breaks the check contract, as ``"<item>: <problem>"`` lines; empty if it conforms.

    ``ctx_factory`` builds a fresh :class:`AuditContext` the check applies to (default: the tiny reference data
    and model of :func:`garrison.testing.make_context`). Later items are skipped when the class attributes are
    broken, since nothing else can be trusted then.
    """
    factory = ctx_factory or _default_factory
    problems: list[str] = []
    for name, item in CONTRACT.items():
        found = _run_item(item, check_cls, factory)
        problems.extend(f"{name}: {p}" for p in found)
        if name == "attributes" and found:
            break
    return problems


def assert_conforms(check_cls: type, ctx_factory: ContextFactory | None = None) -> None:
    """Raise ``AssertionError`` listing every contract problem of ``check_cls``."""
    problems = check_conformance(check_cls, ctx_factory)
    if problems:
        name = getattr(check_cls, "__qualname__", repr(check_cls))
        raise AssertionError(f"{name} breaks the check contract:\n" + "\n".join(f"- {p}" for p in problems))


@dataclass(frozen=True)
class ConformanceCase:
    """One contract item for one check class; calling it raises ``AssertionError`` with the item's problems."""

    check_cls: type
    item: str
    ctx_factory: ContextFactory | None = None

    def __call__(self) -> None:
        factory = self.ctx_factory or _default_factory
        problems = _attributes(self.check_cls, factory)
        if self.item != "attributes" and problems:
            raise AssertionError(f"{self.check_cls.__qualname__}: fix the class attributes first: {problems}")
        if self.item != "attributes":
            problems = _run_item(CONTRACT[self.item], self.check_cls, factory)
        if problems:
            raise AssertionError(
                f"{self.check_cls.__qualname__} breaks `{self.item}`:\n"
                + "\n".join(f"- {p}" for p in problems)
            )

    @property
    def id(self) -> str:
        check_id = getattr(self.check_cls, "id", None)
        return f"{check_id if isinstance(check_id, str) else self.check_cls.__name__}-{self.item}"


def parametrize_checks(*check_classes: type, ctx_factory: ContextFactory | None = None) -> Any:
    """A ``pytest.mark.parametrize`` over every contract item of every check; the test gets ``case``::

    @parametrize_checks(MyCheck)
    def test_conforms(case):
        case()
    """
    import pytest

    cases = [ConformanceCase(cls, item, ctx_factory) for cls in check_classes for item in CONTRACT]
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])
