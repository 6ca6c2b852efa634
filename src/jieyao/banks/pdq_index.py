"""PDQ lookup by Hamming distance that stays fast and small at 10 million hashes, updated as banks change.

`PdqIndex` is exact multi-index hashing (MIH) in numpy: each 256-bit hash is cut into 16 chunks of 16 bits and,
per chunk, a CSR table maps a chunk value to the rows holding it. By pigeonhole, two hashes within distance r
agree to within r // 16 bits on at least one chunk, so probing each chunk's buckets within that many bit flips
finds every match (no approximation); candidates are then checked by their exact distance, so a damaged table
can only lose matches, never invent one. Where the probes would touch more rows than a scan (a large radius, or
a query landing in a huge cluster of near-identical hashes) it scans instead, so the
worst case is bounded by brute force. New hashes wait in a small unindexed delta (scanned) and are merged into
the tables in O(n) without re-sorting; removals are tombstones, compacted later.

`FlatPdqIndex` is the brute-force baseline with the same API, stored column-wise so a scan reads two words of
each hash before touching the other two.

Both persist as raw `.npy` files plus a JSON manifest with SHA-256 checksums, written and read with
`allow_pickle=False`: HMA pickles its indexes (a trust boundary we do not copy). Bit order is the hex string's:
the first hex digit is the high nibble of byte 0.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from jieyao.hashing.signals import SignalType, SignalValueError, normalise_value

HASH_BYTES = 32
WORDS = 4
CHUNKS = 16
CHUNK_VALUES = 1 << 16
DEFAULT_RADIUS = 31
MAX_RADIUS = 256
MAX_PROBE_BITS = 3
"""Per-chunk flips probed at most (697 probes a chunk); a larger radius scans, which is then cheaper."""
FORMAT = "jieyao-pdq-index"
FORMAT_VERSION = 1
_BLOCK = 1 << 16
_GATHER = 1 << 18
_ALL_64 = 0x40404040
_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 20

HashInput: TypeAlias = "str | bytes | bytearray | memoryview | Sequence[str] | npt.NDArray[Any]"
U8: TypeAlias = npt.NDArray[np.uint8]
U64: TypeAlias = npt.NDArray[np.uint64]
I64: TypeAlias = npt.NDArray[np.int64]


class PdqIndexError(ValueError):
    """Bad input to an index, or an index directory that is damaged, truncated or of another format."""


class Hits(NamedTuple):
    """Matches of one query, closest first (ties by id); unpack as `ids, distances = hits`."""

    ids: I64
    distances: npt.NDArray[np.int32]

    def pairs(self) -> list[tuple[int, int]]:
        return list(zip(self.ids.tolist(), self.distances.tolist(), strict=True))


@dataclass(frozen=True)
class Tuning:
    """When to index, merge, scan and compact. Defaults are measured (bench/pdq_index.py); tests force paths."""

    min_indexed: int = 32_768
    """Below this many hashes a scan beats the tables (measured crossover 16k-32k, ~0.04 ms either way):
    everything stays in the delta."""
    max_delta: int = 65_536
    """Delta rows at most before a merge (scanning 64k rows column-wise costs ~0.1 ms)."""
    delta_fraction: float = 1 / 16
    """...or this share of the indexed rows, whichever is smaller, once past `min_indexed`."""
    scan_fraction: float = 1 / 4
    """Scan instead of probing when the probed buckets hold more than this share of the rows (at 10M, probing
    1.1M candidates took ~30 ms, a scan ~75 ms; a candidate costs ~30 ns, a scanned row ~7 ns)."""
    compact_fraction: float = 1 / 4
    """Compact tombstones away once this share of the indexed rows is removed."""


# ---- hash conversion ------------------------------------------------------------------------------------------

def hashes_from_hex(hexes: Sequence[str]) -> U8:
    """(n, 32) uint8 from 64-hex PDQ strings, vectorised; a bad one raises SignalValueError naming its index."""
    n = len(hexes)
    if n == 0:
        return np.empty((0, HASH_BYTES), np.uint8)
    try:
        if all(isinstance(h, str) and len(h) == 64 for h in hexes):
            raw = bytes.fromhex("".join(hexes))
            if len(raw) == n * HASH_BYTES:  # fromhex skips whitespace: a short result means some was there
                return np.frombuffer(raw, np.uint8).reshape(n, HASH_BYTES).copy()
    except ValueError:
        pass
    out = np.empty((n, HASH_BYTES), np.uint8)
    for i, h in enumerate(hexes):
        if not isinstance(h, str):
            raise SignalValueError(f"PDQ hash {i}: expected a hex string, got {type(h).__name__}")
        try:
            out[i] = np.frombuffer(bytes.fromhex(normalise_value(SignalType.PDQ, h)), np.uint8)
        except SignalValueError as exc:
            raise SignalValueError(f"PDQ hash {i}: {exc}") from None
    return out


def hashes_to_hex(hashes: HashInput) -> list[str]:
    arr = as_hashes(hashes)
    text = arr.tobytes().hex()
    return [text[i:i + 64] for i in range(0, len(text), 64)]


def as_hashes(hashes: HashInput) -> U8:
    """Any accepted hash form as a C-contiguous (n, 32) uint8 array: hex string(s), raw bytes (32 per hash),
    uint8 (..., 32) or uint64 (..., 4) arrays."""
    if isinstance(hashes, str):
        return hashes_from_hex([hashes])
    if isinstance(hashes, bytes | bytearray | memoryview):
        raw = bytes(hashes)
        if len(raw) % HASH_BYTES:
            raise PdqIndexError(f"raw PDQ hashes are 32 bytes each; got {len(raw)} bytes")
        return np.frombuffer(raw, np.uint8).reshape(-1, HASH_BYTES).copy()
    if isinstance(hashes, np.ndarray):
        arr = hashes
        if arr.dtype.kind == "U":
            return hashes_from_hex(arr.ravel().tolist())
        if arr.dtype == np.uint64 and arr.shape[-1:] == (WORDS,):
            arr = np.ascontiguousarray(arr).view(np.uint8)
        if arr.dtype != np.uint8 or arr.shape[-1:] != (HASH_BYTES,) or arr.ndim > 2:
            raise PdqIndexError(f"PDQ hash arrays are uint8 (n, 32) or uint64 (n, 4); got {arr.dtype} {arr.shape}")
        return np.ascontiguousarray(arr.reshape(-1, HASH_BYTES))
    return hashes_from_hex(list(hashes))


def _words(hashes: U8) -> U64:
    return hashes.view(np.uint64)


def _as_ids(ids: Iterable[int] | npt.ArrayLike, n: int | None = None) -> I64:
    try:
        arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids) if isinstance(ids, Iterable) else ids)
    except (OverflowError, ValueError, TypeError) as exc:
        raise PdqIndexError(f"ids must be 64-bit integers: {exc}") from None
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise PdqIndexError(f"ids must be a 1-D sequence of integers; got {arr.dtype} {arr.shape}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise PdqIndexError("ids must fit in a signed 64-bit integer")
    if n is not None and len(arr) != n:
        raise PdqIndexError(f"{len(arr)} ids for {n} hashes")
    return arr.astype(np.int64)


def _radius(radius: int | None, default: int) -> int:
    r = default if radius is None else radius
    if isinstance(r, bool) or not isinstance(r, int | np.integer) or not 0 <= r <= MAX_RADIUS:
        raise PdqIndexError(f"radius must be an integer 0..{MAX_RADIUS}; got {r!r}")
    return int(r)


# ---- scans ----------------------------------------------------------------------------------------------------

def _scan_rows(words: U64, q: U64, r: int) -> npt.NDArray[np.intp]:
    """Rows of row-major (n, 4) `words` within distance r of q, in blocks so memory stays bounded."""
    if r >= MAX_RADIUS:
        return np.arange(len(words), dtype=np.intp)
    out: list[npt.NDArray[np.intp]] = []
    for s in range(0, len(words), _BLOCK):
        counts = np.bitwise_count(words[s:s + _BLOCK] ^ q).view(np.uint32).ravel()
        # The four per-word counts as bytes of one uint32; * 0x01010101 sums them into the top byte. Only 256
        # (every bit differs) wraps, to 0, so those rows are excluded explicitly.
        dist = (counts * np.uint32(0x01010101)) >> np.uint32(24)
        out.append(np.flatnonzero((dist <= r) & (counts != _ALL_64)) + s)
    return np.concatenate(out) if out else np.empty(0, np.intp)


def _scan_columns(cols: U64, n: int, q: U64, r: int) -> npt.NDArray[np.intp]:
    """Rows of column-major (4, cap) `cols[:, :n]` within r of q: two words first, the rest for survivors."""
    if r >= MAX_RADIUS:
        return np.arange(n, dtype=np.intp)
    out: list[npt.NDArray[np.intp]] = []
    for s in range(0, n, _BLOCK):
        e = min(n, s + _BLOCK)
        head = np.bitwise_count(cols[0, s:e] ^ q[0])
        head += np.bitwise_count(cols[1, s:e] ^ q[1])  # <= 128: fits uint8
        cand = np.flatnonzero(head <= r)
        if len(cand):
            rows = cand + s
            dist = (head[cand].astype(np.uint16) + np.bitwise_count(cols[2, rows] ^ q[2])
                    + np.bitwise_count(cols[3, rows] ^ q[3]))
            out.append(rows[dist <= r])
    return np.concatenate(out) if out else np.empty(0, np.intp)


def _distances(words: U64, q: U64) -> npt.NDArray[np.int32]:
    return np.bitwise_count(words ^ q).sum(axis=1, dtype=np.int32)


def _sorted_hits(ids: I64, dists: npt.NDArray[np.int32], limit: int | None) -> Hits:
    order = np.lexsort((ids, dists))
    if limit is not None:
        order = order[:limit]
    return Hits(ids[order], dists[order])


def _distinct(rows: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Sorted distinct rows. np.unique would do, but numpy 2.4 takes a hash-table path for it that is ~10x
    slower than sorting (180 ms for the 1M hits of a query in a hot spot)."""
    if len(rows) < 2:
        return rows
    rows = np.sort(rows)
    keep = np.empty(len(rows), bool)
    keep[0] = True
    np.not_equal(rows[1:], rows[:-1], out=keep[1:])
    return rows[keep]


