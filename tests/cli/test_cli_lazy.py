"""A `garrison` run imports only the module of the command it names; the table that says which module holds which
command must match what the modules register."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from pathlib import Path

import click
import typer

from garrison.cli import main
from garrison.cli.app import COMMAND_MODULES

CLI_DIR = Path(__file__).resolve().parents[2] / "src" / "garrison" / "cli"
NESTED = {"manifest_cmd"}  # registered by protect_cmd under `garrison protect`


def commands_of(module: str) -> set[str]:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    import_module(f"garrison.cli.{module}").register(app)
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return set(group.commands)


def test_the_table_names_exactly_the_commands_each_module_registers() -> None:
    for module in set(COMMAND_MODULES.values()):
        assert commands_of(module) == {c for c, m in COMMAND_MODULES.items() if m == module}, module


def test_every_command_module_is_in_the_table() -> None:
    on_disk = {p.stem for p in CLI_DIR.glob("*_cmd.py")} - NESTED
    assert on_disk == set(COMMAND_MODULES.values())


def test_help_lists_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for command in COMMAND_MODULES:
        assert f"\n  {command} " in listed, command


def test_a_scan_imports_neither_other_commands_nor_the_audit_runner(tmp_path: Path) -> None:
    target = tmp_path / "tiny.bin"
    target.write_bytes(b"abcd")
    probe = (
        "import sys\nfrom garrison.cli import main\n"
        f"code = main(['--quiet', 'scan', {str(target)!r}, '--format', 'json'])\n"
        "heavy = ('numpy', 'jsonschema', 'garrison.audit.runner', 'garrison.report.bom', 'garrison.core.config')\n"
        "print(code, sorted(m for m in sys.modules if m.endswith('_cmd')), [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "0 ['garrison.cli.scan_cmd'] []"


def test_global_options_before_the_command_still_find_it(capsys) -> None:
    assert main(["--quiet", "--debug", "rules"]) == 0
    assert "GAR-" in capsys.readouterr().out
