"""PDQ of images: the hex convention, dihedral variants, modes, orientation, and every bad image the issue
names (a non-image, a 1x1 image, a 60,000 x 60,000 PNG header, an animated GIF, truncated files)."""

from __future__ import annotations

import io
import time

import numpy as np
import pdqhash
import pytest
from PIL import Image

from jieyao.hashing.images import (
    DIHEDRAL_VARIANTS,
    PDQ_SIDE,
    ImageHashError,
    bits_to_hex,
    hash_image,
    pdq_array,
)
from jieyao.hashing.signals import pdq_distance
from jieyao.hashing.synthetic import encode, scene

from .conftest import png_header_only


def pattern() -> np.ndarray:
    """160x128: red ramps left to right, green top to bottom, blue a 16 px checkerboard (numpy only)."""
    ys, xs = np.mgrid[0:128, 0:160]
    return np.stack([xs * 255 // 159, ys * 255 // 127, ((xs // 16 + ys // 16) % 2) * 255], axis=2).astype(np.uint8)


PATTERN_PDQ = "bcdb0355f1690355d9650355abf903555809fcaaca92fcaa2a63fcaa08ccfcaa"


def pytx_hex(vector: np.ndarray) -> str:
    """python-threatexchange's conversion (pdq_hasher.py): the bit vector read as one binary number."""
    return f'{int("".join(str(int(b)) for b in vector), 2):064x}'


def test_hex_convention_matches_python_threatexchange_and_is_pinned():
    vector, _quality = pdqhash.compute(pattern())
    assert bits_to_hex(vector) == pytx_hex(vector)
    assert pdq_array(pattern())[0] == (PATTERN_PDQ, 100, "original")
    # and through the whole decode path (a lossless PNG, smaller than PDQ_SIDE: no reduction)
    assert hash_image(encode(Image.fromarray(pattern()), "PNG")).pdq.value == PATTERN_PDQ


def test_bit_order_first_bit_is_most_significant():
    bits = np.zeros(256, dtype=np.uint8)
    bits[0] = 1
    bits[255] = 1
    assert bits_to_hex(bits) == "8" + "0" * 62 + "1"
    with pytest.raises(ValueError):
        bits_to_hex(np.zeros(255, dtype=np.uint8))


def test_dihedral_gives_eight_named_variants_in_pdqhash_order():
    img = np.asarray(scene(3, 200, 150))
    hashes = pdq_array(img, dihedral=True)
    assert [h.variant for h in hashes] == list(DIHEDRAL_VARIANTS) and len(hashes) == 8
    assert hashes[0].value == pdq_array(img)[0].value
    transformed = {"rot90ccw": np.rot90(img, 1), "rot180": np.rot90(img, 2), "rot90cw": np.rot90(img, 3),
                   "flip_tb": img[::-1], "mirror": img[:, ::-1], "transpose": img.transpose(1, 0, 2),
                   "antitranspose": np.rot90(img, 2).transpose(1, 0, 2)}
    direct = {name: pdq_array(np.ascontiguousarray(t))[0].value for name, t in transformed.items()}
    for h in hashes[1:]:
        # the named transform is the nearest one; the shortcut is approximate (measured up to 48 bits)
        nearest = min(direct, key=lambda name: pdq_distance(h.value, direct[name]))
        assert nearest == h.variant and pdq_distance(h.value, direct[h.variant]) <= 56, h.variant
        assert pdq_distance(h.value, hashes[0].value) > 31, h.variant  # each variant is a different hash


def test_hash_image_dihedral_and_file_object():
    data = encode(scene(4, 300, 200))
    r = hash_image(io.BytesIO(data), dihedral=True)
    assert len(r.hashes) == 8 and r.format == "JPEG" and (r.width, r.height) == (300, 200)
    assert r.pdq.quality >= 50


def test_one_by_one_image_hashes_with_quality_zero():
    r = hash_image(encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"))
    assert r.pdq.quality < 50 and len(r.pdq.value) == 64
    assert any("quality" in n for n in r.notes)


def test_60000_square_png_header_is_refused_before_decoding():
    bomb = png_header_only(60_000, 60_000)
    assert len(bomb) < 200
    t0 = time.perf_counter()
    with pytest.raises(ImageHashError) as err:
        hash_image(bomb)
    assert err.value.kind == "limit" and "pixel limit" in str(err.value)
    assert time.perf_counter() - t0 < 1


def test_our_pixel_cap_is_checked_from_the_header():
    with pytest.raises(ImageHashError) as err:
        hash_image(png_header_only(12_000, 9_000))  # 108 MP: under Pillow's hard limit, over ours
    assert err.value.kind == "limit" and "100 MP" in str(err.value)
    with pytest.raises(ImageHashError) as err:
        hash_image(encode(scene(1, 100), "PNG"), max_pixels=5_000)
    assert err.value.kind == "limit"


def test_header_under_the_cap_with_no_pixel_data_is_a_decode_error():
    with pytest.raises(ImageHashError) as err:
        hash_image(png_header_only(3_000, 2_000))
    assert err.value.kind == "decode"


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"PK\x03\x04" + bytes(100), b"\x89PNG\r\n\x1a\n",
                                  b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"])
def test_non_images_are_a_clear_error(data: bytes):
    with pytest.raises(ImageHashError) as err:
        hash_image(data)
    assert err.value.kind in ("format", "decode")


def test_truncated_jpeg_and_png_are_decode_errors():
    for fmt in ("JPEG", "PNG"):
        data = encode(scene(5, 400, 300), fmt)
        with pytest.raises(ImageHashError) as err:
            hash_image(data[: len(data) // 3])
        assert err.value.kind == "decode", fmt


def test_animated_gif_hashes_the_first_frame_and_reports_the_count():
    frames = [scene(k, 96) for k in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    r = hash_image(buf.getvalue())
    assert r.frames == 4 and any("4 frames" in n for n in r.notes)
    first = hash_image(encode(frames[0], "GIF")).pdq.value
    assert pdq_distance(r.pdq.value, first) <= 8


def test_animated_webp_and_apng_report_frames():
    frames = [scene(k, 64) for k in range(3)]
    for fmt in ("WEBP", "PNG"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100)
        assert hash_image(buf.getvalue()).frames == 3, fmt


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I;16", "I", "F"])
def test_modes_are_converted_and_hash_close_to_rgb(mode: str):
    img = scene(6, 200, 160)
    reference = hash_image(encode(img, "PNG")).pdq.value
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(img.convert("L")).astype(np.uint16) * 257)
    elif mode == "F":
        converted = Image.fromarray(np.asarray(img.convert("L")).astype(np.float32) / 255.0)
    else:
        converted = img.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    r = hash_image(encode(converted, fmt))
    limit = 60 if mode == "1" else 12  # bilevel dithering loses most of the picture
    assert pdq_distance(r.pdq.value, reference) <= limit, mode


def test_exif_orientation_is_applied():
    upright = scene(7, 300, 200)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the camera stored it sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    r = hash_image(buf.getvalue())
    assert any("orientation 6" in n for n in r.notes)
    assert r.hashed_size == (300, 200)
    assert pdq_distance(r.pdq.value, hash_image(encode(upright, "JPEG", quality=95)).pdq.value) <= 8


def test_large_image_is_reduced_before_pdq_and_small_one_is_not_enlarged():
    big = hash_image(encode(scene(8, 600, 400).resize((2400, 1600))))
    assert max(big.hashed_size) <= PDQ_SIDE and (big.width, big.height) == (2400, 1600)
    small = hash_image(encode(scene(8, 120, 90), "PNG"))
    assert small.hashed_size == (120, 90)


def test_pdq_array_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        pdq_array(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        pdq_array(np.zeros((10,), dtype=np.uint8))
    gray = pdq_array(np.asarray(scene(2, 64).convert("L")))
    assert len(gray[0].value) == 64
