"""One end-to-end test per evasion named in the issue: each asserts the decision, the label and the span of the
decisive hit in the *original* text (what a reviewer's tool highlights)."""

from __future__ import annotations

import pytest

from jieyao.model import Decision
from jieyao.text import ModerationResult, moderate
from jieyao.text.result import Hit


def hit(result: ModerationResult, canonical: str, channel: str | None = None) -> Hit:
    """The first hit with this canonical form (and channel), failing the test when there is none."""
    for h in result.hits:
        if h.canonical == canonical and (channel is None or h.channel == channel):
            return h
    seen = [(h.term, h.canonical, h.channel) for h in result.hits]
    raise AssertionError(f"no {canonical!r} ({channel}) hit in {seen}")


def check(text: str, label: str, canonical: str, span: tuple[int, int], channel: str | None = None,
          evasion: str | None = None) -> ModerationResult:
    r = moderate(text)
    assert r.decision == Decision.BLOCK, (r.decision, r.rules)
    assert label in r.labels, r.labels
    h = hit(r, canonical, channel)
    assert (h.start, h.end) == span, (h.start, h.end)
    assert text[h.start:h.end] == h.term
    if evasion:
        assert evasion in r.evasion, r.evasion
    return r


def test_homophones() -> None:
    # 金蛋 (golden egg) for 金丹, 幻脸 for 换脸
    check("金蛋出售，DFL专用，网盘秒发", "model-sale", "金丹", (0, 2), "pinyin", "pinyin")
    check("幻脸软件永久版 私聊", "software-sale", "换脸软件", (0, 4), "pinyin")


def test_glyph_lookalike_chars() -> None:
    # 睑 (eyelid) shares 佥 with 脸
    r = check("代做换睑视频，一分钟80", "custom-service", "换脸", (2, 6), "glyph", "glyph")
    assert hit(r, "换脸").term == "换睑视频"


def test_typed_pinyin() -> None:
    check("出售 huan lian ruan jian，永久使用", "software-sale", "换脸软件", (3, 22), "pinyin", "pinyin")


def test_pinyin_mixed_with_han() -> None:
    check("换lian软件 出售 ￥99", "software-sale", "换脸软件", (0, 7), "pinyin")


def test_pinyin_initials() -> None:
    check("出hlmx，价格私聊", "model-sale", "换脸模型", (1, 5), "initials", "initials")


def test_traditional() -> None:
    check("出售換臉模型，網盤自動發貨", "model-sale", "换脸模型", (2, 6), "surface", "traditional")


def test_fullwidth() -> None:
    check("ＤＦＬ整合包　￥１９９　拍下秒发", "software-sale", "DeepFaceLab", (0, 3), "surface", "fullwidth")


def test_symbols_between_chars() -> None:
    r = check("出@售 A.I金丹，换-脸模型", "model-sale", "AI金丹", (4, 9), "surface", "noise")
    assert hit(r, "换脸模型").term == "换-脸模型"


def test_emoji_between_chars() -> None:
    check("金💊丹 出🔥售 秒发", "model-sale", "金丹", (0, 3), "surface")


def test_zero_width_between_chars() -> None:
    text = "出\u200b售\u200bA\u200bI\u200b金\u200b丹"
    r = check(text, "model-sale", "AI金丹", (4, 11), "surface", "zero_width")
    assert hit(r, "出售").term == "出\u200b售"


def test_chaizi_split_chars() -> None:
    check("扌奂月佥软件出售，30元", "software-sale", "换脸软件", (0, 6), "chaizi", "chaizi")


def test_cyrillic_lookalikes() -> None:
    check("АІ金丹出售", "model-sale", "AI金丹", (0, 4), "surface", "lookalike")  # Cyrillic А and І


def test_greek_lookalikes() -> None:
    check("ΑΙ金丹 现货 出售", "model-sale", "AI金丹", (0, 4), "surface", "lookalike")


def test_styled_latin_letters() -> None:
    check("𝐃𝐅𝐋 整合包 出售", "software-sale", "DeepFaceLab", (0, 3), "surface", "styled_letters")


def test_reversed_with_rlo() -> None:
    # renders as "AI金丹 出售": the hit spans the reversed code points as written
    r = check("\u202e售出 丹金IA", "model-sale", "AI金丹", (4, 8), "surface", "bidi_override")
    assert hit(r, "AI金丹").term == "丹金IA"


def test_reversed_without_rlo() -> None:
    check("件软脸换时实，售出价低，发秒盘网", "software-sale", "实时换脸", (0, 6), "reversed", "reversed")


def test_repeats() -> None:
    check("换换换换脸软件 出出出", "software-sale", "换脸软件", (0, 7), "surface", "repeats")


@pytest.mark.parametrize(("text", "label", "contact_span", "kind"), [
    ("换脸软件，加v信 swap_soft1", "software-sale", (6, 19), "wechat"),
    ("换脸模型，加薇信 face_dan88", "model-sale", (6, 19), "wechat"),
    ("AI金丹 ➕V: dan_shop2025", "model-sale", (5, 21), "wechat"),
    ("明星换脸模型 扣扣 3 8 7 2 1 9 4 5 6", "model-sale", (7, 27), "qq"),
])
def test_obfuscated_contacts(text: str, label: str, contact_span: tuple[int, int], kind: str) -> None:
    r = moderate(text)
    assert r.decision == Decision.BLOCK
    assert {label, "contact-solicitation"} <= set(r.labels)
    (c,) = [c for c in r.contacts if c.type == kind]
    assert (c.start, c.end) == contact_span and c.obfuscated
    assert "contact_obfuscation" in r.evasion
    # the handle is not mistaken for an offer: no hit lies inside it
    assert not [h for h in r.hits if c.start <= h.start and h.end <= c.end and h.group not in ("handle", "contact")]


def test_add_v_without_an_id() -> None:
    # "加V" names the channel but dodges the id: still a solicitation (the labelled set says so)
    r = moderate("一键换脸软件，加V看效果")
    assert r.decision == Decision.BLOCK and "contact-solicitation" in r.labels
    h = hit(r, "微信")
    assert (h.start, h.end) == (7, 9) and h.term == "加V"
