"""The listing normaliser: every fold with its before/after, the exact original span of a match, the evasion
signals, RLO reversal, 拆字, repeats, and hostile input."""

from __future__ import annotations

import time
import unicodedata

import pytest

from jieyao.text import tables
from jieyao.text.normalise import Normaliser, View


@pytest.fixture(scope="module")
def norm() -> Normaliser:
    return Normaliser()


def dense_span(n: Normaliser, text: str, term: str) -> tuple[int, int]:
    """The original span behind the first occurrence of `term` in the dense view."""
    r = n.normalise(text)
    i = r.dense.text.index(term)
    return r.dense.span(i, i + len(term))


# --- the example from the issue -------------------------------------------------------------------------------

def test_issue_example_dense_light_span_and_signals(norm: Normaliser) -> None:
    text = "Ａ\u200bＩ金❤丹"
    r = norm.normalise(text)
    assert r.dense.text == "ai金丹"
    assert r.light.text == "ai金❤丹"
    start, end = dense_span(norm, text, "金丹")
    assert (start, end) == (3, 6)
    assert text[start:end] == "金❤丹"
    assert dense_span(norm, text, "ai") == (0, 3)  # Ａ, the zero-width space, Ｉ
    assert r.signals == ("zero_width", "fullwidth", "noise")
    assert not r.truncated


# --- folds -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "dense", "signal"), [
    ("ＡＩ金丹", "ai金丹", "fullwidth"),
    ("ＤＦＬ１２３", "dfl123", "fullwidth"),
    ("𝐃𝐅𝐋", "dfl", "styled_letters"),
    ("ⒹⒻⓁ", "dfl", "styled_letters"),
    ("🅳🅵🅻", "dfl", "styled_letters"),
    ("ᴅꜰʟ", "dfl", "styled_letters"),
    ("ᴰᶠᴸ", "dfl", "styled_letters"),
    ("D\u0336F\u0336L\u0336", "dfl", "styled_letters"),  # strike-through overlays
    ("АІ金丹", "ai金丹", "lookalike"),  # Cyrillic А, І
    ("ΑΙ金丹", "ai金丹", "lookalike"),  # Greek Α, Ι
    ("DFL dеepfacelab", "dfl deepfacelab", "lookalike"),  # Cyrillic е inside a Latin word
    ("換臉軟體", "换脸软体", "traditional"),
    ("①⑨⑧⑦", "1987", "enclosed_digits"),
    ("➊➋", "12", "enclosed_digits"),
    ("QQ ١٢٣", "qq 123", "enclosed_digits"),  # Arabic-Indic digits
    ("1\ufe0f\u20e3", "1", "enclosed_digits"),  # keycap
    ("金\u200b丹", "金丹", "zero_width"),
    ("金\u2060丹\ufeff", "金丹", "zero_width"),
    ("金\u00ad丹", "金丹", "zero_width"),  # soft hyphen
    ("金\u3164丹", "金丹", "zero_width"),  # Hangul filler, renders as nothing
    ("金\u200e丹", "金丹", "bidi_override"),
    ("出@售", "出售", "noise"),
    ("换❤脸", "换脸", "noise"),
    ("换 脸", "换脸", "noise"),
    ("出.售", "出售", "noise"),
    ("D.F.L", "dfl", "noise"),
    ("d-f-l", "dfl", "noise"),
    ("D F L 教程", "dfl教程", "noise"),
    ("换换换脸", "换脸", "repeats"),
])
def test_fold_before_after_and_signal(norm: Normaliser, text: str, dense: str, signal: str) -> None:
    r = norm.normalise(text)
    assert r.dense.text == dense
    assert signal in r.signals