def _flip_masks(bits: int) -> npt.NDArray[np.intp]:
    values = np.arange(CHUNK_VALUES, dtype=np.uint32)
    return values[np.bitwise_count(values) <= bits].astype(np.intp)


_FLIPS = [_flip_masks(b) for b in range(MAX_PROBE_BITS + 1)]


# ---- the baseline ---------------------------------------------------------------------------------------------

class _Lookups:
    """`search` and `search_many` for both indexes, over each one's `_search`."""

    radius: int

    def _search(self, q: U64, r: int, limit: int | None) -> Hits:
        raise NotImplementedError

    def search(self, query: HashInput, radius: int | None = None, limit: int | None = None) -> Hits:
        """Ids within `radius` (default the index's) of one hash, closest first; at most `limit` of them."""
        return self._search(_one_query(query), _radius(radius, self.radius), limit)

    def search_many(self, queries: HashInput, radius: int | None = None, limit: int | None = None) -> list[Hits]:
        """One `Hits` per query, in order."""
        r = _radius(radius, self.radius)
        return [self._search(q, r, limit) for q in _words(as_hashes(queries))]


class FlatPdqIndex(_Lookups):
    """Brute force over every hash: the baseline, and the delta of `PdqIndex`. Same API as `PdqIndex`."""

    kind = "flat"

    def __init__(self, radius: int = DEFAULT_RADIUS, compact_fraction: float = 1 / 4) -> None:
        self.radius = _radius(radius, DEFAULT_RADIUS)
        self.generation: int | None = None
        """The bank state this index was built from, as the caller numbers it; saved and loaded with it."""
        self._compact_fraction = compact_fraction
        self._cols: U64 = np.empty((WORDS, 0), np.uint64)
        self._ids: I64 = np.empty(0, np.int64)
        self._dead: npt.NDArray[np.bool_] | None = None
        self._n = 0
        self._n_dead = 0

    def __len__(self) -> int:
        return self._n - self._n_dead

    def add(self, ids: Iterable[int] | npt.ArrayLike, hashes: HashInput) -> None:
        """Append hashes with their ids. Ids are labels, not keys: several rows may share one (or one hash)."""
        h = as_hashes(hashes)
        i = _as_ids(ids, len(h))
        self._append(i, _words(h))

    def upsert(self, ids: Iterable[int] | npt.ArrayLike, hashes: HashInput) -> None:
        """Add, first removing rows that already carry these ids, so applying a bank's changes (such as
        `BankStore.changes_since`) twice, or re-applying a changed row, leaves one row per id."""
        h = as_hashes(hashes)
        i = _as_ids(ids, len(h))
        self.remove(i)
        self.add(i, h)

    def _append(self, ids: I64, words: U64) -> None:
        need = self._n + len(ids)
        if need > self._cols.shape[1]:
            cap = max(need, 2 * self._cols.shape[1], 1024)
            cols = np.empty((WORDS, cap), np.uint64)
            cols[:, :self._n] = self._cols[:, :self._n]
            new_ids = np.empty(cap, np.int64)
            new_ids[:self._n] = self._ids[:self._n]
            self._cols, self._ids = cols, new_ids
            if self._dead is not None:
                dead = np.zeros(cap, bool)
                dead[:self._n] = self._dead[:self._n]
                self._dead = dead
        self._cols[:, self._n:need] = words.T
        self._ids[self._n:need] = ids
        self._n = need

    def remove(self, ids: Iterable[int] | npt.ArrayLike) -> int:
        """Stop matching every row carrying one of `ids`; returns how many rows that was."""
        gone = _as_ids(ids)
        if not self._n or not len(gone):
            return 0
        hit = np.isin(self._ids[:self._n], gone)
        if self._dead is None:
            self._dead = np.zeros(self._cols.shape[1], bool)
        new = hit & ~self._dead[:self._n]
        count = int(new.sum())
        self._dead[:self._n] |= new
        self._n_dead += count
        if self._n_dead > self._n * self._compact_fraction:
            self.compact()
        return count

    def compact(self) -> None:
        """Drop removed rows for good."""
        if self._dead is None:
            return
        keep = ~self._dead[:self._n]
        self._cols = np.ascontiguousarray(self._cols[:, :self._n][:, keep])
        self._ids = self._ids[:self._n][keep]
        self._n = len(self._ids)
        self._dead, self._n_dead = None, 0

    def live(self) -> tuple[I64, U8]:
        """(ids, (n, 32) hashes) of the rows still matching, in insertion order."""
        keep = slice(None) if self._dead is None else ~self._dead[:self._n]
        words = np.ascontiguousarray(self._cols[:, :self._n].T[keep])
        return self._ids[:self._n][keep], words.view(np.uint8).reshape(-1, HASH_BYTES)

    def _search(self, q: U64, r: int, limit: int | None) -> Hits:
        rows = _scan_columns(self._cols, self._n, q, r)
        if self._dead is not None and len(rows):
            rows = rows[~self._dead[rows]]
        dists = _distances(self._cols[:, rows].T, q)
        return _sorted_hits(self._ids[rows], dists, limit)

    def stats(self) -> dict[str, int]:
        return {"rows": self._n, "live": len(self), "removed": self._n_dead,
                "nbytes": self._cols.nbytes + self._ids.nbytes + (0 if self._dead is None else self._dead.nbytes)}

    def save(self, path: str | Path) -> None:
        """Write `path/` (created if missing): removed rows are compacted away first."""
        self.compact()
        _save(Path(path), self.kind, {"generation": self.generation, "radius": self.radius},
              {"columns": np.ascontiguousarray(self._cols[:, :self._n]), "ids": self._ids[:self._n]})

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True, verify: bool = True) -> FlatPdqIndex:
        meta, arrays = _load(Path(path), cls.kind, mmap, verify, {
            "columns": ("<u8", lambda n: (WORDS, n)), "ids": ("<i8", lambda n: (n,))})
        index = cls(radius=meta["radius"])
        index.generation = meta["generation"]
        index._cols, index._ids, index._n = arrays["columns"], arrays["ids"], meta["n"]
        return index


