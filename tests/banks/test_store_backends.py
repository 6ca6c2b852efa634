"""The bank store on both backends: the SQLite suite's behaviour tests re-run against a real Postgres server,
and what touches the database itself (the append-only trigger, schema versions, two processes writing, the
matcher following changes) run over SQLite and Postgres alike.

The Postgres server is the session's throwaway one (`pg.py`); without server binaries these tests skip, or
fail under JIEYAO_REQUIRE_POSTGRES=1."""

from __future__ import annotations

import hashlib
import inspect
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_matcher
import test_store
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from jieyao.banks.interop import SignalRecord
from jieyao.banks.matcher import Matcher
from jieyao.banks.schema import SCHEMA_VERSION
from jieyao.banks.store import BankError, BankKind, BankStore
from jieyao.cli import main
from jieyao.hashing.signals import SignalType

BACKENDS = ["sqlite", "postgres"]


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def _cases(module: Any, allowed: set[str]) -> list[str]:
    """The module's unparametrised tests whose only fixtures are in `allowed` (and that take `store`)."""
    out = []
    for name, fn in vars(module).items():
        if not name.startswith("test_") or not callable(fn) or getattr(fn, "pytestmark", None):
            continue
        params = set(inspect.signature(fn).parameters)
        if "store" in params and params <= allowed:
            out.append(name)
    return out


STORE_CASES = _cases(test_store, {"store"})
MATCHER_CASES = _cases(test_matcher, {"store", "tmp_path"})


# --- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file path, or the URL of a fresh Postgres database."""
    if request.param == "sqlite":
        return str(tmp_path / "banks.sqlite")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def raw(target: str) -> Iterator[Callable[[], Engine]]:
    """A plain SQLAlchemy engine on the same database, bypassing the store (for what the store never does)."""
    engines: list[Engine] = []

    def make() -> Engine:
        engines.append(create_engine(target if "://" in target else f"sqlite:///{target}"))
        return engines[-1]

    yield make
    for e in engines:
        e.dispose()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[BankStore]:
    with BankStore.open(pg_url) as s:
        yield s


# --- the SQLite suite, over Postgres ----------------------------------------------------------------------

@pytest.mark.parametrize("case", STORE_CASES)
def test_store_suite_on_postgres(case: str, pg_store: BankStore) -> None:
    getattr(test_store, case)(pg_store)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "é", "a\x00b"])
def test_bad_bank_names_on_postgres(pg_store: BankStore, name: str) -> None:
    test_store.test_bad_bank_names_are_refused(pg_store, name)


@pytest.mark.parametrize(("kwargs", "why"), [({"note": "a\x00b"}, "control character"),
                                             ({"source": "s\nx"}, "control character"),
                                             ({"actor": "a\x00"}, "control character")])
def test_hostile_fields_on_postgres(pg_store: BankStore, kwargs: dict[str, object], why: str) -> None:
    test_store.test_hostile_fields_are_refused(pg_store, kwargs, why)


def test_reopening_a_postgres_store_keeps_everything(pg_url: str) -> None:
    test_store.test_reopening_keeps_everything(pg_url)  # a URL where a path goes


@pytest.mark.parametrize("case", MATCHER_CASES)
def test_matcher_suite_on_postgres(case: str, pg_store: BankStore, tmp_path: Path) -> None:
    pg_store.create_bank("ncii")
    pg_store.create_bank("public-photos", "negative")
    fn = getattr(test_matcher, case)
    kwargs = {"store": pg_store, "tmp_path": tmp_path}
    fn(**{k: kwargs[k] for k in inspect.signature(fn).parameters})


# --- both backends ----------------------------------------------------------------------------------------

def test_behaviour_matches_across_backends(target: str) -> None:
    """One script of every kind of write, and what the matcher's API sees after each."""
    with BankStore.open(target) as s:
        s.create_bank("ncii")
        s.create_bank("allow", BankKind.NEGATIVE)
        with pytest.raises(BankError, match="already exists"):
            s.create_bank("ncii")
        r = s.import_signals("ncii", [SignalRecord(SignalType.PDQ, pdq(i)) for i in range(5)], source="feed")
        assert (r.added, r.duplicate) == (5, 0)
        r = s.import_signals("ncii", [SignalRecord(SignalType.PDQ, pdq(i)) for i in range(3, 7)], source="feed")
        assert (r.added, r.duplicate) == (2, 2)  # the duplicates are counted from the driver's row count
        s.add_signal("allow", "pdq", pdq(0))
        g = s.change_counter()
        s.withdraw("pdq", pdq(1), reason="victim withdrew", source="feed")
        s.disable_signal("ncii", "pdq", pdq(2))
        ch = s.changes_since(g)
        assert ch.added == [] and len(ch.removed) == 2 and ch.generation == s.change_counter()
        again = s.import_signals("ncii", [SignalRecord(SignalType.PDQ, pdq(1))], source="feed")
        assert (again.added, again.withdrawn_skipped) == (0, 1)
        assert {h.kind for h in s.lookup_exact("pdq", pdq(0))} == {BankKind.POSITIVE, BankKind.NEGATIVE}
        assert s.lookup_exact("pdq", pdq(1)) == [] and s.lookup_exact("pdq", pdq(2)) == []
        [stats, _] = sorted(s.stats(), key=lambda b: b.bank != "ncii")
        assert (stats.active, stats.disabled, stats.withdrawn) == (5, 1, 1)
        a = next(iter(s.iter_active()))
        assert a.added.tzinfo is not None and s.get_bank("ncii").enabled is True
        assert [e.action for e in s.audit()] == ["create_bank", "create_bank", "import", "import", "add",
                                                 "withdraw", "disable_signal", "import"]


