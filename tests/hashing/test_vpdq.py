"""vPDQ comparison: the pytx rule (quality floor, de-duplication, share of frames matched both ways), the
numpy distance against the plain one, and bounds."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.hashing.signals import VpdqFrame, pdq_distance
from jieyao.hashing.video import hash_video
from jieyao.hashing.vpdq import min_distances, pack, usable_frames, vpdq_match


def rand_hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(value: str, bits: int, rng: random.Random) -> str:
    n = int(value, 16)
    for b in rng.sample(range(256), bits):
        n ^= 1 << b
    return f"{n:064x}"


def frames_of(values: list[str], quality: int = 90) -> list[VpdqFrame]:
    return [VpdqFrame(v, quality, float(i)) for i, v in enumerate(values)]


def test_identical_videos_match_fully():
    rng = random.Random(1)
    f = frames_of([rand_hash(rng) for _ in range(20)])
    s = vpdq_match(f, f)
    assert (s.query_match_pct, s.candidate_match_pct, s.matched_frames) == (100.0, 100.0, 20) and s.is_match()


def test_unrelated_videos_do_not_match():
    rng = random.Random(2)
    a, b = (frames_of([rand_hash(rng) for _ in range(30)]) for _ in range(2))
    s = vpdq_match(a, b)
    assert s.query_match_pct == 0.0 and not s.is_match()


def test_a_clip_matches_the_longer_video_but_not_the_other_way_round():
    rng = random.Random(3)
    full = [rand_hash(rng) for _ in range(50)]
    clip = frames_of([flip(v, 12, rng) for v in full[10:20]])
    s = vpdq_match(clip, frames_of(full))
    assert s.query_match_pct == 100.0 and s.candidate_match_pct == 20.0 and s.is_match()
    back = vpdq_match(frames_of(full), clip)
    assert back.query_match_pct == 20.0 and not back.is_match()


def test_distance_threshold_is_inclusive():
    rng = random.Random(4)
    v = rand_hash(rng)
    near, far = flip(v, 31, rng), flip(v, 32, rng)
    assert vpdq_match(frames_of([v]), frames_of([near])).matched_frames == 1
    assert vpdq_match(frames_of([v]), frames_of([far])).matched_frames == 0
    assert vpdq_match(frames_of([v]), frames_of([far]), distance=32).matched_frames == 1


def test_low_quality_frames_are_ignored_and_repeats_counted_once():
    rng = random.Random(5)
    good = [rand_hash(rng) for _ in range(4)]
    query = [*frames_of(good + good), VpdqFrame(rand_hash(rng), 10, 9.0)]
    s = vpdq_match(query, frames_of(good[:2]))
    assert s.query_frames == 4 and s.matched_frames == 2 and s.query_match_pct == 50.0
    assert len(usable_frames(query, quality=0)) == 5


def test_no_usable_frames_is_never_a_match():
    rng = random.Random(6)
    dull = [VpdqFrame(rand_hash(rng), 0, 0.0)]
    s = vpdq_match(dull, dull)
    assert (s.query_frames, s.query_match_pct) == (0, 0.0) and not s.is_match()
    assert not vpdq_match([], frames_of([rand_hash(rng)])).is_match()


def test_pairs_are_bounded():
    rng = random.Random(7)
    f = frames_of([rand_hash(rng) for _ in range(101)])
    with pytest.raises(ValueError, match="frame pairs"):
        vpdq_match(f, f, max_pairs=10_000)
    with pytest.raises(ValueError):
        vpdq_match(f, f, distance=300)


@given(st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=12),
       st.lists(st.integers(0, 2**256 - 1), min_size=1, max_size=12))
def test_numpy_distances_equal_the_plain_ones(a: list[int], b: list[int]):
    fa, fb = frames_of([f"{x:064x}" for x in a]), frames_of([f"{x:064x}" for x in b])
    q_min, c_min = min_distances(pack(fa), pack(fb))
    assert q_min.tolist() == [min(pdq_distance(x.pdq, y.pdq) for y in fb) for x in fa]
    assert c_min.tolist() == [min(pdq_distance(x.pdq, y.pdq) for x in fa) for y in fb]


def test_blocks_cover_every_row(monkeypatch: pytest.MonkeyPatch):
    import jieyao.hashing.vpdq as vp

    monkeypatch.setattr(vp, "_BLOCK_CELLS", 7)
    rng = random.Random(8)
    a, b = frames_of([rand_hash(rng) for _ in range(9)]), frames_of([rand_hash(rng) for _ in range(3)])
    q_min, c_min = min_distances(pack(a), pack(b))
    assert q_min.tolist() == [min(pdq_distance(x.pdq, y.pdq) for y in b) for x in a]
    assert np.all(c_min <= 256)


def test_real_video_against_its_reencode_and_a_different_one(video: Callable[..., Path]):
    a = hash_video(video("a.mp4", seconds=3, rate=10, size=96), fps=5)
    b = hash_video(video("b.webm", seconds=3, rate=10, size=96, codec="libvpx-vp9"), fps=5)
    other = hash_video(video("c.mp4", seconds=3, rate=10, size=96, seed=99), fps=5)
    assert vpdq_match(a.frames, b.frames).is_match()
    assert not vpdq_match(a.frames, other.frames).is_match()
