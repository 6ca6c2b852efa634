"""Contact extraction: every type and dodge with its exact original span, the hard negatives, overlaps, bounds."""

from __future__ import annotations

import json
import time
from importlib import resources

import pytest

from jieyao.text.contacts import _Group, extract_contacts, is_mobile, phone_windows
from jieyao.text.normalise import Normaliser
from jieyao.text.result import Contact

N = Normaliser()


def contacts(text: str, **kw: int) -> list[Contact]:
    return extract_contacts(N.normalise(text), **kw)


def only(text: str) -> Contact:
    found = contacts(text)
    assert len(found) == 1, [c.to_dict() for c in found]
    return found[0]


def shown(text: str, c: Contact) -> str:
    return text[c.start:c.end]


# (text, type, value, the original text the span must cover, obfuscated)
CASES = [
    # phone
    ("联系电话 13800138000 谢谢", "phone", "13800138000", "13800138000", False),
    ("电话 138 0013 8000", "phone", "13800138000", "138 0013 8000", False),
    ("电话:+86 139-1234-5678。", "phone", "13912345678", "+86 139-1234-5678", False),
    ("0086 13912345678", "phone", "13912345678", "0086 13912345678", False),
    ("电话一三八零零一三八零零零", "phone", "13800138000", "一三八零零一三八零零零", True),
    ("电话幺三八〇〇幺三八〇〇〇", "phone", "13800138000", "幺三八〇〇幺三八〇〇〇", True),
    ("手机①③⑧⓪⓪①③⑧⓪⓪⓪", "phone", "13800138000", "①③⑧⓪⓪①③⑧⓪⓪⓪", True),
    ("手机１３８００１３８０００", "phone", "13800138000", "１３８００１３８０００", True),
    ("1 3 8 0 0 1 3 8 0 0 0", "phone", "13800138000", "1 3 8 0 0 1 3 8 0 0 0", True),
    ("一3八0013八000", "phone", "13800138000", "一3八0013八000", True),
    ("138\u200b0013\u200b8000", "phone", "13800138000", "138\u200b0013\u200b8000", True),
    ("价格99 13800138000", "phone", "13800138000", "13800138000", False),
    ("电话\u202e00083100831\u202c 谢谢", "phone", "13800138000", "00083100831", True),  # shown reversed (RLO)
    # qq
    ("QQ号：12345678", "qq", "12345678", "QQ号：12345678", False),
    ("有事加q 2345678", "qq", "2345678", "加q 2345678", False),
    ("q:1234567", "qq", "1234567", "q:1234567", False),
    ("扣扣 ①②③④⑤⑥", "qq", "123456", "扣扣 ①②③④⑤⑥", True),
    ("抠抠：88886666", "qq", "88886666", "抠抠：88886666", True),
    ("企鹅号 987654321", "qq", "987654321", "企鹅号 987654321", True),
    ("企鹅: 987654321", "qq", "987654321", "企鹅: 987654321", True),
    ("ｑｑ：１２３４５６７８", "qq", "12345678", "ｑｑ：１２３４５６７８", True),
    ("QQ 一二三四五六七八", "qq", "12345678", "QQ 一二三四五六七八", True),
    # qq group
    ("Q群 123456789", "qq_group", "123456789", "Q群 123456789", False),
    ("售后群号: 654321", "qq_group", "654321", "群号: 654321", False),
    ("qq群：7654321 进群领教程", "qq_group", "7654321", "qq群：7654321", False),
    # wechat
    ("加微信：abc_123 拍下秒发", "wechat", "abc_123", "微信：abc_123", False),
    ("微信号 DFL_Seller", "wechat", "dfl_seller", "微信号 DFL_Seller", False),
    ("wechat: seller88", "wechat", "seller88", "wechat: seller88", False),
    ("weixin dfl-2024", "wechat", "dfl-2024", "weixin dfl-2024", False),
    ("微信號：abc123", "wechat", "abc123", "微信號：abc123", False),
    ("加我微信 zhangsan 咨询", "wechat", "zhangsan", "微信 zhangsan", False),
    ("V信 dfl_seller", "wechat", "dfl_seller", "V信 dfl_seller", True),
    ("薇信：seller2024", "wechat", "seller2024", "薇信：seller2024", True),
    ("威信: abc123", "wechat", "abc123", "威信: abc123", True),
    ("徽信 abc1234", "wechat", "abc1234", "徽信 abc1234", True),
    ("维信 abc1234", "wechat", "abc1234", "维信 abc1234", True),
    ("加卫星 abc123", "wechat", "abc123", "加卫星 abc123", True),
    ("vx：seller88", "wechat", "seller88", "vx：seller88", True),
    ("➕V abc123", "wechat", "abc123", "➕V abc123", True),
    ("+v abc123", "wechat", "abc123", "+v abc123", True),
    ("十v: dfl_seller", "wechat", "dfl_seller", "十v: dfl_seller", True),
    ("加V abc123", "wechat", "abc123", "加V abc123", True),
    ("V: abc123", "wechat", "abc123", "V: abc123", True),
    ("v❤️ abc123", "wechat", "abc123", "v❤️ abc123", True),
    ("微❤ abc123", "wechat", "abc123", "微❤ abc123", True),
    ("薇信 13800138000", "wechat", "13800138000", "薇信 13800138000", True),
    ("微信 138 0013 8000", "wechat", "13800138000", "微信 138 0013 8000", False),
    ("v信 一三八零零一三八零零零", "wechat", "13800138000", "v信 一三八零零一三八零零零", True),
    ("微\u200b信: ab\u200bc123", "wechat", "abc123", "微\u200b信: ab\u200bc123", True),
    ("ＶＸ：ａｂｃ１２３４５", "wechat", "abc12345", "ＶＸ：ａｂｃ１２３４５", True),
    ("微信：ａｂｃ１２３４５", "wechat", "abc12345", "微信：ａｂｃ１２３４５", True),
    ("微信同号13800138000", "wechat", "13800138000", "微信同号13800138000", False),
    # telegram
    ("t.me/DFL_Shop", "telegram", "t.me/DFL_Shop", "t.me/DFL_Shop", False),
    ("群: https://t.me/+AbCdEf12", "telegram", "https://t.me/+AbCdEf12", "https://t.me/+AbCdEf12", False),
    ("telegram.me/dflshop", "telegram", "telegram.me/dflshop", "telegram.me/dflshop", False),
    ("飞机 @Seller_01", "telegram", "@seller_01", "飞机 @Seller_01", True),
    ("纸飞机：@dfl_shop", "telegram", "@dfl_shop", "纸飞机：@dfl_shop", True),
    ("电报 @dfl_shop", "telegram", "@dfl_shop", "电报 @dfl_shop", False),
    ("telegram @dfl_shop", "telegram", "@dfl_shop", "telegram @dfl_shop", False),
    ("tg: seller_bot", "telegram", "@seller_bot", "tg: seller_bot", False),
    ("飞机号 dflshop", "telegram", "@dflshop", "飞机号 dflshop", True),
    # email
    ("email me: Foo.Bar@Gmail.com", "email", "foo.bar@gmail.com", "Foo.Bar@Gmail.com", False),
    ("邮箱12345@qq.com", "email", "12345@qq.com", "12345@qq.com", False),
    ("邮箱 abc＠qq．com", "email", "abc@qq.com", "abc＠qq．com", True),
    ("邮箱 abc@qq。com", "email", "abc@qq.com", "abc@qq。com", True),
    # url
    ("官网 https://Example.com/Path?A=1。", "url", "https://example.com/Path?A=1", "https://Example.com/Path?A=1",
     False),
    ("官网 www.Example.com 欢迎", "url", "www.example.com", "www.Example.com", False),
    ("下载 dfl-shop.com/download.html, 谢谢", "url", "dfl-shop.com/download.html", "dfl-shop.com/download.html",
     False),
    ("http://192.168.1.1/admin", "url", "http://192.168.1.1/admin", "http://192.168.1.1/admin", False),
    ("ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ", "url", "www.example.com", "ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ", True),
    ("dfl-shop点com/buy", "url", "dfl-shop.com/buy", "dfl-shop点com/buy", True),
]


