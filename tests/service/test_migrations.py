"""The Alembic migrations and schema.py agree (on SQLite and Postgres), the bank store's tables beside them are
left alone, and a database from a newer jieyao is refused untouched."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from jieyao.service.db import SchemaError, ServiceDB
from jieyao.service.schema import TABLE_NAMES, VERSION_TABLE, metadata


def _diff(db: ServiceDB) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={
            "version_table": VERSION_TABLE,
            "include_object": lambda obj, name, type_, reflected, compare_to:
                type_ != "table" or bool(name and name.startswith("svc_"))})
        return compare_metadata(mc, metadata)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "svc.db")
    return request.getfixturevalue("pg_url")


def test_migrated_schema_matches_the_tables_in_code(database):
    db = ServiceDB(database)
    try:
        assert db.upgrade() == db.head_revision()
        assert _diff(db) == []
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLE_NAMES
        assert db.upgrade() == db.head_revision()  # idempotent
    finally:
        db.close()


def test_bank_tables_share_the_database_untouched(tmp_path):
    from jieyao.banks.store import BankStore

    path = tmp_path / "both.db"
    with BankStore.open(path) as store:
        store.create_bank("known")
    db = ServiceDB(str(path))
    try:
        db.upgrade()
        assert _diff(db) == []
    finally:
        db.close()
    with BankStore.open(path, create=False) as store:
        assert [b.name for b in store.list_banks()] == ["known"]


def test_a_newer_schema_is_refused_and_left_alone(tmp_path):
    db = ServiceDB(str(tmp_path / "svc.db"))
    try:
        db.upgrade()
        with db.tx(write=True) as conn:
            conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")  # noqa: S608
        with pytest.raises(SchemaError, match="9999"):
            db.upgrade()
        assert db.current_revision() == "9999"
    finally:
        db.close()


def test_service_tables_without_a_version_are_a_clear_error(tmp_path):
    db = ServiceDB(str(tmp_path / "svc.db"))
    try:
        with db.tx(write=True) as conn:
            conn.exec_driver_sql("CREATE TABLE svc_cases (id INTEGER PRIMARY KEY)")
        with pytest.raises(SchemaError, match="damaged or foreign"):
            db.upgrade()
    finally:
        db.close()
