"""Hash banks in SQL: embedded SQLite by default, any SQLAlchemy URL (Postgres) when given one.

What HMA users ask for and this store does: a withdrawal stops matching in the same transaction that records
it, and a later import of the value from the same source does not bring it back (a tombstone per source);
negative banks (allow-lists the matcher uses to suppress a match); an append-only audit log the database
itself enforces; and a change counter, so an index catches up incrementally instead of rebuilding.

Every write transaction first bumps `schema_state.generation`: that is the change counter, and on Postgres
the row lock also serialises writers, so the check-then-insert of an import cannot race a withdrawal. On
SQLite, writes take the lock up front (`BEGIN IMMEDIATE`) and wait up to `BUSY_TIMEOUT_S` for it, retrying,
so two processes writing one file lose nothing; readers never block under WAL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, insert, inspect, select, update

from jieyao.banks.interop import MAX_SOURCE_CHARS, BadLine, SignalRecord, clean_text, make_record
from jieyao.banks.schema import (
    MAX_KEY_CHARS,
    SCHEMA_VERSION,
    TABLE_NAMES,
    audit_log,
    banks,
    metadata,
    schema_state,
    signals,
    withdrawals,
)
from jieyao.hashing.signals import SignalType, SignalValueError, normalise_value, parse_signal_type
from jieyao.sqlengine import (
    DatabaseOpenError,
    db_error,
    open_engine,
    transaction,
)

CHUNK = 5_000
"""Rows per executemany (and per IN (...) lookup) during an import."""
SCHEMA_LOCK_KEY = 0x6A69_6579_616F_0001
"""Postgres advisory lock (per database) held while creating the tables, so processes opening a new store at
once do not race to CREATE them."""
MAX_ERRORS_KEPT = 1_000
MANUAL_SOURCE = "manual"
_BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VALUE = func.coalesce(signals.c.long_value, signals.c.value)


class BankError(ValueError):
    """A bank operation that cannot be done (the message says why, in one line)."""


class BankKind(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    """An allow-list: a match here suppresses matches in positive banks (a public photo victims' hashes hit)."""


_KINDS = {k.value: k for k in BankKind}
_TYPES = {t.value: t for t in SignalType}


@dataclass(frozen=True)
class Bank:
    id: int
    name: str
    kind: BankKind
    enabled: bool
    description: str
    created: dt.datetime
    updated: dt.datetime


class ActiveSignal(NamedTuple):
    """One matchable signal with its provenance, as the matcher and an index need it."""

    id: int
    bank: str
    kind: BankKind
    signal_type: SignalType
    value: str
    quality: int | None
    source: str
    added: dt.datetime


@dataclass(frozen=True)
class Withdrawal:
    id: int
    signal_type: SignalType
    value: str
    """The value, or `sha256:<hex>` of it for a value longer than a key (vPDQ)."""
    source: str
    actor: str
    reason: str
    created: dt.datetime


@dataclass(frozen=True)
class WithdrawResult:
    signal_type: SignalType
    value: str
    sources: tuple[str, ...]
    """One tombstone each: an import from these sources will skip the value."""
    signals: int
    """Rows that stopped matching (0 for a pre-emptive withdrawal)."""
    banks: tuple[str, ...]


@dataclass
class ImportResult:
    added: int = 0
    """New rows, including `readded`."""
    duplicate: int = 0
    withdrawn_skipped: int = 0
    """Values this source withdrew before: not brought back."""
    readded: int = 0
    """Values another source withdrew, added again by this one (each in the audit log)."""
    withdrawn: int = 0
    """Withdrawal records applied (StopNCII Withdrawn/Deleted; withdrawn rows of our JSONL)."""
    bad: int = 0
    unsupported: int = 0
    committed: bool = True
    """False when `strict` rolled the import back because of bad lines."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line, why) of bad lines, the first MAX_ERRORS_KEPT."""
    unsupported_lines: list[tuple[int, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int | bool]:
        return {"added": self.added, "duplicate": self.duplicate, "withdrawn_skipped": self.withdrawn_skipped,
                "readded": self.readded, "withdrawn": self.withdrawn, "bad": self.bad,
                "unsupported": self.unsupported, "committed": self.committed}


@dataclass(frozen=True)
class Changes:
    """What changed after a generation: `added` are active now, `removed` are ids that no longer match.

    An id may be in `removed` without ever having been added to the reader's index, and re-reading the same
    range gives the same answer, so applying it twice is harmless."""

    generation: int
    added: list[ActiveSignal]
    removed: list[int]


@dataclass(frozen=True)
class BankStats:
    bank: str
    kind: BankKind
    enabled: bool
    by_type: dict[str, int]
    """Rows by signal type, withdrawn ones left out."""
    active: int
    disabled: int
    withdrawn: int
    last_change: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    bank: str | None
    signal_type: str | None
    value: str | None
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": _iso(self.at), "actor": self.actor, "action": self.action, "bank": self.bank,
                "signal_type": self.signal_type, "value": self.value, "details": self.details}


def default_actor() -> str:
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _aware(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC)


def _naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def _iso(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def value_key(value: str) -> tuple[str, str | None]:
    """(the indexed key, the full value when it is too long to be its own key)."""
    if len(value) <= MAX_KEY_CHARS:
        return value, None
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest(), value


def _bank_name(name: str) -> str:
    if not isinstance(name, str) or not _BANK_NAME.match(name):
        raise BankError(f"bank name {str(name)[:80]!r}: 1-64 letters, digits, '.', '_' or '-', starting with a "
                        "letter or digit")
    return name


def _text(value: object, what: str, limit: int, *, required: bool = False) -> str | None:
    try:
        text = clean_text(value, what, limit)
    except ValueError as exc:
        raise BankError(str(exc)) from None
    if required and not text:
        raise BankError(f"{what} is required")
    return text


def _signal(signal_type: SignalType | str, value: str) -> tuple[SignalType, str]:
    try:
        kind = signal_type if isinstance(signal_type, SignalType) else parse_signal_type(signal_type)
        return kind, normalise_value(kind, value)
    except SignalValueError as exc:
        raise BankError(str(exc)) from None


class _Write:
    """One write transaction: its connection, generation, time and actor, and the banks it touched."""

    def __init__(self, conn: Connection, generation: int, actor: str) -> None:
        self.conn, self.generation, self.actor, self.now = conn, generation, actor, _now()
        self._touched: set[int] = set()

    def touch(self, bank_id: int) -> None:
        if bank_id not in self._touched:
            self._touched.add(bank_id)
            self.conn.execute(update(banks).where(banks.c.id == bank_id).values(updated=self.now))

    def audit(self, action: str, *, bank: str | None = None, signal_type: str | None = None,
              value: str | None = None, **details: Any) -> None:
        self.conn.execute(insert(audit_log).values(
            at=self.now, actor=self.actor, action=action, bank=bank, signal_type=signal_type, value=value,
            details=json.dumps(details, sort_keys=True, ensure_ascii=False, default=str)))


class _Rollback(Exception):
    """Control flow: a strict import with bad lines leaves the transaction."""


class BankStore:
    """Banks of signals in one database. Open with `BankStore.open(path_or_url)`; close (or use `with`)."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._engine = engine
        self.url = url
        self._bulk: _Inserter | None = None

    # --- opening ------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, target: str | Path, *, create: bool = True) -> BankStore:
        """A plain path is a SQLite file (WAL, foreign keys, busy timeout); a URL (`postgresql+psycopg://...`)
        is used as given. `create=False` refuses to make a new database."""
        try:
            engine, url = open_engine(target, create=create, what="bank database")
        except DatabaseOpenError as exc:
            hint = " (create a bank first: jieyao bank create NAME)" if str(exc).startswith("no ") else ""
            raise BankError(f"{exc}{hint}") from None
        store = cls(engine, url)
        try:
            store._init_schema(create)
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> BankStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _init_schema(self, create: bool) -> None:
        with self._tx(write=False) as conn:
            if self._check_schema(conn):
                return
        if not create:
            raise BankError(f"{self.url} holds no bank store")
        with self._tx(write=True) as conn:
            if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE serialises this already
                conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
            if self._check_schema(conn):  # another process made it meanwhile
                return
            metadata.create_all(conn)
            conn.execute(insert(schema_state).values(id=1, schema_version=SCHEMA_VERSION, generation=0,
                                                     created=_now()))

    def _check_schema(self, conn: Connection) -> bool:
        names = set(inspect(conn).get_table_names())
        if "schema_state" not in names:
            ours = sorted(names & TABLE_NAMES)
            if ours:
                raise BankError(f"{self.url} has tables {', '.join(ours)} but no schema_state: not a jieyao bank "
                                "store, or a damaged one")
            return False
        version = conn.execute(select(schema_state.c.schema_version).where(schema_state.c.id == 1)).scalar()
        if version is None:
            raise BankError(f"{self.url}: schema_state is empty (a damaged bank store)")
        if version > SCHEMA_VERSION:
            raise BankError(f"{self.url} has bank schema version {version}, newer than this jieyao understands "
                            f"({SCHEMA_VERSION}); upgrade jieyao (nothing was changed)")
        return True

    # --- transactions -------------------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        with transaction(self._engine, write=write, wrap=lambda exc: BankError(f"{self.url}: {db_error(exc)}")) as conn:
            yield conn

    @contextmanager
    def _writing(self, actor: str | None) -> Iterator[_Write]:
        who = _text(actor or default_actor(), "actor", 200, required=True) or ""
        with self._tx(write=True) as conn:
            conn.execute(update(schema_state).where(schema_state.c.id == 1)
                         .values(generation=schema_state.c.generation + 1))
            generation = conn.execute(select(schema_state.c.generation).where(schema_state.c.id == 1)).scalar_one()
            yield _Write(conn, generation, who)

    # --- banks --------------------------------------------------------------------------------------------

    def create_bank(self, name: str, kind: BankKind | str = BankKind.POSITIVE, *, description: str = "",
                    actor: str | None = None) -> Bank:
        name = _bank_name(name)
        try:
            bank_kind = BankKind(kind)
        except ValueError:
            raise BankError(f"bank kind {str(kind)[:40]!r}: positive or negative") from None
        text = _text(description, "description", 1000) or ""
        with self._writing(actor) as w:
            if w.conn.execute(select(banks.c.id).where(banks.c.name == name)).first() is not None:
                raise BankError(f"a bank named {name!r} already exists")
            w.conn.execute(insert(banks).values(name=name, kind=bank_kind.value, enabled=True, description=text,
                                                created=w.now, updated=w.now))
            w.audit("create_bank", bank=name, kind=bank_kind.value, description=text)
        return self.get_bank(name)

    def get_bank(self, name: str) -> Bank:
        with self._tx(write=False) as conn:
            return _bank(_bank_row(conn, name))

    def list_banks(self) -> list[Bank]:
        with self._tx(write=False) as conn:
            return [_bank(r) for r in conn.execute(select(banks).order_by(banks.c.name))]

    def enable_bank(self, name: str, *, actor: str | None = None) -> bool:
        return self._set_bank_enabled(name, True, actor)

    def disable_bank(self, name: str, *, actor: str | None = None) -> bool:
        """Stops every signal of the bank matching at once (the rows stay; enable brings them back)."""
        return self._set_bank_enabled(name, False, actor)

    def _set_bank_enabled(self, name: str, enabled: bool, actor: str | None) -> bool:
        with self._writing(actor) as w:
            row = _bank_row(w.conn, name)
            if row.enabled == enabled:
                return False
            w.conn.execute(update(banks).where(banks.c.id == row.id).values(enabled=enabled, updated=w.now))
            w.conn.execute(update(signals).where(signals.c.bank_id == row.id).values(generation=w.generation))
            w.audit("enable_bank" if enabled else "disable_bank", bank=row.name)
        return True

    # --- signals ------------------------------------------------------------------------------------------

    def add_signal(self, bank: str, signal_type: SignalType | str, value: str, *, quality: int | None = None,
                   source: str = MANUAL_SOURCE, note: str | None = None, tags: Sequence[str] = (),
                   actor: str | None = None) -> int:
        """Add one signal; its id. Refused when the bank holds it already or this source withdrew it."""
        kind, _ = _signal(signal_type, value)
        try:
            rec = make_record(kind, value, quality=quality, note=note, tags=tags, source=source)
        except ValueError as exc:
            raise BankError(str(exc)) from None
        src = rec.source or MANUAL_SOURCE
        key, _long = value_key(rec.value)
        with self._writing(actor) as w:
            row = _bank_row(w.conn, bank)
            stones = _tombstones(w.conn, kind, [key])
            if src in stones.get(key, {}):
                when, reason = stones[key][src]
                raise BankError(f"{kind.value} {key[:16]}... was withdrawn from source {src!r} on "
                                f"{when:%Y-%m-%d} ({reason[:80]}); it is not added again from that source")
            existing = _existing(w.conn, row.id, kind, [key]).get(key)
            if existing is not None and not existing.withdrawn:
                raise BankError(f"bank {row.name!r} already holds {kind.value} {key[:16]}... (id {existing.id})")
            if existing is not None:
                signal_id = existing.id
                _revive(w, existing.id, rec, src)
            else:
                pk = w.conn.execute(insert(signals).values(_row(row.id, rec, src, w))).inserted_primary_key
                assert pk is not None
                signal_id = pk[0]
            w.touch(row.id)
            after = sorted(stones.get(key, {}))
            w.audit("readd" if after else "add", bank=row.name, signal_type=kind.value, value=key, source=src,
                    id=signal_id, **({"withdrawn_from": after} if after else {}))
        return int(signal_id)

    def enable_signal(self, bank: str, signal_type: SignalType | str, value: str, *,
                      actor: str | None = None) -> bool:
        return self._set_signal_enabled(bank, signal_type, value, True, actor)

    def disable_signal(self, bank: str, signal_type: SignalType | str, value: str, *,
                       actor: str | None = None) -> bool:
        return self._set_signal_enabled(bank, signal_type, value, False, actor)

    def _set_signal_enabled(self, bank: str, signal_type: SignalType | str, value: str, enabled: bool,
                            actor: str | None) -> bool:
        kind, canonical = _signal(signal_type, value)
        key, _ = value_key(canonical)
        with self._writing(actor) as w:
            row = _bank_row(w.conn, bank)
            existing = _existing(w.conn, row.id, kind, [key]).get(key)
            if existing is None:
                raise BankError(f"bank {row.name!r} holds no {kind.value} {key[:16]}...")
            if existing.withdrawn:
                raise BankError(f"{kind.value} {key[:16]}... in {row.name!r} was withdrawn; a withdrawal is not "
                                "undone by enabling")
            if existing.enabled == enabled:
                return False
            w.conn.execute(update(signals).where(signals.c.id == existing.id)
                           .values(enabled=enabled, updated=w.now, generation=w.generation))
            w.touch(row.id)
            w.audit("enable_signal" if enabled else "disable_signal", bank=row.name, signal_type=kind.value,
                    value=key, id=existing.id)
        return True

    # --- withdrawal ---------------------------------------------------------------------------------------

    def withdraw(self, signal_type: SignalType | str, value: str, *, reason: str, source: str | None = None,
                 actor: str | None = None) -> WithdrawResult:
        """Stop a value matching in every bank, now, and keep a tombstone so its source cannot re-add it.

        `source=None` withdraws it from every source that holds it (one tombstone each); a named source may
        be withdrawn pre-emptively, before anything from it was imported."""
        kind, canonical = _signal(signal_type, value)
        why = _text(reason, "reason", 1000, required=True) or ""
        src = _text(source, "source", MAX_SOURCE_CHARS)
        with self._writing(actor) as w:
            return _withdraw(w, kind, canonical, src, why, via="withdraw")

    def withdrawals(self, signal_type: SignalType | str | None = None, value: str | None = None) -> list[Withdrawal]:
        q = select(withdrawals).order_by(withdrawals.c.id)
        if signal_type is not None and value is not None:
            kind, canonical = _signal(signal_type, value)
            q = q.where(withdrawals.c.signal_type == kind.value, withdrawals.c.value == value_key(canonical)[0])
        with self._tx(write=False) as conn:
            return [Withdrawal(r.id, _TYPES[r.signal_type], r.value, r.source, r.actor, r.reason, _aware(r.created))
                    for r in conn.execute(q)]

    # --- import / export ----------------------------------------------------------------------------------

    def import_signals(self, bank: str, records: Iterable[SignalRecord | BadLine], *, source: str,
                       strict: bool = False, keep_record_source: bool = True, actor: str | None = None,
                       label: str | None = None) -> ImportResult:
        """Import records (as `interop.read_records` yields them) into a bank, in one transaction.

        Each record's source is its own when it has one and `keep_record_source`, else `source`. A value the
        source withdrew is skipped; a withdrawal record is applied. With `strict`, any bad line rolls the whole
        import back (unsupported types do not count as bad). An InteropError from the reader (the file is not
        of its format) rolls back too and is raised."""
        src = _text(source, "source", MAX_SOURCE_CHARS, required=True) or ""
        result = ImportResult()
        try:
            with self._writing(actor) as w:
                importer = _Importer(w, _bank_row(w.conn, bank), result, self._inserter())
                for item in records:
                    if isinstance(item, BadLine):
                        _count_bad(result, item)
                    elif item.withdrawn:
                        importer.withdraw(item, item.source if keep_record_source and item.source else src)
                    else:
                        importer.add(item, item.source if keep_record_source and item.source else src)
                importer.flush()
                if strict and result.bad:
                    raise _Rollback
                w.touch(importer.bank.id)
                w.audit("import", bank=importer.bank.name, source=src, label=label, strict=strict,
                        counts=result.counts())
        except _Rollback:
            result.committed = False
        return result

    def _inserter(self) -> _Inserter:
        if self._bulk is None:
            self._bulk = _Inserter(self._engine.dialect)
        return self._bulk

    def export(self, bank: str, *, include_disabled: bool = True, include_withdrawn: bool = False,
               signal_types: Iterable[SignalType | str] | None = None) -> Iterator[SignalRecord]:
        """The rows of a bank, oldest first, as records any `interop` writer takes."""
        bank_id = self.get_bank(bank).id
        q = (select(signals.c.signal_type, _VALUE.label("value"), signals.c.quality, signals.c.note,
                    signals.c.tags, signals.c.source, signals.c.added, signals.c.enabled, signals.c.withdrawn)
             .where(signals.c.bank_id == bank_id).order_by(signals.c.id))
        if not include_disabled:
            q = q.where(signals.c.enabled.is_(True))
        if not include_withdrawn:
            q = q.where(signals.c.withdrawn.is_(False))
        if signal_types is not None:
            q = q.where(signals.c.signal_type.in_(_type_names(signal_types)))
        return self._export_rows(q)

    def _export_rows(self, q: Any) -> Iterator[SignalRecord]:
        with self._tx(write=False) as conn:
            for r in conn.execution_options(yield_per=CHUNK).execute(q):
                yield SignalRecord(_TYPES[r.signal_type], r.value, r.quality, r.note, tuple(json.loads(r.tags)),
                                   r.source, _aware(r.added), bool(r.enabled), bool(r.withdrawn))

    # --- for the matcher ----------------------------------------------------------------------------------

    def iter_active(self, signal_types: Iterable[SignalType | str] | None = None) -> Iterator[ActiveSignal]:
        """Every signal that matches now: enabled, not withdrawn, in an enabled bank (negative banks too).

        To build an index: read `change_counter()` first, then this, then apply `changes_since(counter)`."""
        q = _active_query().where(_is_active())
        if signal_types is not None:
            q = q.where(signals.c.signal_type.in_(_type_names(signal_types)))
        with self._tx(write=False) as conn:
            for r in conn.execution_options(yield_per=CHUNK).execute(q.order_by(signals.c.id)):
                yield _active(r)

    def active_values(self, signal_type: SignalType | str, *, bank_names: Iterable[str] = (),
                      min_quality: int | None = None) -> Iterator[tuple[int, str]]:
        """(id, value) of every active signal of one type, optionally only in `banks` and at `min_quality` or
        better (unknown quality passes): what an index is built from, without the cost of provenance.
        `bank_names` empty means every enabled bank."""
        kind = SignalType(signal_type)
        q = (select(signals.c.id, _VALUE).join_from(signals, banks, signals.c.bank_id == banks.c.id)
             .where(_is_active(), signals.c.signal_type == kind.value))
        names = sorted(set(bank_names))
        if names:
            q = q.where(banks.c.name.in_(names))
        if min_quality is not None:
            q = q.where(signals.c.quality.is_(None) | (signals.c.quality >= min_quality))
        with self._tx(write=False) as conn:
            for r in conn.execution_options(yield_per=CHUNK).execute(q.order_by(signals.c.id)):
                yield int(r[0]), r[1]

    def active_by_id(self, ids: Iterable[int]) -> list[ActiveSignal]:
        """The rows among `ids` that match now, with their provenance: a matcher's index holds only ids, and
        asks for who added a hash only when the hash matched (keeps 10M hashes in memory small)."""
        wanted = sorted({int(i) for i in ids})
        out: list[ActiveSignal] = []
        with self._tx(write=False) as conn:
            for k in range(0, len(wanted), 900):  # under SQLite's bound-parameter limit
                q = _active_query().where(_is_active(), signals.c.id.in_(wanted[k:k + 900]))
                out.extend(_active(r) for r in conn.execute(q.order_by(signals.c.id)))
        return out

    def lookup_exact(self, signal_type: SignalType | str, value: str) -> list[ActiveSignal]:
        """Every active row holding exactly this value, positive and negative banks alike (by index)."""
        kind, canonical = _signal(signal_type, value)
        q = _active_query().where(_is_active(), signals.c.signal_type == kind.value,
                                  signals.c.value == value_key(canonical)[0])
        with self._tx(write=False) as conn:
            return [_active(r) for r in conn.execute(q.order_by(signals.c.id))]

    def change_counter(self) -> int:
        """Grows with every write transaction (so with every change that can affect matching)."""
        with self._tx(write=False) as conn:
            return int(conn.execute(select(schema_state.c.generation).where(schema_state.c.id == 1)).scalar_one())

    def changes_since(self, generation: int,
                      signal_types: Iterable[SignalType | str] | None = None) -> Changes:
        """Rows whose matching may have changed after `generation`, split into now-active and not."""
        q = _active_query().add_columns(_is_active().label("active")).where(signals.c.generation > generation)
        if signal_types is not None:
            q = q.where(signals.c.signal_type.in_(_type_names(signal_types)))
        with self._tx(write=False) as conn:
            now = int(conn.execute(select(schema_state.c.generation).where(schema_state.c.id == 1)).scalar_one())
            if generation > now:
                raise BankError(f"generation {generation} is ahead of this store ({now}): the index was built "
                                "from another database")
            added, removed = [], []
            for r in conn.execution_options(yield_per=CHUNK).execute(q.order_by(signals.c.id)):
                if r.active:
                    added.append(_active(r))
                else:
                    removed.append(int(r.id))
        return Changes(now, added, removed)

    # --- reporting ----------------------------------------------------------------------------------------

    def stats(self, bank: str | None = None) -> list[BankStats]:
        with self._tx(write=False) as conn:
            rows: list[Any] = [_bank_row(conn, bank)] if bank is not None else []
            if bank is None:
                rows.extend(conn.execute(select(banks).order_by(banks.c.name)))
            keys = (signals.c.bank_id, signals.c.signal_type, signals.c.enabled, signals.c.withdrawn)
            q: Any = select(*keys, func.count().label("n"), func.max(signals.c.updated).label("last")).group_by(*keys)
            if bank is not None:
                q = q.where(signals.c.bank_id == rows[0].id)
            groups: dict[int, list[Any]] = {}
            for g in conn.execute(q):
                groups.setdefault(g.bank_id, []).append(g)
        out = []
        for b in rows:
            by_type: dict[str, int] = {}
            active = disabled = withdrawn = 0
            last = b.updated
            for g in groups.get(b.id, ()):
                last = max(last, g.last)
                if g.withdrawn:
                    withdrawn += g.n
                    continue
                by_type[g.signal_type] = by_type.get(g.signal_type, 0) + g.n
                if g.enabled:
                    active += g.n
                else:
                    disabled += g.n
            out.append(BankStats(b.name, _KINDS[b.kind], bool(b.enabled), dict(sorted(by_type.items())), active,
                                 disabled, withdrawn, _aware(last)))
        return out

    def audit(self, *, since: dt.datetime | None = None, bank: str | None = None,
              limit: int | None = None) -> Iterator[AuditEntry]:
        """The audit log, oldest first."""
        q = select(audit_log).order_by(audit_log.c.id)
        if since is not None:
            q = q.where(audit_log.c.at >= _naive(since))
        if bank is not None:
            q = q.where(audit_log.c.bank == bank)
        if limit is not None:
            q = q.limit(limit)
        return self._audit_rows(q)

    def _audit_rows(self, q: Any) -> Iterator[AuditEntry]:
        with self._tx(write=False) as conn:
            for r in conn.execution_options(yield_per=CHUNK).execute(q):
                yield AuditEntry(r.id, _aware(r.at), r.actor, r.action, r.bank, r.signal_type, r.value,
                                 json.loads(r.details))


# --- helpers ----------------------------------------------------------------------------------------------

def _bank_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(banks).where(banks.c.name == name)).first()
    if row is None:
        names = list(conn.execute(select(banks.c.name).order_by(banks.c.name).limit(11)).scalars())
        known = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "none yet"
        raise BankError(f"no bank named {str(name)[:80]!r} (banks: {known})")
    return row


def _bank(r: Any) -> Bank:
    return Bank(r.id, r.name, _KINDS[r.kind], bool(r.enabled), r.description, _aware(r.created), _aware(r.updated))


def _type_names(signal_types: Iterable[SignalType | str]) -> list[str]:
    try:
        return [(t if isinstance(t, SignalType) else parse_signal_type(t)).value for t in signal_types]
    except SignalValueError as exc:
        raise BankError(str(exc)) from None


def _active_query() -> Any:
    return (select(signals.c.id, banks.c.name, banks.c.kind, signals.c.signal_type, _VALUE.label("value"),
                   signals.c.quality, signals.c.source, signals.c.added)
            .join_from(signals, banks, signals.c.bank_id == banks.c.id))


def _is_active() -> Any:
    return signals.c.enabled.is_(True) & signals.c.withdrawn.is_(False) & banks.c.enabled.is_(True)


def _active(r: Any) -> ActiveSignal:
    return ActiveSignal(int(r.id), r.name, _KINDS[r.kind], _TYPES[r.signal_type], r.value, r.quality, r.source,
                        _aware(r.added))


def _tombstones(conn: Connection, kind: SignalType, keys: list[str]) -> dict[str, dict[str, tuple[dt.datetime, str]]]:
    """key → {source: (when, reason)} of the withdrawals of these values."""
    out: dict[str, dict[str, tuple[dt.datetime, str]]] = {}
    q = (select(withdrawals.c.value, withdrawals.c.source, withdrawals.c.created, withdrawals.c.reason)
         .where(withdrawals.c.signal_type == kind.value, withdrawals.c.value.in_(keys)))
    for r in conn.execute(q):
        out.setdefault(r.value, {})[r.source] = (r.created, r.reason)
    return out


class _Existing(NamedTuple):
    id: int
    source: str
    enabled: bool
    withdrawn: bool


def _existing(conn: Connection, bank_id: int, kind: SignalType, keys: list[str]) -> dict[str, _Existing]:
    q = (select(signals.c.value, signals.c.id, signals.c.source, signals.c.enabled, signals.c.withdrawn)
         .where(signals.c.signal_type == kind.value, signals.c.value.in_(keys), signals.c.bank_id == bank_id))
    return {r.value: _Existing(r.id, r.source, bool(r.enabled), bool(r.withdrawn)) for r in conn.execute(q)}


_BULK_COLUMNS = ("bank_id", "signal_type", "value", "long_value", "quality", "source", "added", "updated", "note",
                 "tags", "enabled", "withdrawn", "generation")
TOMBSTONES_IN_MEMORY = 200_000
"""An import keeps a type's tombstones in a dict when there are at most this many, else asks per chunk."""


def _row(bank_id: int, rec: SignalRecord, source: str, w: _Write) -> dict[str, Any]:
    key, long_value = value_key(rec.value)
    return {"bank_id": bank_id, "signal_type": rec.signal_type.value, "value": key, "long_value": long_value,
            "quality": rec.quality, "source": source, "added": _naive(rec.added) if rec.added else w.now,
            "updated": w.now, "note": rec.note, "tags": json.dumps(list(rec.tags), ensure_ascii=False),
            "enabled": rec.enabled, "withdrawn": False, "generation": w.generation}


def _revive(w: _Write, signal_id: int, rec: SignalRecord, source: str) -> None:
    """A row another source withdrew, listed again by this one: it matches again, with the new provenance."""
    row = _row(0, rec, source, w)
    for k in ("bank_id", "signal_type", "value", "long_value"):
        del row[k]
    w.conn.execute(update(signals).where(signals.c.id == signal_id).values(**row))


def _count_bad(result: ImportResult, item: BadLine) -> None:
    if item.unsupported:
        result.unsupported += 1
        if len(result.unsupported_lines) < MAX_ERRORS_KEPT:
            result.unsupported_lines.append((item.line, item.why))
    else:
        result.bad += 1
        if len(result.errors) < MAX_ERRORS_KEPT:
            result.errors.append((item.line, item.why))


class _Inserter:
    """The signals INSERT compiled once, run as a DBAPI executemany of plain tuples.

    SQLAlchemy's per-row parameter processing costs about three times what SQLite spends inserting, so bulk
    imports convert values with the column types' own bind processors (once per distinct value where they
    repeat) and skip it. On SQLite and Postgres the statement is ON CONFLICT DO NOTHING, so a duplicate costs
    nothing extra and is counted from the row count."""

    def __init__(self, dialect: Any) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        self.ignores_conflicts = dialect.name in ("sqlite", "postgresql")
        stmt: Any = insert(signals)
        if dialect.name == "sqlite":
            stmt = sqlite.insert(signals).on_conflict_do_nothing()
        elif dialect.name == "postgresql":
            stmt = postgresql.insert(signals).on_conflict_do_nothing()
        compiled = stmt.compile(dialect=dialect, column_keys=list(_BULK_COLUMNS))
        self.sql = str(compiled)
        names = list(compiled.positiontup or ()) if compiled.positional else None
        order = [_BULK_COLUMNS.index(n) for n in names] if names is not None else None
        self._order = None if order == list(range(len(_BULK_COLUMNS))) else order
        self._named = names is None
        self._procs = {c: signals.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in _BULK_COLUMNS}

    def convert(self, column: str, value: Any) -> Any:
        proc = self._procs[column]
        return value if proc is None or value is None else proc(value)

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> int:
        """Insert; how many rows were new (len(rows) where the driver does not say)."""
        params: list[Any] = rows
        if self._named:
            params = [dict(zip(_BULK_COLUMNS, r, strict=True)) for r in rows]
        elif self._order is not None:
            params = [tuple(r[i] for i in self._order) for r in rows]
        res = conn.exec_driver_sql(self.sql, params)
        return res.rowcount if res.rowcount is not None and res.rowcount >= 0 else len(rows)


class _Importer:
    """An import in progress: records wait in chunks of CHUNK, checked against tombstones, then bulk-inserted."""

    def __init__(self, w: _Write, bank: Any, result: ImportResult, inserter: _Inserter) -> None:
        self.w, self.bank, self.result, self.ins = w, bank, result, inserter
        self.pending: list[tuple[SignalRecord, str]] = []
        self._stones: dict[SignalType, dict[str, dict[str, Any]] | None] = {}
        c = inserter.convert
        self._now, self._true, self._false = c("added", w.now), c("enabled", True), c("enabled", False)

    def add(self, rec: SignalRecord, source: str) -> None:
        self.pending.append((rec, source))
        if len(self.pending) >= CHUNK:
            self.flush()

    def withdraw(self, rec: SignalRecord, source: str) -> None:
        self.flush()
        _withdraw(self.w, rec.signal_type, rec.value, source, rec.note or f"withdrawn by {source}", via="import")
        cached = self._stones.get(rec.signal_type)
        if cached is not None:
            cached.setdefault(value_key(rec.value)[0], {})[source] = None
        self.result.withdrawn += 1

    def _tombstones(self, kind: SignalType, keys: list[str]) -> dict[str, dict[str, Any]]:
        if kind not in self._stones:
            n = self.w.conn.execute(select(func.count()).select_from(withdrawals)
                                    .where(withdrawals.c.signal_type == kind.value)).scalar_one()
            self._stones[kind] = _all_tombstones(self.w.conn, kind) if n <= TOMBSTONES_IN_MEMORY else None
        cached = self._stones[kind]
        if cached is None:
            return dict(_tombstones(self.w.conn, kind, keys))
        return {k: cached[k] for k in keys if k in cached}

    def flush(self) -> None:
        by_type: dict[SignalType, list[tuple[SignalRecord, str, str, str | None]]] = {}
        for rec, src in self.pending:
            by_type.setdefault(rec.signal_type, []).append((rec, src, *value_key(rec.value)))
        self.pending = []
        for kind, items in by_type.items():
            self._flush_type(kind, items)

    def _flush_type(self, kind: SignalType, items: list[tuple[SignalRecord, str, str, str | None]]) -> None:
        result, seen = self.result, set()
        stones = self._tombstones(kind, list(dict.fromkeys(key for _, _, key, _ in items)))
        fast: list[tuple[Any, ...]] = []
        slow: list[tuple[SignalRecord, str, str]] = []
        for rec, src, key, long_value in items:
            if key in seen:
                result.duplicate += 1
                continue
            seen.add(key)
            if src in stones.get(key, ()):
                result.withdrawn_skipped += 1
            elif key in stones or not self.ins.ignores_conflicts:
                slow.append((rec, src, key))
            else:
                fast.append(self._tuple(kind, rec, src, key, long_value))
        if fast:
            new = self.ins.run(self.w.conn, fast)
            result.added += new
            result.duplicate += len(fast) - new
        if slow:
            self._slow(kind, slow, stones)

    def _tuple(self, kind: SignalType, rec: SignalRecord, src: str, key: str,
               long_value: str | None) -> tuple[Any, ...]:
        added = self.ins.convert("added", _naive(rec.added)) if rec.added else self._now
        tags = json.dumps(list(rec.tags), ensure_ascii=False) if rec.tags else "[]"
        return (self.bank.id, kind.value, key, long_value, rec.quality, src, added, self._now, rec.note, tags,
                self._true if rec.enabled else self._false, self._false, self.w.generation)

    def _slow(self, kind: SignalType, items: list[tuple[SignalRecord, str, str]],
              stones: dict[str, dict[str, Any]]) -> None:
        """Values some other source withdrew (or a dialect without ON CONFLICT): row by row, each audited."""
        w, result = self.w, self.result
        existing = _existing(w.conn, self.bank.id, kind, [key for _, _, key in items])
        for rec, src, key in items:
            old = existing.get(key)
            if old is not None and not old.withdrawn:
                result.duplicate += 1
                continue
            if key in stones or old is not None:
                w.audit("readd", bank=self.bank.name, signal_type=kind.value, value=key, source=src,
                        withdrawn_from=sorted(stones.get(key, ())), via="import")
                result.readded += 1
            if old is not None:
                _revive(w, old.id, rec, src)
            else:
                w.conn.execute(insert(signals).values(_row(self.bank.id, rec, src, w)))
            result.added += 1


def _all_tombstones(conn: Connection, kind: SignalType) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    q = select(withdrawals.c.value, withdrawals.c.source).where(withdrawals.c.signal_type == kind.value)
    for r in conn.execute(q):
        out.setdefault(r.value, {})[r.source] = None
    return out


def _withdraw(w: _Write, kind: SignalType, canonical: str, source: str | None, reason: str,
              via: str) -> WithdrawResult:
    key, _ = value_key(canonical)
    q = (select(signals.c.id, signals.c.source, signals.c.bank_id, banks.c.name)
         .join_from(signals, banks, signals.c.bank_id == banks.c.id)
         .where(signals.c.signal_type == kind.value, signals.c.value == key, signals.c.withdrawn.is_(False)))
    if source is not None:
        q = q.where(signals.c.source == source)
    rows = list(w.conn.execute(q))
    sources = (source,) if source is not None else tuple(sorted({r.source for r in rows}))
    if not sources:
        raise BankError(f"no bank holds {kind.value} {key[:16]}...; name a --source to withdraw it from that "
                        "source before it is imported")
    w.conn.execute(insert(withdrawals), [{"signal_type": kind.value, "value": key, "source": s, "actor": w.actor,
                                          "reason": reason, "created": w.now} for s in sources])
    if rows:
        w.conn.execute(update(signals).where(signals.c.id.in_([r.id for r in rows]))
                       .values(withdrawn=True, updated=w.now, generation=w.generation))
        for r in rows:
            w.touch(r.bank_id)
    names = tuple(sorted({r.name for r in rows}))
    w.audit("withdraw", signal_type=kind.value, value=key, sources=list(sources), reason=reason, signals=len(rows),
            banks=list(names), via=via)
    return WithdrawResult(kind, key, sources, len(rows), names)
