"""The service database: open (SQLite file or URL), migrate with Alembic, and run transactions that wait for
locks and turn database trouble into one clear error the API answers with 503.

Reads and writes go through `tx(write=...)`: SQLite writers take the lock up front (BEGIN IMMEDIATE) and
wait for it, retrying; a read-only file or a lost server becomes `StoreUnavailable`, never a stack trace."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from jieyao.service.schema import TABLE_NAMES, VERSION_TABLE
from jieyao.sqlengine import (
    WRITE_OPTION,
    DatabaseOpenError,
    db_error,
    is_read_only,
    open_engine,
    transaction,
)

MIGRATION_LOCK_KEY = 0x6A69_6579_616F_0002
"""Postgres advisory lock held while migrating, so two service processes starting at once do not race."""
MIGRATIONS = Path(__file__).parent / "migrations"


class StoreUnavailable(RuntimeError):
    """The database cannot do what was asked now (read-only, unreachable, locked too long)."""


class SchemaError(RuntimeError):
    """The database holds a schema this jieyao cannot use (newer, or foreign)."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(when: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if when is None:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def iso(when: dt.datetime | None) -> str | None:
    w = aware(when)
    return None if w is None else w.isoformat().replace("+00:00", "Z")


class ServiceDB:
    def __init__(self, target: str | Path, *, create: bool = True) -> None:
        if "://" not in str(target) and create:
            Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine
            self.engine, self.url = open_engine(target, create=create, what="service database",
                                                pool_pre_ping="://" in str(target))
        except DatabaseOpenError as exc:
            raise StoreUnavailable(str(exc)) from None
        self.dialect = self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # --- schema ---------------------------------------------------------------------------------------------

    def _alembic_config(self, conn: Connection) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        return cfg

    def head_revision(self) -> str:
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            head = ScriptDirectory.from_config(self._alembic_config(conn)).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        with self.tx(write=False) as conn:
            if VERSION_TABLE not in inspect(conn).get_table_names():
                return None
            return conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()  # noqa: S608

    def upgrade(self) -> str:
        """Bring the schema to the newest revision; returns it. A database at a revision this jieyao does not
        know (made by a newer one) is refused, not touched."""
        from alembic import command
        from alembic.script import ScriptDirectory

        current = self.current_revision()
        with self.engine.connect() as probe:
            script = ScriptDirectory.from_config(self._alembic_config(probe))
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise SchemaError(f"{self.url} is at service schema revision {current}, which this jieyao does not know "
                              "(made by a newer version?); nothing was changed")
        head = script.get_current_head()
        assert head is not None
        if current == head:
            return head
        if current is None:
            with self.tx(write=False) as conn:
                ours = sorted(set(inspect(conn).get_table_names()) & TABLE_NAMES)
            if ours:
                raise SchemaError(f"{self.url} has service tables ({', '.join(ours)}) but no {VERSION_TABLE}: "
                                  "a damaged or foreign database")
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    if self.dialect == "postgresql":
                        conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
                    command.upgrade(self._alembic_config(conn), "head")
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"{self.url}: cannot migrate the service schema: {db_error(exc)}") from None
        return head

    # --- transactions ---------------------------------------------------------------------------------------

    @contextmanager
    def tx(self, *, write: bool) -> Iterator[Connection]:
        with transaction(self.engine, write=write, wrap=self._unavailable) as conn:
            yield conn

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        if is_read_only(exc):
            return StoreUnavailable(f"the service database is read-only ({self.url}): {db_error(exc)}")
        return StoreUnavailable(f"service database error ({self.url}): {db_error(exc)}")

    def ping(self) -> str | None:
        """None when a read works, else why not."""
        try:
            with self.tx(write=False) as conn:
                conn.exec_driver_sql("SELECT 1")
        except StoreUnavailable as exc:
            return str(exc)
        return None

    def writable(self) -> str | None:
        """None when the database takes writes, else why not. A real probe (a header write rolled back), so a
        0444 file, a read-only mount, `mode=ro` and a Postgres standby are all caught, root or not."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin() as trans:
                    if self.dialect == "sqlite":
                        version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
                        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")
                    elif self.dialect == "postgresql" and \
                            conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on":
                        trans.rollback()
                        return f"the service database is read-only (a standby?): {self.url}"
                    trans.rollback()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            if is_read_only(exc):
                return f"the service database is read-only: {self.url} ({db_error(exc)})"
            raise self._unavailable(exc) from None
        return None
