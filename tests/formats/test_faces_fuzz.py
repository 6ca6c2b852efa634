"""Fuzzing the face readers: random bytes and mutated fixtures never make a reader raise or run long.
Run longer with JIEYAO_FUZZ_EXAMPLES=5000."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hypothesis import given
from hypothesis import strategies as st

from jieyao.formats.faces import (
    AlignedFace,
    FacesetPak,
    FsaSummary,
    dfl_face,
    faces_in_jpeg,
    faces_in_png,
    faceswap_face,
    read_faceset_pak,
    read_fsa,
)
from jieyao.formats.jpeg import JpegSummary, read_jpeg
from jieyao.formats.png import PngSummary, read_png
from jieyao.imitations import faces as fx
from jieyao.intake.blob import BytesBlob
from jieyao.intake.sniff import sniff

JPEGS = [fx.dfl_aligned_jpeg(size=16), fx.ordinary_jpeg_with_exif(16, 16), fx.dfl_aligned_jpeg(protocol=4, size=16)]
PNGS = [fx.dfl_png(size=8), fx.faceswap_png(size=8), fx.png_with_text(8, 8)]
PAK = fx.faceset_pak(3, size=16, persons=["a", "b"])
FSA_PICKLE = zlib.decompress(fx.faceswap_fsa(3))
FACESWAP_TEXT = str(fx.faceswap_meta(identity_size=4))
DFL_PAYLOAD = fx.dfl_face_pickle()


@contextmanager
def fast(limit: float = 1.0) -> Iterator[None]:
    started = time.perf_counter()
    yield
    assert time.perf_counter() - started < limit


@st.composite
def mutated(draw: st.DrawFn, base: bytes, keep: int = 0) -> bytes:
    """`base` with a few overwrites, insertions, deletions and maybe a cut; the first `keep` bytes stay."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        if len(data) <= keep + 1:
            break
        at = draw(st.integers(keep, len(data) - 1))
        kind = draw(st.sampled_from(["set", "insert", "delete", "u16", "u32"]))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "u16" and at + 2 <= len(data):
            struct.pack_into(">H", data, at, draw(st.sampled_from([0, 1, 2, 0xFFFF, draw(st.integers(0, 0xFFFF))])))
        elif kind == "u32" and at + 4 <= len(data):
            struct.pack_into(">I", data, at, draw(st.sampled_from([0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])))
    if draw(st.booleans()):
        data = data[: draw(st.integers(keep, max(keep, len(data))))]
    return bytes(data)


def _jpeg(data: bytes) -> None:
    with fast():
        s = read_jpeg(data)
        face = faces_in_jpeg(s)
    assert isinstance(s, JpegSummary) and (s.reached_sos or s.error is not None)
    assert face is None or isinstance(face, AlignedFace)


def _png(data: bytes) -> None:
    with fast():
        s = read_png(data)
        face = faces_in_png(s)
    assert isinstance(s, PngSummary) and (s.complete or s.error is not None)
    assert face is None or isinstance(face, AlignedFace)


def _pak(data: bytes) -> None:
    with fast(2.0):
        pak = read_faceset_pak(BytesBlob(data))
    assert pak is None or isinstance(pak, FacesetPak)
    if pak is not None and pak.offsets_ok:
        assert pak.samples is not None and pak.data_start is not None


def _fsa(data: bytes) -> None:
    with fast(2.0):
        fsa = read_fsa(BytesBlob(data))
    assert fsa is None or isinstance(fsa, FsaSummary)


def _everything(data: bytes) -> None:
    for reader in (_jpeg, _png, _pak, _fsa):
        reader(data)
    with fast():
        face = dfl_face(data, "jpeg-app15")
        text_face = faceswap_face(data.decode("latin-1"))
        fmt = sniff(data[:65536], len(data))
    assert face is None or isinstance(face, AlignedFace)
    assert text_face is None or isinstance(text_face, AlignedFace)
    assert isinstance(fmt, str)


@given(st.binary(max_size=2048))
def test_random_bytes_into_every_reader(data):
    _everything(data)


@given(st.binary(max_size=512))
def test_random_bytes_behind_each_format_header(data):
    _jpeg(b"\xff\xd8" + data)
    _png(b"\x89PNG\r\n\x1a\n" + data)
    _pak(b"\x01" + bytes(7) + struct.pack("<Q", len(data)) + b"\x80\x04\x95" + data)
    _fsa(zlib.compress(b"\x80\x04" + data))


@given(st.sampled_from(range(len(JPEGS))).flatmap(lambda i: mutated(JPEGS[i], keep=2)))
def test_mutated_jpegs(data):
    _jpeg(data)


@given(st.sampled_from(range(len(PNGS))).flatmap(lambda i: mutated(PNGS[i], keep=8)))
def test_mutated_pngs(data):
    _png(data)


@given(mutated(PAK, keep=19))
def test_mutated_faceset_pak(data):
    _pak(data)


@given(mutated(FSA_PICKLE))
def test_mutated_fsa_pickles(data):
    _fsa(zlib.compress(data))


@given(mutated(fx.faceswap_fsa(2), keep=2))
def test_mutated_fsa_streams(data):
    _fsa(data)


@given(mutated(DFL_PAYLOAD))
def test_mutated_dfl_payloads(data):
    with fast():
        face = dfl_face(data, "jpeg-app15")
    assert face is None or (isinstance(face, AlignedFace) and face.tool == "DeepFaceLab")


@given(mutated(FACESWAP_TEXT.encode()))
def test_mutated_faceswap_text(data):
    reader: Callable[[str], AlignedFace | None] = faceswap_face
    with fast():
        face = reader(data.decode("utf-8", "replace"))
    assert face is None or (isinstance(face, AlignedFace) and face.tool == "faceswap")
