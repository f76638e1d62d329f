"""``garrison protect``: encryption at rest (keygen, encrypt, decrypt, rotate) and anonymisation of tables
(anonymize).

Keys come from a key file, an environment variable holding the key text, or a passphrase in an environment
variable (never a command-line argument). Exit codes: 0 done, 1 integrity failure (altered, truncated, reordered or
extended ciphertext), 2 bad input (wrong key, not an encrypted file, missing key, output exists).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from garrison.cli.console import err_console, info
from garrison.cli.state import STATE

if TYPE_CHECKING:
    from garrison.protect import KeyEncryptionKey

__all__ = ["protect_app", "register"]

protect_app = typer.Typer(
    name="protect",
    help="Encryption at rest (AES-256-GCM streaming encryption with wrapped per-file keys) and anonymisation of "
    "CSV / Parquet tables, and signed dataset manifests (provenance).\n\n"
    "Exit codes: 0 done, 1 integrity failure or anonymity policy not met, 2 bad input (wrong key, not an "
    "encrypted file, bad table or config).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_KDFS = ("scrypt", "argon2id")
_PROGRESS_MIN_BYTES = 64 * 1024 * 1024

_KEY_FILE_HELP = "Key file written by `garrison protect keygen`."
_KEY_ENV_HELP = "Environment variable holding the key text (garrison-kek-v1:...)."
_PHRASE_ENV_HELP = "Environment variable holding a passphrase."


def _key(
    key_file: Path | None, key_env: str | None, passphrase_env: str | None, *, kdf: str, prefix: str = ""
) -> KeyEncryptionKey:
    from garrison.protect import Argon2idParams, KeyEncryptionKey, ScryptParams

    given = [o for o in (key_file, key_env, passphrase_env) if o is not None]
    names = f"--{prefix}key-file, --{prefix}key-env or --{prefix}passphrase-env"
    if len(given) != 1:
        raise typer.BadParameter(f"give exactly one of {names}", param_hint=f"--{prefix}key-file")
    if key_file is not None:
        return KeyEncryptionKey.from_file(key_file)
    if key_env is not None:
        return KeyEncryptionKey.from_env(key_env, environ=os.environ)
    assert passphrase_env is not None
    params = ScryptParams() if kdf == "scrypt" else Argon2idParams()
    return KeyEncryptionKey.passphrase_from_env(passphrase_env, kdf=params, environ=os.environ)


def _check_kdf(kdf: str) -> None:
    if kdf not in _KDFS:
        raise typer.BadParameter(f"must be one of {', '.join(_KDFS)}, got {kdf!r}", param_hint="--kdf")


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        from garrison.core.errors import InputError

        raise InputError("already exists (use --force to replace it)", path=path)


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A byte progress bar on stderr for big files, when it is a terminal and not --quiet."""
    if STATE.quiet or total < _PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn(description),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@protect_app.command("keygen")
def keygen_command(
    keyfile: Path = typer.Argument(..., help="Where to write the new key (created with mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing key file."),
) -> None:
    """Write a new random 256-bit key-encryption key to KEYFILE (mode 0600; never printed)."""
    from garrison.protect import write_key_file

    write_key_file(keyfile, force=force)
    info(f"wrote a new key to {keyfile} (mode 0600); keep it secret and backed up")


