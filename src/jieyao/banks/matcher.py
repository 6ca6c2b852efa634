"""Matching hashes against the enabled banks, with provenance on every match and negative banks applied.

Why a class: the PDQ index over every active PDQ signal is built (or loaded from its cache next to the
database) once, then kept current with `BankStore.changes_since` before each lookup, so a withdrawal or a
disabled bank stops matching on the very next call, as the issue and StopNCII's victims require, without a
rebuild. Exact types (SHA-256, MD5, video MD5) go to the database's own index and are always current.

Negative banks: a match in a negative bank suppresses positive matches rather than being one. An exact
negative match (these very bytes are known to be fine) suppresses every positive match of the target; a
perceptual negative match (PDQ or vPDQ: "a public photo that victims' hashes collide with") suppresses the
perceptual positives only, since an exact positive is these very bytes. Suppressed matches are still
reported, with what suppressed them, so an analyst sees why nothing fired.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jieyao.banks.pdq_index import FlatPdqIndex, PdqIndex, PdqIndexError, load_pdq_index
from jieyao.banks.store import ActiveSignal, BankKind, BankStore
from jieyao.hashing.hasher import FileHashes
from jieyao.hashing.signals import EXACT_TYPES, SignalType, VpdqFrame, normalise_value, parse_vpdq
from jieyao.hashing.vpdq import vpdq_match

SCHEMA_ID = "jieyao.match/1"
PERCEPTUAL_TYPES = frozenset({SignalType.PDQ, SignalType.VPDQ})
EXACT_IN_MEMORY_MAX = 2_000_000
"""With `exact_in_memory`, past this many exact signals the dict is dropped and lookups go to the database."""
MAX_VPDQ_SIGNALS = 50_000
"""vPDQ is matched video against video (HMA treats it the same way: a naive index); past this many bank
videos the matcher refuses rather than take minutes per query."""


@dataclass(frozen=True)
class MatchOptions:
    """Thresholds, with python-threatexchange's defaults: PDQ distance ≤ 31 of 256 bits, quality ≥ 50 on both
    sides; vPDQ: frames within 31 at quality ≥ 50, ≥ 80 % of the query's frames matched, ≥ 0 % of the bank
    video's."""

    pdq_distance: int = 31
    pdq_quality: int = 50
    vpdq_query_pct: float = 80.0
    vpdq_index_pct: float = 0.0
    banks: tuple[str, ...] = ()
    """Only these banks (positive and negative); empty means every enabled bank."""

    def __post_init__(self) -> None:
        if not 0 <= self.pdq_distance <= 256:
            raise ValueError(f"PDQ distance must be 0..256, got {self.pdq_distance}")
        if not 0 <= self.pdq_quality <= 100:
            raise ValueError(f"PDQ quality must be 0..100, got {self.pdq_quality}")
        for pct in (self.vpdq_query_pct, self.vpdq_index_pct):
            if not 0 <= pct <= 100:
                raise ValueError(f"vPDQ percentages must be 0..100, got {pct}")


