"""Model input fuzzing: how a model answers malformed, out-of-schema and repeated inputs.

Probes are built from a few real test rows (chosen with the check's seeded generator) and sent to
``predict_proba`` one batch at a time. Each probe's outcome is one of:

- ``rejected``: the model raised ``ValueError`` / ``TypeError`` (Garrison's ``InputError`` included) or a remote
  endpoint answered 4xx: the clean answer to invalid input;
- ``crash``: any other exception;
- ``invalid_output``: probabilities that are non-finite, negative, do not sum to 1 or have the wrong shape;
- ``silent_acceptance``: a schema-violating input answered with valid probabilities and a confident top class;
- ``nondeterministic``: the same rows gave different probabilities (repeated, one at a time, or shuffled);
- ``accepted``: a valid answer to an input that does not violate the schema, or a low-confidence one.

The check measures and reports; it does not judge.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from garrison.audit.context import AuditContext
from garrison.core.errors import RemoteModelError
from garrison.core.findings import Finding
from garrison.core.metrics import Metric
from garrison.core.results import CheckResult, CheckStatus, Figure
from garrison.core.rules import FUZZ_CRASH, FUZZ_INVALID_OUTPUT, FUZZ_NONDETERMINISM, FUZZ_SILENT_ACCEPTANCE
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

if TYPE_CHECKING:
    from garrison.adapters.base import Classifier
    from garrison.data import Schema

__all__ = ["InputFuzzingCheck", "ProbeOutcome"]

_SUM_TOLERANCE = 1e-4
_MESSAGE_LIMIT = 200


class ProbeOutcome(str, Enum):
    """How a model answered one probe, from worst to best."""

    CRASH = "crash"
    INVALID_OUTPUT = "invalid_output"
    NONDETERMINISTIC = "nondeterministic"
    SILENT_ACCEPTANCE = "silent_acceptance"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


_SEVERITY_ORDER = list(ProbeOutcome)

# family -> what it sends, for messages and the figure
_FAMILIES: dict[str, str] = {
    "nan": "NaN in a feature",
    "posinf": "+Inf in a feature",
    "neginf": "-Inf in a feature",
    "huge": "huge magnitudes (1e300, ±1e30) in a feature",
    "tiny": "a denormal magnitude (1e-310) in a feature",
    "out_of_bounds": "values beyond the schema bounds by 10x their range",
    "category": "category codes outside the schema",
    "dtype_object": "an object array of strings",
    "dtype_int": "an integer array",
    "shape_extra": "one feature more than the model takes",
    "shape_missing": "one feature less than the model takes",
    "shape_1d": "a single row without the batch axis",
    "empty": "an empty batch (0 rows)",
    "repeat": "the same batch several times",
    "one_at_a_time": "a batch against the same rows one at a time",
    "shuffled": "a batch against the same rows shuffled",
}


@dataclass(frozen=True)
class _FeatureInfo:
    index: int  # flat index into the sample
    name: str
    kind: str
    nullable: bool
    lower: float
    upper: float
    n_categories: int | None


@dataclass
class _Probe:
    """One input batch: ``violating`` marks rows that break the schema by the probe's own definition."""

    family: str
    x: Any
    n_inputs: int
    violating: np.ndarray
    feature: str | None = None


@dataclass
class _Answer:
    """A model's answer to one call: probabilities or the exception it raised."""

    output: Any = None
    error: Exception | None = None


@dataclass
class _Record:
    """What happened on one probe."""

    family: str
    outcome: ProbeOutcome
    n_inputs: int
    violating: bool
    feature: str | None = None
    error: Exception | None = None
    problem: str | None = None
    max_confidence: float | None = None
    max_abs_diff: float | None = None


@dataclass
class _Family:
    name: str
    records: list[_Record] = field(default_factory=list)

    def outcomes(self) -> dict[str, int]:
        counts = Counter(r.outcome.value for r in self.records)
        return {k: counts[k] for k in sorted(counts)}

    def with_outcome(self, outcome: ProbeOutcome) -> list[_Record]:
        return [r for r in self.records if r.outcome is outcome]

    @property
    def n_inputs(self) -> int:
        return sum(r.n_inputs for r in self.records)


