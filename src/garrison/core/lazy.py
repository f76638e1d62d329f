"""A package's public names resolved from its submodules on first use (PEP 562), so that importing the package
imports only what a caller touches: ``garrison scan`` must not pay for the audit report or config code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose name ``n`` lives in submodule ``names[n]``.

    A resolved name is stored on the package, so each is looked up once. A name equal to its submodule's name
    (``garrison.audit.evaluate``) is bound at once: importing that submodule later would otherwise leave the module,
    not the function, under the name.
    """
    for name, module in names.items():
        if name == module:
            setattr(sys.modules[package], name, getattr(import_module(f"{package}.{module}"), name))

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
