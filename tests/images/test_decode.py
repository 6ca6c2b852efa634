"""Decoding under limits: every hostile or broken picture is a clear error or a bounded limit, never a crash,
and never a large allocation."""

from __future__ import annotations

import resource

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jieyao.images import ImageError, ImageLimits, decode_image
from tests.images.pictures import animated, bomb_png, canvas, np, png_bytes


def test_plain_png_gives_one_rgb_frame() -> None:
    img = canvas(320, 200)
    img[10:20, 10:20] = (255, 0, 0)
    out = decode_image(png_bytes(img))
    assert (out.format, out.width, out.height, out.n_frames) == ("PNG", 320, 200, 1)
    assert len(out.frames) == 1 and out.frames[0].shape == (200, 320, 3)
    assert tuple(out.frames[0][15, 15]) == (255, 0, 0)  # RGB order kept
    assert out.limits == [] and out.scale == 1.0


def test_decompression_bomb_is_a_limit_without_decoding() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    huge = decode_image(bomb_png(60_000, 60_000))  # over Pillow's own refusal threshold
    over = decode_image(bomb_png(8_000, 8_000))  # under Pillow's, over ours
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert huge.frames == [] and len(huge.limits) == 1 and huge.limits[0].startswith("image.pixels")
    assert "3600000000" in huge.limits[0]
    assert over.frames == [] and (over.width, over.height) == (8_000, 8_000)
    assert over.limits == ["image.pixels: declared 8000×8000 = 64,000,000 pixels, over the 40,000,000-pixel "
                           "limit; not decoded"]
    assert after - before < 100_000  # KiB: nothing near the 10 GB the header asks for was allocated


def test_pixel_limit_is_configurable() -> None:
    out = decode_image(png_bytes(canvas(100, 100)), ImageLimits(max_pixels=9_999))
    assert out.frames == [] and out.limits[0].startswith("image.pixels")


def test_oversized_file_is_not_decoded() -> None:
    out = decode_image(png_bytes(canvas(50, 50)), ImageLimits(max_bytes=100))
    assert out.frames == [] and out.limits[0].startswith("image.bytes")


@pytest.mark.parametrize(("data", "why"), [
    (b"<!DOCTYPE html><html><body><img src=x></body></html>", "HTML"),
    (b"  <html><script>alert(1)</script>", "HTML"),
    (b'{"not": "an image"}', "JSON"),
    (b"PK\x03\x04" + b"\0" * 40, "ZIP"),
    (b"\x00\x01garbage" * 20, "not an image"),
    (b"", "empty"),
])
def test_what_is_not_an_image_says_what_it_is(data: bytes, why: str) -> None:
    with pytest.raises(ImageError, match=why):
        decode_image(data)


def test_tiff_is_refused_as_a_format_not_read() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "TIFF")
    with pytest.raises(ImageError, match="format read here"):
        decode_image(buf.getvalue())


def test_truncated_and_corrupt_images_are_errors() -> None:
    good = png_bytes((np.random.default_rng(1).integers(0, 255, (300, 300, 3))).astype(np.uint8))
    with pytest.raises(ImageError, match=r"corrupt|truncated"):
        decode_image(good[: len(good) // 2])
    jpeg = png_bytes(canvas(300, 300, 128), "JPEG")
    with pytest.raises(ImageError):
        decode_image(jpeg[:200])
    damaged = bytearray(good)
    damaged[60:400] = b"\xff" * 340
    with pytest.raises(ImageError):
        decode_image(bytes(damaged))


def test_one_by_one_image_decodes() -> None:
    out = decode_image(png_bytes(canvas(1, 1)))
    assert out.frames[0].shape == (1, 1, 3)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_a_bounded_spread_of_frames(fmt: str) -> None:
    frames = [canvas(64, 48, 10 * k) for k in range(20)]
    out = decode_image(animated(fmt, frames), ImageLimits(max_frames=3))
    assert out.n_frames == 20 and out.frame_indexes == [0, 10, 19]
    assert len(out.frames) == 3
    assert any(m.startswith("image.frames: 3 of 20") for m in out.limits)
    # frames really are different frames (grey levels 0, 100, 190), not the first one thrice
    levels = [int(f[0, 0, 0]) for f in out.frames]
    assert levels[0] < levels[1] < levels[2]


def test_large_picture_is_scaled_down_and_boxes_scale_back() -> None:
    out = decode_image(png_bytes(canvas(4000, 1000)), ImageLimits(max_side=2000))
    assert out.frames[0].shape[:2] == (500, 2000) and out.scale == pytest.approx(2.0)


def test_large_jpeg_uses_reduced_scale_decoding() -> None:
    out = decode_image(png_bytes(canvas(4096, 3072, 200), "JPEG"), ImageLimits(max_side=1024))
    assert max(out.frames[0].shape[:2]) <= 1024 and out.scale == pytest.approx(4.0, rel=0.01)
    assert (out.width, out.height) == (4096, 3072)


def test_transparent_text_layer_is_composited_on_white() -> None:
    from PIL import Image

    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black: shows as white on a page
    rgba[10:20, 10:20] = (0, 0, 0, 255)
    out = decode_image(png_bytes(rgba))
    assert tuple(out.frames[0][0, 0]) == (255, 255, 255) and tuple(out.frames[0][15, 15]) == (0, 0, 0)
    assert Image  # the module is the one Pillow exposes


_PNG = png_bytes(canvas(40, 30))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_images_only_ever_raise_image_error(data: st.DataObject) -> None:
    base = bytearray(data.draw(st.sampled_from([_PNG, png_bytes(canvas(40, 30), "JPEG"),
                                                  animated("GIF", [canvas(20, 20), canvas(20, 20, 0)])])))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(base) - 1))
        base[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(base)))
    try:
        out = decode_image(bytes(base[:cut]), ImageLimits(max_pixels=1_000_000))
    except ImageError:
        return
    for f in out.frames:
        assert f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8


def test_exif_rotated_jpeg_is_turned_upright_and_sized_as_shown() -> None:
    import io

    from PIL import Image

    img = canvas(400, 100)
    img[:, :50] = 0  # a black band on the left of the stored picture
    pic = Image.fromarray(img)
    exif = pic.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show"
    buf = io.BytesIO()
    pic.save(buf, "JPEG", exif=exif, quality=95)
    out = decode_image(buf.getvalue(), ImageLimits(max_side=200))
    assert (out.width, out.height) == (100, 400)  # as shown
    assert out.frames[0].shape[:2] == (200, 50) and out.scale == pytest.approx(2.0)
    assert out.frames[0][5, 25].max() < 60  # the band is now at the top


def test_a_gif_frame_larger_than_its_screen_is_checked_too() -> None:
    """The pixel limit is checked on the declared screen and again on each frame: a 100×100 animation whose
    second frame declares 8,000×8,000 must not be decoded (Pillow grows the canvas on seek)."""
    import io
    import struct

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (100, 100), 200).convert("P").save(buf, "GIF")
    big = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHH", 0, 0, 8000, 8000) + b"\x00"
           + b"\x02\x02\x44\x01\x00" + b";")
    out = decode_image(buf.getvalue()[:-1] + big, ImageLimits(max_frames=2))
    assert out.n_frames == 2 and [f.shape for f in out.frames] == [(100, 100, 3)]
    assert out.limits == ["image.pixels: frame 1 declares 8000×8000 = 64,000,000 pixels, over the "
                          "40,000,000-pixel limit; it and later frames not read"]
    assert out.scales == [1.0]
