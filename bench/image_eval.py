#!/usr/bin/env python3
"""Listing-image evaluation: how much of the text and the QR codes drawn into listing pictures jieyao reads
back, and what that does to moderation compared with the same listings given as plain text.

Why: moderation of images is only worth its cost if the words sellers move into their pictures are caught
about as well as in text. This script measures that on the generated set of bench/listing_images/make_images.py
(every listing of tests/data/moderation drawn into ~800x600 images, with known text, QR payloads and render
conditions), all through the public API (`jieyao.images.ImageReader`, `moderate_with_images`):

  * OCR character error rate: edit distance / truth characters, both sides NFKC-normalised with whitespace
    removed (as in shared/reference/ocr.md), overall and by render condition (text size, rotation, JPEG
    quality, noise, background, contrast); characters read from images that hold no text are counted apart;
  * QR decode rate: images holding a QR code whose payload was read back exactly;
  * moderation precision / recall / F1 (flagged = block or review) on IMAGE-ONLY listings (no text field)
    next to the same listings as plain text (`Moderator().moderate(truth)`), and on SPLIT listings (a title
    kept as text, the rest in the picture) next to the plain text and to the title alone. A third input,
    `drawn`, moderates the text exactly as drawn (and the QR payloads) as if OCR were perfect: the gap between
    `text` and `drawn` is what drawing loses (invisible evasions, contacts moved into QR codes), the gap
    between `drawn` and `images` is what OCR loses.

Held-out listings are measured, never inspected: per-listing details are written for dev listings only
(tests/data/moderation/README.md).

    .venv/bin/python bench/image_eval.py [--limit N] [--seed N] [--jobs N] [--sets dev,heldout] [--regen]

Nothing is downloaded. Results go to OUT/image_eval.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import REPO, machine_info, source_info

SCHEMA = "jieyao.bench.image_eval/1"
OUT = REPO / "bench" / "out"
POSITIVE = ("block", "review")


# ------------------------------------------------------------------------------------------------- measures


def norm(text: str) -> str:
    """What CER compares: NFKC, no whitespace (OCR spacing is arbitrary, full-width forms are not errors)."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy pass per character of `a` (insertions by a running minimum)."""
    if not a or not b:
        return len(a) or len(b)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    codes = np.frombuffer(a.encode("utf-32-le"), dtype=np.uint32)
    for i, c in enumerate(codes, 1):
        sub = prev[:-1] + (bb != c)
        base = np.empty_like(prev)
        base[0] = i
        base[1:] = np.minimum(prev[1:] + 1, sub)
        prev = np.minimum.accumulate(base - idx) + idx
    return int(prev[-1])


@dataclass
class Tally:
    """Characters and edits for one group of images."""

    images: int = 0
    chars: int = 0
    edits: int = 0

    def add(self, chars: int, edits: int) -> None:
        self.images += 1
        self.chars += chars
        self.edits += edits

    @property
    def cer(self) -> float:
        return self.edits / self.chars if self.chars else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "chars": self.chars, "edits": self.edits, "cer": round(self.cer, 4)}


