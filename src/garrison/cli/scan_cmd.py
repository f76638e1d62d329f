"""``garrison scan``, ``garrison sign``, ``garrison verify`` and ``garrison keygen``: model artifact scanning
and signing."""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from garrison.cli.console import err_console, info
from garrison.cli.state import STATE
from garrison.core.atomic_write import write_atomic

if TYPE_CHECKING:
    from garrison.core import Report
    from garrison.core.severity import Severity
    from garrison.supplychain.pickle_policy import Allowlist
    from garrison.supplychain.result import ScanResult

__all__ = ["register"]

SCAN_FORMATS = ("text", "json", "sarif")
_SEVERITIES = ("critical", "high", "medium", "low", "info")
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def scan_command(
    paths: list[Path] | None = typer.Argument(
        None,
        metavar="PATH",
        help="Model files, directories (scanned recursively) or archives.",
        show_default=False,
    ),
    fmt: str = typer.Option("text", "--format", "-f", help=f"Output format: {'|'.join(SCAN_FORMATS)}."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the output here (default stdout)."
    ),
    fail_on: str = typer.Option(
        "medium", "--fail-on", help=f"Exit 1 on a finding at or above: {'|'.join(_SEVERITIES)}."
    ),
    code: list[Path] | None = typer.Option(
        None,
        "--code",
        help="Also scan the Python files and notebooks under DIR (repeatable).",
        show_default=False,
    ),
    require_signature: Path | None = typer.Option(
        None,
        "--require-signature",
        help="Public key (PEM): each PATH must carry a valid signature by its private key (`garrison sign`).",
    ),
    allowlist: list[str] | None = typer.Option(
        None,
        "--allowlist",
        help="Extra safe callable, exact 'module.qualname' (repeatable).",
        show_default=False,
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Read the `scan:` section (allowlist, require_signature, limits) of this file.",
    ),
    max_decompression_ratio: float | None = typer.Option(
        None, "--max-decompression-ratio", help="Largest decompressed/compressed size ratio (default 200)."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per file given (default 120)."),
) -> None:
    """Scan model files for code that loading them would run, without loading them.

    Exit 0 clean, 1 findings at or above --fail-on, 2 usage error, 3 something could not be fully scanned.
    """
    from garrison.supplychain.limits import ScanLimits
    from garrison.supplychain.result import ScanResult

    if fmt not in SCAN_FORMATS:
        raise typer.BadParameter(
            f"must be one of {', '.join(SCAN_FORMATS)}, got {fmt!r}", param_hint="--format"
        )
    threshold = _severity(fail_on)
    paths, code = list(paths or ()), list(code or ())
    if not paths and not code:
        raise typer.BadParameter("give at least one PATH to scan, or --code DIR", param_hint="PATH")

    names: list[str] = []
    limit_values: dict[str, float | int] = {}
    key = require_signature
    if config is not None:
        from garrison.core.config import load_config

        section = load_config(config, env=dict(os.environ)).scan
        names.extend(section.allowlist)
        limit_values.update(section.limits)
        if key is None and section.require_signature is not None:
            key = config.parent / section.require_signature  # relative to the config file; absolute stays
    names.extend(allowlist or ())
    if max_decompression_ratio is not None:
        limit_values["max_decompression_ratio"] = max_decompression_ratio
    if timeout is not None:
        limit_values["timeout_s"] = timeout
    limits = ScanLimits.from_mapping(limit_values)
    policy_allowlist = _allowlist(names)

    started = dt.datetime.now(dt.UTC)
    result = ScanResult()
    with _progress() as progress:
        if paths:
            from garrison.supplychain.scan import scan_paths

            result = scan_paths(paths, limits=limits, allowlist=policy_allowlist, progress=progress)
        if code:  # imported only when asked for: `garrison scan FILE` stays quick to start
            from garrison.supplychain.codescan import scan_code

            for root in code:
                result = result.merged(scan_code(root, progress=progress))
    if key is not None:
        from garrison.supplychain.signing import signature_findings

        result = result.merged(ScanResult(findings=signature_findings(paths, public_key=key)))
    finished = dt.datetime.now(dt.UTC)

    exit_code = result.exit_code(threshold)
    if fmt == "text":
        _write(output, _render_text(result, threshold))
    else:
        _write(output, _render_report(_report(result, threshold, started, finished), fmt))
    raise typer.Exit(exit_code)


def _severity(name: str) -> Severity:
    from garrison.core.severity import Severity

    try:
        return Severity(name.lower())
    except ValueError:
        raise typer.BadParameter(
            f"must be one of {', '.join(_SEVERITIES)}, got {name!r}", param_hint="--fail-on"
        ) from None


def _allowlist(names: list[str]) -> Allowlist | None:
    """The default allowlist extended with ``names``; ``None`` (the scanner's default) when there are none."""
    if not names:
        return None
    from garrison.supplychain.pickle_policy import default_allowlist

    return default_allowlist().extended(names)


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """The file being scanned, on stderr, when it is a terminal and not --quiet."""
    if STATE.quiet or not sys.stderr.isatty():
        yield lambda _where: None
        return
    with err_console().status("scanning") as status:
        yield lambda where: status.update(f"scanning {where}")


def _report(result: ScanResult, fail_on: Severity, started: dt.datetime, finished: dt.datetime) -> Report:
    from dataclasses import replace

    from garrison.audit import evaluate
    from garrison.core.policy import Policy

    report = result.to_report(project="scan", started_at=started, finished_at=finished)
    return replace(report, decision=evaluate(report, Policy(fail_on=fail_on)))


def _render_report(report: Report, fmt: str) -> str:
    from garrison.cli.output import repo_root
    from garrison.report import render_sarif, to_json

    if fmt == "json":
        return to_json(report)
    return render_sarif(report, repo_root=repo_root())


def _render_text(result: ScanResult, fail_on: Severity) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from garrison.core.findings import Finding

    buffer = io.StringIO()
    console = Console(file=buffer, width=160, highlight=False, color_system=None, soft_wrap=False)
    findings = sorted(result.findings, key=Finding.sort_key)
    if findings:
        table = Table(show_lines=False, expand=False, pad_edge=False)
        for column in ("severity", "rule", "location", "message"):
            table.add_column(column, overflow="fold")
        for f in findings:
            style = _STYLE[f.severity.value]
            table.add_row(
                f"[{style}]{f.severity.value}[/{style}]",
                f.rule_id,
                escape(f"{f.location or ''}{f':{f.line}' if f.line else ''}"),
                escape(f.message),
            )
        console.print(table)
    if result.incomplete:
        console.print("not fully scanned (never reported clean):")
        for item in result.incomplete:
            limit = f" [limit {item.limit}]" if item.limit else ""
            console.print(f"  {escape(item.location)}: {escape(item.reason)}{escape(limit)}")
    blocking = sum(1 for f in findings if f.severity >= fail_on)
    console.print(
        f"{len(result.files)} files scanned, {len(findings)} findings ({blocking} at or above {fail_on.value}), "
        f"{len(result.incomplete)} incomplete"
    )
    return buffer.getvalue()


def _write(output: Path | None, text: str) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(output, text)
    info(f"wrote {output}")


def sign_command(
    model: Path = typer.Argument(..., help="Model file or directory to sign."),
    key: Path = typer.Option(..., "--key", "-k", help="Elliptic-curve private key (PEM)."),
    signature: Path | None = typer.Option(
        None, "--signature", "-s", help="Signature file (default: <file>.sig, or <dir>/model.sig)."
    ),
) -> None:
    """Sign a model file or directory (OpenSSF model signing, offline, key-based)."""
    from garrison.supplychain.signing import sign_model

    written = sign_model(model, private_key=key, signature=signature)
    info(f"signed {model} -> {written}")


def verify_command(
    model: Path = typer.Argument(..., help="Model file or directory to verify."),
    key: Path = typer.Option(..., "--key", "-k", help="The signer's public key (PEM)."),
    signature: Path | None = typer.Option(
        None, "--signature", "-s", help="Signature file (default: <file>.sig, or <dir>/model.sig)."
    ),
) -> None:
    """Verify a model against its signature. Exit 0 verified, 1 missing or invalid signature."""
    from garrison.supplychain.signing import verify_model

    status = verify_model(model, public_key=key, signature=signature)
    if status.ok:
        info(f"verified {model} ({status.signature})")
        raise typer.Exit(0)
    from rich.markup import escape

    err_console().print(f"[red]NOT VERIFIED[/red] {escape(str(model))}: {escape(status.reason)}")
    raise typer.Exit(1)


def keygen_command(
    private_key: Path = typer.Argument(..., help="Where to write the private key (PEM, mode 0600)."),
    public_key: Path = typer.Argument(..., help="Where to write the public key (PEM)."),
    force: bool = typer.Option(False, "--force", help="Replace existing key files."),
) -> None:
    """Write a new elliptic-curve (P-256) key pair for `garrison sign` / `garrison verify`."""
    from garrison.supplychain.signing import generate_keypair

    generate_keypair(private_key, public_key, overwrite=force)
    info(f"wrote {private_key} (keep it secret) and {public_key}")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
    app.command("sign")(sign_command)
    app.command("verify")(verify_command)
    app.command("keygen")(keygen_command)