@pytest.mark.parametrize(("text", "kind", "value", "span", "obfuscated"), CASES)
def test_each_type_and_dodge_with_its_original_span(text: str, kind: str, value: str, span: str,
                                                     obfuscated: bool) -> None:
    c = only(text)
    assert (c.type, c.value, shown(text, c), c.obfuscated) == (kind, value, span, obfuscated)


# (text, provider, value, code, span)
DRIVES = [
    ("链接: https://pan.baidu.com/s/1AbCdEfG?pwd=Xy12 提取码: Xy12", "baidu", "https://pan.baidu.com/s/1AbCdEfG?pwd=Xy12",
     "Xy12", "https://pan.baidu.com/s/1AbCdEfG?pwd=Xy12"),
    ("链接：https://pan.quark.cn/s/AbC123 提取码：QwE9", "quark", "https://pan.quark.cn/s/AbC123", "QwE9",
     "https://pan.quark.cn/s/AbC123"),
    ("https://www.aliyundrive.com/s/AbC123", "aliyun", "https://www.aliyundrive.com/s/AbC123", None,
     "https://www.aliyundrive.com/s/AbC123"),
    ("https://www.alipan.com/s/Zz9 密码 8k2m", "aliyun", "https://www.alipan.com/s/Zz9", "8k2m",
     "https://www.alipan.com/s/Zz9"),
    ("https://www.123pan.com/s/abc-DEF1", "123pan", "https://www.123pan.com/s/abc-DEF1", None,
     "https://www.123pan.com/s/abc-DEF1"),
    ("www.123684.com/s/Xyz1 提取码:1a2b", "123pan", "www.123684.com/s/Xyz1", "1a2b", "www.123684.com/s/Xyz1"),
    ("wwi.lanzoup.com/iAbc123 密码:3k9x", "lanzou", "wwi.lanzoup.com/iAbc123", "3k9x", "wwi.lanzoup.com/iAbc123"),
    ("https://dfl.lanzoux.com/b0AbC", "lanzou", "https://dfl.lanzoux.com/b0AbC", None, "https://dfl.lanzoux.com/b0AbC"),
    ("https://mypikpak.com/s/VOabc123", "pikpak", "https://mypikpak.com/s/VOabc123", None,
     "https://mypikpak.com/s/VOabc123"),
    ("https://mega.nz/#!AbC!xyz", "mega", "https://mega.nz/#!AbC!xyz", None, "https://mega.nz/#!AbC!xyz"),
    ("https://drive.google.com/file/d/1AbC/view", "google_drive", "https://drive.google.com/file/d/1AbC/view", None,
     "https://drive.google.com/file/d/1AbC/view"),
    ("https://1drv.ms/u/s!AbC", "onedrive", "https://1drv.ms/u/s!AbC", None, "https://1drv.ms/u/s!AbC"),
    ("https://xxx-my.sharepoint.com/:u:/g/personal/AbC", "onedrive", "https://xxx-my.sharepoint.com/:u:/g/personal/AbC",
     None, "https://xxx-my.sharepoint.com/:u:/g/personal/AbC"),
    ("https://share.weiyun.com/AbC12", "weiyun", "https://share.weiyun.com/AbC12", None,
     "https://share.weiyun.com/AbC12"),
    ("https://115.com/s/swAbC 访问码:k9k9", "115", "https://115.com/s/swAbC", "k9k9", "https://115.com/s/swAbC"),
    ("pan点baidu点com/s/1abc", "baidu", "pan.baidu.com/s/1abc", None, "pan点baidu点com/s/1abc"),
    ("pan.bai\u200bdu.com/s/1abc", "baidu", "pan.baidu.com/s/1abc", None, "pan.bai\u200bdu.com/s/1abc"),
    ("提取码: ab12 链接: https://pan.baidu.com/s/1xyz", "baidu", "https://pan.baidu.com/s/1xyz", "ab12",
     "https://pan.baidu.com/s/1xyz"),
    ("ｐａｎ．ｂａｉｄｕ．ｃｏｍ／ｓ／１ＡｂＣ", "baidu", "pan.baidu.com/s/1AbC", None,
     "ｐａｎ．ｂａｉｄｕ．ｃｏｍ／ｓ／１ＡｂＣ"),
]


