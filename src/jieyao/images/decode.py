"""Decoding listing images under limits, before any OCR: a hostile picture must cost a bounded amount of memory
and time, and a file that only claims to be a picture (an HTML page, a truncated upload) must be a clear error,
never a crash of the batch.

The declared size is read from the header and checked before a single pixel is decoded, so a 60,000 × 60,000
"decompression bomb" costs a header read. JPEGs are decoded at a reduced scale when they are larger than OCR
needs (libjpeg's DCT scaling), and animations give a bounded number of frames spread over the animation."""

from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
"""What listing images come as. TIFF and the rest are refused: more parser surface, no marketplace uses them."""


class ImageError(ValueError):
    """The bytes are not a readable image (not an image at all, a format we do not read, corrupt, truncated)."""


@dataclass(frozen=True)
class ImageLimits:
    """Per-image bounds. Exceeding one is a `limit` (reported, the listing goes to review), never a crash."""

    max_bytes: int = 32 * 1024 * 1024
    """A larger file is not decoded."""
    max_pixels: int = 40_000_000
    """Declared width × height above this is a decompression bomb (or a poster nobody needs read)."""
    max_side: int = 2000
    """Frames are scaled down to fit this box before OCR (text legible at this size stays legible)."""
    min_side: int = 8
    """A frame smaller than this on a side holds no legible text: it is decoded but not read."""
    max_frames: int = 3
    """Frames read from an animation (the first, then spread evenly over the rest)."""
    max_scan_frames: int = 2000
    """An animation declaring more frames than this is read only from its first `max_scan_frames`."""
    max_images: int = 16
    """Images read per listing; the rest are reported, not read."""
    max_seconds: float = 10.0
    """Budget per image, checked between frames and between OCR and QR decoding: a native OCR call is not
    interrupted mid-way, so one frame may overrun it by that call's time (bounded by `max_side`)."""
    max_lines: int = 200
    """OCR lines and QR payloads kept per image."""
    max_qr: int = 8
    """QR codes decoded per frame."""


@dataclass
class DecodedImage:
    """The frames to read, as RGB arrays, with what it took to get them."""

    format: str
    width: int
    height: int
    frames: list[np.ndarray] = field(default_factory=list)
    """RGB uint8 arrays, each at most `max_side` on a side."""
    frame_indexes: list[int] = field(default_factory=list)
    n_frames: int = 1
    scale: float = 1.0
    """Original pixels per frame pixel (≥ 1) of the first frame: boxes found on it are multiplied by it."""
    scales: list[float] = field(default_factory=list)
    """The same, per frame (a GIF frame may be larger than the animation's screen)."""
    limits: list[str] = field(default_factory=list)
    """Limits hit while decoding (e.g. frames beyond `max_frames` not read), in words."""
    seconds: float = 0.0


_HTML_MARKS = (b"<!doctype", b"<html", b"<?xml", b"<svg", b"<head", b"<body", b"<script")


def _what_it_is(data: bytes) -> str:
    head = data[:256].lstrip().lower()
    if any(head.startswith(m) for m in _HTML_MARKS):
        return "not an image: the bytes are an HTML/XML document"
    if head[:1] in (b"{", b"["):
        return "not an image: the bytes look like JSON"
    if data[:4] == b"PK\x03\x04":
        return "not an image: the bytes are a ZIP archive"
    return "not an image in a format read here (PNG, JPEG, GIF, WebP, BMP)"


def _frame_picks(n_frames: int, limits: ImageLimits) -> list[int]:
    n = min(n_frames, limits.max_scan_frames)
    want = max(1, limits.max_frames)
    if n <= want:
        return list(range(n))
    step = (n - 1) / (want - 1) if want > 1 else 0
    return sorted({round(k * step) for k in range(want)})


def _to_rgb(frame: PILImage.Image, limits: ImageLimits) -> tuple[np.ndarray, float]:
    import numpy as np
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(frame) or frame
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # text drawn on a transparent layer must stay visible: composite on white, as a page would show it
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(base, rgba)
    img = img.convert("RGB")
    w, h = img.size
    scale = 1.0
    if max(w, h) > limits.max_side:
        scale = max(w, h) / limits.max_side
        img = img.resize((max(1, round(w / scale)), max(1, round(h / scale))), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8)), scale


