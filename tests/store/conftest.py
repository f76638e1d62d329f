"""Backends for the store tests: every test taking ``store_url`` runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``GARRISON_TEST_PG_URL`` (start one with ``scripts/postgres-for-tests.sh``). Without it the
PostgreSQL cases are skipped, except under ``CI=true``, where they fail: CI must not skip them silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from garrison.store import Store

PG_ENV = "GARRISON_TEST_PG_URL"


def _pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    hint = f"{PG_ENV} is not set (start PostgreSQL with: export {PG_ENV}=$(scripts/postgres-for-tests.sh))"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{hint}; CI=true, so the PostgreSQL tests may not be skipped")
    pytest.skip(hint)


def _reset_postgres(url: str) -> None:
    """Drop everything of earlier tests: each test starts from an empty database, as on SQLite."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store')}/.garrison/garrison.db"
    url = _pg_url()
    _reset_postgres(url)
    return url


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL URL, for tests that only make sense there."""
    return _pg_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as s:
        yield s
