"""The moderator end to end: decisions and explanations, allow contexts, hard negatives, user data files,
listings with fields, hostile input, and the labelled dev set."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.model import Decision
from jieyao.text import LexiconError, ModerationResult, Moderator, RulesError, moderate, moderate_listing
from jieyao.text.engine import FIELD_SEPARATOR, default_moderator
from jieyao.text.evaluate import evaluate
from jieyao.text.lexicon import SCHEMA_ID as LEXICON_SCHEMA
from jieyao.text.rules import SCHEMA_ID as RULES_SCHEMA

DEV = Path(__file__).resolve().parents[1] / "data" / "moderation" / "dev.jsonl"


def assert_consistent(text: str, r: ModerationResult) -> None:
    """What every result must satisfy: offsets inside the text and equal to the reported term, sorted hits,
    a score in [0, 1] that is 0 exactly when nothing flagged, JSON-serialisable."""
    assert isinstance(r.decision, Decision)
    assert 0.0 <= r.score <= 1.0
    assert (r.score > 0) == (r.decision != Decision.PASS)
    starts = [h.start for h in r.hits]
    assert starts == sorted(starts)
    for h in r.hits:
        assert 0 <= h.start < h.end <= len(text)
        assert text[h.start:h.end] == h.term
    for c in r.contacts:
        assert 0 <= c.start < c.end <= len(text)
    json.dumps(r.to_dict(), ensure_ascii=False)


# -- decisions and explanations -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "decision", "label"), [
    ("出售AI金丹，网盘秒发", Decision.BLOCK, "model-sale"),
    ("DeepFaceLab 2.0 中文整合包，解压即用，9.9元", Decision.BLOCK, "software-sale"),
    ("专业定制换脸视频，给照片就行", Decision.BLOCK, "custom-service"),
    ("AI换脸保姆级教程，包教会，学费300", Decision.BLOCK, "tutorial"),
    ("换脸模型有需要的加微信 ai_face666", Decision.BLOCK, "contact-solicitation"),
    ("For sale: FaceFusion realtime face swap pack, $25, instant delivery", Decision.BLOCK, "software-sale"),
    ("明星换脸模型", Decision.REVIEW, "model-sale"),
])
def test_decisions_and_labels(text: str, decision: Decision, label: str) -> None:
    r = moderate(text)
    assert r.decision == decision, r.rules
    assert label in r.labels
    assert_consistent(text, r)


def test_explanations_name_the_terms() -> None:
    text = "金蛋出售，DFL专用"
    r = moderate(text)
    top = [f for f in r.rules if f.decision == Decision.BLOCK]
    assert top and all(f.why for f in r.rules)
    assert any("'金蛋' = 金丹 (pinyin)" in f.why and "'出售'" in f.why for f in top)
    assert r.rules == tuple(sorted(r.rules, key=lambda f: -f.decision.rank))
    assert "pinyin" in r.evasion
    d = r.to_dict()
    assert d["decision"] == "block" and d["hits"][0]["canonical"] == "金丹"


def test_score_comes_from_the_hits_of_the_firing_rule() -> None:
    r = moderate("出售AI金丹")
    # model-sale: AI金丹 (0.9) and 出售 (0.6) -> 1 - 0.1 * 0.4; other block rules score lower or equal
    assert r.score == pytest.approx(max(0.96, 1 - 0.4 * 0.1 * 0.4))
    assert moderate("今天天气不错").score == 0.0


def test_hits_inside_a_handle_are_not_offers() -> None:
    r = moderate("出售二手自行车，加微信 dan_yao01")
    assert r.decision == Decision.PASS
    assert not [h for h in r.hits if h.group == "dan"]


def test_contacts_feed_the_rules() -> None:
    r = moderate("DFL 加微信 dfl_shop_88")
    assert [c.type for c in r.contacts] == ["wechat"]
    assert "contact-solicitation" in r.labels


# -- allow contexts and hard negatives -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "炼丹日记：换了AdamW之后loss终于降下来了，显存刚好够",
    "出二手3090显卡一张，自用炼丹一年，3800包邮",
    "中文BERT预训练模型下载：百度网盘 提取码 k9m2，仅供学术研究",
    "求推荐修仙小说，主角从炼气期到金丹期再到元婴",
    "出售梦幻西游 九转金丹 x20，游戏币交易，私聊",
    "北京同仁堂 乌鸡白凤丸 正品 ￥58",
    "女金丹调经养血，请在医师指导下使用",
    "警惕AI换脸诈骗！有商家出售换脸软件和明星模型，警方提醒及时举报",
    "深度伪造检测SDK，可识别DeepFaceLab、FaceFusion生成的换脸视频，欢迎咨询报价",
    "仙丹花盆栽出售，15元一盆",
    "出售全新不锈钢换脸盆架，包邮",
    "jd自营 秒发 今天下单明天到",
    "微信支付很方便，现在连菜市场都能扫码了",
    "建筑效果图专用SD底模，一个模型39元",
    "本店新到一批纯棉短袖T恤，下单前请看好尺码表，快递默认中通",
    "DFL Supercup tickets, two seats together, face value, PM me",
    "Delphi 老项目迁移：.dfm 窗体文件怎么转成 .lfm？",
])
def test_innocent_contexts_pass(text: str) -> None:
    r = moderate(text)
    assert r.decision == Decision.PASS, [(f.id, f.why) for f in r.rules]
    assert_consistent(text, r)


def test_allow_context_subtracts_but_does_not_whitewash_a_model_sale() -> None:
    # GPU words do not make a face-swap model sale innocent
    r = moderate("出售DFL丹药，3090显卡训练，网盘秒发")
    assert r.decision == Decision.BLOCK and "model-sale" in r.labels


def test_evasion_boasts_mask_detection_words() -> None:
    r = moderate("实时换脸软件，可过检测，出售")
    assert r.decision == Decision.BLOCK


# -- user data files ------------------------------------------------------------------------------------------


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_user_lexicon_and_rules_extend_without_code(tmp_path: Path) -> None:
    lex = write(tmp_path / "lex.json", {
        "schema": LEXICON_SCHEMA, "version": "u1",
        "groups": {"voice": {"weight": 0.8}},
        "terms": [{"group": "voice", "canonical": "声音克隆", "terms": ["声音克隆", "克隆声音"]}],
    })
    rules = write(tmp_path / "rules.json", {
        "schema": RULES_SCHEMA, "version": "u1",
        "rules": [{"id": "voice-clone-sale", "label": "voice-clone", "decision": "block",
                   "all": [["voice"], ["sale", "price"]], "window": 50, "why": "voice cloning for sale"}],
    })
    assert moderate("声音克隆 出售 99元").decision == Decision.PASS
    m = Moderator([lex], [rules])
    r = m.moderate("声音克隆 出售 99元")
    assert r.decision == Decision.BLOCK and r.labels == ("voice-clone",)
    assert str(lex) in m.versions and str(rules) in m.versions
    # pinyin came for free for the new CJK term
    assert m.moderate("sheng yin ke long 出售").decision == Decision.BLOCK


def test_bad_user_files_fail_at_build_with_the_file_named(tmp_path: Path) -> None:
    bad_lex = tmp_path / "bad-lex.json"
    bad_lex.write_text('{"schema": "jieyao.text.lexicon/1"}', encoding="utf-8")
    with pytest.raises(LexiconError, match=r"bad-lex\.json.*version"):
        Moderator([bad_lex])
    typo = write(tmp_path / "typo.json", {"schema": RULES_SCHEMA, "version": "1", "rules": [
        {"id": "x", "label": None, "decision": "block", "all": [["modle"]], "why": "typo"}]})
    with pytest.raises(RulesError, match=r"typo\.json.*'modle'"):
        Moderator(rules_paths=[typo])


# -- listings with fields -------------------------------------------------------------------------------------


def test_listing_fields_are_joined_without_cross_field_matches() -> None:
    fields = {"title": "全新正品 换", "description": "脸盆 不锈钢"}
    r = moderate_listing(fields, id="L1")
    assert r.id == "L1"
    assert not [h for h in r.hits if h.canonical == "换脸"]
    second = 6 + len(FIELD_SEPARATOR)
    assert r.extra["fields"] == {"title": {"start": 0, "end": 6}, "description": {"start": second, "end": second + 6}}


def test_listing_fields_offsets_and_hit_fields() -> None:
    fields = {"title": "DFL整合包", "description": "拍下秒发，9.9元"}
    r = moderate_listing(fields)
    assert r.decision == Decision.BLOCK
    joined = FIELD_SEPARATOR.join(fields.values())
    assert_consistent(joined, r)
    by_field = dict(zip((h.canonical for h in r.hits), r.extra["hit_fields"], strict=True))
    assert by_field["DeepFaceLab"] == "title" and by_field["秒发"] == "description"
    desc = r.extra["fields"]["description"]
    h = next(h for h in r.hits if h.canonical == "秒发")
    assert fields["description"][h.start - desc["start"]:h.end - desc["start"]] == h.term


# -- hostile input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", " ", "\u200b" * 5000, "\ud800", "a\udfff换脸\ud800b", "\x00\x01\x02\x1b[31m", "\u202e" * 100,
    "АΑA金丹🅳🅵🅻ⒹⒻⓁ𝐃" * 50, "\ufeff\u2060\u200d\u200c", "\U0010ffff\ue000", "９" * 3000,
])
def test_bad_input_never_raises(text: str) -> None:
    r = moderate(text)
    assert r.error is None
    assert_consistent(text, r)


def test_one_megabyte_is_bounded_and_says_so() -> None:
    text = "出售AI金丹，" + "换脸软件出售，加v信 abc_12345 " * 50_000
    assert len(text) > 1_000_000
    t0 = time.perf_counter()
    r = moderate(text)
    assert time.perf_counter() - t0 < 20
    assert r.decision == Decision.BLOCK
    assert r.extra["truncated"] is True and "100000" in r.extra["note"]
    assert all(h.end <= 100_000 for h in r.hits)
    assert len(r.hits) < 20_000


def test_all_zero_width_megabyte() -> None:
    r = moderate("\u200b" * 1_000_000)
    assert r.decision == Decision.PASS and r.extra.get("truncated")


def test_non_str_input_is_reviewed_not_raised() -> None:
    r = moderate(b"bytes")  # type: ignore[arg-type]
    assert r.decision == Decision.REVIEW and r.error


_ALPHABET = st.sampled_from([*"出售AI金丹换脸软件模型DFLdfl jin dan 扌奂月佥 ➕V微信薇信扣扣0123456789.,@-_/",
                             "\u200b", "\u202e", "\u202c", "\ud800", "\udfff", "\x00", "Ａ", "А", "🔥", "\n"])


@given(st.lists(_ALPHABET, max_size=120).map("".join))
def test_fuzz_never_raises_and_stays_consistent(text: str) -> None:
    r = moderate(text)
    assert r.error is None
    assert_consistent(text, r)


@given(st.text(max_size=200))
def test_fuzz_any_unicode(text: str) -> None:
    r = moderate(text)
    assert r.error is None
    assert_consistent(text, r)


# -- the default moderator and the labelled set ---------------------------------------------------------------


def test_default_moderator_is_built_once() -> None:
    assert default_moderator() is default_moderator()
    assert default_moderator().build_seconds < 30


def test_dev_set_meets_the_goal() -> None:
    """Regression guard on the set the rules were tuned on (dev only; heldout is for measuring)."""
    report = evaluate(moderate, DEV)
    assert report.bad_lines == ()
    assert report.failures == ()
    assert report.confusion.recall >= 0.95
    assert report.confusion.precision >= 0.98