def _one_query(query: HashInput) -> U64:
    q = as_hashes(query)
    if len(q) != 1:
        raise PdqIndexError(f"search takes one hash; got {len(q)} (use search_many)")
    return _words(q)[0]


# ---- multi-index hashing ------------------------------------------------------------------------------------

class PdqIndex(_Lookups):
    """Exact multi-index hashing over 16 chunks of 16 bits, plus a scanned delta of recent additions.

    Not safe for a write (add, remove, merge, compact, save) concurrent with anything else: callers that share
    one index between threads hold a lock around writes, or build a new index aside and swap it in."""

    kind = "mih"

    def __init__(self, radius: int = DEFAULT_RADIUS, tuning: Tuning | None = None) -> None:
        self.radius = _radius(radius, DEFAULT_RADIUS)
        self.tuning = tuning or Tuning()
        self.generation: int | None = None
        """The bank state this index was built from, as the caller numbers it; saved and loaded with it."""
        self._delta = FlatPdqIndex(self.radius, compact_fraction=2.0)  # compacted at merge, not on its own
        self._set_main(np.empty((0, HASH_BYTES), np.uint8), np.empty(0, np.int64),
                       np.empty((CHUNKS, 0), np.uint32), np.zeros((CHUNKS, CHUNK_VALUES + 1), np.int64))

    def _set_main(self, hashes: U8, ids: I64, rows: npt.NDArray[np.uint32], offsets: I64,
                  dead: npt.NDArray[np.bool_] | None = None) -> None:
        self._hashes, self._ids, self._rows, self._offsets = hashes, ids, rows, offsets
        n = len(ids)
        self._n = n
        self._flat_offsets = ((offsets + (np.arange(CHUNKS, dtype=np.int64) * n)[:, None]).ravel() if n
                              else np.empty(0, np.int64))  # an empty index stays small
        self._flat_rows = rows.reshape(-1)
        self._n_dead = 0 if dead is None else int(dead.sum())
        self._dead = dead if self._n_dead else None

    def __len__(self) -> int:
        return self._n - self._n_dead + len(self._delta)

    # -- changes --

    def add(self, ids: Iterable[int] | npt.ArrayLike, hashes: HashInput) -> None:
        """Add hashes with their ids (labels, not keys: rows may share an id or a hash). Searchable at once."""
        h = as_hashes(hashes)
        i = _as_ids(ids, len(h))
        if len(self._delta) + len(i) >= self._delta_limit():
            self._merge(i, h)
        else:
            self._delta.add(i, h)

    def upsert(self, ids: Iterable[int] | npt.ArrayLike, hashes: HashInput) -> None:
        """Add, first removing rows that already carry these ids, so applying a bank's changes (such as
        `BankStore.changes_since`) twice, or re-applying a changed row, leaves one row per id."""
        h = as_hashes(hashes)
        i = _as_ids(ids, len(h))
        self.remove(i)
        self.add(i, h)

    def _delta_limit(self) -> int:
        t = self.tuning
        if self._n < t.min_indexed:
            return t.min_indexed
        return max(1, min(t.max_delta, int(self._n * t.delta_fraction)))

    def remove(self, ids: Iterable[int] | npt.ArrayLike) -> int:
        """Stop matching every row carrying one of `ids` (at once); returns how many rows that was."""
        gone = _as_ids(ids)
        count = self._delta.remove(gone)
        if self._n and len(gone):
            hit = np.isin(self._ids, gone)
            if self._dead is None:
                self._dead = np.zeros(self._n, bool)
            new = hit & ~self._dead
            added = int(new.sum())
            self._dead |= new
            self._n_dead += added
            count += added
            if self._n_dead > self._n * self.tuning.compact_fraction:
                self.compact()
        return count

    def merge(self) -> None:
        """Fold the delta into the tables now; removed rows stay tombstones until compact()."""
        self._merge(np.empty(0, np.int64), np.empty((0, HASH_BYTES), np.uint8))

    def compact(self) -> None:
        """Fold the delta in and drop removed rows for good (save() does this first). O(n) random reads: at
        10M hashes, seconds; otherwise done only once `Tuning.compact_fraction` of the rows are removed."""
        self._merge(np.empty(0, np.int64), np.empty((0, HASH_BYTES), np.uint8), compact=True)

    def _merge(self, more_ids: I64, more_hashes: U8, compact: bool = False) -> None:
        d_ids, d_hashes = self._delta.live()
        new_ids = np.concatenate([d_ids, more_ids])
        new_hashes = np.concatenate([d_hashes, more_hashes])
        self._delta = FlatPdqIndex(self.radius, compact_fraction=2.0)
        if len(new_ids) * 4 > self._n:  # cheaper to sort everything again; removed rows go with it
            keep = slice(None) if self._dead is None else ~self._dead
            hashes = np.concatenate([self._hashes[keep], new_hashes])
            rows, offsets = _build_tables(hashes)
            self._set_main(hashes, np.concatenate([self._ids[keep], new_ids]), rows, offsets)
            return
        if self._dead is not None and (compact or self._n_dead > self._n * self.tuning.compact_fraction):
            self._compact_main()
        if len(new_ids):
            self._insert(new_ids, new_hashes)

    def _insert(self, new_ids: I64, new_hashes: U8) -> None:
        """Merge a few new rows into the tables without re-sorting: each goes at the end of its bucket, so every
        bucket stays in row order and the tables equal a full rebuild's. Writes straight into the new tables
        (no per-chunk temporaries: at 10M rows, first-touch page faults are most of the cost)."""
        n, k = self._n, len(new_ids)
        if n + k >= 1 << 32:
            raise PdqIndexError("a PDQ index holds fewer than 2**32 hashes")
        chunks = new_hashes.view("<u2")
        new_rows = np.arange(n, n + k, dtype=np.uint32)
        rows = np.empty((CHUNKS, n + k), np.uint32)
        offsets = np.empty((CHUNKS, CHUNK_VALUES + 1), np.int64)
        old_slot = np.ones(n + k, bool)
        shift = np.arange(k)
        for j in range(CHUNKS):
            values = chunks[:, j].astype(np.intp)
            order = np.argsort(values, kind="stable")
            dest = self._offsets[j][values[order] + 1] + shift
            old_slot[dest] = False
            rows[j][old_slot] = self._rows[j]
            rows[j][dest] = new_rows[order]
            old_slot[dest] = True
            offsets[j, 0] = 0
            np.cumsum(np.bincount(values, minlength=CHUNK_VALUES), out=offsets[j, 1:])
            offsets[j] += self._offsets[j]
        dead = None if self._dead is None else np.concatenate([self._dead, np.zeros(k, bool)])
        self._set_main(np.concatenate([self._hashes, new_hashes]), np.concatenate([self._ids, new_ids]),
                       rows, offsets, dead)

    def _compact_main(self) -> None:
        assert self._dead is not None
        keep = ~self._dead
        renumber = (np.cumsum(keep, dtype=np.int64) - 1).astype(np.uint32)
        n = int(keep.sum())
        hashes = self._hashes[keep]
        rows = np.empty((CHUNKS, n), np.uint32)
        offsets = np.empty((CHUNKS, CHUNK_VALUES + 1), np.int64)
        chunks = hashes.view("<u2")
        for j in range(CHUNKS):
            r = self._rows[j]
            rows[j] = np.take(renumber, r[keep[r]])
            offsets[j, 0] = 0
            np.cumsum(np.bincount(chunks[:, j], minlength=CHUNK_VALUES), out=offsets[j, 1:])
        self._set_main(hashes, self._ids[keep], rows, offsets)

    # -- lookups --

    def _search(self, q: U64, r: int, limit: int | None) -> Hits:
        words = _words(self._hashes)
        rows = self._candidates(q, r, words)
        if self._dead is not None and len(rows):
            rows = rows[~self._dead[rows]]
        ids, dists = self._ids[rows], _distances(np.take(words, rows, axis=0), q)
        d_ids, d_dists = self._delta._search(q, r, None)
        if len(d_ids):
            ids, dists = np.concatenate([ids, d_ids]), np.concatenate([dists, d_dists])
        return _sorted_hits(ids, dists, limit)

    def _candidates(self, q: U64, r: int, words: U64) -> npt.NDArray[np.intp]:
        n = self._n
        bits = r // CHUNKS
        if n == 0:
            return np.empty(0, np.intp)
        if n < self.tuning.min_indexed or bits > MAX_PROBE_BITS:
            return _scan_rows(words, q, r)
        qchunks = q.view("<u2").astype(np.intp)
        keys = ((qchunks[:, None] ^ _FLIPS[bits][None, :])
                + (np.arange(CHUNKS, dtype=np.intp) * (CHUNK_VALUES + 1))[:, None]).ravel()
        starts = self._flat_offsets[keys]
        lengths = self._flat_offsets[keys + 1] - starts
        total = int(lengths.sum())
        if total > n * self.tuning.scan_fraction:
            return _scan_rows(words, q, r)
        ends = np.cumsum(lengths)
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)
        cand = np.take(self._flat_rows, pos)
        found: list[npt.NDArray[np.intp]] = []
        for s in range(0, total, _GATHER):
            part = cand[s:s + _GATHER]
            try:
                got = np.take(words, part, axis=0)
            except IndexError:
                raise PdqIndexError("rows table points outside the index (damaged index)") from None
            np.bitwise_xor(got, q, out=got)
            counts = np.bitwise_count(got).view(np.uint32).ravel()
            dist = (counts * np.uint32(0x01010101)) >> np.uint32(24)
            found.append(part[(dist <= r) & (counts != _ALL_64)].astype(np.intp))
        return _distinct(np.concatenate(found)) if found else np.empty(0, np.intp)

    def stats(self) -> dict[str, int]:
        main = self._hashes.nbytes + self._ids.nbytes + self._rows.nbytes + self._offsets.nbytes
        main += self._flat_offsets.nbytes + (0 if self._dead is None else self._dead.nbytes)
        return {"rows": self._n + self._delta.stats()["rows"], "live": len(self), "indexed": self._n,
                "delta": len(self._delta), "removed": self._n_dead, "nbytes": main + self._delta.stats()["nbytes"]}

    # -- persistence --

    def save(self, path: str | Path) -> None:
        """Write `path/` (created if missing); the delta is merged and removed rows dropped first."""
        self.compact()
        _save(Path(path), self.kind, {"generation": self.generation, "radius": self.radius,
                                      "chunks": CHUNKS, "chunk_bits": 16, "chunk_dtype": "<u2"},
              {"hashes": self._hashes, "ids": self._ids, "rows": self._rows, "offsets": self._offsets})

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True, verify: bool = True,
             tuning: Tuning | None = None) -> PdqIndex:
        """Open a saved index; with mmap the arrays stay on disk, read-only, and changes go to new arrays.
        `verify` checks every checksum and that the tables point inside the index (reads every byte)."""
        meta, a = _load(Path(path), cls.kind, mmap, verify, {
            "hashes": ("|u1", lambda n: (n, HASH_BYTES)), "ids": ("<i8", lambda n: (n,)),
            "rows": ("<u4", lambda n: (CHUNKS, n)), "offsets": ("<i8", lambda n: (CHUNKS, CHUNK_VALUES + 1))})
        if (meta.get("chunks"), meta.get("chunk_bits"), meta.get("chunk_dtype")) != (CHUNKS, 16, "<u2"):
            raise PdqIndexError(f"{path}: chunk layout {meta.get('chunks')}x{meta.get('chunk_bits')} is not 16x16")
        n, off = meta["n"], a["offsets"]
        if (off[:, 0] != 0).any() or (off[:, -1] != n).any() or (np.diff(off, axis=1) < 0).any():
            raise PdqIndexError(f"{path}: offsets table is inconsistent (damaged index)")
        if verify and n and int(a["rows"].max()) >= n:
            raise PdqIndexError(f"{path}: rows table points outside the index (damaged index)")
        index = cls(radius=meta["radius"], tuning=tuning)
        index.generation = meta["generation"]
        index._set_main(a["hashes"], a["ids"], a["rows"], np.asarray(off))
        return index