class InputFuzzingCheck:
    """Send malformed, out-of-schema and repeated inputs to the model and record how it answers each."""

    id: ClassVar[str] = "fuzzing"
    stage: ClassVar[Stage] = Stage.MODEL
    deterministic: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"model", "test"})
    description: ClassVar[str] = (
        "Model input fuzzing: NaN, infinities, extreme magnitudes, out-of-bounds values, unknown categories, "
        "wrong dtypes and shapes, empty batches and repeated calls; records crashes, invalid outputs, silent "
        "acceptance of schema violations and non-determinism."
    )
    options: ClassVar[Mapping[str, Spec]] = {
        "n_rows": Spec("int", default=8, ge=1, doc="test rows the probes are built from"),
        "min_confidence": Spec(
            "float", default=0.5, ge=0.0, le=1.0, doc="top-class confidence that counts as silent acceptance"
        ),
        "atol": Spec("float", default=1e-6, ge=0.0, doc="largest output difference still deterministic"),
        "repeats": Spec("int", default=3, ge=2, doc="calls of the same batch in the determinism probe"),
        "max_features": Spec("int", default=16, ge=1, doc="features probed one by one (a seeded sample)"),
    }

    def __init__(
        self,
        *,
        n_rows: int = 8,
        min_confidence: float = 0.5,
        atol: float = 1e-6,
        repeats: int = 3,
        max_features: int = 16,
    ) -> None:
        self.n_rows = n_rows
        self.min_confidence = min_confidence
        self.atol = atol
        self.repeats = repeats
        self.max_features = max_features

    def run(self, ctx: AuditContext) -> CheckResult:
        model, test = ctx.model, ctx.test
        if model is None or test is None:
            return CheckResult(
                self.id, self.stage, CheckStatus.SKIPPED, reason="needs a model and a test set"
            )
        x_all = np.asarray(test.x)
        if len(x_all) == 0:
            return CheckResult(self.id, self.stage, CheckStatus.SKIPPED, reason="the test set is empty")
        rng = ctx.rng(self.id)
        rows = np.sort(rng.choice(len(x_all), size=min(self.n_rows, len(x_all)), replace=False))
        base = x_all[rows]
        features = _features(test.schema, base.shape[1:])
        if len(features) > self.max_features:
            keep = np.sort(rng.choice(len(features), size=self.max_features, replace=False))
            features = [features[i] for i in keep]
        probes = list(_value_probes(base, features, test.schema))
        probes.extend(_structure_probes(base))
        n_classes = int(model.n_classes)

        families: dict[str, _Family] = {name: _Family(name) for name in _FAMILIES}
        task = ctx.progress.task("fuzzing: probing the model", total=len(probes) + 3)
        for probe in probes:
            ctx.budget.check()
            answer = _call(model, probe.x)
            families[probe.family].records.append(self._judge(probe, answer, n_classes))
            task.advance()
        order = rng.permutation(len(base))
        for record in (
            self._repeat(ctx, model, base, n_classes),
            self._one_at_a_time(ctx, model, base, n_classes),
            self._shuffled(ctx, model, base, n_classes, order),
        ):
            families[record.family].records.append(record)
            task.advance()
        task.done()

        ran = [f for f in families.values() if f.records]
        return CheckResult(
            self.id,
            self.stage,
            metrics=_metrics(ran),
            findings=tuple(self._findings(ctx, ran)),
            figures=(_outcome_table(ran),),
        )

    # -- judging one answer ------------------------------------------------------------------------------

    def _judge(self, probe: _Probe, answer: _Answer, n_classes: int) -> _Record:
        violating = bool(probe.violating.any())
        record = _Record(probe.family, ProbeOutcome.ACCEPTED, probe.n_inputs, violating, probe.feature)
        if answer.error is not None:
            record.error = answer.error
            record.outcome = ProbeOutcome.REJECTED if _is_rejection(answer.error) else ProbeOutcome.CRASH
            return record
        probs, problem = _validate_output(answer.output, probe.n_inputs, n_classes)
        if probs is None:
            record.outcome, record.problem = ProbeOutcome.INVALID_OUTPUT, problem
            return record
        if violating:
            record.max_confidence = float(probs[probe.violating].max())
            if record.max_confidence >= self.min_confidence:
                record.outcome = ProbeOutcome.SILENT_ACCEPTANCE
        return record

    def _stability(
        self,
        family: str,
        n: int,
        calls: list[tuple[_Answer, int]],
        n_classes: int,
        align: Callable[[list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]],
    ) -> _Record:
        """Judge calls that should agree: each ``(answer, rows)`` is validated, then ``align`` pairs them up."""
        record = _Record(family, ProbeOutcome.ACCEPTED, n, violating=False)
        probs: list[np.ndarray] = []
        for answer, rows in calls:
            if answer.error is not None:
                record.error = answer.error
                record.outcome = ProbeOutcome.REJECTED if _is_rejection(answer.error) else ProbeOutcome.CRASH
                return record
            p, problem = _validate_output(answer.output, rows, n_classes)
            if p is None:
                record.outcome, record.problem = ProbeOutcome.INVALID_OUTPUT, problem
                return record
            probs.append(p)
        reference, others = align(probs)
        record.max_abs_diff = max((_max_abs_diff(reference, other) for other in others), default=0.0)
        if record.max_abs_diff > self.atol:
            record.outcome = ProbeOutcome.NONDETERMINISTIC
        return record

    def _repeat(self, ctx: AuditContext, model: Classifier, base: np.ndarray, n_classes: int) -> _Record:
        calls = []
        for _ in range(self.repeats):
            ctx.budget.check()
            calls.append((_call(model, base.copy()), len(base)))
        return self._stability("repeat", len(base), calls, n_classes, lambda ps: (ps[0], ps[1:]))

    def _one_at_a_time(
        self, ctx: AuditContext, model: Classifier, base: np.ndarray, n_classes: int
    ) -> _Record:
        ctx.budget.check()
        calls = [(_call(model, base.copy()), len(base))]
        for i in range(len(base)):
            ctx.budget.check()
            calls.append((_call(model, base[i : i + 1].copy()), 1))
        return self._stability(
            "one_at_a_time", len(base), calls, n_classes, lambda ps: (ps[0], [np.concatenate(ps[1:])])
        )

    def _shuffled(
        self, ctx: AuditContext, model: Classifier, base: np.ndarray, n_classes: int, order: np.ndarray
    ) -> _Record:
        calls = []
        for x in (base, base[order]):
            ctx.budget.check()
            calls.append((_call(model, x.copy()), len(base)))
        restore = np.argsort(order)
        return self._stability("shuffled", len(base), calls, n_classes, lambda ps: (ps[0], [ps[1][restore]]))

    # -- reporting ---------------------------------------------------------------------------------------

    def _findings(self, ctx: AuditContext, families: list[_Family]) -> Iterator[Finding]:
        subject = ctx.model_subject
        for family in families:
            common: dict[str, Any] = {
                "probe": family.name,
                "n_probes": len(family.records),
                "n_inputs": family.n_inputs,
                "outcomes": family.outcomes(),
            }
            what = _FAMILIES[family.name]
            location = f"fuzz:{family.name}"
            n = len(family.records)

            crashes = family.with_outcome(ProbeOutcome.CRASH)
            if crashes:
                error = crashes[0].error
                assert error is not None
                yield FUZZ_CRASH.finding(
                    subject=subject,
                    location=location,
                    check_id=self.id,
                    message=f"{len(crashes)} of {n} probes with {what} crashed the model "
                    f"({type(error).__name__}) instead of being rejected.",
                    evidence={**common, **_error_evidence(error), "features": _feature_names(crashes)},
                    sensitive=("exception_message",),
                )
            invalid = family.with_outcome(ProbeOutcome.INVALID_OUTPUT)
            if invalid:
                problems = sorted({r.problem for r in invalid if r.problem})
                yield FUZZ_INVALID_OUTPUT.finding(
                    subject=subject,
                    location=location,
                    check_id=self.id,
                    message=f"{len(invalid)} of {n} probes with {what} got invalid probabilities "
                    f"({'; '.join(problems)}).",
                    evidence={**common, "problems": problems, "features": _feature_names(invalid)},
                )
            unstable = family.with_outcome(ProbeOutcome.NONDETERMINISTIC)
            if unstable:
                diff = max(r.max_abs_diff or 0.0 for r in unstable)
                yield FUZZ_NONDETERMINISM.finding(
                    subject=subject,
                    location=location,
                    check_id=self.id,
                    message=f"Probabilities changed by up to {diff:.3g} (tolerance {self.atol:g}) for "
                    f"{what}.",
                    evidence={**common, "max_abs_diff": diff, "atol": self.atol},
                )
            silent = family.with_outcome(ProbeOutcome.SILENT_ACCEPTANCE)
            if silent:
                confidence = max(r.max_confidence or 0.0 for r in silent)
                yield FUZZ_SILENT_ACCEPTANCE.finding(
                    subject=subject,
                    location=location,
                    check_id=self.id,
                    message=f"{len(silent)} of {n} probes with {what} were answered with a confident "
                    f"prediction (up to {confidence:.3f}) instead of being rejected.",
                    evidence={
                        **common,
                        "max_confidence": confidence,
                        "min_confidence": self.min_confidence,
                        "features": _feature_names(silent),
                    },
                )