@pytest.mark.parametrize(("text", "light"), [
    ("提取码：AB12", "提取码:ab12"),
    ("+86 138 0013 8000", "+86 138 0013 8000"),
    ("https://pan.baidu.com/s/1AbC?pwd=XY12", "https://pan.baidu.com/s/1abc?pwd=xy12"),
    ("加Ｖ信：ａｂｃ＿１２３", "加v信:abc_123"),
    ("微\u200b信 ①③⑧", "微信 138"),
    ("換臉，價格９.９元！", "换脸,价格9.9元!"),
])
def test_light_keeps_punctuation_spaces_and_symbols(norm: Normaliser, text: str, light: str) -> None:
    assert norm.normalise(text).light.text == light


def test_light_span_maps_contacts_back(norm: Normaliser) -> None:
    text = "加\u200bＶ信：ＡＢ\u200b12"
    r = norm.normalise(text)
    assert r.light.text == "加v信:ab12"
    i = r.light.text.index("ab12")
    start, end = r.light.span(i, i + 4)
    assert text[start:end] == "ＡＢ\u200b12"


def test_ordinary_listing_raises_no_evasion_signal(norm: Normaliser) -> None:
    r = norm.normalise("出售二手显卡，价格1,200元。包邮！有需要的私聊（非诚勿扰）")
    assert r.signals == ()
    assert r.dense.text == "出售二手显卡价格1200元包邮有需要的私聊非诚勿扰"


def test_lookalike_needs_mixed_scripts(norm: Normaliser) -> None:
    r = norm.normalise("АІ")  # all Cyrillic: folded, but a Russian listing is not an evasion
    assert r.dense.text == "ai"
    assert "lookalike" not in r.signals
    assert "lookalike" in norm.normalise("АІ 1").signals


def test_fold_never_turns_han_into_pinyin(norm: Normaliser) -> None:
    assert norm.normalise("金丹仙丹").dense.text == "金丹仙丹"
    han_to_ascii = [c for c, s in tables.fold_table().items()
                    if unicodedata.name(c, "").startswith("CJK") and s.isascii() and s]
    assert han_to_ascii == []


def test_ligatures_and_expansions_map_every_output_char_to_its_source(norm: Normaliser) -> None:
    r = norm.normalise("ﬁx ß")
    assert r.light.text == "fix ss"
    assert list(r.light.starts) == [0, 0, 1, 2, 3, 3]
    assert list(r.light.ends) == [1, 1, 2, 3, 4, 4]


def test_signals_are_in_the_documented_order(norm: Normaliser) -> None:
    r = norm.normalise("\u202e丹金\u202c 換換 ＡＩ①")
    assert list(r.signals) == sorted(r.signals, key=tables.SIGNALS.index)
    assert {"bidi_override", "reversed", "traditional", "repeats", "fullwidth", "enclosed_digits"} <= set(r.signals)


# --- word boundaries -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "dense"), [
    ("dfl udflow", "dfl udflow"),
    ("DFL/DeepFaceLab, FaceFusion", "dfl deepfacelab facefusion"),
    ("AI 金丹", "ai金丹"),
    ("deep-face-lab 2.0", "deepfacelab 20"),
    ("DFL\u3000模型", "dfl模型"),
    ("model  v2", "model v2"),
])
def test_latin_words_keep_one_space(norm: Normaliser, text: str, dense: str) -> None:
    assert norm.normalise(text).dense.text == dense


def test_kept_space_maps_to_the_whole_gap(norm: Normaliser) -> None:
    r = norm.normalise("dfl , model")
    assert r.dense.text == "dfl model"
    assert r.dense.span(3, 4) == (3, 6)


def test_decimal_point_is_not_noise(norm: Normaliser) -> None:
    assert "noise" not in norm.normalise("price 9.9 usd").signals
    assert "noise" not in norm.normalise("face-swap tool").signals


# --- spans -----------------------------------------------------------------------------------------------------

def test_span_covers_noise_between_cjk_chars(norm: Normaliser) -> None:
    text = "出售 换 ❤ 脸 软件"
    start, end = dense_span(norm, text, "换脸")
    assert text[start:end] == "换 ❤ 脸"


def test_span_of_styled_and_spaced_latin(norm: Normaliser) -> None:
    text = "卖 D . F . L 丹药"
    start, end = dense_span(norm, text, "dfl")
    assert text[start:end] == "D . F . L"


