"""Detection of personal data in tables: span detectors (regex candidates confirmed by checksums and validators)
and per-column classification from values and column names.

Every detector works on a whole column at once: the column's strings are joined with a separator no pattern can
cross, each compiled pattern scans the joined text in one C-level pass, and only the candidates it finds are
validated in Python (Luhn, ISO 13616 mod 97, ``ipaddress``, national-id check digits). Offsets are mapped back to
rows with a binary search, so the cost is one regex pass per entity instead of per-row Python.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

__all__ = [
    "DETECTORS",
    "ENTITIES",
    "FREE_TEXT",
    "ColumnClass",
    "Detector",
    "Span",
    "classify_column",
    "detect_spans",
    "find_spans",
    "iban_valid",
    "luhn_valid",
]

FREE_TEXT = "FREE_TEXT"
_SEP = "\x00"  # joins a column's values; no pattern matches it


@dataclass(frozen=True, slots=True)
class Span:
    """One detected entity: ``row`` of the column, ``[start, end)`` in that row's text."""

    row: int
    start: int
    end: int
    entity: str


# --------------------------------------------------------------------------------------------------- validators


def _digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")


def luhn_valid(number: str) -> bool:
    """Luhn (mod 10) check of the digits of ``number`` (separators ignored); payment cards have 12 to 19 digits."""
    ds = _digits(number)
    if not 12 <= len(ds) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(ds)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 lengths of the IBANs of countries that use them (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(text: str) -> bool:
    """ISO 13616 check: known country, its length, and the mod-97 remainder of the rearranged number is 1."""
    s = "".join(text.split()).upper()
    if len(s) < 15 or not s.isascii() or not s.isalnum():
        return False
    if _IBAN_LENGTHS.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _ip_valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ssn_valid(text: str) -> bool:
    """US SSN rules (SSA): area not 000, 666 or 900-999; group not 00; serial not 0000."""
    ds = _digits(text)
    if len(ds) != 9:
        return False
    area, group, serial = int(ds[:3]), int(ds[3:5]), int(ds[5:])
    return area != 0 and area != 666 and area < 900 and group != 0 and serial != 0


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino_valid(text: str) -> bool:
    """UK National Insurance number (HMRC format): two prefix letters (not D, F, I, Q, U, V; second not O; not
    BG, GB, NK, KN, TN, NT, ZZ), six digits, suffix A-D. There is no check digit."""
    s = "".join(text.split()).upper()
    if len(s) != 9 or s[:2] in _NINO_BAD_PREFIXES:
        return False
    return bool(re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", s))


def _nir_valid(text: str) -> bool:
    """French NIR (numéro de sécurité sociale): 13 characters then a 2-digit key = 97 - (number mod 97), with
    Corsica's 2A / 2B read as 19 / 18."""
    s = "".join(text.split()).upper()
    if len(s) != 15 or s[0] not in "12378" or not s[13:].isdigit():
        return False
    body = s[:13]
    if body[5:7] == "2A":
        body = body[:5] + "19" + body[7:]
    elif body[5:7] == "2B":
        body = body[:5] + "18" + body[7:]
    if not body.isdigit():
        return False
    month = int(body[3:5])
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    return 97 - int(body) % 97 == int(s[13:])


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_valid(text: str) -> bool:
    """Spanish DNI (8 digits) or NIE (X, Y or Z then 7 digits) with its mod-23 control letter."""
    s = text.replace("-", "").replace(" ", "").upper()
    if len(s) != 9:
        return False
    head = s[:8]
    if head[0] in "XYZ":
        head = str("XYZ".index(head[0])) + head[1:]
    if not head.isdigit():
        return False
    return _DNI_LETTERS[int(head) % 23] == s[8]


def _bsn_valid(text: str) -> bool:
    """Dutch BSN, the 11-test: sum(d_i * (9 - i), i < 8) - d_8 is a multiple of 11 (and not all zeros)."""
    ds = _digits(text)
    if len(ds) != 9 or ds == "000000000":
        return False
    total = sum(int(d) * (9 - i) for i, d in enumerate(ds[:8])) - int(ds[8])
    return total % 11 == 0


_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
_CF_OMOCODIA = "LMNPQRSTUV"  # letters replacing digits 0-9 in homocodic codes


def _cf_valid(text: str) -> bool:
    """Italian codice fiscale: 16 characters whose last one is the check letter (odd/even position tables)."""
    s = text.upper()
    if len(s) != 16 or not s.isascii() or not s.isalnum():
        return False
    total = 0
    for i, c in enumerate(s[:15]):
        v = int(c) if c.isdigit() else ord(c) - 65
        if not 0 <= v < 26:
            return False
        total += _CF_ODD[v] if i % 2 == 0 else v
    return chr(65 + total % 26) == s[15]


def _phone_valid(text: str) -> bool:
    """A phone number has 8 to 15 digits (E.164 allows 15), not all equal; one with a leading + or without any
    separator needs at least 9."""
    core = re.split(r"\s*(?:x|ext\.?)\s*\d", text, maxsplit=1)[0]
    if _DATE_RE.fullmatch(core) or _SSN_SHAPE.fullmatch(core):
        return False
    ds = _digits(core)
    if not 8 <= len(ds) <= 15 or len(set(ds)) == 1:
        return False
    # a bare run of 8 digits is more often a reference than a phone number
    return not ((text.startswith("+") or core.isdigit()) and len(ds) < 9)


def _email_valid(text: str) -> bool:
    local, _, domain = text.rpartition("@")
    return 0 < len(local) <= 64 and "." in domain and ".." not in text and len(text) <= 254


# ---------------------------------------------------------------------------------------------------- detectors


@dataclass(frozen=True)
class Detector:
    """An entity's candidate pattern and validator. ``context`` (a pattern) must then occur within
    ``window`` characters before the match, for entities whose format alone is ambiguous (a BSN is any 9 digits
    passing the 11-test, one in eleven random numbers)."""

    entity: str
    pattern: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    context: re.Pattern[str] | None = None
    window: int = 40
    prefilter: str | None = None  # an RE2 regex every row with a match contains (skips the others)

    def spans_in(self, text: str) -> Iterable[tuple[int, int]]:
        """``(start, end)`` of every validated match in ``text``."""
        for m in self.pattern.finditer(text):
            s, e = m.span(1) if m.re.groups else m.span()
            if self.validate is not None and not self.validate(text[s:e]):
                continue
            if self.context is not None:
                lo = max(0, s - self.window)
                before = text[lo:s]
                cut = before.rfind(_SEP)
                if not self.context.search(before[cut + 1 :] if cut >= 0 else before):
                    continue
            yield s, e


_B = r"(?<![\w@.+-])"  # left boundary: not inside a word, an e-mail, a number or an id
_E = r"(?![\w@-]|\.\w)"  # right boundary

_DOB_WORDS = (
    r"born|birth|d\.?o\.?b|birthday|née?|naissance|geboren|geburtsdatum|geb\.|nacid[oa]|nacimiento|"
    r"nat[oa]|nascita|geboortedatum"
)
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|"
    r"\d{1,2}\.?\s+[A-Za-zÀ-ÿ]{3,10}\.?\s+\d{4}|[A-Z][a-z]{2,8}\.?\s+\d{1,2},?\s+\d{4})"
)


_DATE_RE = re.compile(_DATE)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")  # an SSN's shape is never a phone number, even when invalid


def _date_valid(text: str) -> bool:
    nums = [int(n) for n in re.findall(r"\d+", text)]
    years = [n for n in nums if n >= 1000]
    return not years or 1900 <= years[0] <= 2030


DETECTORS: tuple[Detector, ...] = (
    Detector(
        "EMAIL",
        re.compile(
            r"(?<![\w.+-])([A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b"
        ),
        _email_valid,
        prefilter=r"@",
    ),
    Detector(
        "IBAN",
        re.compile(_B + r"([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?)" + _E),
        iban_valid,
        prefilter=r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
    ),
    Detector(
        "US_SSN",
        re.compile(_B + r"(\d{3}[- ]\d{2}[- ]\d{4})" + _E),
        _ssn_valid,
        prefilter=r"\d{3}[- ]\d{2}[- ]\d{4}",
    ),
    Detector(
        "UK_NINO",
        re.compile(r"\b([A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d])\b"),
        _nino_valid,
        prefilter=r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]",
    ),
    Detector(
        "FR_NIR",
        re.compile(_B + r"([12378] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2})" + _E),
        _nir_valid,
        context=re.compile(r"(?i)\b(?:nir|insee|s[ée]cu|s[ée]curit[ée] sociale)"),
        prefilter=r"[12378] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3}",
    ),
    Detector(
        "CREDIT_CARD",
        re.compile(_B + r"(\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{1,4}){0,2})" + _E),
        luhn_valid,
        prefilter=r"\d{4}[ -]?\d{4}",
    ),
    Detector(
        "FR_NIR",
        re.compile(_B + r"([12378] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2})" + _E),
        _nir_valid,
        prefilter=r"[12378] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3}",
    ),
    Detector(
        "ES_DNI",
        re.compile(r"\b((?:\d{8}|[XYZxyz]-?\d{7})-?[A-Za-z])\b"),
        _dni_valid,
        prefilter=r"(?:\d{8}|[XYZxyz]-?\d{7})-?[A-Za-z]",
    ),
    Detector(
        "IT_FISCAL_CODE",
        re.compile(r"\b([A-Za-z]{6}[0-9LMNP-V]{2}[A-Za-z][0-9LMNP-V]{2}[A-Za-z][0-9LMNP-V]{3}[A-Za-z])\b"),
        _cf_valid,
        prefilter=r"[A-Za-z]{6}[0-9LMNP-V]{2}[A-Za-z]",
    ),
    Detector(
        "NL_BSN",
        re.compile(_B + r"(\d{4}\.?\d{2}\.?\d{3}|\d{9})" + _E),
        _bsn_valid,
        context=re.compile(r"(?i)\b(?:bsn|burgerservicenummer|sofi-?nummer|sofinummer)\b"),
        prefilter=r"(?i)bsn|burgerservicenummer|sofi",
    ),
    Detector(
        "IP_ADDRESS",
        re.compile(
            r"(?<![\w.:])((?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?)(?![\w:]|\.\w)"
        ),
        _ip_valid,
        prefilter=r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    ),
    Detector(
        "DATE_OF_BIRTH",
        re.compile(r"(?<![\w./-])(" + _DATE + r")(?![\w/-]|\.\d)"),
        _date_valid,
        context=re.compile(r"(?i)(?:" + _DOB_WORDS + r")"),
        window=30,
        prefilter=r"(?i)(?:" + _DOB_WORDS + r")",
    ),
    Detector(
        "PHONE",
        re.compile(
            r"(?<![\w+@./(-])((?:(?:\+|00)\d{1,4}[ .-]?(?:\(0?\d{1,4}\)[ .-]?)?|\(\d{2,5}\)[ .-]?)?"
            r"\d{1,5}(?:[ .-]?\d{2,5}){1,4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?)(?![\w@-]|\.\d)"
        ),
        _phone_valid,
        prefilter=r"(?:\d[ .()/x-]{0,3}){8}",
    ),
)
# ASCII classes: \d is [0-9] as in the RE2 prefilters, and validators never see other Unicode digits
DETECTORS = tuple(
    replace(d, pattern=re.compile(d.pattern.pattern, (d.pattern.flags & ~re.UNICODE) | re.ASCII))
    for d in DETECTORS
)
"""Span detectors in priority order: where two matches overlap, the one earlier in this list wins. A 15-digit
number can pass both the NIR key and the Luhn check: it is a NIR when NIR words precede it, else a card first."""

