from __future__ import annotations

import contextlib
import io
import os
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.core.errors import GarrisonError, InputError, IntegrityError, WrongKeyError
from garrison.protect import (
    HEADER_SIZE,
    KEY_PREFIX,
    Argon2idParams,
    Header,
    KeyEncryptionKey,
    ScryptParams,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    encrypt_stream,
    generate_key,
    rotate_key,
    write_key_file,
)

CHUNK = 64
TAG = 16
FAST_SCRYPT = ScryptParams(n=2**4, r=8, p=1)
FAST_ARGON = Argon2idParams(iterations=1, lanes=1, memory_kib=8)


@pytest.fixture
def key() -> KeyEncryptionKey:
    return KeyEncryptionKey.from_text(generate_key())


def _encrypt(data: bytes, key: KeyEncryptionKey, chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key, chunk_size=chunk_size)
    return out.getvalue()


def _decrypt(blob: bytes, key: KeyEncryptionKey) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key)
    return out.getvalue()


def _chunks(blob: bytes, chunk_size: int = CHUNK) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    step = chunk_size + TAG
    return [body[i : i + step] for i in range(0, len(body), step)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_files(tmp_path: Path, key: KeyEncryptionKey, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "p").write_bytes(data)
    assert encrypt_file(tmp_path / "p", tmp_path / "c", key, chunk_size=CHUNK) == size
    blob = (tmp_path / "c").read_bytes()
    n_chunks = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER_SIZE + size + TAG * n_chunks
    assert data not in blob or size < 8
    assert decrypt_file(tmp_path / "c", tmp_path / "o", key) == size
    assert (tmp_path / "o").read_bytes() == data
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "o", "p"]


def test_round_trip_larger_than_the_sync_window(tmp_path: Path, key: KeyEncryptionKey) -> None:
    data = os.urandom(40 * 1024 * 1024 + 3)  # the background fdatasync runs twice
    (tmp_path / "p").write_bytes(data)
    seen: list[int] = []
    encrypt_file(tmp_path / "p", tmp_path / "c", key, progress=seen.append)
    assert sum(seen) == len(data)
    decrypt_file(tmp_path / "c", tmp_path / "o", key)
    assert (tmp_path / "o").read_bytes() == data


def test_non_durable_round_trip(tmp_path: Path, key: KeyEncryptionKey) -> None:
    (tmp_path / "p").write_bytes(b"abc" * 100)
    encrypt_file(tmp_path / "p", tmp_path / "c", key, chunk_size=CHUNK, durable=False)
    decrypt_file(tmp_path / "c", tmp_path / "o", key, durable=False)
    assert (tmp_path / "o").read_bytes() == b"abc" * 100


def test_encryption_is_randomised(key: KeyEncryptionKey) -> None:
    assert _encrypt(b"same", key) != _encrypt(b"same", key)


def test_default_chunk_size_round_trip(key: KeyEncryptionKey) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key)
    assert _decrypt(out.getvalue(), key) == data