def test_span_rejects_out_of_range_and_empty_is_a_point(norm: Normaliser) -> None:
    r = norm.normalise("金 ❤ 丹")
    with pytest.raises(ValueError):
        r.dense.span(0, 3)
    with pytest.raises(ValueError):
        r.dense.span(2, 1)
    assert r.dense.span(1, 1) == (4, 4)  # where 丹 starts
    assert r.dense.span(2, 2) == (5, 5)  # after the last char
    assert norm.normalise("").dense.span(0, 0) == (0, 0)


def test_view_span_is_min_max() -> None:
    v = View("abc", [4, 3, 2], [5, 4, 3])
    assert v.span(0, 3) == (2, 5)


# --- RLO -------------------------------------------------------------------------------------------------------

def test_rlo_segment_is_reversed_into_display_order(norm: Normaliser) -> None:
    text = "出售\u202e丹金IA\u202c教程"  # shown as 出售AI金丹教程
    r = norm.normalise(text)
    assert r.dense.text == "出售ai金丹教程"
    assert r.light.text == "出售ai金丹教程"
    assert {"bidi_override", "reversed"} <= set(r.signals)
    start, end = dense_span(norm, text, "金丹")
    assert (start, end) == (3, 5)
    assert sorted(text[start:end]) == sorted("金丹")
    i = r.dense.text.index("ai")
    assert r.dense.span(i, i + 2) == (5, 7)
    assert r.dense.span(r.dense.text.index("教"), len(r.dense.text)) == (8, 10)


def test_rlo_ends_at_the_end_of_the_line(norm: Normaliser) -> None:
    r = norm.normalise("\u202e丹金\n出售")
    assert r.light.text == "金丹\n出售"


def test_rlo_over_one_char_reverses_nothing(norm: Normaliser) -> None:
    r = norm.normalise("\u202e金")
    assert r.dense.text == "金"
    assert "reversed" not in r.signals
    assert "bidi_override" in r.signals


# --- 拆字 --------------------------------------------------------------------------------------------------------

def test_chaizi_only_with_recompose(norm: Normaliser) -> None:
    assert norm.normalise("扌奂脸").dense.text == "扌奂脸"
    assert "chaizi" not in norm.normalise("扌奂脸").signals
    n = Normaliser(recompose={("扌", "奂"): "换", ("月", "佥"): "脸"})
    text = "出售扌 奂月佥软件"
    r = n.normalise(text)
    assert r.dense.text == "出售换脸软件"
    assert "chaizi" in r.signals
    assert r.dense.span(2, 3) == (2, 5)  # 扌 奂
    assert r.dense.span(3, 4) == (5, 7)  # 月佥
    assert r.dense.span(2, 4) == (2, 7)


def test_chaizi_components_are_folded_like_the_text() -> None:
    n = Normaliser(recompose={("月", "僉"): "臉"})  # traditional component and result
    assert n.normalise("換月僉").dense.text == "换脸"
    assert n.normalise("換月佥").dense.text == "换脸"


def test_chaizi_pairs_from_the_table_recompose() -> None:
    pairs = tables.chaizi_pairs()
    n = Normaliser(recompose={k: v for k, v in pairs.items() if v in "换脸信"})
    assert n.normalise("扌奂月佥 加亻言").dense.text == "换脸加信"


def test_recompose_rejects_multi_char_parts() -> None:
    with pytest.raises(ValueError):
        Normaliser(recompose={("扌奂", "月"): "换"})


# --- repeats ---------------------------------------------------------------------------------------------------

def test_repeat_collapse_spans_the_run(norm: Normaliser) -> None:
    text = "换换换脸教程"
    r = norm.normalise(text)
    assert r.dense.text == "换脸教程"
    assert r.dense.span(0, 1) == (0, 3)
    assert r.dense.span(1, 2) == (3, 4)


def test_repeats_across_noise(norm: Normaliser) -> None:
    assert norm.normalise("换 换 换脸").dense.text == "换脸"


