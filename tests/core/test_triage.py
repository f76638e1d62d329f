from __future__ import annotations

import datetime as dt

import pytest

from garrison.core import (
    ConfigError,
    Triage,
    TriageEntry,
    TriageStatus,
    load_triage,
    parse_triage,
    save_triage,
)


def test_round_trip_and_atomic_write(tmp_path) -> None:
    path = tmp_path / ".garrison" / "triage.yaml"
    triage = Triage.empty().with_entry(
        TriageEntry(
            "abc123", TriageStatus.ACCEPTED_RISK, "compensating control", "alice", dt.date(2027, 1, 31)
        )
    )
    triage = triage.with_entry(TriageEntry("def456", TriageStatus.FALSE_POSITIVE, reason="test data"))
    save_triage(triage, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["triage.yaml"]  # no temp file left behind
    loaded = load_triage(path)
    assert loaded.get("abc123") == triage.get("abc123")
    assert loaded.get("def456").status is TriageStatus.FALSE_POSITIVE
    assert "Commit this file" in path.read_text()


def test_missing_file_is_empty(tmp_path) -> None:
    assert len(load_triage(tmp_path / "none.yaml")) == 0


def test_accepted_risk_needs_reason_owner_expiry() -> None:
    with pytest.raises(ConfigError) as info:
        parse_triage("findings:\n  abc:\n    status: accepted-risk\n    reason: r\n", path="t.yaml")
    assert info.value.key == "findings.abc.owner"
    assert info.value.line == 2
    with pytest.raises(ConfigError):
        Triage.empty().with_entry(TriageEntry("x", TriageStatus.ACCEPTED_RISK, reason="r"))


def test_bad_status_and_date_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        parse_triage("findings:\n  abc:\n    status: ignored\n", path="t.yaml")
    assert info.value.key == "findings.abc.status"
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_triage(
            "findings:\n  abc: {status: accepted-risk, reason: r, owner: o, expires: soon}\n", path="t.yaml"
        )


def test_yaml_dates_are_accepted() -> None:
    t = parse_triage("findings:\n  abc: {status: accepted-risk, reason: r, owner: o, expires: 2027-02-01}\n")
    entry = t.get("abc")
    assert entry is not None and entry.expires == dt.date(2027, 2, 1)
    assert entry.is_expired(dt.date(2027, 2, 2)) and not entry.is_expired(dt.date(2027, 2, 1))
