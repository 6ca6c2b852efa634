"""The common-tensor (IDF) table: copied constants seen in unrelated bank models stop counting toward a verdict."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from jieyao.lineage.bank import COMMON_MIN_MODELS, SCHEMA_VERSION, LineageBank, LineageBankError
from jieyao.lineage.fingerprint import compare, fingerprint_arrays

SHAPES = {"enc.conv1": (64, 3, 5, 5), "enc.conv2": (128, 64, 3, 3), "inter.dense": (256, 512),
          "dec.conv": (64, 128, 3, 3)}
_rng = np.random.default_rng(1234)
EMAP = (_rng.standard_normal((128, 96)) * 0.1).astype(np.float32)  # a copied constant (inswapper's emap)
BLUR = (_rng.standard_normal((96, 80)) * 0.1).astype(np.float32)  # another (a fixed kernel)


def own(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in SHAPES.items()}


def with_constants(seed: int, *consts: str) -> dict[str, np.ndarray]:
    m = own(seed)
    if "emap" in consts:
        m["emap"] = EMAP.copy()
    if "blur" in consts:
        m["blur"] = BLUR.copy()
    return m


def child_of(parent: dict[str, np.ndarray], noise: float = 0.6, seed: int = 99) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (v + noise * v.std() * rng.standard_normal(v.shape)).astype(np.float32) for k, v in parent.items()}


def fp(arrays: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    return fingerprint_arrays(arrays, {k: "oi" for k, v in arrays.items() if v.ndim == 2})


def commons(bank: LineageBank) -> set[tuple[str, str, int]]:
    return {(c.model, c.tensor, c.models) for c in bank.common_tensors()}


def test_a_constant_in_three_unrelated_models_becomes_common_and_stops_counting(tmp_path: Path) -> None:
    assert COMMON_MIN_MODELS == 3
    query = fp({**own(50), "emap": EMAP.copy()})
    with LineageBank.open(tmp_path / "b.sqlite") as bank:
        bank.add("b", "u1", fp(with_constants(1, "emap")))
        bank.add("b", "u2", fp(with_constants(2, "emap")))
        assert commons(bank) == set()  # two unrelated models sharing a tensor: evidence, not yet common
        pair = bank.search(query)
        assert [(len(h.lineage.matches), h.lineage.common) for h in pair] == [(1, ()), (1, ())]
        bank.add("b", "u3", fp(with_constants(3, "emap")))
        assert commons(bank) == {("u1", "emap", 3), ("u2", "emap", 3), ("u3", "emap", 3)}
        hits = bank.search(query)
    assert sorted(h.name for h in hits) == ["u1", "u2", "u3"]
    for h in hits:
        assert not h.lineage.descendant and h.lineage.matches == () and h.lineage.coverage == 0.0
        [shared] = h.lineage.common
        assert (shared.reference, shared.common_models) == ("emap", 3) and shared.cosine > 0.99
        assert "1 shared common tensor (seen in 3 unrelated bank models), not counted" in h.lineage.why


def test_own_tensors_two_common_and_one_real_match_is_not_a_descendant(tmp_path: Path) -> None:
    ref = with_constants(1, "emap", "blur")
    kid = {**own(60), "emap": EMAP.copy(), "blur": BLUR.copy(),
           "enc.conv2": child_of(ref, seed=5)["enc.conv2"]}  # one tensor really taken from the reference
    query = fp(kid)
    with LineageBank.open(tmp_path / "b.sqlite") as bank:
        for i, seed in enumerate((1, 2, 3)):
            bank.add("b", f"u{i + 1}", fp(with_constants(seed, "emap", "blur")))
        raw = compare(query, bank.get("u1"))  # without the common table this would be a descendant
        assert raw.descendant and len(raw.matches) == 3 and raw.coverage >= 0.25
        [top, *_] = bank.search(query)
    assert top.name == "u1" and not top.lineage.descendant
    assert [m.reference for m in top.lineage.matches] == ["enc.conv2"]
    assert sorted(m.reference for m in top.lineage.common) == ["blur", "emap"]
    assert "2 shared common tensors (seen in 3 unrelated bank models)" in top.lineage.why


def test_a_real_fine_tune_carrying_a_common_tensor_is_still_a_descendant(tmp_path: Path) -> None:
    base = with_constants(1, "emap")
    with LineageBank.open(tmp_path / "b.sqlite") as bank:
        for i, seed in enumerate((1, 2, 3)):
            bank.add("b", f"u{i + 1}", fp(with_constants(seed, "emap")))
        [top, *rest] = bank.search(fp(child_of(base)))
    assert top.name == "u1" and top.lineage.descendant and len(top.lineage.matches) == 4
    assert [m.reference for m in top.lineage.common] == ["emap"]
    own_params = sum(int(np.prod(s)) for s in SHAPES.values())
    assert top.lineage.reference_params == own_params and top.lineage.coverage == pytest.approx(1.0)
    assert all(not h.lineage.descendant and h.lineage.matches == () for h in rest)


def test_tensors_shared_within_a_family_are_not_common(tmp_path: Path) -> None:
    base = with_constants(1, "emap")
    with LineageBank.open(tmp_path / "b.sqlite") as bank:
        bank.add("b", "base", fp(base))
        bank.add("b", "resale-1", fp(child_of(base, seed=11)))
        bank.add("b", "resale-2", fp(child_of(base, seed=12)))
        bank.add("b", "other-1", fp(with_constants(2, "emap")))
        # every tensor of the family is in 3 models, and emap in 4: but base + resales count once
        assert commons(bank) == set()
        bank.add("b", "other-2", fp(with_constants(3, "emap")))
        got = commons(bank)
        assert {(m, t) for m, t, _ in got} == {(m, "emap") for m in ("base", "resale-1", "resale-2", "other-1",
                                                                     "other-2")}
        assert {k for _, _, k in got} == {3}
        [top, *_] = bank.search(fp(child_of(child_of(base, seed=11), seed=21)))
        assert top.name == "resale-1" and top.lineage.descendant and len(top.lineage.common) == 1


def test_remove_decrements_and_recount_agrees_with_the_incremental_table(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    kid = {**own(60), "emap": EMAP.copy(), "blur": BLUR.copy(), "enc.conv2": child_of(own(1), seed=5)["enc.conv2"]}
    with LineageBank.open(db) as bank:
        for i, seed in enumerate((1, 2, 3, 4)):
            bank.add("b", f"u{i + 1}", fp(with_constants(seed, "emap", "blur")))
        assert {k for _, _, k in commons(bank)} == {4}
        assert bank.remove("u4")
        assert {k for _, _, k in commons(bank)} == {3}
        assert bank.remove("u3")
        assert commons(bank) == set()
        [top, *_] = bank.search(fp(kid))  # the constants count again: two models are not "common"
        assert top.name == "u1" and top.lineage.descendant and top.lineage.common == ()
        bank.add("b", "u3", fp(with_constants(3, "emap", "blur")))
        bank.add("b", "fam", fp(child_of(with_constants(1, "emap", "blur"))))
        incremental = _links(db)
        assert incremental[0] and incremental[1]
        rep = bank.recount()
        assert (rep.models, rep.related_pairs, rep.skipped) == (4, 1, ())
        assert rep.common_tensors == 8 and _links(db) == incremental


def _links(db: Path) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    con = sqlite3.connect(db)
    try:
        return (set(con.execute("SELECT tensor_id, other_id FROM lineage_shared").fetchall()),
                set(con.execute("SELECT model_id, other_id FROM lineage_related").fetchall()))
    finally:
        con.close()


def test_an_old_schema_bank_is_upgraded_and_a_newer_one_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with LineageBank.open(db) as bank:
        for i, seed in enumerate((1, 2, 3)):
            bank.add("b", f"u{i + 1}", fp(with_constants(seed, "emap")))
        want = commons(bank)
    assert len(want) == 3
    con = sqlite3.connect(db)
    for table in ("lineage_shared", "lineage_related", "lineage_schema"):  # as a version-1 bank was written
        con.execute(f"DROP TABLE {table}")
    con.commit()
    con.close()
    with LineageBank.open(db, create=False) as bank:  # even a reader upgrades it (one transaction)
        assert bank.common_ready and bank.upgrade_error is None
        assert commons(bank) == want
        [hit, *_] = bank.search(fp({**own(50), "emap": EMAP.copy()}))
        assert hit.lineage.matches == () and len(hit.lineage.common) == 1
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM lineage_schema").fetchall() == [(SCHEMA_VERSION,)]
    con.execute("UPDATE lineage_schema SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(LineageBankError, match="schema version 99, newer than this jieyao"):
        LineageBank.open(db, create=False)


def test_an_old_bank_that_cannot_be_written_is_searched_without_the_table(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "old.sqlite"
    with LineageBank.open(db) as bank:
        bank.add("b", "u1", fp(with_constants(1, "emap")))
    con = sqlite3.connect(db)
    con.execute("DROP TABLE lineage_schema")
    con.commit()
    con.close()

    def refuse(self: LineageBank) -> None:
        raise LineageBankError("attempt to write a readonly database")

    monkeypatch.setattr(LineageBank, "_upgrade", refuse)
    with LineageBank.open(db, create=False) as bank:
        assert not bank.common_ready and "readonly" in (bank.upgrade_error or "")
        [hit] = bank.search(fp(child_of(with_constants(1, "emap"))))
        assert hit.name == "u1" and hit.lineage.descendant and hit.lineage.common == ()
    with pytest.raises(LineageBankError, match="readonly"):
        LineageBank.open(db, create=True)  # a writer must upgrade: refused, the bank is left as it was


def test_corrupt_link_rows_are_ignored_safely(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    with LineageBank.open(db) as bank:
        for i, seed in enumerate((1, 2, 3)):
            bank.add("b", f"u{i + 1}", fp(with_constants(seed, "emap")))
        bank.add("b", "lone", fp(own(9)))
        want = commons(bank)
    con = sqlite3.connect(db)  # foreign keys are off here, as for any hand edit
    lone_tensor = con.execute("SELECT t.id FROM lineage_tensors t JOIN lineage_models m ON m.id = t.model_id "
                              "WHERE m.name = 'lone' LIMIT 1").fetchone()[0]
    con.executemany("INSERT INTO lineage_shared (tensor_id, other_id, cosine) VALUES (?, ?, ?)", [
        (999_999, 1, 0.9),  # a tensor that is not there
        (lone_tensor, 424_242, 0.9), (lone_tensor, 4242, 0.9),  # models that are not there
        ("junk", "x", "not a float"),  # not ids at all
        (lone_tensor, 4, 0.9),  # a link of a model to itself
    ])
    con.execute("INSERT INTO lineage_related (model_id, other_id) VALUES ('a', 'b'), (1, 777)")
    con.commit()
    con.close()
    with LineageBank.open(db, create=False) as bank:
        assert commons(bank) == want
        errors: list[str] = []
        [top, *_] = bank.search(fp(child_of(own(9))), errors=errors)
        assert top.name == "lone" and top.lineage.descendant and top.lineage.common == () and errors == []
        [hit, *_] = bank.search(fp({**own(50), "emap": EMAP.copy()}))
        assert hit.lineage.matches == () and hit.lineage.common[0].common_models == 3


def test_the_held_index_is_appended_not_reloaded_and_answers_as_a_fresh_handle(tmp_path: Path) -> None:
    db = tmp_path / "b.sqlite"
    queries = [fp(child_of(with_constants(s, "emap"), seed=s + 100)) for s in (1, 4, 6)] + [fp(own(70))]
    with LineageBank.open(db) as writer:
        writer.add("b", "m0", fp(with_constants(0, "emap")))
        assert writer.search(queries[-1]) == [] and writer._cache is not None
        held = writer._cache[1]
        for seed in range(1, 8):
            writer.add("b", f"m{seed}", fp(with_constants(seed, "emap" if seed % 2 else "blur")))
        assert writer._cache is not None and writer._cache[1] is held  # appended in place
        got = [writer.search(q, top=10) for q in queries]
        assert writer._cache[1] is held  # the counter it keeps is the one the database gives: no reload
        with LineageBank.open(db, create=False) as fresh:
            assert [fresh.search(q, top=10) for q in queries] == got
    assert [h.name for h in got[0] if h.lineage.descendant] == ["m1"] and len(got[0][0].lineage.common) == 1
    assert got[3] == []


def test_links_built_without_the_index_equal_those_built_with_it(tmp_path: Path) -> None:
    models = [fp(with_constants(s, "emap", "blur")) for s in (1, 2, 3)] + [fp(child_of(with_constants(1, "emap")))]
    for path, rows in ((tmp_path / "held.sqlite", None), (tmp_path / "streamed.sqlite", 0)):
        with LineageBank.open(path) if rows is None else LineageBank.open(path, index_rows=rows) as bank:
            for i, m in enumerate(models):
                bank.add("b", f"m{i}", m)
            assert (bank._cache is not None and bank._cache[1] is None) == (rows == 0)
    held, streamed = _links(tmp_path / "held.sqlite"), _links(tmp_path / "streamed.sqlite")
    # 3 unrelated pairs x 2 constants x 2 sides, and the resale's emap with 2 unrelated models x 2 sides
    assert held == streamed and len(held[1]) == 1 and len(held[0]) == 3 * 4 + 2 * 2
    with LineageBank.open(tmp_path / "streamed.sqlite", index_rows=0) as bank:
        rep = bank.recount()  # streamed from the database (a bank too big to hold): the same links
    assert (rep.models, rep.related_pairs, rep.shared_links) == (4, 1, 16)
    assert _links(tmp_path / "streamed.sqlite") == held


def test_coverage_does_not_depend_on_whether_the_child_kept_the_constant() -> None:
    """The common parameters leave the coverage denominator whether or not this child matched them: a child
    that dropped the copied constant is not held to a higher bar than one that kept it."""
    ref = fp(with_constants(1, "emap"))
    emap_params = EMAP.size
    common = {i: 3 for i, t in enumerate(ref.tensors) if t.name == "emap"}
    kept = fp(child_of(with_constants(1, "emap"), noise=0.3))
    dropped = fp({k: v for k, v in child_of(with_constants(1, "emap"), noise=0.3).items() if k != "emap"})
    a = compare(kept, ref, common=common, common_params=emap_params)
    # as the bank search calls it: only the common tensors some candidate row reached are marked (none here)
    b = compare(dropped, ref, common={}, common_params=emap_params)
    assert a.descendant and b.descendant
    assert a.coverage == pytest.approx(b.coverage) and a.coverage == pytest.approx(1.0)