def test_keep_repeats() -> None:
    n = Normaliser(keep_repeats=frozenset("哈"))
    r = n.normalise("哈哈金丹丹")
    assert r.dense.text == "哈哈金丹"
    assert "repeats" in r.signals
    assert n.normalise("哈哈").signals == ()


def test_keep_repeats_is_folded() -> None:
    assert Normaliser(keep_repeats=frozenset("謝")).normalise("謝謝").dense.text == "谢谢"


@pytest.mark.parametrize(("text", "dense"), [
    ("deepfake", "deepfake"), ("looool", "lol"), ("价格8888元", "价格8888元"), ("DDDFFFLLL", "dfl"),
])
def test_latin_repeats_from_three_and_never_digits(norm: Normaliser, text: str, dense: str) -> None:
    assert norm.normalise(text).dense.text == dense


# --- zero-width joiners in emoji ------------------------------------------------------------------------------

def test_zero_width_joiner_inside_emoji_is_not_an_evasion(norm: Normaliser) -> None:
    assert "zero_width" not in norm.normalise("全家福👨\u200d👩\u200d👧").signals
    assert "zero_width" in norm.normalise("换\u200d脸").signals
    assert "zero_width" in norm.normalise("👨\u200d换脸").signals


# --- hostile input ---------------------------------------------------------------------------------------------

def test_empty_text(norm: Normaliser) -> None:
    r = norm.normalise("")
    assert (r.dense.text, r.light.text, r.signals, r.truncated) == ("", "", (), False)
    assert len(r.dense.starts) == len(r.dense.ends) == 0


def test_one_megabyte_is_truncated_in_bounded_time(norm: Normaliser) -> None:
    text = "出售AI金丹，加V信 abc123。" * 60_000  # ~1.1 M chars
    t0 = time.perf_counter()
    r = norm.normalise(text)
    elapsed = time.perf_counter() - t0
    assert r.truncated
    assert r.original is text
    assert len(r.light.text) <= norm.max_chars
    assert max(r.light.ends) <= norm.max_chars
    assert r.dense.text.startswith("出售ai金丹加v信abc123")
    assert elapsed < 2.0


def test_one_megabyte_of_zero_width_is_bounded(norm: Normaliser) -> None:
    t0 = time.perf_counter()
    r = norm.normalise("\u200b" * 1_000_000)
    assert time.perf_counter() - t0 < 2.0
    assert r.truncated
    assert r.dense.text == "" and r.light.text == ""
    assert r.signals == ("zero_width",)


def test_one_megabyte_with_rlo_is_bounded(norm: Normaliser) -> None:
    t0 = time.perf_counter()
    r = norm.normalise("\u202e" + "丹金IA\u200b" * 200_000)
    assert time.perf_counter() - t0 < 5.0
    assert r.truncated
    assert r.dense.text.startswith("ai金丹")
    assert {"reversed", "zero_width"} <= set(r.signals)


def test_all_zero_width_gives_empty_dense_and_the_signal(norm: Normaliser) -> None:
    r = norm.normalise("\u200b\u200c\u200d\u2060\ufeff")
    assert r.dense.text == ""
    assert r.light.text == ""
    assert "zero_width" in r.signals


def test_max_chars_counts_code_points() -> None:
    n = Normaliser(max_chars=4)
    r = n.normalise("金丹出售教程")
    assert r.truncated
    assert r.dense.text == "金丹出售"
    assert not n.normalise("金丹出售").truncated
    with pytest.raises(ValueError):
        Normaliser(max_chars=0)


@pytest.mark.parametrize("text", ["\ud800", "金\ud800丹", "\udfff\ud800", "a\ud83d\ude00b金丹"])
def test_lone_surrogates_are_dropped(norm: Normaliser, text: str) -> None:
    r = norm.normalise(text)
    assert not any("\ud800" <= c <= "\udfff" for c in r.dense.text + r.light.text)
    assert r.dense.text.replace("ab", "") in ("", "金丹")
    for view in (r.dense, r.light):
        assert len(view.starts) == len(view.ends) == len(view.text)