@dataclass
class Counts:
    """Counts for one row of the moderation table; the metrics are `jieyao.text.evaluate.Confusion`'s."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, violating: bool, flagged: bool) -> None:
        if violating:
            self.tp, self.fn = (self.tp + 1, self.fn) if flagged else (self.tp, self.fn + 1)
        else:
            self.fp, self.tn = (self.fp + 1, self.tn) if flagged else (self.fp, self.tn + 1)

    def to_dict(self) -> dict[str, Any]:
        from jieyao.text.evaluate import Confusion

        c = Confusion(self.tp, self.fp, self.fn, self.tn)
        return {"n": c.n, **c.to_dict()}


def size_bucket(px: int) -> str:
    return "8-11" if px < 12 else "12-15" if px < 16 else "16-23" if px < 24 else "24-40"


def rotation_bucket(angle: float) -> str:
    a = abs(angle)
    return "0" if a == 0 else "180" if a == 180 else "<=5" if a <= 5 else "6-15"


def jpeg_bucket(q: int | None) -> str:
    return "png" if q is None else "q30-49" if q < 50 else "q50-64" if q < 65 else "q65-80"


ORDER = ("8-11", "12-15", "16-23", "24-40", "0", "<=5", "6-15", "180", "png", "q30-49", "q50-64", "q65-80",
         "sigma 0", "sigma 6", "sigma 14", "white", "solid", "gradient", "photo", "noise", "normal", "low")


def _order(key: str) -> tuple[int, str]:
    return (ORDER.index(key) if key in ORDER else len(ORDER), key)


CONDITIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "size": lambda r: size_bucket(int(r["size"])),
    "rotation": lambda r: rotation_bucket(float(r["angle"])),
    "jpeg": lambda r: jpeg_bucket(r["jpeg"]),
    "noise": lambda r: f"sigma {r['noise']:g}",
    "background": lambda r: str(r["background"]),
    "contrast": lambda r: str(r["contrast"]),
}


# ------------------------------------------------------------------------------------------------- the set


def ensure_set(out: Path, seed: int, limit: int | None, sets: str, regen: bool) -> list[dict[str, Any]]:
    """Labels of the generated set, (re)generated when missing, made with another seed, or asked for."""
    sys.path.insert(0, str(REPO / "bench" / "listing_images"))
    import make_images

    labels_file, meta_file = out / "labels.jsonl", out / "meta.json"
    meta: dict[str, Any] = {}
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    want = {"seed": seed, "sets": sets, "limit": limit}
    if regen or not labels_file.is_file() or meta.get("request") != want:
        font = make_images.find_font(None)
        sources = [(s, make_images.MODERATION_DIR / f"{s}.jsonl") for s in sets.split(",") if s]
        rows = make_images.load_listings(sources, limit)
        t0 = time.perf_counter()
        make_images.make_set(rows, out, seed, font)
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        meta["request"] = want
        meta["generate_seconds"] = round(time.perf_counter() - t0, 2)
        meta_file.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    with labels_file.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ------------------------------------------------------------------------------------------------- workers


_STATE: dict[str, Any] = {}


def _init_worker() -> None:
    from jieyao.images import ImageLimits, ImageReader, ImageText
    from jieyao.text import Moderator

    class CachingReader(ImageReader):
        """Reads each distinct image once: moderation reads it first, the CER check then gets the same
        ImageText back instead of running OCR a second time."""

        def __init__(self) -> None:
            super().__init__(limits=ImageLimits())
            self.seen: dict[bytes, ImageText] = {}

        def read(self, data: bytes, name: str = "") -> ImageText:
            key = hashlib.sha256(bytes(data)).digest()
            if key not in self.seen:
                self.seen.clear()  # a listing's images only: bounded memory
                self.seen[key] = super().read(data, name)
            return self.seen[key]

    _STATE["reader"] = CachingReader()
    _STATE["moderator"] = Moderator()


def evaluate_listing(args: tuple[dict[str, Any], str]) -> dict[str, Any]:
    """One listing: moderated from its pictures (and title), from its full text, from its title alone; and
    what was read from each picture."""
    from jieyao.images import moderate_with_images

    label, root = args
    if not _STATE:
        _init_worker()
    reader, moderator = _STATE["reader"], _STATE["moderator"]
    datas = [(Path(root) / rel).read_bytes() for rel in label["images"]]
    fields = {"title": label["text"]} if label["text"] else {}
    t0 = time.perf_counter()
    res = moderate_with_images(moderator, fields=fields, images=datas, id=label["id"], reader=reader)
    wall = time.perf_counter() - t0
    images = []
    for k, data in enumerate(datas):
        it = reader.seen.get(hashlib.sha256(data).digest()) or reader.read(data, f"image[{k}]")
        ocr = "\n".join(ln.raw or ln.text for ln in it.lines if ln.kind == "ocr")
        qrs = [ln.text for ln in it.lines if ln.kind == "qr"]
        images.append({"ocr": ocr, "qr": qrs, "error": it.error, "limits": list(it.limits),
                       "ocr_s": it.ocr_seconds, "qr_s": it.qr_seconds})
    drawn_fields = dict(fields)
    for k, (drawn, qr) in enumerate(zip(label["ocr_truth"], label["qr_truth"], strict=True)):
        joined = "\n".join(x for x in (drawn, qr) if x)
        if joined:
            drawn_fields[f"image[{k}]"] = joined
    drawn_res = moderator.moderate_listing(drawn_fields or {"text": ""}, id=label["id"])
    text_res = moderator.moderate(label["truth"], id=label["id"])
    title_res = moderator.moderate(label["text"], id=label["id"]) if label["text"] else None
    return {"id": label["id"], "images": images, "wall_s": wall,
            "image_decision": res.decision.value, "image_labels": list(res.labels),
            "image_rules": [r.id for r in res.rules],
            "drawn_decision": drawn_res.decision.value,
            "text_decision": text_res.decision.value, "text_labels": list(text_res.labels),
            "title_decision": title_res.decision.value if title_res else None}


def run_all(labels: Sequence[dict[str, Any]], root: Path, jobs: int) -> list[dict[str, Any]]:
    work = [(lab, str(root)) for lab in labels]
    done: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def progress(i: int) -> None:
        if sys.stderr.isatty() and (i % 10 == 0 or i == len(work)):
            print(f"\r{i}/{len(work)} listings, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)

    if jobs <= 1:
        for i, w in enumerate(work, 1):
            done.append(evaluate_listing(w))
            progress(i)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(jobs, initializer=_init_worker) as pool:
            for i, rec in enumerate(pool.imap(evaluate_listing, work, chunksize=2), 1):
                done.append(rec)
                progress(i)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return done


# ------------------------------------------------------------------------------------------------- figures


def score(labels: Sequence[dict[str, Any]], recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    overall = Tally()
    by: dict[str, dict[str, Tally]] = {c: defaultdict(Tally) for c in CONDITIONS}
    empty_images = 0
    spurious = 0
    qr_total = qr_read = 0
    errors = limits = 0
    limit_kinds: dict[str, int] = defaultdict(int)
    ocr_s = qr_s = wall_s = 0.0
    n_images = 0
    mod: dict[str, Counts] = defaultdict(Counts)
    for lab, rec in zip(labels, recs, strict=True):
        r = lab["render"]
        for truth, qr_truth, got in zip(lab["ocr_truth"], lab["qr_truth"], rec["images"], strict=True):
            n_images += 1
            ocr_s += got["ocr_s"]
            qr_s += got["qr_s"]
            errors += got["error"] is not None
            limits += bool(got["limits"])
            for msg in got["limits"]:
                limit_kinds[msg.split(":", 1)[0]] += 1
            t, o = norm(truth), norm(got["ocr"])
            if qr_truth is not None:
                qr_total += 1
                qr_read += qr_truth in got["qr"]
            if not t:
                empty_images += 1
                spurious += len(o)
                continue
            e = edit_distance(o, t)
            overall.add(len(t), e)
            for cond, key in CONDITIONS.items():
                by[cond][key(r)].add(len(t), e)
        wall_s += rec["wall_s"]
        violating = lab["label"] == "violating"
        flagged_img = rec["image_decision"] in POSITIVE
        flagged_txt = rec["text_decision"] in POSITIVE
        flagged_drawn = rec["drawn_decision"] in POSITIVE
        kind = "split" if lab["text"] else "image_only"
        sets = ["all"] + ([lab["set"]] if lab.get("set") else [])
        for s in sets:
            mod[f"{kind}/images/{s}"].add(violating, flagged_img)
            mod[f"{kind}/text/{s}"].add(violating, flagged_txt)
            mod[f"{kind}/drawn/{s}"].add(violating, flagged_drawn)
            if kind == "split":
                mod[f"split/title_only/{s}"].add(violating, rec["title_decision"] in POSITIVE)
            mod[f"all/images/{s}"].add(violating, flagged_img)
            mod[f"all/text/{s}"].add(violating, flagged_txt)
            mod[f"all/drawn/{s}"].add(violating, flagged_drawn)
    return {
        "cer": overall.to_dict(),
        "cer_by": {c: {k: d[k].to_dict() for k in sorted(d, key=_order)} for c, d in by.items()},
        "text_free_images": {"images": empty_images, "chars_read": spurious},
        "qr": {"images": qr_total, "decoded": qr_read, "rate": round(qr_read / qr_total, 4) if qr_total else None},
        "moderation": {k: v.to_dict() for k, v in sorted(mod.items())},
        "images": n_images, "image_errors": errors, "images_with_limits": limits, "limits": dict(limit_kinds),
        "seconds": {"ocr": round(ocr_s, 2), "qr": round(qr_s, 2), "moderate_with_images_wall": round(wall_s, 2)},
    }


def dev_details(labels: Sequence[dict[str, Any]], recs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-listing outcomes, for dev listings only (held-out ones are measured, not inspected)."""
    out = []
    for lab, rec in zip(labels, recs, strict=True):
        if lab.get("set") != "dev":
            continue
        out.append({"id": lab["id"], "label": lab["label"], "split": bool(lab["text"]), "render": lab["render"],
                    "image_decision": rec["image_decision"], "drawn_decision": rec["drawn_decision"],
                    "text_decision": rec["text_decision"],
                    "cer": [round(edit_distance(norm(g["ocr"]), norm(t)) / len(norm(t)), 3) if norm(t) else None
                            for t, g in zip(lab["ocr_truth"], rec["images"], strict=True)],
                    "qr_ok": [q in g["qr"] if q is not None else None
                              for q, g in zip(lab["qr_truth"], rec["images"], strict=True)]})
    return out


