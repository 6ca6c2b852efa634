"""One normalisation pass per listing, with offset maps back to the original text.

Two views come out of it. `light` undoes what a renderer hides or restyles (invisible and bidi chars, widths,
styled and look-alike letters, digit styles, traditional forms) and keeps everything else, so contacts, URLs and
numbers survive. `dense` also drops the noise sellers insert between the chars of a term (出@售, D.F.L, 换 脸),
collapses repeats and, when asked, recomposes split chars (扌奂 -> 换), so one Aho-Corasick pass finds the term.
Every char of both views knows which original code points are behind it, so a hit is shown on the text the
seller wrote.

Cost, because this runs on every listing: the text is lower-cased (C), the few chars the fold changes are found
by one Aho-Corasick pass (Rust) and spliced, and noise is found by one regex split; Python then loops over the
noise runs only, not over every char. Offsets are kept as a chain of small index maps (one per step that
changes positions) and resolved on demand: a span costs a few bisections, and a listing nobody asks about costs
nothing more. Only text with an RLO override or lone surrogates takes a per-char loop.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import overload

import ahocorasick_rs

from jieyao.text import tables

DEFAULT_MAX_CHARS = 100_000

_WORD = frozenset(string.ascii_lowercase + string.digits)
_GAP_SPLIT = re.compile(r"([\W_]+)")
# Chars that separate two Latin words even without a space ("dfl/deepfacelab"): never glued together.
_SEPARATORS = frozenset("/\\|,;!?()[]{}<>\"&+=@、。，；！？【】《》〈〉「」『』“”‘’…—")
_SPACES = frozenset(" \t\n\r\f\v\x1c\x1d\x1e\x1f\x85\u2028\u2029")
_SEP_OR_SPACE = _SEPARATORS | _SPACES
# What ordinary prose puts between two CJK chars; anything else there is inserted noise. (No ".": Chinese
# writes 。, so a full stop inside a run of Han is a trick.)
_PROSE = "".join(sorted(_SPACES)) + ",!?:;()[]{}<>\"'、。《》〈〉「」『』【】〔〕“”‘’…—–·/|"
_NUMBER_PUNCT = frozenset(".,:")
_PROSE_MARKS = frozenset(c for c in _PROSE if not c.isspace())  # one of these alone is never noise between CJK

_SPACED_SINGLES = re.compile(r"(?<![a-z0-9])[a-z0-9](?: [a-z0-9](?![a-z0-9]))+")
_SPACED_SINGLE = re.compile(r" [a-z0-9](?![a-z0-9])")  # a cheap first check (literal prefix) for the above
_REPEAT = re.compile(r"(.)\1+")  # any run; the few real ones are picked in Python (cheaper than a finer regex)
_RLO_END = re.compile("[" + re.escape(tables.PDF + "".join(sorted(tables.PARAGRAPH_ENDS))) + "]")
# A zero-width joiner between emoji is how emoji sequences are spelled (👨‍👩‍👧), not an evasion.
_EMOJI = "\u2600-\u27bf\U0001f000-\U0001faff"
_BARE_JOINER = re.compile(f"(?<![{_EMOJI}\ufe0f])[\u200c\u200d]|[\u200c\u200d](?![{_EMOJI}])")
_JOINERS = frozenset("\u200c\u200d")
# A look-alike letter is a signal when the listing also has Latin letters, digits or Han (mixed scripts);
# a listing written wholly in Greek or Cyrillic is folded but not flagged.
_MIXED_CONTEXT = re.compile(r"[A-Za-z0-9\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3400-\u4dbf\u4e00-\u9fff]")
_SIGNAL_ORDER = {name: i for i, name in enumerate(tables.SIGNALS)}


class _IndexMap:
    """One step that moves chars: maps an output index to the input indexes behind it. Segments are either a
    1:1 stretch (width 0) or a single output char standing for `width` input chars (a kept space standing for
    a whole gap, a merged repeat run, a recomposed 拆字 pair, one char of an expansion)."""

    __slots__ = ("_in", "_out", "_width")

    def __init__(self, out_starts: list[int], in_starts: list[int], widths: list[int]) -> None:
        self._out, self._in, self._width = out_starts, in_starts, widths

    def first(self, o: int) -> int:
        k = bisect_right(self._out, o) - 1
        return self._in[k] if self._width[k] else self._in[k] + o - self._out[k]

    def last(self, o: int) -> int:
        k = bisect_right(self._out, o) - 1
        w = self._width[k]
        return self._in[k] + w - 1 if w else self._in[k] + o - self._out[k]

    def apply(self, starts: Sequence[int], ends: Sequence[int]) -> tuple[list[int], list[int]]:
        """The whole offset lists one step up, a slice per segment (for iteration, not for spans)."""
        st: list[int] = []
        en: list[int] = []
        outs, ins, widths = self._out, self._in, self._width
        for k, (o, i, w) in enumerate(zip(outs, ins, widths, strict=True)):
            if w:
                st.append(min(starts[i:i + w]))
                en.append(max(ends[i:i + w]))
                continue
            stop = i + outs[k + 1] - o if k + 1 < len(outs) else len(starts)  # the last stretch runs to the end
            st.extend(starts[i:stop])
            en.extend(ends[i:stop])
        return st, en


_MapSource = _IndexMap | Callable[[], _IndexMap]


class _Offsets:
    """The offsets of one view: index maps stacked on a base (the original text, or a per-char list from the
    slow path). Maps may be given as builders, run on the first query."""

    __slots__ = ("_base_ends", "_base_starts", "_built", "_lists", "_maps", "_monotonic", "n")

    def __init__(self, n: int, base_starts: Sequence[int], base_ends: Sequence[int],
                 maps: Sequence[_MapSource] = ()) -> None:
        self.n = n
        self._base_starts, self._base_ends = base_starts, base_ends
        self._monotonic = isinstance(base_starts, range) and isinstance(base_ends, range)
        self._maps: list[_MapSource] = list(maps)
        self._built: list[_IndexMap] | None = None
        self._lists: tuple[list[int], list[int]] | None = None

    def then(self, n: int, *maps: _MapSource) -> _Offsets:
        """The offsets of a view derived from this one through `maps` (applied in order)."""
        return _Offsets(n, self._base_starts, self._base_ends, [*self._maps, *maps])

    def maps(self) -> list[_IndexMap]:
        """The maps, built on first use, top (the view) first."""
        if self._built is None:
            self._built = [m if isinstance(m, _IndexMap) else m() for m in reversed(self._maps)]
        return self._built

    def span(self, i: int, j: int) -> tuple[int, int]:
        if not self._monotonic:
            # A per-char base (the RLO path) is not monotonic: resolve per char, then take min/max.
            st, en = self.lists()
            return min(st[i:j]), max(en[i:j])
        if self._lists is not None:
            return self._lists[0][i], self._lists[1][j - 1]
        a, b = i, j - 1
        for m in self._built if self._built is not None else self.maps():
            outs, ins, widths = m._out, m._in, m._width
            k = bisect_right(outs, a) - 1
            if not widths[k]:
                a += ins[k] - outs[k]
            else:
                a = ins[k]
            k = bisect_right(outs, b) - 1
            w = widths[k]
            b = ins[k] + w - 1 if w else ins[k] + b - outs[k]
        return self._base_starts[a], self._base_ends[b]

    def lists(self) -> tuple[list[int], list[int]]:
        if self._lists is None:
            st, en = list(self._base_starts), list(self._base_ends)
            for m in reversed(self.maps()):
                st, en = m.apply(st, en)
            self._lists = st, en
        return self._lists

    def first_at_least(self, x: int) -> int | None:
        """The first index i of the view whose char starts at or after original offset x, i.e.
        `bisect_left(starts, x)`, through the maps without building the lists; None when this is not a plain
        monotonic chain over the identity (then use `lists`)."""
        base = self._base_starts
        if not self._monotonic or not isinstance(base, range) or base.start != 0 or base.step != 1:
            return None
        if self._lists is not None:
            return bisect_left(self._lists[0], x)
        n_in = len(base)
        y = min(max(x, 0), n_in)
        for m in reversed(self._built if self._built is not None else self.maps()):
            outs, ins, widths = m._out, m._in, m._width
            last = len(outs) - 1
            n_out = outs[last] + (1 if widths[last] else n_in - ins[last])
            # the first output whose first input index is >= y: a segment starting exactly at y, else the one
            # before if it is a 1:1 stretch still running at y, else the next segment
            k = bisect_left(ins, y)
            if k <= last and ins[k] == y:
                y = outs[k]
            else:
                p = k - 1
                if p >= 0 and not widths[p] and y < ins[p] + ((outs[p + 1] - outs[p]) if p < last else n_in - ins[p]):
                    y = outs[p] + y - ins[p]
                else:
                    y = outs[k] if k <= last else n_out
            n_in = n_out
        return y


class _OffsetSeq(Sequence[int]):
    """View.starts or View.ends over an _Offsets: an index costs a few bisections; a slice or iteration
    resolves the whole list once."""

    __slots__ = ("_offsets", "_which")

    def __init__(self, offsets: _Offsets, which: int) -> None:
        self._offsets, self._which = offsets, which

    def __len__(self) -> int:
        return self._offsets.n

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[int]: ...
    def __getitem__(self, i: int | slice) -> int | Sequence[int]:
        if isinstance(i, slice):
            return self._offsets.lists()[self._which][i]
        n = self._offsets.n
        if not -n <= i < n:
            raise IndexError("offset index out of range")
        i %= n
        return self._offsets.span(i, i + 1)[self._which]

    def __iter__(self) -> Iterator[int]:
        return iter(self._offsets.lists()[self._which])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._offsets.lists()[self._which])


def _view(text: str, offsets: _Offsets) -> View:
    return _new_view(text, _OffsetSeq(offsets, 0), _OffsetSeq(offsets, 1))


def _runs_and_singles(segments: list[tuple[int, int, int]]) -> _IndexMap:
    return _IndexMap([s[0] for s in segments], [s[1] for s in segments], [s[2] for s in segments])


def _edit_map(n_in: int, spans: list[tuple[int, int]], drop: bool) -> Callable[[], _IndexMap]:
    """The map of a post-pass over dense: each span (s, e) of the input became one char, or was dropped."""

    def build() -> _IndexMap:
        out_starts: list[int] = []
        in_starts: list[int] = []
        widths: list[int] = []
        o = prev = 0
        for s, e in spans:
            if s > prev:
                out_starts.append(o)
                in_starts.append(prev)
                widths.append(0)
                o += s - prev
            if not drop:
                out_starts.append(o)
                in_starts.append(s)
                widths.append(e - s)
                o += 1
            prev = e
        if prev < n_in or not out_starts:
            out_starts.append(o)
            in_starts.append(prev)
            widths.append(0)
        return _IndexMap(out_starts, in_starts, widths)

    return build


@dataclass(frozen=True)
class View:
    """A normalised string and, per char, the original code points behind it (end exclusive)."""

    text: str
    starts: Sequence[int]
    """starts[i]: index in the original of the first code point behind text[i]."""
    ends: Sequence[int]
    """ends[i]: index in the original just after the last code point behind text[i]."""

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Original (start, end) covering text[i:j], including any noise dropped between them. Min/max rather
        than first/last, because a segment reversed for RLO maps back in descending order. An empty range
        (i == j) is the empty span where text[i] starts (or where the last char ends)."""
        n = len(self.text)
        if not 0 <= i <= j <= n:
            raise ValueError(f"span({i}, {j}) outside a view of {n} chars")
        if i == j:
            at = self.starts[i] if i < n else (self.ends[n - 1] if n else 0)
            return at, at
        if isinstance(self.starts, _OffsetSeq):
            return self.starts._offsets.span(i, j)
        if isinstance(self.starts, range) and isinstance(self.ends, range):
            return self.starts[i], self.ends[j - 1]
        return min(self.starts[i:j]), max(self.ends[i:j])


