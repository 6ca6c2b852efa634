#!/usr/bin/env python3
"""Listing-moderation throughput: the full pipeline against one plain Aho-Corasick pass over the raw text.

Why this exists: the design promise of `jieyao.text` is that moderating a listing with every evasion undone
(normalisation with offset maps, pinyin, initials, glyph and 拆字 channels, contacts, co-occurrence rules)
costs at most 3x the least a keyword filter can do, which is one `ahocorasick_rs` pass of the same lexicon over
the raw text, and that one core moderates at least 20,000 listings of 200 characters a second. This script
checks both, in the same run, on the same deterministic listings:

  * ~20,000 synthetic listings of exactly 200 characters (seeded): ordinary filler in Chinese and English;
    some with lexicon terms planted, plain or with an evasion (zero-width, full-width, symbols, emoji, RLO
    reversal, traditional, pinyin); some with contacts.
  * (a) `Moderator().moderate(text)` for each listing, one thread;
  * (b) `ahocorasick_rs.AhoCorasick(surface terms of the same lexicon).find_matches_as_indexes(text)`.

It also times `Moderator()` construction, and for a quick check on the numbers it reports how many planted
and filler listings were flagged. Two more views of the same run:

  * a realistic mix: a marketplace sees mostly ordinary listings, so the same listings re-drawn as 95 %
    ordinary (filler, with or without a contact) and 5 % with planted terms, timed like (a);
  * a per-stage breakdown by kind of listing (filler, contact, planted): normalisation, the lexicon channels
    (`Channels.match` on the normalised listing), contact extraction, and the rest of `moderate()` (mapping
    hits back to the original text, the pattern search and rules when a rule anchor was hit, the result).

Nothing is downloaded. Not a test: run by hand,

    .venv/bin/python bench/moderation_throughput.py [--n 20000] [--chars 200] [--repeat 3] [--out bench/out]

Results go to OUT/moderation.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import platform
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import ahocorasick_rs
import opencc
from pypinyin import lazy_pinyin

GOAL_LISTINGS_PER_S = 20_000
GOAL_RATIO = 3.0
DEFAULT_SEED = 20261205
SCHEMA = "jieyao.bench.moderation/1"

FILLER_ZH = (
    "出闲置一台九成新的空气净化器，滤芯刚换过，自提优先。", "宝宝衣服都是穿过一两次的，按斤卖，有需要的联系。",
    "本店主营家居日用，满五十包邮，偏远地区除外。", "周末去爬山拍的照片，天气特别好，山顶风很大。",
    "求推荐适合新手的咖啡机，预算两千左右，主要做拿铁。", "考研资料整理好了，需要的同学可以在评论区留言。",
    "小区门口新开了一家面馆，牛肉面味道不错，价格也实惠。", "二手自行车转让，骑了半年，刹车和链条都保养过。",
    "公司团建定在下周五，地点是郊区的农家乐，记得带换洗衣服。", "这款耳机降噪效果一般，但是续航很长，通勤够用。",
    "家里的猫最近不爱吃饭，有没有懂的朋友给点建议。", "手工编织的围巾，颜色可以定制，一周左右发货。",
    "新学期的课表出来了，周三下午居然有四节课。", "搬家清仓，书架、餐桌、椅子都便宜处理，先到先得。",
    "今天的晚霞太美了，随手拍了几张，没有滤镜。", "转让两张演唱会门票，内场前排，原价出，不加价。",
)
FILLER_EN = (
    "Selling a used road bike, recently serviced, pickup only. ", "Great condition, original box included. ",
    "Looking for a tutor for high school chemistry, weekends preferred. ", "Free shipping on orders over $30. ",
    "Moving sale this weekend, furniture and kitchen stuff, cash only. ", "Anyone know a good ramen place nearby? ",
    "Hand-made candles, lavender and cedar, custom labels available. ", "The battery lasts two days on a charge. ",
)
CONTACTS = ("加微信 shop_2024", "v信 abc_12345", "QQ 3847219056", "电话 138 0013 8000", "提取码 ab12", "➕V tt_8899",
            "pan.baidu.com/s/1aBcDeF?pwd=k9m2", "tg @seller_x")
EMOJI = "🔥💊❤✨😀🌟"
SYMBOLS = "@-.*/|_~#·"

Listing = tuple[str, str]
"""(kind, text): kind is filler, planted:<evasion> or contact."""


# -- lexicon --------------------------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [v for v in value if isinstance(v, str) and v]
    return []


def lexicon_surfaces(moderator: Any) -> list[str]:
    """The surface forms of the Moderator's lexicon (or of `jieyao.text.load_lexicon()`), whatever shape the
    terms have: objects with `.text`, `.surface`, `.surfaces` or `.canonical`, mappings, or plain strings."""
    lex = getattr(moderator, "lexicon", None)
    if lex is None:
        lex = importlib.import_module("jieyao.text").load_lexicon()
    terms = getattr(lex, "terms", lex)
    if isinstance(terms, dict):
        terms = list(terms.values()) if all(not isinstance(v, str) for v in terms.values()) else list(terms)
    found: dict[str, None] = {}
    for term in terms:
        if isinstance(term, str):
            found[term] = None
            continue
        get = term.get if isinstance(term, dict) else (lambda k, t=term: getattr(t, k, None))
        for key in ("text", "surface", "surfaces", "forms", "canonical"):
            for s in _strings(get(key)):
                found[s] = None
    return list(found)


# -- listings -------------------------------------------------------------------------------------------------


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s)


def _evasions() -> dict[str, Callable[[str, random.Random], str]]:
    to_traditional = opencc.OpenCC("s2t").convert
    return {
        "plain": lambda s, r: s,
        "zero_width": lambda s, r: "\u200b".join(s),
        "fullwidth": lambda s, r: _fullwidth(s),
        "symbols": lambda s, r: r.choice(SYMBOLS).join(s),
        "emoji": lambda s, r: r.choice(EMOJI).join(s),
        "reversed": lambda s, r: "\u202e" + s[::-1] + "\u202c",
        "traditional": lambda s, r: to_traditional(s),
        "pinyin": lambda s, r: " ".join(lazy_pinyin(s)),
        "repeats": lambda s, r: s[0] * 3 + s[1:] if s else s,
    }


def _filler(rng: random.Random, chars: int) -> list[str]:
    """Whole sentences of ordinary text, at least `chars` characters in all."""
    parts: list[str] = []
    size = 0
    while size < chars:
        part = rng.choice(FILLER_EN) if rng.random() < 0.25 else rng.choice(FILLER_ZH)
        parts.append(part)
        size += len(part)
    return parts


def _insert(rng: random.Random, parts: list[str], piece: str, chars: int) -> str:
    """Put `piece` between two filler sentences (never inside a word) and cut the listing to exactly
    `chars` characters, keeping the piece whole."""
    if len(piece) >= chars:
        return piece[:chars]
    k = rng.randint(0, len(parts))
    head = parts[:k]
    while head and len("".join(head)) + len(piece) > chars:
        head.pop()
    return ("".join(head) + piece + "".join(parts[len(head):]))[:chars]


def make_listings(n: int, chars: int, seed: int, surfaces: Sequence[str]) -> list[Listing]:
    """Deterministic listings: 65 % filler, 10 % filler with a contact, 25 % with 1-3 lexicon terms
    planted (a third of them plain, the rest with one evasion each) and often a contact."""
    rng = random.Random(seed)
    terms = sorted(s for s in surfaces if 2 <= len(s) <= 12) or ["换脸"]
    evasions = _evasions()
    names = [k for k in evasions if k != "plain"]
    out: list[Listing] = []
    for _ in range(n):
        base = _filler(rng, chars)
        roll = rng.random()
        if roll < 0.65:
            out.append(("filler", "".join(base)[:chars]))
        elif roll < 0.75:
            out.append(("contact", _insert(rng, base, rng.choice(CONTACTS) + "。", chars)))
        else:
            how = "plain" if rng.random() < 0.33 else rng.choice(names)
            piece = "，".join(evasions[how](rng.choice(terms), rng) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.6:
                piece += " " + rng.choice(CONTACTS)
            out.append((f"planted:{how}", _insert(rng, base, piece + "。", chars)))
    return out


# -- timing ---------------------------------------------------------------------------------------------------


def _best_of(repeat: int, run: Callable[[], None]) -> tuple[float, float, list[float]]:
    """Best wall time and its CPU time over `repeat` rounds (GC paused inside a round)."""
    rounds: list[tuple[float, float]] = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            rounds.append((time.perf_counter() - w0, time.process_time() - c0))
        finally:
            gc.enable()
    best = min(rounds)
    return best[0], best[1], [round(w, 4) for w, _ in rounds]


def realistic_mix(listings: Sequence[Listing], planted_share: float = 0.05) -> list[Listing]:
    """The ordinary listings (filler, contact) in their order, with planted ones spread evenly among them so
    that they make `planted_share` of the result."""
    ordinary = [x for x in listings if not x[0].startswith("planted")]
    planted = [x for x in listings if x[0].startswith("planted")]
    want = min(len(planted), round(len(ordinary) * planted_share / (1 - planted_share)))
    if not want:
        return ordinary
    step = len(ordinary) / want
    out: list[Listing] = []
    k = 0
    for i, x in enumerate(ordinary):
        out.append(x)
        if k < want and i + 1 >= (k + 1) * step:
            out.append(planted[k])
            k += 1
    return out


def stage_breakdown(moderator: Any, listings: Sequence[Listing], repeat: int) -> dict[str, dict[str, float]]:
    """µs per listing by kind: the full pipeline, and the normaliser, the channels and contact extraction
    each on its own (the channels and contacts on listings normalised beforehand); "rest" is what is left of
    the full figure. Only for a Moderator that exposes `channels` (jieyao's); {} otherwise."""
    channels = getattr(moderator, "channels", None)
    normalise = getattr(getattr(channels, "normaliser", None), "normalise", None)
    try:
        extract = importlib.import_module("jieyao.text.contacts").extract_contacts
    except (ImportError, AttributeError):
        return {}
    if channels is None or normalise is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    for kind in ("filler", "contact", "planted"):
        texts = [t for k, t in listings if k.split(":")[0] == kind]
        if not texts:
            continue
        norms = [normalise(t) for t in texts]
        full = _per_item_us(repeat, moderator.moderate, texts)
        stages = {"normalise": _per_item_us(repeat, normalise, texts),
                  "channels": _per_item_us(repeat, channels.match, norms),
                  "contacts": _per_item_us(repeat, extract, norms)}
        out[kind] = {"n": len(texts), "full": round(full, 1), **{k: round(v, 1) for k, v in stages.items()},
                     "rest": round(full - sum(stages.values()), 1)}
    return out


def _per_item_us(repeat: int, fn: Callable[[Any], Any], items: Sequence[Any]) -> float:
    def run() -> None:
        for x in items:
            fn(x)
    return _best_of(repeat, run)[0] * 1e6 / max(1, len(items))


def _figures(n: int, wall: float, cpu: float, rounds: list[float]) -> dict[str, Any]:
    return {"seconds": round(wall, 4), "cpu_seconds": round(cpu, 4), "rounds": rounds,
            "listings_per_s": round(n / wall) if wall else None, "us_per_listing": round(wall * 1e6 / n, 2)}


def _commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src/jieyao/text"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "uncommitted": sorted(x[3:] for x in dirty if x.strip())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="listings (default 20000)")
    parser.add_argument("--chars", type=int, default=200, help="characters per listing (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args(argv)

    try:
        text_pkg = importlib.import_module("jieyao.text")
        moderator_cls = text_pkg.Moderator
    except (ImportError, AttributeError) as exc:
        print(f"jieyao.text.Moderator is not available ({exc}); nothing to measure", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    moderator = moderator_cls()
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    moderator_cls()
    rebuild_s = time.perf_counter() - t0
    surfaces = lexicon_surfaces(moderator)
    if not surfaces:
        print("the Moderator's lexicon has no surface terms", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    plain = ahocorasick_rs.AhoCorasick(surfaces)
    plain_build_s = time.perf_counter() - t0

    listings = make_listings(args.n, args.chars, args.seed, surfaces)
    texts = [t for _, t in listings]
    n = len(texts)
    moderate = moderator.moderate
    find = plain.find_matches_as_indexes

    decisions: list[str] = [moderate(t).decision.value for t in texts[:2000]]  # warm-up, and a sanity sample
    plain_hits = sum(1 for t in texts[:2000] if find(t))

    def run_full() -> None:
        for t in texts:
            moderate(t)

    def run_plain() -> None:
        for t in texts:
            find(t)

    realistic_texts = [t for _, t in realistic_mix(listings)]

    def run_realistic() -> None:
        for t in realistic_texts:
            moderate(t)

    full_wall, full_cpu, full_rounds = _best_of(args.repeat, run_full)
    plain_wall, plain_cpu, plain_rounds = _best_of(args.repeat, run_plain)
    real_wall, real_cpu, real_rounds = _best_of(args.repeat, run_realistic)
    stages = stage_breakdown(moderator, listings, args.repeat)

    by_kind: dict[str, Counter[str]] = {}
    for (kind, _), decision in zip(listings[:2000], decisions, strict=True):
        by_kind.setdefault(kind.split(":")[0], Counter())[decision] += 1
    flagged = {k: round(1 - c["pass"] / c.total(), 3) for k, c in by_kind.items()}
    full = _figures(n, full_wall, full_cpu, full_rounds)
    base = _figures(n, plain_wall, plain_cpu, plain_rounds)
    realistic = {**_figures(len(realistic_texts), real_wall, real_cpu, real_rounds), "n": len(realistic_texts),
                 "planted_share": round(sum(1 for k, _ in realistic_mix(listings) if k.startswith("planted"))
                                        / max(1, len(realistic_texts)), 3)}
    ratio = full_wall / plain_wall if plain_wall else float("inf")
    result: dict[str, Any] = {
        "schema": SCHEMA, "n": n, "chars": args.chars, "seed": args.seed, "repeat": args.repeat,
        "lexicon_surfaces": len(surfaces), "mix": dict(Counter(k for k, _ in listings)),
        "moderator_build_s": round(build_s, 4), "moderator_rebuild_s": round(rebuild_s, 4),
        "plain_build_s": round(plain_build_s, 4), "full": full, "plain": base, "ratio": round(ratio, 2),
        "realistic": realistic, "stages_us": stages,
        "goal": {"listings_per_s": GOAL_LISTINGS_PER_S, "ratio": GOAL_RATIO,
                 "listings_per_s_met": (full["listings_per_s"] or 0) >= GOAL_LISTINGS_PER_S,
                 "ratio_met": ratio <= GOAL_RATIO},
        "sample": {"n": len(decisions), "flagged_share_by_kind": flagged, "plain_matched_share":
                   round(plain_hits / max(1, len(decisions)), 3)},
        "python": platform.python_version(), "machine": platform.machine(), "platform": platform.platform(),
        **_commit(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "moderation.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")

    ok = lambda met: "met" if met else "NOT met"  # noqa: E731
    print(f"{n} listings x {args.chars} chars, lexicon {len(surfaces)} surface terms, best of {args.repeat}")
    print(f"Moderator() build {build_s * 1e3:.0f} ms (again: {rebuild_s * 1e3:.0f} ms); "
          f"plain automaton build {plain_build_s * 1e3:.1f} ms")
    print(f"{'':<26}{'listings/s':>12}{'µs/listing':>12}{'cpu s':>8}")
    print(f"{'full Moderator.moderate':<26}{full['listings_per_s']:>12,}{full['us_per_listing']:>12.1f}"
          f"{full['cpu_seconds']:>8.2f}")
    print(f"{'plain AC over raw text':<26}{base['listings_per_s']:>12,}{base['us_per_listing']:>12.1f}"
          f"{base['cpu_seconds']:>8.2f}")
    print(f"{'realistic mix (5% planted)':<26}{realistic['listings_per_s']:>12,}{realistic['us_per_listing']:>12.1f}"
          f"{realistic['cpu_seconds']:>8.2f}")
    print(f"ratio full/plain {ratio:.2f}x (goal ≤ {GOAL_RATIO:.0f}x: {ok(ratio <= GOAL_RATIO)}); "
          f"full ≥ {GOAL_LISTINGS_PER_S:,} listings/s: {ok(result['goal']['listings_per_s_met'])}")
    if stages:
        print("µs per listing by stage (channels and contacts on listings normalised beforehand):")
        print(f"  {'kind':<9}{'n':>6}{'full':>8}{'normalise':>11}{'channels':>10}{'contacts':>10}{'rest':>8}")
        for kind, st in stages.items():
            print(f"  {kind:<9}{st['n']:>6}{st['full']:>8.1f}{st['normalise']:>11.1f}{st['channels']:>10.1f}"
                  f"{st['contacts']:>10.1f}{st['rest']:>8.1f}")
    print("flagged share in a 2,000-listing sample: "
          + ", ".join(f"{k} {v:.0%}" for k, v in sorted(flagged.items())))
    print(f"results: {args.out / 'moderation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
