"""Keyed pseudonyms: HMAC-SHA256 of an entity's normalised value under a sub-key derived from a Garrison key.

The same key gives the same pseudonym for the same value in every file and run, so joins on a pseudonymised column
still work; without the key a pseudonym cannot be recomputed from a guessed value (unlike an unkeyed hash, which
anyone can brute-force over all phone numbers). The sub-key is ``HKDF-SHA256(key, info="garrison-pseudonym-v1")``,
so the key-encryption key is never used raw for a second purpose; a passphrase is first stretched by its KDF with
a fixed, published salt (a per-run random salt would break consistency across runs).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from garrison.protect.keys import KeyEncryptionKey

__all__ = ["PSEUDONYM_INFO", "Pseudonymizer", "normalise"]

PSEUDONYM_INFO = b"garrison-pseudonym-v1"
_PASSPHRASE_SALT = hashlib.sha256(b"garrison-pseudonym-v1 passphrase salt").digest()[:16]


def normalise(entity: str, value: str) -> str:
    """The canonical form that is hashed, so formatting does not split one person into two pseudonyms:
    e-mails lower-cased, numbers (cards, phones, SSNs, BSNs, NIRs) reduced to their digits, ids upper-cased
    without spaces, other text with its whitespace collapsed."""
    v = value.strip()
    if entity == "EMAIL":
        return v.lower()
    if entity in ("CREDIT_CARD", "US_SSN", "NL_BSN"):
        return re.sub(r"\D", "", v)
    if entity == "PHONE":
        plus = "+" if v.startswith(("+", "00")) else ""
        digits = re.sub(r"\D", "", v[2:] if v.startswith("00") else v)
        return plus + digits
    if entity in ("IBAN", "UK_NINO", "FR_NIR", "ES_DNI", "IT_FISCAL_CODE"):
        return re.sub(r"[\s.-]", "", v).upper()
    return " ".join(v.split())


class Pseudonymizer:
    """Maps ``(entity, value)`` to ``ENTITY_<hex>`` (``hex_chars`` of the HMAC, default 16: 64 bits, so a
    collision is expected only after about 4 billion distinct values). With ``keep_email_domain`` an e-mail keeps
    its domain (``<hex>@example.com``), which keeps per-domain statistics and leaks only the domain."""

    def __init__(
        self, key: KeyEncryptionKey, *, hex_chars: int = 16, keep_email_domain: bool = False
    ) -> None:
        if not 8 <= hex_chars <= 64:
            raise ValueError(f"`hex_chars` must be in [8, 64], got {hex_chars}")
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        kdf = key.kdf
        ikm = key._slot_kek(kdf, _PASSPHRASE_SALT)
        assert ikm is not None
        self._subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PSEUDONYM_INFO).derive(ikm)
        self.hex_chars = hex_chars
        self.keep_email_domain = keep_email_domain
        self.source = key.source
        self._cache: dict[tuple[str, str], str] = {}

    def digest(self, entity: str, value: str) -> str:
        """The hex HMAC of the normalised value, bound to the entity type (truncated to ``hex_chars``)."""
        msg = entity.encode() + b"\x00" + normalise(entity, value).encode("utf-8", "surrogatepass")
        return hmac.new(self._subkey, msg, hashlib.sha256).hexdigest()[: self.hex_chars]

    def __call__(self, entity: str, value: str) -> str:
        cached = self._cache.get((entity, value))
        if cached is not None:
            return cached
        if entity == "EMAIL" and self.keep_email_domain and "@" in value:
            out = f"{self.digest(entity, value)}@{value.rpartition('@')[2].lower()}"
        else:
            out = f"{entity}_{self.digest(entity, value)}"
        if len(self._cache) < 1_000_000:
            self._cache[(entity, value)] = out
        return out

    def many(self, entity: str, values: Iterable[str]) -> list[str]:
        """Pseudonyms of ``values``; each distinct value is hashed once."""
        return [self(entity, v) for v in values]

    def __repr__(self) -> str:
        return f"Pseudonymizer(<{self.source}>)"

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("a Pseudonymizer cannot be pickled")