ENTITIES: tuple[str, ...] = (*dict.fromkeys(d.entity for d in DETECTORS), "POSTCODE", "PERSON")
"""Every entity Garrison detects; POSTCODE and PERSON only from column names."""


def _as_strings(values: Sequence[object] | pd.Series | np.ndarray) -> list[str]:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value=None)
    return [
        "" if v is None or (isinstance(v, float) and v != v) else str(v).replace(_SEP, " ") for v in values
    ]


def find_spans(text: str, *, entities: Iterable[str] | None = None) -> list[Span]:
    """Detected entities in one string (row 0), overlaps resolved by detector priority, sorted by start."""
    return detect_spans([text], entities=entities)[0]


def _resolve(gs: np.ndarray, ge: np.ndarray, prio: np.ndarray) -> np.ndarray:
    """Indices of the spans kept when overlapping ones are resolved: in a cluster of overlapping spans, spans are
    taken by priority, then length, then position, each only if it overlaps none taken before."""
    order = np.lexsort((ge, gs))
    gs, ge, prio = gs[order], ge[order], prio[order]
    reach = np.maximum.accumulate(ge)
    new_cluster = np.ones(len(gs), dtype=bool)
    new_cluster[1:] = gs[1:] >= reach[:-1]
    cluster = np.cumsum(new_cluster) - 1
    sizes = np.bincount(cluster)
    keep = sizes[cluster] == 1
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))  # clusters are contiguous in start order
    multi = np.flatnonzero(sizes > 1).tolist()
    if multi:
        gs, ge, prio = gs.tolist(), ge.tolist(), prio.tolist()
    for c in multi:
        lo = int(first[c])
        members = range(lo, lo + int(sizes[c]))
        ranked = sorted(members, key=lambda i: (prio[i], -(ge[i] - gs[i]), gs[i]))
        taken: list[tuple[int, int]] = []
        for i in ranked:
            if all(ge[i] <= a or b <= gs[i] for a, b in taken):
                taken.append((gs[i], ge[i]))
                keep[i] = True
    return order[keep]