def _turned(im: PILImage.Image) -> bool:
    """Shown turned by 90° (EXIF orientation 5-8). A damaged EXIF block counts as upright, as exif_transpose
    takes it."""
    try:
        return im.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception:
        return False


def decode_image(data: bytes, limits: ImageLimits | None = None) -> DecodedImage:
    """Bytes → up to `max_frames` RGB frames. Raises ImageError for what is not a readable image; a bomb or an
    oversized file gives a DecodedImage with no frames and the limit in `limits`."""
    from PIL import Image, UnidentifiedImageError

    limits = limits or ImageLimits()
    t0 = time.perf_counter()
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"image data must be bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError("empty file")
    if len(data) > limits.max_bytes:
        out = DecodedImage("unknown", 0, 0)
        out.limits.append(f"image.bytes: {len(data)} bytes, over the {limits.max_bytes}-byte limit; not decoded")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning: the size is checked below
        try:
            im = Image.open(io.BytesIO(bytes(data)), formats=FORMATS)
        except UnidentifiedImageError:
            raise ImageError(_what_it_is(bytes(data[:256]))) from None
        except Image.DecompressionBombError as exc:  # Pillow's own check, at twice its MAX_IMAGE_PIXELS
            out = DecodedImage("unknown", 0, 0)
            out.limits.append(f"image.pixels: declared size refused before decoding ({exc})")
            return out
        except Exception as exc:  # Pillow's plugins raise anything on hostile bytes (IndexError, struct.error ...)
            raise ImageError(f"corrupt image header: {type(exc).__name__}: {exc}") from None
        w, h = im.size
        out = DecodedImage(str(im.format), w, h)
        if w <= 0 or h <= 0:
            raise ImageError(f"image declares an empty size {w}×{h}")
        if w * h > limits.max_pixels:
            out.limits.append(f"image.pixels: declared {w}×{h} = {w * h:,} pixels, over the "
                              f"{limits.max_pixels:,}-pixel limit; not decoded")
            out.seconds = time.perf_counter() - t0
            return out
        try:
            n_frames = int(getattr(im, "n_frames", 1) or 1)
        except Exception as exc:
            raise ImageError(f"corrupt animation: {type(exc).__name__}: {exc}") from None
        out.n_frames = n_frames
        picks = _frame_picks(n_frames, limits)
        if n_frames > len(picks):
            out.limits.append(f"image.frames: {len(picks)} of {n_frames} frames read")
        if out.format == "JPEG" and max(w, h) > limits.max_side:
            im.draft("RGB", (limits.max_side, limits.max_side))  # decode at 1/2, 1/4 or 1/8 scale
        for k in picks:
            if time.perf_counter() - t0 > limits.max_seconds:
                out.limits.append(f"image.time: decoding stopped after {limits.max_seconds:g} s")
                break
            try:
                if n_frames > 1:
                    im.seek(k)
                    fw, fh = im.size  # a GIF frame can be declared larger than the screen checked above
                    if fw * fh > limits.max_pixels:
                        out.limits.append(f"image.pixels: frame {k} declares {fw}×{fh} = {fw * fh:,} pixels, over "
                                          f"the {limits.max_pixels:,}-pixel limit; it and later frames not read")
                        break
                im.load()
                rgb, draft_scale = _to_rgb(im, limits)
            except Image.DecompressionBombError as exc:
                out.limits.append(f"image.pixels: {exc}")
                break
            except Exception as exc:
                if not out.frames:
                    raise ImageError(f"corrupt image: {type(exc).__name__}: {exc}") from None
                out.limits.append(f"image.frames: frame {k} unreadable ({exc}); earlier frames read")
                break
            out.frames.append(rgb)
            out.frame_indexes.append(k)
            # boxes are reported in the original image's pixels, whatever scale the frame was decoded at
            # (long side to long side, so a frame turned upright by its EXIF orientation scales the same way)
            fw, fh = (w, h) if n_frames == 1 else im.size
            scale = max(max(fw, fh) / max(rgb.shape[0], rgb.shape[1]), 1.0) if rgb.size else draft_scale
            out.scales.append(scale)
            out.scale = out.scales[0]
        if out.frames and _turned(im):  # read once a frame has loaded (a PNG's EXIF may follow its pixels)
            out.width, out.height = h, w
    out.seconds = time.perf_counter() - t0
    return out