def _build_tables(hashes: U8) -> tuple[npt.NDArray[np.uint32], I64]:
    """Per chunk, rows sorted by chunk value (stable: radix sort on uint16, O(n)) and bucket offsets."""
    n = len(hashes)
    if n >= 1 << 32:
        raise PdqIndexError("a PDQ index holds fewer than 2**32 hashes")
    chunks = hashes.view("<u2")
    rows = np.empty((CHUNKS, n), np.uint32)
    offsets = np.empty((CHUNKS, CHUNK_VALUES + 1), np.int64)
    for j in range(CHUNKS):
        col = chunks[:, j]
        rows[j] = np.argsort(col, kind="stable")
        offsets[j, 0] = 0
        np.cumsum(np.bincount(col, minlength=CHUNK_VALUES), out=offsets[j, 1:])
    return rows, offsets


def load_pdq_index(path: str | Path, mmap: bool = True, verify: bool = True) -> PdqIndex | FlatPdqIndex:
    """Open a saved index of either kind."""
    kind = _read_manifest(Path(path)).get("kind")
    if kind == FlatPdqIndex.kind:
        return FlatPdqIndex.load(path, mmap=mmap, verify=verify)
    return PdqIndex.load(path, mmap=mmap, verify=verify)


# ---- files ----------------------------------------------------------------------------------------------------

