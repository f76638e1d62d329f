from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.cli.app import main
from garrison.core.errors import ConfigError, DataError
from garrison.protect import generate_key, parse_anonymize_config, read_table

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "it_IT")
CONFIG = """\
columns:
  diagnosis: keep
quasi_identifiers:
  age: numeric
  postcode: postcode
sensitive: diagnosis
k: 4
policy:
  min_k: 4
"""


def _table(n_per_locale: int = 30) -> pd.DataFrame:
    rng = random.Random(0)
    rows = []
    for loc in LOCALES:
        fake = Faker(loc)
        fake.seed_instance(5)
        for _ in range(n_per_locale):
            rows.append(
                {
                    "name": fake.name(),
                    "email": fake.email(),
                    "phone": fake.phone_number(),
                    "iban": fake.iban(),
                    "age": rng.randint(18, 90),
                    "postcode": fake.postcode(),
                    "diagnosis": rng.choice(["flu", "asthma", "none"]),
                    "notes": f"Reach me at {fake.email()} or {fake.phone_number()}, card {fake.credit_card_number()}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _table().to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    (tmp_path / "k.key").write_text(generate_key() + "\n")
    return tmp_path


def _run(*args: str) -> int:
    return main(["protect", "anonymize", *args])


def test_csv_end_to_end(work: Path) -> None:
    src = pd.read_csv(work / "in.csv")
    code = _run("in.csv", "out.csv", "--config", "cfg.yaml", "--key-file", "k.key", "--report", "r.json")
    assert code == 0
    out = pd.read_csv(work / "out.csv")
    report = json.loads((work / "r.json").read_text())
    assert report["schema_version"] == 1
    assert report["after"]["k"] >= 4 and report["before"]["k"] < 4
    assert report["policy"]["passed"] is True
    assert {m["name"] for m in report["metrics"]} >= {"k_anonymity", "k_anonymity_before", "l_diversity"}
    by_col = {c["column"]: c for c in report["columns"]}
    assert by_col["email"]["entity"] == "EMAIL" and by_col["notes"]["entity"] == "FREE_TEXT"
    assert by_col["name"]["entity"] == "PERSON"
    assert out["email"].str.startswith("EMAIL_").all()
    assert not set(src["email"]) & set(out["email"])
    assert all(e not in " ".join(out["notes"]) for e in src["email"])
    assert (out["diagnosis"] == src["diagnosis"]).all()
    # the same key gives the same pseudonyms in a second run (joins keep working)
    assert _run("in.csv", "out2.parquet", "--config", "cfg.yaml", "--key-file", "k.key") == 0
    assert read_table(work / "out2.parquet")["email"].tolist() == out["email"].tolist()


def test_policy_failure_exits_1(work: Path) -> None:
    (work / "cfg.yaml").write_text(CONFIG.replace("\nk: 4", "\nk: 1"))
    assert _run("in.csv", "out.csv", "--config", "cfg.yaml", "--key-file", "k.key") == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"a,b\n1,2\n3,4,5\n", "line 3"),
        (b"a,b\n1,\xff\xfe\n", "line 2"),
    ],
)
def test_bad_csv_exit_2_no_output(
    work: Path, content: bytes, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "bad.csv").write_bytes(content)
    (work / "c.yaml").write_text("k: 1\n")
    assert _run("bad.csv", "out.csv", "--config", "c.yaml", "--key-file", "k.key") == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and needle in err
    assert not (work / "out.csv").exists()
    assert not list(work.glob(".out.csv.*"))


def test_unknown_qi_exit_2_names_it(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "cfg.yaml").write_text(CONFIG.replace("  postcode: postcode", "  zipcode: postcode"))
    assert _run("in.csv", "out.csv", "--config", "cfg.yaml", "--key-file", "k.key") == 2
    err = capsys.readouterr().err
    assert "'zipcode'" in err and "cfg.yaml:5" in err
    assert not (work / "out.csv").exists()


def test_missing_key_and_bad_config(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("in.csv", "out.csv", "--config", "cfg.yaml") == 2  # pseudonymisation needs a key
    assert not (work / "out.csv").exists()
    (work / "cfg.yaml").write_text("k: 0\n")
    assert _run("in.csv", "out.csv", "--config", "cfg.yaml", "--key-file", "k.key") == 2
    assert "`k` must be >= 1" in capsys.readouterr().err


def test_config_errors_name_key_and_line() -> None:
    with pytest.raises(ConfigError, match=r"columns\.x"):
        parse_anonymize_config("columns:\n  x: shred\n")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_anonymize_config("kk: 3\n")
    cfg = parse_anonymize_config(CONFIG)
    assert cfg.k == 4 and cfg.quasi_identifiers == {"age": "numeric", "postcode": "postcode"}


def test_unknown_encoding(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match="unknown encoding"):
        read_table(tmp_path / "t.csv", encoding="klingon-8")
    (tmp_path / "l.csv").write_bytes("name\nJosé\n".encode("latin-1"))
    assert read_table(tmp_path / "l.csv", encoding="latin-1")["name"].tolist() == ["José"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_csv_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "fuzz.csv"
    p.write_bytes(data)
    try:
        frame = read_table(p)
    except DataError:
        return
    assert isinstance(frame, pd.DataFrame)


def test_library_actions() -> None:
    from garrison.protect import KeyEncryptionKey, Pseudonymizer, anonymize_frame

    frame = pd.DataFrame(
        {
            "ref_code": ["c-1", "c-2", "c-1"],
            "internal": [1, 2, 3],
            "comment": ["write to ann@example.org please, thanks a lot"] * 3,
            "dob": ["1985-03-12", "1990-07-01", "1970-01-31"],
        }
    )
    cfg = parse_anonymize_config(
        "columns:\n  ref_code: pseudonymize\n  internal: suppress\n  comment: redact\n"
    )
    res = anonymize_frame(frame, cfg, Pseudonymizer(KeyEncryptionKey.from_text(generate_key())))
    out = res.frame
    assert "internal" not in out.columns
    assert out["ref_code"][0] == out["ref_code"][2] != out["ref_code"][1]
    assert out["ref_code"][0].startswith("VALUE_")
    assert out["comment"][0] == "write to <EMAIL> please, thanks a lot"
    assert out["dob"].tolist() == ["1985", "1990", "1970"]  # auto: a date of birth is cut to its year
    assert res.report["after"] is None and res.passed


def test_csv_codes_keep_leading_zeros(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("zip,age,phone\n01234,31,0161 496 0631\n75011,40,020123456\n")
    frame = read_table(tmp_path / "t.csv")
    assert frame["zip"].tolist() == ["01234", "75011"]
    assert frame["phone"].tolist()[1] == "020123456"
    assert frame["age"].tolist() == [31, 40]


def test_key_from_config_or_env(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (work / "c1.yaml").write_text("key:\n  file: k.key\n")
    assert _run("in.csv", "a.csv", "--config", "c1.yaml") == 0
    monkeypatch.setenv("PSEUDO_KEY", (work / "k.key").read_text())
    assert _run("in.csv", "b.csv", "--config", "c1.yaml", "--key-env", "PSEUDO_KEY") == 0
    a, b = pd.read_csv(work / "a.csv"), pd.read_csv(work / "b.csv")
    assert a["email"].tolist() == b["email"].tolist()  # the same key from a file or the environment