def test_the_audit_log_refuses_update_and_delete(target: str, raw: Callable[[], Engine]) -> None:
    with BankStore.open(target) as s:
        s.create_bank("a", actor="alice")
    engine = raw()
    statements = ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")  # bypasses row triggers: refused by a statement trigger
    for sql in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with BankStore.open(target) as s:
        assert [(e.actor, e.action) for e in s.audit()] == [("alice", "create_bank")]
        s.create_bank("b")  # and appending still works
        assert len(list(s.audit())) == 2


def test_refuses_a_newer_schema_version(target: str, raw: Callable[[], Engine]) -> None:
    BankStore.open(target).close()
    with raw().begin() as conn:
        conn.execute(text("UPDATE schema_state SET schema_version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(BankError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        BankStore.open(target)
    with raw().begin() as conn:
        assert conn.execute(text("SELECT schema_version FROM schema_state")).scalar_one() == SCHEMA_VERSION + 1


def test_refuses_foreign_tables(target: str, raw: Callable[[], Engine]) -> None:
    with raw().begin() as conn:
        conn.execute(text("CREATE TABLE signals (x INTEGER)"))
    with pytest.raises(BankError, match="not a jieyao bank store"):
        BankStore.open(target)


@pytest.mark.parametrize("mode", ["add", "import"])
def test_two_processes_writing_lose_nothing(target: str, mode: str) -> None:
    test_store.test_two_processes_writing_one_file_lose_nothing(target, mode)  # a URL where a path goes


def _open_and_add(target: str, worker: int) -> None:
    with BankStore.open(target) as s:
        try:
            s.create_bank("shared")
        except BankError as exc:
            assert "already exists" in str(exc)
        s.add_signal("shared", "pdq", pdq(worker), source=f"w{worker}")


def test_processes_creating_a_new_store_at_once(target: str) -> None:
    """Several processes opening one empty database: one creates the schema, none fails."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_open_and_add, args=(target, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    with BankStore.open(target, create=False) as s:
        assert sorted(a.value for a in s.iter_active()) == sorted(pdq(w) for w in range(4))


def test_matcher_follows_add_and_withdraw(target: str) -> None:
    with BankStore.open(target) as s:
        s.create_bank("ncii")
        s.create_bank("allow", BankKind.NEGATIVE)
        m = Matcher(s)
        assert not m.match_signal("pdq", pdq(1)).matched
        s.add_signal("ncii", "pdq", pdq(1), quality=90, source="stopncii")
        s.add_signal("ncii", "sha256", pdq(2), source="stopncii")
        [hit] = m.match_signal("pdq", pdq(1)).matches
        assert (hit.bank, hit.source, hit.distance) == ("ncii", "stopncii", 0)
        assert m.match_signal("sha256", pdq(2)).matched
        s.withdraw("pdq", pdq(1), reason="victim withdrew")
        assert not m.match_signal("pdq", pdq(1)).matched  # at once, on the next call
        s.add_signal("allow", "sha256", pdq(2))
        assert not m.match_signal("sha256", pdq(2)).matched  # suppressed by the negative bank
        assert Matcher(s).match_signal("pdq", pdq(1)).matches == []


# --- Postgres only ----------------------------------------------------------------------------------------

def test_the_bank_cli_takes_a_postgres_url(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bank", "--db", pg_url, "create", "ncii"]) == 0
    assert main(["bank", "--db", pg_url, "add", "ncii", "pdq", pdq(1), "--source", "helpline"]) == 0
    assert main(["bank", "--db", pg_url, "create", "ncii"]) != 0
    assert "already exists" in capsys.readouterr().err
    assert main(["bank", "stats", "--db", pg_url, "-f", "jsonl"]) == 0
    assert '"active": 1' in capsys.readouterr().out


def test_postgres_errors_are_bank_errors(pg_server: Any, pg_url: str) -> None:
    with pytest.raises(BankError, match="does not exist"):
        BankStore.open(pg_server.url("no_such_database"))
    with pytest.raises(BankError, match="holds no bank store"):
        BankStore.open(pg_url, create=False)


def test_postgres_column_types(pg_store: BankStore, pg_url: str) -> None:
    """Booleans are booleans, ids are bigints, values fit their index (long vPDQ goes to long_value)."""
    pg_store.create_bank("v")
    pg_store.add_signal("v", "vpdq", test_store.vpdq(2000))
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            types = {r.column_name: r.data_type for r in conn.execute(text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'signals'"))}
            key, long_len = conn.execute(text("SELECT value, length(long_value) FROM signals")).one()
    finally:
        engine.dispose()
    assert types["enabled"] == "boolean" and types["id"] == "bigint"
    assert types["added"] == "timestamp without time zone"  # naive UTC, as on SQLite
    assert key.startswith("sha256:") and long_len == len(test_store.vpdq(2000))