def _boundaries(blob: bytes) -> list[int]:
    step = CHUNK + TAG
    cuts = set(range(HEADER_SIZE, len(blob), step))  # every chunk boundary
    cuts |= {c + step // 2 for c in cuts if c + step // 2 < len(blob)}  # and mid-chunk
    cuts |= {len(blob) - 1, HEADER_SIZE + 1}
    return sorted(cuts)


def test_truncation_anywhere_is_refused(key: KeyEncryptionKey) -> None:
    blob = _encrypt(os.urandom(4 * CHUNK + 10), key)
    for cut in _boundaries(blob):
        with pytest.raises(IntegrityError):
            _decrypt(blob[:cut], key)


def test_truncation_when_size_is_multiple_of_chunk(key: KeyEncryptionKey) -> None:
    blob = _encrypt(os.urandom(3 * CHUNK), key)
    assert len(_chunks(blob)) == 3  # no empty trailing chunk: the last full chunk carries the flag
    for cut in (HEADER_SIZE, HEADER_SIZE + CHUNK + TAG, HEADER_SIZE + 2 * (CHUNK + TAG)):
        with pytest.raises(IntegrityError, match=r"truncated|failed authentication"):
            _decrypt(blob[:cut], key)


def test_dropped_duplicated_reordered_chunks_are_refused(key: KeyEncryptionKey) -> None:
    blob = _encrypt(os.urandom(4 * CHUNK + 10), key)
    head, chunks = blob[:HEADER_SIZE], _chunks(blob)
    assert len(chunks) == 5
    variants = {
        "drop middle": chunks[:2] + chunks[3:],
        "drop first": chunks[1:],
        "duplicate": chunks[:2] + chunks[1:],
        "swap": [chunks[1], chunks[0], *chunks[2:]],
        "swap full chunks at end": [*chunks[:2], chunks[3], chunks[2], chunks[4]],
    }
    for name, parts in variants.items():
        with pytest.raises(IntegrityError, match="failed authentication"):
            _decrypt(head + b"".join(parts), key)
        assert name


def test_chunks_of_another_file_are_refused(key: KeyEncryptionKey) -> None:
    a, b = _encrypt(os.urandom(2 * CHUNK), key), _encrypt(os.urandom(2 * CHUNK), key)
    with pytest.raises(IntegrityError):
        _decrypt(a[:HEADER_SIZE] + b[HEADER_SIZE:], key)


@pytest.mark.parametrize("extra", [b"\x00", os.urandom(TAG), os.urandom(CHUNK + TAG)])
def test_appended_bytes_are_refused(key: KeyEncryptionKey, extra: bytes) -> None:
    for size in (0, CHUNK, 2 * CHUNK + 3):
        with pytest.raises(IntegrityError):
            _decrypt(_encrypt(os.urandom(size), key) + extra, key)


def test_every_header_byte_flip_is_refused(tmp_path: Path, key: KeyEncryptionKey) -> None:
    blob = _encrypt(os.urandom(2 * CHUNK + 3), key)
    for i in range(HEADER_SIZE):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= bit
            (tmp_path / "c").write_bytes(bad)
            with pytest.raises((IntegrityError, InputError)) as info:
                decrypt_file(tmp_path / "c", tmp_path / "o", key)
            if i >= 9:  # past magic and version: the checksum names it corrupt
                assert isinstance(info.value, IntegrityError), i
            assert not (tmp_path / "o").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_header_flip_with_recomputed_checksum_is_still_refused(key: KeyEncryptionKey) -> None:
    import hashlib

    blob = _encrypt(os.urandom(2 * CHUNK), key)
    for i in range(9, HEADER_SIZE - 8):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        bad[HEADER_SIZE - 8 : HEADER_SIZE] = hashlib.sha256(bad[: HEADER_SIZE - 8]).digest()[:8]
        with pytest.raises(GarrisonError):
            _decrypt(bytes(bad), key)


def test_every_body_bit_flip_is_refused(key: KeyEncryptionKey) -> None:
    blob = _encrypt(os.urandom(CHUNK + 5), key)
    for i in range(HEADER_SIZE, len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(IntegrityError, match="failed authentication"):
            _decrypt(bytes(bad), key)


def test_wrong_key_is_an_input_error_before_any_output(tmp_path: Path, key: KeyEncryptionKey) -> None:
    (tmp_path / "p").write_bytes(b"secret data")
    encrypt_file(tmp_path / "p", tmp_path / "c", key)
    other = KeyEncryptionKey.from_text(generate_key())
    with pytest.raises(WrongKeyError, match="does not open this file"):
        decrypt_file(tmp_path / "c", tmp_path / "o", other)
    with pytest.raises(WrongKeyError, match="protected by a key"):
        decrypt_file(tmp_path / "c", tmp_path / "o", KeyEncryptionKey.from_passphrase("x", kdf=FAST_SCRYPT))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "p"]


@pytest.mark.parametrize("kdf", [FAST_SCRYPT, FAST_ARGON], ids=["scrypt", "argon2id"])
def test_passphrase_round_trip_and_wrong_passphrase(kdf: ScryptParams | Argon2idParams) -> None:
    key = KeyEncryptionKey.from_passphrase("correct horse battery staple", kdf=kdf)
    blob = _encrypt(b"payload" * 30, key)
    header = Header.parse(blob[:HEADER_SIZE])
    assert header.kdf == kdf
    assert header.salt != bytes(16)
    # decryption takes the parameters from the header, not from the key object
    assert _decrypt(blob, KeyEncryptionKey.from_passphrase("correct horse battery staple")) == b"payload" * 30
    with pytest.raises(WrongKeyError, match="does not open"):
        _decrypt(blob, KeyEncryptionKey.from_passphrase("wrong horse", kdf=kdf))
    with pytest.raises(WrongKeyError, match="protected by a passphrase"):
        _decrypt(blob, KeyEncryptionKey.from_text(generate_key()))


def test_default_kdf_is_strong() -> None:
    assert ScryptParams() == ScryptParams(n=2**17, r=8, p=1)
    assert KeyEncryptionKey.from_passphrase("x").kdf == ScryptParams()
    with pytest.raises(ValueError, match="power of two"):
        ScryptParams(n=1000)


def test_rotation_rewraps_without_touching_the_body(tmp_path: Path, key: KeyEncryptionKey) -> None:
    data = os.urandom(3 * CHUNK + 1)
    (tmp_path / "p").write_bytes(data)
    encrypt_file(tmp_path / "p", tmp_path / "c", key, chunk_size=CHUNK)
    before = (tmp_path / "c").read_bytes()
    new = KeyEncryptionKey.from_passphrase("new passphrase", kdf=FAST_SCRYPT)
    rotate_key(tmp_path / "c", key, new)
    after = (tmp_path / "c").read_bytes()
    assert after[HEADER_SIZE:] == before[HEADER_SIZE:]
    assert after[:20] == before[:20]  # the chunk-bound part is unchanged
    assert after[:HEADER_SIZE] != before[:HEADER_SIZE]
    with pytest.raises(WrongKeyError):
        decrypt_file(tmp_path / "c", tmp_path / "o", key)
    decrypt_file(tmp_path / "c", tmp_path / "o", new)
    assert (tmp_path / "o").read_bytes() == data
    newest = KeyEncryptionKey.from_text(generate_key())
    rotate_key(tmp_path / "c", new, newest)
    assert _decrypt((tmp_path / "c").read_bytes(), newest) == data
    with pytest.raises(WrongKeyError):
        rotate_key(tmp_path / "c", key, newest)


def test_decrypt_failure_leaves_no_output_and_keeps_existing(tmp_path: Path, key: KeyEncryptionKey) -> None:
    (tmp_path / "p").write_bytes(os.urandom(5 * CHUNK))
    encrypt_file(tmp_path / "p", tmp_path / "c", key, chunk_size=CHUNK)
    blob = bytearray((tmp_path / "c").read_bytes())
    blob[-1] ^= 1  # the last chunk fails after four good chunks were written to the temporary file
    (tmp_path / "c").write_bytes(blob)
    with pytest.raises(IntegrityError, match="chunk 4"):
        decrypt_file(tmp_path / "c", tmp_path / "o", key)
    assert not (tmp_path / "o").exists()
    (tmp_path / "o").write_bytes(b"previous")
    with pytest.raises(IntegrityError):
        decrypt_file(tmp_path / "c", tmp_path / "o", key)
    assert (tmp_path / "o").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "o", "p"]