@dataclass(frozen=True)
class SignalMatch:
    """One bank signal that the target matched, and why."""

    bank: str
    bank_kind: BankKind
    signal_type: SignalType
    value: str
    signal_id: int
    source: str
    added: dt.datetime
    distance: int | None = None
    """PDQ: Hamming distance to the nearest of the target's hashes; None for exact types and vPDQ."""
    quality: int | None = None
    """The target hash's quality (PDQ)."""
    variant: str | None = None
    """Which of the target's dihedral hashes matched ("original" unless --dihedral found a flipped copy)."""
    vpdq: dict[str, float] | None = None
    """vPDQ: query_match_pct, candidate_match_pct, matched_frames."""
    suppressed_by: str | None = None
    """For a suppressed positive: the negative match that suppressed it (bank:type:value)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bank": self.bank, "bank_kind": self.bank_kind.value,
                               "signal_type": self.signal_type.value, "value": self.value,
                               "signal_id": self.signal_id, "source": self.source, "added": _iso(self.added)}
        for key in ("distance", "quality", "variant", "vpdq", "suppressed_by"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def why(self) -> str:
        how = "same bytes" if self.signal_type in EXACT_TYPES else (
            f"PDQ distance {self.distance}" if self.signal_type is SignalType.PDQ else
            f"vPDQ {self.vpdq['query_match_pct']:.0f} % of frames" if self.vpdq else "vPDQ")
        return (f"{self.signal_type.value} in bank '{self.bank}' ({how}; source {self.source}, "
                f"added {_iso(self.added)[:10]})")


@dataclass
class MatchResult:
    """What one target matched. `matches`: positive and not suppressed (these act); `suppressed`: positive
    but suppressed by a negative bank; `negatives`: the negative-bank matches themselves."""

    target: str
    hashes: FileHashes | None = None
    matches: list[SignalMatch] = field(default_factory=list)
    suppressed: list[SignalMatch] = field(default_factory=list)
    negatives: list[SignalMatch] = field(default_factory=list)
    error: str | None = None

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA_ID, "target": self.target, "matched": self.matched,
                               "matches": [m.to_json() for m in self.matches]}
        if self.suppressed:
            out["suppressed"] = [m.to_json() for m in self.suppressed]
        if self.negatives:
            out["negatives"] = [m.to_json() for m in self.negatives]
        if self.hashes is not None:
            h = self.hashes
            out["kind"] = h.kind
            out["sha256"] = h.sha256
            out["md5"] = h.md5
            if h.pdq:
                out["pdq"] = [{"value": p.value, "quality": p.quality, "variant": p.variant} for p in h.pdq]
            if h.vpdq:
                out["vpdq_frames"] = len(h.vpdq)
            if h.notes:
                out["notes"] = list(h.notes)
        if self.error:
            out["error"] = self.error
        return out


class Matcher:
    """Matches hashes against the enabled banks of one store. Not thread-safe for `refresh` (each worker
    process or thread builds its own, or guard it with a lock)."""

    def __init__(self, store: BankStore, options: MatchOptions | None = None, *,
                 index_cache: str | Path | None = None, exact_in_memory: bool = False,
                 refresh_interval: float = 0.0) -> None:
        """`exact_in_memory`: hold the exact signals in a dict too (a scan asks once per file, and a database
        round trip per file would cost more than the scan); `refresh_interval`: look for bank changes at most
        this often (seconds; 0 = before every match, which is what a withdrawal needs to stop at once)."""
        self.store = store
        self.options = options or MatchOptions()
        self._cache = Path(index_cache) if index_cache else None
        self._banks = frozenset(self.options.banks)
        self._vpdq: dict[int, tuple[ActiveSignal, list[VpdqFrame]]] = {}
        self._exact: dict[tuple[SignalType, str], dict[int, ActiveSignal]] | None = {} if exact_in_memory else None
        self._exact_ids: dict[int, tuple[SignalType, str]] = {}
        self._refresh_interval = refresh_interval
        self._checked = 0.0
        self._index: PdqIndex | FlatPdqIndex = PdqIndex(radius=self.options.pdq_distance)
        self._generation = -1
        self._load()

    # ------------------------------------------------------------------------------------- index upkeep

    def _types(self) -> list[SignalType]:
        return list(SignalType) if self._exact is not None else [SignalType.PDQ, SignalType.VPDQ]

    def _wanted(self, s: ActiveSignal) -> bool:
        if self._banks and s.bank not in self._banks:
            return False
        if s.signal_type in EXACT_TYPES:
            return self._exact is not None
        if s.signal_type is SignalType.PDQ:
            return s.quality is None or s.quality >= self.options.pdq_quality
        return s.signal_type is SignalType.VPDQ

    def _load(self) -> None:
        """Start from the cached PDQ index when it is from this database and not ahead of it, else build it
        from the store; then catch up with what changed since. The index holds ids only: provenance is read
        from the store for the ids that match, so 10M hashes cost the index's ~100 bytes each, not a Python
        object each."""
        cached = self._load_cache()
        generation = self.store.change_counter() if cached is None else cached[1]
        if cached is not None:
            self._index = cached[0]
        ids: list[int] = []
        hexes: list[str] = []
        if cached is None:
            for sid, value in self.store.active_values(SignalType.PDQ, bank_names=self._banks,
                                                       min_quality=self.options.pdq_quality):
                ids.append(sid)
                hexes.append(value)
        for s in self.store.iter_active([t for t in self._types() if t is not SignalType.PDQ]):
            self._take(s, ids, hexes)
        if ids:
            self._index.add(ids, hexes)
            if isinstance(self._index, PdqIndex):
                self._index.merge()
        if self._exact is not None and len(self._exact_ids) > EXACT_IN_MEMORY_MAX:
            self._exact, self._exact_ids = None, {}  # too many to hold: ask the database's index instead
        self._generation = generation
        self.refresh()

    def _take(self, s: ActiveSignal, ids: list[int], hexes: list[str]) -> None:
        if not self._wanted(s):
            return
        if s.signal_type in EXACT_TYPES:
            assert self._exact is not None
            key = (SignalType(s.signal_type), s.value)
            self._exact.setdefault(key, {})[s.id] = s
            self._exact_ids[s.id] = key
            return
        if s.signal_type is SignalType.VPDQ:
            if len(self._vpdq) >= MAX_VPDQ_SIGNALS:
                raise ValueError(f"more than {MAX_VPDQ_SIGNALS} vPDQ signals in the enabled banks: "
                                 "narrow the match with --bank")
            self._vpdq[s.id] = (s, parse_vpdq(s.value))
            return
        ids.append(s.id)
        hexes.append(s.value)

    def refresh(self) -> int:
        """Apply what changed in the store since the last look; returns how many rows changed. One cheap
        query when nothing did."""
        if self._refresh_interval:
            now = time.monotonic()
            if now - self._checked < self._refresh_interval:
                return 0
            self._checked = now
        if self.store.change_counter() == self._generation:
            return 0
        changes = self.store.changes_since(self._generation, self._types())
        for i in changes.removed:
            self._forget(i)
        if changes.removed:
            self._index.remove(changes.removed)
        ids: list[int] = []
        hexes: list[str] = []
        for s in changes.added:
            self._forget(s.id)
            self._take(s, ids, hexes)
        if ids:
            self._index.upsert(ids, hexes)
        self._generation = changes.generation
        return len(changes.added) + len(changes.removed)

    def _forget(self, sid: int) -> None:
        self._vpdq.pop(sid, None)
        key = self._exact_ids.pop(sid, None)
        if key is not None and self._exact is not None:
            rows = self._exact.get(key, {})
            rows.pop(sid, None)
            if not rows:
                self._exact.pop(key, None)

    def has_type(self, signal_type: SignalType) -> bool:
        """Whether any active signal of this type is held in memory (exact types: with exact_in_memory)."""
        if signal_type is SignalType.PDQ:
            return len(self._index) > 0
        if signal_type is SignalType.VPDQ:
            return bool(self._vpdq)
        return self._exact is not None and any(k[0] is signal_type for k in self._exact)

    def save_cache(self) -> None:
        """Write the PDQ index and its provenance next to the database, so the next start maps it instead of
        reading every signal (at 10M hashes: under a second against a minute)."""
        if self._cache is None:
            return
        self._index.generation = self._generation
        self._index.save(self._cache / "pdq")
        meta = {"store": self.store.url, "generation": self._generation, "banks": sorted(self._banks),
                "min_quality": self.options.pdq_quality, "ids": len(self._index)}
        (self._cache / "matcher.json").write_text(json.dumps(meta), encoding="utf-8")

    def _load_cache(self) -> tuple[PdqIndex | FlatPdqIndex, int] | None:
        if self._cache is None or not (self._cache / "matcher.json").is_file():
            return None
        try:
            meta = json.loads((self._cache / "matcher.json").read_text(encoding="utf-8"))
            if (meta.get("store") != self.store.url or meta.get("banks") != sorted(self._banks)
                    or meta.get("min_quality") != self.options.pdq_quality):
                return None
            generation = int(meta["generation"])
            if generation > self.store.change_counter():
                return None
            index = load_pdq_index(self._cache / "pdq", mmap=True, verify=True)
        except (OSError, ValueError, KeyError, TypeError, PdqIndexError):
            return None  # a stale or damaged cache is rebuilt, never trusted
        if index.radius != self.options.pdq_distance or index.generation != generation:
            return None
        return index, generation

    # ------------------------------------------------------------------------------------------ matching

    def match(self, hashes: FileHashes) -> MatchResult:
        """Match everything `jieyao.hashing` took of one file."""
        result = MatchResult(hashes.path, hashes=hashes, error=hashes.error)
        self.refresh()
        found: list[SignalMatch] = []
        seen_exact: set[tuple[SignalType, str]] = set()
        for kind, value, _quality in hashes.signals():
            if kind in EXACT_TYPES and (kind, value) not in seen_exact:
                seen_exact.add((kind, value))
                found.extend(self._exact_matches(kind, value))
        found.extend(self._pdq([(p.value, p.quality, p.variant) for p in hashes.pdq]))
        if hashes.vpdq:
            found.extend(self._video(hashes.vpdq))
        return _apply_negatives(result, found)

    def match_signal(self, signal_type: SignalType | str, value: str, quality: int | None = None) -> MatchResult:
        """Match one hash given as text (a victim's submission record, an analyst's lookup)."""
        kind = SignalType(signal_type)
        canonical = normalise_value(kind, value)
        self.refresh()
        result = MatchResult(f"{kind.value}:{canonical[:16]}")
        if kind in EXACT_TYPES:
            found = list(self._exact_matches(kind, canonical))
        elif kind is SignalType.PDQ:
            found = list(self._pdq([(canonical, 100 if quality is None else quality, "original")]))
        else:
            found = list(self._video(parse_vpdq(canonical)))
        return _apply_negatives(result, found)

    def _exact_matches(self, kind: SignalType, value: str) -> Iterator[SignalMatch]:
        if self._exact is not None:
            yield from (_match(s) for s in self._exact.get((kind, value), {}).values())
            return
        for s in self.store.lookup_exact(kind, value):
            if not self._banks or s.bank in self._banks:
                yield _match(s)

    def _pdq(self, queries: Sequence[tuple[str, int, str]]) -> Iterator[SignalMatch]:
        """Nearest distance per bank signal over the target's hashes (its dihedral variants included)."""
        best: dict[int, tuple[int, int, str]] = {}
        for value, quality, variant in queries:
            if quality < self.options.pdq_quality:
                continue  # a featureless image matches everything featureless: PDQ's own advice
            hits = self._index.search(value)
            for sid, dist in zip(hits.ids.tolist(), hits.distances.tolist(), strict=True):
                if sid not in best or dist < best[sid][0]:
                    best[sid] = (int(dist), quality, variant)
        if not best:
            return
        rows = {s.id: s for s in self.store.active_by_id(best)}  # an id withdrawn a moment ago is not here
        for sid, (dist, quality, variant) in sorted(best.items(), key=lambda kv: (kv[1][0], kv[0])):
            if sid in rows:
                yield _match(rows[sid], distance=dist, quality=quality, variant=variant)

    def _video(self, frames: Sequence[VpdqFrame]) -> Iterator[SignalMatch]:
        o = self.options
        for s, bank_frames in self._vpdq.values():
            score = vpdq_match(list(frames), bank_frames, distance=o.pdq_distance, quality=o.pdq_quality)
            if score.is_match(o.vpdq_query_pct, o.vpdq_index_pct):
                yield _match(s, vpdq={"query_match_pct": round(score.query_match_pct, 2),
                                      "candidate_match_pct": round(score.candidate_match_pct, 2),
                                      "matched_frames": score.matched_frames})

    @property
    def size(self) -> dict[str, int]:
        """How many perceptual signals are indexed (exact ones stay in the database)."""
        return {"pdq": len(self._index), "vpdq": len(self._vpdq)}


def _match(s: ActiveSignal, **extra: Any) -> SignalMatch:
    return SignalMatch(s.bank, BankKind(s.kind), SignalType(s.signal_type), s.value, s.id, s.source, s.added,
                       **extra)


def _apply_negatives(result: MatchResult, found: Iterable[SignalMatch]) -> MatchResult:
    found = list(found)
    negatives = [m for m in found if m.bank_kind is BankKind.NEGATIVE]
    positives = [m for m in found if m.bank_kind is not BankKind.NEGATIVE]
    exact_neg = next((m for m in negatives if m.signal_type in EXACT_TYPES), None)
    perceptual_neg = next((m for m in negatives if m.signal_type in PERCEPTUAL_TYPES), None)
    for m in positives:
        by = exact_neg or (perceptual_neg if m.signal_type in PERCEPTUAL_TYPES else None)
        if by is None:
            result.matches.append(m)
        else:
            result.suppressed.append(_suppressed(m, by))
    result.negatives = negatives
    return result


def _suppressed(m: SignalMatch, by: SignalMatch) -> SignalMatch:
    return replace(m, suppressed_by=f"{by.bank}:{by.signal_type.value}:{by.value[:16]}")


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.isoformat().replace("+00:00", "Z")
