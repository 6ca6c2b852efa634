"""Matching channels: the ways a lexicon term can be written and still be found, with Aho-Corasick automata
built once per Moderator, all reporting spans in the dense view (the engine maps them to the
original text with `View.span`).

- surface: the dense text (noise gone, folded) against the lexicon folded by the same Normaliser;
- pinyin: each Han char becomes one private-use char per toneless syllable, so 金蛋/今丹 read as 金丹, and typed
  pinyin ("jin dan", "换lian") matches the same term spelled in letters;
- initials: whole Latin tokens against abbreviations the lexicon marks ("hlmx" = 换脸模型);
- glyph: chars folded to their phonetic component (唤/涣 -> 奂, 睑 -> 佥), so 唤脸 and 换睑 read as 换脸;
- chaizi: the Normaliser recomposes 扌奂 -> 换 (only pairs whose char is in the lexicon); hits over such chars
  are reported as chaizi;
- reversed: the lexicon reversed (脸换 for 换脸), for text turned around without an RLO control;
- a pinyin sound-alike that keeps no char of its term (今单 for 金丹) counts only right next to another hit of
  the same group ("今单 仙单");
- misspelt names (reported as glyph): Latin text one edit (a letter added, dropped, changed, or two swapped)
  away from a face-swap tool or app name of 8+ letters, same first letter ("facefuison", "deepfacelap",
  "deep live came"), as patterns in the same automaton. Short names collide with English, so they are left out.

All channels scan the *compact* text: the dense text without the single spaces it keeps between Latin words,
so "deep face lab" and "jin dan" match. Surface, glyph and reversed read it as it is and share one automaton
(one scan); pinyin reads its syllable translation with its own. Latin edges are then checked on the dense text
(a kept space or a non-Latin neighbour is a boundary), so "roop" does not fire inside "troop".
"""

from __future__ import annotations

import bisect
import itertools
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import ahocorasick_rs

from jieyao.text import tables
from jieyao.text.lexicon import Lexicon, Term, is_han
from jieyao.text.normalise import Normalised, Normaliser

_LATIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_DIGITS = frozenset("0123456789")
_SURROGATES = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r"[a-z0-9]+")
_LETTER = re.compile(r"[a-z]")
_PUA_BASE = 0xE000  # the BMP Private Use Area (no dense text holds one): one code point per toneless syllable,
# so a translated listing stays two bytes a char
_MAX_PINYIN_MIXED = 4  # terms with up to this many Han chars get every Han/letters mix ("换lian", "huan脸")
_MAX_CHAIZI_VARIANTS = 32
_MAX_HITS = 2_000
"""Matches kept per channel per listing: 1 MB of "换脸" must not build a million Hit objects."""
_MAX_STRANGERS = 50
"""Sound-alikes with no char of their term kept per listing for the list check (`Channels._catalogue`)."""
_SPELLING_GROUPS = frozenset({"tool", "app"})
"""Groups whose Latin terms are proper names of face-swap software, so a one-edit misspelling is still them."""
_MIN_SPELLING = 8
_MAX_SPELLING = 24


class Match(NamedTuple):
    """A term found in the dense view, [start, end). A NamedTuple, not a dataclass: dozens are made per listing
    on the hot path, and a tuple is built several times faster than a frozen dataclass."""

    term: Term
    start: int
    end: int
    channel: str
    weight: float


_new_match = tuple.__new__
"""`_new_match(Match, (term, start, end, channel, weight))` is `Match(...)` without the Python-level `__new__`
a NamedTuple has."""


class _Compact(NamedTuple):
    """The dense text without its kept spaces, and how to get back to dense indexes."""

    text: str
    dense: str
    adjusted: tuple[int, ...]
    """For the k-th space of the dense text at index s_k: s_k - k, the compact index of the char after it."""

    def to_dense(self, i: int, j: int) -> tuple[int, int]:
        if not self.adjusted:
            return i, j
        first = i + bisect.bisect_right(self.adjusted, i)
        last = (j - 1) + bisect.bisect_right(self.adjusted, j - 1)
        return first, last + 1


def compact(dense: str) -> _Compact:
    if " " not in dense:
        return _Compact(dense, dense, ())
    # s_k - k for the k-th space is the length of all the text before it, spaces left out
    parts = dense.split(" ")
    last = parts.pop()
    adjusted = tuple(itertools.accumulate(map(len, parts)))
    parts.append(last)
    return _Compact("".join(parts), dense, adjusted)


