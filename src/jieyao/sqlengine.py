"""SQLAlchemy engines the bank store and the service share: a plain path is a SQLite file (WAL, foreign keys,
busy timeout, writes that take the lock up front), anything with `://` is a URL used as given (Postgres).

Kept in one place so both stores wait for locks, report database errors and treat a read-only file the same."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

BUSY_TIMEOUT_S = 60.0
CACHE_KIB = 64 * 1024
"""SQLite page cache per connection: random 64-hex keys touch the whole index, and the default 2 MiB thrashes."""
WRITE_OPTION = "jieyao_write"
"""Execution option a connection carries when its transaction will write (SQLite then begins IMMEDIATE)."""
LOCK_RETRIES = 8


class DatabaseOpenError(ValueError):
    """The target is not a usable database (bad URL, missing file or directory, driver not installed)."""


def open_engine(target: str | Path, *, create: bool, what: str = "database",
                busy_timeout_s: float = BUSY_TIMEOUT_S, **engine_kwargs: Any) -> tuple[Engine, str]:
    """The engine and how to show it (password hidden). `create=False` refuses a SQLite file that does not
    exist yet, so a typo is an error rather than a new empty database."""
    text = str(target)
    if "://" in text:
        try:
            url = make_url(text)
        except ArgumentError as exc:
            raise DatabaseOpenError(f"not a database URL: {exc}") from None
        shown = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" and not create:
            file = url.database.removeprefix("file:") if url.query.get("uri") == "true" else url.database
            if not Path(file).is_file():
                raise DatabaseOpenError(f"no {what} at {file}")
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            raise DatabaseOpenError(f"{path} is a directory, not a {what} file")
        if not path.parent.is_dir():
            raise DatabaseOpenError(f"{path.parent} does not exist (the {what}'s directory)")
        if not create and not path.is_file():
            raise DatabaseOpenError(f"no {what} at {path}")
        url = URL.create("sqlite", database=str(path.resolve()))
        shown = str(path)
    sqlite = url.get_backend_name() == "sqlite"
    try:
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s} if sqlite else {}, **engine_kwargs)
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise DatabaseOpenError(f"cannot use {shown}: {exc} (is its database driver installed?)") from None
    if sqlite:
        memory = url.database in (None, "", ":memory:")
        event.listen(engine, "connect", lambda dbapi, _rec: sqlite_connect(dbapi, memory, busy_timeout_s))
        event.listen(engine, "begin", sqlite_begin)
    return engine, shown


@contextmanager
def transaction(engine: Engine, *, write: bool,
                wrap: Callable[[BaseException], Exception]) -> Iterator[Connection]:
    """One transaction: begun (retrying with back-off while the database is locked beyond its busy timeout),
    committed when the block ends, rolled back on any error. Database errors leave as `wrap(exc)`, the
    caller's own error type, with no stack of SQL."""
    delay = 0.05
    conn: Connection | None = None
    for attempt in range(LOCK_RETRIES):
        try:
            conn = engine.connect().execution_options(**{WRITE_OPTION: write})
            trans = conn.begin()
            break
        except (SQLAlchemyError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
                conn = None
            if isinstance(exc, OperationalError) and is_locked(exc) and attempt < LOCK_RETRIES - 1:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            raise wrap(exc) from None
    assert conn is not None
    try:
        yield conn
        trans.commit()
    except (SQLAlchemyError, sqlite3.Error) as exc:
        quiet_rollback(trans)
        raise wrap(exc) from None
    except BaseException:
        quiet_rollback(trans)
        raise
    finally:
        conn.close()


def sqlite_connect(dbapi: Any, memory: bool, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
    dbapi.isolation_level = None  # transactions are begun by sqlite_begin, not by the driver
    cur = dbapi.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not memory:
            with suppress(sqlite3.OperationalError):  # a read-only file cannot switch; reads still work
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across crashes, not power loss
        cur.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    finally:
        cur.close()


def sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a deferred reader that later writes could fail with
    # SQLITE_BUSY at once (no waiting) when another writer committed in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")


def quiet_rollback(trans: Any) -> None:
    with suppress(SQLAlchemyError, sqlite3.Error):
        trans.rollback()


def db_error(exc: BaseException) -> str:
    """The first line of the driver's message, bounded: enough to act on, no stack of SQL."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return (lines[0] if lines else type(orig).__name__)[:300]


def is_locked(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text


def is_read_only(exc: BaseException) -> bool:
    """SQLite's 'attempt to write a readonly database' (and its cousins), or Postgres' read-only transaction."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "readonly" in text or "read-only" in text or "read only" in text
