#!/usr/bin/env python3
"""Normaliser micro-benchmark: µs per 200-char listing, against a plain Aho-Corasick pass over the raw text.

Why: listing moderation promises >= 20,000 listings/s per core and at most 3x a plain Aho-Corasick scan, and the
normaliser is the one pure-Python per-char stage of the pipeline, so its share of that budget is measured here.
Listings are generated from a fixed seed: marketplace-style Chinese with Latin tool names, prices, contacts,
emoji, full-width punctuation and some traditional chars ("clean"), and the same listings with the evasions the
normaliser undoes inserted ("evasive": zero-width chars, styled/full-width letters, noise between chars, RLO).
Not a test; run by hand:

    .venv/bin/python bench/normalise_throughput.py [--listings 2000] [--repeat 10] [--chars 200]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

import ahocorasick_rs

from jieyao.text import tables
from jieyao.text.normalise import Normaliser

_PIECES = ("出售", "AI金丹", "仙丹", "底丹", "DFL丹药", "DeepFaceLab", "整合包", "一键换脸", "实时换脸", "教程",
           "包教会", "远程安装", "永久使用", "自动发货", "网盘秒发", "提取码: ab12", "加V信 abc_123", "QQ 123456789",
           "价格 9.9 元", "888元", "售后群", "有需要的私聊", "高清素材", "模型训练", "支持 Windows 10", "显卡 RTX 3060",
           "软体", "臉模", "🔥", "❤️", "✅", "【", "】", "，", "。", "！", "～", " ", "https://pan.baidu.com/s/1AbCdEf")
_LEXICON = ("金丹", "仙丹", "底丹", "丹药", "dfl", "deepfacelab", "换脸", "整合包", "教程", "包教会", "出售", "网盘",
            "提取码", "自动发货", "v信", "qq", "售后群", "永久", "模型")


def listing(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        p = rng.choice(_PIECES)
        out.append(p)
        n += len(p)
    return "".join(out)[:chars]


def evade(rng: random.Random, text: str) -> str:
    """Insert the tricks the normaliser undoes, roughly one per five chars."""
    out: list[str] = []
    for c in text:
        r = rng.random()
        if r < 0.05:
            out.append(c + "\u200b")
        elif r < 0.10:
            out.append(c + rng.choice("@*❤. "))
        elif r < 0.13 and "a" <= c.lower() <= "z":
            out.append(chr(0xFF21 + ord(c.upper()) - 65))
        else:
            out.append(c)
    if rng.random() < 0.1:
        out.insert(len(out) // 2, "\u202e")
    return "".join(out)


def per_listing_us(fn: Callable[[str], object], docs: list[str], repeat: int, batch: int = 200) -> float:
    """Best per-listing time over `repeat` passes of small batches: the minimum is the figure least disturbed
    by other processes on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        for k in range(0, len(docs), batch):
            chunk = docs[k:k + batch]
            t0 = time.perf_counter()
            for d in chunk:
                fn(d)
            best = min(best, (time.perf_counter() - t0) / len(chunk))
    return best * 1e6


def with_spans(norm: Normaliser) -> Callable[[str], object]:
    """normalise, then ask for five dense spans, as a matcher with five hits would."""

    def run(doc: str) -> object:
        dense = norm.normalise(doc).dense
        n = len(dense.text)
        return [dense.span(k, min(n, k + 4)) for k in range(0, min(n, 50), 10)]

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listings", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--chars", type=int, default=200)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    norm = Normaliser()
    first_build = time.perf_counter() - t0
    for builder in (tables.pinyin_table, tables.initials_table, tables.chaizi_pairs):
        builder()
    rng = random.Random(args.seed)
    clean = [listing(rng, args.chars) for _ in range(args.listings)]
    evasive = [evade(rng, d) for d in clean]
    ac = ahocorasick_rs.AhoCorasick(list(_LEXICON))
    lexicon_keys = list(tables.chaizi_pairs().items())[:500]
    norm_chaizi = Normaliser(recompose=dict(lexicon_keys))

    results = {
        "chars_per_listing": args.chars,
        "listings": args.listings,
        "table_build_s": {k: round(v, 3) for k, v in tables.build_seconds.items()},
        "first_normaliser_s": round(first_build, 3),
        "us_per_listing": {
            "ahocorasick_raw": round(per_listing_us(ac.find_matches_as_indexes, clean, args.repeat), 2),
            "normalise_clean": round(per_listing_us(norm.normalise, clean, args.repeat), 2),
            "normalise_evasive": round(per_listing_us(norm.normalise, evasive, args.repeat), 2),
            "normalise_clean_recompose500": round(per_listing_us(norm_chaizi.normalise, clean, args.repeat), 2),
            "normalise_clean_5_spans": round(per_listing_us(with_spans(norm), clean, args.repeat), 2),
            "normalise_evasive_5_spans": round(per_listing_us(with_spans(norm), evasive, args.repeat), 2),
        },
    }
    us = results["us_per_listing"]
    assert isinstance(us, dict)
    results["listings_per_s_clean"] = round(1e6 / us["normalise_clean"])
    results["ratio_clean_to_ac"] = round(us["normalise_clean"] / us["ahocorasick_raw"], 2)
    results["median_dense_len"] = statistics.median(len(norm.normalise(d).dense.text) for d in clean)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
