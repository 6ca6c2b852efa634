"""The moderator's fast paths give exactly what the plain code they stand in for gives: offsets resolved through
the maps (spans and original -> dense) against the whole offset lists, the initials prefilter against the token
walk, the BMP pinyin table against the dict, the split-based compact text against the spaces it removes, the
pattern prefilter against `frozenset(text)`, and the objects built without `__init__` against the real ones."""

from __future__ import annotations

import bisect
import dataclasses
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.text import channels as channels_mod
from jieyao.text import contacts as contacts_mod
from jieyao.text.channels import Channels, Match, compact
from jieyao.text.engine import Moderator, _DenseIndex, _name, default_moderator
from jieyao.text.normalise import _PROSE, _PROSE_MARKS, Normalised, Normaliser, View
from jieyao.text.result import Hit

# What sellers and attackers write, plus lexicon-ish pieces, so that hits, gaps, repeats and RLO all occur.
_TRICKY = ("\u200b\u200c\u200d\ufeff\u00ad\u202e\u202c\u2066\u20e3\u0336\n\t \u3000\u3164\ud800ß ﬁ⑽①ＡＩａｉ𝐃🅳"
           " АІΑΙ換臉金丹换脸扌奂月佥出售微信加vV@*.-_/,，。！❤🔥 DFLdflaI0123456789哈")
texts = st.one_of(
    st.text(alphabet=st.sampled_from(_TRICKY), max_size=60),
    st.text(max_size=40),
    st.lists(st.sampled_from(["DFL", "金丹", "换脸", " ", ".", "\u200b", "\u202e", "換", "①", "AI", "aa",
                              "哈哈", "出售", "加微信 abc_123", "¥99", "jin dan", "ai jd", "hlmx", "\n"]),
             max_size=25).map("".join),
)
_SURROGATES = re.compile("[\ud800-\udfff]")


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return default_moderator()


@pytest.fixture(scope="module")
def ch(moderator: Moderator) -> Channels:
    return moderator.channels


# -- offsets ----------------------------------------------------------------------------------------------------


@given(text=texts)
def test_original_to_dense_through_the_maps_is_a_bisection_of_the_lists(ch: Channels, text: str) -> None:
    norm = ch.normaliser.normalise(text)
    offsets = norm.dense.starts._offsets  # type: ignore[attr-defined]
    starts = list(norm.dense.starts)
    fresh = type(offsets)(offsets.n, offsets._base_starts, offsets._base_ends, offsets._maps)  # no lists built
    for x in range(-1, len(text) + 2):
        got = fresh.first_at_least(x)
        assert got is None or got == bisect.bisect_left(starts, x)


@given(text=texts)
def test_dense_index_answers_as_the_offset_lists_do(ch: Channels, text: str) -> None:
    """Spans and ranges as the engine used to compute them from the whole lists."""
    norm = ch.normaliser.normalise(text)
    index = _DenseIndex(norm)
    n = len(norm.dense.text)
    reversed_ = "reversed" in norm.signals or "bidi_override" in norm.signals
    starts, ends = list(norm.dense.starts), list(norm.dense.ends)
    for i in range(n):
        for j in range(i + 1, min(n, i + 5) + 1):
            want = norm.dense.span(i, j) if reversed_ else (starts[i], ends[j - 1])
            assert index.span(i, j) == want
    if n and not reversed_:
        for s in range(0, len(text) + 1, 3):
            for e in (s, s + 1, s + 4):
                i = min(bisect.bisect_left(starts, s), n - 1)
                j = bisect.bisect_left(starts, e)
                assert index.range(s, e) == (i, max(j, i + 1))


# -- channels ---------------------------------------------------------------------------------------------------


@given(dense=st.text(alphabet="ab 换脸1", max_size=40))
def test_compact_from_split_is_the_old_finditer_one(dense: str) -> None:
    comp = compact(dense)
    spaces = [m.start() for m in re.finditer(" ", dense)]
    assert comp.text == dense.replace(" ", "")
    assert comp.adjusted == tuple(s - k for k, s in enumerate(spaces))


@given(dense=st.lists(st.sampled_from(["ai", "jd", "hl", "mx", "a", "d", "x", "hlmx", "sshl", "dd", "1", "的",
                                       " ", " ", "q"]), max_size=14).map("".join))