def print_tables(fig: dict[str, Any], sets: Iterable[str]) -> None:
    c = fig["cer"]
    print(f"OCR CER {c['cer']:.2%} over {c['images']} images with text, {c['chars']} chars ({c['edits']} edits); "
          f"text-free images: {fig['text_free_images']['images']}, chars read from them: "
          f"{fig['text_free_images']['chars_read']}")
    print(f"{'condition':<12}{'bucket':<12}{'images':>8}{'chars':>8}{'CER':>9}")
    for cond, rows in fig["cer_by"].items():
        for k, v in rows.items():
            print(f"{cond:<12}{k:<12}{v['images']:>8}{v['chars']:>8}{v['cer']:>9.2%}")
    q = fig["qr"]
    rate = f"{q['rate']:.1%}" if q["rate"] is not None else "n/a"
    print(f"QR codes decoded exactly: {q['decoded']}/{q['images']} ({rate})")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(fig["limits"].items()))
    print(f"image errors: {fig['image_errors']}, images with a limit: {fig['images_with_limits']}"
          + (f" ({kinds})" if kinds else ""))
    inputs = ("images", "drawn", "text", "title_only")
    print("moderation, flagged = block or review; P / R / F1 by what was moderated:")
    print(f"{'listings':<12}{'set':<9}{'n':>5}{'viol':>6}" + "".join(f"{i:>22}" for i in inputs))
    for kind in ("image_only", "split", "all"):
        for s in ("all", *sets):
            cells = [fig["moderation"].get(f"{kind}/{i}/{s}") for i in inputs]
            first = next((c for c in cells if c and c["n"]), None)
            if first is None:
                continue
            row = "".join(f"{c['precision']:>8.3f}{c['recall']:>7.3f}{c['f1']:>7.3f}" if c else f"{'-':>22}"
                          for c in cells)
            print(f"{kind:<12}{s:<9}{first['n']:>5}{first['tp'] + first['fn']:>6}{row}")
    s = fig["seconds"]
    print(f"time: OCR {s['ocr']:.1f} s, QR {s['qr']:.1f} s, moderate_with_images wall "
          f"{s['moderate_with_images_wall']:.1f} s for {fig['images']} images")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--limit", type=int, default=None, help="an even spread of N listings over the sets")
    ap.add_argument("--seed", type=int, default=None, help="generator seed (default: make_images' default)")
    ap.add_argument("--sets", default="dev,heldout")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (one OCR thread each)")
    ap.add_argument("--images", type=Path, default=OUT / "listing_images", help="where the set is (re)generated")
    ap.add_argument("--regen", action="store_true", help="generate the set again even if it is there")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        import jieyao.images  # noqa: F401
    except ImportError as exc:
        print(f"jieyao.images is not available ({exc}); install the ocr extra", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO / "bench" / "listing_images"))
    import make_images

    seed = make_images.DEFAULT_SEED if args.seed is None else args.seed
    try:
        labels = ensure_set(args.images, seed, args.limit, args.sets, args.regen)
    except make_images.FontMissing as exc:
        print(f"image_eval: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    recs = run_all(labels, args.images, args.jobs)
    wall = time.perf_counter() - t0
    fig = score(labels, recs)
    sets = [s for s in args.sets.split(",") if s]
    result = {"schema": SCHEMA, "seed": seed, "limit": args.limit, "sets": sets, "jobs": args.jobs,
              "listings": len(labels), "wall_seconds": round(wall, 1), **fig,
              "dev_listings": dev_details(labels, recs), "source": source_info(), "machine": machine_info()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image_eval.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")
    print(f"{len(labels)} listings, {fig['images']} images, seed {seed}, {args.jobs} job(s), {wall:.0f} s")
    print_tables(fig, sets)
    print(f"results: {args.out / 'image_eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
