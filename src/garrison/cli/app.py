"""The Typer application, global options and error handling (one line per error; --debug for the traceback)."""

from __future__ import annotations

import sys
import traceback

import typer

from garrison import __version__
from garrison.cli.state import STATE

__all__ = ["app", "main"]

app = typer.Typer(
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


@app.callback()
def _global(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print errors and requested output."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    STATE.debug = debug
    STATE.quiet = quiet


def _register() -> None:
    from garrison.cli import (
        attest_cmd,
        audit_cmd,
        bom_cmd,
        catalog_cmd,
        data_cmd,
        demo_cmd,
        explain_cmd,
        findings_cmd,
        fl_cmd,
        harden_cmd,
        incidents_cmd,
        init_cmd,
        keys_cmd,
        log_cmd,
        models_cmd,
        monitor_cmd,
        poisoning_cmd,
        privacy_cmd,
        protect_cmd,
        robustness_cmd,
        scan_cmd,
        serve_cmd,
        train_cmd,
        ui_cmd,
        users_cmd,
    )

    for module in (init_cmd, audit_cmd, demo_cmd, findings_cmd, catalog_cmd, scan_cmd, harden_cmd, robustness_cmd,
                   train_cmd, privacy_cmd, poisoning_cmd, protect_cmd, data_cmd, fl_cmd, explain_cmd, serve_cmd,
                   incidents_cmd, keys_cmd, log_cmd, monitor_cmd, models_cmd, bom_cmd,
                   attest_cmd, ui_cmd, users_cmd):  # fmt: skip
        module.register(app)


_register()


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

    try:
        app(args=argv, prog_name="garrison", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if argv is not None:
            return code
        raise
    except GarrisonError as exc:
        if STATE.debug:
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
