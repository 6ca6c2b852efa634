"""Matching channels over the built-in lexicon: what each finds, what it must not find, and its bounds."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.text.channels import Channels, Match, compact, latin_edges_ok
from jieyao.text.engine import default_moderator


@pytest.fixture(scope="module")
def ch() -> Channels:
    return default_moderator().channels


def found(ch: Channels, text: str) -> list[tuple[str, str, str, str]]:
    """(original span text, canonical, group, channel) for every match."""
    norm = ch.normaliser.normalise(text)
    out = []
    for m in ch.match(norm):
        s, e = norm.dense.span(m.start, m.end)
        out.append((text[s:e], m.term.canonical, m.term.group, m.channel))
    return out


def canon(ch: Channels, text: str, channel: str | None = None) -> set[str]:
    return {c for _, c, _, chan in found(ch, text) if channel is None or chan == channel}


# -- compact text ---------------------------------------------------------------------------------------------


@given(st.text(alphabet="ab 换脸", max_size=40))
def test_compact_maps_back_to_the_same_chars(dense: str) -> None:
    dense = " ".join(dense.split())  # the dense view keeps single spaces only
    comp = compact(dense)
    assert comp.text == dense.replace(" ", "")
    for i in range(len(comp.text)):
        for j in range(i + 1, min(len(comp.text), i + 4) + 1):
            a, b = comp.to_dense(i, j)
            assert dense[a:b].replace(" ", "") == comp.text[i:j]


def test_latin_edges() -> None:
    assert latin_edges_ok("出dfl丹", 1, 4, "dfl")
    assert latin_edges_ok("dfl2", 0, 3, "dfl")  # a version number may follow
    assert latin_edges_ok("a dfl b", 2, 5, "dfl")
    assert not latin_edges_ok("udflow", 1, 4, "dfl")
    assert not latin_edges_ok("hl2024dfl", 6, 9, "dfl")
    assert not latin_edges_ok("inswapper128x", 0, 12, "inswapper128")
    assert latin_edges_ok("换脸", 0, 2, "换脸")


# -- surface --------------------------------------------------------------------------------------------------


def test_surface_finds_folded_terms_with_original_spans(ch: Channels) -> None:
    got = found(ch, "出售ＡＩ金丹，Deep Face Lab 整合包")
    assert ("ＡＩ金丹", "AI金丹", "model", "surface") in got
    assert ("Deep Face Lab", "DeepFaceLab", "tool", "surface") in got
    assert ("出售", "出售", "sale", "surface") in got


def test_surface_respects_latin_word_boundaries(ch: Channels) -> None:
    assert "roop" not in canon(ch, "a troop of scouts")
    assert "DeepFaceLab" not in canon(ch, "the udflow pipeline")
    assert "DeepFaceLab" not in canon(ch, "id hl2024dfl")
    assert "roop" in canon(ch, "roop本地版")
    assert "DeepFaceLab" in canon(ch, "DFL2.0 整合包")


# -- pinyin ---------------------------------------------------------------------------------------------------


def test_pinyin_homophones_and_typed_pinyin(ch: Channels) -> None:
    assert "金丹" in canon(ch, "金蛋出售", "pinyin")
    assert "金丹" in canon(ch, "出 jin dan", "pinyin")
    assert "换脸" in canon(ch, "实时换lian直播", "pinyin")
    assert "AI金丹" in canon(ch, "AI今丹", "pinyin")


def test_pinyin_is_weaker_and_never_repeats_a_surface_hit(ch: Channels) -> None:
    norm = ch.normaliser.normalise("金丹 金蛋")
    by_channel: dict[str, list[Match]] = {}
    for m in ch.match(norm):
        if m.term.canonical == "金丹":
            by_channel.setdefault(m.channel, []).append(m)
    assert [(m.start, m.end) for m in by_channel["surface"]] == [(0, 2)]
    assert [(m.start, m.end) for m in by_channel["pinyin"]] == [(2, 4)]
    assert by_channel["pinyin"][0].weight < by_channel["surface"][0].weight


def test_pinyin_rejects_sound_alikes_that_keep_no_char(ch: Channels) -> None:
    # 快递默认: 递默 reads "di mo" like 底模, but no char of 底模 is there
    assert "预训练模型" not in canon(ch, "快递默认中通")
    # 练模 inside the exact word 预训练模型 is not 脸模
    assert "脸模" not in canon(ch, "中文BERT预训练模型")
    # typed pinyin glued inside a longer Latin word is not a term
    assert "金丹" not in canon(ch, "xjindanx")


# -- glyph, chaizi, reversed, initials ------------------------------------------------------------------------


def test_glyph_lookalikes_share_the_phonetic(ch: Channels) -> None:
    assert "换脸" in canon(ch, "唤脸视频代做", "glyph") | canon(ch, "唤脸视频代做", "pinyin")
    assert "换脸" in canon(ch, "代做换睑视频", "glyph")
    assert "换脸" in canon(ch, "涣脸软件", "glyph") | canon(ch, "涣脸软件", "pinyin")


def test_glyph_needs_one_char_kept(ch: Channels) -> None:
    # 唤睑: both chars swapped; the glyph channel does not reach that far
    assert "换脸" not in canon(ch, "唤睑", "glyph")


def test_chaizi_recomposes_only_where_a_term_completes(ch: Channels) -> None:
    got = found(ch, "扌奂月佥软件")
    assert ("扌奂月佥软件", "换脸软件", "app", "chaizi") in got
    assert "十八" in ch.normaliser.normalise("十八岁").dense.text  # 十八 is 木 in the table, not here
    assert ch.recompose  # there are pairs at all
    assert all(c in "".join(t.text for t in ch.lexicon.terms) for c in ch.recompose.values())


def test_reversed_text_without_rlo(ch: Channels) -> None:
    assert "换脸软件" in canon(ch, "件软脸换时实", "reversed")
    assert not canon(ch, "件软脸换时实", "surface") & {"换脸软件"}


def test_initials_only_for_marked_terms_and_whole_tokens(ch: Channels) -> None:
    assert "换脸模型" in canon(ch, "出hlmx和dfm", "initials")
    assert "AI金丹" in canon(ch, "AI jd 低价出", "initials")
    assert "实时换脸" in canon(ch, "ssHL软件出", "initials")
    assert "金丹" not in canon(ch, "jd_0909")  # part of a longer token
    assert not canon(ch, "abc xyz", "initials")


# -- masks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "absent"), [
    ("仙丹花盆栽出售", "仙丹"),
    ("不锈钢换脸盆架", "换脸"),
    ("女金丹调经养血", "金丹"),
    ("金丹期修士", "金丹"),
    ("DFL丹药出售", "DeepFaceLab"),
])
def test_masks_drop_what_they_overlap(ch: Channels, text: str, absent: str) -> None:
    assert absent not in canon(ch, text)


# -- bounds ---------------------------------------------------------------------------------------------------


def test_hostile_repetition_is_bounded(ch: Channels) -> None:
    text = "换脸金丹jin dan唤脸" * 10_000
    t0 = time.perf_counter()
    norm = ch.normaliser.normalise(text)
    matches = ch.match(norm)
    assert time.perf_counter() - t0 < 10
    assert len(matches) <= 6 * 2_000


def test_lone_surrogates_and_controls(ch: Channels) -> None:
    for text in ("\ud800换脸\udfff", "\x00\x01金丹\x7f", "\u202e\u202e", ""):
        ch.match(ch.normaliser.normalise(text))
    assert "换脸" in canon(ch, "\ud800换脸\udfff")
