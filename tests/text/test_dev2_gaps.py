"""The general gaps a second, independently written development set (tests/data/moderation/dev2.jsonl) showed,
each as a listing the change fixes and a benign neighbour it must leave alone; and the dev2 file's format."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from jieyao.model import Decision
from jieyao.text import moderate
from jieyao.text.channels import misspellings

DEV2 = Path(__file__).resolve().parents[1] / "data" / "moderation" / "dev2.jsonl"
EVASION_TAGS = {"plain", "homophone", "pinyin", "initials", "traditional", "fullwidth", "symbols", "emoji",
                "zero_width", "chaizi", "lookalike", "reversed", "contact_obfuscation", "repeats", "mixed"}
BENIGN_TAGS = {"ml", "gpu", "tcm", "fiction", "game", "clouddrive", "wechat", "beauty", "news", "detection",
               "ai-model", "software", "collision", "english"}
LABELS = {"model-sale", "software-sale", "custom-service", "tutorial", "contact-solicitation"}


def canonicals(text: str, channel: str | None = None) -> set[str]:
    return {h.canonical for h in moderate(text).hits if channel is None or h.channel == channel}


# -- flagged vs passed: (listing the change fixes, benign neighbour) -------------------------------------------

PAIRS = [
    # 脸模 is also a plaster keepsake or a silicone practice face: it needs face-swap or sale context now
    ("脸模 dfm 批量出 主播款 懂的私", "硅胶脸模 化妆练习用 美妆学校教具 120"),
    ("明星脸模 出售 网盘发", "宝宝的脸模手模纪念品 石膏 DIY 套装 68"),
    ("考勤机 换脸模型 批量导入 出售", "考勤机人脸模板批量导入教程"),
    # 换头术 is make-up slang for a dramatic make-over
    ("换头视频教程 包教会 299", "整容式化妆教程｜手残党也能学会的换头术妆容，私信领取教程"),
    # commentary on the grey market quotes the offer it condemns
    ("9块9包邮的实时换脸软件，拍下秒发", "评论：9块9包邮的实时换脸背后，是一条灰色产业链"),
    # Rope is an ordinary English word: alone it does not make a face-swap tutorial
    ("Rope 换脸教程 包教会 99", "Rope access training course, IRATA level 1, 5 days, $900"),
    # .dfm is also a Delphi form file
    (".dfm 明星模型 出售 50", "Delphi 7 .dfm 窗体文件转换工具 出售 50"),
    # shop and guesthouse names
    ("仙丹 底丹 出 微信 xd_shop", "仙丹小屋民宿 预订 微信 xdxw_bnb"),
    # OTC remedies
    ("灵丹 底丹 便宜卖 3 元一颗", "灵丹牌风油精 清凉提神 便宜卖 3 元一瓶"),
    # ordinary computer-vision models (segmentation, matting) shared with a code
    ("预训练权重 出售 网盘发货 提取码随单", "人像分割模型 MODNet 预训练权重，抠图用，网盘自取 提取码 mdnt"),
    # a one-edit misspelling of a long tool name is still the tool; a word two edits away is not
    ("facefuison 破解版 无水印 25", "facefashion 破解版 无水印 25"),
    # a sound-alike with none of its term's chars counts as one item of a list of 丹 words, not glued to text
    ("出今单 仙单 都是自己练的 价格好说", "快递默认底单 价格好说"),
]


@pytest.mark.parametrize(("violating", "benign"), PAIRS)
def test_fixed_listing_flags_and_neighbour_passes(violating: str, benign: str) -> None:
    assert moderate(violating).decision != Decision.PASS, violating
    r = moderate(benign)
    assert r.decision == Decision.PASS, (benign, [f.id for f in r.rules])


# -- labels: (listing, label it must now carry, neighbour that must not carry it) -------------------------------

LABEL_CASES = [
    # LINE (加賴) names a way to reach the seller
    ("AI金丹 底丹 丹藥 批發 量大價優 加賴", "contact-solicitation", "AI金丹 底丹 丹藥 批發 量大價優"),
    # an emoji standing in for 信 after any 微信 dodge (威❤, v❤xin)
    ("实时换脸软件 威❤：live_hl 备注来意", "contact-solicitation", "实时换脸软件 威力大 备注来意 88"),
    ("换脸模型 要的 v❤xin: hl_6688", "contact-solicitation", "换脸模型 要的 ❤ 出售"),
    # taking orders with the object inside: 接换脸单; 直接下单 is not a service
    ("接换脸单，男女明星都能做，30秒内的视频 50", "custom-service", "换脸软件，拍了直接下单，50"),
    # installs done for the buyer are the support the tutorial label covers
    ("FaceFusion 代装 V：ff_help 加的时候备注", "tutorial", "FaceFusion 破解版 V：ff_help 加的时候备注"),
    ("出售换脸软件，不会的我远程帮你装，80", "tutorial", "出售换脸软件，80"),
    # made-to-order training and operation
    ("代训练换脸模型，你提供素材我来练，三天交付", "custom-service", "换脸模型，三天交付"),
    ("专业直播换脸代运营，价格私聊", "custom-service", "专业直播换脸软件，价格私聊"),
    # a support group for a model sale is the tutorial label too
    ("明星模型 臉模 高清 售後群 終身答疑", "tutorial", "明星模型 臉模 高清 出售"),
    # the bare word model next to a face-swap tool
    ("faceswap 软件 + 模型 低价处理 自用一年", "model-sale", "faceswap 软件 低价处理 自用一年"),
    ("inswapper_128.onnx 模型 + 整合包，打包 15 元，网盘发", "model-sale", "YOLOv8 模型 + 整合包，打包 15 元，网盘发"),
]


@pytest.mark.parametrize(("text", "label", "neighbour"), LABEL_CASES)
def test_label_gained_and_neighbour_without_it(text: str, label: str, neighbour: str) -> None:
    r = moderate(text)
    assert r.decision == Decision.BLOCK and label in r.labels, (text, r.labels)
    assert label not in moderate(neighbour).labels, neighbour


def test_messaging_app_features_are_not_handles() -> None:
    # 微信视频/QQ视频 name where the fake call happens, not how to reach the seller
    r = moderate("实时换脸软件 微信视频QQ视频都能用 永久 88")
    assert r.decision == Decision.BLOCK and "software-sale" in r.labels
    assert "contact-solicitation" not in r.labels
    r = moderate("实时换脸软件 加微信 hl_88 永久 88")
    assert "contact-solicitation" in r.labels


def test_xseg_mask_model_is_a_dfl_part_not_a_face_model() -> None:
    r = moderate("DeepFaceLab 2.0 中文整合包，送XSeg遮罩模型，拍下网盘秒发，9.9元")
    assert "software-sale" in r.labels and "model-sale" not in r.labels


def test_portable_and_modified_builds_are_software() -> None:
    assert "software-sale" in moderate("换脸 便携版 出 20").labels
    assert moderate("Photoshop 便携版 出 20").decision == Decision.PASS


# -- misspelt tool names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "canonical"), [
    ("facefuison 破解版", "FaceFusion"),       # two letters swapped
    ("deepfacelap 中文整合包", "DeepFaceLab"),  # one letter changed
    ("deep live came 实时换脸", "Deep-Live-Cam"),  # a letter added, across the spaces
    ("deepfacelve 出", "DeepFaceLive"),         # a letter dropped
])
def test_misspelt_tool_names_are_found_as_glyph(text: str, canonical: str) -> None:
    assert canonical in canonicals(text, "glyph")
    assert "glyph" in moderate(text).evasion


@pytest.mark.parametrize("text", [
    "racefusion 破解版",          # the first letter differs
    "rooq 一键",                  # short names (roop) are not matched fuzzily
    "confusion about fusion",     # ordinary English
    "the troop installed software",
    "deepfacelab 出售",           # the exact name is the surface channel's, not a misspelling
])
def test_no_misspelling_hit(text: str) -> None:
    assert not canonicals(text, "glyph")


def test_misspelling_hit_spans_the_original_word() -> None:
    text = "出 Deep Face Lap 整合包"
    hits = [h for h in moderate(text).hits if h.channel == "glyph"]
    assert [(h.canonical, h.term) for h in hits] == [("DeepFaceLab", "Deep Face Lap")]


@pytest.mark.parametrize(("spelling", "expected"), [
    ("facefuison", True), ("facefusio", True), ("facefusions", True), ("facefasion", True),
    ("facefusion", False),    # the name itself is the surface channel's
    ("racefusion", False),    # the first letter is kept
    ("fcaefsuion", False), ("facefashion", False), ("facefusionxx", False),  # two edits
])
def test_misspellings_are_one_edit_keeping_the_first_letter(spelling: str, expected: bool) -> None:
    assert (spelling in misspellings("facefusion")) is expected


def test_a_stray_letter_after_a_correct_name_is_not_a_misspelling() -> None:
    r = moderate("deepfacelab x 出售")
    assert [h.channel for h in r.hits if h.canonical == "DeepFaceLab"] == ["surface"]
    assert "glyph" not in r.evasion


def test_misspellings_are_bounded_on_hostile_input() -> None:
    # thousands of misspelt names: the hits are capped, the result is still a decision, not an error
    r = moderate(" ".join(["facefuison"] * 5000))
    assert r.error is None or "truncated" in r.error
    assert r.decision in (Decision.PASS, Decision.REVIEW)


# -- sound-alike lists ----------------------------------------------------------------------------------------


def test_stranger_sound_alike_counts_only_as_a_list_item() -> None:
    assert {"金丹", "仙丹"} <= canonicals("出今单 仙单 价格好说", "pinyin")
    assert {"金丹", "仙丹"} <= canonicals("今单、仙单 出", "pinyin")
    assert "金丹" not in canonicals("今单仙单 出")        # glued: no separator in the seller's text
    assert "金丹" not in canonicals("今单 出售")          # alone
    assert "预训练模型" not in canonicals("快递默认底单")  # 递默 ~ 底模, glued to 底单
    assert "金丹" not in canonicals("xjindan 仙丹 出")    # typed pinyin glued to Latin is not a list item


# -- the dev2 file --------------------------------------------------------------------------------------------


def test_dev2_format_and_counts() -> None:
    raw = DEV2.read_text(encoding="utf-8")
    assert not any(unicodedata.category(c) in ("Cf", "Cc") for c in raw.replace("\n", ""))
    rows = [json.loads(line) for line in raw.splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and all(i.startswith("w") for i in ids)
    counts = Counter(r["label"] for r in rows)
    assert counts["violating"] >= 150 and counts["benign"] >= 150, counts
    for r in rows:
        assert set(r) <= {"id", "text", "label", "labels", "tags", "note"}
        assert 10 <= len(r["text"]) <= 300, r["id"]
        if r["label"] == "violating":
            assert r["labels"] and set(r["labels"]) <= LABELS and set(r["tags"]) <= EVASION_TAGS, r["id"]
        else:
            assert r["labels"] == [] and r["tags"] and set(r["tags"]) <= BENIGN_TAGS, r["id"]
    tags = Counter(t for r in rows for t in r["tags"])
    assert set(tags) == EVASION_TAGS | BENIGN_TAGS, set(EVASION_TAGS | BENIGN_TAGS) - set(tags)