@pytest.mark.parametrize(("text", "provider", "value", "code", "span"), DRIVES)
def test_cloud_drive_links_with_provider_and_code(text: str, provider: str, value: str, code: str | None,
                                                  span: str) -> None:
    c = only(text)
    assert (c.type, c.provider, c.value, c.code, shown(text, c)) == ("cloud_drive", provider, value, code, span)


def test_share_ids_and_codes_keep_their_case() -> None:
    c = only("https://pan.BAIDU.com/s/1AbCdEfG 提取码: Xy12")
    assert c.value == "https://pan.baidu.com/s/1AbCdEfG"  # host lower-cased, path as written
    assert c.code == "Xy12"


@pytest.mark.parametrize(("text", "provider", "code", "span"), [
    ("网盘 提取码 ab12", None, "ab12", "提取码 ab12"),
    ("度盘 密码 1234", "baidu", "1234", "密码 1234"),
    ("夸克 密码: Ab12", "quark", "Ab12", "密码: Ab12"),
    ("资源在百度云，提取码：7h7h", "baidu", "7h7h", "提取码：7h7h"),
])
def test_a_code_without_a_link_is_a_cloud_drive_contact(text: str, provider: str | None, code: str,
                                                        span: str) -> None:
    c = only(text)
    assert (c.type, c.value, c.provider, c.code, shown(text, c)) == ("cloud_drive", "", provider, code, span)


