"""Listings with pictures: text and pictures are one listing, every image hit and contact says where it was
read, and a picture that could not be read sends the listing to review without losing the rest."""

from __future__ import annotations

import json

from jieyao.images import ImageLimits, ImageReader, moderate_with_images
from jieyao.model import Decision
from tests.images.pictures import add_qr, bomb_png, canvas, png_bytes, text_png

SALE = ["DeepFaceLab pack for sale"]


def test_title_and_picture_are_one_listing(moderator, reader) -> None:
    title = {"title": "AI金丹 明星底丹"}
    alone = moderator.moderate_listing(title)
    both = moderate_with_images(moderator, title, [text_png(["WeChat: abc123"])], id="L1", reader=reader)
    assert alone.decision is Decision.REVIEW
    assert both.decision is Decision.BLOCK and "model-sale" in both.labels and both.id == "L1"
    (contact,) = both.contacts
    assert (contact.type, contact.value) == ("wechat", "abc123")
    assert contact.source is not None and contact.source["image"] == 0 and contact.source["kind"] == "ocr"
    assert [h.source for h in both.hits if h.canonical == "AI金丹"] == [None]  # the title's own hit
    assert both.extra["fields"]["image[0]"]["start"] > both.extra["fields"]["title"]["end"]


def test_image_only_listing_hits_carry_image_line_and_box(moderator, reader) -> None:
    res = moderate_with_images(moderator, {}, [text_png(["nothing here", *SALE], y=80, step=120)], reader=reader)
    assert res.decision is Decision.BLOCK and "software-sale" in res.labels
    tool = next(h for h in res.hits if h.canonical == "DeepFaceLab")
    src = tool.source
    assert src is not None and (src["image"], src["kind"], src["line"]) == (0, "ocr", 1)
    (x0, y0), _, (x1, y1), _ = src["box"]
    # the second line is drawn from x=20, baseline y=200; "DeepFaceLab" is its first 11 of 25 characters
    assert 0 <= x0 < 40 and 150 < y0 < 200 < y1 < 230 and x1 < 400
    assert "text_in_image" in res.evasion
    doc = res.to_dict()
    assert doc["hits"][0]["source"]["box"] == src["box"]
    assert doc["images"][0]["lines"][1]["text"] == SALE[0]
    json.dumps(doc)  # the whole result is JSON


def test_contact_in_qr_code(moderator, reader) -> None:
    img = add_qr(draw_sale(), "https://pan.baidu.com/s/1AbCdEfGh?pwd=x7k2", 450, 250)
    res = moderate_with_images(moderator, {}, [png_bytes(img)], reader=reader)
    drive = next(c for c in res.contacts if c.type == "cloud_drive")
    assert (drive.provider, drive.code) == ("baidu", "x7k2")
    assert drive.source is not None and drive.source["kind"] == "qr"
    assert "contact_in_qr" in res.evasion and res.decision is Decision.BLOCK


def draw_sale():
    from tests.images.pictures import draw_lines

    return draw_lines(canvas(), SALE)


def test_unreadable_picture_sends_a_clean_listing_to_review(moderator, reader, tmp_path) -> None:
    html = tmp_path / "cover.jpg"
    html.write_text("<!doctype html><p>hi</p>")
    res = moderate_with_images(moderator, {"title": "二手显卡 3060"},
                               [bomb_png(), str(html), str(tmp_path / "missing.png"), text_png(["hello"])],
                               reader=reader)
    assert res.decision is Decision.REVIEW and res.labels == ("limit",) and res.error is None
    rule = res.rules[-1]
    assert rule.id == "image.limit" and "image 0" in rule.why and "HTML" in rule.why and "missing.png" in rule.why
    images = res.extra["images"]
    assert [bool(im.get("error")) for im in images] == [False, True, True, False]
    assert images[0]["limits"][0].startswith("image.pixels")
    assert images[3]["lines"][0]["text"] == "hello"  # the good picture after the bad ones was still read


def test_violation_is_not_downgraded_by_a_bad_picture(moderator, reader) -> None:
    res = moderate_with_images(moderator, {}, [text_png(SALE), b"\x00garbage"], reader=reader)
    assert res.decision is Decision.BLOCK and "limit" not in res.labels
    assert res.rules[-1].id == "image.limit"


def test_pictures_beyond_the_limit_are_counted_not_read(moderator, reader) -> None:
    few = ImageReader(ImageLimits(max_images=2), ocr=reader.ocr)
    blank = png_bytes(canvas(100, 60))
    res = moderate_with_images(moderator, {"text": "hello"}, [blank] * 5, reader=few)
    assert len(res.extra["images"]) == 2 and res.extra["images_not_read"] == 3
    assert res.decision is Decision.REVIEW and "3 image(s) beyond the 2-image limit" in res.rules[-1].why


def test_benign_picture_passes_and_matches_text_only_result(moderator, reader) -> None:
    text = "二手显卡 3060 12G 成色很好"
    res = moderate_with_images(moderator, {"text": text}, [text_png(["RTX 3060 12G", "good condition"])],
                               reader=reader)
    plain = moderator.moderate(text)
    assert res.decision is plain.decision is Decision.PASS
    assert [h.to_dict() for h in res.hits if h.source is None] == [h.to_dict() for h in plain.hits]
    assert [h.canonical for h in res.hits if h.source is not None] == ["rtx"]  # an allow-context hit, from the picture


def test_no_term_spans_text_and_picture(moderator, reader) -> None:
    # "Deep" at the end of the text and "FaceLab" in the picture must not make "DeepFaceLab"
    res = moderate_with_images(moderator, {"text": "Deep"}, [text_png(["FaceLab"])], reader=reader)
    assert not any(h.canonical == "DeepFaceLab" for h in res.hits)


def test_python_api_takes_images(tmp_path) -> None:
    import jieyao

    path = tmp_path / "cover.png"
    path.write_bytes(text_png(SALE))
    res = jieyao.moderate("", images=[str(path)])
    assert res.decision is Decision.BLOCK and res.extra["images"][0]["name"] == str(path)


def test_non_regular_image_path_is_refused(moderator, reader, tmp_path) -> None:
    import os

    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    res = moderate_with_images(moderator, {}, [str(pipe)], reader=reader)  # must not block on the FIFO
    assert "not a regular file" in res.extra["images"][0]["error"]


def test_a_callers_field_may_not_take_a_pictures_name(moderator, reader) -> None:
    import pytest

    with pytest.raises(ValueError, match="reserved"):
        moderate_with_images(moderator, {"image[0]": "AI换脸 加V 123456"}, [text_png(["hello"])], reader=reader)
