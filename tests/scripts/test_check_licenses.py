"""The licence gate: which licence strings it denies, and that the installed runtime closure passes."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_licenses.py"


def _module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_licenses", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("licence", "denied"),
    [
        ("GPL-3.0-only", True),
        ("AGPL-3.0-or-later", True),
        ("GNU General Public License v2 (GPLv2)", True),
        ("BUSL-1.1", True),
        ("Business Source License 1.1", True),
        ("SSPL-1.0", True),
        ("LGPL-3.0-only", False),
        ("GNU Lesser General Public License v3 (LGPLv3)", False),
        ("BSL-1.0", False),  # the Boost licence, permissive
        ("Apache-2.0 AND BSD-3-Clause AND MIT", False),
    ],
)
def test_denied_licences(licence: str, denied: bool) -> None:
    m = _module()
    assert bool(m.DENIED.search(m.LESSER.sub("", licence))) is denied


def test_installed_runtime_dependencies_pass() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "checked" in done.stdout
