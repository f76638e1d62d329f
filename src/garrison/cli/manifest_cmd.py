"""``garrison protect manifest`` and ``garrison protect verify-manifest``: signed per-file manifests of datasets.

Exit codes of ``verify-manifest``: 0 intact (and the signature verified, or no key was given), 1 a file changed,
appeared, vanished or cannot be hashed safely, or the signature is missing or invalid; 2 bad input (no such
directory, no manifest, a malformed manifest, an unusable key).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from garrison.cli.console import err_console, info, warn

if TYPE_CHECKING:
    from garrison.supplychain.manifest import ManifestDiff

__all__ = ["manifest_command", "register", "verify_manifest_command"]


def manifest_command(
    directory: Path = typer.Argument(..., help="Dataset directory to list."),
    private_key: Path | None = typer.Option(
        None, "--private-key", "-k", help="Elliptic-curve private key (PEM, `garrison keygen`) to sign with."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Manifest file (default: <DIR>/garrison-manifest.json)."
    ),
) -> None:
    """Write a manifest of every file under DIR (path, size, SHA-256), signed when --private-key is given."""
    from garrison.supplychain.manifest import manifest_signature_path, write_manifest

    written = write_manifest(directory, private_key=private_key, output=output)
    if private_key is not None:
        info(f"wrote {written}, signed -> {manifest_signature_path(written)}")
    else:
        info(f"wrote {written} (unsigned: give --private-key to sign it)")


def verify_manifest_command(
    directory: Path = typer.Argument(..., help="Dataset directory to check."),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        "-k",
        help="The signer's public key (PEM); without it only integrity is checked.",
    ),
    manifest: Path | None = typer.Option(
        None, "--manifest", "-m", help="Manifest file (default: <DIR>/garrison-manifest.json)."
    ),
) -> None:
    """Check DIR against its manifest: list every file that changed, appeared or vanished. Exit 0 intact, 1 not."""
    from garrison.supplychain.manifest import SignatureState, verify_manifest

    diff = verify_manifest(directory, public_key=public_key, manifest=manifest)
    sys.stdout.write(render_diff(diff))
    sys.stdout.flush()
    if diff.signature_status is SignatureState.UNCHECKED:
        warn("signature not checked (no --public-key): integrity only, not authenticity")
    if diff.ok:
        info(f"intact: {len(diff.expected)} files match {diff.manifest}")
        raise typer.Exit(0)
    from rich.markup import escape

    err_console().print(f"[red]NOT VERIFIED[/red] {escape(str(directory))}: {escape(_summary(diff))}")
    raise typer.Exit(1)


def render_diff(diff: ManifestDiff) -> str:
    """One line per problem (``changed``, ``appeared``, ``vanished``, ``unsafe``) and the signature's status."""
    lines = [f"signature: {diff.signature_status.value} ({diff.signature_reason})"]
    lines += [f"changed   {p}" for p in diff.changed]
    lines += [f"appeared  {p}" for p in diff.appeared]
    lines += [f"vanished  {p}" for p in diff.vanished]
    lines += [f"unsafe    {u.path}: {u.reason}" for u in diff.unsafe]
    return "\n".join(_printable(line) for line in lines) + "\n"


def _printable(text: str) -> str:
    # file names are attacker-controlled: escape control characters so they cannot forge lines or terminal codes
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _summary(diff: ManifestDiff) -> str:
    parts = [
        f"{len(items)} {label}"
        for items, label in (
            (diff.changed, "changed"),
            (diff.appeared, "appeared"),
            (diff.vanished, "vanished"),
            (diff.unsafe, "unsafe"),
        )
        if items
    ]
    if diff.signature_status.value in ("invalid", "missing"):
        parts.append(f"signature {diff.signature_status.value}: {diff.signature_reason}")
    return "; ".join(parts)


def register(protect_app: typer.Typer) -> None:
    """Add ``manifest`` and ``verify-manifest`` to the ``garrison protect`` group."""
    protect_app.command("manifest")(manifest_command)
    protect_app.command("verify-manifest")(verify_manifest_command)