_PREFILTER_MIN_ROWS = 256


def detect_spans(
    values: Sequence[object] | pd.Series | np.ndarray, *, entities: Iterable[str] | None = None
) -> list[list[Span]]:
    """For each value of a column (missing values count as empty), its detected spans, sorted and without
    overlaps. ``entities`` limits the detectors run (default: all)."""
    texts = _as_strings(values)
    n = len(texts)
    out: list[list[Span]] = [[] for _ in range(n)]
    if not n:
        return out
    wanted = set(entities) if entities is not None else None
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=n)
    row_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    arr = None
    if n >= _PREFILTER_MIN_ROWS:
        import pyarrow as pa

        arr = pa.array(texts, pa.large_string())
    rows_l: list[np.ndarray] = []
    gs_l: list[np.ndarray] = []
    ge_l: list[np.ndarray] = []
    pr_l: list[np.ndarray] = []
    for priority, det in enumerate(DETECTORS):
        if wanted is not None and det.entity not in wanted:
            continue
        idx = _candidate_rows(det, texts, arr)
        if idx is not None and not len(idx):
            continue
        sub = texts if idx is None else [texts[i] for i in idx.tolist()]
        sub_len = lengths if idx is None else lengths[idx]
        sub_start = np.concatenate(([0], np.cumsum(sub_len)[:-1]))
        found = list(det.spans_in(_SEP.join(sub)))
        if not found:
            continue
        se = np.asarray(found, dtype=np.int64).reshape(-1, 2)
        local = np.searchsorted(sub_start, se[:, 0], side="right") - 1
        rows = local if idx is None else idx[local]
        offset = (
            (row_start[rows] - sub_start[local]) if idx is not None else np.zeros(len(rows), dtype=np.int64)
        )
        rows_l.append(rows)
        gs_l.append(se[:, 0] + offset)
        ge_l.append(se[:, 1] + offset)
        pr_l.append(np.full(len(rows), priority, dtype=np.int64))
    if not rows_l:
        return out
    rows_a, gs, ge, prio = (np.concatenate(x) for x in (rows_l, gs_l, ge_l, pr_l))
    kept = _resolve(gs, ge, prio)
    kept = kept[np.lexsort((gs[kept],))]
    names = [d.entity for d in DETECTORS]
    base = row_start[rows_a[kept]]
    for r, s, e, p in zip(
        rows_a[kept].tolist(),
        (gs[kept] - base).tolist(),
        (ge[kept] - base).tolist(),
        prio[kept].tolist(),
        strict=True,
    ):
        out[r].append(Span(r, s, e, names[p]))
    return out