@dataclass(frozen=True)
class Normalised:
    """What one listing looks like to the matchers, and which evasions were undone to get there."""

    original: str
    dense: View
    """For lexicon matching: folded, inserted noise removed, one space kept between Latin words/numbers."""
    light: View
    """For contacts, URLs and numbers: folded, invisible chars removed, punctuation and spaces kept."""
    signals: tuple[str, ...]
    """Evasions seen (names in `jieyao.text.tables.SIGNALS`, in that order)."""
    truncated: bool
    """The text was longer than `max_chars`; only the first `max_chars` code points were read."""


_new = object.__new__


def _new_view(text: str, starts: Sequence[int], ends: Sequence[int]) -> View:
    """`View(text, starts, ends)`, built without a frozen dataclass's `object.__setattr__` per field (two per
    listing)."""
    view = _new(View)
    view.__dict__.update(text=text, starts=starts, ends=ends)
    return view


class Normaliser:
    """Builds the fold tables once per process and normalises listings with them; safe to share between
    threads (no state changes after __init__).

    `recompose`: (left, right) -> char pairs to recompose in `dense` (拆字), normally only pairs whose char
    completes a lexicon term (see `tables.chaizi_pairs`); components are folded like the text, so raw pairs
    work. `keep_repeats`: chars whose doubling is meaningful and must not be collapsed (哈 in 哈哈 in a term).
    """

    def __init__(self, *, recompose: Mapping[tuple[str, str], str] | None = None,
                 keep_repeats: frozenset[str] = frozenset(), max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.max_chars = max_chars
        tb = self._tables = tables.fold_tables()
        fold = tb.fold
        # The chars the fold changes that survive lower(): found by one Aho-Corasick pass per listing.
        # (Lone surrogates cannot be searched by ahocorasick_rs; text holding one takes the per-char path.)
        specials = [c for c in fold if c.lower() == c and not "\ud800" <= c <= "\udfff"]
        self._special_chars = specials
        self._special_repl = [fold[c] for c in specials]
        self._special_ac = ahocorasick_rs.AhoCorasick(specials)
        self._keep = frozenset(keep_repeats) | frozenset(_fold_str(fold, c) for c in keep_repeats)
        pairs: dict[str, str] = {}
        for (left, right), char in (recompose or {}).items():
            if len(left) != 1 or len(right) != 1 or len(char) != 1:
                raise ValueError(f"recompose wants single chars, got ({left!r}, {right!r}) -> {char!r}")
            key = _fold_str(fold, left) + _fold_str(fold, right)
            if len(key) >= 2:
                pairs.setdefault(key, _fold_str(fold, char) or char)
        self._pair_chars = list(pairs.values())
        self._pairs = (ahocorasick_rs.AhoCorasick(list(pairs), matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST)
                       if pairs else None)

    def normalise(self, text: str) -> Normalised:
        """Both views and the signals for one listing. Never raises on any str (lone surrogates, controls,
        1 MB of zero-width chars); reads at most `max_chars` code points."""
        if not isinstance(text, str):
            raise TypeError(f"normalise() wants str, got {type(text).__name__}")
        truncated = len(text) > self.max_chars
        t = text[: self.max_chars] if truncated else text
        # lower() keeps the length (İ is the one char it expands, and the fold maps İ to i anyway), and folds
        # exactly like the table does (checked by the tests), so the special chars left are few.
        tl = (t.replace("\u0130", "i") if "\u0130" in t else t).lower()
        signals: set[str] = set()
        hits: list[tuple[int, int, int]] | None
        try:
            hits = None if tables.RLO in tl else self._special_ac.find_matches_as_indexes(tl)
        except UnicodeEncodeError:  # a lone surrogate
            hits = None
        n = len(tl)
        light_offsets = _Offsets(n, range(n), range(1, n + 1))
        if hits is None:
            light_text, starts, ends, was_reversed = self._light_tracked(tl)
            light_offsets = _Offsets(len(light_text), starts, ends)
            light = View(light_text, starts, ends)
            present: set[str] = set(self._tables.kind_keys.intersection(tl))
            if was_reversed:
                signals.add("reversed")
        elif not hits:
            light_text, present = tl, set()
            light = _new_view(light_text, light_offsets._base_starts, light_offsets._base_ends)
        else:
            light_text, present, splice_map = self._splice(tl, hits)
            if splice_map is None:  # one-to-one: offsets are the identity
                light = _new_view(light_text, light_offsets._base_starts, light_offsets._base_ends)
            else:
                light_offsets = light_offsets.then(len(light_text), splice_map)
                light = _view(light_text, light_offsets)
        if present:
            self._add_kind_signals(t, present, signals)

        dense_text, gap_map, noisy = _dense(light_text)
        if noisy:
            signals.add("noise")
        maps: list[_MapSource] = [] if gap_map is None else [gap_map]
        if self._pairs is not None and len(dense_text) > 1:
            dense_text, spans, before = self._recompose(dense_text)
            if spans:
                maps.append(_edit_map(before, spans, drop=False))
                signals.add("chaizi")
        dense_text, maps = _collapse_repeats(dense_text, self._keep, maps, signals)
        if " " in dense_text and _SPACED_SINGLE.search(dense_text):
            before = len(dense_text)
            dense_text, spans = _join_singles(dense_text)
            if spans:
                maps.append(_edit_map(before, spans, drop=True))
                signals.add("noise")
                dense_text, maps = _collapse_repeats(dense_text, self._keep, maps, signals)  # d d d -> ddd -> d
        dense = _view(dense_text, light_offsets.then(len(dense_text), *maps))
        out = _new(Normalised)  # Normalised(...) without a frozen dataclass's object.__setattr__ per field
        out.__dict__.update(original=text, dense=dense, light=light,
                            signals=tuple(sorted(signals, key=_SIGNAL_ORDER.__getitem__)) if signals else (),
                            truncated=truncated)
        return out

    def _add_kind_signals(self, t: str, present: set[str], signals: set[str]) -> None:
        kinds = self._tables.kinds
        seen = {kinds[c] for c in present if c in kinds}
        if "zero_width" in seen and all(c in _JOINERS for c in present if kinds.get(c) == "zero_width") \
                and not _BARE_JOINER.search(t):
            seen.discard("zero_width")
        if "lookalike" in seen and not _MIXED_CONTEXT.search(t):
            seen.discard("lookalike")
        signals |= seen

    def _splice(self, tl: str, hits: list[tuple[int, int, int]]
                ) -> tuple[str, set[str], Callable[[], _IndexMap] | None]:
        """Replace the special chars found by the automaton. Offsets stay the identity (no map) unless a char
        was dropped or expanded."""
        repl, chars = self._special_repl, self._special_chars
        pieces: list[str] = []
        pos = 0
        one_to_one = True
        present: set[str] = set()
        for idx, s, _ in hits:
            pieces.append(tl[pos:s])
            r = repl[idx]
            pieces.append(r)
            present.add(chars[idx])
            if len(r) != 1:
                one_to_one = False
            pos = s + 1
        pieces.append(tl[pos:])
        text = "".join(pieces)
        if one_to_one:
            return text, present, None

        def build() -> _IndexMap:
            segments: list[tuple[int, int, int]] = []
            o = prev = 0
            for idx, s, _ in hits:
                if s > prev:
                    segments.append((o, prev, 0))
                    o += s - prev
                for _ in repl[idx]:  # an expansion: every output char stands for the one input char
                    segments.append((o, s, 1))
                    o += 1
                prev = s + 1
            segments.append((o, prev, 0))
            return _runs_and_singles(segments)

        return text, present, build

    def _light_tracked(self, t: str) -> tuple[str, list[int], list[int], bool]:
        """The per-char fold with offsets, for text the automaton cannot take (lone surrogates) or with a
        right-to-left override, which shows the rest of its line (up to PDF) reversed: that segment is emitted
        in display order."""
        fold = self._tables.fold
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        was_reversed = False
        i, n = 0, len(t)
        while i < n:
            ch = t[i]
            if ch == tables.RLO:
                m = _RLO_END.search(t, i + 1)
                stop = m.start() if m else n
                pieces = [(p, k) for k, c in enumerate(t[i + 1:stop], i + 1) if (p := fold.get(c, c))]
                was_reversed |= len(pieces) > 1
                for piece, k in reversed(pieces):
                    out.append(piece)
                    starts.extend([k] * len(piece))
                    ends.extend([k + 1] * len(piece))
                i = stop
                continue
            piece = fold.get(ch, ch)
            if piece:
                out.append(piece)
                starts.extend([i] * len(piece))
                ends.extend([i + 1] * len(piece))
            i += 1
        return "".join(out), starts, ends, was_reversed

    def _recompose(self, text: str) -> tuple[str, list[tuple[int, int]], int]:
        """Replace adjacent components (扌奂) by the char they spell (换)."""
        assert self._pairs is not None
        matches = self._pairs.find_matches_as_indexes(text, overlapping=False)
        if not matches:
            return text, [], len(text)
        out: list[str] = []
        pos = 0
        for idx, s, e in matches:
            out.append(text[pos:s])
            out.append(self._pair_chars[idx])
            pos = e
        out.append(text[pos:])
        return "".join(out), [(s, e) for _, s, e in matches], len(text)


def _fold_str(fold: Mapping[str, str], s: str) -> str:
    return "".join(fold.get(c, c) for c in s.lower())


def _dense(light: str) -> tuple[str, Callable[[], _IndexMap] | None, bool]:
    """Drop noise runs from the light text. Between CJK chars (or a CJK char and a Latin one) noise goes;
    between Latin letters/digits it goes when it glues one token (D.F.L, d-f-l, 1,200) and becomes one space
    when it separates two words, so the matcher can still check word boundaries ("dfl" vs "udflow").
    Returns the text, the map back to light (None: nothing dropped), and whether inserted noise was seen."""
    parts = _GAP_SPLIT.split(light)
    if len(parts) == 1:
        return light, None, False
    noisy = False
    spaces: list[int] = []  # indexes in parts of the gaps kept as one space
    word = _WORD
    for i, (prev, gap, nxt) in enumerate(zip(parts[0:-1:2], parts[1::2], parts[2::2], strict=True)):
        if not prev or not nxt:
            continue  # leading or trailing noise
        a = prev[-1]
        b = nxt[0]
        if a in word:
            if b not in word:
                continue
            if gap == " ":
                spaces.append(2 * i + 1)  # the common case: two words
            elif gap in _NUMBER_PUNCT and a.isdigit() and b.isdigit():
                continue  # 1,200 and 9.9 are one number
            elif _SEP_OR_SPACE.isdisjoint(gap):
                # one token with something glued in: d.f.l, d❤f❤l, face-swap
                if not noisy and (len(prev) == 1 or prev[-2] not in word or len(nxt) == 1 or nxt[1] not in word
                                  or gap.strip(string.punctuation)):
                    noisy = True
            else:
                spaces.append(2 * i + 1)  # spaced-out single letters are joined later, see _join_singles
        elif not noisy and b not in word and gap not in _PROSE_MARKS and (
                gap.strip(_PROSE) or ((len(prev) == 1 or len(nxt) == 1) and gap.isspace())):
            noisy = True  # between two CJK chars: inserted symbols, or a char spaced out (换 脸)
    pieces = parts[0::2]
    for k in spaces:
        pieces[k // 2] += " "
    text = "".join(pieces)

    def build() -> _IndexMap:
        # One segment per part: a kept chunk is a 1:1 stretch, a kept gap one char (width = the gap), a
        # dropped gap an empty stretch that bisection never lands on.
        lens = list(map(len, parts))
        out_lens = lens.copy()
        out_lens[1::2] = [0] * (len(parts) // 2)
        widths = [0] * len(parts)
        for k in spaces:
            out_lens[k] = 1
            widths[k] = lens[k]
        lens.pop()  # the last part starts the last segment; where it ends is never needed
        out_lens.pop()
        return _IndexMap(list(accumulate(out_lens, initial=0)), list(accumulate(lens, initial=0)), widths)

    return text, build, noisy


def _join_singles(text: str) -> tuple[str, list[tuple[int, int]]]:
    """Spaced-out single letters or digits are one token: "d f l" -> "dfl", "v/x" -> "vx", "1 3 8" -> "138".
    Done on the dense text, after gluing and repeats, so that a run that only became one letter there
    ("d;dd.d" -> "d d") is joined too and dense stays a fixed point."""
    out: list[str] = []
    drops: list[tuple[int, int]] = []
    pos = 0
    for m in _SPACED_SINGLES.finditer(text):
        s, e = m.span()
        out.append(text[pos:s])
        out.append(text[s:e:2])
        drops.extend((k, k + 1) for k in range(s + 1, e, 2))
        pos = e
    if not drops:
        return text, drops
    out.append(text[pos:])
    return "".join(out), drops


def _collapse_repeats(text: str, keep: frozenset[str], maps: list[_MapSource], signals: set[str]
                      ) -> tuple[str, list[_MapSource]]:
    """换换换脸 -> 换脸 (the kept char covers the whole run). Latin letters only from three on (deepfake keeps
    its "ee"); digits never (prices, phone numbers); chars in `keep` never."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _REPEAT.finditer(text):
        s, e = m.span()
        c = text[s]
        if c in keep or c == " " or "0" <= c <= "9" or ("a" <= c <= "z" and e - s < 3):
            continue
        out.append(text[pos:s + 1])
        spans.append((s, e))
        pos = e
    if not spans:
        return text, maps
    out.append(text[pos:])
    signals.add("repeats")
    return "".join(out), [*maps, _edit_map(len(text), spans, drop=False)]