def _bmp(text: str) -> bool:
    """Every char of the text is in the Basic Multilingual Plane (no astral char to look up past 0xFFFF)."""
    return len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text)


def _clean(text: str) -> str:
    """ahocorasick_rs cannot take lone surrogates; swap them one for one so offsets hold."""
    try:
        text.encode("utf-8")  # fails exactly when there is a lone surrogate, and costs less than a search
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def misspellings(name: str) -> set[str]:
    """Every spelling one edit from `name` (a letter dropped, changed or added, or two neighbours swapped) that
    keeps its first letter: sellers' typos and dodges ("facefuison", "deepfacelap") rarely touch it, and
    keeping it halves the collisions with English."""
    out: set[str] = set()
    for k in range(1, len(name)):
        out.add(name[:k] + name[k + 1:])
        out.update(name[:k] + c + name[k + 1:] for c in _LETTERS)
        if k + 1 < len(name):
            out.add(name[:k] + name[k + 1] + name[k] + name[k + 2:])
    for k in range(1, len(name) + 1):
        out.update(name[:k] + c + name[k:] for c in _LETTERS)
    out.discard(name)
    return out


def _misspelling_entries(folded: Mapping[Term, str]) -> list[tuple[str, _Payload]]:
    """Patterns (payload channel "spelling", reported as glyph) for the misspellings of tool and app names of
    8+ letters, minus every spelling that is itself a lexicon term; they ride in the text automaton, so they
    cost no extra scan."""
    exact = {f for f in folded.values() if f.isascii() and f.isalpha()}
    entries: dict[tuple[str, int], tuple[str, _Payload]] = {}
    for term, text in folded.items():
        if (term.group in _SPELLING_GROUPS and _MIN_SPELLING <= len(text) <= _MAX_SPELLING and text.isascii()
                and text.isalpha()):
            for v in misspellings(text) - exact:
                entries.setdefault((v, id(term)), (v, ("spelling", term)))
    return list(entries.values())


def latin_edges_ok(dense: str, i: int, j: int, term_text: str) -> bool:
    """A term that starts or ends with a Latin letter/digit must not be glued to Latin text on that side: the
    char before must not be a letter or digit; the char after must not be a letter (nor a digit when the term
    ends in one). "dfl2" and "dfl丹" pass, "hl2024dfl" and "udflow" do not."""
    if term_text[0] in _LATIN and i > 0 and dense[i - 1] in _LATIN:
        return False
    if j < len(dense) and term_text[-1] in _LATIN:
        nxt = dense[j]
        if nxt in _LETTERS or (nxt in _DIGITS and term_text[-1] in _DIGITS):
            return False
    return True