# -- building probes ------------------------------------------------------------------------------------


def _features(schema: Schema | None, sample_shape: tuple[int, ...]) -> list[_FeatureInfo]:
    """One entry per flat input position, with its kind, nullability and finite-or-infinite bounds."""
    d = math.prod(sample_shape)
    specs = list(schema.features) if schema is not None else []
    lower = np.full(d, -np.inf)
    upper = np.full(d, np.inf)
    if schema is not None:
        lo, hi = (np.asarray(b, dtype=np.float64).reshape(-1) for b in schema.bounds())
        if lo.size == d and hi.size == d:
            lower, upper = lo, hi
    infos = []
    for j in range(d):
        spec = specs[j] if len(specs) == d else None
        kind = _kind_name(spec.kind) if spec is not None else "numeric"
        categories = getattr(spec, "categories", None) if spec is not None else None
        infos.append(
            _FeatureInfo(
                index=j,
                name=spec.name if spec is not None else f"x[{j}]",
                kind=kind,
                nullable=bool(getattr(spec, "nullable", False)),
                lower=float(lower[j]),
                upper=float(upper[j]),
                n_categories=len(categories) if categories else None,
            )
        )
    return infos


def _kind_name(kind: Any) -> str:
    return str(getattr(kind, "value", kind)).lower()


