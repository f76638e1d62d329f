"""Packages whose public names load on first use: every exported name resolves, is listed by dir(), and is the
object its module defines; an unknown name is an AttributeError."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest

LAZY_PACKAGES = (
    "garrison.core",
    "garrison.audit",
    "garrison.report",
    "garrison.supplychain",
    "garrison.adapters",
    "garrison.privacy",
)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_exported_name_resolves(package: str) -> None:
    module = import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module), name


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unknown_name_is_an_attribute_error(package: str) -> None:
    with pytest.raises(AttributeError, match="no attribute 'surely_not_here'"):
        import_module(package).surely_not_here


def test_a_resolved_name_is_the_defining_modules_object() -> None:
    import garrison.core
    from garrison.core.findings import Finding

    assert garrison.core.Finding is Finding
    assert "Finding" in vars(garrison.core)  # stored on first use


def test_importing_core_loads_only_what_is_used() -> None:
    probe = (
        "import sys\nfrom garrison.core import GarrisonError\n"
        "print(sorted(m for m in sys.modules if m.startswith('garrison.core.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "['garrison.core.errors', 'garrison.core.lazy']"


def test_a_name_shared_with_its_module_is_the_object_even_after_the_module_is_imported() -> None:
    probe = "import garrison.audit.evaluate\nfrom garrison.audit import evaluate\nprint(callable(evaluate))\n"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "True"
