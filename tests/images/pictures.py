"""Pictures for the listing-image tests, drawn here: Latin text with OpenCV's built-in Hershey fonts (no font
file needed, so CI needs no font package), QR codes with OpenCV's encoder, and the hostile files (bombs,
corrupt, animated, HTML) built byte by byte. CJK renderings are committed fixtures (tests/data/images)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

import pytest

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("rapidocr")
pytest.importorskip("onnxruntime")


def png_bytes(rgb: np.ndarray, fmt: str = "PNG", **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **save)
    return buf.getvalue()


def canvas(w: int = 800, h: int = 600, color: int = 255) -> np.ndarray:
    return np.full((h, w, 3), color, np.uint8)


def draw_lines(img: np.ndarray, lines: Sequence[str], *, x: int = 20, y: int = 80, scale: float = 1.3,
               step: int = 70) -> np.ndarray:
    for k, text in enumerate(lines):
        cv2.putText(img, text, (x, y + k * step), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    return img


def text_png(lines: Sequence[str], **kw: object) -> bytes:
    return png_bytes(draw_lines(canvas(), lines, **kw))  # type: ignore[arg-type]


def add_qr(img: np.ndarray, payload: str, x: int, y: int, module: int = 6) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(payload)
    code = cv2.resize(code, (code.shape[1] * module, code.shape[0] * module), interpolation=cv2.INTER_NEAREST)
    img[y:y + code.shape[0], x:x + code.shape[1]] = code[..., None]
    return img


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header declaring width×height, with a tiny (wrong) IDAT: a decoder that trusts the header
    would allocate 10 GB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def animated(fmt: str, frames: Sequence[np.ndarray], duration: int = 100) -> bytes:
    pics = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    pics[0].save(buf, fmt, save_all=True, append_images=pics[1:], duration=duration, loop=0)
    return buf.getvalue()
