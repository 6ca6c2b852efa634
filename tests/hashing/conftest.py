"""Media for the hashing tests, all made by code: scenes from `jieyao.hashing.synthetic`, PNG headers built
by hand (a 60,000 x 60,000 bomb is 70 bytes), and tiny videos written with PyAV into a tmp dir."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from jieyao.hashing.synthetic import frames

CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR for an RGB image of this size, a token IDAT, and IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def write_video(path: Path, *, seconds: float = 3, rate: int = 10, size: int = 64, codec: str = CODEC,
                fmt: str | None = None, seed: int = 1, cuts: int = 3) -> Path:
    """A small video of `cuts` generated scenes, slowly panned (see synthetic.frames)."""
    out = av.open(str(path), "w", format=fmt)
    stream = out.add_stream(codec, rate=rate)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    for img in frames(seed, round(seconds * rate), size, size, cuts=cuts):
        for packet in stream.encode(av.VideoFrame.from_image(img)):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Callable[..., Path]:
    """video('a.mp4', seconds=3, ...) writes a video under tmp_path and returns its path."""

    def make(name: str = "clip.mp4", **kw: object) -> Path:
        return write_video(tmp_path / name, **kw)  # type: ignore[arg-type]

    return make
