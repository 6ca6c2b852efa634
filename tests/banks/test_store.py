"""BankStore: banks, signals, negative banks, withdrawal that sticks, the audit log, the matcher's API,
schema versions, hostile values and two processes writing one SQLite file."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from jieyao.banks.interop import BadLine, SignalRecord, read_records
from jieyao.banks.schema import SCHEMA_VERSION, metadata
from jieyao.banks.store import CHUNK, BankError, BankKind, BankStore, value_key
from jieyao.hashing.signals import SignalType


def pdq(n: int) -> str:
    return hashlib.sha256(f"pdq-{n}".encode()).hexdigest()


def sha(n: int) -> str:
    return hashlib.sha256(f"file-{n}".encode()).hexdigest()


def vpdq(frames: int) -> str:
    return ",".join(f"{pdq(i)}:{50 + i % 50}:{i * 1.0:.3f}" for i in range(frames))


def records(*values: str, kind: SignalType = SignalType.PDQ) -> list[SignalRecord]:
    return [SignalRecord(kind, v) for v in values]


def active_values(store: BankStore) -> set[tuple[str, str]]:
    return {(a.bank, a.value) for a in store.iter_active()}


# --- banks ------------------------------------------------------------------------------------------------

def test_create_and_list_banks(store: BankStore) -> None:
    store.create_bank("ncii", description="victim-submitted")
    store.create_bank("public-photos", BankKind.NEGATIVE)
    banks = store.list_banks()
    assert [(b.name, b.kind, b.enabled) for b in banks] == [("ncii", BankKind.POSITIVE, True),
                                                             ("public-photos", BankKind.NEGATIVE, True)]
    assert banks[0].description == "victim-submitted"
    assert banks[0].created.tzinfo is not None


def test_duplicate_bank_name_is_a_clear_error(store: BankStore) -> None:
    store.create_bank("ncii")
    with pytest.raises(BankError, match="a bank named 'ncii' already exists"):
        store.create_bank("ncii", BankKind.NEGATIVE)
    assert len(store.list_banks()) == 1


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 65, "é", "a\x00b", "a\nb"])
def test_bad_bank_names_are_refused(store: BankStore, name: str) -> None:
    with pytest.raises(BankError, match="bank name"):
        store.create_bank(name)


def test_unknown_bank_names_the_known_ones(store: BankStore) -> None:
    store.create_bank("ncii")
    with pytest.raises(BankError, match=r"no bank named 'nope' \(banks: ncii\)"):
        store.add_signal("nope", "pdq", pdq(1))


# --- signals and the matcher's view ----------------------------------------------------------------------

def test_add_signal_is_canonical_and_found_by_exact_lookup(store: BankStore) -> None:
    store.create_bank("ncii")
    sid = store.add_signal("ncii", "ImagePDQ", pdq(1).upper(), quality=88, source="helpline", note="case 7",
                           tags=["case:7"])
    [hit] = store.lookup_exact("pdq", "  " + pdq(1) + "\n")
    assert hit.id == sid and hit.value == pdq(1) and hit.quality == 88 and hit.source == "helpline"
    assert hit.bank == "ncii" and hit.kind is BankKind.POSITIVE and hit.signal_type is SignalType.PDQ
    assert store.lookup_exact("pdq", pdq(2)) == []
    assert store.lookup_exact("sha256", pdq(1)) == []  # same hex, other type
    with pytest.raises(BankError, match="already holds"):
        store.add_signal("ncii", "pdq", pdq(1))
    with pytest.raises(BankError, match="64 hex digits"):
        store.add_signal("ncii", "pdq", "xyz")
    with pytest.raises(BankError, match="unknown signal type"):
        store.add_signal("ncii", "photodna", pdq(1))


def test_negative_bank_rows_come_back_with_kind_negative(store: BankStore) -> None:
    store.create_bank("ncii")
    store.create_bank("allow", BankKind.NEGATIVE)
    store.add_signal("ncii", "pdq", pdq(1))
    store.add_signal("allow", "pdq", pdq(1))
    hits = store.lookup_exact("pdq", pdq(1))
    assert sorted((h.bank, h.kind) for h in hits) == [("allow", BankKind.NEGATIVE), ("ncii", BankKind.POSITIVE)]
    assert {a.kind for a in store.iter_active()} == {BankKind.NEGATIVE, BankKind.POSITIVE}


def test_disabled_bank_and_disabled_signal_do_not_match(store: BankStore) -> None:
    store.create_bank("a")
    store.create_bank("b")
    store.add_signal("a", "pdq", pdq(1))
    store.add_signal("b", "pdq", pdq(2))
    assert store.disable_bank("a") and not store.disable_bank("a")
    assert active_values(store) == {("b", pdq(2))}
    assert store.lookup_exact("pdq", pdq(1)) == []
    assert store.disable_signal("b", "pdq", pdq(2))
    assert active_values(store) == set()
    assert store.enable_bank("a") and store.enable_signal("b", "pdq", pdq(2))
    assert active_values(store) == {("a", pdq(1)), ("b", pdq(2))}
    with pytest.raises(BankError, match="holds no pdq"):
        store.disable_signal("b", "pdq", pdq(3))


def test_iter_active_filters_by_type(store: BankStore) -> None:
    store.create_bank("a")
    store.add_signal("a", "pdq", pdq(1))
    store.add_signal("a", "sha256", sha(1))
    assert {s.signal_type for s in store.iter_active(["sha256"])} == {SignalType.SHA256}
    assert len(list(store.iter_active())) == 2


def test_change_counter_and_changes_since_are_incremental(store: BankStore) -> None:
    store.create_bank("a")
    g0 = store.change_counter()
    ids = [store.add_signal("a", "pdq", pdq(i)) for i in range(3)]
    g1 = store.change_counter()
    assert g1 > g0
    ch = store.changes_since(g0)
    assert ch.generation == g1 and [s.id for s in ch.added] == ids and ch.removed == []
    assert store.changes_since(g1).added == [] and store.changes_since(g1).removed == []
    store.disable_signal("a", "pdq", pdq(0))
    store.withdraw("pdq", pdq(1), reason="victim withdrew")
    ch = store.changes_since(g1)
    assert ch.added == [] and sorted(ch.removed) == ids[:2]
    g2 = ch.generation
    store.disable_bank("a")
    assert sorted(store.changes_since(g2).removed) == ids
    g3 = store.change_counter()
    store.enable_bank("a")
    assert [s.id for s in store.changes_since(g3).added] == [ids[2]]  # disabled and withdrawn stay out
    assert [s.id for s in store.changes_since(g3, ["sha256"]).added] == []
    with pytest.raises(BankError, match="ahead of this store"):
        store.changes_since(g3 + 1000)


# --- withdrawal -------------------------------------------------------------------------------------------

def test_withdrawal_stops_matching_at_once_and_survives_reimport(store: BankStore) -> None:
    store.create_bank("ncii")
    text = f"pdq {pdq(1)}\npdq {pdq(2)}\n"
    r = store.import_signals("ncii", read_records(io.StringIO(text), "tx"), source="stopncii")
    assert r.added == 2
    g = store.change_counter()
    w = store.withdraw("pdq", pdq(1), source="stopncii", reason="victim withdrew", actor="helpline-7")
    assert w.signals == 1 and w.sources == ("stopncii",) and w.banks == ("ncii",)
    assert store.lookup_exact("pdq", pdq(1)) == []
    assert active_values(store) == {("ncii", pdq(2))}
    assert len(store.changes_since(g).removed) == 1
    again = store.import_signals("ncii", read_records(io.StringIO(text), "tx"), source="stopncii")
    assert (again.added, again.withdrawn_skipped, again.duplicate) == (0, 1, 1)
    assert store.lookup_exact("pdq", pdq(1)) == []
    with pytest.raises(BankError, match="withdrawn from source 'stopncii'"):
        store.add_signal("ncii", "pdq", pdq(1), source="stopncii")
    with pytest.raises(BankError, match="withdrawal is not undone"):
        store.enable_signal("ncii", "pdq", pdq(1))
    [tomb] = store.withdrawals("pdq", pdq(1))
    assert (tomb.source, tomb.actor, tomb.reason) == ("stopncii", "helpline-7", "victim withdrew")
    actions = [e.action for e in store.audit()]
    assert actions.count("withdraw") == 1 and actions.count("import") == 2


def test_another_source_may_add_a_withdrawn_value_and_that_is_recorded(store: BankStore) -> None:
    store.create_bank("ncii")
    store.add_signal("ncii", "pdq", pdq(1), source="stopncii")
    store.withdraw("pdq", pdq(1), reason="withdrawn by victim")
    r = store.import_signals("ncii", records(pdq(1)), source="platform-review")
    assert (r.added, r.readded) == (1, 1)
    [hit] = store.lookup_exact("pdq", pdq(1))
    assert hit.source == "platform-review"
    readd = [e for e in store.audit() if e.action == "readd"]
    assert len(readd) == 1 and readd[0].details["withdrawn_from"] == ["stopncii"]
    # and the original source still cannot bring it back anywhere
    store.create_bank("other")
    assert store.import_signals("other", records(pdq(1)), source="stopncii").withdrawn_skipped == 1


def test_withdraw_without_source_covers_every_source_holding_it(store: BankStore) -> None:
    store.create_bank("a")
    store.create_bank("b", BankKind.NEGATIVE)
    store.add_signal("a", "pdq", pdq(1), source="s1")
    store.add_signal("b", "pdq", pdq(1), source="s2")
    w = store.withdraw("pdq", pdq(1), reason="r")
    assert w.sources == ("s1", "s2") and w.signals == 2 and w.banks == ("a", "b")
    assert store.lookup_exact("pdq", pdq(1)) == []
    for src in ("s1", "s2"):
        assert store.import_signals("a", records(pdq(1)), source=src).withdrawn_skipped == 1
    with pytest.raises(BankError, match="no bank holds"):
        store.withdraw("pdq", pdq(9), reason="r")
    with pytest.raises(BankError, match="reason is required"):
        store.withdraw("pdq", pdq(1), reason="  ")


def test_preemptive_withdrawal_from_a_source(store: BankStore) -> None:
    store.create_bank("a")
    w = store.withdraw("pdq", pdq(5), source="feed", reason="withdrawn before we fetched it")
    assert w.signals == 0
    r = store.import_signals("a", records(pdq(5), pdq(6)), source="feed")
    assert (r.added, r.withdrawn_skipped) == (1, 1)


def test_withdrawal_records_in_an_import_are_applied_in_order(store: BankStore) -> None:
    store.create_bank("a")
    items = [SignalRecord(SignalType.PDQ, pdq(1)), SignalRecord(SignalType.PDQ, pdq(1), withdrawn=True, note="gone"),
             SignalRecord(SignalType.PDQ, pdq(1)), SignalRecord(SignalType.PDQ, pdq(2))]
    r = store.import_signals("a", items, source="feed")
    assert (r.added, r.withdrawn, r.withdrawn_skipped) == (2, 1, 1)
    assert active_values(store) == {("a", pdq(2))}
    assert store.withdrawals()[0].reason == "gone"


# --- imports ----------------------------------------------------------------------------------------------

def test_import_counts_and_bad_lines_with_numbers(store: BankStore) -> None:
    store.create_bank("a")
    store.add_signal("a", "pdq", pdq(0), source="feed")
    text = "\n".join([f"pdq {pdq(0)}", f"pdq {pdq(1)}", "pdq 1234", f"pdq {pdq(1)}", "tmk_pdqf abc",
                      "nonsense", f"sha256 {sha(1)}"]) + "\n"
    r = store.import_signals("a", read_records(io.StringIO(text), "tx"), source="feed")
    assert (r.added, r.duplicate, r.bad, r.unsupported) == (2, 2, 2, 1)
    assert [line for line, _ in r.errors] == [3, 6] and r.unsupported_lines[0][0] == 5
    assert "64 hex digits" in r.errors[0][1]
    assert r.committed


def test_strict_import_is_all_or_nothing(store: BankStore) -> None:
    store.create_bank("a")
    g = store.change_counter()
    items: list[SignalRecord | BadLine] = [*records(pdq(1), pdq(2)), BadLine(3, "broken")]
    r = store.import_signals("a", items, source="feed", strict=True)
    assert not r.committed and r.bad == 1
    assert list(store.iter_active()) == [] and store.change_counter() == g
    assert [e.action for e in store.audit()] == ["create_bank"]
    ok = store.import_signals("a", [*records(pdq(1)), BadLine(2, "VideoTMK", unsupported=True)], source="feed",
                              strict=True)
    assert ok.committed and ok.added == 1 and ok.unsupported == 1  # unsupported types are not malformed lines


def test_a_reader_error_mid_import_rolls_everything_back(store: BankStore) -> None:
    store.create_bank("a")
    text = "[" + ",".join(f'{{"signalType": "ImagePDQ", "hashValue": "{pdq(i)}"}}' for i in range(3)) + ", {bad"
    with pytest.raises(ValueError, match="invalid JSON"):
        store.import_signals("a", read_records(io.StringIO(text), "stopncii"), source="stopncii")
    assert list(store.iter_active()) == []


def test_import_over_many_chunks_keeps_record_sources(store: BankStore) -> None:
    store.create_bank("a")
    n = CHUNK * 2 + 17
    items = [SignalRecord(SignalType.PDQ, pdq(i), source="theirs" if i % 2 else None) for i in range(n)]
    r = store.import_signals("a", items + items[:10], source="mine")
    assert (r.added, r.duplicate) == (n, 10)
    sources = {a.source for a in store.iter_active()}
    assert sources == {"theirs", "mine"}
    r = store.import_signals("a", items[:5], source="override", keep_record_source=False)
    assert r.duplicate == 5


def test_stats_per_bank(store: BankStore) -> None:
    store.create_bank("a")
    store.create_bank("b", BankKind.NEGATIVE)
    for i in range(3):
        store.add_signal("a", "pdq", pdq(i))
    store.add_signal("a", "sha256", sha(1))
    store.disable_signal("a", "pdq", pdq(0))
    store.withdraw("pdq", pdq(1), reason="r")
    a, b = store.stats()
    assert (a.bank, a.by_type, a.active, a.disabled, a.withdrawn) == ("a", {"pdq": 2, "sha256": 1}, 2, 1, 1)
    assert (b.bank, b.kind, b.active, b.by_type) == ("b", BankKind.NEGATIVE, 0, {})
    assert a.last_change >= b.last_change
    assert [s.bank for s in store.stats("b")] == ["b"]


def test_long_vpdq_values_are_keyed_by_digest_and_kept_whole(store: BankStore) -> None:
    store.create_bank("videos")
    value = vpdq(500)
    key, long_value = value_key(value)
    assert key.startswith("sha256:") and long_value == value
    store.add_signal("videos", "vpdq", value)
    [hit] = store.lookup_exact("vpdq", value)
    assert hit.value == value
    [row] = list(store.export("videos"))
    assert row.value == value
    store.withdraw("vpdq", value, reason="r")
    assert store.lookup_exact("vpdq", value) == []


# --- hostile values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "why"), [
    ({"note": "a\x00b"}, "control character"),
    ({"note": "x" * 5000}, "longer than"),
    ({"source": "s\nx"}, "control character"),
    ({"tags": ["t"] * 1 + [f"t{i}" for i in range(40)]}, "more than 32 tags"),
    ({"tags": ["x" * 500]}, "longer than"),
    ({"quality": 101}, "quality"),
    ({"actor": "a\x00"}, "control character"),
])
def test_hostile_fields_are_refused(store: BankStore, kwargs: dict[str, object], why: str) -> None:
    store.create_bank("a")
    with pytest.raises(BankError, match=why):
        store.add_signal("a", "pdq", pdq(1), **kwargs)  # type: ignore[arg-type]
    assert list(store.iter_active()) == []


def test_a_ten_megabyte_line_is_a_bounded_error(store: BankStore) -> None:
    store.create_bank("a")
    text = f"pdq {pdq(1)}\npdq {'a' * 10_000_000}\npdq {pdq(2)}\x00\npdq {pdq(3)}\n"
    started = time.monotonic()
    r = store.import_signals("a", read_records(io.StringIO(text), "tx"), source="feed")
    assert time.monotonic() - started < 5
    assert r.added == 2 and [line for line, _ in r.errors] == [2, 3]
    assert "longer than" in r.errors[0][1]


# --- the database -----------------------------------------------------------------------------------------

def test_the_audit_log_is_append_only_in_the_database(store: BankStore, db_path: Path) -> None:
    store.create_bank("a")
    con = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE audit_log SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM audit_log")
    finally:
        con.close()
    assert [e.actor for e in store.audit()] != ["someone else"]


def test_audit_listing_filters(store: BankStore) -> None:
    store.create_bank("a", actor="alice")
    store.create_bank("b", actor="bob")
    entries = list(store.audit())
    assert [(e.actor, e.bank) for e in entries] == [("alice", "a"), ("bob", "b")]
    assert [e.bank for e in store.audit(bank="b")] == ["b"]
    assert list(store.audit(since=entries[-1].at + dt.timedelta(seconds=1))) == []
    assert len(list(store.audit(limit=1))) == 1
    assert entries[0].to_json()["at"].endswith("Z")


def test_sqlite_pragmas(store: BankStore, db_path: Path) -> None:
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_refuses_a_newer_schema_version(db_path: Path) -> None:
    BankStore.open(db_path).close()
    con = sqlite3.connect(db_path)
    with con:
        con.execute("UPDATE schema_state SET schema_version = ?", (SCHEMA_VERSION + 1,))
    con.close()
    with pytest.raises(BankError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        BankStore.open(db_path)


def test_refuses_files_that_are_not_bank_stores(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(5000))
    with pytest.raises(BankError, match="not a database"):
        BankStore.open(junk)
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE signals (x)")
    con.close()
    with pytest.raises(BankError, match="not a jieyao bank store"):
        BankStore.open(foreign)
    with pytest.raises(BankError, match="no bank database"):
        BankStore.open(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(BankError, match="is a directory"):
        BankStore.open(tmp_path)
    with pytest.raises(BankError, match="does not exist"):
        BankStore.open(tmp_path / "no" / "such" / "dir.sqlite")
    with pytest.raises(BankError, match="cannot use"):
        BankStore.open("nosuchdialect://x/y")


def test_reopening_keeps_everything(db_path: Path) -> None:
    with BankStore.open(db_path) as s:
        s.create_bank("a")
        s.add_signal("a", "pdq", pdq(1))
        g = s.change_counter()
    with BankStore.open(db_path, create=False) as s:
        assert [a.value for a in s.iter_active()] == [pdq(1)] and s.change_counter() == g


def test_the_schema_compiles_for_postgres() -> None:
    """Postgres is not installed here; its DDL (tables, indexes, the append-only trigger) at least compiles."""
    from sqlalchemy import create_mock_engine
    from sqlalchemy.dialects import postgresql

    from jieyao.banks.store import _Inserter

    ddl: list[str] = []
    engine = create_mock_engine("postgresql://",
                                lambda sql, *a, **k: ddl.append(str(sql.compile(dialect=engine.dialect))))
    metadata.create_all(engine, checkfirst=False)
    text = "\n".join(ddl)
    assert "CREATE TABLE signals" in text and "uq_signals_value" in text and "audit_log_append_only" in text
    ins = _Inserter(postgresql.dialect())
    assert "ON CONFLICT DO NOTHING" in ins.sql and ins.ignores_conflicts


# --- two processes, one file ------------------------------------------------------------------------------

N_PER_WRITER = 150


def _writer(path: str, worker: int, mode: str) -> None:
    with BankStore.open(path) as s:
        if mode == "add":
            for i in range(N_PER_WRITER):
                s.add_signal("shared", "pdq", pdq(worker * 1_000_000 + i), source=f"w{worker}", actor=f"w{worker}")
        else:
            items = records(*(pdq(worker * 1_000_000 + i) for i in range(N_PER_WRITER * 20)))
            for part in range(4):  # several transactions each, interleaving with the other writer
                s.import_signals("shared", items[part::4], source=f"w{worker}")


@pytest.mark.parametrize("mode", ["add", "import"])
def test_two_processes_writing_one_file_lose_nothing(db_path: Path, mode: str) -> None:
    with BankStore.open(db_path) as s:
        s.create_bank("shared")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(db_path), w, mode)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    expected = 2 * N_PER_WRITER * (1 if mode == "add" else 20)
    with BankStore.open(db_path) as s:
        assert len(list(s.iter_active())) == expected
        assert {a.source for a in s.iter_active()} == {"w1", "w2"}
        actions = [e.action for e in s.audit()]
        assert actions.count("add" if mode == "add" else "import") == (2 * N_PER_WRITER if mode == "add" else 8)
        # every write transaction got its own generation
        assert s.change_counter() == 1 + (2 * N_PER_WRITER if mode == "add" else 8)
