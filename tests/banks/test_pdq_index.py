"""PDQ index: exact equivalence with brute force (random and clustered data, every code path), changes, files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jieyao.banks.pdq_index import (
    MAX_RADIUS,
    FlatPdqIndex,
    Hits,
    PdqIndex,
    PdqIndexError,
    Tuning,
    _build_tables,
    as_hashes,
    hashes_from_hex,
    hashes_to_hex,
    load_pdq_index,
)
from jieyao.hashing.signals import SignalValueError, pdq_distance

TABLES = Tuning(min_indexed=0, max_delta=1, delta_fraction=0.0, scan_fraction=1e9)
"""Always probe the tables (never scan), every add merged at once."""
DELTA = Tuning(min_indexed=0, max_delta=40, delta_fraction=1.0, scan_fraction=1e9)
"""Tables plus a delta that merges (by insertion) every ~40 rows."""
SCAN = Tuning(min_indexed=0, scan_fraction=0.0)
"""Tables built but every lookup scans."""
RADII = (0, 1, 15, 16, 31, 32, 47, 48, 63, 64, 100, 255, 256)


def reference(ids: np.ndarray, hashes: np.ndarray, q: np.ndarray, r: int) -> list[tuple[int, int]]:
    """Python big-int popcount: independent of every numpy trick in the index."""
    qi = int.from_bytes(q.tobytes(), "big")
    out = []
    for i, h in zip(ids.tolist(), hashes, strict=True):
        d = (int.from_bytes(h.tobytes(), "big") ^ qi).bit_count()
        if d <= r:
            out.append((i, d))
    return sorted(out, key=lambda p: (p[1], p[0]))


def flip(rng: np.random.Generator, h: np.ndarray, k: int) -> np.ndarray:
    bits = np.unpackbits(h)
    bits[rng.choice(256, k, replace=False)] ^= 1
    return np.packbits(bits)


def clustered(rng: np.random.Generator, seeds: int, per: int) -> tuple[np.ndarray, np.ndarray]:
    """Near-duplicates at exactly 0..40 bits from each seed, so the 31/32 boundary is populated."""
    base = rng.integers(0, 256, (seeds, 32), dtype=np.uint8)
    members = [flip(rng, base[s], int(k)) for s in range(seeds) for k in rng.integers(0, 41, per)]
    return base, np.array(members)


def build(kind: type[PdqIndex] | type[FlatPdqIndex], ids: np.ndarray, hashes: np.ndarray,
          tuning: Tuning | None = None, batch: int | None = None) -> PdqIndex | FlatPdqIndex:
    index = PdqIndex(tuning=tuning) if kind is PdqIndex else FlatPdqIndex()
    step = batch or max(1, len(ids))
    for s in range(0, len(ids), step):
        index.add(ids[s:s + step], hashes[s:s + step])
    return index


@pytest.fixture(scope="module")
def random_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 256, (2500, 32), dtype=np.uint8)
    ids = rng.permutation(10_000)[:2500].astype(np.int64)
    near = np.array([flip(rng, hashes[i], int(rng.integers(0, 70))) for i in rng.integers(0, 2500, 30)])
    qs = np.concatenate([near, rng.integers(0, 256, (10, 32), dtype=np.uint8), ~hashes[:2]])
    return ids, hashes, qs


# ---- hex ------------------------------------------------------------------------------------------------------

def test_hex_bit_order_is_the_strings() -> None:
    arr = hashes_from_hex(["8" + "0" * 63, "0" * 62 + "0f"])
    assert arr[0, 0] == 0x80 and arr[0, 1:].sum() == 0
    assert arr[1, 31] == 0x0F
    assert hashes_to_hex(arr) == ["8" + "0" * 63, "0" * 62 + "0f"]


def test_hex_accepts_what_normalise_accepts() -> None:
    assert hashes_to_hex(hashes_from_hex([" " + "AB" * 32 + "\n"])) == ["ab" * 32]


@pytest.mark.parametrize("bad", ["ab" * 31, "ab" * 33, "zz" * 32, "ab" * 15 + " a" + "ab" * 16, "", 17])
def test_one_bad_hex_names_its_index(bad: object) -> None:
    good = "0" * 64
    with pytest.raises(SignalValueError, match="PDQ hash 2"):
        hashes_from_hex([good, good, bad, good])  # type: ignore[list-item]


@given(st.lists(st.one_of(st.text(alphabet="0123456789abcdefABCDEF \t", min_size=60, max_size=68),
                          st.text(max_size=70)), max_size=6))
def test_hex_parser_never_surprises(hexes: list[str]) -> None:
    try:
        arr = hashes_from_hex(hexes)
    except SignalValueError:
        return
    assert arr.shape == (len(hexes), 32)
    assert hashes_to_hex(arr) == [h.strip().lower() for h in hexes]


def test_as_hashes_forms_agree() -> None:
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    hexes = hashes_to_hex(arr)
    for form in (arr, arr.view(np.uint64), arr.tobytes(), hexes, np.array(hexes)):
        assert np.array_equal(as_hashes(form), arr)
    assert np.array_equal(as_hashes(hexes[0]), arr[:1])
    for bad in (b"x" * 31, arr.astype(np.int16), np.zeros((2, 31), np.uint8), np.zeros((2, 2, 32), np.uint8)):
        with pytest.raises(PdqIndexError):
            as_hashes(bad)


def test_distance_agrees_with_signals(random_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, hashes, qs = random_set
    index = build(PdqIndex, ids, hashes)
    hits = index.search(qs[0], radius=MAX_RADIUS, limit=5)
    a, b = hashes_to_hex(qs[0])[0], hashes_to_hex(hashes[np.flatnonzero(ids == hits.ids[0])[0]])[0]
    assert int(hits.distances[0]) == pdq_distance(a, b)


# ---- equivalence ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tuning", [None, TABLES, SCAN], ids=["default", "tables", "scan"])
def test_random_data_matches_brute_force(random_set: tuple[np.ndarray, np.ndarray, np.ndarray],
                                         tuning: Tuning | None) -> None:
    ids, hashes, qs = random_set
    mih, flat = build(PdqIndex, ids, hashes, tuning), build(FlatPdqIndex, ids, hashes)
    for r in RADII:
        want = [reference(ids, hashes, q, r) for q in qs]
        assert [h.pairs() for h in mih.search_many(qs, radius=r)] == want, r
        assert [h.pairs() for h in flat.search_many(qs, radius=r)] == want, r


def test_clustered_data_matches_brute_force_at_the_boundary() -> None:
    rng = np.random.default_rng(3)
    seeds, members = clustered(rng, 12, 60)
    ids = np.arange(len(members), dtype=np.int64)
    qs = np.concatenate([seeds, members[::37]])
    for tuning in (TABLES, DELTA, None):
        index = build(PdqIndex, ids, members, tuning, batch=97)
        for r in (30, 31, 32, 33, 48):
            for q in qs:
                assert index.search(q, radius=r).pairs() == reference(ids, members, q, r)
    at_31 = [d for q in seeds for d in build(PdqIndex, ids, members, TABLES).search(q, radius=40).distances]
    assert 31 in at_31 and 32 in at_31, "the data must straddle the default threshold"


seeds_st = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4)
members_st = st.lists(st.tuples(st.integers(0, 3), st.sets(st.integers(0, 255), max_size=45)), max_size=60)


def _apply(seed: bytes, bits: set[int]) -> np.ndarray:
    arr = np.unpackbits(np.frombuffer(seed, np.uint8))
    arr[list(bits)] ^= 1
    return np.packbits(arr)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeds_st, members_st, st.integers(0, 3), st.sets(st.integers(0, 255), max_size=45), st.integers(0, 80),
       st.sampled_from(["tables", "delta", "scan"]))
def test_equivalence_property(seeds: list[bytes], members: list[tuple[int, set[int]]], qseed: int,
                              qbits: set[int], radius: int, mode: str) -> None:
    hashes = np.array([_apply(seeds[s % len(seeds)], b) for s, b in members], np.uint8).reshape(-1, 32)
    ids = np.arange(len(hashes), dtype=np.int64) * 7 - 50
    q = _apply(seeds[qseed % len(seeds)], qbits)
    index = build(PdqIndex, ids, hashes, {"tables": TABLES, "delta": DELTA, "scan": SCAN}[mode], batch=13)
    assert index.search(q, radius=radius).pairs() == reference(ids, hashes, q, radius)


def test_duplicate_hashes_and_ids_are_all_returned() -> None:
    h = np.zeros((4, 32), np.uint8)
    for index in (build(PdqIndex, np.array([5, 6, 7, 5]), h, TABLES), build(FlatPdqIndex, np.array([5, 6, 7, 5]), h)):
        assert index.search(h[0], radius=0).pairs() == [(5, 0), (5, 0), (6, 0), (7, 0)]
        assert index.remove([5]) == 2
        assert index.search(h[0]).pairs() == [(6, 0), (7, 0)]


def test_complement_is_256_apart_not_0() -> None:
    h = np.zeros((1, 32), np.uint8)
    q = np.full(32, 255, np.uint8)
    for index in (build(PdqIndex, np.array([1]), h, SCAN), build(PdqIndex, np.array([1]), h),
                  build(FlatPdqIndex, np.array([1]), h)):
        assert index.search(q, radius=255).pairs() == []
        assert index.search(q, radius=256).pairs() == [(1, 256)]


def test_limit_keeps_the_closest() -> None:
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    hashes = np.array([flip(rng, base, k) for k in (9, 3, 0, 7, 3)])
    index = build(PdqIndex, np.array([10, 11, 12, 13, 14]), hashes, TABLES)
    assert index.search(base, limit=3).pairs() == [(12, 0), (11, 3), (14, 3)]


# ---- changes --------------------------------------------------------------------------------------------------

def test_incremental_tables_equal_a_full_rebuild() -> None:
    rng = np.random.default_rng(5)
    hashes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    hashes[1000:1400] = hashes[0]  # a fat bucket
    index = PdqIndex(tuning=Tuning(min_indexed=500, max_delta=300, delta_fraction=1.0))
    for s in range(0, 3000, 250):
        index.add(np.arange(s, s + 250), hashes[s:s + 250])
    index.merge()
    assert index.stats() | {"nbytes": 0} == {"rows": 3000, "live": 3000, "indexed": 3000, "delta": 0, "removed": 0,
                                             "nbytes": 0}
    rows, offsets = _build_tables(hashes)
    assert np.array_equal(index._rows, rows) and np.array_equal(index._offsets, offsets)
    index.remove(np.arange(0, 3000, 3))
    index.merge()
    keep = np.arange(3000) % 3 != 0
    rows, offsets = _build_tables(hashes[keep])
    assert np.array_equal(index._rows, rows) and np.array_equal(index._offsets, offsets)
    assert np.array_equal(index._ids, np.arange(3000)[keep])


def test_add_remove_readd_stay_exact() -> None:
    rng = np.random.default_rng(6)
    seeds, members = clustered(rng, 6, 50)
    ids = np.arange(len(members), dtype=np.int64)
    alive = np.zeros(len(members), bool)
    index = PdqIndex(tuning=Tuning(min_indexed=64, max_delta=50, delta_fraction=0.5, compact_fraction=0.3))
    for step, s in enumerate(range(0, len(members), 45)):
        index.add(ids[s:s + 45], members[s:s + 45])
        alive[s:s + 45] = True
        gone = rng.choice(min(s + 45, len(members)), 10, replace=False)
        assert index.remove(ids[gone]) == int(alive[gone].sum())
        alive[gone] = False
        if step % 2:
            back = gone[:3]
            index.add(ids[back], members[back])
            alive[back] = True
        assert len(index) == int(alive.sum())
        for q in seeds:
            assert index.search(q).pairs() == reference(ids[alive], members[alive], q, 31)
    assert index.remove([10**12]) == 0


@pytest.mark.parametrize("kind", [PdqIndex, FlatPdqIndex])
def test_upsert_keeps_one_row_per_id(kind: type[PdqIndex] | type[FlatPdqIndex]) -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    index = build(kind, np.arange(300), hashes, TABLES)
    moved = flip(rng, hashes[5], 3)
    for _ in range(2):  # applying the same change twice is harmless
        index.upsert([5, 400], np.stack([moved, hashes[7]]))
    assert len(index) == 301
    assert index.search(moved, radius=0).pairs() == [(5, 0)]
    assert index.search(hashes[5], radius=2).pairs() == []
    assert index.search(hashes[7], radius=0).pairs() == [(7, 0), (400, 0)]


def test_a_removed_hash_stops_matching_at_once() -> None:
    index = PdqIndex()
    h = hashes_from_hex(["ab" * 32])
    index.add([1], h)
    assert index.search(h).pairs() == [(1, 0)]
    index.remove([1])
    assert index.search(h).pairs() == []
    assert len(index) == 0


def test_empty_index() -> None:
    for index in (PdqIndex(), FlatPdqIndex()):
        assert len(index) == 0
        hits = index.search("0" * 64)
        assert isinstance(hits, Hits) and hits.pairs() == [] and hits.ids.dtype == np.int64
        assert index.search_many(np.empty((0, 32), np.uint8)) == []
        assert index.remove([1, 2]) == 0
        index.add([], np.empty((0, 32), np.uint8))
        assert index.search("0" * 64, radius=256).pairs() == []


@pytest.mark.parametrize("radius", [-1, 257, 3.5, True, "31"])
def test_bad_radius(radius: object) -> None:
    with pytest.raises(PdqIndexError, match="radius"):
        PdqIndex().search("0" * 64, radius=radius)  # type: ignore[arg-type]
    with pytest.raises(PdqIndexError, match="radius"):
        FlatPdqIndex(radius=radius)  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    index = PdqIndex()
    h = np.zeros((2, 32), np.uint8)
    with pytest.raises(PdqIndexError, match="1 ids for 2 hashes"):
        index.add([1], h)
    with pytest.raises(PdqIndexError, match="integers"):
        index.add([1.5, 2.5], h)
    with pytest.raises(PdqIndexError, match="integers"):
        index.add([2**70, 1], h)
    with pytest.raises(PdqIndexError, match="64-bit"):
        index.add(np.array([2**63, 1], np.uint64), h)
    with pytest.raises(PdqIndexError, match="one hash"):
        index.search(h)
    with pytest.raises(SignalValueError, match="PDQ hash 0"):
        index.search("not a hash")


# ---- files ----------------------------------------------------------------------------------------------------

@pytest.fixture()
def saved(tmp_path: Path, random_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[PdqIndex, Path]:
    ids, hashes, _ = random_set
    index = build(PdqIndex, ids, hashes, Tuning(min_indexed=0, max_delta=10_000))
    index.add([99_999], hashes[:1])  # still in the delta: save folds it in
    index.remove(ids[:5])
    index.generation = 41
    index.save(tmp_path / "ix")
    return index, tmp_path / "ix"


@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(saved: tuple[PdqIndex, Path], random_set: tuple[np.ndarray, np.ndarray, np.ndarray],
                              mmap: bool) -> None:
    index, path = saved
    _, _, qs = random_set
    loaded = PdqIndex.load(path, mmap=mmap, tuning=TABLES)
    assert isinstance(loaded._hashes, np.memmap) == mmap
    assert loaded.generation == 41 and len(loaded) == len(index) == 2496
    for r in (0, 31, 64):
        assert [h.pairs() for h in loaded.search_many(qs, radius=r)] == [h.pairs() for h in index.search_many(qs, r)]
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    loaded.add([123_456], qs[:1])  # changes go to memory, never into the mapped files
    loaded.remove([99_999])
    loaded.merge()
    assert loaded.search(qs[0], radius=0).pairs() == [(123_456, 0)]
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert not any(p.name.endswith(".tmp") for p in path.iterdir())


def test_no_pickles_in_the_files(saved: tuple[PdqIndex, Path]) -> None:
    _, path = saved
    for file in path.glob("*.npy"):
        assert np.load(file, allow_pickle=False).dtype != object


def test_flat_round_trip_and_dispatch(tmp_path: Path, random_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ids, hashes, qs = random_set
    flat = build(FlatPdqIndex, ids, hashes)
    flat.remove(ids[:3])
    flat.save(tmp_path / "flat")
    build(PdqIndex, ids, hashes).save(tmp_path / "mih")
    loaded = load_pdq_index(tmp_path / "flat")
    assert isinstance(loaded, FlatPdqIndex) and isinstance(load_pdq_index(tmp_path / "mih"), PdqIndex)
    assert [h.pairs() for h in loaded.search_many(qs)] == [h.pairs() for h in flat.search_many(qs)]
    loaded.add([77], qs[:1])
    assert loaded.search(qs[0], radius=0).pairs() == [(77, 0)]
    with pytest.raises(PdqIndexError, match="not 'mih'"):
        PdqIndex.load(tmp_path / "flat")


def test_empty_round_trip(tmp_path: Path) -> None:
    PdqIndex().save(tmp_path / "e")
    for mmap in (True, False):
        loaded = PdqIndex.load(tmp_path / "e", mmap=mmap)
        assert len(loaded) == 0 and loaded.search("0" * 64).pairs() == []


def _rewrite(path: Path, name: str, arr: np.ndarray) -> None:
    """Replace an array and fix its manifest entry, as a careful attacker would."""
    import hashlib

    np.save(path / f"{name}.npy", arr, allow_pickle=True)
    manifest = json.loads((path / "manifest.json").read_text())
    data = (path / f"{name}.npy").read_bytes()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_tampered_byte_is_caught(saved: tuple[PdqIndex, Path]) -> None:
    _, path = saved
    data = bytearray((path / "hashes.npy").read_bytes())
    data[-1] ^= 1
    (path / "hashes.npy").write_bytes(bytes(data))
    with pytest.raises(PdqIndexError, match=r"hashes\.npy: checksum mismatch"):
        PdqIndex.load(path)
    assert len(PdqIndex.load(path, verify=False)) == 2496  # trusted storage may skip the read-through


@pytest.mark.parametrize("name", ["hashes", "ids", "rows", "offsets"])
def test_truncated_file_is_caught_without_reading_it(saved: tuple[PdqIndex, Path], name: str) -> None:
    _, path = saved
    file = path / f"{name}.npy"
    file.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(PdqIndexError, match=rf"{name}\.npy: .* bytes, manifest says"):
        PdqIndex.load(path, verify=False)


def test_missing_or_foreign_manifest(saved: tuple[PdqIndex, Path], tmp_path: Path) -> None:
    _, path = saved
    with pytest.raises(PdqIndexError, match=r"no manifest\.json"):
        PdqIndex.load(tmp_path / "nowhere")
    manifest = json.loads((path / "manifest.json").read_text())
    for change, message in (({"version": 99}, "format version 99"), ({"format": "faiss"}, "not a jieyao-pdq-index"),
                            ({"n": -1}, "valid n"), ({"generation": "x"}, "generation"),
                            ({"chunks": 32}, "chunk layout"), ({"radius": 999}, "radius")):
        (path / "manifest.json").write_text(json.dumps(manifest | change))
        with pytest.raises(PdqIndexError, match=message):
            PdqIndex.load(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(PdqIndexError, match="unreadable manifest"):
        PdqIndex.load(path)
    (path / "manifest.json").unlink()
    (path / "hashes.npy").unlink()
    with pytest.raises(PdqIndexError, match=r"no manifest\.json"):
        PdqIndex.load(path)


def test_consistent_but_hostile_arrays_are_refused(saved: tuple[PdqIndex, Path]) -> None:
    index, path = saved
    n = len(index)
    bad_rows = np.array(index._rows)
    bad_rows[3, 7] = n + 5
    _rewrite(path, "rows", bad_rows)
    with pytest.raises(PdqIndexError, match="points outside"):
        PdqIndex.load(path)
    with pytest.raises(PdqIndexError, match="damaged"):  # unverified: refused at lookup, not an IndexError
        loaded = PdqIndex.load(path, verify=False, tuning=TABLES)
        for q in np.asarray(index._hashes):
            loaded.search(q)
    _rewrite(path, "rows", np.array(index._rows))
    bad_offsets = np.array(index._offsets)
    bad_offsets[2, 100] = bad_offsets[2, 101] + 1
    _rewrite(path, "offsets", bad_offsets)
    with pytest.raises(PdqIndexError, match="offsets table is inconsistent"):
        PdqIndex.load(path)
    _rewrite(path, "offsets", np.array(index._offsets))
    _rewrite(path, "ids", np.array([object()] * n, dtype=object))  # a pickle inside an .npy
    with pytest.raises(PdqIndexError, match=r"ids\.npy: not a readable \.npy array"):
        PdqIndex.load(path)
    _rewrite(path, "ids", np.zeros(n, np.int32))
    with pytest.raises(PdqIndexError, match="expected <i8"):
        PdqIndex.load(path)
