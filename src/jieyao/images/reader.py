"""Reading the text out of one listing image: OCR lines and QR payloads, each with its box in the original
image's pixels, cleaned of OCR's own noise before the moderator sees them.

OCR noise is not evasion: rapidocr emits full-width forms (`ａbｃ１２３`, `：`, `￥`) and reads "AI" as "Al"
or "A丨", and none of that was the seller's doing. So each line is folded here, one character for one
character (offsets into a line stay offsets into what OCR read): NFKC where it gives a single character, and
`l`, `|`, `丨` read as `I` inside an all-capitals Latin run. What the seller did (spacing, homophones, lookalikes)
is left for the moderator's normaliser, which reports it."""

from __future__ import annotations

import hashlib
import time
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jieyao.images.decode import DecodedImage, ImageError, ImageLimits, decode_image
from jieyao.images.ocr import OcrEngine, Quad
from jieyao.images.qr import QrDecoder

if TYPE_CHECKING:
    import numpy as np

_I_LIKE = frozenset("l|丨")


@dataclass(frozen=True)
class TextLine:
    text: str
    """What was read, folded (see the module docstring); `raw` is what OCR returned."""
    score: float
    box: Quad
    """Corners in the original image's pixels (top-left, top-right, bottom-right, bottom-left)."""
    kind: str
    """"ocr" or "qr"."""
    frame: int = 0
    raw: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "kind": self.kind, "box": [list(p) for p in self.box]}
        if self.kind == "ocr":
            out["score"] = round(self.score, 4)
        if self.raw and self.raw != self.text:
            out["raw"] = self.raw
        if self.frame:
            out["frame"] = self.frame
        return out


@dataclass
class ImageText:
    """Everything read from one image, and what stopped the reading when something did."""

    name: str
    sha256: str
    size: int
    format: str = "unknown"
    width: int = 0
    height: int = 0
    frames: int = 0
    """Frames read (of `n_frames` in the file)."""
    n_frames: int = 0
    lines: list[TextLine] = field(default_factory=list)
    error: str | None = None
    """The bytes are not a readable image; nothing was read."""
    limits: list[str] = field(default_factory=list)
    """Bounds that were hit (pixels, bytes, frames, time, lines), in words: the picture was not read whole."""
    notes: list[str] = field(default_factory=list)
    decode_seconds: float = 0.0
    ocr_seconds: float = 0.0
    qr_seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "sha256": self.sha256, "size": self.size, "format": self.format,
            "width": self.width, "height": self.height, "frames": self.frames,
            "lines": [line.to_dict() for line in self.lines],
            "seconds": {"decode": round(self.decode_seconds, 4), "ocr": round(self.ocr_seconds, 4),
                        "qr": round(self.qr_seconds, 4)},
        }
        if self.n_frames > 1:
            out["n_frames"] = self.n_frames
        if self.error:
            out["error"] = self.error
        if self.limits:
            out["limits"] = list(self.limits)
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _nfkc_char(c: str) -> str:
    if c.isascii():
        return c
    n = unicodedata.normalize("NFKC", c)
    return n if len(n) == 1 else c


def fold_ocr_text(text: str) -> str:
    """OCR's own misreadings undone, length-preserving (see the module docstring)."""
    chars = [_nfkc_char(c) for c in text]
    n = len(chars)
    i = 0
    while i < n:
        if not (chars[i].isascii() and chars[i].isalpha()) and chars[i] not in _I_LIKE:
            i += 1
            continue
        j = i
        while j < n and ((chars[j].isascii() and chars[j].isalpha()) or chars[j] in _I_LIKE):
            j += 1
        run = chars[i:j]
        others = [c for c in run if c not in _I_LIKE]
        if others and all(c.isupper() for c in others) and len(run) > len(others) and len(run) <= 12:
            for k in range(i, j):
                if chars[k] in _I_LIKE:
                    chars[k] = "I"
        i = j
    return "".join(chars)


MAX_ASPECT = 4
"""rapidocr's detector scales a frame up until its *short* side is ~736 px: a 2000 × 8 strip would become
736 × 184,000 (8.7 GB and minutes in one native call). Strips are padded with white to this aspect first."""


