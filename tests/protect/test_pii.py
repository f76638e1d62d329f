from __future__ import annotations

import pandas as pd
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.protect import ENTITIES, classify_column, detect_spans, find_spans, iban_valid, luhn_valid
from garrison.protect.pii import FREE_TEXT

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "it_IT")


def _ref_luhn(s: str) -> bool:
    ds = [int(c) for c in s if c in "0123456789"]
    if not 12 <= len(ds) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(ds)):
        total += sum(divmod(d * 2, 10)) if i % 2 else d
    return total % 10 == 0


def _ref_iban_mod97(s: str) -> int:
    s = s.replace(" ", "").upper()
    moved = s[4:] + s[:4]
    rem = 0
    for c in moved:
        for d in str(int(c, 36)):
            rem = (rem * 10 + int(d)) % 97
    return rem


def _one(text: str) -> list[tuple[str, str]]:
    return [(s.entity, text[s.start : s.end]) for s in find_spans(text)]


@pytest.mark.parametrize(
    ("value", "entity"),
    [
        ("jane.doe+x@example.co.uk", "EMAIL"),
        ("4111 1111 1111 1111", "CREDIT_CARD"),
        ("GB82 WEST 1234 5698 7654 32", "IBAN"),
        ("DE89370400440532013000", "IBAN"),
        ("192.168.10.1", "IP_ADDRESS"),
        ("2001:db8::ff00:42:8329", "IP_ADDRESS"),
        ("123-45-6789", "US_SSN"),
        ("AB 12 34 56 C", "UK_NINO"),
        ("50333153E", "ES_DNI"),
        ("Z4893294A", "ES_DNI"),
        ("BCCFRC15M25E852P", "IT_FISCAL_CODE"),
        ("+44(0)1632 960123", "PHONE"),
        ("(710)827-3464x686", "PHONE"),
        ("06 27 63 17 06", "PHONE"),
    ],
)
def test_valid_values_are_detected(value: str, entity: str) -> None:
    assert _one(f"see {value} here") == [(entity, value)]


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "GB83 WEST 1234 5698 7654 32",  # mod 97 fails
        "DE89370400440532013001",
        "999.168.10.1",  # not an IPv4 address
        "666-45-6789",  # SSN area 666
        "000-45-6789",
        "123-00-6789",
        "ZZ 12 34 56 C",  # NINO prefix ZZ
        "AB 12 34 56 E",  # NINO suffix
        "50333153F",  # DNI letter
        "BCCFRC15M25E852Q",  # codice fiscale check letter
    ],
)
def test_invalid_checksums_are_not_detected(value: str) -> None:
    assert all(e != "PHONE" or len(v) < len(value) for e, v in _one(f"see {value} here"))
    assert (value.replace(" ", "") in {v.replace(" ", "") for _, v in _one(value)}) is False


def test_context_bound_entities() -> None:
    assert _one("BSN 111222333") == [("NL_BSN", "111222333")]
    assert all(e != "NL_BSN" for e, _ in _one("ref 111222333"))  # an 11-test pass without BSN words
    assert ("DATE_OF_BIRTH", "12.03.1985") in _one("geboren am 12.03.1985")
    assert all(e != "DATE_OF_BIRTH" for e, _ in _one("meeting on 12.03.1985"))
    nir = "172023201312126"
    assert _one(f"NIR {nir}") == [("FR_NIR", nir)]
    assert ("FR_NIR", "2690549588157 80") not in _one("2690549588157 81")


def test_detect_spans_column_matches_per_row_detection() -> None:
    texts = [f"mail {i}@x.org and card 4111111111111111" if i % 3 else None for i in range(600)]
    col = detect_spans(pd.Series(texts))  # >= 256 rows: RE2 prefilters
    for i, spans in enumerate(col):
        assert [(s.start, s.end, s.entity) for s in spans] == [
            (s.start, s.end, s.entity) for s in find_spans(texts[i] or "")
        ]
    assert [s.entity for s in col[1]] == ["EMAIL", "CREDIT_CARD"]
    assert col[0] == []


@pytest.mark.parametrize("locale", LOCALES)
def test_faker_values_detected_per_locale(locale: str) -> None:
    fake = Faker(locale)
    fake.seed_instance(7)
    for _ in range(40):
        for entity, value in (
            ("EMAIL", fake.email()),
            ("PHONE", fake.phone_number()),
            ("IBAN", fake.iban()),
            ("CREDIT_CARD", fake.credit_card_number()),
            ("IP_ADDRESS", fake.ipv4()),
        ):
            text = f"Kontakt: {value}."
            assert (entity, value) in _one(text), (locale, entity, value)


@pytest.mark.parametrize(
    ("locale", "entity"), [("en_US", "US_SSN"), ("nl_NL", "NL_BSN"), ("it_IT", "IT_FISCAL_CODE")]
)
def test_faker_national_ids(locale: str, entity: str) -> None:
    fake = Faker(locale)
    fake.seed_instance(3)
    word = {"NL_BSN": "BSN", "US_SSN": "SSN", "IT_FISCAL_CODE": "CF"}[entity]
    for _ in range(50):
        value = fake.ssn()
        assert (entity, value) in _one(f"{word} {value}")


def test_classify_columns() -> None:
    fake = Faker("fr_FR")
    fake.seed_instance(1)
    emails = pd.Series([fake.email() for _ in range(50)])
    assert classify_column("contact", emails).entity == "EMAIL"
    assert classify_column("Nachname", pd.Series(["Müller", "Schmidt"])).entity == "PERSON"
    assert classify_column("code_postal", pd.Series(["75011", "69003"])).entity == "POSTCODE"
    notes = pd.Series([f"Écrire à {fake.email()} demain, merci beaucoup" for _ in range(50)])
    assert classify_column("notes", notes).entity == FREE_TEXT
    assert classify_column("amount", pd.Series([1.5, 2.0, 3.25])).entity is None
    assert "POSTCODE" in ENTITIES and "PERSON" in ENTITIES


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_detectors_never_raise_on_arbitrary_text(text: str) -> None:
    for s in find_spans(text):
        assert 0 <= s.start < s.end <= len(text)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.text(alphabet=st.sampled_from("0123456789 -@.:abcXYZ+()\x00é٣²"), max_size=40), max_size=300)
)
def test_column_detection_never_raises_and_spans_are_disjoint(texts: list[str]) -> None:
    for row, spans in zip(texts, detect_spans(texts), strict=True):
        end = 0
        for s in spans:
            assert s.start >= end and s.end <= len(row)
            end = s.end


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 -", max_size=25))
def test_luhn_agrees_with_reference(s: str) -> None:
    assert luhn_valid(s) == _ref_luhn(s)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["DE", "GB", "FR", "NL", "ES", "IT"]),
    st.text(alphabet="0123456789ABCDEFXYZ", min_size=30, max_size=30),
)
def test_iban_agrees_with_reference(country: str, body: str) -> None:
    lengths = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27}
    bban = body[: lengths[country] - 4]
    rem = _ref_iban_mod97(country + "00" + bban)
    check = f"{98 - rem:02d}"
    good = country + check + bban
    assert iban_valid(good)
    bad = country + f"{(int(check) + 1) % 100:02d}" + bban
    assert iban_valid(bad) == (_ref_iban_mod97(bad) == 1)
