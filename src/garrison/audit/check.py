"""The ``Check`` contract and its strict registry, fed by the entry-point group ``garrison.checks``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from garrison.audit.context import AuditContext
from garrison.core.errors import RegistryError
from garrison.core.results import CheckResult
from garrison.core.schema_spec import Spec
from garrison.core.severity import Stage

__all__ = ["ENTRY_POINT_GROUP", "Check", "CheckRegistry", "default_registry"]

ENTRY_POINT_GROUP = "garrison.checks"


@runtime_checkable
class Check(Protocol):
    """A check measures one concern and returns a :class:`CheckResult`; it does not judge against thresholds.

    Class attributes declare what it is: ``id`` (stable, lower-case), ``stage``, ``deterministic`` (same inputs and
    seed give the same result), ``requires`` (any of ``model``, ``test``, ``train``, ``artifacts``) and
    ``options`` (a :class:`Spec` per constructor keyword, validated before construction). The constructor only
    stores its keyword options; ``run`` does the work and calls ``ctx.budget.check()`` between batches.
    """

    id: ClassVar[str]
    stage: ClassVar[Stage]
    deterministic: ClassVar[bool]
    requires: ClassVar[frozenset[str]]
    options: ClassVar[Mapping[str, Spec]]
    description: ClassVar[str]

    def run(self, ctx: AuditContext) -> CheckResult: ...


class CheckRegistry:
    """Check classes by id. Duplicates are refused; nothing depends on import order."""

    def __init__(self) -> None:
        self._checks: dict[str, type[Check]] = {}

    def register(self, check_cls: type[Any]) -> type[Any]:
        check_id = getattr(check_cls, "id", None)
        if not isinstance(check_id, str) or not check_id:
            raise RegistryError(f"{check_cls!r} has no string `id`", name=str(check_id))
        existing = self._checks.get(check_id)
        if existing is not None and existing is not check_cls:
            raise RegistryError(
                f"check id {check_id!r} is already registered by {existing.__module__}.{existing.__qualname__}",
                name=check_id,
            )
        self._checks[check_id] = check_cls
        return check_cls

    def get(self, check_id: str) -> type[Check]:
        try:
            return self._checks[check_id]
        except KeyError:
            known = ", ".join(sorted(self._checks)) or "none"
            raise RegistryError(f"unknown check {check_id!r} (installed: {known})", name=check_id) from None

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def ids(self) -> list[str]:
        """Check ids in stage order, then by id."""
        return sorted(self._checks, key=lambda c: (self._checks[c].stage.order, c))

    def load_entry_points(self, entry_points: Iterable[Any] | None = None) -> CheckRegistry:
        """Register every check of the ``garrison.checks`` entry-point group (Garrison's own included)."""
        if entry_points is None:
            from importlib.metadata import entry_points as _eps

            entry_points = _eps(group=ENTRY_POINT_GROUP)
        for ep in sorted(entry_points, key=lambda e: e.name):
            cls = ep.load()
            if getattr(cls, "id", None) != ep.name:
                raise RegistryError(
                    f"entry point {ep.name!r} loads a check whose id is {getattr(cls, 'id', None)!r}",
                    name=ep.name,
                )
            self.register(cls)
        return self


def default_registry() -> CheckRegistry:
    """A registry with every installed check."""
    return CheckRegistry().load_entry_points()