def _candidate_rows(det: Detector, texts: list[str], arr: object) -> np.ndarray | None:
    """Rows that may hold a match (RE2 prefilter over the Arrow column), or ``None`` for all rows."""
    if arr is None or det.prefilter is None:
        return None
    import pyarrow.compute as pc

    mask = pc.match_substring_regex(arr, det.prefilter)
    hits = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    return None if len(hits) == len(texts) else hits


# ------------------------------------------------------------------------------------------ column classification

# Column-name hints, several languages; matched against the name's lower-cased words.
_NAME_HINTS: dict[str, tuple[str, ...]] = {
    "EMAIL": ("email", "e_mail", "mail", "courriel", "correo"),
    "PHONE": ("phone", "tel", "telephone", "telefon", "telefono", "téléphone", "telefoon", "mobile", "cell", "handy"),
    "IBAN": ("iban",),
    "CREDIT_CARD": ("card", "credit_card", "carte", "tarjeta", "carta", "kreditkarte"),
    "IP_ADDRESS": ("ip", "ip_address", "ipv4", "ipv6"),
    "US_SSN": ("ssn",),
    "UK_NINO": ("nino", "national_insurance"),
    "FR_NIR": ("nir", "insee", "secu", "securite_sociale"),
    "ES_DNI": ("dni", "nie", "nif"),
    "IT_FISCAL_CODE": ("codice_fiscale", "fiscal_code"),
    "NL_BSN": ("bsn", "burgerservicenummer"),
    "DATE_OF_BIRTH": (
        "dob", "birth", "birthdate", "birthday", "date_of_birth", "birth_date", "geburtsdatum", "naissance",
        "date_naissance", "fecha_nacimiento", "nacimiento", "data_nascita", "nascita", "geboortedatum",
    ),
    "POSTCODE": ("postcode", "postal", "postal_code", "zip", "zipcode", "plz", "cp", "code_postal", "postleitzahl", "codigo_postal"),
    "PERSON": (
        "name", "first_name", "last_name", "firstname", "lastname", "surname", "full_name", "fullname", "given_name",
        "family_name", "nom", "prenom", "prénom", "nombre", "apellido", "apellidos", "vorname", "nachname",
        "cognome", "nome", "naam", "achternaam", "voornaam", "customer", "patient", "person",
    ),
}  # fmt: skip


