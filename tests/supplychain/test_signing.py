from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
import skops.io
from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression

from garrison.core.errors import InputError
from garrison.supplychain.signing import (
    SignatureStatus,
    default_signature_path,
    generate_keypair,
    sign_model,
    verify_model,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private, public = folder / "signer.pem", folder / "signer.pub"
    generate_keypair(private, public)
    return private, public


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("other")
    generate_keypair(folder / "k.pem", folder / "k.pub")
    return folder / "k.pem", folder / "k.pub"


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    path = tmp_path / "model.skops"
    skops.io.dump(model, path)
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "tokenizer").mkdir(parents=True)
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"hidden": 4}))
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return folder


def test_keypair_is_pem_ec_with_private_key_0600(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, _ = keys
    before = private.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        generate_keypair(private, tmp_path / "new.pub")
    assert private.read_bytes() == before


def test_file_round_trip_and_default_path(keys: tuple[Path, Path], model_file: Path) -> None:
    private, public = keys
    sig = sign_model(model_file, private_key=private)
    assert sig == model_file.with_name("model.skops.sig") == default_signature_path(model_file)
    status = verify_model(model_file, public_key=public)
    assert status == SignatureStatus(True, "signature verified", sig)


def test_directory_round_trip_signature_inside(keys: tuple[Path, Path], model_dir: Path) -> None:
    private, public = keys
    sig = sign_model(model_dir, private_key=private)
    assert sig == model_dir / "model.sig"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json",
        "model.safetensors",
        "model.sig",
        "tokenizer",
    ]
    assert verify_model(model_dir, public_key=public).ok


def test_tampered_file_fails(keys: tuple[Path, Path], model_file: Path) -> None:
    private, public = keys
    sign_model(model_file, private_key=private)
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    status = verify_model(model_file, public_key=public)
    assert not status.ok
    assert "changed after signing" in status.reason


def test_directory_changes_are_named(keys: tuple[Path, Path], model_dir: Path) -> None:
    private, public = keys
    sign_model(model_dir, private_key=private)
    (model_dir / "config.json").write_text(json.dumps({"hidden": 5}))
    (model_dir / "modeling_evil.py").write_text("import os\n")
    (model_dir / "tokenizer" / "vocab.txt").unlink()
    status = verify_model(model_dir, public_key=public)
    assert not status.ok
    assert "added modeling_evil.py" in status.reason
    assert "removed tokenizer/vocab.txt" in status.reason
    assert "changed config.json" in status.reason


def test_wrong_key_fails(keys: tuple[Path, Path], other_keys: tuple[Path, Path], model_file: Path) -> None:
    sign_model(model_file, private_key=keys[0])
    status = verify_model(model_file, public_key=other_keys[1])
    assert not status.ok
    assert "different key" in status.reason


def test_missing_and_garbage_signatures_fail_without_raising(
    keys: tuple[Path, Path], model_file: Path
) -> None:
    _, public = keys
    status = verify_model(model_file, public_key=public)
    assert not status.ok and "no signature file" in status.reason
    garbage = model_file.with_name("garbage.sig")
    garbage.write_bytes(b"\x00\xffnot a bundle")
    status = verify_model(model_file, public_key=public, signature=garbage)
    assert not status.ok and status.signature == garbage and "invalid signature" in status.reason


def test_explicit_signature_path(keys: tuple[Path, Path], model_file: Path, tmp_path: Path) -> None:
    private, public = keys
    target = tmp_path / "sigs" / "m.sig"
    assert sign_model(model_file, private_key=private, signature=target) == target
    assert verify_model(model_file, public_key=public, signature=target).ok
    assert not verify_model(model_file, public_key=public).ok  # not at the default path


def test_input_errors(keys: tuple[Path, Path], model_file: Path, tmp_path: Path) -> None:
    private, public = keys
    with pytest.raises(InputError, match="model not found"):
        sign_model(tmp_path / "absent.bin", private_key=private)
    with pytest.raises(InputError, match="model not found"):
        verify_model(tmp_path / "absent.bin", public_key=public)
    with pytest.raises(InputError, match="cannot read the public key"):
        verify_model(model_file, public_key=tmp_path / "absent.pub")
    with pytest.raises(InputError, match="PEM private key"):
        sign_model(model_file, private_key=public)  # a public key is not a private key
    not_pem = tmp_path / "junk.pub"
    not_pem.write_text("hello")
    with pytest.raises(InputError, match="PEM public key"):
        verify_model(model_file, public_key=not_pem)
