"""Lineage banks: add, list, search, remove, bad input (SQLite files under tmp_path)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jieyao.lineage.bank import LineageBank, LineageBankError
from jieyao.lineage.fingerprint import fingerprint_arrays

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
