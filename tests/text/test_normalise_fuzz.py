"""Property tests for the normaliser on hostile random text: it never raises, both views' offset maps are
well formed, the fast (automaton + splice) path agrees with the per-char path, and dense is a fixed point."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.text import tables
from jieyao.text.normalise import Normaliser

# The chars sellers and attackers use, plus anything hypothesis likes (lone surrogates included).
_TRICKY = ("\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u202c\u202d\u2066\u2069\u200e\ufe0f\u20e3\u0336\u0301"
           "\x00\x07\x1b\x7f\n\r\t \u3000\u3164\ud800\udfff\u0130ß ﬁ⑽①➊٣ＡＩａｉ𝐃🅳Ⓓᴅ АІΑΙ換臉軟體金丹换脸扌奂月佥"
           "出售@*.-_/,，。！❤🔥👨👩 DFLdflaI0123456789")
texts = st.one_of(
    st.text(alphabet=st.sampled_from(_TRICKY), max_size=80),
    st.text(max_size=60),
    st.lists(st.sampled_from(["DFL", "金丹", " ", ".", "\u200b", "\u202e", "換", "①", "AI", "aa", "哈哈", "\n"]),
             max_size=30).map("".join),
)
_CF = frozenset(c for c in map(chr, range(0x110000)) if unicodedata.category(c) in ("Cf", "Cs"))


@pytest.fixture(scope="module")
def norm() -> Normaliser:
    return Normaliser(recompose={("扌", "奂"): "换", ("月", "佥"): "脸"}, keep_repeats=frozenset("哈"))


@given(text=texts)
def test_offset_maps_are_well_formed(norm: Normaliser, text: str) -> None:
    r = norm.normalise(text)
    for view in (r.dense, r.light):
        starts, ends = list(view.starts), list(view.ends)
        assert len(starts) == len(ends) == len(view.text)
        assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends, strict=True))
        # per-index lookups (bisection through the maps) agree with the whole lists (slices per segment)
        assert [view.span(k, k + 1) for k in range(len(view.text))] == list(zip(starts, ends, strict=True))
        assert [view.starts[k] for k in range(len(view.text))] == starts
        if "\u202e" not in text:
            assert starts == sorted(starts)
            assert ends == sorted(ends)
        if view.text:
            s, e = view.span(0, len(view.text))
            assert 0 <= s < e <= len(text)


@given(text=texts)
def test_views_hold_no_invisible_chars_or_surrogates(norm: Normaliser, text: str) -> None:
    r = norm.normalise(text)
    assert _CF.isdisjoint(r.light.text)
    assert _CF.isdisjoint(r.dense.text)
    assert not any("A" <= c <= "Z" for c in r.dense.text)
    assert set(r.signals) <= set(tables.SIGNALS)
    assert list(r.signals) == sorted(r.signals, key=tables.SIGNALS.index)


@given(text=texts)
def test_fast_path_matches_the_per_char_path(norm: Normaliser, text: str) -> None:
    """The automaton + splice path and the per-char loop are two implementations of one fold."""
    if "\u202e" in text or any("\ud800" <= c <= "\udfff" for c in text):
        return  # those always take the per-char path
    lowered = text.replace("\u0130", "i").lower()
    tracked_text, starts, ends, _ = norm._light_tracked(lowered)
    light = norm.normalise(text).light
    assert light.text == tracked_text
    assert list(light.starts) == starts
    assert list(light.ends) == ends


@given(text=texts)
def test_dense_chars_come_from_their_span(norm: Normaliser, text: str) -> None:
    r = norm.normalise(text)
    if "\u202e" in text or {"chaizi", "repeats"} & set(r.signals):
        return
    fold = tables.fold_table()
    for i, c in enumerate(r.dense.text):
        if c == " ":
            continue
        behind = text[r.dense.starts[i]:r.dense.ends[i]].replace("\u0130", "i").lower()
        assert c in "".join(fold.get(x, x) for x in behind)


@pytest.fixture(scope="module")
def plain() -> Normaliser:
    return Normaliser()


@given(text=texts)
def test_dense_is_a_fixed_point(plain: Normaliser, text: str) -> None:
    once = plain.normalise(text).dense.text
    assert plain.normalise(once).dense.text == once


@given(text=st.text(max_size=40))
def test_light_text_never_loses_visible_chars(norm: Normaliser, text: str) -> None:
    """Every visible char (not invisible, not a mark) is in light, folded: contacts and URLs survive."""
    if "\u202e" in text:
        return
    fold = tables.fold_table()
    lowered = text.replace("\u0130", "i").lower()
    expected = "".join(fold.get(c, c) for c in lowered)
    assert norm.normalise(text).light.text == expected