NEGATIVES = [
    "微信支付很方便", "微信群里说", "我在微信上看到", "微信 公众号 关注一下", "用微信扫码付款",
    "订单号 20240101123456", "订单号: 13800138000", "价格99元", "售价 13800 元", "2024年", "2024-01-01 12:30",
    "日期 2024.12.31", "版本 v1.2.3", "a.b", "data_src.mp4 和 model.dfm", "DFL2.0 教程 99.9元", "mega.nz",
    "pan.baidu.com", "密码 1234", "code: abcd", "wechat please", "wechat for details", "卫星 starlink",
    "威信 abc123", "faq: 123456", "qqq 12345", "qq 0123", "一二三四五六七八九十", "第一二三四五六七八九十一二三章",
    "坐飞机去北京 boeing737", "wxabcdef", "时间 10:30-12:00, 电话待定", "共 12345678901234567890 个",
    "abc..com/path", "x@y", "@handle",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_text_has_no_contacts(text: str) -> None:
    assert contacts(text) == []


def test_a_drive_link_is_not_also_a_url_and_its_digits_are_not_a_phone() -> None:
    found = contacts("https://pan.baidu.com/s/13800138000 提取码 ab12")
    assert [c.type for c in found] == ["cloud_drive"]


def test_a_wechat_phone_is_one_contact_not_also_a_phone() -> None:
    found = contacts("加V 13800138000 电话 13900139000")
    assert [(c.type, c.value) for c in found] == [("wechat", "13800138000"), ("phone", "13900139000")]


def test_an_email_is_not_also_a_qq_or_a_url() -> None:
    assert [c.type for c in contacts("qq: 12345678@qq.com")] == ["email"]


def test_one_value_named_by_two_prefixes_is_two_contacts() -> None:
    text = "QQ/微信同号 13800138000"
    found = contacts(text)
    assert [(c.type, c.value, shown(text, c)) for c in found] == [
        ("qq", "13800138000", text), ("wechat", "13800138000", "微信同号 13800138000")]


def test_longest_prefix_wins() -> None:
    c = only("qq群号: 123456")
    assert (c.type, shown("qq群号: 123456", c)) == ("qq_group", "qq群号: 123456")


def test_each_link_gets_its_own_code() -> None:
    text = "A: pan.baidu.com/s/1aaa 提取码 aaaa  B: pan.quark.cn/s/bbb 提取码 bbbb"
    found = contacts(text)
    assert [(c.provider, c.code) for c in found] == [("baidu", "aaaa"), ("quark", "bbbb")]


def test_a_listing_with_several_contacts_in_text_order() -> None:
    text = "出DFL丹 微信: dfl_2024 QQ 12345678 网盘 https://pan.baidu.com/s/1Ab?pwd=ab12 电话 13800138000"
    found = contacts(text)
    assert [c.type for c in found] == ["wechat", "qq", "cloud_drive", "phone"]
    assert [c.start for c in found] == sorted(c.start for c in found)


def test_to_dict_carries_provider_code_and_obfuscation() -> None:
    assert only("度盘 密码 1234").to_dict() == {"type": "cloud_drive", "value": "", "start": 3, "end": 10,
                                              "provider": "baidu", "code": "1234"}
    assert only("V信 dfl_seller").to_dict()["obfuscated"] is True


def test_max_contacts_keeps_the_first_in_text_order() -> None:
    text = " ".join(f"电话 1380013800{i}" for i in range(10))
    assert len(contacts(text)) == 10
    found = contacts(text, max_contacts=3)
    assert [c.value for c in found] == ["13800138000", "13800138001", "13800138002"]
    assert contacts(text, max_contacts=0) == []


# ------------------------------------------------------------------------------------------- the vocabulary file


def _data() -> dict:
    return json.loads(resources.files("jieyao.text").joinpath("data/contacts.json").read_text(encoding="utf-8"))


def test_every_wechat_qq_and_group_prefix_in_the_data_finds_its_contact() -> None:
    data = _data()
    for kind, value in (("wechat", "abc123"), ("qq", "12345678"), ("qq_group", "12345678")):
        for row in data[kind]:
            text = f"{row['p']}: {value}"
            found = [(c.type, c.value) for c in contacts(text)]
            assert (kind, value) in found, (text, found)
            assert next(c.obfuscated for c in contacts(text) if c.type == kind) == bool(row.get("dodge")), text


def test_every_telegram_prefix_in_the_data_finds_a_handle() -> None:
    for row in _data()["telegram"]:
        text = f"{row['p']}: @dfl_shop"
        assert [(c.type, c.value) for c in contacts(text)] == [("telegram", "@dfl_shop")], text


def test_every_drive_host_in_the_data_names_its_provider() -> None:
    for host, provider in _data()["drive_hosts"].items():
        c = only(f"https://{host}/s/AbC123")
        assert (c.type, c.provider) == ("cloud_drive", provider), host


# ------------------------------------------------------------------------------------------- pure helpers


def _groups(*parts: str) -> list[_Group]:
    out, pos = [], 0
    for p in parts:
        out.append(_Group(pos, pos + len(p), p, False))
        pos += len(p) + 1
    return out


def test_is_mobile() -> None:
    assert is_mobile("13800138000") and is_mobile("19912345678")
    assert not is_mobile("12800138000") and not is_mobile("1380013800") and not is_mobile("138001380001")


def test_phone_windows_take_whole_groups_and_country_codes() -> None:
    assert [w[2:] for w in phone_windows(_groups("138", "0013", "8000"))] == [("13800138000", False)]
    assert [w[2:] for w in phone_windows(_groups("86", "138", "0013", "8000"))] == [("13800138000", True)]
    assert [w[:2] for w in phone_windows(_groups("99", "13800138000"))] == [(1, 1)]
    assert list(phone_windows(_groups("20240101123456"))) == []
    assert list(phone_windows(_groups("1380", "01380001"))) == []  # 12 digits: not a number


# ------------------------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("text", [
    "1" * 100_000, "13" * 50_000, "1 3 " * 25_000, "v信" * 50_000, "微信 " * 33_000, "." * 100_000,
    "a." * 50_000, "a" * 100_000, "a@" * 50_000, "@" * 100_000, "-" * 100_000, "qq " * 33_000,
    "提取码 " * 25_000, "http://" * 14_000, "一" * 100_000, "a" * 70 + "." + "b" * 70 + "." * 100_000,
    ("a" * 63 + ".") * 1500, "\u200b" * 100_000, "\ud800" * 1000 + "qq 12345678",
])
def test_adversarial_text_is_bounded(text: str) -> None:
    norm = N.normalise(text)
    t0 = time.perf_counter()
    found = extract_contacts(norm)
    assert time.perf_counter() - t0 < 2.0
    assert len(found) <= 50
    assert all(0 <= c.start < c.end <= len(text) for c in found)


