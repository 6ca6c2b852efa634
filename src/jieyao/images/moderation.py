"""Moderating a listing together with its pictures: the text read from each image (OCR lines, QR payloads)
becomes one more field of the listing, so the same normaliser, channels and rules see title, description and
pictures as one listing ("AI金丹" in the title and "￥99 加V" in the cover is one sale), while no term is matched
across two fields. Every hit and contact that came from a picture says which picture, which line and where
(the box, in the original image's pixels).

A picture that could not be read whole (a bomb, a corrupt or truncated file, the per-image budget) sends the
listing to review: a seller who can make our decoder fail while browsers still show the picture would
otherwise have a way around the text filter."""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from jieyao.images.decode import ImageLimits
from jieyao.images.reader import ImageReader, ImageText, TextLine
from jieyao.model import Decision
from jieyao.text.engine import Moderator
from jieyao.text.result import Contact, Hit, ModerationResult, RuleFired

_IMAGE_FIELD = re.compile(r"image\[\d+\]\Z")


def is_image_field(name: str) -> bool:
    """`image[N]`: the field a picture's text is moderated as; a caller's own field may not take the name."""
    return _IMAGE_FIELD.match(name) is not None


ImageInput = bytes | str | os.PathLike[str] | tuple[str, bytes]
"""Image bytes, a local path, or (name, bytes)."""
FIELD_PREFIX = "image"


@functools.lru_cache(maxsize=1)
def default_reader() -> ImageReader:
    """One reader per process: the OCR engine costs ~0.5 s and ~300 MB the first time it reads."""
    return ImageReader()


def read_image_file(path: str | os.PathLike[str], limits: ImageLimits | None = None) -> bytes:
    """A local image file's bytes: regular files only (never a FIFO or a device), at most `max_bytes`+1
    read (so an oversized file is reported by the decoder without being read whole)."""
    limits = limits or ImageLimits()
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fspath(path)}: not a regular file")
        chunks: list[bytes] = []
        left = limits.max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read_input(reader: ImageReader, item: ImageInput, index: int) -> ImageText:
    if isinstance(item, tuple):
        name, data = item
        return reader.read(data, str(name))
    if isinstance(item, bytes | bytearray | memoryview):
        return reader.read(bytes(item), f"image[{index}]")
    name = os.fspath(item)
    try:
        data = read_image_file(name, reader.limits)
    except OSError as exc:
        return ImageText(name, "", 0, error=f"cannot read {name}: {exc.strerror or exc}")
    return reader.read(data, name)


def _box_of(lines: Sequence[TextLine], starts: Sequence[int], a: int, b: int) -> tuple[int, list[list[int]]]:
    """The first line a [a, b) span touches, and the span's box: along the line's quad when it lies in one
    line (OCR boxes are one line each, so a char fraction is a position), else the lines' bounding box."""
    first = max(0, _line_at(starts, a))
    last = max(first, _line_at(starts, max(a, b - 1)))
    if first == last:
        line = lines[first]
        n = max(1, len(line.text))
        t0, t1 = (a - starts[first]) / n, (b - starts[first]) / n
        t0, t1 = min(max(t0, 0.0), 1.0), min(max(t1, 0.0), 1.0)
        tl, tr, br, bl = line.box

        def at(p: tuple[int, int], q: tuple[int, int], t: float) -> list[int]:
            return [round(p[0] + (q[0] - p[0]) * t), round(p[1] + (q[1] - p[1]) * t)]

        if line.kind == "qr":
            return first, [list(p) for p in line.box]
        return first, [at(tl, tr, t0), at(tl, tr, t1), at(bl, br, t1), at(bl, br, t0)]
    xs = [p[0] for ln in lines[first:last + 1] for p in ln.box]
    ys = [p[1] for ln in lines[first:last + 1] for p in ln.box]
    return first, [[min(xs), min(ys)], [max(xs), min(ys)], [max(xs), max(ys)], [min(xs), max(ys)]]