def test_initials_prefilter_never_hides_a_token_walk_hit(ch: Channels, dense: str) -> None:
    with_prefilter: dict[tuple[str, str, int, int], Match] = {}
    walk: dict[tuple[str, str, int, int], Match] = {}
    ch._initials(with_prefilter, dense)
    ch._initials_walk(walk, dense)
    assert with_prefilter == walk


def test_bmp_pinyin_table_is_the_dict(ch: Channels) -> None:
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        assert c.translate(ch._pinyin_bmp) == c.translate(ch._pinyin_table), hex(cp)


def test_pinyin_codes_cannot_meet_a_dense_char(ch: Channels) -> None:
    """The syllable codes live in the BMP private use area, which the dense view never holds (not word chars)."""
    codes = {v for v in ch._pinyin_table.values() if 0xE000 <= ord(v) < 0xF900}
    assert codes and all(unicodedata.category(c) == "Co" for c in codes)
    norm = ch.normaliser.normalise("金" + "".join(sorted(codes))[:50] + "丹")
    assert not codes & set(norm.dense.text)


@given(text=st.text(max_size=30))
def test_clean_by_encoding_is_the_search(text: str) -> None:
    want = _SURROGATES.sub("\ufffd", text)
    assert channels_mod._clean(text) == want
    assert contacts_mod._clean(text) == want


# -- normaliser ---------------------------------------------------------------------------------------------------


def test_prose_marks_are_never_noise_between_cjk() -> None:
    """A gap of one of these chars skips the noise test, which would find nothing: no prose char is left
    after strip(_PROSE), and the char is not a space."""
    for c in _PROSE_MARKS:
        assert c.strip(_PROSE) == "" and not c.isspace()


def test_normalised_and_views_built_without_init_are_the_real_ones() -> None:
    norm = Normaliser().normalise("Ａ 换,脸 abc")
    again = Normalised(norm.original, View(norm.dense.text, list(norm.dense.starts), list(norm.dense.ends)),
                       View(norm.light.text, norm.light.starts, norm.light.ends), norm.signals, norm.truncated)
    assert norm == again
    assert repr(norm) == repr(again)
    assert hash(norm.light) == hash(again.light)
    assert [f.name for f in dataclasses.fields(norm)] == list(vars(norm))
    with pytest.raises(dataclasses.FrozenInstanceError):
        norm.original = "x"  # type: ignore[misc]


# -- engine -------------------------------------------------------------------------------------------------------


def test_fast_hit_is_a_hit() -> None:
    args = ("ＡＩ金丹", "AI金丹", "model", "surface", 3, 7, 0.95)
    fast, real = Hit.fast(*args), Hit(*args)
    assert fast == real and hash(fast) == hash(real) and repr(fast) == repr(real)
    assert dataclasses.asdict(fast) == dataclasses.asdict(real) and list(vars(fast)) == list(vars(real))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.term = "x"  # type: ignore[misc]


@given(term=st.text(max_size=50), channel=st.sampled_from(["surface", "pinyin", "pattern"]))
def test_hit_names_skip_the_category_filter_only_for_printable_terms(term: str, channel: str) -> None:
    hit = Hit(term, "金丹", "dan", channel, 0, len(term))
    seen = " ".join("".join(c for c in term if unicodedata.category(c)[0] != "C").split())
    assert f"'{seen[:37] + '...' if len(seen) > 40 else seen}'" in _name(hit)


@given(text=texts)
def test_pattern_prefilter_is_frozenset_of_the_text(moderator: Moderator, text: str) -> None:
    light = moderator.channels.normaliser.normalise(text).light.text
    chars = frozenset(light)
    got = moderator._required_in(light)
    for requires in moderator._requires:
        assert requires.isdisjoint(got) == requires.isdisjoint(chars)


@given(text=texts)
def test_quiet_listings_fire_no_rule_even_with_patterns_and_evidence(moderator: Moderator, text: str) -> None:
    """The quiet path builds no evidence and runs no rules: the full path would fire nothing either."""
    norm = moderator.channels.normaliser.normalise(text)
    matches = moderator.channels.match(norm)
    assert moderator._anchors is not None
    if not moderator._anchors.isdisjoint(m.term.group for m in matches):
        return
    full = Moderator.__new__(Moderator)
    full.__dict__.update(vars(moderator))
    full._anchors = None  # every listing takes the pattern search and the rules
    assert moderator.moderate(text).rules == ()
    assert full.moderate(text).rules == ()
