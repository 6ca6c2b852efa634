"""JPEG segment and PNG chunk readers: structure of real (synthetic) files, and every way a header can lie."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from jieyao.formats.jpeg import APP15, SOS, read_jpeg
from jieyao.formats.png import read_png
from jieyao.imitations import faces as fx


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _splice(jpeg: bytes, at_marker: int, insert: bytes) -> bytes:
    """`insert` placed right before the first segment with this marker."""
    for marker, start, _ in fx.jpeg_segments_end(jpeg):
        if marker == at_marker:
            return jpeg[:start] + insert + jpeg[start:]
    raise AssertionError(f"no marker {at_marker:#x}")


# --- the fixtures are real images ---------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(64, 64), (33, 17), (8, 8), (1, 1), (130, 40)])
def test_synthetic_jpeg_decodes_with_flat_blocks_of_varied_colour(width, height):
    data = fx.synthetic_jpeg(width, height, seed=5)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG" and image.size == (width, height) and image.mode == "RGB"
    pixels = np.asarray(image.convert("L"), dtype=np.int16)
    if width >= 16 and height >= 16:
        assert pixels.max() - pixels.min() > 40, "the image must not be one flat colour"
    for y in range(0, height - 7, 8):  # DC-only coding: each whole 8x8 block is a single colour
        for x in range(0, width - 7, 8):
            block = pixels[y : y + 8, x : x + 8]
            assert block.max() - block.min() <= 2, (x, y)


def test_synthetic_jpeg_seed_changes_pixels_not_layout():
    a, b = fx.synthetic_jpeg(64, 64, seed=1), fx.synthetic_jpeg(64, 64, seed=2)
    assert a != b
    assert read_jpeg(a).markers == read_jpeg(b).markers


def test_synthetic_png_decodes():
    image = Image.open(io.BytesIO(fx.synthetic_png(40, 24, seed=3, idat_chunks=3)))
    image.load()
    assert image.size == (40, 24) and image.mode == "RGB"
    assert len(np.unique(np.asarray(image).reshape(-1, 3), axis=0)) > 10


def test_ordinary_jpeg_carries_camera_metadata():
    image = Image.open(io.BytesIO(fx.ordinary_jpeg_with_exif()))
    image.load()
    assert image.getexif()[0x0131] == "jieyao synthetic"
    assert image.info["icc_profile"].startswith(b"\x00\x00\x00\x80jiey") and image.info["adobe"] == 100


# --- JPEG: well-formed ---------------------------------------------------------------------------------


def test_read_jpeg_walks_to_sos_and_reports_each_segment():
    data = fx.synthetic_jpeg(64, 64)
    s = read_jpeg(data)
    assert s.error is None and s.reached_sos and s.app15 == ()
    assert s.markers == (0xD8, 0xE0, 0xDB, 0xC0, 0xC4, SOS)
    for seg in s.segments[1:]:
        assert data[seg.offset] == 0xFF and data[seg.offset + 1] == seg.marker
        assert struct.unpack_from(">H", data, seg.offset + 2)[0] == seg.length + 2
    sos = s.segments[-1]
    assert s.end == sos.offset + 4 + sos.length
    assert not s.app15_after_appn


def test_app15_payloads_are_returned_and_placement_flagged():
    payload = b"\x80\x03}q\x00." + bytes(range(256)) * 4
    s = read_jpeg(fx.synthetic_jpeg(32, 32, app_segments=[(APP15, payload)]))
    assert s.app15 == (payload,) and s.app15_after_appn
    assert s.markers[:3] == (0xD8, 0xE0, APP15)


def test_app15_inserted_after_the_last_appn_like_dfl():
    s = read_jpeg(fx.embed_app15(fx.ordinary_jpeg_with_exif(), b"dfl"))
    assert s.markers[:6] == (0xD8, 0xE0, 0xE1, 0xE2, 0xEE, APP15)
    assert s.app15 == (b"dfl",) and s.app15_after_appn
    again = read_jpeg(fx.embed_app15(fx.embed_app15(fx.ordinary_jpeg_with_exif(), b"old"), b"new"))
    assert again.app15 == (b"new",), "DFL replaces an APP15, it does not add a second"


@pytest.mark.parametrize("segments", [
    [(APP15, b"x"), (0xE1, b"Exif\x00\x00")],  # an APPn after the APP15
    [(0xFE, b"comment"), (APP15, b"x")],  # APP15 after a COM, not after an APPn
])
def test_app15_elsewhere_is_not_dfl_placement(segments):
    s = read_jpeg(fx.synthetic_jpeg(16, 16, app_segments=segments))
    assert s.app15 == (b"x",) and not s.app15_after_appn


def test_fill_bytes_and_standalone_markers_are_stepped_over():
    data = _splice(fx.synthetic_jpeg(16, 16, app_segments=[(APP15, b"p")]), 0xDB, b"\xff\xff\xff\xff\xd0\xff\x01")
    s = read_jpeg(data)
    assert s.error is None and s.reached_sos and s.app15 == (b"p",)
    rst = next(seg for seg in s.segments if seg.marker == 0xD0)
    assert rst.length == 0 and data[rst.offset : rst.offset + 2] == b"\xff\xd0" and data[rst.offset - 1] == 0xFF
    assert 0x01 in s.markers and 0xDB in s.markers


def test_input_kinds_agree():
    data = fx.synthetic_jpeg(24, 24, app_segments=[(APP15, b"abc")])
    assert read_jpeg(data) == read_jpeg(bytearray(data)) == read_jpeg(memoryview(data))


def test_stops_at_sos_without_touching_entropy_data():
    data = fx.synthetic_jpeg(16, 16) + bytes(64 << 20)  # 64 MiB after the scan header
    started = time.perf_counter()
    s = read_jpeg(memoryview(data))
    assert time.perf_counter() - started < 0.05
    assert s.reached_sos and s.end < 1000


# --- JPEG: bad input ----------------------------------------------------------------------------------


def test_missing_soi():
    assert read_jpeg(b"\x89PNG\r\n").error == "malformed: no SOI marker at offset 0"
    assert read_jpeg(b"").error is not None and not read_jpeg(b"").reached_sos


@pytest.mark.parametrize("cut", [3, 4, 5, 21, 22])
def test_truncated_segments(cut):
    data = fx.synthetic_jpeg(16, 16)[:cut]
    s = read_jpeg(data)
    assert not s.reached_sos and s.error is not None and s.error.startswith("truncated"), s.error


def test_segment_length_past_the_end_copies_nothing():
    data = bytearray(fx.synthetic_jpeg(16, 16, app_segments=[(APP15, b"\x80\x03" + bytes(100))]))
    at = data.index(b"\xff\xef")
    struct.pack_into(">H", data, at + 2, 0xFFFF)
    s = read_jpeg(bytes(data))
    assert s.error is not None and s.error.startswith("truncated: segment 0xef")
    assert s.app15 == () and not s.reached_sos


@pytest.mark.parametrize("length", [0, 1])
def test_segment_length_below_two(length):
    data = bytearray(fx.synthetic_jpeg(16, 16))
    struct.pack_into(">H", data, 4, length)  # APP0's length field
    assert read_jpeg(bytes(data)).error == f"malformed: segment 0xe0 at 2 has length {length} < 2"


@pytest.mark.parametrize(("insert", "expected"), [
    (b"\xff\xd9", "malformed: EOI"),
    (b"\x00\x00", "malformed: expected a marker"),
    (b"\xff\x00", "malformed: marker 0x00"),
    (b"\xff\xd8", "malformed: marker 0xd8"),
    (b"\xff" * 10_000, "truncated: only fill bytes"),
])
def test_bad_markers(insert, expected):
    data = fx.synthetic_jpeg(16, 16)
    s = read_jpeg(data[:20] + insert) if expected.startswith("truncated") else read_jpeg(_splice(data, 0xDB, insert))
    assert s.error is not None and s.error.startswith(expected), s.error
    assert not s.reached_sos


def test_segment_limit():
    comments = [(0xFE, b"c")] * 50
    s = read_jpeg(fx.synthetic_jpeg(16, 16, app_segments=comments), max_segments=20)
    assert s.error == "limit: more than 20 segments before SOS" and not s.reached_sos


# --- PNG: well-formed ---------------------------------------------------------------------------------


def test_read_png_chunks():
    data = fx.synthetic_png(20, 10, idat_chunks=3)
    s = read_png(data)
    assert s.complete and s.error is None and s.problems == ()
    assert (s.width, s.height) == (20, 10)
    types = [c.type for c in s.chunks]
    assert types[0] == "IHDR" and types[-1] == "IEND" and types.count("IDAT") == 3
    assert all(c.crc_ok is None for c in s.chunks), "image chunks are not CRC-checked"
    for c in s.chunks:
        assert struct.unpack_from(">I4s", data, c.offset) == (c.length, c.type.encode())


def test_text_chunks_are_decoded():
    s = read_png(fx.png_with_text())
    assert s.complete and s.problems == ()
    got = {(t.chunk, t.keyword): t.text for t in s.texts}
    assert got == {("tEXt", "Software"): "jieyao synthetic image writer",
                   ("iTXt", "Comment"): "a gradient with a rectangle — no faces here",
                   ("zTXt", "Description"): "synthetic test image " * 8}
    assert all(t.crc_ok and not t.truncated for t in s.texts)
    assert all(c.crc_ok is True for c in s.chunks if c.type in ("tEXt", "iTXt", "zTXt"))


def test_compressed_itxt_and_translated_keyword():
    chunk = fx.itxt_chunk("Title", "标题 " * 50, compressed=True, language="zh", translated="标题")
    s = read_png(fx.synthetic_png(4, 4, before_idat=[chunk]))
    assert s.text("Title") is not None and s.text("Title").text == "标题 " * 50


def test_kept_chunks():
    s = read_png(fx.synthetic_png(4, 4, before_iend=[("fcWp", b"payload"), ("abCd", b"other")]), keep=("fcWp", "abCd"))
    assert s.kept == {"fcWp": b"payload", "abCd": b"other"}
    assert s.chunk("fcWp") is not None and s.chunk("fcWp").crc_ok is True
    assert read_png(fx.synthetic_png(4, 4, before_iend=[("abCd", b"x")])).kept == {}


# --- PNG: bad input -----------------------------------------------------------------------------------


def _chunk_offset(data: bytes, ctype: bytes) -> int:
    return data.index(ctype) - 4


def test_crc_mismatch_is_reported_not_fatal():
    data = bytearray(fx.png_with_text())
    at = _chunk_offset(data, b"tEXt")
    data[at + 9] ^= 0x20  # flip a letter of the keyword's text part
    s = read_png(bytes(data))
    assert s.complete and s.error is None
    text = next(t for t in s.texts if t.chunk == "tEXt")
    assert text.crc_ok is False
    assert any(p.startswith(f"crc: chunk tEXt at {at}") for p in s.problems)


def test_corrupt_image_data_is_not_checked():
    data = bytearray(fx.synthetic_png(8, 8))
    data[_chunk_offset(data, b"IDAT") + 9] ^= 0xFF
    s = read_png(bytes(data))
    assert s.complete and s.problems == ()


@pytest.mark.parametrize(("length", "expected"), [
    (0x80000000, "malformed: chunk at 33 claims 2147483648 bytes (over 2^31-1)"),
    (0xFFFFFFFF, "malformed: chunk at 33 claims 4294967295 bytes (over 2^31-1)"),
    (0x7FFFFFFF, "truncated: chunk IDAT at 33 claims 2147483647 bytes"),
])
def test_huge_chunk_length_is_refused_without_reading(length, expected):
    data = bytearray(fx.synthetic_png(8, 8))
    struct.pack_into(">I", data, 33, length)
    started = time.perf_counter()
    s = read_png(bytes(data))
    assert time.perf_counter() - started < 0.05
    assert s.error is not None and s.error.startswith(expected) and not s.complete


@pytest.mark.parametrize("make", [
    lambda bomb: fx.ztxt_chunk("Comment", bomb),
    lambda bomb: fx.itxt_chunk("Comment", bomb.decode(), compressed=True),
])
def test_compressed_text_bomb_stops_at_the_budget(make):
    bomb = b"A" * (64 << 20)  # 64 MiB of text, ~64 KiB deflated
    data = fx.synthetic_png(4, 4, before_idat=[make(bomb)])
    started = time.perf_counter()
    s = read_png(data, max_text_bytes=1 << 20)
    assert time.perf_counter() - started < 1.0
    (text,) = s.texts
    assert len(text.text) == 1 << 20 and text.truncated
    assert any(p.startswith("limit:") and "text budget" in p for p in s.problems)
    assert s.complete


def test_text_budget_is_shared_by_all_text_chunks():
    chunks = [fx.text_chunk(f"k{i}", "x" * 400) for i in range(5)]
    s = read_png(fx.synthetic_png(4, 4, before_idat=chunks), max_text_bytes=1000)
    assert [len(t.text) for t in s.texts] == [400, 400, 200, 0, 0]
    assert [t.truncated for t in s.texts] == [False, False, True, True, True]


def test_broken_text_chunks_are_problems():
    chunks = [("zTXt", b"Bad\x00\x00not zlib"), ("zTXt", b"Meth\x00\x07x"), ("iTXt", b"NoLang\x00\x00\x00en"),
              ("tEXt", b"no keyword separator at all, far too long for a keyword" * 3),
              ("iTXt", b"Utf\x00\x00\x00\x00\x00\xff\xfe")]
    s = read_png(fx.synthetic_png(4, 4, before_idat=chunks))
    assert s.complete and s.error is None
    joined = " | ".join(s.problems)
    for expected in ("zTXt 'Bad'", "'Meth' at", "lacks its language", "has no keyword", "'Utf' at"):
        assert expected in joined, (expected, joined)


def test_png_truncated_and_malformed():
    data = fx.synthetic_png(8, 8)
    assert read_png(data[:7]).error == "malformed: no PNG signature"
    cut = read_png(data[:-3])
    assert not cut.complete and cut.error is not None and cut.error.startswith("truncated: chunk IEND")
    assert read_png(data[:-12]).error == f"truncated: file ends at {len(data) - 12} before IEND"
    bad = bytearray(data)
    bad[12:16] = b"I\x00DR"
    assert read_png(bytes(bad)).error == "malformed: chunk at 8 has type b'I\\x00DR'"


def test_png_limits():
    chunks = [fx.text_chunk("k", "v")] * 30
    s = read_png(fx.synthetic_png(4, 4, before_idat=chunks), max_chunks=10)
    assert s.error == "limit: more than 10 chunks" and not s.complete
    big = read_png(fx.synthetic_png(4, 4, before_iend=[("fcWp", bytes(5000))]), max_keep_bytes=1000)
    assert big.kept == {} and any("over max_keep_bytes" in p for p in big.problems)


def test_png_input_kinds_agree():
    data = fx.png_with_text()
    assert read_png(data) == read_png(bytearray(data)) == read_png(memoryview(data))


def test_ztxt_truncated_stream():
    raw = zlib.compress(b"hello world " * 100)
    s = read_png(fx.synthetic_png(4, 4, before_idat=[("zTXt", b"Comment\x00\x00" + raw[: len(raw) // 2])]))
    (text,) = s.texts
    assert text.truncated and text.text and "hello world".startswith(text.text[:11])
    assert any("compressed stream ends early" in p for p in s.problems)
