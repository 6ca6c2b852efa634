"""How well PDQ survives the edits a re-uploader makes, measured on generated scenes.

For N seeded scenes: the PDQ distance between each scene and its edited copy, the share within the match
distance (31), and the false-match rate over all pairs of different scenes. Mirroring is measured twice:
plain, and with the query's 8 dihedral hashes (any within the distance counts), which is what
`jieyao hash --dihedral` gives a bank. Scenes are synthetic (no faces, no photos), so the figures describe
PDQ on photo-like structure; real photos cluster more, and the false-match rate on them is higher.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageEnhance

from jieyao.hashing.images import QUALITY_THRESHOLD, pdq_array
from jieyao.hashing.signals import VpdqFrame, pdq_distance
from jieyao.hashing.synthetic import scene
from jieyao.hashing.vpdq import pack

MATCH_DISTANCE = 31
MAX_SCENES = 2_000


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return apply


def _resize(factor: float) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        w, h = img.size
        return img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR,
                          reducing_gap=2.0)

    return apply


def _crop(share: float) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        w, h = img.size
        dx, dy = round(w * share), round(h * share)
        return img.crop((dx, dy, w - dx, h - dy))

    return apply


TRANSFORMS: dict[str, tuple[str, Callable[[Image.Image], Image.Image]]] = {
    "jpeg_q70": ("JPEG re-encode q70", _jpeg(70)),
    "jpeg_q30": ("JPEG re-encode q30", _jpeg(30)),
    "resize_50": ("resize to 50 %", _resize(0.5)),
    "resize_25": ("resize to 25 %", _resize(0.25)),
    "grayscale": ("grayscale", lambda img: img.convert("L").convert("RGB")),
    "brightness_130": ("brightness x1.3", lambda img: ImageEnhance.Brightness(img).enhance(1.3)),
    "crop_5": ("crop 5 % off each side", _crop(0.05)),
    "rotate_5": ("rotate 5 degrees", lambda img: img.rotate(5, Image.Resampling.BICUBIC)),
    "mirror": ("mirror (left-right)", lambda img: img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
}
DIHEDRAL_ROWS = {"mirror": ("mirror_dihedral", "mirror, with dihedral hashes")}
"""Transforms measured a second time with the query's 8 dihedral hashes."""


@dataclass(frozen=True)
class TransformRow:
    name: str
    label: str
    matched: int
    n: int
    mean_distance: float
    max_distance: int

    @property
    def match_rate(self) -> float:
        return self.matched / self.n if self.n else 0.0


@dataclass(frozen=True)
class RobustnessTable:
    scenes: int
    size: int
    distance: int
    rows: list[TransformRow]
    unrelated_pairs: int
    false_matches: int
    unrelated_min_distance: int
    unrelated_mean_distance: float
    low_quality: int
    """Scenes whose own PDQ quality is below 50 (they are still measured)."""

    @property
    def false_match_rate(self) -> float:
        return self.false_matches / self.unrelated_pairs if self.unrelated_pairs else 0.0

    def row(self, name: str) -> TransformRow:
        return next(r for r in self.rows if r.name == name)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["false_match_rate"] = self.false_match_rate
        for row, obj in zip(self.rows, out["rows"], strict=True):
            obj["match_rate"] = row.match_rate
        return out

    def to_markdown(self) -> str:
        lines = [f"PDQ robustness on {self.scenes} generated {self.size}x{self.size} scenes "
                 f"(match = distance <= {self.distance} of 256 bits)", "",
                 "| edit | matched | match rate | mean distance | max distance |", "|---|---:|---:|---:|---:|"]
        for r in self.rows:
            lines.append(f"| {r.label} | {r.matched}/{r.n} | {100 * r.match_rate:.1f} % | {r.mean_distance:.1f} | "
                         f"{r.max_distance} |")
        lines.append(f"| unrelated scenes (false match) | {self.false_matches}/{self.unrelated_pairs} | "
                     f"{100 * self.false_match_rate:.2f} % | {self.unrelated_mean_distance:.1f} | "
                     f"min {self.unrelated_min_distance} |")
        if self.low_quality:
            lines.append("")
            lines.append(f"{self.low_quality} scene(s) had PDQ quality below {QUALITY_THRESHOLD}.")
        return "\n".join(lines)


def _hash(img: Image.Image, dihedral: bool = False) -> list[str]:
    return [h.value for h in pdq_array(np.asarray(img.convert("RGB"), dtype=np.uint8), dihedral=dihedral)]


def _pair_distances(values: list[str]) -> list[int]:
    words = pack([VpdqFrame(v, 100, 0.0) for v in values])
    out: list[int] = []
    for i in range(len(words) - 1):
        out.extend(np.bitwise_count(words[i + 1:] ^ words[i]).sum(axis=1).tolist())
    return out


def robustness_table(n: int = 50, size: int = 512, *, seed: int = 1, distance: int = MATCH_DISTANCE) -> RobustnessTable:
    """Measure every transform on `n` scenes of `size` x `size` pixels (seeded: the same table each run)."""
    if not 2 <= n <= MAX_SCENES:
        raise ValueError(f"n must be 2-{MAX_SCENES}, got {n}")
    if not 64 <= size <= 4096:
        raise ValueError(f"size must be 64-4096 pixels, got {size}")
    originals: list[str] = []
    low_quality = 0
    labels = {name: label for name, (label, _t) in TRANSFORMS.items()} | dict(DIHEDRAL_ROWS.values())
    dist: dict[str, list[int]] = {name: [] for name in labels}
    for k in range(n):
        img = scene(seed * 100_003 + k, size)
        base = pdq_array(np.asarray(img, dtype=np.uint8))[0]
        low_quality += base.quality < QUALITY_THRESHOLD
        originals.append(base.value)
        for name, (_label, transform) in TRANSFORMS.items():
            edited = transform(img)
            dist[name].append(pdq_distance(base.value, _hash(edited)[0]))
            if name in DIHEDRAL_ROWS:
                dist[DIHEDRAL_ROWS[name][0]].append(min(pdq_distance(base.value, h) for h in _hash(edited, True)))
    rows = []
    for name, ds in dist.items():
        rows.append(TransformRow(name, labels[name], sum(d <= distance for d in ds), len(ds),
                                 round(float(np.mean(ds)), 2), max(ds)))
    pair_d = _pair_distances(originals)
    return RobustnessTable(n, size, distance, rows, len(pair_d), sum(d <= distance for d in pair_d), min(pair_d),
                           round(float(np.mean(pair_d)), 2), low_quality)
