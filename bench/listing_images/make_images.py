#!/usr/bin/env python3
"""Generate listing images for the OCR + QR evaluation, and the small fixture set the tests commit.

Why: sellers move the words a text filter would catch into their pictures. To measure how much of that
jieyao reads back we need images whose drawn text is known exactly, made the way sellers make them (small,
rotated, low-contrast text over photos, JPEG-mangled, contacts in a QR code), and made again bit for bit from a
seed, so a figure can be checked by anyone. Everything is drawn with Pillow, numpy and OpenCV's QR encoder
using a CJK font from Debian's packages; nothing is downloaded.

    .venv/bin/python bench/listing_images/make_images.py [--out bench/out/listing_images] [--seed N]
        [--limit N] [--sets dev,heldout] [--font PATH]
    .venv/bin/python bench/listing_images/make_images.py --fixtures tests/data/images

The evaluation set takes the listings of `tests/data/moderation/{dev,heldout}.jsonl` and renders each one
into one to three ~800x600 images, with `labels.jsonl` next to them (one object per listing: id, images,
text, truth, ocr_truth, qr_truth, label, labels, tags, set, render). Held-out listings are rendered only to be
*measured* (bench/image_eval.py); never tune on their images (tests/data/moderation/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "bench" / "out" / "listing_images"
MODERATION_DIR = REPO / "tests" / "data" / "moderation"
DEFAULT_SEED = 20261202
WIDTH, HEIGHT = 800, 600
MARGIN = 24
MAX_PAGES = 3
MIN_SIZE, MAX_SIZE = 8, 40
MAX_LISTING_CHARS = 2000
"""A listing longer than this is cut before drawing (the eval set's are at most 300)."""
SCHEMA_LABELS = "jieyao.bench.listing_images/1"
SCHEMA_FIXTURES = "jieyao.images.fixtures/1"
FIXTURE_BUDGET_BYTES = 1_500_000
FIXTURE_MAX_FILES = 15

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
FONT_GLOBS = ("*wqy*zenhei*", "*NotoSansCJK*", "*NotoSerifCJK*", "*SourceHan*", "*wqy*microhei*")
FONT_HELP = ("no CJK font found: install one from Debian's packages "
             "(apt-get install -y --no-install-recommends fonts-wqy-zenhei) or pass --font PATH")
PROBE = "金丹出售"


class FontMissing(RuntimeError):
    """No usable CJK font: the generator cannot draw Chinese text and says how to get one."""


# -------------------------------------------------------------------------------------------------------- font


def _draws_cjk(path: Path) -> bool:
    try:
        font = ImageFont.truetype(str(path), 24)
    except OSError:
        return False
    return all(not _missing(font, ch) for ch in PROBE)


def find_font(explicit: str | Path | None = None) -> Path:
    """The font to draw with: `explicit` if given (it must exist and draw CJK), else the first CJK font of
    Debian's packages that is installed. Raises FontMissing with what to install."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FontMissing(f"font {path} does not exist; {FONT_HELP}")
        if not _draws_cjk(path):
            raise FontMissing(f"font {path} cannot draw Chinese ({PROBE}); {FONT_HELP}")
        return path
    for cand in FONT_CANDIDATES:
        if Path(cand).is_file() and _draws_cjk(Path(cand)):
            return Path(cand)
    root = Path("/usr/share/fonts")
    if root.is_dir():
        for pattern in FONT_GLOBS:
            for cand_path in sorted(root.rglob(pattern)):
                if cand_path.suffix.lower() in (".ttf", ".ttc", ".otf") and _draws_cjk(cand_path):
                    return cand_path
    raise FontMissing(FONT_HELP)


def font_info(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@lru_cache(maxsize=64)
def _font(path: str, size: int, index: int = 0) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError:
        return ImageFont.truetype(path, size)


GLYPH_PROBE_SIZE = 32
"""Whether a font has a glyph does not depend on the size; at 8 px a simple glyph (口) and the .notdef box can
rasterise alike, so the check is made at this size."""


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    side = int(font.size) * 2 + 4
    img = Image.new("L", (side, side), 0)
    ImageDraw.Draw(img).text((2, 2), ch, font=font, fill=255)
    return img.tobytes()


def _missing(font: ImageFont.FreeTypeFont, ch: str) -> bool:
    """The font has no glyph for `ch` (it would draw the .notdef box): such a character is left out."""
    return _has_no_glyph(str(font.path), int(getattr(font, "index", 0)), ch)


@lru_cache(maxsize=65536)
def _has_no_glyph(path: str, index: int, ch: str) -> bool:
    probe = _font(path, GLYPH_PROBE_SIZE, index)
    return _glyph(probe, ch) == _glyph(probe, "\U000f0000")


_RLO_RUN = re.compile("\u202e([^\u202c\u202e]*)(?:\u202c|$)")


def visual_order(text: str) -> str:
    """The order a screen shows: a right-to-left override (RLO ... PDF, or RLO to the end) displays its run
    reversed, so "\u202e丹金售出\u202c" reads 出售金丹. Sellers' pictures show what the screen shows."""
    return _RLO_RUN.sub(lambda m: m.group(1)[::-1], text)


def drawable(text: str, font: ImageFont.FreeTypeFont) -> tuple[str, int]:
    """The visible text a reader of the picture sees, in display order (`visual_order`): format, control and
    combining characters (zero-width, variation selectors) are invisible, and characters without a glyph (emoji
    in a CJK font) are dropped.
    Returns the text and how many characters were dropped. Whitespace runs become one space."""
    out: list[str] = []
    shown = visual_order(text)
    dropped = len(text) - len(shown)
    for ch in shown:
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            continue
        cat = unicodedata.category(ch)
        if cat[0] in "CM" or cat == "Zl" or cat == "Zp":
            dropped += 1
            continue
        if _missing(font, ch):
            dropped += 1
            continue
        out.append(ch)
    return "".join(out).strip(), dropped


# ------------------------------------------------------------------------------------------------------ layout


_WORD = re.compile(r"[A-Za-z0-9_@.:/?=&%#+\-]+|\s+|.", re.S)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrap to `width` pixels: CJK breaks anywhere, Latin words and URLs stay whole unless one word
    alone is too wide. Widths add up token by token (linear in the text); a line whose exact width comes out
    wider (kerning) gives its last token to the next line."""
    lines: list[str] = []
    cur: list[str] = []
    cur_w = 0.0
    space = font.getlength(" ")
    widths: dict[str, float] = {}

    def w_of(tok: str) -> float:
        got = widths.get(tok)
        if got is None:
            got = widths[tok] = font.getlength(tok)
        return got

    def flush() -> None:
        while cur and cur[-1] == " ":
            cur.pop()
        if not cur:
            return
        line = "".join(cur)
        if len(cur) > 1 and font.getlength(line) > width:
            last = cur.pop()
            lines.append("".join(cur).rstrip())
            cur[:] = [last]
            return
        lines.append(line)
        cur.clear()

    for tok in _WORD.findall(text):
        if tok.isspace():
            if cur and cur[-1] != " ":
                cur.append(" ")
                cur_w += space
            continue
        tw = w_of(tok)
        if cur_w + tw <= width:
            cur.append(tok)
            cur_w += tw
            continue
        flush()
        while tw > width and len(tok) > 1:
            cut = max(1, int(len(tok) * width / max(1.0, tw)))
            while cut > 1 and font.getlength(tok[:cut]) > width:
                cut -= 1
            lines.append(tok[:cut])
            tok = tok[cut:]
            tw = w_of(tok)
        cur_w = sum(w_of(t) if t != " " else space for t in cur)
        cur.append(tok)
        cur_w += tw
    while cur:
        flush()
    return lines


def line_height(size: int) -> int:
    return round(size * 1.45) + 2


def paginate(lines: Sequence[str], size: int, height: int) -> list[list[str]]:
    per = max(1, height // line_height(size))
    return [list(lines[i:i + per]) for i in range(0, len(lines), per)] or [[]]


def fit_box(angle: float, width: int, height: int) -> tuple[int, int]:
    """The largest text block (same aspect as the canvas) that still fits the canvas once rotated."""
    a = math.radians(angle % 180)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    scale = 1.0
    while scale > 0.3:
        w, h = width * scale, height * scale
        if w * c + h * s <= width and w * s + h * c <= height:
            break
        scale -= 0.02
    return int(width * scale), int(height * scale)


# ----------------------------------------------------------------------------------------------- backgrounds


def _rgb(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def gradient(size: tuple[int, int], a: tuple[int, int, int], b: tuple[int, int, int], angle: float) -> Image.Image:
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (x * math.cos(angle) + y * math.sin(angle))
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    arr = np.asarray(a, np.float32) * (1 - t[..., None]) + np.asarray(b, np.float32) * t[..., None]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def photo_like(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Blurred colour blobs over a gradient: a stand-in for a product photo, with no text in it."""
    img = gradient(size, _rgb(rng, 40, 220), _rgb(rng, 40, 220), rng.uniform(0, math.pi))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(rng.randint(6, 14)):
        x, y = rng.randint(-100, w), rng.randint(-100, h)
        r = rng.randint(40, 220)
        draw.ellipse((x, y, x + r * rng.uniform(0.6, 1.6), y + r), fill=_rgb(rng, 20, 235))
    for _ in range(rng.randint(2, 5)):
        x, y = rng.randint(0, w), rng.randint(0, h)
        draw.rectangle((x, y, x + rng.randint(30, 200), y + rng.randint(30, 200)), fill=_rgb(rng, 20, 235))
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(12, 30)))


