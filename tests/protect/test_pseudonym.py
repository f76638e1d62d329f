from __future__ import annotations

import pickle

import pytest

from garrison.protect import KeyEncryptionKey, Pseudonymizer, ScryptParams, generate_key
from garrison.protect.pseudonym import normalise


@pytest.fixture(scope="module")
def key_text() -> str:
    return generate_key()


def test_consistent_across_instances_and_formats(key_text: str) -> None:
    a = Pseudonymizer(KeyEncryptionKey.from_text(key_text))
    b = Pseudonymizer(KeyEncryptionKey.from_text(key_text))
    assert a("EMAIL", "Jane.Doe@Example.com") == b("EMAIL", "jane.doe@example.com")
    assert a("PHONE", "+44 20 7946 0958") == b("PHONE", "+44-20-7946-0958") == a("PHONE", "0044 20 7946 0958")
    assert a("CREDIT_CARD", "4111 1111 1111 1111") == a("CREDIT_CARD", "4111111111111111")
    p = a("EMAIL", "x@y.org")
    assert p.startswith("EMAIL_") and len(p) == len("EMAIL_") + 16


def test_key_and_entity_dependent(key_text: str) -> None:
    a = Pseudonymizer(KeyEncryptionKey.from_text(key_text))
    other = Pseudonymizer(KeyEncryptionKey.from_text(generate_key()))
    assert a("EMAIL", "x@y.org") != other("EMAIL", "x@y.org")
    assert a.digest("PERSON", "Ann") != a.digest("EMAIL", "Ann")
    assert a("EMAIL", "x@y.org") != a("EMAIL", "z@y.org")


def test_not_the_raw_key_or_unkeyed_hash(key_text: str) -> None:
    import hashlib
    import hmac

    from garrison.protect.keys import _parse_key_text

    raw = _parse_key_text(key_text, source="t")
    a = Pseudonymizer(KeyEncryptionKey.from_text(key_text), hex_chars=64)
    direct = hmac.new(raw, b"EMAIL\x00x@y.org", hashlib.sha256).hexdigest()
    assert a.digest("EMAIL", "x@y.org") != direct  # a derived sub-key, not the KEK itself
    assert a.digest("EMAIL", "x@y.org") != hashlib.sha256(b"x@y.org").hexdigest()


def test_passphrase_is_deterministic() -> None:
    kdf = ScryptParams(n=2**10)
    a = Pseudonymizer(KeyEncryptionKey.from_passphrase("correct horse", kdf=kdf))
    b = Pseudonymizer(KeyEncryptionKey.from_passphrase("correct horse", kdf=kdf))
    c = Pseudonymizer(KeyEncryptionKey.from_passphrase("wrong horse", kdf=kdf))
    assert a("PERSON", "Ann") == b("PERSON", "Ann") != c("PERSON", "Ann")


def test_keep_email_domain_and_secrecy(key_text: str) -> None:
    a = Pseudonymizer(KeyEncryptionKey.from_text(key_text), keep_email_domain=True, hex_chars=12)
    out = a("EMAIL", "Jane@Example.COM")
    assert out.endswith("@example.com") and len(out.split("@")[0]) == 12
    assert key_text[16:] not in repr(a)
    with pytest.raises(TypeError):
        pickle.dumps(a)
    with pytest.raises(ValueError, match="hex_chars"):
        Pseudonymizer(KeyEncryptionKey.from_text(key_text), hex_chars=4)


def test_normalise() -> None:
    assert normalise("IBAN", "gb82 west 1234") == "GB82WEST1234"
    assert normalise("PERSON", "  Ann   Lee ") == "Ann Lee"
