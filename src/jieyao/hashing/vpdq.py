"""vPDQ comparison: the share of one video's frames that have a near-identical frame in the other.

Same rule as python-threatexchange's brute-force matcher (`vpdq_brute_matcher.py`): drop frames below the
quality floor, drop repeated hashes, then count the query frames with some candidate frame within `distance`,
and the other way round. A match is query-match >= 80 % and candidate-match >= 0 % (pytx's defaults): most of
the query is found in the candidate, which may be longer (a clip of a known video matches it).
The all-pairs distance is computed with numpy on 4 x uint64 per hash, in blocks, and refused past `max_pairs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jieyao.hashing.signals import VpdqFrame, pdq_hex_to_bytes

DISTANCE = 31
QUALITY = 50
QUERY_MATCH_PCT = 80.0
CANDIDATE_MATCH_PCT = 0.0
MAX_PAIRS = 50_000_000
"""Frame pairs compared in one call (an hour against an hour at 1 frame/s is 13 M)."""
_BLOCK_CELLS = 1_000_000
"""Frame pairs per numpy block: 32 MB of XOR words at a time."""


@dataclass(frozen=True)
class VpdqScore:
    query_match_pct: float
    candidate_match_pct: float
    matched_frames: int
    """Usable query frames with a candidate frame within the distance."""
    query_frames: int
    """Query frames left after the quality floor and de-duplication (the denominator)."""
    candidate_frames: int

    def is_match(self, query_pct: float = QUERY_MATCH_PCT, candidate_pct: float = CANDIDATE_MATCH_PCT) -> bool:
        """No usable frames on either side is never a match (pytx would divide by zero)."""
        return (self.query_frames > 0 and self.candidate_frames > 0 and self.query_match_pct >= query_pct
                and self.candidate_match_pct >= candidate_pct)


def usable_frames(frames: Sequence[VpdqFrame], quality: int = QUALITY) -> list[VpdqFrame]:
    """Frames at or above the quality floor, first occurrence of each hash kept."""
    seen: set[str] = set()
    out = []
    for f in frames:
        if f.quality >= quality and f.pdq not in seen:
            seen.add(f.pdq)
            out.append(f)
    return out


def pack(frames: Sequence[VpdqFrame]) -> np.ndarray:
    """N x 4 uint64 (big-endian words: the bit order only has to agree on both sides)."""
    raw = b"".join(pdq_hex_to_bytes(f.pdq) for f in frames)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(frames), 4)


def min_distances(query: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query row its smallest Hamming distance to any candidate row, and the same for candidates."""
    n, m = len(query), len(candidate)
    q_min = np.full(n, 257, dtype=np.int32)
    c_min = np.full(m, 257, dtype=np.int32)
    if n == 0 or m == 0:
        return q_min, c_min
    rows = max(1, _BLOCK_CELLS // m)
    for start in range(0, n, rows):
        block = query[start:start + rows]
        d = np.bitwise_count(block[:, None, :] ^ candidate[None, :, :]).sum(axis=2, dtype=np.int32)
        q_min[start:start + len(block)] = d.min(axis=1)
        np.minimum(c_min, d.min(axis=0), out=c_min)
    return q_min, c_min


def vpdq_match(query_frames: Sequence[VpdqFrame], candidate_frames: Sequence[VpdqFrame], distance: int = DISTANCE,
               quality: int = QUALITY, *, max_pairs: int = MAX_PAIRS) -> VpdqScore:
    """Score a query video against a candidate; `VpdqScore.is_match()` applies the thresholds."""
    if not 0 <= distance <= 256:
        raise ValueError(f"distance must be 0-256, got {distance}")
    q, c = usable_frames(query_frames, quality), usable_frames(candidate_frames, quality)
    if len(q) * len(c) > max_pairs:
        raise ValueError(f"{len(q)} x {len(c)} frame pairs is over the limit of {max_pairs}; "
                         "sample fewer frames per second")
    if not q or not c:
        return VpdqScore(0.0, 0.0, 0, len(q), len(c))
    q_min, c_min = min_distances(pack(q), pack(c))
    q_hit, c_hit = int((q_min <= distance).sum()), int((c_min <= distance).sum())
    return VpdqScore(100.0 * q_hit / len(q), 100.0 * c_hit / len(c), q_hit, len(q), len(c))
