"""The service's tables (SQLAlchemy Core). All are named `svc_*`, so they can share a database with the hash
banks (whose tables the bank store manages itself). Alembic migrations in `migrations/` create and evolve
them; `tests/service/test_migrations.py` fails when this file and the migrations disagree.

JSON columns hold the engines' own output (verdict and moderation JSON) exactly as the API returned it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Integer primary keys that autoincrement on SQLite (INTEGER) and Postgres (BIGINT)
Id = BigInteger().with_variant(Integer(), "sqlite")

api_keys = Table(
    "svc_api_keys", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in lists so a key can be recognised, not used
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the whole key
    Column("rate_per_minute", Integer, nullable=True),  # None: the configured default
    Column("created", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked", DateTime(timezone=True), nullable=True),
)

jobs = Table(
    "svc_jobs", metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(20), nullable=False),  # "scan"
    Column("status", String(20), nullable=False),  # queued | running | done | failed | cancelled
    Column("params", JSON, nullable=False),
    Column("submitted_by", String(200), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("started", DateTime(timezone=True), nullable=True),
    Column("finished", DateTime(timezone=True), nullable=True),
    Column("heartbeat", DateTime(timezone=True), nullable=True),
    Column("owner", String(100), nullable=True),  # the process (host:pid:token) running it
    Column("attempts", Integer, nullable=False, default=0),
    Column("targets_done", Integer, nullable=False, default=0),
    Column("summary", JSON, nullable=False),  # decision -> count, errors, bytes
    Column("error", Text, nullable=True),
    Index("ix_svc_jobs_status_created", "status", "created"),
)

job_results = Table(
    "svc_job_results", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", String(36), ForeignKey("svc_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("path", Text, nullable=False),
    Column("decision", String(10), nullable=False),
    Column("result", JSON, nullable=False),
    Column("case_id", Id, nullable=True),
    UniqueConstraint("job_id", "seq"),
    Index("ix_svc_job_results_job_path", "job_id", "path"),
)

cases = Table(
    "svc_cases", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # file | listing
    Column("status", String(20), nullable=False),  # open | confirmed | overturned
    Column("verdict", String(10), nullable=False),  # the engine's decision: block | review
    Column("severity", Integer, nullable=False),  # 2 block, 1 review: the queue sorts on it, then on age
    Column("score", Float, nullable=False),
    Column("subject", Text, nullable=False),  # file name or listing id, for lists
    Column("target", JSON, nullable=False),  # identity: hashes and size, or the listing's id and text
    Column("result", JSON, nullable=False),  # the verdict or moderation JSON as returned
    Column("versions", JSON, nullable=False),  # engine, rule pack, lexicon and rule files
    Column("source", String(100), nullable=False),  # scan | moderate | job:<id>
    Column("submitted_by", String(200), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("decided", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("actions", JSON, nullable=True),  # what the decision did (bank additions, webhooks queued)
    Column("version", Integer, nullable=False, default=1),  # bumped by every change: optimistic concurrency
    Column("fingerprint", String(64), nullable=True),  # SHA-256 of the subject (dedupe of open cases)
    Index("ix_svc_cases_queue", "status", "severity", "created"),
    Index("ix_svc_cases_fingerprint", "fingerprint"),
)

audit = Table(
    "svc_audit", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(60), nullable=False),
    Column("subject_type", String(30), nullable=True),
    Column("subject_id", String(100), nullable=True),
    Column("reason", Text, nullable=True),
    Column("details", JSON, nullable=False),
    Index("ix_svc_audit_subject", "subject_type", "subject_id"),
)
"""Append-only: the migration adds triggers that refuse UPDATE and DELETE (and TRUNCATE on Postgres)."""

webhook_deliveries = Table(
    "svc_webhook_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event", String(60), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes signed and sent (UTF-8 JSON)
    Column("status", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True), nullable=True),
    Index("ix_svc_webhook_deliveries_due", "status", "next_attempt"),
)

TABLE_NAMES = frozenset(metadata.tables)
VERSION_TABLE = "svc_alembic_version"