def _with_value(base: np.ndarray, feature: _FeatureInfo, value: float) -> np.ndarray:
    flat = base.reshape(len(base), -1).astype(np.float64, copy=True)
    flat[:, feature.index] = value
    return flat.reshape(base.shape)


def _schema_violations(schema: Schema | None, x: np.ndarray) -> np.ndarray:
    n = len(x)
    if schema is None:
        return np.zeros(n, dtype=bool)
    mask = np.asarray(schema.violations(x), dtype=bool)
    return mask.reshape(n, -1).any(axis=1) if mask.ndim > 1 else mask


def _value_probes(base: np.ndarray, features: list[_FeatureInfo], schema: Schema | None) -> Iterator[_Probe]:
    n = len(base)
    always = np.ones(n, dtype=bool)

    def probe(family: str, feature: _FeatureInfo, value: float, by_definition: bool) -> _Probe:
        x = _with_value(base, feature, value)
        violating = always.copy() if by_definition else _schema_violations(schema, x)
        return _Probe(family, x, n, violating, feature.name)

    for f in features:
        yield probe("nan", f, np.nan, not f.nullable)
        yield probe("posinf", f, np.inf, True)
        yield probe("neginf", f, -np.inf, True)
        for value in (1e300, 1e30, -1e30):
            yield probe("huge", f, value, False)
        yield probe("tiny", f, 1e-310, False)
        if f.kind in ("numeric", "integer") and math.isfinite(f.lower) and math.isfinite(f.upper):
            span = f.upper - f.lower or max(1.0, abs(f.upper))
            yield probe("out_of_bounds", f, f.upper + 10 * span, True)
            yield probe("out_of_bounds", f, f.lower - 10 * span, True)
        if f.kind in ("categorical", "boolean"):
            n_codes = 2 if f.kind == "boolean" else (f.n_categories or 0)
            if n_codes:
                yield probe("category", f, float(n_codes), True)
                yield probe("category", f, -1.0, True)