def test_not_an_encrypted_file(tmp_path: Path, key: KeyEncryptionKey) -> None:
    (tmp_path / "x").write_bytes(b"PK\x03\x04 a zip, not ours" * 10)
    with pytest.raises(InputError, match="not a Garrison encrypted file"):
        decrypt_file(tmp_path / "x", tmp_path / "o", key)
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        decrypt_file(tmp_path / "e", tmp_path / "o", key)
    blob = bytearray(_encrypt(b"x", key))
    blob[8] = 9
    with pytest.raises(InputError, match="version 9"):
        _decrypt(bytes(blob), key)
    with pytest.raises(InputError, match="same file"):
        decrypt_file(tmp_path / "x", tmp_path / "x", key)


def test_key_text_and_key_file(tmp_path: Path) -> None:
    text = generate_key()
    assert text.startswith(KEY_PREFIX)
    assert len(text) == len(KEY_PREFIX) + 43
    path = write_key_file(tmp_path / "k.key")
    assert path.stat().st_mode & 0o777 == 0o600
    content = path.read_text()
    with pytest.raises(InputError, match="already exists"):
        write_key_file(path)
    assert path.read_text() == content
    write_key_file(path, force=True)
    assert path.read_text() != content
    assert path.stat().st_mode & 0o777 == 0o600
    key = KeyEncryptionKey.from_file(path)
    assert _decrypt(_encrypt(b"abc", key), KeyEncryptionKey.from_file(path)) == b"abc"


