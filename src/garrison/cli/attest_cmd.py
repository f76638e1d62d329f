"""``garrison attest`` and ``garrison verify-attestation``: a signed in-toto attestation of an audit's verdict on a
model file (DSSE envelope, EC keys from ``garrison keygen``), and its verification. See docs/attestation.md."""

from __future__ import annotations

from pathlib import Path

import typer

from garrison.cli.console import err_console, info

__all__ = ["register"]


def attest_command(
    report: Path = typer.Option(..., "--report", "-r", help="The report.json written by `garrison audit`."),
    model: Path = typer.Option(
        ..., "--model", "-m", help="The audited model file (its SHA-256 is the subject)."
    ),
    key: Path = typer.Option(..., "--key", "-k", help="Elliptic-curve private key (PEM, `garrison keygen`)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Attestation file (default: <model>.intoto.jsonl)."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Link to the test run (e.g. the CI job), attested too."
    ),
) -> None:
    """Sign an in-toto Test Result attestation of an audit report for a model file."""
    from garrison.report import read_report
    from garrison.report.attestation import (
        build_statement,
        default_attestation_path,
        sign_statement,
        write_attestation,
    )

    statement = build_statement(read_report(report), model, url=url)
    envelope = sign_statement(statement, key)
    target = output if output is not None else default_attestation_path(model)
    write_attestation(envelope, target)
    info(f"attested {model}: audit {statement['predicate']['result']} -> {target}")


def verify_attestation_command(
    attestation: Path = typer.Argument(..., help="The .intoto.jsonl attestation to verify."),
    model: Path = typer.Option(..., "--model", "-m", help="The model file the attestation must be about."),
    public_key: Path = typer.Option(..., "--public-key", "-k", help="The signer's public key (PEM)."),
) -> None:
    """Verify an attestation: signature, statement, and the model's digest. Exit 0 verified, 1 not verified."""
    from rich.markup import escape

    from garrison.report.attestation import read_attestation, verify_attestation

    check = verify_attestation(read_attestation(attestation), public_key=public_key, model_path=model)
    if check.ok:
        result = check.result or "?"
        info(f"verified {escape(str(model))}: attested audit {escape(result)} ({escape(str(attestation))})")
        raise typer.Exit(0)
    console = err_console()
    for reason in check.reasons:
        console.print(f"[red]NOT VERIFIED[/red] {escape(str(attestation))}: {escape(reason)}", soft_wrap=True)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("attest")(attest_command)
    app.command("verify-attestation")(verify_attestation_command)