def _name_hint(column: str) -> str | None:
    low = column.strip().lower()
    flat = re.sub(r"[^\w]+", "_", low).strip("_")
    words = set(flat.split("_"))
    for entity, hints in _NAME_HINTS.items():
        for h in hints:
            if flat == h or ("_" in h and h in flat) or ("_" not in h and h in words):
                return entity
    return None


@dataclass(frozen=True)
class ColumnClass:
    """The verdict on one column: ``entity`` (an entity, ``FREE_TEXT`` or ``None``), the reason (``name``,
    ``values`` or both) and the fraction of sampled values that matched."""

    column: str
    entity: str | None
    reason: str
    match_rate: float = 0.0
    sampled: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "entity": self.entity,
            "reason": self.reason,
            "match_rate": round(self.match_rate, 4),
            "sampled": self.sampled,
        }


def classify_column(
    name: str, values: pd.Series, *, sample: int = 1000, min_rate: float = 0.8, seed: int = 0
) -> ColumnClass:
    """Entity type of a column from its name and a sample of its values: an entity when at least ``min_rate`` of
    the sampled non-empty values are exactly one validated entity (or the name hints one and some values agree,
    or the name hints a name-only entity: POSTCODE, PERSON, DATE_OF_BIRTH), ``FREE_TEXT`` when values are
    sentences that contain entities, else ``None``."""
    hint = _name_hint(str(name))
    non_null = values.dropna()
    if len(non_null) > sample:
        non_null = non_null.sample(n=sample, random_state=seed)
    texts = [t for t in _as_strings(non_null) if t.strip()]
    if not texts:
        return ColumnClass(name, hint, "name" if hint else "empty", 0.0, 0)
    spans = detect_spans(texts)
    counts: dict[str, int] = {}
    for t, ss in zip(texts, spans, strict=True):
        if len(ss) == 1 and t[ss[0].start : ss[0].end] == t.strip():  # the whole value is one entity
            counts[ss[0].entity] = counts.get(ss[0].entity, 0) + 1
    best, best_n = max(counts.items(), key=lambda kv: kv[1]) if counts else (None, 0)
    rate = best_n / len(texts)
    if hint is not None and hint in counts and counts[hint] / len(texts) >= 0.5:
        return ColumnClass(name, hint, "name+values", counts[hint] / len(texts), len(texts))
    if best is not None and rate >= min_rate:
        return ColumnClass(name, best, "name+values" if best == hint else "values", rate, len(texts))
    if hint in ("POSTCODE", "PERSON", "DATE_OF_BIRTH"):
        return ColumnClass(name, hint, "name", rate, len(texts))
    if hint is not None and not pd.api.types.is_numeric_dtype(values.dtype):
        return ColumnClass(name, hint, "name", rate, len(texts))
    spaced = sum(1 for t in texts if " " in t.strip() and len(t) >= 20) / len(texts)
    with_pii = sum(1 for ss in spans if ss) / len(texts)
    if spaced >= 0.5 and with_pii > 0:
        return ColumnClass(name, FREE_TEXT, "values", with_pii, len(texts))
    return ColumnClass(name, None, "values", rate, len(texts))
