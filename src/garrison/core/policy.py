"""The release policy: thresholds on metrics, the severity that fails the audit, the checks that must complete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from garrison.core.errors import ConfigError
from garrison.core.schema_spec import Spec, line_of
from garrison.core.severity import Severity

__all__ = ["POLICY_SPEC", "Policy", "Threshold"]

POLICY_SPEC = Spec(
    "map",
    fields={
        "fail_on": Spec(
            "str",
            default="high",
            choices=tuple(s.value for s in Severity),
            doc="lowest severity of an open finding that fails the audit",
        ),
        "thresholds": Spec(
            "dict",
            values=Spec(
                "map",
                fields={
                    "min": Spec("float", default=None),
                    "max": Spec("float", default=None),
                    "severity": Spec("str", default="high", choices=tuple(s.value for s in Severity)),
                },
            ),
            default=None,
            doc="'<check>.<metric>': {min: x} and/or {max: y}",
        ),
        "required_checks": Spec(
            "list",
            items=Spec("str"),
            default=None,
            doc="checks whose error makes the audit incomplete (default: every enabled check)",
        ),
    },
)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A bound on one metric, named ``<check_id>.<metric>``."""

    metric: str
    min: float | None = None
    max: float | None = None
    severity: Severity = Severity.HIGH
    line: int | None = None

    @property
    def check_id(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def metric_name(self) -> str:
        return self.metric.split(".", 1)[1]


@dataclass(frozen=True, slots=True)
class Policy:
    """What passes. Pure data: ``garrison.audit.evaluate`` applies it."""

    fail_on: Severity = Severity.HIGH
    thresholds: tuple[Threshold, ...] = ()
    required_checks: tuple[str, ...] | None = None
    source: str | None = None

    @classmethod
    def from_plain(
        cls, data: Mapping[str, Any], *, path: str | Path | None = None, node: Any = None
    ) -> Policy:
        """Build from validated plain data (see :data:`POLICY_SPEC`); ``node`` supplies line numbers."""
        thresholds: list[Threshold] = []
        t_node = node.get("thresholds") if isinstance(node, Mapping) else None
        for metric, bound in (data.get("thresholds") or {}).items():
            line = line_of(t_node, metric)
            key = f"policy.thresholds.{metric}"
            if "." not in metric or metric.startswith(".") or metric.endswith("."):
                raise ConfigError(
                    f"`{key}` must name a metric as '<check>.<metric>', got {metric!r}",
                    path=path,
                    key=key,
                    line=line,
                )
            if bound["min"] is None and bound["max"] is None:
                raise ConfigError(f"`{key}` must set `min` or `max`", path=path, key=key, line=line)
            if bound["min"] is not None and bound["max"] is not None and bound["min"] > bound["max"]:
                raise ConfigError(
                    f"`{key}.min` must be <= `max`, got {bound['min']} > {bound['max']}",
                    path=path,
                    key=key,
                    line=line,
                )
            thresholds.append(
                Threshold(metric, bound["min"], bound["max"], Severity(bound["severity"]), line)
            )
        required = data.get("required_checks")
        return cls(
            fail_on=Severity(data.get("fail_on") or "high"),
            thresholds=tuple(thresholds),
            required_checks=None if required is None else tuple(required),
            source=None if path is None else str(path),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fail_on": self.fail_on.value,
            "thresholds": {
                t.metric: {"min": t.min, "max": t.max, "severity": t.severity.value} for t in self.thresholds
            },
            "required_checks": None if self.required_checks is None else list(self.required_checks),
        }
