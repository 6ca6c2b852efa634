"""The listing-image generator (bench/listing_images/make_images.py) and the fixtures it committed.

Why: the OCR evaluation and the image tests trust the generator's labels (what text and QR payload each
picture holds) and its reproducibility (same seed, same bytes). These tests hold it to both, and check that
the committed fixture set is complete, small and still what its manifest says."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")
PIL_Image = pytest.importorskip("PIL.Image")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "listing_images" / "make_images.py"
FIXTURES = REPO / "tests" / "data" / "images"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("jieyao_bench_make_images", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


mi = _load()


@pytest.fixture(scope="module")
def font() -> Path:
    try:
        return Path(mi.find_font(None))
    except mi.FontMissing as exc:
        pytest.skip(f"no CJK font installed: {exc}")


LISTINGS = [
    {"id": "v1", "text": "出售AI金丹，DFL训练好的底丹，需要的加微信 hl2024dfl 详聊。", "label": "violating",
     "labels": ["model-sale", "contact-solicitation"], "tags": ["plain"]},
    {"id": "v2", "text": "DFL整合包 网盘链接 pan.baidu.com/s/1aBcDeF 提取码 k9m2 拍下秒发", "label": "violating",
     "labels": ["software-sale"], "tags": ["plain"]},
    {"id": "v3", "text": "出\u200b售\u200b换\u200b脸\u200b模\u200b型🔥🔥 \u202e包合整LFD\u202c", "label": "violating",
     "labels": ["model-sale"], "tags": ["zero_width", "emoji"]},
    {"id": "b1", "text": "二手显卡 RTX 3060 12G，九成新，无矿，同城自提，价格 1500 元。" * 4, "label": "benign",
     "labels": [], "tags": ["hard_negative"]},
    {"id": "b2", "text": "同仁堂 安宫牛黄丸 金丹 正品药房", "label": "benign", "labels": [], "tags": []},
    {"id": "b3/../x", "text": "Selling a used road bike, recently serviced, pickup only.", "label": "benign",
     "labels": [], "tags": []},
]
KEYS = {"id", "images", "text", "truth", "ocr_truth", "qr_truth", "label", "labels", "tags", "set", "render"}
RENDER_KEYS = {"size", "angle", "background", "contrast", "noise", "jpeg", "font_index", "outline", "qr", "split",
               "pages", "shrunk", "cut", "dropped"}


def _write_listings(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _norm(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _decode_qr(path: Path) -> str:
    img = np.asarray(PIL_Image.open(path).convert("RGB"))[:, :, ::-1].copy()
    text, _points, _ = cv2.QRCodeDetector().detectAndDecode(img)
    return str(text)


# --------------------------------------------------------------------------------------------- font finding


def test_missing_font_path_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(mi.FontMissing, match="fonts-wqy-zenhei"):
        mi.find_font(tmp_path / "nope.ttc")


def test_a_file_that_is_not_a_font_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"<html>not a font</html>" * 10)
    with pytest.raises(mi.FontMissing, match="cannot draw Chinese"):
        mi.find_font(junk)


def test_a_latin_only_font_is_refused() -> None:
    latin = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not latin.is_file():
        pytest.skip("DejaVu Sans is not installed")
    with pytest.raises(mi.FontMissing, match="cannot draw Chinese"):
        mi.find_font(latin)


def test_cli_exits_2_with_a_clear_message_without_a_font(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert mi.main(["--font", str(tmp_path / "none.ttf"), "--out", str(tmp_path / "o")]) == 2
    assert "no CJK font" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------- building blocks


def test_invisible_and_glyphless_characters_are_not_counted_as_drawn(font: Path) -> None:
    f = mi._font(str(font), 20)
    text, dropped = mi.drawable("出\u200b售\u202e型模🔥\ufe0f  脸换\u202c", f)
    assert text == "出售换脸 模型"  # the RLO run shows reversed, as on a screen
    assert dropped == 5


def test_visual_order_reverses_rlo_runs_only() -> None:
    assert mi.visual_order("新到 \u202e程教送 包合整LFD\u202c 私信") == "新到 DFL整合包 送教程 私信"
    assert mi.visual_order("\u202e发秒盘网 元99") == "99元 网盘秒发"
    assert mi.visual_order("no override \u202c here") == "no override \u202c here"


def test_split_cuts_between_phrases_never_inside_a_term() -> None:
    import random

    rng = random.Random(3)
    text = "出售换脸模型，明星的，效果稳定，需要的私聊。"
    cut = mi.split_text(text, rng)
    assert cut is not None and text[cut - 1] == "，"
    assert mi.split_text("换/脸/软/件 出售 电脑一键操作", rng) is None  # symbols and spaces are not phrase ends
    assert mi.split_text("新到，\u202e程教送，包合整LFD，售出\u202c", rng) in (None, 3)


def test_wrap_keeps_every_character_and_fits_the_width(font: Path) -> None:
    f = mi._font(str(font), 18)
    text = "出售AI金丹 DFL整合包 https://pan.baidu.com/s/1AbCdEfGhIjKlMnOpQrStUvWxYz?pwd=k9m2 " * 3
    lines = mi.wrap(text, f, 300)
    assert len(lines) > 3
    assert all(f.getlength(line) <= 300 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_qr_image_decodes_back_to_its_payload(tmp_path: Path) -> None:
    payload = "https://pan.baidu.com/s/1AbCdEf?pwd=k9m2"
    path = tmp_path / "q.png"
    mi.qr_image(payload, module_px=5).save(path)
    assert _decode_qr(path) == payload


def test_qr_part_takes_the_contact_and_keeps_the_extraction_code() -> None:
    import random

    text = "DFL整合包 网盘链接 pan.baidu.com/s/1aBcDeF 提取码 k9m2 拍下秒发"
    part = mi.qr_part(text, random.Random(1))
    assert part is not None and part.kind == "cloud_drive"
    assert part.payload.startswith("https://pan.baidu.com/s/1aBcDeF") and "pwd=k9m2" in part.payload
    assert "pan.baidu.com" in text[part.start:part.end]
    assert mi.qr_part("二手显卡，同城自提", random.Random(1)) is None


def test_bad_listing_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        mi.load_listings([("bad", bad)])
    bad.write_text('{"id": 3, "text": "no string id"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="string id"):
        mi.load_listings([("bad", bad)])


def test_limit_spreads_over_the_files(tmp_path: Path) -> None:
    a = _write_listings(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": "x"} for i in range(10)])
    b = _write_listings(tmp_path / "b.jsonl", [{"id": f"b{i}", "text": "x"} for i in range(10)])
    rows = mi.load_listings([("a", a), ("b", b)], limit=4)
    assert [r["id"] for r in rows] == ["a0", "a5", "b0", "b5"]
    assert {r["_set"] for r in rows} == {"a", "b"}


# ---------------------------------------------------------------------------------------- the evaluation set


@pytest.fixture(scope="module")
def generated(font: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    src = _write_listings(tmp_path_factory.mktemp("src") / "mini.jsonl", LISTINGS)
    out1, out2 = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    for out in (out1, out2):
        assert mi.main(["--input", str(src), "--out", str(out), "--seed", "7", "--font", str(font)]) == 0
    labels = [json.loads(line) for line in (out1 / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    return out1, out2, labels


def test_same_seed_gives_the_same_bytes(generated: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    out1, out2, _ = generated
    one, two = _tree(out1), _tree(out2)
    assert one.keys() == two.keys()
    assert [k for k in one if one[k] != two[k]] == []


def test_another_seed_gives_other_renders(font: Path, tmp_path: Path,
                                          generated: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, _, labels = generated
    rows = mi.load_listings([("mini", _write_listings(tmp_path / "m.jsonl", LISTINGS))])
    other = [mi.make_listing(r, 8, font)[0]["render"] for r in rows]
    assert other != [lab["render"] for lab in labels]


def test_labels_file_is_well_formed(generated: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    out, _, labels = generated
    assert [lab["id"] for lab in labels] == [r["id"] for r in LISTINGS]
    for lab, row in zip(labels, LISTINGS, strict=True):
        assert set(lab) == KEYS
        assert set(lab["render"]) == RENDER_KEYS
        assert lab["truth"] == row["text"] and lab["label"] == row["label"] and lab["labels"] == row["labels"]
        assert 1 <= len(lab["images"]) <= mi.MAX_PAGES + 1
        assert len(lab["images"]) == len(lab["ocr_truth"]) == len(lab["qr_truth"])
        assert mi.MIN_SIZE <= lab["render"]["size"] <= mi.MAX_SIZE
        for rel, drawn in zip(lab["images"], lab["ocr_truth"], strict=True):
            path = out / rel
            assert path.resolve().is_relative_to(out.resolve()) and path.is_file()
            with PIL_Image.open(path) as im:
                assert im.size == (mi.WIDTH, mi.HEIGHT)
            assert not any(unicodedata.category(c) in ("Cf", "Cc") for c in drawn.replace("\n", ""))
            # what is drawn comes from the listing: the title part never repeats in the picture
            assert set(_norm(drawn)) <= set(_norm(lab["truth"]))
        if lab["text"]:
            assert lab["render"]["split"] and _norm(lab["text"]) in _norm(lab["truth"])


def test_contacts_go_into_qr_codes_that_decode(generated: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    out, _, labels = generated
    with_qr = [(lab, rel, q) for lab in labels for rel, q in zip(lab["images"], lab["qr_truth"], strict=True)
               if q is not None]
    by_id = {lab["id"]: lab for lab in labels}
    for lab in labels:
        assert (lab["render"]["qr"] != "none") == any(q is not None for q in lab["qr_truth"])
    for lab in (by_id["b1"], by_id["b2"], by_id["b3/../x"]):
        assert lab["render"]["qr"] == "none"
    for _lab, rel, payload in with_qr:
        assert _decode_qr(out / rel) == payload


def test_invisible_evasions_are_not_in_the_ocr_truth(generated: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, _, labels = generated
    v3 = next(lab for lab in labels if lab["id"] == "v3")
    drawn = "".join(v3["ocr_truth"])  # a title kept as listing text keeps its evasions: it is text
    assert drawn and "\u200b" not in drawn and "\u202e" not in drawn and "🔥" not in drawn
    assert v3["render"]["dropped"] >= 5


def test_a_huge_listing_is_cut_and_stays_within_the_page_bound(font: Path) -> None:
    row = {"id": "huge", "text": "出售换脸模型，" * 20_000, "label": "violating", "labels": [], "tags": []}
    label, drawn = mi.make_listing(row, 1, font)
    assert len(label["truth"]) == mi.MAX_LISTING_CHARS
    assert len(drawn.images) <= mi.MAX_PAGES + 1
    assert label["render"]["pages"] <= mi.MAX_PAGES


def _render(**kw: Any) -> Any:
    base = {"size": 40, "angle": 0.0, "background": "white", "contrast": "normal", "noise": 0.0, "jpeg": None,
            "font_index": 0, "outline": 0, "qr": "none", "split": False}
    return mi.Render(**{**base, **kw})


def test_text_too_long_for_the_pages_shrinks_then_is_cut(font: Path) -> None:
    import random

    text = "出售换脸模型，" * 100  # 700 chars: more than 3 pages at 40 px, fits at a smaller size
    r = _render()
    drawn = mi.draw_listing(text, r, font, random.Random(1), np.random.default_rng(1), None)
    assert r.shrunk and not r.cut and mi.MIN_SIZE < r.size < 40 and r.pages <= mi.MAX_PAGES
    assert _norm("".join(drawn.ocr_truth)) == _norm(text)
    r = _render()
    drawn = mi.draw_listing("出售换脸模型，" * 1800, r, font, random.Random(1), np.random.default_rng(1), None)
    assert r.cut and r.size == mi.MIN_SIZE and len(drawn.images) == mi.MAX_PAGES
    assert 0 < len(_norm("".join(drawn.ocr_truth))) < 12_600


# ------------------------------------------------------------------------------------------ committed fixtures


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
    return data


def test_every_fixture_in_the_manifest_exists_and_matches() -> None:
    manifest = _manifest()
    assert manifest["schema"] == mi.SCHEMA_FIXTURES
    entries = manifest["fixtures"]
    names = [e["file"] for e in entries]
    assert len(names) == len(set(names)) and len(names) <= mi.FIXTURE_MAX_FILES
    on_disk = {p.name for p in FIXTURES.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif", ".webp")}
    assert on_disk == set(names)
    total = 0
    for e in entries:
        data = (FIXTURES / e["file"]).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == e["sha256"], e["file"]
        with PIL_Image.open(io.BytesIO(data)) as im:
            assert im.size == (e["width"], e["height"])
            assert getattr(im, "n_frames", 1) == e["frames"]
        assert e["decision"] in ("block", "review", "pass")
        assert all(isinstance(x, str) and x for x in e["lines"] + e["must_read"] + e["qr"])
        lines = _norm("".join(e["lines"]))
        assert all(_norm(m) in lines for m in e["must_read"]), e["file"]
    assert total <= mi.FIXTURE_BUDGET_BYTES


def test_the_list_of_fixtures_covers_the_cases_the_tests_need() -> None:
    entries = {e["file"]: e for e in _manifest()["fixtures"]}
    assert entries["cover_violating.png"]["lines"] == ["AI金丹出售", "DFL整合包 加V:abc123", "￥99"]
    assert entries["animated.gif"]["frames"] > 1 and entries["animated.gif"]["decision"] == "block"
    assert entries["photo_textfree.jpg"]["lines"] == [] and entries["photo_textfree.jpg"]["decision"] == "pass"
    assert any(e["decision"] == "pass" and e["lines"] for e in entries.values())  # a benign listing with text
    assert entries["banner_composite.jpg"]["jpeg"] == 60
    assert "pwd=" in entries["qr_baidu.png"]["qr"][0] and "wechat" in entries["qr_wechat.jpg"]["qr"][0]


def test_fixture_qr_codes_decode_to_the_manifest_payload() -> None:
    for e in _manifest()["fixtures"]:
        if e["qr"]:
            assert _decode_qr(FIXTURES / e["file"]) == e["qr"][0], e["file"]


def test_manifest_decisions_agree_with_the_text_engine_on_the_drawn_text() -> None:
    from jieyao.text import Moderator

    moderator = Moderator()
    for e in _manifest()["fixtures"]:
        res = moderator.moderate("\n".join(e["lines"] + e["qr"]))
        assert res.decision.value == e["decision"], e["file"]
        found = {(c.type, c.value) for c in res.contacts}
        for c in e["contacts"]:
            assert (c["type"], c["value"]) in found, (e["file"], c)


def test_fixtures_regenerate_bit_for_bit(font: Path, tmp_path: Path) -> None:
    manifest = _manifest()
    if mi.font_info(font)["sha256"] != manifest["font"]["sha256"]:
        pytest.skip("another font than the one the fixtures were made with")
    if PIL_Image.__version__ != manifest["pillow"] or cv2.__version__ != manifest["opencv"]:
        pytest.skip("another Pillow or OpenCV than the fixtures were made with")
    again = mi.make_fixtures(tmp_path, font)
    assert again == manifest
    for e in manifest["fixtures"]:
        assert (tmp_path / e["file"]).read_bytes() == (FIXTURES / e["file"]).read_bytes(), e["file"]