def _line_at(starts: Sequence[int], pos: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _ImageField:
    def __init__(self, index: int, image: ImageText, start: int) -> None:
        self.index, self.image, self.start = index, image, start
        self.starts: list[int] = []
        pos = 0
        for line in image.lines:
            self.starts.append(pos)
            pos += len(line.text) + 1
        self.end = start + max(0, pos - 1)

    def holds(self, s: int) -> bool:
        return self.start <= s < self.end or (s == self.start == self.end)

    def source(self, s: int, e: int) -> dict[str, Any]:
        lines = self.image.lines
        k, box = _box_of(lines, self.starts, s - self.start, e - self.start)
        out: dict[str, Any] = {"image": self.index, "name": self.image.name, "kind": lines[k].kind, "line": k,
                               "box": box}
        if lines[k].frame:
            out["frame"] = lines[k].frame
        return out


def _sourced(items: Sequence[Hit] | Sequence[Contact], fields: Sequence[_ImageField]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        where = next((f for f in fields if f.holds(item.start)), None)
        out.append(item if where is None else replace(item, source=where.source(item.start, item.end)))
    return out


def _limit_rules(images: Sequence[ImageText], skipped: int, limits: ImageLimits) -> list[RuleFired]:
    whys: list[str] = []
    for k, im in enumerate(images):
        if im.error:
            whys.append(f"image {k} ({im.name}) could not be read: {im.error}")
        whys.extend(f"image {k} ({im.name}): {note}" for note in im.limits)
    if skipped:
        whys.append(f"{skipped} image(s) beyond the {limits.max_images}-image limit were not read")
    if not whys:
        return []
    why = "part of the listing's pictures was not read, so it is not known to be clean: " + "; ".join(whys)
    return [RuleFired("image.limit", Decision.REVIEW, "limit", why)]


def moderate_with_images(moderator: Moderator, fields: Mapping[str, str], images: Sequence[ImageInput] = (),
                         id: str | None = None, reader: ImageReader | None = None) -> ModerationResult:
    """A listing's text fields and pictures → one ModerationResult (see the module docstring).

    `extra["images"]` describes each picture (hash, size, format, the lines read with their boxes, errors,
    limits, time spent); image fields are named `image[i]` in `extra["fields"]` and `extra["hit_fields"]`."""
    reserved = [k for k in fields if is_image_field(str(k))]
    if reserved:
        raise ValueError(f"field name {reserved[0]!r} is reserved for what a picture says (image[N])")
    reader = reader or default_reader()
    limits = reader.limits
    todo = list(images)[:limits.max_images]
    skipped = max(0, len(images) - len(todo))
    read = [_read_input(reader, item, k) for k, item in enumerate(todo)]
    all_fields: dict[str, str] = {str(k): v for k, v in fields.items()}
    keys: dict[str, int] = {}
    for k, im in enumerate(read):
        if im.lines:
            key = f"{FIELD_PREFIX}[{k}]"
            all_fields[key] = im.text
            keys[key] = k
    if not all_fields:
        all_fields = {"text": ""}
    result = moderator.moderate_listing(all_fields, id)
    bounds = result.extra.get("fields", {})
    image_fields = [_ImageField(k, read[k], int(bounds[key]["start"])) for key, k in keys.items() if key in bounds]
    if image_fields:
        result.hits = tuple(_sourced(result.hits, image_fields))
        result.contacts = tuple(_sourced(result.contacts, image_fields))
        from_images = [h for h in result.hits if h.source is not None and not h.group.startswith("allow-")]
        signals = list(result.evasion)
        if from_images and "text_in_image" not in signals:
            signals.append("text_in_image")
        if any(c.source is not None and c.source["kind"] == "qr" for c in result.contacts):
            signals.append("contact_in_qr")
        result.evasion = tuple(signals)
    extra_rules = _limit_rules(read, skipped, limits)
    if extra_rules:
        result.rules = tuple(result.rules) + tuple(extra_rules)
        if result.decision is Decision.PASS:
            result.decision = Decision.REVIEW
            result.labels = (*result.labels, "limit")
    result.extra["images"] = [{"index": k, **im.to_dict()} for k, im in enumerate(read)]
    if skipped:
        result.extra["images_not_read"] = skipped
    return result


def moderate_images(images: Sequence[ImageInput], *, text: str = "", id: str | None = None,
                    moderator: Moderator | None = None, reader: ImageReader | None = None) -> ModerationResult:
    """Convenience: a listing of `text` (may be empty) and pictures, with the default moderator and reader."""
    from jieyao.text.engine import default_moderator

    fields = {"text": text} if text else {}
    return moderate_with_images(moderator or default_moderator(), fields, images, id=id, reader=reader)


def image_paths(paths: Sequence[str], base: Path | None) -> list[str]:
    """Image paths from a listing record, relative ones taken from `base` (the listing file's folder)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        out.append(str(path if path.is_absolute() or base is None else base / path))
    return out
