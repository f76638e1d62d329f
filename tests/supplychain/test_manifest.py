from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import DataError, InputError
from garrison.supplychain.manifest import (
    MANIFEST_FILE_NAME,
    FileEntry,
    Manifest,
    SignatureState,
    manifest_signature_path,
    parse_manifest,
    verify_manifest,
    write_manifest,
)
from garrison.supplychain.signing import generate_keypair


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_keypair(folder / "signer.pem", folder / "signer.pub")
    return folder / "signer.pem", folder / "signer.pub"


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("other")
    generate_keypair(folder / "k.pem", folder / "k.pub")
    return folder / "k.pem", folder / "k.pub"


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "digits"
    (folder / "images" / "nested").mkdir(parents=True)
    (folder / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    (folder / "test.csv").write_text("a,b,label\n5,6,1\n")
    (folder / "images" / "0001.bin").write_bytes(os.urandom(3000))
    (folder / "images" / "nested" / "0002.bin").write_bytes(b"")
    (folder / ".hidden").write_text("also covered")
    return folder


def test_signed_round_trip_lists_every_file_sorted_and_verifies(
    dataset: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    written = write_manifest(dataset, private_key=private)
    assert written == dataset / MANIFEST_FILE_NAME
    assert manifest_signature_path(written).is_file()
    doc = json.loads(written.read_text())
    assert doc["schema_version"] == 1 and doc["hash_algorithm"] == "sha256" and doc["root"] == "digits"
    paths = [f["path"] for f in doc["files"]]
    assert (
        paths
        == sorted(paths)
        == [".hidden", "images/0001.bin", "images/nested/0002.bin", "test.csv", "train.csv"]
    )
    empty = next(f for f in doc["files"] if f["path"] == "images/nested/0002.bin")
    assert empty == {"path": "images/nested/0002.bin", "size": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb924" "27ae41e4649b934ca495991b7852b855"}  # fmt: skip

    diff = verify_manifest(dataset, public_key=public)
    assert diff.ok and diff.intact
    assert diff.signature_status is SignatureState.VERIFIED
    assert (diff.changed, diff.appeared, diff.vanished, diff.unsafe) == ((), (), (), ())
    assert set(diff.expected) == set(paths)


def test_manifest_text_is_deterministic_apart_from_the_time(dataset: Path, tmp_path: Path) -> None:
    first = json.loads(write_manifest(dataset, output=tmp_path / "one.json").read_text())
    second = json.loads(write_manifest(dataset, output=tmp_path / "two.json").read_text())
    first.pop("created"), second.pop("created")
    assert first == second


def test_each_kind_of_change_is_reported(dataset: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    write_manifest(dataset, private_key=private)
    blob = bytearray((dataset / "images" / "0001.bin").read_bytes())
    blob[1234] ^= 0x01  # one bit of one byte
    (dataset / "images" / "0001.bin").write_bytes(bytes(blob))
    (dataset / "images" / "0003.bin").write_bytes(b"new")
    (dataset / "test.csv").unlink()
    (dataset / "train.csv").rename(dataset / "train-renamed.csv")

    diff = verify_manifest(dataset, public_key=public)
    assert diff.changed == ("images/0001.bin",)
    assert diff.appeared == ("images/0003.bin", "train-renamed.csv")
    assert diff.vanished == ("test.csv", "train.csv")
    assert diff.signature_status is SignatureState.VERIFIED  # the manifest itself is intact
    assert not diff.intact and not diff.ok
    assert diff.expected["images/0001.bin"].sha256 != diff.actual["images/0001.bin"].sha256


def test_same_size_edit_is_caught_by_the_digest(dataset: Path) -> None:
    write_manifest(dataset)
    (dataset / "test.csv").write_text("a,b,label\n5,6,0\n")  # same length, other label
    assert verify_manifest(dataset).changed == ("test.csv",)


def test_edited_manifest_fails_its_signature(dataset: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    written = write_manifest(dataset, private_key=private)
    (dataset / "train.csv").write_text(
        "a,b,label\n1,2,1\n3,4,1\n"
    )  # poison, then cover it up in the manifest
    doc = json.loads(written.read_text())
    doc["files"] = [f for f in doc["files"] if f["path"] != "train.csv"]
    written.write_text(json.dumps(doc))

    diff = verify_manifest(dataset, public_key=public)
    assert diff.signature_status is SignatureState.INVALID
    assert diff.signature_reason == "the manifest was edited after signing"
    assert not diff.ok


def test_wrong_public_key_and_missing_signature(
    dataset: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    write_manifest(dataset, private_key=keys[0])
    wrong = verify_manifest(dataset, public_key=other_keys[1])
    assert wrong.signature_status is SignatureState.INVALID and not wrong.ok
    assert "different key" in wrong.signature_reason

    write_manifest(dataset)  # unsigned: the stale signature is removed with it
    assert not manifest_signature_path(dataset / MANIFEST_FILE_NAME).exists()
    missing = verify_manifest(dataset, public_key=keys[1])
    assert missing.signature_status is SignatureState.MISSING and missing.intact and not missing.ok


def test_unsigned_manifest_is_checked_for_integrity_only(dataset: Path) -> None:
    write_manifest(dataset)
    diff = verify_manifest(dataset)
    assert diff.signature_status is SignatureState.UNCHECKED
    assert "integrity only" in diff.signature_reason
    assert diff.ok
    (dataset / "train.csv").write_text("changed")
    assert verify_manifest(dataset).changed == ("train.csv",)


def test_manifest_outside_the_directory(dataset: Path, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    elsewhere = tmp_path / "manifests" / "digits.json"
    write_manifest(dataset, private_key=keys[0], output=elsewhere)
    assert not (dataset / MANIFEST_FILE_NAME).exists()
    diff = verify_manifest(dataset, public_key=keys[1], manifest=elsewhere)
    assert diff.ok and diff.signature_status is SignatureState.VERIFIED
    # a manifest written inside the directory under another name is left out of the hashing too
    inside = dataset / "MANIFEST.json"
    write_manifest(dataset, private_key=keys[0], output=inside)
    assert "MANIFEST.json" not in json.loads(inside.read_text())["files"]
    assert verify_manifest(dataset, public_key=keys[1], manifest=inside).ok


def test_symlink_out_of_the_directory_is_refused_and_reported(dataset: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("not part of the dataset")
    (dataset / "leak.txt").symlink_to(secret)
    with pytest.raises(InputError, match=r"leak\.txt \(a link to a file outside the dataset\)"):
        write_manifest(dataset)
    assert not (dataset / MANIFEST_FILE_NAME).exists()

    (dataset / "leak.txt").unlink()
    write_manifest(dataset)
    (dataset / "leak.txt").symlink_to(secret)
    (dataset / "images" / "outdir").symlink_to(tmp_path, target_is_directory=True)
    diff = verify_manifest(dataset)
    assert [(u.path, u.reason) for u in diff.unsafe] == [
        ("images/outdir", "a link to a directory outside the dataset"),
        ("leak.txt", "a link to a file outside the dataset"),
    ]
    assert diff.appeared == () and not diff.ok


def test_link_inside_the_directory_is_hashed_under_its_own_path(dataset: Path) -> None:
    (dataset / "alias.csv").symlink_to("train.csv")
    write_manifest(dataset)
    diff = verify_manifest(dataset)
    assert diff.ok
    assert diff.actual["alias.csv"].sha256 == diff.actual["train.csv"].sha256
    (dataset / "train.csv").write_text("changed")
    assert verify_manifest(dataset).changed == ("alias.csv", "train.csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_unsafe_and_never_blocks(dataset: Path) -> None:
    write_manifest(dataset)
    os.mkfifo(dataset / "pipe")
    diff = verify_manifest(dataset)
    assert [(u.path, u.reason) for u in diff.unsafe] == [("pipe", "not a regular file")]


def test_bad_input_is_an_input_error(dataset: Path, tmp_path: Path, keys: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="directory not found"):
        write_manifest(tmp_path / "nope")
    with pytest.raises(InputError, match="not a directory"):
        write_manifest(dataset / "train.csv")
    with pytest.raises(InputError, match="no dataset manifest"):
        verify_manifest(dataset)
    write_manifest(dataset)
    with pytest.raises(InputError, match="public key"):
        verify_manifest(dataset, public_key=keys[0])  # a private key where the public one belongs
    with pytest.raises(InputError, match="private key"):
        write_manifest(dataset, private_key=keys[1])
    (dataset / MANIFEST_FILE_NAME).write_text("{not json")
    with pytest.raises(DataError, match="not UTF-8 JSON"):
        verify_manifest(dataset)


def _valid_doc() -> dict[str, object]:
    return json.loads(
        Manifest("root", "2026-01-01T00:00:00+00:00", (FileEntry("a/b.csv", 3, "0" * 64),)).to_json()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"schema_version": True}, "schema_version"),
        ({"hash_algorithm": "md5"}, "hash_algorithm"),
        ({"kind": "other"}, "kind"),
        ({"files": {}}, "files"),
        ({"files": [{"path": "../etc/passwd", "size": 1, "sha256": "0" * 64}]}, "relative POSIX path"),
        ({"files": [{"path": "/abs", "size": 1, "sha256": "0" * 64}]}, "relative POSIX path"),
        ({"files": [{"path": "a//b", "size": 1, "sha256": "0" * 64}]}, "relative POSIX path"),
        ({"files": [{"path": "a", "size": -1, "sha256": "0" * 64}]}, "size"),
        ({"files": [{"path": "a", "size": 1.0, "sha256": "0" * 64}]}, "size"),
        ({"files": [{"path": "a", "size": 1, "sha256": "A" * 64}]}, "sha256"),
        ({"files": [{"path": "a", "size": 1, "sha256": "0" * 64}] * 2}, "listed twice"),
    ],
)
def test_parser_names_what_is_wrong(change: dict[str, object], message: str) -> None:
    doc = _valid_doc() | change
    with pytest.raises(DataError, match=message):
        parse_manifest(json.dumps(doc).encode(), source="m.json")


def test_parser_reads_what_the_writer_writes() -> None:
    manifest = Manifest("r", "t", (FileEntry("a", 0, "1" * 64), FileEntry("b/c d.csv", 7, "f" * 64)))
    assert parse_manifest(manifest.to_json().encode()) == manifest


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_parser_on_arbitrary_bytes_raises_only_data_errors(data: bytes) -> None:
    with contextlib.suppress(DataError):  # DataError is a GarrisonError; anything else fails the test
        parse_manifest(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "schema_version": _json | st.just(1),
            "kind": _json | st.just("garrison-dataset-manifest"),
            "hash_algorithm": _json | st.just("sha256"),
            "root": _json,
            "created": _json,
            "files": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "path": _json | st.text(max_size=30),
                        "size": _json | st.integers(),
                        "sha256": _json | st.text("0123456789abcdef", min_size=64, max_size=64),
                    },
                )
                | _json,
                max_size=5,
            ),
        },
    )
)
def test_parser_on_json_shaped_input_accepts_or_raises_data_error(doc: dict[str, object]) -> None:
    try:
        text = json.dumps(doc)
    except ValueError:
        return
    try:
        manifest = parse_manifest(text.encode())
    except DataError:
        return
    assert all(f.size >= 0 and len(f.sha256) == 64 for f in manifest.files)


def test_deeply_nested_json_is_a_data_error() -> None:
    with pytest.raises(DataError):
        parse_manifest(b"[" * 100_000 + b"]" * 100_000)
