"""Contact extraction under random and hostile text: never raises, spans inside the original and in order, bounded
in number, and a contact survives the dodges sellers wrap around it (invisible chars, full width, filler text)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from jieyao.text.contacts import extract_contacts
from jieyao.text.normalise import Normaliser

N = Normaliser()
TYPES = {"phone", "qq", "qq_group", "wechat", "telegram", "email", "url", "cloud_drive"}
PIECES = ["微信", "v信", "薇信", "➕V", "vx", "QQ", "扣扣", "企鹅", "Q群", "群号", "飞机", "tg", "t.me/", "@", ".",
          "。", "点", ":", "：", " ", "-", "/", "?pwd=", "提取码", "密码", "网盘", "度盘", "pan.baidu.com/s/", "https://",
          "www.", ".com", "138", "0013", "8000", "一三八", "①", "１", "\u200b", "\u202e", "\ufe0f", "\ud800", "\x00",
          "abc", "_", "99元", "2024年"]
CHUNKS = st.one_of(st.sampled_from(PIECES), st.text(max_size=4))
LISTINGS = st.lists(CHUNKS, max_size=40).map("".join)
INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad"])
FILLER = st.text(alphabet="出售模型教程价格元，。 ", max_size=12)


def _check(text: str, max_contacts: int = 50) -> list:
    found = extract_contacts(N.normalise(text), max_contacts=max_contacts)
    assert len(found) <= max(max_contacts, 0)
    for c in found:
        assert c.type in TYPES
        assert 0 <= c.start < c.end <= len(text)
        assert isinstance(c.value, str)
        if c.type == "phone":
            assert re.fullmatch(r"1[3-9][0-9]{9}", c.value)
        if c.type in ("qq", "qq_group"):
            assert re.fullmatch(r"[1-9][0-9]{4,10}", c.value)
        if c.type == "cloud_drive":
            assert c.value or c.code
    assert [c.start for c in found] == sorted(c.start for c in found)
    return found


@given(LISTINGS, st.integers(min_value=-1, max_value=8))
def test_random_listings_never_raise_and_stay_in_bounds(text: str, max_contacts: int) -> None:
    _check(text, max_contacts)


@given(st.text(max_size=300))
def test_any_text_never_raises(text: str) -> None:
    _check(text)


def _sprinkle(value: str, marks: list[str]) -> str:
    """Insert invisible chars between the chars of value (one mark per gap, cycling)."""
    if not marks:
        return value
    return "".join(ch + marks[i % len(marks)] for i, ch in enumerate(value[:-1])) + value[-1]


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), FILLER, FILLER, st.lists(INVISIBLE, max_size=3))
def test_a_phone_survives_invisible_chars_and_filler(number: str, before: str, after: str, marks: list[str]) -> None:
    written = _sprinkle(number, marks)
    text = f"{before} {written} {after}"
    found = [c for c in _check(text) if c.type == "phone"]
    assert [c.value for c in found] == [number]
    c = found[0]
    assert text[c.start:c.end] == written
    assert c.obfuscated == bool(marks)


# an id that begins with the filler word "id" ("微信id0000") is read as the filler plus "0000": ambiguous on purpose
@given(st.from_regex(r"[a-z][a-z0-9_]{5,15}", fullmatch=True).filter(lambda s: not s.startswith("id")),
       st.sampled_from(["微信", "v信", "薇信", "vx", "➕V"]),
       st.booleans(), FILLER)
def test_a_wechat_id_survives_full_width_and_filler(ident: str, prefix: str, wide: bool, after: str) -> None:
    written = ident.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}) if wide else ident
    text = f"联系{prefix}：{written} {after}"
    found = [c for c in _check(text) if c.type == "wechat"]
    assert [c.value for c in found] == [ident]
    c = found[0]
    assert text[c.start:c.end] == f"{prefix}：{written}"
    assert c.obfuscated == (wide or prefix != "微信")


@given(st.from_regex(r"[A-Za-z0-9_-]{4,20}", fullmatch=True), st.from_regex(r"[a-z0-9]{4}", fullmatch=True), FILLER)
def test_a_baidu_link_keeps_its_share_id_and_code(share: str, code: str, after: str) -> None:
    text = f"链接: https://pan.baidu.com/s/1{share} 提取码: {code} {after}"
    found = [c for c in _check(text) if c.type == "cloud_drive"]
    assert [(c.value, c.provider, c.code) for c in found] == [(f"https://pan.baidu.com/s/1{share}", "baidu", code)]