def _squarer(rgb: np.ndarray) -> np.ndarray:
    """The frame padded on the right or at the bottom (boxes keep their coordinates) to at most MAX_ASPECT."""
    import numpy as np

    h, w = rgb.shape[:2]
    if max(h, w) <= MAX_ASPECT * min(h, w):
        return rgb
    nh, nw = max(h, -(-w // MAX_ASPECT)), max(w, -(-h // MAX_ASPECT))
    out = np.full((nh, nw, 3), 255, np.uint8)
    out[:h, :w] = rgb
    return out


def _inside(box: Quad, outer: Quad) -> bool:
    """The centre of `box` lies within the bounding rectangle of `outer`."""
    cx = sum(p[0] for p in box) / 4
    cy = sum(p[1] for p in box) / 4
    xs, ys = [p[0] for p in outer], [p[1] for p in outer]
    return min(xs) <= cx <= max(xs) and min(ys) <= cy <= max(ys)


def _scaled(box: Quad, scale: float) -> Quad:
    if scale == 1.0:
        return box
    a, b, c, d = ((round(x * scale), round(y * scale)) for x, y in box)
    return (a, b, c, d)


class ImageReader:
    """OCR + QR for listing images, under `ImageLimits`. One per worker process: the OCR engine is built on the
    first image and reused. `read()` never raises for a bad image: the error is in the result."""

    def __init__(self, limits: ImageLimits | None = None, *, ocr: OcrEngine | None = None,
                 qr: QrDecoder | None = None, use_ocr: bool = True, use_qr: bool = True) -> None:
        self.limits = limits or ImageLimits()
        self.ocr = ocr or OcrEngine()
        self.qr = qr or QrDecoder()
        self.use_ocr = use_ocr
        self.use_qr = use_qr

    def read(self, data: bytes, name: str = "") -> ImageText:
        """Image bytes → ImageText. Only bytes are accepted, never a path or URL string."""
        if not isinstance(data, bytes | bytearray | memoryview):
            return ImageText(name, "", 0, error=f"image data must be bytes, got {type(data).__name__}")
        raw = bytes(data)
        out = ImageText(name, hashlib.sha256(raw).hexdigest(), len(raw))
        t0 = time.perf_counter()
        try:
            decoded = decode_image(raw, self.limits)
        except ImageError as exc:
            out.error = str(exc)
            out.decode_seconds = time.perf_counter() - t0
            return out
        out.format, out.width, out.height = decoded.format, decoded.width, decoded.height
        out.n_frames, out.frames = decoded.n_frames, len(decoded.frames)
        out.limits.extend(decoded.limits)
        out.decode_seconds = decoded.seconds
        self._read_frames(decoded, out, t0)
        return out

    def _read_frames(self, decoded: DecodedImage, out: ImageText, t0: float) -> None:
        limits = self.limits
        for frame, index, scale in zip(decoded.frames, decoded.frame_indexes, decoded.scales, strict=True):
            if min(frame.shape[0], frame.shape[1]) < limits.min_side:
                out.notes.append(f"frame {index}: {frame.shape[1]}×{frame.shape[0]} is too small to hold text")
                continue
            texts: list[TextLine] = []
            codes: list[TextLine] = []
            if self.use_ocr:
                if self._over_budget(out, t0, "OCR"):
                    return
                t = time.perf_counter()
                texts = [TextLine(fold_ocr_text(line.text), line.score, _scaled(line.box, scale), "ocr",
                                  index, line.text) for line in self.ocr.read(_squarer(frame))]
                out.ocr_seconds += time.perf_counter() - t
            if self.use_qr:
                if self._over_budget(out, t0, "QR decoding"):
                    return
                t = time.perf_counter()
                codes = [TextLine(code.text, 1.0, _scaled(code.box, scale), "qr", index)
                         for code in self.qr.read(frame, limits.max_qr)]
                out.qr_seconds += time.perf_counter() - t
            # OCR "reads" a stray character or two out of a QR code's modules: what lies inside a decoded code
            # is the code's payload, not text
            for line in texts:
                if not any(_inside(line.box, code.box) for code in codes):
                    self._add(out, line)
            for code in codes:
                self._add(out, code)

    def _over_budget(self, out: ImageText, t0: float, step: str) -> bool:
        spent = time.perf_counter() - t0
        if spent <= self.limits.max_seconds:
            return False
        note = f"image.time: {spent:.1f} s spent, over the {self.limits.max_seconds:g}-second budget; {step} skipped"
        out.limits.append(note)
        return True

    def _add(self, out: ImageText, line: TextLine) -> None:
        if len(out.lines) >= self.limits.max_lines:
            if not any(m.startswith("image.lines") for m in out.limits):
                out.limits.append(f"image.lines: more than {self.limits.max_lines} lines; the rest were not read")
            return
        if line.kind == "qr" and any(x.kind == "qr" and x.text == line.text for x in out.lines):
            return  # the same code found again on a later frame
        out.lines.append(line)