def test_lone_surrogates_do_not_hide_a_contact() -> None:
    text = "\ud800 qq 12345678"
    c = only(text)
    assert (c.type, shown(text, c)) == ("qq", "qq 12345678")


def test_timing_per_200_char_listing(capsys: pytest.CaptureFixture[str]) -> None:
    """Reports µs per 200-char listing with and without contacts (normalisation excluded); the bound is loose so
    only a pathological slowdown fails."""
    plain = ("出售各种模型素材，质量保证，价格实惠，欢迎咨询。支持定制，售后无忧，永久更新。" * 6)[:200]
    rich = ("出DFL丹 微信: dfl_2024 QQ 12345678 网盘 https://pan.baidu.com/s/1Ab?pwd=ab12 电话 13800138000 "
            + plain)[:200]
    figures = {}
    for name, text in (("without", plain), ("with", rich)):
        norm = N.normalise(text)
        extract_contacts(norm)
        n = 2000
        t0 = time.process_time()  # CPU time: other jobs on the machine do not count
        for _ in range(n):
            extract_contacts(norm)
        figures[name] = (time.process_time() - t0) / n * 1e6
    with capsys.disabled():
        print(f"\ncontacts: {figures['without']:.1f} µs/200-char listing without contacts, "
              f"{figures['with']:.1f} µs with 4 contacts")
    assert figures["without"] < 500 and figures["with"] < 2000
