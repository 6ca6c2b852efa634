"""PDQ of an image: decode safely with Pillow, orient, downscale, hash with `pdqhash` (Meta's C++ PDQ).

Hostile input is the normal case here, so the pixel count in the header is checked before any pixel is
decoded, Pillow is only allowed the formats platforms receive (never EPS, which would run Ghostscript), and
decoding is capped at `max_pixels`. A large image is reduced before hashing: PDQ itself filters every image
down to 64x64, so hashing a 640 px copy costs a few bits against hashing the full image (measured on 20
generated 2-12 MP JPEGs: mean 3.9, max 10 of 256 bits; at 512 px 6.6 / 14, at 768 px 5.3 / 12, in the same
time) and makes a 12 MP JPEG 8-12x cheaper to hash (bench/hashing_throughput.py), the JPEG decoder's own DCT
scaling doing most of the reduction.

Hex convention: bit 0 of `pdqhash`'s vector is the most significant bit of the first hex digit, which is
how python-threatexchange (`pdq_hasher.py`) writes it, so a value means the same here as in HMA. (pytx
hashes the full-size image and ignores EXIF orientation, so for the same file its value may differ from
ours by the few bits above, or be the rotated hash for a sideways-stored photo: `--dihedral` mostly covers that.)
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np
import pdqhash  # type: ignore[import-untyped]
from PIL import ExifTags, Image, UnidentifiedImageError

MAX_PIXELS = 100_000_000
"""Header width x height above which an image is refused before decoding (a decompression bomb)."""
PDQ_SIDE = 640
"""Longest side an image is reduced to before PDQ (never enlarged)."""
QUALITY_THRESHOLD = 50
"""PDQ hashes below this quality are too featureless to match on (python-threatexchange drops them)."""

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "HEIF", "MPO")
"""Pillow decoders we let near hostile bytes; HEIF only where a plugin (pillow-heif) registered it."""

DIHEDRAL_VARIANTS = ("original", "rot90ccw", "rot180", "rot90cw", "flip_tb", "mirror", "transpose",
                     "antitranspose")
"""`pdqhash.compute_dihedral` order. Variant k is approximately the PDQ of the image after: nothing;
rotating 90 degrees counter-clockwise; 180; 90 clockwise; flipping top to bottom; mirroring left to right;
transposing (swap x and y); transposing along the other diagonal. Approximately: against hashing the
transformed pixels we measured 0-48 bits on generated scenes (it depends on the size; PDQ's dihedral
shortcut is not exact, ThreatExchange issue #1676), so a query's `mirror` variant usually, not always,
matches a bank hash of the mirrored picture (robustness table: mirror 100 % at 512 px, mean 14 bits)."""


_T = Image.Transpose
_EXIF_TRANSPOSE = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM, 5: _T.TRANSPOSE,
                   6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}
"""EXIF orientation → the transpose that shows the picture upright (as ImageOps.exif_transpose does)."""


class ImageHashError(ValueError):
    """An image that is refused or cannot be decoded. `kind` is `limit`, `format` or `decode`."""

    def __init__(self, message: str, kind: str = "decode") -> None:
        super().__init__(message)
        self.kind = kind


class PdqHash(NamedTuple):
    value: str
    """64 lower-case hex digits."""
    quality: int
    variant: str = "original"


@dataclass
class ImageHashes:
    hashes: list[PdqHash]
    format: str
    width: int
    height: int
    hashed_size: tuple[int, int]
    frames: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def pdq(self) -> PdqHash:
        return self.hashes[0]


def bits_to_hex(vector: np.ndarray) -> str:
    """256 0/1 values → 64 hex digits, first bit most significant (the python-threatexchange convention)."""
    bits = np.asarray(vector, dtype=np.uint8)
    if bits.shape != (256,):
        raise ValueError(f"a PDQ vector has 256 bits, got shape {bits.shape}")
    return np.packbits(bits).tobytes().hex()


def pdq_array(rgb: np.ndarray, *, dihedral: bool = False) -> list[PdqHash]:
    """PDQ of an H x W x 3 uint8 array (already reduced): one hash, or the 8 dihedral ones."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
        raise ValueError(f"PDQ needs an H x W x 3 uint8 array, got {rgb.shape} {rgb.dtype}")
    rgb = np.ascontiguousarray(rgb[:, :, :3])
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(rgb)
        return [PdqHash(bits_to_hex(v), int(quality), name) for v, name in zip(vectors, DIHEDRAL_VARIANTS,
                                                                                strict=True)]
    vector, quality = pdqhash.compute(rgb)
    return [PdqHash(bits_to_hex(vector), int(quality))]


def _allowed_formats() -> list[str]:
    Image.init()
    return [f for f in ALLOWED_FORMATS if f in Image.OPEN]


def open_image(source: bytes | BinaryIO, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open (header only) and check the pixel count; ImageHashError for non-images and bombs."""
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    try:
        with warnings.catch_warnings():
            # our own cap below replaces Pillow's warning; its hard error (2x MAX_IMAGE_PIXELS) stays
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(stream, formats=_allowed_formats())
    except Image.DecompressionBombError as exc:
        raise ImageHashError(f"image is over the pixel limit, refused before decoding (Pillow: {exc})",
                             "limit") from exc
    except UnidentifiedImageError as exc:
        raise ImageHashError("not an image jieyao decodes (JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF)",
                             "format") from exc
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise ImageHashError(f"unreadable image header: {exc}", "decode") from exc
    w, h = img.size
    if w < 1 or h < 1 or w * h > max_pixels:
        img.close()
        raise ImageHashError(f"image {w}x{h} ({w * h / 1e6:.1f} MP) is over the limit of {max_pixels / 1e6:g} MP; "
                             "refused before decoding", "limit")
    return img


def hash_image(source: bytes | BinaryIO, *, dihedral: bool = False, max_pixels: int = MAX_PIXELS,
               pdq_side: int = PDQ_SIDE) -> ImageHashes:
    """PDQ of an image given as bytes or a binary file object (first frame of an animation)."""
    img = open_image(source, max_pixels=max_pixels)
    notes: list[str] = []
    try:
        fmt, (width, height) = img.format or "?", img.size
        frames = _frame_count(img)
        if frames > 1:
            notes.append(f"animated: {frames} frames, the first is hashed")
        rgb = prepare(img, pdq_side, notes)
    finally:
        img.close()
    hashes = pdq_array(rgb, dihedral=dihedral)
    if hashes[0].quality < QUALITY_THRESHOLD:
        notes.append(f"PDQ quality {hashes[0].quality} is below {QUALITY_THRESHOLD}: too featureless to match on")
    return ImageHashes(hashes, fmt, width, height, (rgb.shape[1], rgb.shape[0]), frames, notes)


def _frame_count(img: Image.Image) -> int:
    try:
        return int(getattr(img, "n_frames", 1))
    except (OSError, ValueError, EOFError):
        return 1


def prepare(img: Image.Image, pdq_side: int = PDQ_SIDE, notes: list[str] | None = None) -> np.ndarray:
    """Decode (reduced where the decoder can), orient by EXIF, reduce to `pdq_side`, convert to RGB uint8."""
    notes = notes if notes is not None else []
    if pdq_side < 16:
        raise ValueError("pdq_side must be at least 16")
    try:
        if img.format in ("JPEG", "MPO"):
            # libjpeg's DCT scaling (1/2, 1/4, 1/8) down to no less than the thumbnail below
            w, h = img.size
            scale = pdq_side / max(w, h)
            if scale < 1:
                img.draft(None, (max(1, int(w * scale)), max(1, int(h * scale))))
        img.seek(0)
        img.load()
        orientation = _orientation(img, notes)
        sixteen_bit = img.mode.startswith("I;16")
        img = _reducible(img)
        img.thumbnail((pdq_side, pdq_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        if orientation in range(2, 9):
            # after the reduction, where it is cheap; the box is square, so the order does not matter
            img = img.transpose(_EXIF_TRANSPOSE[orientation])
            notes.append(f"EXIF orientation {orientation} applied")
        return _to_rgb_array(img, sixteen_bit)
    except Image.DecompressionBombError as exc:
        raise ImageHashError(f"image refused while decoding: {exc}", "limit") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError, struct.error) as exc:
        raise ImageHashError(f"image could not be decoded: {exc}", "decode") from exc


def _orientation(img: Image.Image, notes: list[str]) -> int:
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        notes.append("EXIF unreadable: orientation not applied")
        return 1


def _reducible(img: Image.Image) -> Image.Image:
    """A mode Pillow can resize: palette, bilevel and exotic modes go to RGB(A) first; 16-bit to I."""
    if img.mode in ("RGB", "RGBA", "L", "LA", "I", "F"):
        return img
    if img.mode.startswith("I;16"):
        return img.convert("I")
    if img.mode in ("P", "PA"):
        return img.convert("RGBA")
    return img.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV, RGBX, RGBa, La ...


def _to_rgb_array(img: Image.Image, sixteen_bit: bool = False) -> np.ndarray:
    if img.mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(arr.min()), float(arr.max())
        if sixteen_bit:
            arr = arr / 257.0  # 16-bit samples: the full range onto 8 bits
        elif img.mode == "F" and lo >= 0 and hi <= 1.0:
            arr = arr * 255.0  # floating-point samples in 0..1
        elif lo >= 0 and hi <= 255:
            pass  # 8-bit values held in a wider mode
        else:
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    # alpha is dropped, not composited: python-threatexchange hashes the colour channels as they are
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