def noise_bg(size: tuple[int, int], rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    w, h = size
    base = np.asarray(_rgb(rng, 150, 250), np.int16)
    arr = (base + nrng.integers(-45, 46, (h, w, 3), dtype=np.int16)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(20, 60)):
        draw.line((rng.randint(0, w), rng.randint(0, h), rng.randint(0, w), rng.randint(0, h)),
                  fill=_rgb(rng, 90, 230), width=rng.randint(1, 2))
    return img


def background(kind: str, size: tuple[int, int], rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    if kind == "white":
        v = rng.randint(238, 255)
        return Image.new("RGB", size, (v, v, v))
    if kind == "solid":
        return Image.new("RGB", size, _rgb(rng, 60, 245))
    if kind == "gradient":
        return gradient(size, _rgb(rng, 30, 250), _rgb(rng, 30, 250), rng.uniform(0, math.pi))
    if kind == "photo":
        return photo_like(size, rng)
    if kind == "noise":
        return noise_bg(size, rng, nrng)
    raise ValueError(f"unknown background {kind!r}")


def _luma(c: Sequence[float]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def text_colour(bg: Image.Image, contrast: str, rng: random.Random) -> tuple[tuple[int, int, int], int]:
    """A text colour for the background's mean, and an outline width: clear text is dark on light (or light on
    dark); low-contrast text is a shade 35-60 levels of luma off the background, without outline."""
    mean = np.asarray(bg.resize((32, 24)), np.float32).reshape(-1, 3).mean(0)
    luma = _luma(mean)
    if contrast == "low":
        delta = rng.uniform(35, 60) * (1 if luma < 128 else -1)
        col = tuple(int(np.clip(v + delta, 0, 255)) for v in mean)
        return (col[0], col[1], col[2]), 0
    if luma > 140:
        return _rgb(rng, 0, 70), 0
    return _rgb(rng, 215, 255), 0


# ------------------------------------------------------------------------------------------------------- QR


def qr_image(payload: str, module_px: int = 6, border: int = 4) -> Image.Image:
    """A QR code of `payload` (OpenCV's encoder) with a white quiet zone, `module_px` pixels per module."""
    enc = cv2.QRCodeEncoder.create() if hasattr(cv2.QRCodeEncoder, "create") else cv2.QRCodeEncoder()
    mat = enc.encode(payload)
    if mat is None or mat.size == 0:
        raise ValueError("QR encoder returned nothing")
    mat = np.pad(mat, border, constant_values=255)
    img = Image.fromarray(mat.astype(np.uint8), "L")
    return img.resize((img.width * module_px, img.height * module_px), Image.Resampling.NEAREST).convert("RGB")


@dataclass(frozen=True)
class QrPart:
    start: int
    end: int
    kind: str
    payload: str


@lru_cache(maxsize=1)
def _moderator() -> Any:
    from jieyao.text import Moderator

    return Moderator()


def qr_part(text: str, rng: random.Random) -> QrPart | None:
    """The first contact in `text` that sellers put in a QR code (cloud-drive link, URL, WeChat id), found by
    jieyao's own contact extractor, and the payload to encode: the link (with `?pwd=` for the extraction code),
    or for WeChat either a u.wechat.com link or the contact as written."""
    for c in _moderator().moderate(text).contacts:
        if c.type not in ("cloud_drive", "url", "wechat"):
            continue
        start, end = c.start, c.end
        if start > 0 and text[start - 1] in "加➕+":
            start -= 1
        if c.type == "wechat":
            payload = f"https://u.wechat.com/{c.value}" if rng.random() < 0.5 else text[start:end].strip()
            return QrPart(start, end, "wechat", payload)
        url = c.value if c.value.lower().startswith(("http://", "https://")) else "https://" + c.value
        if c.code and "pwd=" not in url:
            url += ("&" if "?" in url else "?") + "pwd=" + c.code
        return QrPart(start, end, c.type, url)
    return None


# -------------------------------------------------------------------------------------------------- rendering


@dataclass
class Render:
    """How one listing was drawn; written into labels.jsonl so the evaluation can group by condition."""

    size: int
    angle: float
    background: str
    contrast: str
    noise: float
    jpeg: int | None
    font_index: int
    outline: int
    qr: str  # none | corner | separate
    split: bool
    pages: int = 1
    shrunk: bool = False
    cut: bool = False
    """Even at the smallest size the text needed more than MAX_PAGES images: `ocr_truth` has what was drawn."""
    dropped: int = 0


SIZE_BUCKETS = ((8, 11), (12, 15), (16, 23), (24, 40))
BACKGROUNDS = ("white", "white", "solid", "gradient", "photo", "noise")


def plan(rng: random.Random, has_qr: bool) -> Render:
    lo, hi = rng.choice(SIZE_BUCKETS)
    roll = rng.random()
    angle = 0.0 if roll < 0.55 else rng.uniform(-5, 5) if roll < 0.75 else \
        rng.choice((-1, 1)) * rng.uniform(6, 15) if roll < 0.95 else 180.0
    bg = rng.choice(BACKGROUNDS)
    contrast = "low" if rng.random() < 0.15 else "normal"
    noise = rng.choice((0.0, 0.0, 0.0, 6.0, 14.0))
    jpeg = None if rng.random() < 0.4 else rng.randint(30, 80)
    outline = 2 if bg == "photo" and contrast == "normal" and rng.random() < 0.6 else 0
    qr = "none"
    if has_qr and rng.random() < 0.8:
        qr = "corner" if rng.random() < 0.5 else "separate"
    return Render(size=rng.randint(lo, hi), angle=round(angle, 1), background=bg, contrast=contrast, noise=noise,
                  jpeg=jpeg, font_index=rng.choice((0, 0, 2)), outline=outline, qr=qr, split=rng.random() < 0.25)


def _text_layer(lines: Sequence[str], font: ImageFont.FreeTypeFont, size: int, colour: tuple[int, int, int],
                outline: int, box: tuple[int, int]) -> Image.Image:
    layer = Image.new("RGBA", box, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    stroke = (0, 0, 0) if _luma(colour) > 128 else (255, 255, 255)
    for i, line in enumerate(lines):
        draw.text((0, i * line_height(size)), line, font=font, fill=(*colour, 255),
                  stroke_width=outline, stroke_fill=(*stroke, 255))
    bbox = layer.getbbox()
    return layer.crop((0, 0, min(box[0], bbox[2] + 2), bbox[3] + 2)) if bbox else layer.crop((0, 0, 1, 1))


def render_page(lines: Sequence[str], font: ImageFont.FreeTypeFont, r: Render, rng: random.Random,
                nrng: np.random.Generator, box: tuple[int, int], qr: Image.Image | None = None) -> Image.Image:
    """One image: background, the text block (rotated as a whole about its centre), an optional QR in the
    bottom-right corner, then noise. JPEG happens when saving."""
    img = background(r.background, (WIDTH, HEIGHT), rng, nrng)
    colour, _ = text_colour(img, r.contrast, rng)
    layer = _text_layer(lines, font, r.size, colour, r.outline, box)
    if r.angle:
        layer = layer.rotate(r.angle, expand=True, resample=Image.Resampling.BICUBIC)
    free_w = WIDTH - layer.width - (qr.width + MARGIN if qr is not None else 0)
    x = MARGIN if free_w <= 2 * MARGIN else rng.randint(MARGIN, max(MARGIN, free_w - MARGIN))
    y = max(0, min(HEIGHT - layer.height, rng.randint(MARGIN, max(MARGIN, HEIGHT - layer.height - MARGIN))))
    x = max(0, min(WIDTH - layer.width, x))
    img.paste(layer, (x, y), layer)
    if qr is not None:
        img.paste(qr, (WIDTH - qr.width - MARGIN // 2, HEIGHT - qr.height - MARGIN // 2))
    if r.noise:
        arr = np.asarray(img, np.float32) + nrng.normal(0, r.noise, (HEIGHT, WIDTH, 3))
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    return img


def encode(img: Image.Image, jpeg: int | None) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if jpeg is None:
        img.save(buf, "PNG", optimize=False, compress_level=6)
        return buf.getvalue(), "png"
    img.save(buf, "JPEG", quality=jpeg, subsampling=2 if jpeg < 60 else 0)
    return buf.getvalue(), "jpg"


SPLIT_MARKS = frozenset("，。！？；、,!?;")
"""Sentence punctuation only: sellers split a listing between phrases, while spaces and symbols also sit
inside evasions ("huan lian", "换/脸/软/件") where a cut would break the term itself."""


def split_text(text: str, rng: random.Random) -> int | None:
    """Where to cut a listing between its title (kept as text) and its picture: after a sentence punctuation
    mark near 20-60 % of the text (else 10-90 %), never inside an RLO run. None when there is no such place:
    the listing is then drawn whole."""
    n = len(text)
    inside = [False] * n
    for m in _RLO_RUN.finditer(text):
        for i in range(m.start(), m.end()):
            inside[i] = True
    for lo, hi in ((0.2, 0.6), (0.1, 0.9)):
        cuts = [i + 1 for i in range(int(n * lo), min(n - 1, int(n * hi))) if text[i] in SPLIT_MARKS
                and not inside[i]]
        if cuts:
            return rng.choice(cuts)
    return None


def _seed_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass
class Drawn:
    images: list[tuple[bytes, str]] = field(default_factory=list)
    ocr_truth: list[str] = field(default_factory=list)
    qr_truth: list[str | None] = field(default_factory=list)


def draw_listing(text: str, r: Render, font_path: Path, rng: random.Random, nrng: np.random.Generator,
                 qr_payload: str | None) -> Drawn:
    """Draw `text` on as few pages as fit (at most MAX_PAGES; the font shrinks when even those are not
    enough), the QR code in a corner of the first page or as an image of its own."""
    qr_img = qr_image(qr_payload, module_px=rng.randint(4, 7)) if qr_payload and r.qr != "none" else None
    box = fit_box(r.angle, WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN)
    qr_cut = qr_img.width + MARGIN if qr_img is not None and r.qr == "corner" else 0
    width = max(80, box[0] - qr_cut)

    def layout(px: int) -> tuple[ImageFont.FreeTypeFont, list[list[str]], int]:
        f = _font(str(font_path), px, r.font_index)
        visible, gone = drawable(text, f)
        return f, paginate(wrap(visible, f, width), px, box[1]), gone

    size = r.size
    font, pages, dropped = layout(size)
    if len(pages) > MAX_PAGES:  # the largest smaller size that fits, by bisection (pages grow as size grows)
        r.shrunk = True
        lo, hi = MIN_SIZE, size - 1
        best = (*layout(MIN_SIZE), MIN_SIZE)
        while lo <= hi:
            mid = (lo + hi) // 2
            got = layout(mid)
            if len(got[1]) <= MAX_PAGES:
                best, lo = (*got, mid), mid + 1
            else:
                hi = mid - 1
        font, pages, dropped, size = best
    r.cut = len(pages) > MAX_PAGES
    pages = pages[:MAX_PAGES]
    r.size, r.pages, r.dropped = size, len(pages), dropped
    out = Drawn()
    for i, page in enumerate(pages):
        corner = qr_img if i == 0 and r.qr == "corner" else None
        img = render_page(page, font, r, rng, nrng, (width, box[1]), corner)
        out.images.append(encode(img, r.jpeg))
        out.ocr_truth.append("\n".join(page))
        out.qr_truth.append(qr_payload if corner is not None else None)
    if qr_img is not None and r.qr == "separate":
        canvas = photo_like((WIDTH, HEIGHT), rng) if rng.random() < 0.5 else Image.new("RGB", (WIDTH, HEIGHT),
                                                                                        "white")
        canvas.paste(qr_img, ((WIDTH - qr_img.width) // 2, (HEIGHT - qr_img.height) // 2))
        out.images.append(encode(canvas, None if r.jpeg is None else max(60, r.jpeg)))
        out.ocr_truth.append("")
        out.qr_truth.append(qr_payload)
    return out


def make_listing(row: dict[str, Any], seed: int, font_path: Path) -> tuple[dict[str, Any], Drawn]:
    """The label record and the images of one listing; the same (row, seed, font) gives the same bytes."""
    lid = str(row["id"])
    rng = random.Random(_seed_int(seed, lid))
    nrng = np.random.default_rng(_seed_int(seed, lid, "numpy"))
    truth = str(row["text"])[:MAX_LISTING_CHARS]
    qp = qr_part(truth, random.Random(_seed_int(seed, lid, "qr")))
    r = plan(rng, qp is not None)
    drawn_text, payload = truth, None
    if qp is not None and r.qr != "none":
        drawn_text = (truth[:qp.start] + " " + truth[qp.end:]).strip()
        payload = qp.payload
    title = ""
    if r.split:
        cut = split_text(drawn_text, rng)
        if cut is None:
            r.split = False
        else:
            title, drawn_text = drawn_text[:cut].strip(), drawn_text[cut:].strip()
    drawn = draw_listing(drawn_text, r, font_path, rng, nrng, payload)
    label = {"id": lid, "images": [], "text": title, "truth": truth, "ocr_truth": drawn.ocr_truth,
             "qr_truth": drawn.qr_truth, "label": row.get("label"), "labels": list(row.get("labels") or []),
             "tags": list(row.get("tags") or []), "set": row.get("_set"), "render": asdict(r)}
    return label, drawn


def load_listings(paths: Iterable[tuple[str, Path]], limit: int | None = None) -> list[dict[str, Any]]:
    """Listings of the named JSONL files (each tagged with its set name in `_set`). With `limit`, an even
    spread of that many over all of them, so a short run still mixes sets and violating/benign listings."""
    rows = _read_rows(paths)
    if limit is None or limit >= len(rows):
        return rows
    if limit <= 0:
        return []
    return [rows[i * len(rows) // limit] for i in range(limit)]


def _read_rows(paths: Iterable[tuple[str, Path]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, path in paths:
        with path.open(encoding="utf-8") as fh:
            for ln, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{ln}: not JSON ({e.msg})") from None
                if not isinstance(row, dict) or not isinstance(row.get("id"), str) or \
                        not isinstance(row.get("text"), str):
                    raise ValueError(f"{path}:{ln}: needs a string id and text")
                row["_set"] = name
                rows.append(row)
    return rows


def make_set(rows: Sequence[dict[str, Any]], out: Path, seed: int, font_path: Path) -> list[dict[str, Any]]:
    """Render every listing into `out/img/` and write `out/labels.jsonl` and `out/meta.json`."""
    img_dir = out / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    labels: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in rows:
        label, drawn = make_listing(row, seed, font_path)
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", label["id"])[:64] or "x"
        while safe in seen:
            safe += "_"
        seen.add(safe)
        for k, (data, ext) in enumerate(drawn.images):
            rel = f"img/{safe}_{k}.{ext}"
            (out / rel).write_bytes(data)
            label["images"].append(rel)
        labels.append(label)
    with (out / "labels.jsonl").open("w", encoding="utf-8") as fh:
        for label in labels:
            fh.write(json.dumps(label, ensure_ascii=False, sort_keys=True) + "\n")
    meta = {"schema": SCHEMA_LABELS, "seed": seed, "font": font_info(font_path), "listings": len(labels),
            "images": sum(len(x["images"]) for x in labels), "pillow": Image.__version__, "opencv": cv2.__version__}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return labels


# --------------------------------------------------------------------------------------------------- fixtures


COVER = ["AI金丹出售", "DFL整合包 加V:abc123", "￥99"]
SMALL = ["出售AI金丹 DFL整合包 SAEHD底丹", "换脸模型 包教包会 远程安装", "加V:abc123 网盘秒发 ￥99"]
ROTATED = ["出售换脸模型", "DFL整合包 ￥168"]
FULLWIDTH = ["ＡＩ金丹出售", "ＤＦＬ整合包　加Ｖ：ａｂｃ１２３"]
BENIGN = ["二手显卡 RTX 3060 12G", "九成新 无矿 同城自提", "￥1500"]
MEDICINE = ["同仁堂 安宫牛黄丸", "正品药房 金丹 大蜜丸"]
BANNER = ["限时特价 AI金丹出售", "DFL整合包 加V:abc123", "支持3060 12G显卡", "￥99"]
GIF_FIRST = ["出售换脸模型", "DFL整合包"]
QR_BAIDU = "https://pan.baidu.com/s/1AbCdEfGhIjK?pwd=k9m2"
QR_WECHAT = "https://u.wechat.com/EAbc123xyzDFL"


def _plain(lines: Sequence[str], font_path: Path, size: int, bg: Image.Image | None = None,
           colour: tuple[int, int, int] = (20, 20, 20), outline: int = 0, angle: float = 0.0,
           at: tuple[int, int] = (40, 40), gap: float = 1.6) -> Image.Image:
    img = bg.copy() if bg is not None else Image.new("RGB", (WIDTH, HEIGHT), "white")
    font = _font(str(font_path), size)
    layer = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for i, line in enumerate(lines):
        draw.text((at[0], at[1] + int(i * size * gap)), line, font=font, fill=(*colour, 255),
                  stroke_width=outline, stroke_fill=(0, 0, 0, 255))
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(WIDTH / 2, HEIGHT / 2))
    img.paste(layer, (0, 0), layer)
    return img


def _banner(font_path: Path) -> Image.Image:
    rng = random.Random(7)
    img = photo_like((WIDTH, HEIGHT), rng)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 30, WIDTH, 120), fill=(200, 20, 30))
    draw.text((40, 45), BANNER[0], font=_font(str(font_path), 52), fill=(255, 240, 0))
    draw.text((40, 200), BANNER[1], font=_font(str(font_path), 44), fill=(255, 255, 255), stroke_width=3,
              stroke_fill=(0, 0, 0))
    draw.text((40, 300), BANNER[2], font=_font(str(font_path), 40), fill=(255, 255, 255), stroke_width=3,
              stroke_fill=(0, 0, 0))
    draw.ellipse((560, 380, 760, 560), fill=(255, 210, 0))
    draw.text((600, 435), BANNER[3], font=_font(str(font_path), 56), fill=(180, 0, 0))
    return img


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _jpeg(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def _gif(font_path: Path) -> bytes:
    first = _plain(GIF_FIRST, font_path, 48, at=(60, 200)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    second = Image.new("RGB", (WIDTH, HEIGHT), (235, 240, 255)).convert("P", palette=Image.Palette.ADAPTIVE,
                                                                         colors=16)
    third = _plain(["新品上架"], font_path, 48, at=(60, 200)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second, third], duration=500, loop=0)
    return buf.getvalue()


def _qr_alone(payload: str, module_px: int, photo: bool) -> Image.Image:
    qr = qr_image(payload, module_px=module_px)
    canvas = photo_like((WIDTH, HEIGHT), random.Random(11)) if photo else Image.new("RGB", (WIDTH, HEIGHT),
                                                                                      "white")
    canvas.paste(qr, ((WIDTH - qr.width) // 2, (HEIGHT - qr.height) // 2))
    return canvas


def fixture_specs(font_path: Path) -> list[tuple[dict[str, Any], bytes]]:
    """The committed fixtures: what each shows, what a reader should get back, and its bytes.

    Per fixture: `lines` is the text drawn (on the first frame of an animation; `other_frames` holds the text of
    later ones), `must_read` the substrings a reader must return (after NFKC and whitespace removal: OCR spacing
    varies), `qr` the payloads drawn as QR codes, `contacts` what the contact extractor should find, and
    `decision` the expected decision when the image is moderated alone."""
    photo = photo_like((WIDTH, HEIGHT), random.Random(3))
    low = photo_like((WIDTH, HEIGHT), random.Random(5))
    specs: list[tuple[dict[str, Any], bytes]] = []

    def add(name: str, what: str, data: bytes, lines: Sequence[str], must: Sequence[str], decision: str, *,
            qr: Sequence[str] = (), contacts: Sequence[dict[str, str]] = (), frames: int = 1,
            **extra: Any) -> None:
        meta = {"file": name, "what": what, "lines": list(lines), "must_read": list(must), "qr": list(qr),
                "decision": decision, "contacts": list(contacts), "frames": frames, **extra}
        specs.append((meta, data))

    wechat = [{"type": "wechat", "value": "abc123"}]
    cover_must = ["金丹出售", "DFL整合包", "abc123"]
    add("cover_violating.png", "clear violating cover, 56 px on white", _png(_plain(COVER, font_path, 56)),
        COVER, ["AI金丹出售", "DFL整合包", "加V:abc123", "99"], "block", contacts=wechat)
    add("small_12px.png", "violating text at 12 px", _png(_plain(SMALL, font_path, 12)), SMALL,
        ["AI金丹", "DFL整合包", "换脸模型", "abc123"], "block", contacts=wechat)
    add("rotated_12deg.png", "violating text rotated 12 degrees",
        _png(_plain(ROTATED, font_path, 44, angle=12, at=(180, 220))), ROTATED, ["出售换脸模型", "DFL整合包"],
        "block", angle=12)
    add("fullwidth.png", "full-width Latin and digits (ＡＩ, ＤＦＬ, ａｂｃ１２３)",
        _png(_plain(FULLWIDTH, font_path, 44)), FULLWIDTH, cover_must, "block", contacts=wechat)
    add("benign_gpu.png", "ordinary second-hand GPU listing", _png(_plain(BENIGN, font_path, 44)), BENIGN,
        ["二手显卡", "3060", "1500"], "pass")
    add("benign_medicine.png", "同仁堂 medicine that mentions 金丹 (hard negative)",
        _png(_plain(MEDICINE, font_path, 44)), MEDICINE, ["同仁堂", "金丹"], "pass")
    add("low_contrast_photo.jpg", "violating text, low contrast over a photo-like background, JPEG q70",
        _jpeg(_plain(COVER, font_path, 48, bg=low, colour=_low_colour(low)), 70), COVER, cover_must, "block",
        contacts=wechat, jpeg=70)
    add("qr_baidu.png", "a QR code alone: Baidu cloud-drive link with extraction code",
        _png(_qr_alone(QR_BAIDU, 6, photo=False)), [], [], "pass", qr=[QR_BAIDU],
        contacts=[{"type": "cloud_drive", "value": QR_BAIDU, "code": "k9m2"}])
    add("qr_wechat.jpg", "a QR code alone over a photo: WeChat-like link, JPEG q80",
        _jpeg(_qr_alone(QR_WECHAT, 7, photo=True), 80), [], [], "pass", qr=[QR_WECHAT],
        contacts=[{"type": "url", "value": QR_WECHAT}], jpeg=80)
    add("banner_composite.jpg", "banner, outlined text and price tag over a photo, JPEG q60",
        _jpeg(_banner(font_path), 60), BANNER, ["AI金丹出售", "DFL整合包", "abc123", "3060"], "block",
        contacts=wechat, jpeg=60)
    add("photo_textfree.jpg", "photo-like image with no text, JPEG q75", _jpeg(photo, 75), [], [], "pass", jpeg=75)
    add("animated.gif", "animated GIF: violating text on frame 1, blank frame 2, benign text on frame 3",
        _gif(font_path), GIF_FIRST, ["出售换脸模型", "DFL整合包"], "block", frames=3, other_frames=["新品上架"])
    return specs


def _low_colour(bg: Image.Image) -> tuple[int, int, int]:
    col, _ = text_colour(bg, "low", random.Random(1))
    return col


def make_fixtures(out: Path, font_path: Path) -> dict[str, Any]:
    """Write the committed fixture set and its manifest; refuse to go over the size budget."""
    specs = fixture_specs(font_path)
    total = sum(len(d) for _, d in specs)
    if len(specs) > FIXTURE_MAX_FILES or total > FIXTURE_BUDGET_BYTES:
        raise RuntimeError(f"fixtures over budget: {len(specs)} files, {total} bytes")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for meta, data in specs:
        (out / meta["file"]).write_bytes(data)
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
        entries.append({**meta, "width": size[0], "height": size[1], "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()})
    manifest = {"schema": SCHEMA_FIXTURES, "generator": "bench/listing_images/make_images.py --fixtures",
                "font": font_info(font_path), "pillow": Image.__version__, "opencv": cv2.__version__,
                "decision_means": "expected decision when the image is moderated alone (no listing text)",
                "fixtures": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


# ------------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default bench/out/...)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--limit", type=int, default=None, help="render an even spread of N listings")
    ap.add_argument("--sets", default="dev,heldout", help="comma-separated moderation sets (dev, heldout)")
    ap.add_argument("--input", type=Path, action="append", help="JSONL listings instead of --sets (repeatable)")
    ap.add_argument("--font", default=None, help="a CJK font file (default: the first one installed)")
    ap.add_argument("--fixtures", type=Path, default=None, help="write the small committed fixture set here")
    args = ap.parse_args(argv)
    try:
        font_path = find_font(args.font)
    except FontMissing as e:
        print(f"make_images: {e}", file=sys.stderr)
        return 2
    if args.fixtures is not None:
        manifest = make_fixtures(args.fixtures, font_path)
        total = sum(f["bytes"] for f in manifest["fixtures"])
        print(f"{len(manifest['fixtures'])} fixtures, {total} bytes -> {args.fixtures}")
        return 0
    if args.input:
        sources = [(p.stem, p) for p in args.input]
    else:
        sources = [(s, MODERATION_DIR / f"{s}.jsonl") for s in args.sets.split(",") if s]
    try:
        rows = load_listings(sources, args.limit)
    except (OSError, ValueError) as e:
        print(f"make_images: {e}", file=sys.stderr)
        return 2
    labels = make_set(rows, args.out, args.seed, font_path)
    print(f"{len(labels)} listings, {sum(len(x['images']) for x in labels)} images -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
