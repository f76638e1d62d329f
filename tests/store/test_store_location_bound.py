"""A finding's location is kept whole in the report but bounded in the findings table: PostgreSQL refuses index
entries over 2704 bytes, and a crafted archive member name must not make an audit unrecordable."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from hypothesis import given
from hypothesis import strategies as st
from test_store_paging import make_finding, make_report

from garrison.store import Store
from garrison.store.store import MAX_LOCATION_BYTES, bounded_location


@given(st.text(max_size=3000))
def test_a_bounded_location_fits_and_is_a_prefix(location: str) -> None:
    bounded = bounded_location(location)
    assert bounded is not None
    assert len(bounded.encode("utf-8", "surrogatepass")) <= MAX_LOCATION_BYTES
    if len(location.encode("utf-8", "surrogatepass")) <= MAX_LOCATION_BYTES:
        assert bounded == location
    else:
        assert bounded.endswith("…")
        assert location.startswith(bounded[:-1])
        # the longest prefix that fits: one more character would not
        longer = location[: len(bounded)] + "…"
        assert len(longer.encode("utf-8", "surrogatepass")) > MAX_LOCATION_BYTES


def test_no_location_stays_none() -> None:
    assert bounded_location(None) is None


def test_an_audit_with_an_8_kb_location_is_recorded_and_listed(store: Store) -> None:
    long = "model.zip!" + secrets.token_hex(4000) + "/é" * 200
    finding = dataclasses.replace(make_finding(3, "crafted"), location=long)
    report = make_report(
        [finding], model="crafted", project="p", started=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    store.record_audit(report)
    (listed,) = store.list_findings(model_name="crafted")
    assert listed.fingerprint == finding.fingerprint
    assert listed.location == bounded_location(long)
    assert long.startswith(listed.location[:-1])
