"""OCR and QR reading of single pictures: what is read, where it is (boxes in the original image's pixels),
what is folded, and the bounds on lines, frames and time."""

from __future__ import annotations

import pytest

from jieyao.images import ImageLimits, ImageReader, fold_ocr_text
from tests.images.pictures import add_qr, animated, bomb_png, canvas, draw_lines, np, png_bytes, text_png


@pytest.mark.parametrize(("raw", "folded"), [
    ("Al金丹出售", "AI金丹出售"),      # "AI" read as "Al"
    ("A丨换脸", "AI换脸"),             # ... or as "A丨" in a vertical column
    ("加ＶＸ：ａｂｃ１２３", "加VX:abc123"),  # rapidocr's own full-width forms
    ("Apple iPhone l", "Apple iPhone l"),  # lowercase words keep their l
    ("DFL整合包", "DFL整合包"),
    ("丨", "丨"),                      # a lone stroke is not a letter
    ("￥99", "¥99"),
])
def test_ocr_folds_are_one_char_for_one_char(raw: str, folded: str) -> None:
    out = fold_ocr_text(raw)
    assert out == folded and len(out) == len(raw)


def test_reads_text_lines_with_boxes(reader: ImageReader) -> None:
    got = reader.read(text_png(["DeepFaceLab pack for sale", "only 99 yuan"]), "cover.png")
    assert got.error is None and (got.width, got.height, got.format) == (800, 600, "PNG")
    texts = [line.text for line in got.lines if line.kind == "ocr"]
    assert texts == ["DeepFaceLab pack for sale", "only 99 yuan"]
    first = got.lines[0]
    xs, ys = [p[0] for p in first.box], [p[1] for p in first.box]
    assert 0 <= min(xs) < 40 and 40 < min(ys) < 80 < max(ys) < 130  # the first line is drawn at y=80
    assert first.score > 0.8 and got.ocr_seconds > 0 and got.sha256 and got.size > 0


def test_boxes_are_in_original_pixels_when_the_picture_was_scaled(reader: ImageReader) -> None:
    big = draw_lines(canvas(3200, 600), ["WeChat abc123"], x=1600, y=300, scale=4.0)
    got = ImageReader(ImageLimits(max_side=1600), ocr=reader.ocr).read(png_bytes(big), "wide.png")
    line = next(x for x in got.lines if x.kind == "ocr")
    assert "abc123" in line.text
    assert min(p[0] for p in line.box) > 1500  # not ~800, the scaled frame's coordinate


def test_qr_payload_is_a_line_with_its_box(reader: ImageReader) -> None:
    img = add_qr(canvas(), "https://pan.baidu.com/s/1AbCdEfGh?pwd=x7k2", 450, 250)
    got = reader.read(png_bytes(img), "qr.png")
    qrs = [x for x in got.lines if x.kind == "qr"]
    assert [q.text for q in qrs] == ["https://pan.baidu.com/s/1AbCdEfGh?pwd=x7k2"]
    xs = [p[0] for p in qrs[0].box]
    assert 440 <= min(xs) <= 470 and got.qr_seconds > 0
    assert [x for x in got.lines if x.kind == "ocr"] == []  # no stray "characters" read out of the modules


def test_ocr_text_beside_a_qr_code_is_kept(reader: ImageReader) -> None:
    img = add_qr(draw_lines(canvas(), ["scan to add me"]), "https://u.wechat.com/EAbc123", 450, 250)
    got = reader.read(png_bytes(img), "qr.png")
    assert [(x.kind, x.text) for x in got.lines] == [("ocr", "scan to add me"), ("qr", "https://u.wechat.com/EAbc123")]


def test_text_free_photo_and_tiny_images_give_no_lines(reader: ImageReader) -> None:
    rng = np.random.default_rng(7)
    photo = (rng.normal(128, 40, (600, 800, 3)).clip(0, 255)).astype(np.uint8)
    _yy, xx = np.mgrid[0:600, 0:800]
    photo[..., 0] = ((xx / 800) * 255).astype(np.uint8)  # a gradient, as in a photo's sky
    assert reader.read(png_bytes(photo), "photo.png").lines == []
    one = reader.read(png_bytes(canvas(1, 1)), "1x1.png")
    assert one.lines == [] and one.error is None and "too small" in one.notes[0]


def test_bomb_and_corrupt_files_are_reported_not_raised(reader: ImageReader) -> None:
    bomb = reader.read(bomb_png(), "bomb.png")
    assert bomb.lines == [] and bomb.limits and bomb.limits[0].startswith("image.pixels")
    html = reader.read("<html><body>AI金丹</body></html>".encode(), "cover.jpg")
    assert html.error is not None and "HTML" in html.error and html.lines == []
    assert reader.read("https://example.com/x.png", "url").error  # type: ignore[arg-type]


def test_animated_gif_is_read_from_its_first_frame(reader: ImageReader) -> None:
    first = draw_lines(canvas(640, 240), ["DeepFaceLab for sale"])
    got = reader.read(animated("GIF", [first] + [canvas(640, 240, 150 + 10 * k) for k in range(5)]), "anim.gif")
    assert got.n_frames == 6 and got.frames == 3
    assert any("DeepFaceLab" in x.text for x in got.lines) and got.lines[0].frame == 0
    assert any(m.startswith("image.frames") for m in got.limits)


def test_time_budget_stops_reading_and_says_so(reader: ImageReader) -> None:
    slow = ImageReader(ImageLimits(max_seconds=0.0), ocr=reader.ocr)
    got = slow.read(text_png(["DeepFaceLab for sale"]), "x.png")
    assert got.lines == [] and got.limits and got.limits[0].startswith("image.time")


def test_line_limit_keeps_the_first_lines(reader: ImageReader) -> None:
    capped = ImageReader(ImageLimits(max_lines=1), ocr=reader.ocr)
    got = capped.read(text_png(["first line here", "second line here", "third line here"]), "x.png")
    assert [x.text for x in got.lines] == ["first line here"]
    assert got.limits == ["image.lines: more than 1 lines; the rest were not read"]


def test_thin_strips_are_padded_before_ocr(reader: ImageReader) -> None:
    """rapidocr scales a frame until its short side is ~736 px: unpadded, a 2000×8 strip costs gigabytes in
    one native call. Padded to 4:1 it is an ordinary picture, and boxes keep their coordinates."""
    from jieyao.images.reader import MAX_ASPECT, _squarer

    strip = np.full((8, 2000, 3), 0, np.uint8)
    padded = _squarer(strip)
    assert padded.shape == (500, 2000, 3) and max(padded.shape[:2]) <= MAX_ASPECT * min(padded.shape[:2])
    assert (padded[:8] == 0).all() and (padded[8:] == 255).all()
    assert _squarer(canvas(800, 600)).shape == (600, 800, 3)  # ordinary pictures are left alone
    rng = np.random.default_rng(3)
    tall = rng.integers(0, 255, (2000, 8, 3)).astype(np.uint8)
    got = reader.read(png_bytes(tall), "strip.png")
    assert got.error is None and got.frames == 1
