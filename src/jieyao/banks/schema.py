"""The bank tables (SQLAlchemy Core), kept apart from the operations so a reader sees the whole schema at once.

Portable between SQLite and Postgres: no dialect types, timestamps are naive UTC `DateTime`, and a value that
is too long for a B-tree key (a vPDQ list of frames) is stored in `long_value` with its SHA-256 as `value`, so
the unique index stays small and Postgres' index-row limit is never hit. Signals are never deleted (only
disabled or withdrawn), so `generation` > g lists every change an index has not seen yet.
"""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
)

SCHEMA_VERSION = 1
"""Bump on any change to the tables; a store refuses a database whose version is newer than this."""

MAX_KEY_CHARS = 80
"""Values longer than this are keyed by `sha256:<hex>` (71 characters)."""

metadata = MetaData()
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite auto-increments only an INTEGER PRIMARY KEY

schema_state = Table(
    "schema_state", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("schema_version", Integer, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("created", DateTime, nullable=False),
)

banks = Table(
    "banks", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Column("updated", DateTime, nullable=False),
    CheckConstraint("kind IN ('positive', 'negative')", name="ck_banks_kind"),
)

signals = Table(
    "signals", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("bank_id", Integer, ForeignKey("banks.id", ondelete="CASCADE"), nullable=False),
    Column("signal_type", String(16), nullable=False),
    Column("value", String(MAX_KEY_CHARS), nullable=False),
    Column("long_value", Text),
    Column("quality", Integer),
    Column("source", String(200), nullable=False),
    Column("added", DateTime, nullable=False),
    Column("updated", DateTime, nullable=False),
    Column("note", Text),
    Column("tags", Text, nullable=False),  # JSON list of strings
    Column("enabled", Boolean, nullable=False),
    Column("withdrawn", Boolean, nullable=False),
    Column("generation", BigInteger, nullable=False),
    UniqueConstraint("signal_type", "value", "bank_id", name="uq_signals_value"),  # also serves exact lookup
    Index("ix_signals_generation", "generation"),
    Index("ix_signals_bank", "bank_id", "signal_type"),
)

withdrawals = Table(
    "withdrawals", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("signal_type", String(16), nullable=False),
    Column("value", String(MAX_KEY_CHARS), nullable=False),
    Column("source", String(200), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Index("ix_withdrawals_value", "signal_type", "value"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("bank", String(64)),
    Column("signal_type", String(16)),
    Column("value", String(MAX_KEY_CHARS)),
    Column("details", Text, nullable=False),  # JSON object
    Index("ix_audit_at", "at"),
)

TABLE_NAMES = frozenset(metadata.tables)

# Append-only: the database itself refuses to rewrite history, not just this code.
for _op in ("UPDATE", "DELETE"):
    event.listen(audit_log, "after_create", DDL(
        f"CREATE TRIGGER audit_log_no_{_op.lower()} BEFORE {_op} ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END").execute_if(dialect="sqlite"))
event.listen(audit_log, "after_create", DDL(
    "CREATE OR REPLACE FUNCTION jieyao_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$").execute_if(dialect="postgresql"))
event.listen(audit_log, "after_create", DDL(
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION jieyao_audit_append_only()").execute_if(dialect="postgresql"))
event.listen(audit_log, "after_create", DDL(  # TRUNCATE fires no row trigger
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION jieyao_audit_append_only()").execute_if(dialect="postgresql"))
