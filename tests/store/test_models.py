"""The ORM models and the shipped migrations describe the same schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from garrison.core import StoreError
from garrison.store import Store, default_url, migration
from garrison.store.models import Base

TABLES = {
    "alembic_version",
    "api_keys",
    "audit_log",
    "audits",
    "events",
    "findings",
    "incident_updates",
    "incidents",
    "model_versions",
    "triage_entries",
    "triage_events",
    "ui_sessions",
    "users",
}


def test_migrated_schema_equals_the_orm_metadata(store_url: str) -> None:
    Store.open(store_url).close()
    engine = create_engine(store_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(conn).get_table_names()) == TABLES
        assert migration.current_revision(engine) == migration.head_revision()
    finally:
        engine.dispose()


def test_indexes_on_fingerprint_project_and_model_name(store_url: str) -> None:
    Store.open(store_url).close()
    engine = create_engine(store_url, poolclass=NullPool)
    try:
        insp = inspect(engine)
        indexed = {t: {tuple(i["column_names"]) for i in insp.get_indexes(t)} for t in ("findings", "audits")}
    finally:
        engine.dispose()
    assert {("fingerprint",), ("project",), ("model_name",)} <= indexed["findings"]
    assert {("project",), ("model_name",)} <= indexed["audits"]


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    Store.open(url).close()
    engine = create_engine(url, poolclass=NullPool)
    try:
        config = migration.alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert migration.current_revision(engine) is None
        migration.upgrade(engine)
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_a_schema_newer_than_this_garrison_is_a_store_error(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    Store.open(url).close()
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match=r"cannot migrate the store .*9999"):
        Store.open(url)