def test_lone_surrogate_keeps_offsets(norm: Normaliser) -> None:
    text = "出售\ud800金丹"
    assert dense_span(norm, text, "金丹") == (3, 5)


def test_nul_and_control_chars(norm: Normaliser) -> None:
    text = "金\x00丹\x07出\x1b售\x7f"
    r = norm.normalise(text)
    assert r.dense.text == "金丹出售"
    assert dense_span(norm, text, "金丹") == (0, 3)
    assert norm.normalise("a\tb\nc").light.text == "a\tb\nc"


@pytest.mark.parametrize(("text", "dense"), [
    ("AIの金丹", "aiの金丹"),
    ("딥페이크 DFL", "딥페이크dfl"),
    ("ดีพเฟค dfl", "ดีพเฟคdfl"),
    ("تبديل الوجه dfl", "تبديلالوجهdfl"),
])
def test_mixed_scripts_keep_their_letters(norm: Normaliser, text: str, dense: str) -> None:
    # Thai and Arabic combining vowels are marks and go; the letters stay as CJK-like chars.
    got = norm.normalise(text).dense.text
    assert got == "".join(c for c in dense if unicodedata.category(c) not in ("Mn", "Mc"))


def test_non_str_is_a_type_error(norm: Normaliser) -> None:
    with pytest.raises(TypeError):
        norm.normalise(b"bytes")  # type: ignore[arg-type]


# --- tables ----------------------------------------------------------------------------------------------------

def test_fold_is_idempotent() -> None:
    fold = tables.fold_table()
    bad = {c: s for c, s in fold.items() if "".join(fold.get(x, x) for x in s) != s}
    assert bad == {}


def test_lower_agrees_with_the_fold_for_every_code_point() -> None:
    """The normaliser lower-cases before it looks for special chars; that is only right if lower() keeps the
    length (all but İ) and folds each char the way the table does."""
    fold, kinds = tables.fold_table(), tables.fold_tables().kinds
    bad = []
    for cp in range(0x110000):
        c = chr(cp)
        low = c.lower()
        if low == c:
            continue
        if len(low) != 1:
            if c != "\u0130":
                bad.append(c)
        elif fold.get(c, c) != fold.get(low, low) or kinds.get(c) != kinds.get(low):
            bad.append(c)
    assert bad == []
    assert fold["\u0130"] == "i"


def test_t2s_is_char_level() -> None:
    t2s = tables.t2s_table()
    assert t2s["換"] == "换" and t2s["臉"] == "脸" and t2s["體"] == "体"
    assert "换" not in t2s and "金" not in t2s
    assert all(len(k) == len(v) == 1 for k, v in t2s.items())


def test_pinyin_and_initials() -> None:
    py, ini = tables.pinyin_table(), tables.initials_table()
    assert (py["金"], py["丹"], py["换"], py["脸"], py["绿"]) == ("jin", "dan", "huan", "lian", "lv")
    assert (ini["金"], ini["丹"]) == ("j", "d")
    assert all(s.isascii() and s.isalpha() and s == s.lower() for s in py.values())
    assert len(set(py.values())) < 500  # toneless syllables


def test_chaizi_pairs_are_unambiguous() -> None:
    pairs = tables.chaizi_pairs()
    assert pairs[("扌", "奂")] == "换"
    assert pairs[("月", "佥")] == "脸"
    assert pairs[("亻", "言")] == "信"
    assert ("日", "月") not in pairs  # 明 and 冐


def test_component_table_links_shared_phonetic_parts() -> None:
    comp = tables.component_table()
    assert ("扌", "奂") in comp["换"]
    for char, radical in (("唤", "口"), ("涣", "氵"), ("焕", "火")):
        assert (radical, "奂") in comp[char]


def test_build_times_are_recorded() -> None:
    tables.fold_tables()
    tables.pinyin_table()
    assert {"fold", "t2s", "pinyin"} <= set(tables.build_seconds)
    assert all(0 < s < 30 for s in tables.build_seconds.values())
