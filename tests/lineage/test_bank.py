"""Lineage banks: add, list, search, remove, bad input (SQLite files under tmp_path)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jieyao.lineage.bank import INDEX_MAX_SKETCHES, LineageBank, LineageBankError
from jieyao.lineage.fingerprint import Lineage, ModelPrint, compare, fingerprint_arrays

SHAPES = {"enc.conv1": (64, 3, 5, 5), "enc.conv2": (128, 64, 3, 3), "inter.dense": (256, 512),
          "dec.conv": (64, 128, 3, 3)}


def model(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in SHAPES.items()}


def child_of(parent: dict[str, np.ndarray], noise: float = 0.6, seed: int = 99) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (v + noise * v.std() * rng.standard_normal(v.shape)).astype(np.float32) for k, v in parent.items()}


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[LineageBank]:
    b = LineageBank.open(tmp_path / "banks.sqlite")
    yield b
    b.close()


def test_add_search_remove(bank: LineageBank) -> None:
    parent = model(1)
    bank.add("dfl-bases", "base-A", fingerprint_arrays(parent, format="pickle"), source="a.npy", note="n")
    bank.add("dfl-bases", "base-B", fingerprint_arrays(model(2)))
    [entry_a, entry_b] = bank.list()
    assert (entry_a.name, entry_a.bank, entry_a.tensors, entry_a.format) == ("base-A", "dfl-bases", 4, "pickle")
    assert entry_a.params == sum(int(np.prod(s)) for s in SHAPES.values()) and entry_b.name == "base-B"
    renamed = {f"x{i}": v for i, v in enumerate(reversed(list(child_of(parent).values())))}
    hits = bank.search(fingerprint_arrays(renamed))
    assert [h.name for h in hits] == ["base-A"]
    _name, bank_name, lin = hits[0]
    assert bank_name == "dfl-bases" and lin.descendant and len(lin.matches) == 4
    assert all(m.cosine > 0.7 for m in lin.matches)
    assert bank.search(fingerprint_arrays(model(3))) == []
    assert bank.remove("base-A") and not bank.remove("base-A")
    assert bank.search(fingerprint_arrays(renamed)) == []
    assert [m.name for m in bank.list()] == ["base-B"]


def test_stored_print_round_trips(bank: LineageBank) -> None:
    p = fingerprint_arrays(model(1))
    bank.add("b", "m", p)
    got = bank.get("m")
    assert [t.shape for t in got.tensors] == [t.shape for t in p.tensors]
    for a, b in zip(got.tensors, p.tensors, strict=True):
        assert float(np.dot(a.sketch, b.sketch)) > 0.9999 and a.code == b.code


def test_duplicate_name_is_an_error_even_across_banks(bank: LineageBank) -> None:
    p = fingerprint_arrays(model(1))
    bank.add("one", "m", p)
    with pytest.raises(LineageBankError, match="already in lineage bank 'one'"):
        bank.add("one", "m", p)
    with pytest.raises(LineageBankError, match="unique across lineage banks"):
        bank.add("two", "m", p)
    assert len(bank.list()) == 1


def test_empty_print_and_bad_names_refused(bank: LineageBank) -> None:
    empty = fingerprint_arrays({"ids": np.zeros((64, 64), dtype=np.int32)})
    with pytest.raises(LineageBankError, match="nothing to store"):
        bank.add("b", "m", empty)
    with pytest.raises(LineageBankError, match="must not be empty"):
        bank.add("b", " ", fingerprint_arrays(model(1)))
    assert bank.search(empty) == []


def test_unrelated_shapes_no_match_no_error(bank: LineageBank) -> None:
    bank.add("b", "m", fingerprint_arrays(model(1)))
    rng = np.random.default_rng(0)
    other = fingerprint_arrays({"a": rng.standard_normal((100, 300)).astype(np.float32)})
    errors: list[str] = []
    assert bank.search(other, errors=errors) == [] and errors == []


def test_corrupt_blob_names_the_model_rest_searchable(tmp_path: Path) -> None:
    db = tmp_path / "banks.sqlite"
    parent = model(1)
    with LineageBank.open(db) as b:
        b.add("b", "good", fingerprint_arrays(parent))
        b.add("b", "bad", fingerprint_arrays(parent))
    con = sqlite3.connect(db)
    con.execute("UPDATE lineage_tensors SET sketch = x'00ff' WHERE id = (SELECT min(t.id) FROM lineage_tensors t "
                "JOIN lineage_models m ON m.id = t.model_id WHERE m.name = 'bad')")
    con.commit()
    con.close()
    with LineageBank.open(db, create=False) as b:
        errors: list[str] = []
        hits = b.search(fingerprint_arrays(child_of(parent)), errors=errors)
        assert [h.name for h in hits] == ["good"]
        assert len(errors) == 1 and "'bad' is corrupt" in errors[0]
        with pytest.raises(LineageBankError, match="'bad' is corrupt"):
            b.get("bad")


def test_corrupt_database_file(tmp_path: Path) -> None:
    db = tmp_path / "junk.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LineageBankError):
        LineageBank.open(db)
    with pytest.raises(LineageBankError, match="no lineage bank database"):
        LineageBank.open(tmp_path / "missing.sqlite", create=False)


def test_lives_beside_hash_bank_store(tmp_path: Path) -> None:
    from jieyao.banks.schema import TABLE_NAMES
    from jieyao.banks.store import BankStore
    from jieyao.lineage.bank import LINEAGE_TABLES

    assert not (TABLE_NAMES & LINEAGE_TABLES)
    db = tmp_path / "banks.sqlite"
    with LineageBank.open(db) as b:
        b.add("b", "m", fingerprint_arrays(model(1)))
    with BankStore.open(db) as store:  # a lineage-only file becomes a bank store too
        store.create_bank("hashes")
        assert [x.name for x in store.list_banks()] == ["hashes"]
    with LineageBank.open(db, create=False) as b:
        assert [m.name for m in b.list()] == ["m"]
    db2 = tmp_path / "store-first.sqlite"
    with BankStore.open(db2) as store:
        store.create_bank("hashes")
    with pytest.raises(LineageBankError, match="holds no lineage bank"):
        LineageBank.open(db2, create=False)
    with LineageBank.open(db2) as b:
        b.add("b", "m", fingerprint_arrays(model(1)))
    with BankStore.open(db2, create=False) as store:
        assert [x.name for x in store.list_banks()] == ["hashes"]


def test_partial_share_evidence_uses_stored_totals(bank: LineageBank) -> None:
    parent = model(1)
    bank.add("b", "base", fingerprint_arrays(parent))
    child = child_of(parent)
    child["inter.dense"] = model(5)["inter.dense"]  # re-initialised submodel (DFL pretrain → train switch)
    [hit] = bank.search(fingerprint_arrays(child))
    total = sum(int(np.prod(s)) for s in SHAPES.values())
    expected = (total - 256 * 512) / total
    assert hit.lineage.coverage == pytest.approx(expected)
    assert hit.lineage.reference_params == total
    assert hit.lineage.why.startswith("3 of 4 tensors match")
    assert hit.lineage.descendant  # 3 tensors, 59 % of the parameters


def test_square_unknown_layout_transposed(bank: LineageBank) -> None:
    rng = np.random.default_rng(11)
    parent = {f"d{i}": rng.standard_normal((256, 256)).astype(np.float32) for i in range(3)}
    bank.add("b", "square", fingerprint_arrays(parent))  # layout unknown: both orientations kept
    child = {k: (v + 0.5 * rng.standard_normal(v.shape)).T.astype(np.float32) for k, v in parent.items()}
    [hit] = bank.search(fingerprint_arrays(child, {k: "oi" for k in child}))
    assert hit.lineage.descendant and all(m.cosine > 0.8 for m in hit.lineage.matches)


# --- the in-memory index against a slow exact reference -----------------------------------------------------

def _slow_search(bank: LineageBank, child: ModelPrint, top: int = 5) -> list[tuple[str, str, Lineage]]:
    """Every stored model loaded whole and `compare`d with the child: what `search` must return."""
    hits = []
    for entry in bank.list():
        lin = compare(child, bank.get(entry.name))
        if lin.matches:
            hits.append((entry.name, entry.bank, lin))
    hits.sort(key=lambda h: (not h[2].descendant, -h[2].coverage, -max(m.cosine for m in h[2].matches), h[0]))
    return hits[:top]


def _random_bank_models(rng: np.random.Generator, n: int) -> list[dict[str, np.ndarray]]:
    shapes = [(24, 16, 3, 3), (32, 48), (48, 32), (40, 40), (64, 20), (16, 8, 3, 3)]
    out = []
    for _ in range(n):
        picked = rng.choice(len(shapes), size=int(rng.integers(2, 5)), replace=False)
        out.append({f"t{j}": rng.standard_normal(shapes[j]).astype(np.float32) for j in picked})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_and_database_paths_equal_the_slow_reference(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    parents = _random_bank_models(rng, 30)
    layouts = ["unknown", "oi", "io"]
    db = tmp_path / "b.sqlite"
    with LineageBank.open(db) as b:
        for i, p in enumerate(parents):
            lay = {k: layouts[int(rng.integers(3))] for k, v in p.items() if v.ndim == 2}
            b.add(f"bank{i % 3}", f"m{i:02d}", fingerprint_arrays(p, lay))
    queries = []
    for i in rng.choice(len(parents), size=8, replace=False):
        noise = float(rng.choice([0.3, 1.0, 1.6, 2.5]))
        kid = child_of(parents[int(i)], noise=noise, seed=int(i))
        kid = {k: (np.ascontiguousarray(v.T) if v.ndim == 2 and rng.random() < 0.5 else v) for k, v in kid.items()}
        kid["x"] = parents[int(rng.integers(len(parents)))].get("t1", rng.standard_normal((32, 48))).astype(np.float32)
        queries.append(fingerprint_arrays(kid, {k: str(rng.choice(layouts)) for k in kid}))
    queries.append(fingerprint_arrays(_random_bank_models(rng, 1)[0]))
    seen_hits = 0
    with LineageBank.open(db, create=False) as fast, LineageBank.open(db, create=False, index_rows=0) as slow:
        for q in queries:
            for top in (1, 5, 40):
                want = _slow_search(fast, q, top)
                errors: list[str] = []
                got = fast.search(q, top=top, errors=errors)
                streamed = slow.search(q, top=top, errors=errors)
                assert [(h.name, h.bank, h.lineage) for h in got] == want == \
                    [(h.name, h.bank, h.lineage) for h in streamed] and errors == []
                seen_hits += len(want)
        assert fast._cache is not None and fast._cache[1] is not None
        assert slow._cache is not None and slow._cache[1] is None
    assert seen_hits > 20


def test_the_index_follows_changes_from_another_handle(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    parent = model(1)
    query = fingerprint_arrays(child_of(parent))
    with LineageBank.open(db) as writer, LineageBank.open(db) as reader:
        writer.add("b", "other", fingerprint_arrays(model(2)))
        assert reader.search(query) == []
        writer.add("b", "base", fingerprint_arrays(parent))
        assert [h.name for h in reader.search(query)] == ["base"]  # seen at the next search
        writer.remove("base")
        assert reader.search(query) == []
        writer.remove("other")  # remove the highest id and add again: same count and max id, new generation
        writer.add("b", "base", fingerprint_arrays(model(3)))
        writer.remove("base")
        writer.add("b", "other", fingerprint_arrays(model(2)))
        writer.add("b", "base", fingerprint_arrays(parent))
        assert [h.name for h in reader.search(query)] == ["base"]


def test_corrupt_rows_reported_alike_by_both_paths(tmp_path: Path) -> None:
    db = tmp_path / "banks.sqlite"
    parent = model(1)
    with LineageBank.open(db) as b:
        b.add("b", "good", fingerprint_arrays(parent))
        b.add("b", "bad", fingerprint_arrays(parent))
        b.add("b", "short", fingerprint_arrays(parent))
    con = sqlite3.connect(db)
    con.execute("UPDATE lineage_tensors SET code = x'00' WHERE id = (SELECT max(t.id) FROM lineage_tensors t "
                "JOIN lineage_models m ON m.id = t.model_id WHERE m.name = 'bad')")
    con.execute("DELETE FROM lineage_tensors WHERE id = (SELECT max(t.id) FROM lineage_tensors t "
                "JOIN lineage_models m ON m.id = t.model_id WHERE m.name = 'short')")
    con.commit()
    con.close()
    for rows in (INDEX_MAX_SKETCHES, 0):
        with LineageBank.open(db, create=False, index_rows=rows) as b:
            errors: list[str] = []
            assert [h.name for h in b.search(fingerprint_arrays(child_of(parent)), errors=errors)] == ["good"]
            assert len(errors) == 2 and "'bad' is corrupt" in errors[0] and "'short' is corrupt" in errors[1]
            other = model(7)
            errors = []  # unrelated, no shape of the unreadable row (the last, dec.conv): nothing to say
            assert b.search(fingerprint_arrays({"a": other["enc.conv1"]}), errors=errors) == [] and errors == []
            errors = []  # unrelated, but the unreadable row's shape: it could have matched, so it is reported
            assert b.search(fingerprint_arrays({"a": other["dec.conv"]}), errors=errors) == []
            assert len(errors) == 1 and "'bad' is corrupt: a code" in errors[0]


def test_a_bank_without_the_generation_table_is_read_and_upgraded(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    parent = model(1)
    with LineageBank.open(db) as b:
        b.add("b", "base", fingerprint_arrays(parent))
    con = sqlite3.connect(db)
    con.execute("DROP TABLE lineage_state")  # as written before the table existed
    con.commit()
    con.close()
    query = fingerprint_arrays(child_of(parent))
    with LineageBank.open(db, create=False) as b:
        assert [h.name for h in b.search(query)] == ["base"]
        b.add("b", "other", fingerprint_arrays(model(2)))  # the first write adds the table
        assert b.remove("base") and b.search(query) == []
    con = sqlite3.connect(db)
    assert con.execute("SELECT generation FROM lineage_state").fetchall() == [(2,)]
    con.close()