def _structure_probes(base: np.ndarray) -> Iterator[_Probe]:
    n = len(base)
    never = np.zeros(n, dtype=bool)
    always = np.ones(n, dtype=bool)
    finite = np.nan_to_num(base.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    yield _Probe("dtype_object", base.astype(str).astype(object), n, never)
    yield _Probe("dtype_int", np.rint(finite).astype(np.int64), n, never)
    last = base.shape[-1]
    extra = np.concatenate([base, base[..., :1]], axis=-1)
    yield _Probe("shape_extra", extra, n, always)
    if last > 1:
        yield _Probe("shape_missing", base[..., : last - 1].copy(), n, always)
    yield _Probe("shape_1d", base[0].reshape(-1).copy(), 1, np.ones(1, dtype=bool))
    yield _Probe("empty", base[:0].copy(), 0, np.zeros(0, dtype=bool))


# -- calling and validating -----------------------------------------------------------------------------


def _call(model: Classifier, x: Any) -> _Answer:
    # Probes overflow on purpose; the model's warnings are expected, not news for the caller.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _Answer(output=model.predict_proba(x))
        except Exception as exc:
            return _Answer(error=exc)


def _is_rejection(error: Exception) -> bool:
    if isinstance(error, ValueError | TypeError):
        return True
    if isinstance(error, RemoteModelError):
        return error.status_code is not None and 400 <= error.status_code < 500
    return False


def _validate_output(output: Any, n: int, n_classes: int) -> tuple[np.ndarray | None, str | None]:
    """The probabilities as a float array, or the first reason they are invalid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"output of type {type(output).__name__} is not a numeric array"
    if p.shape != (n, n_classes):
        return None, f"shape {p.shape} instead of {(n, n_classes)}"
    if not np.isfinite(p).all():
        return None, "non-finite probabilities"
    if (p < 0).any():
        return None, "negative probabilities"
    if (np.abs(p.sum(axis=1) - 1.0) > _SUM_TOLERANCE).any():
        return None, "rows do not sum to 1"
    return p, None


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0))


def _error_evidence(error: Exception) -> dict[str, Any]:
    first_line = (str(error).splitlines() or [""])[0][:_MESSAGE_LIMIT]
    return {"exception_type": type(error).__name__, "exception_message": first_line}


def _feature_names(records: list[_Record]) -> list[str]:
    return sorted({r.feature for r in records if r.feature is not None})


def _metrics(families: list[_Family]) -> tuple[Metric, ...]:
    records = [r for f in families for r in f.records]

    def count(outcome: ProbeOutcome) -> int:
        return sum(r.outcome is outcome for r in records)

    violating = [r for r in records if r.violating]
    rejected = sum(r.outcome is ProbeOutcome.REJECTED for r in violating)
    n = len(records)
    return (
        Metric("probes_run", float(n), n=n, description="probes sent to the model"),
        Metric("crashes", float(count(ProbeOutcome.CRASH)), n=n, higher_is_better=False,
               description="probes that raised an error other than a clean rejection"),
        Metric("invalid_outputs", float(count(ProbeOutcome.INVALID_OUTPUT)), n=n, higher_is_better=False,
               description="probes answered with non-finite, negative, unnormalised or misshapen probabilities"),
        Metric("silent_acceptances", float(count(ProbeOutcome.SILENT_ACCEPTANCE)), n=n, higher_is_better=False,
               description="schema-violating probes answered with a confident prediction"),
        Metric("nondeterministic", float(count(ProbeOutcome.NONDETERMINISTIC)), n=n, higher_is_better=False,
               description="determinism probes whose outputs differed beyond atol"),
        Metric("rejection_rate", rejected / len(violating) if violating else float("nan"), n=len(violating),
               higher_is_better=True, description="share of schema-violating probes the model rejected"),
    )  # fmt: skip


def _outcome_table(families: list[_Family]) -> Figure:
    rows = []
    for family in families:
        outcomes = family.outcomes()
        worst = min((ProbeOutcome(o) for o in outcomes), key=_SEVERITY_ORDER.index)
        rows.append(
            {
                "probe": family.name,
                "sends": _FAMILIES[family.name],
                "outcome": worst.value,
                "probes": len(family.records),
                "inputs": family.n_inputs,
                **{o.value: outcomes.get(o.value, 0) for o in ProbeOutcome},
            }
        )
    return Figure(
        "fuzzing-outcomes",
        "Fuzzing: outcome per probe",
        table=tuple(rows),
        columns=("probe", "sends", "outcome", "probes", "inputs", *(o.value for o in ProbeOutcome)),
        caption="outcome is the worst over the family's probes (crash, invalid_output, nondeterministic, "
        "silent_acceptance, accepted, rejected)",
    )
