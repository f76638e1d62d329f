from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from garrison.cli.app import main
from garrison.protect import HEADER_SIZE, generate_key

PASSPHRASE = "tr0ub4dor&3-very-secret"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.bin").write_bytes(os.urandom(300_000))
    return tmp_path


def test_keygen_encrypt_decrypt_round_trip(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protect", "keygen", "k.key"]) == 0
    assert (work / "k.key").stat().st_mode & 0o777 == 0o600
    key_text = (work / "k.key").read_text().strip()
    assert main(["protect", "keygen", "k.key"]) == 2  # refuses to overwrite
    assert (work / "k.key").read_text().strip() == key_text
    assert (
        main(["protect", "encrypt", "plain.bin", "c.enc", "--key-file", "k.key", "--chunk-size", "4096"]) == 0
    )
    assert main(["protect", "decrypt", "c.enc", "out.bin", "--key-file", "k.key"]) == 0
    assert (work / "out.bin").read_bytes() == (work / "plain.bin").read_bytes()
    assert main(["protect", "decrypt", "c.enc", "out.bin", "--key-file", "k.key"]) == 2  # output exists
    assert main(["protect", "decrypt", "c.enc", "out.bin", "--key-file", "k.key", "--force"]) == 0
    captured = capsys.readouterr()
    assert key_text[16:] not in captured.out + captured.err
    assert main(["protect", "keygen", "k.key", "--force"]) == 0
    assert (work / "k.key").read_text().strip() != key_text


def test_exit_codes_integrity_and_bad_input(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["protect", "keygen", "k.key"])
    main(["protect", "keygen", "other.key"])
    assert main(["protect", "encrypt", "plain.bin", "c.enc", "--key-file", "k.key"]) == 0
    blob = (work / "c.enc").read_bytes()
    capsys.readouterr()

    assert main(["protect", "decrypt", "c.enc", "o1", "--key-file", "other.key"]) == 2
    assert "does not open this file" in capsys.readouterr().err

    (work / "flip.enc").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    assert main(["protect", "decrypt", "flip.enc", "o2", "--key-file", "k.key"]) == 1
    assert "failed authentication" in capsys.readouterr().err

    (work / "trunc.enc").write_bytes(blob[: HEADER_SIZE + 1000])
    assert main(["protect", "decrypt", "trunc.enc", "o3", "--key-file", "k.key"]) == 1
    (work / "head.enc").write_bytes(blob[:50])
    assert main(["protect", "decrypt", "head.enc", "o4", "--key-file", "k.key"]) == 1
    assert "truncated" in capsys.readouterr().err

    bad = bytearray(blob)
    bad[30] ^= 4
    (work / "corrupt.enc").write_bytes(bad)
    assert main(["protect", "decrypt", "corrupt.enc", "o5", "--key-file", "k.key"]) == 1
    assert "corrupt header" in capsys.readouterr().err

    assert main(["protect", "decrypt", "plain.bin", "o6", "--key-file", "k.key"]) == 2
    assert "not a Garrison encrypted file" in capsys.readouterr().err
    assert main(["protect", "decrypt", "c.enc", "o7", "--key-file", "missing.key"]) == 2
    assert main(["protect", "encrypt", "missing.bin", "o7", "--key-file", "k.key"]) == 2
    assert main(["protect", "encrypt", "plain.bin", "no/such/dir/o7", "--key-file", "k.key"]) == 2
    assert main(["protect", "decrypt", "c.enc", "c.enc", "--key-file", "k.key", "--force"]) == 2
    assert "same file" in capsys.readouterr().err
    assert main(["protect", "decrypt", "c.enc", "o8"]) == 2  # no key option
    assert main(["protect", "decrypt", "c.enc", "o8", "--key-file", "k.key", "--key-env", "X"]) == 2
    assert main(["protect", "encrypt", "plain.bin", "c9", "--key-file", "k.key", "--chunk-size", "0"]) == 2
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["plain.bin", "k.key", "other.key", "c.enc", "flip.enc", "trunc.enc", "head.enc", "corrupt.enc"]
    )


def test_env_keys_passphrase_rotation_and_no_secret_in_output(
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key_text = generate_key()
    monkeypatch.setenv("GARRISON_TEST_KEK", key_text)
    monkeypatch.setenv("GARRISON_TEST_PASS", PASSPHRASE)
    monkeypatch.setenv("GARRISON_TEST_BAD", "garrison-kek-v1:not-base64-at-all-" + PASSPHRASE)
    # the CLI uses the default, strong scrypt parameters (n=2**17): two derivations of a fraction of a second
    assert main(["protect", "encrypt", "plain.bin", "c.enc", "--key-env", "GARRISON_TEST_KEK"]) == 0
    before = (work / "c.enc").read_bytes()
    assert main(["protect", "decrypt", "c.enc", "o1", "--key-env", "GARRISON_TEST_KEK"]) == 0
    assert main(["protect", "decrypt", "c.enc", "o2", "--passphrase-env", "GARRISON_TEST_PASS"]) == 2
    assert main(["protect", "decrypt", "c.enc", "o2", "--key-env", "GARRISON_TEST_BAD"]) == 2
    assert main(["protect", "decrypt", "c.enc", "o2", "--key-env", "GARRISON_TEST_UNSET"]) == 2
    assert main(["--debug", "protect", "decrypt", "c.enc", "o2", "--key-env", "GARRISON_TEST_BAD"]) == 2

    args = ["protect", "rotate", "c.enc", "--key-env", "GARRISON_TEST_KEK"]
    assert main([*args, "--new-passphrase-env", "GARRISON_TEST_PASS"]) == 0
    after = (work / "c.enc").read_bytes()
    assert after[HEADER_SIZE:] == before[HEADER_SIZE:]
    assert main(["protect", "decrypt", "c.enc", "o3", "--key-env", "GARRISON_TEST_KEK"]) == 2
    assert main(["protect", "decrypt", "c.enc", "o3", "--passphrase-env", "GARRISON_TEST_PASS"]) == 0
    assert (work / "o3").read_bytes() == (work / "plain.bin").read_bytes()
    assert main([*args, "--new-key-env", "GARRISON_TEST_KEK"]) == 2  # old key no longer opens it
    assert main(["protect", "rotate", "c.enc", "--passphrase-env", "GARRISON_TEST_PASS"]) == 2  # no new key

    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert "protected by a passphrase (scrypt)" in everything
    assert "GARRISON_TEST_BAD is not a valid Garrison key" in everything
    for secret in (key_text, key_text[16:], PASSPHRASE, "not-base64-at-all"):
        assert secret not in everything


def test_help_does_not_import_cryptography() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom garrison.cli.app import main\n"
        "assert main(['protect', '--help']) == 0\n"
        "print('cryptography' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