def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _save(path: Path, kind: str, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> None:
    """Arrays first (each to a temporary name, then renamed), the manifest last: a half-written save fails its
    checksums on load instead of answering from mixed states."""
    path.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for name, arr in arrays.items():
        tmp, final = path / f".{name}.npy.tmp", path / f"{name}.npy"
        with tmp.open("wb") as f:
            np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
        os.replace(tmp, final)
        files[name] = {"sha256": _file_sha256(final), "bytes": final.stat().st_size}
    n = len(arrays["ids"])
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind, "n": n, **meta, "files": files}
    tmp = path / f".{_MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path / _MANIFEST)


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / _MANIFEST
    try:
        if file.stat().st_size > _MAX_MANIFEST_BYTES:
            raise PdqIndexError(f"{file}: manifest is too large to be one of ours")
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PdqIndexError(f"{path}: not a PDQ index (no {_MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PdqIndexError(f"{file}: unreadable manifest: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PdqIndexError(f"{file}: not a {FORMAT} manifest")
    if meta.get("version") != FORMAT_VERSION:
        raise PdqIndexError(f"{file}: format version {meta.get('version')!r}; this jieyao reads {FORMAT_VERSION}")
    return meta


def _load(path: Path, kind: str, mmap: bool, verify: bool,
          spec: dict[str, tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    meta = _read_manifest(path)
    if meta.get("kind") != kind:
        raise PdqIndexError(f"{path}: holds a {meta.get('kind')!r} index, not {kind!r}")
    n, files, generation = meta.get("n"), meta.get("files"), meta.get("generation")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or not isinstance(files, dict):
        raise PdqIndexError(f"{path}: manifest lacks a valid n or file list")
    if generation is not None and (isinstance(generation, bool) or not isinstance(generation, int)):
        raise PdqIndexError(f"{path}: manifest generation must be an integer or null")
    try:
        meta["radius"] = _radius(meta.get("radius"), DEFAULT_RADIUS)
    except PdqIndexError as exc:
        raise PdqIndexError(f"{path}: manifest {exc}") from None
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, (dtype, shape_of) in spec.items():
        file, entry = path / f"{name}.npy", files.get(name)
        if not isinstance(entry, dict):
            raise PdqIndexError(f"{path}: manifest does not list {name}.npy")
        try:
            size = file.stat().st_size
        except OSError:
            raise PdqIndexError(f"{file}: missing") from None
        if size != entry.get("bytes"):
            raise PdqIndexError(f"{file}: {size} bytes, manifest says {entry.get('bytes')} (truncated or replaced)")
        if verify and _file_sha256(file) != entry.get("sha256"):
            raise PdqIndexError(f"{file}: checksum mismatch (damaged or tampered with)")
        try:
            arr = np.load(file, mmap_mode="r" if mmap and size > 0 else None, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise PdqIndexError(f"{file}: not a readable .npy array: {exc}") from None
        if arr.dtype != np.dtype(dtype) or arr.shape != shape_of(n):
            raise PdqIndexError(f"{file}: {arr.dtype.str} {arr.shape}, expected {dtype} {shape_of(n)}")
        arrays[name] = arr
    return meta, arrays
