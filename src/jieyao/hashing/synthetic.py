"""Generated test scenes for hashing tests, the robustness table and the benchmark: no real photos, no faces.

A scene is a seeded mix of what gives PDQ something to hold on to in a photo: a smooth background (a
two-colour gradient at a random angle plus low-frequency blobs), a dozen random polygons and ellipses, and
a few patches of fine noise texture. The same seed always gives the same pixels (numpy's PCG64 and Pillow's
drawing are deterministic), so a hash of a scene can be pinned in a test.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int, width: int = 512, height: int | None = None) -> Image.Image:
    """An RGB scene; different seeds give unrelated scenes (PDQ distance around 128, see robustness)."""
    height = height or width
    if width < 1 or height < 1 or width * height > 64_000_000:
        raise ValueError(f"scene size {width}x{height} out of range")
    rng = np.random.default_rng(seed)
    base = _background(rng, width, height)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    scale = min(width, height)
    for _ in range(int(rng.integers(8, 16))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * scale
        if rng.random() < 0.5:
            box = (cx - r, cy - r * rng.uniform(0.4, 1.0), cx + r, cy + r * rng.uniform(0.4, 1.0))
            draw.ellipse(box, fill=colour)
        else:
            n = int(rng.integers(3, 8))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = r * rng.uniform(0.5, 1.0, n)
            pts = [(float(cx + a * np.cos(t)), float(cy + a * np.sin(t))) for t, a in zip(angles, radii, strict=True)]
            draw.polygon(pts, fill=colour)
    arr = np.asarray(img).astype(np.int16)
    for _ in range(int(rng.integers(2, 5))):
        pw, ph = int(rng.uniform(0.1, 0.35) * width) + 1, int(rng.uniform(0.1, 0.35) * height) + 1
        x0, y0 = int(rng.integers(0, max(1, width - pw))), int(rng.integers(0, max(1, height - ph)))
        noise = rng.integers(-40, 41, (min(ph, height - y0), min(pw, width - x0), 1), dtype=np.int16)
        arr[y0:y0 + noise.shape[0], x0:x0 + noise.shape[1]] += noise
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return out.filter(ImageFilter.GaussianBlur(radius=max(0.5, scale / 1024)))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xs / width - 0.5) * np.cos(angle) + (ys / height - 0.5) * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    grad = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    # low-frequency blobs: a 6x6 grid of random values, smoothly upscaled
    grid = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB")
    blobs = np.asarray(grid.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    return np.clip(0.6 * grad + 0.4 * blobs, 0, 255).astype(np.uint8)


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    """The image written in `fmt` (JPEG quality 90 unless given) as bytes."""
    buf = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG"):
        params.setdefault("quality", 90)
        img = img.convert("RGB")
    img.save(buf, fmt, **params)
    return buf.getvalue()


def frames(seed: int, count: int, width: int = 64, height: int = 64, *, cuts: int = 3) -> list[Image.Image]:
    """`count` video frames: `cuts` unrelated scenes, each panned slowly (3 % of the width over the shot), so
    a video has real content changes (for vPDQ) and near-duplicate neighbouring frames."""
    if count < 1 or cuts < 1:
        raise ValueError("count and cuts must be positive")
    per = -(-count // cuts)
    pan = max(1, round(0.03 * width))
    out: list[Image.Image] = []
    for c in range(cuts):
        big = scene(seed * 1000 + c, width + pan, height)
        for k in range(per):
            if len(out) == count:
                break
            dx = k * pan // per
            out.append(big.crop((dx, 0, dx + width, height)))
    return out
