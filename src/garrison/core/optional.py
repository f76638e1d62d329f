"""Optional dependencies, imported on first use, with one clear error naming the extra that installs them."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from garrison.core.errors import MissingDependencyError

__all__ = ["import_optional", "import_torch"]


def import_optional(name: str, *, extra: str) -> ModuleType:
    """The module ``name``; a :class:`MissingDependencyError` naming ``garrison[extra]`` when it is not installed."""
    try:
        return import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(name.partition(".")[0], extra=extra) from exc


def import_torch() -> ModuleType:
    """``torch`` (the ``torch`` extra)."""
    return import_optional("torch", extra="torch")
