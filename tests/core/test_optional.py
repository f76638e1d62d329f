from __future__ import annotations

import pytest

from garrison.core.errors import MissingDependencyError
from garrison.core.optional import import_optional, import_torch


def test_a_missing_module_names_the_extra_that_installs_it() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'garrison\[privacy\]'") as info:
        import_optional("garrison_no_such_package.sub", extra="privacy")
    assert info.value.package == "garrison_no_such_package" and info.value.extra == "privacy"


def test_an_installed_module_is_returned() -> None:
    torch = pytest.importorskip("torch")
    assert import_torch() is torch
    assert import_optional("json", extra="unused").dumps([1]) == "[1]"