class _Cover:
    """A set of spans, asked "does one of you contain / overlap [i, j)?" in O(log n): sorted starts and the
    running maximum of ends (hostile text can carry thousands of hits)."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        ordered = sorted(spans)
        self._starts = [a for a, _ in ordered]
        self._max_end = list(itertools.accumulate([b for _, b in ordered], max))

    def contains(self, i: int, j: int) -> bool:
        if not self._starts:
            return False
        k = bisect.bisect_right(self._starts, i)
        return k > 0 and self._max_end[k - 1] >= j

    def strictly_contains(self, i: int, j: int) -> bool:
        """Some span starts before i and ends after j."""
        k = bisect.bisect_left(self._starts, i)
        return k > 0 and self._max_end[k - 1] > j

    def overlaps(self, i: int, j: int) -> bool:
        k = bisect.bisect_left(self._starts, j)
        return k > 0 and self._max_end[k - 1] > i


_Payload = tuple[str, Term]
"""(channel, term): what a pattern found in the text stands for."""


class _Automaton:
    """One Aho-Corasick automaton over patterns, each pattern standing for one or more (channel, term)."""

    def __init__(self, entries: Iterable[tuple[str, _Payload]]) -> None:
        by_pattern: dict[str, list[_Payload]] = {}
        for pattern, payload in entries:
            if pattern:
                bucket = by_pattern.setdefault(pattern, [])
                if payload not in bucket:
                    bucket.append(payload)
        self.patterns = list(by_pattern)
        self.terms = [tuple(by_pattern[p]) for p in self.patterns]
        self.ac = (ahocorasick_rs.AhoCorasick(self.patterns, matchkind=ahocorasick_rs.MATCHKIND_STANDARD)
                   if self.patterns else None)

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self.ac is None or not text:
            return []
        return self.ac.find_matches_as_indexes(text, overlapping=True)[:_MAX_HITS]


_TOTAL_RANGES = ((0, 0x3000), (0x3000, 0x3400), (0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00),
                 (0xFF00, 0xFFF0))


def _total(table: dict[int, str]) -> dict[int, str]:
    """A str.translate table that also maps the common chars to themselves: translate pays for every char it
    does not find (a LookupError inside), which made a small table slower than a big one."""
    out = {cp: chr(cp) for a, b in _TOTAL_RANGES for cp in range(a, b)}
    out.update(table)
    return out


def _recompose_pairs(lexicon: Lexicon) -> dict[tuple[str, str], str]:
    """拆字 pairs whose char occurs in a chaizi-enabled term: the normaliser recomposes only those, so "十八"
    is not turned into 木 in ordinary text."""
    wanted = {c for t in lexicon.terms if "chaizi" in t.channels for c in t.text if is_han(c)}
    return {pair: ch for pair, ch in tables.chaizi_pairs().items() if ch in wanted}


def _keep_repeats(lexicon: Lexicon) -> frozenset[str]:
    """Non-Latin chars a term itself doubles must survive the repeat collapse. (Latin letters collapse only
    from three on, and no term triples a letter, so "roop" and "deepfake" are safe without this.)"""
    return frozenset(a for t in lexicon.terms for a, b in itertools.pairwise(t.text.lower())
                     if a == b and not a.isascii())


def _glyph_fold(lexicon: Lexicon, components: Mapping[str, tuple[tuple[str, str], ...]]) -> dict[int, str]:
    """char -> the phonetic component it shares with a lexicon char, for every char of the component table
    whose second component is the phonetic of some glyph-enabled lexicon char. Components shared by many
    chars (口, 木, 刂) carry no identity and are skipped."""
    family = Counter(b for pairs in components.values() for b in {p[1] for p in pairs})
    phonetics: set[str] = set()
    for term in lexicon.terms:
        if "glyph" not in term.channels:
            continue
        for c in term.text:
            for _, b in components.get(c, ()):
                if family[b] <= lexicon.glyph_max_family:
                    phonetics.add(b)
    fold: dict[int, str] = {}
    for ch, pairs in components.items():
        for _, b in pairs:
            if b in phonetics:
                fold[ord(ch)] = b
                break
    return fold


class Channels:
    """All matching automata for one lexicon, and the Normaliser configured for it (recompose pairs, repeats
    to keep). Immutable after construction; share it between threads."""

    def __init__(self, lexicon: Lexicon, *, max_chars: int | None = None) -> None:
        self.lexicon = lexicon
        self.recompose = _recompose_pairs(lexicon)
        self.composed_chars = frozenset(self.recompose.values())
        kwargs = {"max_chars": max_chars} if max_chars else {}
        self.normaliser = Normaliser(recompose=self.recompose, keep_repeats=_keep_repeats(lexicon), **kwargs)
        self._fold = tables.fold_table()
        self.weights = dict(lexicon.channel_weights)
        folded = {t: self._fold_term(t) for t in lexicon.terms}
        self.folded = folded
        # surface, glyph and reversed all read the compact text: one automaton for the three, one scan
        entries: list[tuple[str, _Payload]] = [(f, ("surface", t)) for t, f in folded.items()
                                               if "surface" in t.channels]
        entries += self._glyph_entries(folded)
        entries += _misspelling_entries(folded)
        entries += [(f[::-1], ("reversed", t)) for t, f in folded.items()
                    if "reversed" in t.channels and f[::-1] != f]
        self.text_automaton = _Automaton(entries)
        # per pattern of the text automaton, what the hot loop needs of each payload, worked out once
        self._text_payloads = tuple(
            tuple((channel, term, folded[term] if term.word else None, (term.canonical, term.group),
                   term.weight * self.weights.get("surface", 1.0), term.weight * self.weights.get("chaizi", 1.0))
                  for channel, term in payload)
            for payload in self.text_automaton.terms)
        self.pattern_counts = Counter(channel for _, (channel, _) in entries)
        self._build_pinyin(folded)
        self.pattern_counts["pinyin"] = len(self.pinyin.patterns)
        initials: dict[str, list[Term]] = {}
        for t in lexicon.terms:
            if "initials" in t.channels:
                for abbr in t.initials:
                    initials.setdefault(abbr, []).append(t)
        self.initials = {k: tuple(v) for k, v in initials.items()}
        spellings = sorted({*self.initials, *(k[:n] + " " + k[n:] for k in self.initials for n in range(1, len(k)))})
        self._initials_ac = (ahocorasick_rs.AhoCorasick(spellings, matchkind=ahocorasick_rs.MATCHKIND_STANDARD)
                             if spellings else None)
        self.masks = frozenset(t for t in lexicon.terms if t.masks)

    # ------------------------------------------------------------------------------------------- building

    def _fold_term(self, term: Term) -> str:
        """The term as the dense text would show it, without spaces (the compact text has none)."""
        return _clean(self.normaliser.normalise(term.text).dense.text).replace(" ", "")

    def _build_pinyin(self, folded: Mapping[Term, str]) -> None:
        """Han chars become one private-use char per toneless syllable (a length-preserving translate), and each
        pinyin-enabled term becomes every mix of those syllable chars and typed letters ("jin丹", "jindan")."""
        syllables = tables.pinyin_table()
        code = {s: chr(_PUA_BASE + k) for k, s in enumerate(sorted(set(syllables.values())))}
        self._pinyin_of = syllables
        self._pinyin_table = _total({ord(h): code[s] for h, s in syllables.items()})
        # the same table as a list over the BMP: translate indexes it without hashing (text outside the BMP
        # takes the dict)
        self._pinyin_bmp = list(map(chr, range(0x10000)))
        for han, syllable in syllables.items():
            if ord(han) < 0x10000:
                self._pinyin_bmp[ord(han)] = code[syllable]
        entries: list[tuple[str, _Payload]] = []
        for term, text in folded.items():
            if "pinyin" not in term.channels:
                continue
            options: list[tuple[str, ...]] = []
            for c in text:
                s = syllables.get(c)
                options.append((code[s], s) if s else (c,))
            n_han = sum(1 for o in options if len(o) == 2)
            if n_han < 2:
                continue
            if n_han <= _MAX_PINYIN_MIXED:
                variants = {"".join(p) for p in itertools.product(*options)}
            else:
                variants = {"".join(o[0] for o in options), "".join(o[-1] for o in options)}
            entries.extend((v, ("pinyin", term)) for v in variants)
        self.pinyin = _Automaton(entries)

    def _glyph_entries(self, folded: Mapping[Term, str]) -> list[tuple[str, _Payload]]:
        """Every spelling of a glyph-enabled term with one char swapped for a char that shares its phonetic
        component (换脸 -> 唤脸, 涣脸, 换睑): patterns over the text as it is, so no per-listing translate."""
        fold = _glyph_fold(self.lexicon, tables.component_table())
        family: dict[str, list[str]] = {}
        for cp, rep in fold.items():
            family.setdefault(rep, []).append(chr(cp))
        entries: list[tuple[str, _Payload]] = []
        for term, text in folded.items():
            if "glyph" not in term.channels:
                continue
            for k, c in enumerate(text):
                phonetic = fold.get(ord(c))
                if phonetic is not None:
                    entries.extend((text[:k] + x + text[k + 1:], ("glyph", term)) for x in family[phonetic]
                                   if x != c)
        return entries

    # ------------------------------------------------------------------------------------------- matching

    def match(self, norm: Normalised) -> list[Match]:
        """Every term found in one normalised listing, at most one per (term, span), best channel first:
        surface beats chaizi beats the fuzzy channels; masks have dropped what they overlap."""
        dense = _clean(norm.dense.text)
        if not dense:
            return []
        ctext, _, adjusted = compact(dense)
        found: dict[tuple[str, str, int, int], Match] = {}
        spans: list[tuple[int, int]] = []
        fuzzy: list[tuple[str, Term, int, int, int, int]] = []
        chaizi = "chaizi" in norm.signals
        payloads = self._text_payloads
        for idx, s, e in self.text_automaton.find(ctext):
            if adjusted:  # compact -> dense, as _Compact.to_dense
                i = s + bisect_right(adjusted, s)
                j = e + bisect_right(adjusted, e - 1)
            else:
                i, j = s, e
            for channel, term, word, key, w_surface, w_chaizi in payloads[idx]:
                if channel != "surface":
                    fuzzy.append((channel, term, s, e, i, j))
                    continue
                if word is not None and not latin_edges_ok(dense, i, j, word):
                    continue
                if chaizi and self._composed(norm, i, j):
                    m = _new_match(Match, (term, i, j, "chaizi", w_chaizi))
                else:
                    m = _new_match(Match, (term, i, j, "surface", w_surface))
                at = (*key, i, j)
                old = found.get(at)
                if old is None or m[4] > old[4]:
                    found[at] = m
                spans.append((i, j))
        # A fuzzy channel reports a term only where the surface channel found nothing covering the same chars:
        # 金丹 found as is must not come back as pinyin, and 练模 inside the exact word 预训练模型 is not 脸模.
        # (What `_Cover.contains` answers, inlined: the surface spans sorted, and the running maximum of ends.)
        spans.sort()
        starts = [a for a, _ in spans]
        reach = list(itertools.accumulate([b for _, b in spans], max))
        pinyin_payloads = self.pinyin.terms
        hits = self.pinyin.find(ctext.translate(self._pinyin_bmp if ctext.isascii() or _bmp(ctext)
                                                else self._pinyin_table))
        for idx, s, e in hits:
            if adjusted:
                i = s + bisect_right(adjusted, s)
                j = e + bisect_right(adjusted, e - 1)
            else:
                i, j = s, e
            k = bisect_right(starts, i)
            if not (k and reach[k - 1] >= j):  # most pinyin matches are the surface ones again
                fuzzy.extend(("pinyin", term, s, e, i, j) for _, term in pinyin_payloads[idx])
        weights = self.weights
        strangers: list[tuple[Term, int, int]] = []
        for channel, term, s, e, i, j in fuzzy:
            k = bisect_right(starts, i)
            if k and reach[k - 1] >= j:
                continue
            folded = self.folded[term]
            if channel == "pinyin":
                if not self._pinyin_edges_ok(dense, i, j):
                    continue
                if not self._pinyin_ok(ctext[s:e], folded):
                    if ctext[s:e] != folded and len(strangers) < _MAX_STRANGERS:
                        strangers.append((term, i, j))
                    continue
            if channel == "spelling":
                # "deepfacelab x" is the name spelt right and a stray letter, not a misspelling
                if any(m[0].canonical == term.canonical and m[1] < j and i < m[2] for m in found.values()):
                    continue
                channel = "glyph"
            if term.word and not latin_edges_ok(dense, i, j, folded):
                continue
            m = _new_match(Match, (term, i, j, channel, term.weight * weights.get(channel, 1.0)))
            at = (term.canonical, term.group, i, j)
            old = found.get(at)
            if old is None or m[4] > old[4]:
                found[at] = m
        if strangers:
            self._catalogue(found, strangers, norm)
        if self.initials and _LETTER.search(dense):
            self._initials(found, dense)
        return self._unmasked(list(found.values()))

    def _catalogue(self, found: dict[tuple[str, str, int, int], Match], strangers: list[tuple[Term, int, int]],
                   norm: Normalised) -> None:
        """A sound-alike that keeps no char of its term (今单 for 金丹) is an accident alone, but not as one item
        of a list of the same group's words ("出今单 仙单": a catalogue of 丹 words): then it counts, as pinyin.
        A list item stands apart: the seller's text has a space or a symbol between it and its neighbour (in
        "快递默认底单", 递默 sounds like 底模 but is glued to 底单)."""
        factor = self.weights.get("pinyin", 1.0)
        starts, ends = norm.dense.starts, norm.dense.ends
        near = [(m[1], m[2], m[0].group) for m in found.values()]
        for term, i, j in strangers:
            for a, b, g in near:
                if g != term.group or not (a == j or b == i):
                    continue
                left = j if a == j else b  # the dense index where the second item starts
                if ends[left - 1] < starts[left]:
                    self._add(found, Match(term, i, j, "pinyin", term.weight * factor))
                    break

    def _add(self, found: dict[tuple[str, str, int, int], Match], m: Match) -> None:
        """One match per (canonical, group, span): "Deep Face Lab" and "DeepFaceLab" fold to one pattern."""
        key = (m.term.canonical, m.term.group, m.start, m.end)
        old = found.get(key)
        if old is None or m.weight > old.weight:
            found[key] = m

    @staticmethod
    def _pinyin_ok(seen: str, term: str) -> bool:
        """A homophone spelling keeps at least one Han char of the term (金蛋, 今丹, 换lian) or is typed in
        letters; two strangers that happen to sound like a term ("快递默认" -> 递默 = 底模) are not it."""
        if seen == term:
            return False
        if len(seen) != len(term):
            return True  # typed letters in it
        han_pairs = [(a, b) for a, b in zip(seen, term, strict=True) if is_han(b)]
        if any(is_han(a) and a == b for a, b in han_pairs):
            return True
        return any(not is_han(a) for a, _ in han_pairs)

    @staticmethod
    def _pinyin_edges_ok(dense: str, i: int, j: int) -> bool:
        """Typed pinyin is Latin: its edges need word boundaries like any Latin term ("jindan" in "xjindan"
        is not 金丹)."""
        if dense[i] in _LETTERS and i > 0 and dense[i - 1] in _LATIN:
            return False
        return not (dense[j - 1] in _LETTERS and j < len(dense) and dense[j] in _LETTERS)

    def _composed(self, norm: Normalised, i: int, j: int) -> bool:
        """Some char of dense[i:j] was recomposed from components (扌奂 -> 换), not collapsed from a repeat."""
        text = norm.dense.text
        for k in range(i, j):
            c = text[k]
            if c not in self.composed_chars:
                continue
            s, e = norm.dense.starts[k], norm.dense.ends[k]
            if e - s < 2:
                continue
            behind = {self._fold.get(o, o) for o in norm.original[s:e].lower()}
            if c not in behind:
                return True
        return False

    def _initials(self, found: dict[tuple[str, str, int, int], Match], dense: str) -> None:
        """Whole Latin tokens of the dense text ("sshl", "hlmx"), and two tokens split by one space ("ai jd")."""
        # A hit needs an abbreviation written as a whole token, or split in two by one space ("ai jd"): one
        # automaton pass over those spellings finds out whether the token walk below can find anything.
        if self._initials_ac is None:
            return
        n = len(dense)
        for _, s, e in self._initials_ac.find_matches_as_indexes(dense, overlapping=True):
            if (s == 0 or dense[s - 1] not in _LATIN) and (e == n or dense[e] not in _LATIN):
                self._initials_walk(found, dense)
                return

    def _initials_walk(self, found: dict[tuple[str, str, int, int], Match], dense: str) -> None:
        """The token walk of `_initials`, without the automaton that says whether it can find anything."""
        tokens = [(m.start(), m.end(), m.group()) for m in itertools.islice(_TOKEN.finditer(dense), _MAX_HITS)]
        factor = self.weights.get("initials", 1.0)
        table = self.initials
        for k, (s, e, tok) in enumerate(tokens):
            cands = [(s, e, tok)]
            if k + 1 < len(tokens) and tokens[k + 1][0] == e + 1 and dense[e] == " ":
                cands.append((s, tokens[k + 1][1], tok + tokens[k + 1][2]))
            for a, b, word in cands:
                for term in table.get(word, ()):
                    self._add(found, Match(term, a, b, "initials", term.weight * factor))

    def _unmasked(self, matches: list[Match]) -> list[Match]:
        """Drop what a mask overlaps (仙丹花 is not 仙丹), and a hit strictly in the middle of a longer one (脸模
        in 人脸模型 is an accident of the letters; 金丹 at the end of AI金丹 and 换脸 at the start of 换脸模型 are
        not, and stay)."""
        if len(matches) > 1:
            # `_Cover.strictly_contains`, inlined: some span starts before i and ends after j
            ordered = sorted([(m[1], m[2]) for m in matches])
            starts = [a for a, _ in ordered]
            reach = list(itertools.accumulate([b for _, b in ordered], max))
            matches = [m for m in matches if not ((k := bisect_left(starts, m[1])) and reach[k - 1] > m[2])]
        mask_terms = self.masks
        if not mask_terms:
            return matches
        masks = [(m.start, m.end) for m in matches if m.term in mask_terms]
        if not masks:
            return matches
        cover = _Cover(masks)
        return [m for m in matches if m.term in mask_terms or not cover.overlaps(m.start, m.end)]

    def pinyin_of(self, text: str) -> str:
        """Toneless pinyin of a string (debugging and explanations)."""
        return " ".join(self._pinyin_of.get(c, c) for c in text)

