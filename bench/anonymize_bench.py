"""Anonymisation bench: Garrison's PII span detection against Presidio's pattern recognisers (no NLP model).

A labelled table is generated with Faker in seven locales: structured PII columns and two free-text columns that
embed PII spans at known offsets (the ground truth), plus decoys that are not PII (order numbers failing Luhn,
amounts, dates that are not dates of birth, ticket references). Faker's cost is kept out of the 1 M-row table by
drawing each row's values from pools of Faker records (``--pool`` per locale); the text of every row is assembled
afresh, so spans sit at different offsets in different sentences.

Measured, on the free-text columns:
- per-entity precision and recall of Garrison (``garrison.protect.detect_spans``) on all rows, and of Garrison and
  Presidio on the same ``--presidio-rows`` sample (a prediction counts when it overlaps an unmatched gold span of
  the same entity; Presidio's DATE_TIME counts as DATE_OF_BIRTH where it overlaps one and is ignored elsewhere,
  which favours Presidio);
- rows per second of detection + replacement by pseudonyms (Garrison: ``anonymize_frame`` on the free-text
  columns; Presidio: ``AnalyzerEngine.analyze`` + ``AnonymizerEngine.anonymize`` with its ``hash`` operator).

Presidio runs offline: an ``AnalyzerEngine`` over a registry of its predefined pattern recognisers for the
evaluated entities (plus its phonenumbers-based PhoneRecognizer, regions of the seven locales), the NoOpNlpEngine
(no spaCy model), and tldextract with the suffix list bundled in its wheel (no fetch).

Run it in the Presidio venv (``make bench-env``; Garrison is imported from src/)::

    .bench-env-presidio/bin/python bench/anonymize_bench.py --rows 1000000 --presidio-rows 10000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "it_IT")
PRESIDIO_TO_GARRISON = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS",
    "US_SSN": "US_SSN",
    "UK_NINO": "UK_NINO",
    "ES_NIF": "ES_DNI",
    "ES_NIE": "ES_DNI",
    "IT_FISCAL_CODE": "IT_FISCAL_CODE",
    "DATE_TIME": "DATE_OF_BIRTH",
}
NATIONAL_ID = {
    "en_US": "US_SSN",
    "en_GB": "UK_NINO",
    "fr_FR": "FR_NIR",
    "es_ES": "ES_DNI",
    "nl_NL": "NL_BSN",
    "it_IT": "IT_FISCAL_CODE",
}
NATID_WORD = {
    "US_SSN": "SSN",
    "UK_NINO": "NI number",
    "FR_NIR": "numéro de sécurité sociale",
    "ES_DNI": "DNI",
    "NL_BSN": "BSN",
    "IT_FISCAL_CODE": "codice fiscale",
}
DOB_FORMAT = {
    "en_US": "%m/%d/%Y",
    "en_GB": "%d/%m/%Y",
    "de_DE": "%d.%m.%Y",
    "fr_FR": "%d/%m/%Y",
    "es_ES": "%d/%m/%Y",
    "nl_NL": "%d-%m-%Y",
    "it_IT": "%d/%m/%Y",
}
BORN = {
    "en_US": "born on",
    "en_GB": "born",
    "de_DE": "geboren am",
    "fr_FR": "né le",
    "es_ES": "nacido el",
    "nl_NL": "geboortedatum",
    "it_IT": "nato il",
}

# Templates: literal text and slots. Upper-case slots are labelled PII; lower-case ones are context or decoys.
TEMPLATES = (
    "Please contact {name} at {EMAIL} or {PHONE} about order {order}.",
    "Refund to IBAN {IBAN} requested on {date}; card {CREDIT_CARD} was blocked, amount {amount} EUR.",
    "{name}, {born} {DATE_OF_BIRTH}, {natid_word} {NATIONAL_ID}.",
    "Login from {IP_ADDRESS} flagged for {EMAIL}; ticket {ticket} opened on {date}.",
    "Call back on {PHONE}. Customer since {date}, {natid_word}: {NATIONAL_ID}, IBAN {IBAN}.",
    "Ticket {ticket} updated by support on {date}; order {order} shipped, amount {amount}.",
    "Payment with {CREDIT_CARD} from {IP_ADDRESS}; contact {EMAIL}, {born} {DATE_OF_BIRTH}.",
    "{name} ({EMAIL}) asked to change phone to {PHONE}.",
)


def _nino(rng: random.Random) -> str:
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        p = rng.choice(first) + rng.choice(second)
        if p not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
            break
    d = f"{rng.randrange(10**6):06d}"
    return f"{p} {d[:2]} {d[2:4]} {d[4:]} {rng.choice('ABCD')}"


def _order(rng: random.Random) -> str:
    """A 16-digit number that fails the Luhn check (a decoy for card detectors)."""
    from garrison.protect.pii import luhn_valid

    while True:
        s = f"{rng.randrange(10**15, 10**16)}"
        if not luhn_valid(s):
            return s


def build_pools(per_locale: int, seed: int) -> dict[str, list[dict[str, str]]]:
    from faker import Faker

    rng = random.Random(seed)
    pools: dict[str, list[dict[str, str]]] = {}
    for loc in LOCALES:
        f = Faker(loc)
        f.seed_instance(seed)
        recs = []
        for _ in range(per_locale):
            dob = f.date_of_birth(minimum_age=18, maximum_age=90)
            ent = NATIONAL_ID.get(loc)
            if ent == "UK_NINO":
                nat = _nino(rng)
            elif ent == "ES_DNI":
                nat = f.nif() if rng.random() < 0.5 else f.nie()
            elif ent is not None:
                nat = f.ssn()
            else:
                nat = ""
            recs.append(
                {
                    "name": f.name(),
                    "EMAIL": f.email(),
                    "PHONE": f.phone_number(),
                    "IBAN": f.iban() if rng.random() < 0.7 else " ".join(_chunks(f.iban())),
                    "CREDIT_CARD": f.credit_card_number(),
                    "IP_ADDRESS": f.ipv4() if rng.random() < 0.8 else f.ipv6(),
                    "NATIONAL_ID": nat,
                    "DATE_OF_BIRTH": dob.strftime(DOB_FORMAT[loc]),
                    "dob_iso": dob.isoformat(),
                    "postcode": f.postcode(),
                    "date": f.date_between(start_date="-3y").strftime(DOB_FORMAT[loc]),
                    "order": _order(rng),
                    "ticket": f"T-{rng.randrange(10**5, 10**6)}",
                    "amount": f"{rng.randrange(1, 10**5)}.{rng.randrange(100):02d}",
                }
            )
        pools[loc] = recs
    return pools


def _chunks(s: str) -> list[str]:
    return [s[i : i + 4] for i in range(0, len(s), 4)]


def build_table(
    n: int, pools: dict[str, list[dict[str, str]]], seed: int
) -> tuple[object, list[list[tuple]]]:
    """The labelled frame and, per row, the gold spans of its free-text column ``notes``: (start, end, entity)."""
    import numpy as np
    import pandas as pd

    rng = random.Random(seed + 1)
    nprng = np.random.default_rng(seed)
    locs = nprng.integers(0, len(LOCALES), n)
    picks = nprng.integers(0, min(len(p) for p in pools.values()), (n, 3))
    tmpl_idx = nprng.integers(0, len(TEMPLATES), n)
    cols: dict[str, list] = defaultdict(list)
    gold: list[list[tuple]] = []
    parsed = [_parse(t) for t in TEMPLATES]
    for i in range(n):
        loc = LOCALES[locs[i]]
        pool = pools[loc]
        a, b, c = pool[picks[i, 0]], pool[picks[i, 1]], pool[picks[i, 2]]
        natid = NATIONAL_ID.get(loc)
        parts = parsed[tmpl_idx[i]]
        if natid is None and any(p == ("slot", "NATIONAL_ID") for p in parts):
            parts = parsed[0]
        text: list[str] = []
        spans: list[tuple] = []
        pos = 0
        for kind, val in parts:
            if kind == "lit":
                s = val
            elif val == "born":
                s = BORN[loc]
            elif val == "natid_word":
                s = NATID_WORD[natid] if natid else ""
            else:
                s = (b if val in ("PHONE", "IBAN") else c if val == "IP_ADDRESS" else a)[val]
                if val.isupper():
                    spans.append((pos, pos + len(s), natid if val == "NATIONAL_ID" else val))
            text.append(s)
            pos += len(s)
        gold.append(spans)
        cols["name"].append(a["name"])
        cols["email"].append(a["EMAIL"])
        cols["phone"].append(b["PHONE"])
        cols["iban"].append(b["IBAN"])
        cols["date_of_birth"].append(a["dob_iso"])
        cols["postcode"].append(a["postcode"])
        cols["age"].append(rng.randrange(18, 91))
        cols["diagnosis"].append(rng.choice(("flu", "asthma", "diabetes", "migraine", "none")))
        cols["notes"].append("".join(text))
    return pd.DataFrame(cols), gold


def _parse(t: str) -> list[tuple[str, str]]:
    import re

    out = []
    pos = 0
    for m in re.finditer(r"\{(\w+)\}", t):
        if m.start() > pos:
            out.append(("lit", t[pos : m.start()]))
        out.append(("slot", m.group(1)))
        pos = m.end()
    if pos < len(t):
        out.append(("lit", t[pos:]))
    return out


def score(
    preds: list[list[tuple]], gold: list[list[tuple]], *, lenient_dates: bool = False, exact: bool = False
) -> dict[str, list[int]]:
    """Per entity: [true positives, false positives, false negatives] with overlap (or exact-span) matching."""
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p_row, g_row in zip(preds, gold, strict=True):
        used = [False] * len(g_row)
        for s, e, ent in p_row:
            hit = False
            for j, (gs, ge, gent) in enumerate(g_row):
                same = (s, e) == (gs, ge) if exact else s < ge and gs < e
                if not used[j] and gent == ent and same:
                    used[j] = True
                    hit = True
                    break
            if hit:
                stats[ent][0] += 1
            elif not (lenient_dates and ent == "DATE_OF_BIRTH"):
                stats[ent][1] += 1
        for j, (_, _, gent) in enumerate(g_row):
            if not used[j]:
                stats[gent][2] += 1
    return stats


def prf(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else float("nan"), tp / (tp + fn) if tp + fn else float("nan"))


def make_presidio() -> tuple[Callable[[str], list[tuple]], Callable[[str], str]]:
    import presidio_analyzer.predefined_recognizers as pr
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig

    # the e-mail recogniser calls tldextract.extract, whose default extractor fetches the public suffix list
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract = offline
    import presidio_analyzer.predefined_recognizers.generic.email_recognizer as em

    em.tldextract.extract = offline
    recognizers = [
        pr.EmailRecognizer(supported_language="en"),
        pr.PhoneRecognizer(
            supported_language="en", supported_regions=("US", "GB", "DE", "FR", "ES", "NL", "IT")
        ),
        pr.CreditCardRecognizer(supported_language="en"),
        pr.IbanRecognizer(supported_language="en"),
        pr.IpRecognizer(supported_language="en"),
        pr.UsSsnRecognizer(supported_language="en"),
        pr.UkNinoRecognizer(supported_language="en"),
        pr.EsNifRecognizer(supported_language="en"),
        pr.EsNieRecognizer(supported_language="en"),
        pr.ItFiscalCodeRecognizer(supported_language="en"),
        pr.DateRecognizer(supported_language="en"),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    ops = {"DEFAULT": OperatorConfig("hash", {"hash_type": "sha256"})}

    def detect(text: str) -> list[tuple]:
        res = analyzer.analyze(text, language="en")
        return [
            (r.start, r.end, PRESIDIO_TO_GARRISON[r.entity_type])
            for r in res
            if r.entity_type in PRESIDIO_TO_GARRISON
        ]

    def anonymize(text: str) -> str:
        res = analyzer.analyze(text, language="en")
        return anonymizer.anonymize(text=text, analyzer_results=res, operators=ops).text

    return detect, anonymize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--presidio-rows", type=int, default=10_000)
    ap.add_argument("--pool", type=int, default=3000, help="Faker records per locale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-presidio", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from garrison.protect import (
        AnonymizeConfig,
        KeyEncryptionKey,
        Pseudonymizer,
        anonymize_frame,
        detect_spans,
    )
    from garrison.protect.keys import generate_key

    t = time.perf_counter()
    pools = build_pools(args.pool, args.seed)
    frame, gold = build_table(args.rows, pools, args.seed)
    print(
        f"generated {args.rows} rows ({len(LOCALES)} locales, pool {args.pool}/locale) in {time.perf_counter() - t:.1f} s"
    )
    notes = frame["notes"]
    n_gold = sum(len(g) for g in gold)
    print(f"gold spans in `notes`: {n_gold}")

    key = KeyEncryptionKey.from_text(generate_key())
    pseudo = Pseudonymizer(key)
    cfg = AnonymizeConfig(columns={"notes": "pseudonymize"}, default_action="keep")
    text_frame = frame[["notes"]]

    t = time.perf_counter()
    g_spans = detect_spans(notes)  # detection only
    g_detect_s = time.perf_counter() - t
    t = time.perf_counter()
    anonymize_frame(text_frame, cfg, Pseudonymizer(key))  # a fresh pseudonym cache for every timed run
    g_anon_s = time.perf_counter() - t
    g_preds = [[(s.start, s.end, s.entity) for s in row] for row in g_spans]
    g_all = score(g_preds, gold)
    print(
        f"Garrison on {args.rows} rows: detect {g_detect_s:.1f} s ({args.rows / g_detect_s:,.0f} rows/s), "
        f"detect+pseudonymise {g_anon_s:.1f} s ({args.rows / g_anon_s:,.0f} rows/s)"
    )

    # the whole pipeline (classification, structured columns, Mondrian to k=5) on all columns, for the record
    full_cfg = AnonymizeConfig(
        columns={}, quasi_identifiers={"age": "numeric", "postcode": "postcode"}, sensitive="diagnosis", k=5
    )
    t = time.perf_counter()
    full = anonymize_frame(frame, full_cfg, pseudo)
    full_s = time.perf_counter() - t
    print(
        f"full pipeline (all {frame.shape[1]} columns, Mondrian k=5 over age+postcode) on {args.rows} rows: "
        f"{full_s:.1f} s ({args.rows / full_s:,.0f} rows/s); k {full.report['before']['k']} -> "
        f"{full.report['after']['k']}, l {full.report['before']['l']} -> {full.report['after']['l']}"
    )

    m = min(args.presidio_rows, args.rows)
    sample = notes.iloc[:m].tolist()
    t = time.perf_counter()
    anonymize_frame(text_frame.iloc[:m], cfg, Pseudonymizer(key))
    g_small_s = time.perf_counter() - t
    g_sample = score(g_preds[:m], gold[:m])
    g_exact = score(g_preds[:m], gold[:m], exact=True)
    p_exact: dict[str, list[int]] = {}

    p_sample: dict[str, list[int]] = {}
    p_s = float("nan")
    if not args.skip_presidio:
        detect, anonymize = make_presidio()
        p_preds = [detect(x) for x in sample]
        p_sample = score(p_preds, gold[:m], lenient_dates=True)
        p_exact = score(p_preds, gold[:m], lenient_dates=True, exact=True)
        t = time.perf_counter()
        for x in sample:
            anonymize(x)
        p_s = time.perf_counter() - t

    ents = sorted({e for st in (g_all, g_sample, p_sample) for e in st})
    print(
        f"\nPer-entity precision / recall on `notes` (Garrison: all {args.rows} rows and the first {m}; "
        f"Presidio: the first {m})\n"
    )
    print(
        "| entity | gold (sample) | Garrison P | Garrison R | Presidio P | Presidio R | Garrison P (all) | Garrison R (all) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    bar_ok = True
    for e in ents:
        gs = g_sample.get(e, [0, 0, 0])
        ps = p_sample.get(e, [0, 0, 0])
        ga = g_all.get(e, [0, 0, 0])
        gp, gr = prf(*gs)
        pp, prr = prf(*ps)
        ap_, ar = prf(*ga)
        if not args.skip_presidio:
            for mine, theirs in ((gp, pp), (gr, prr)):
                if theirs == theirs and not (mine == mine and mine >= theirs):
                    bar_ok = False
        print(
            f"| {e} | {gs[0] + gs[2]} | {gp:.4f} | {gr:.4f} | {pp:.4f} | {prr:.4f} | {ap_:.4f} | {ar:.4f} |"
        )
    print(f"\nExact span boundaries, the first {m} rows\n")
    print("| entity | Garrison P | Garrison R | Presidio P | Presidio R |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for e in ents:
        gp, gr = prf(*g_exact.get(e, [0, 0, 0]))
        pp, prr = prf(*p_exact.get(e, [0, 0, 0]))
        print(f"| {e} | {gp:.4f} | {gr:.4f} | {pp:.4f} | {prr:.4f} |")
    print("\n| engine | rows | seconds | rows/s |\n| --- | ---: | ---: | ---: |")
    print(f"| Garrison detect + pseudonymise | {args.rows} | {g_anon_s:.2f} | {args.rows / g_anon_s:,.0f} |")
    print(f"| Garrison detect + pseudonymise | {m} | {g_small_s:.2f} | {m / g_small_s:,.0f} |")
    if not args.skip_presidio:
        print(f"| Presidio analyze + anonymize (hash) | {m} | {p_s:.2f} | {m / p_s:,.0f} |")
        ratio = (m / g_small_s) / (m / p_s)
        ratio_big = (args.rows / g_anon_s) / (m / p_s)
        print(f"\nbar: per-entity P and R >= Presidio's: {'PASS' if bar_ok else 'FAIL'}")
        print(
            f"bar: rows/s >= 10x Presidio's: {'PASS' if ratio >= 10 else 'FAIL'} "
            f"({ratio:.1f}x on the same {m} rows; {ratio_big:.1f}x with Garrison on {args.rows} rows)"
        )


if __name__ == "__main__":
    main()
