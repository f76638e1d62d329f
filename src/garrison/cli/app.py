"""The Typer application, global options and error handling (one line per error; --debug for the traceback)."""

from __future__ import annotations

import sys
from importlib import import_module

import typer

from garrison import __version__
from garrison.cli.state import STATE

__all__ = ["COMMAND_MODULES", "main", "register_commands"]  # and `app`, built on first access

_app = typer.Typer(
    name="garrison",
    help="Garrison: audit, harden and guard machine-learning systems.\n\n"
    "Exit codes: 0 passed, 1 policy failed, 2 usage/config/input error, 3 incomplete.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"garrison {__version__}")
        raise typer.Exit(0)


@_app.callback()
def _global(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print errors and requested output."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    STATE.debug = debug
    STATE.quiet = quiet


# Each command's module, in the order `garrison --help` lists them. A run imports only the module of the command
# it names (`garrison scan` does not import the audit, serving or dashboard commands); --help and unknown commands
# register all. tests/cli/test_cli_lazy.py checks this table against what each module registers.
COMMAND_MODULES: dict[str, str] = {
    "init": "init_cmd",
    "audit": "audit_cmd",
    "report": "audit_cmd",
    "demo": "demo_cmd",
    "findings": "findings_cmd",
    "checks": "catalog_cmd",
    "rules": "catalog_cmd",
    "scan": "scan_cmd",
    "sign": "scan_cmd",
    "verify": "scan_cmd",
    "keygen": "scan_cmd",
    "harden": "harden_cmd",
    "robustness": "robustness_cmd",
    "train": "train_cmd",
    "privacy": "privacy_cmd",
    "poisoning": "poisoning_cmd",
    "protect": "protect_cmd",
    "data": "data_cmd",
    "fl": "fl_cmd",
    "explain": "explain_cmd",
    "serve": "serve_cmd",
    "incidents": "incidents_cmd",
    "keys": "keys_cmd",
    "log": "log_cmd",
    "monitor": "monitor_cmd",
    "models": "models_cmd",
    "bom": "bom_cmd",
    "attest": "attest_cmd",
    "verify-attestation": "attest_cmd",
    "ui": "ui_cmd",
    "users": "users_cmd",
}
_GLOBAL_FLAGS = frozenset({"--debug", "--quiet", "-q"})
_registered: set[str] = set()


def register_commands(argv: list[str] | None = None) -> typer.Typer:
    """Register the command modules ``argv`` needs (all of them without a known command) on :data:`app`."""
    command = next((a for a in argv or () if a not in _GLOBAL_FLAGS), None)
    wanted = (
        [COMMAND_MODULES[command]]
        if command in COMMAND_MODULES
        else list(dict.fromkeys(COMMAND_MODULES.values()))
    )
    for name in wanted:
        if name not in _registered:
            import_module(f"garrison.cli.{name}").register(_app)
            _registered.add(name)
    return _app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole command line, for library users and tests
        return register_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _exit_code_for(exc: BaseException) -> int:
    from garrison.core.errors import BudgetExceeded, IntegrityError, RemoteModelError

    if isinstance(exc, IntegrityError):  # altered, truncated or reordered ciphertext: a failed verification
        return 1
    # a model that could not be fully queried makes the run incomplete; everything else is a usage/input error
    if isinstance(exc, RemoteModelError | BudgetExceeded):
        return 3
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``garrison`` script. Returns (and exits with) the documented exit code."""
    from garrison.core.errors import GarrisonError

    args = sys.argv[1:] if argv is None else argv
    try:
        register_commands(args)(args=args, prog_name="garrison", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if argv is not None:
            return code
        raise
    except GarrisonError as exc:
        if STATE.debug:
            import traceback

            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"garrison: error: {message}", file=sys.stderr)
        code = _exit_code_for(exc)
        if argv is not None:
            return code
        raise SystemExit(code) from None
    except KeyboardInterrupt:
        print("garrison: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    return 0