def test_bad_key_text_never_echoes_it(tmp_path: Path) -> None:
    good = generate_key()
    for bad in ("not-a-key", good[:-5], good + "AAAA", KEY_PREFIX + "!!!!", good.replace(KEY_PREFIX, "")):
        with pytest.raises(InputError) as info:
            KeyEncryptionKey.from_text(bad)
        assert bad not in str(info.value)
        assert good[len(KEY_PREFIX) :][:10] not in str(info.value)


def test_env_key(key: KeyEncryptionKey) -> None:
    text = generate_key()
    env = {"MY_KEK": text}
    k = KeyEncryptionKey.from_env("MY_KEK", environ=env)
    assert _decrypt(_encrypt(b"abc", k), KeyEncryptionKey.from_text(text)) == b"abc"
    with pytest.raises(InputError, match="MISSING is not set"):
        KeyEncryptionKey.from_env("MISSING", environ=env)
    with pytest.raises(InputError, match="PW is not set"):
        KeyEncryptionKey.passphrase_from_env("PW", environ={"PW": ""})


def test_key_objects_hide_material() -> None:
    text = generate_key()
    key = KeyEncryptionKey.from_text(text, source="key file k")
    assert text[len(KEY_PREFIX) :] not in repr(key)
    assert "k" in repr(key)
    pw = KeyEncryptionKey.from_passphrase("hunter2-secret")
    assert "hunter2" not in repr(pw)
    with pytest.raises(TypeError):
        pickle.dumps(pw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=HEADER_SIZE + 8))
def test_header_parser_takes_arbitrary_bytes(raw: bytes) -> None:
    with contextlib.suppress(IntegrityError, InputError):
        Header.parse(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=9, max_size=HEADER_SIZE))
def test_header_parser_takes_arbitrary_bytes_after_magic(tail: bytes) -> None:
    import hashlib

    raw = bytearray(b"GRSN-ENC\x01" + tail)[:HEADER_SIZE]
    raw = raw + bytes(HEADER_SIZE - len(raw))
    raw[-8:] = hashlib.sha256(raw[:-8]).digest()[:8]  # a valid checksum over random fields
    try:
        header = Header.parse(bytes(raw))
    except (IntegrityError, InputError):
        return
    assert header.to_bytes() == bytes(raw)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=700), st.integers(1, 200))
def test_round_trip_property(data: bytes, chunk_size: int) -> None:
    key = KeyEncryptionKey(key=bytes(32))
    blob = _encrypt(data, key, chunk_size)
    assert len(blob) == HEADER_SIZE + len(data) + TAG * max(1, -(-len(data) // chunk_size))
    assert _decrypt(blob, key) == data


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(1, 50), st.data())
def test_any_truncation_or_extension_is_refused(data: bytes, chunk_size: int, draw: st.DataObject) -> None:
    key = KeyEncryptionKey(key=bytes(32))
    blob = _encrypt(data, key, chunk_size)
    cut = draw.draw(st.integers(0, len(blob) - 1))
    with pytest.raises((IntegrityError, InputError)):
        _decrypt(blob[:cut], key)
    extra = draw.draw(st.binary(min_size=1, max_size=80))
    with pytest.raises(IntegrityError):
        _decrypt(blob + extra, key)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64))
def test_random_body_after_a_valid_header_is_refused(body: bytes, chunk_size: int) -> None:
    key = KeyEncryptionKey(key=bytes(32))
    head = _encrypt(b"", key, chunk_size)[:HEADER_SIZE]
    with pytest.raises(IntegrityError):
        _decrypt(head + body, key)
