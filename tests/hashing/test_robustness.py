"""The robustness table on a few small scenes: what holds for PDQ (and what tns_anchors §3.1 measured)."""

from __future__ import annotations

import pytest

from jieyao.hashing.robustness import robustness_table
from jieyao.hashing.synthetic import frames, scene


@pytest.fixture(scope="module")
def table():
    return robustness_table(n=10, size=256, seed=3)


def test_edits_pdq_survives(table):
    assert table.row("jpeg_q70").match_rate >= 0.9
    assert table.row("jpeg_q30").match_rate >= 0.9
    assert table.row("grayscale").match_rate >= 0.9
    assert table.row("resize_50").match_rate >= 0.9


def test_edits_pdq_does_not_survive(table):
    assert table.row("crop_5").match_rate <= 0.2
    assert table.row("rotate_5").match_rate <= 0.2


def test_mirror_needs_dihedral_hashes(table):
    assert table.row("mirror").match_rate <= 0.1
    assert table.row("mirror_dihedral").match_rate >= 0.8


def test_unrelated_scenes_do_not_match(table):
    assert table.unrelated_pairs == 45 and table.false_matches == 0
    assert table.unrelated_min_distance > 64 and 100 < table.unrelated_mean_distance < 156


def test_rendering(table):
    md = table.to_markdown()
    assert md.count("\n| ") == len(table.rows) + 2 and "JPEG re-encode q70" in md and "false match" in md
    obj = table.to_json()
    assert obj["false_match_rate"] == 0.0 and obj["rows"][0]["match_rate"] == table.rows[0].match_rate


def test_arguments_are_bounded():
    for kw in ({"n": 1}, {"n": 100_000}, {"size": 8}, {"size": 100_000}):
        with pytest.raises(ValueError):
            robustness_table(**kw)  # type: ignore[arg-type]


def test_scenes_are_seeded():
    assert scene(5, 64).tobytes() == scene(5, 64).tobytes()
    assert scene(5, 64).tobytes() != scene(6, 64).tobytes()
    with pytest.raises(ValueError):
        scene(1, 0)
    assert len(frames(1, 7, 32, 32, cuts=2)) == 7