@protect_app.command("encrypt")
def encrypt_command(
    src: Path = typer.Argument(..., help="File to encrypt."),
    dst: Path = typer.Argument(..., help="Encrypted output (written atomically, mode 0600)."),
    key_file: Path | None = typer.Option(None, "--key-file", help=_KEY_FILE_HELP),
    key_env: str | None = typer.Option(None, "--key-env", help=_KEY_ENV_HELP),
    passphrase_env: str | None = typer.Option(None, "--passphrase-env", help=_PHRASE_ENV_HELP),
    kdf: str = typer.Option("scrypt", "--kdf", help=f"Passphrase KDF: {'|'.join(_KDFS)}."),
    chunk_size: int = typer.Option(1024 * 1024, "--chunk-size", help="Plaintext bytes per chunk."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Encrypt SRC to DST with AES-256-GCM under a new data key wrapped by the given key."""
    from garrison.protect import MAX_CHUNK_SIZE, encrypt_file

    _check_kdf(kdf)
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise typer.BadParameter(
            f"must be in [1, {MAX_CHUNK_SIZE}], got {chunk_size}", param_hint="--chunk-size"
        )
    key = _key(key_file, key_env, passphrase_env, kdf=kdf)
    _check_output(dst, force)
    with _progress(f"encrypting {src.name}", _size(src)) as progress:
        n = encrypt_file(src, dst, key, chunk_size=chunk_size, progress=progress)
    info(f"encrypted {n} bytes of {src} to {dst}")


@protect_app.command("decrypt")
def decrypt_command(
    src: Path = typer.Argument(..., help="Encrypted file."),
    dst: Path = typer.Argument(..., help="Plaintext output (written only after every chunk verified)."),
    key_file: Path | None = typer.Option(None, "--key-file", help=_KEY_FILE_HELP),
    key_env: str | None = typer.Option(None, "--key-env", help=_KEY_ENV_HELP),
    passphrase_env: str | None = typer.Option(None, "--passphrase-env", help=_PHRASE_ENV_HELP),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Decrypt SRC to DST; exit 1 and no output when any byte was altered, removed, reordered or added."""
    from garrison.protect import decrypt_file

    key = _key(key_file, key_env, passphrase_env, kdf="scrypt")
    _check_output(dst, force)
    with _progress(f"decrypting {src.name}", _size(src)) as progress:
        n = decrypt_file(src, dst, key, progress=progress)
    info(f"decrypted and verified {n} bytes of {src} to {dst}")


@protect_app.command("rotate")
def rotate_command(
    path: Path = typer.Argument(..., help="Encrypted file whose key to change (rewritten in place)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Current key: " + _KEY_FILE_HELP),
    key_env: str | None = typer.Option(None, "--key-env", help="Current key: " + _KEY_ENV_HELP),
    passphrase_env: str | None = typer.Option(
        None, "--passphrase-env", help="Current key: " + _PHRASE_ENV_HELP
    ),
    new_key_file: Path | None = typer.Option(None, "--new-key-file", help="New key: " + _KEY_FILE_HELP),
    new_key_env: str | None = typer.Option(None, "--new-key-env", help="New key: " + _KEY_ENV_HELP),
    new_passphrase_env: str | None = typer.Option(
        None, "--new-passphrase-env", help="New key: " + _PHRASE_ENV_HELP
    ),
    kdf: str = typer.Option("scrypt", "--kdf", help=f"KDF for a new passphrase: {'|'.join(_KDFS)}."),
) -> None:
    """Re-wrap the file's data key under a new key or passphrase; the body is not rewritten."""
    from garrison.protect import rotate_key

    _check_kdf(kdf)
    old = _key(key_file, key_env, passphrase_env, kdf="scrypt")
    new = _key(new_key_file, new_key_env, new_passphrase_env, kdf=kdf, prefix="new-")
    rotate_key(path, old, new)
    info(f"rotated the key of {path} (now opened by {new.source})")


@protect_app.command("anonymize")
def anonymize_command(
    src: Path = typer.Argument(..., help="CSV or Parquet table."),
    dst: Path = typer.Argument(..., help="Anonymised output (written atomically; nothing on error)."),
    config: Path = typer.Option(..., "--config", help="Anonymisation config (YAML)."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Pseudonym key: " + _KEY_FILE_HELP),
    key_env: str | None = typer.Option(None, "--key-env", help="Pseudonym key: " + _KEY_ENV_HELP),
    report: Path | None = typer.Option(
        None, "--report", help="Write the JSON report (detections, k / l) here."
    ),
    fmt: str | None = typer.Option(None, "--format", help="Output format: csv|parquet (default: from DST)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
) -> None:
    """Detect PII per column and in free text, pseudonymise / redact / suppress / generalise it, generalise the
    quasi-identifiers to k-anonymity and report k and l before and after. Exit 1 when the config's policy
    (min_k, min_l) is not met (the output is still written), 2 on bad input, config or key."""
    import json

    from garrison.core.atomic_write import write_atomic
    from garrison.protect import KeyEncryptionKey, Pseudonymizer, anonymize_frame, load_anonymize_config
    from garrison.protect.table import TABLE_FORMATS, read_table, write_table

    if fmt is not None and fmt not in TABLE_FORMATS:
        raise typer.BadParameter(
            f"must be one of {', '.join(TABLE_FORMATS)}, got {fmt!r}", param_hint="--format"
        )
    if key_file is not None and key_env is not None:
        raise typer.BadParameter("give at most one of --key-file, --key-env", param_hint="--key-file")
    cfg = load_anonymize_config(config)
    _check_output(dst, force)
    if report is not None:
        _check_output(report, force)
    key: KeyEncryptionKey | None = None
    if key_file is not None or (key_env is None and cfg.key_file):
        path = key_file if key_file is not None else cfg.config_relative(cfg.key_file)
        key = KeyEncryptionKey.from_file(path)
    elif key_env is not None or cfg.key_env:
        key = KeyEncryptionKey.from_env(key_env or cfg.key_env or "", environ=os.environ)
    frame = read_table(src, format=cfg.input_format, encoding=cfg.encoding)
    pseudo = (
        Pseudonymizer(key, hex_chars=cfg.pseudonym_hex, keep_email_domain=cfg.keep_email_domain)
        if key
        else None
    )
    result = anonymize_frame(frame, cfg, pseudo)
    write_table(result.frame, dst, format=fmt)
    if report is not None:
        write_atomic(report, json.dumps(result.report, indent=2, sort_keys=True) + "\n")
    r = result.report
    summary = f"anonymised {r['rows_in']} rows of {src} to {dst} ({r['rows_out']} rows"
    if r["after"] is not None:
        summary += f", k {r['before']['k']} -> {r['after']['k']}"
        if r["after"]["l"] is not None:
            summary += f", l {r['before']['l']} -> {r['after']['l']}"
    info(summary + ")")
    if not result.passed:
        err_console().print("garrison: anonymity policy not met: " + "; ".join(r["policy"]["failures"]))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from garrison.cli import manifest_cmd

    manifest_cmd.register(protect_app)
    app.add_typer(protect_app, name="protect")
