"""The listing moderator: one normalisation, the lexicon channels, light-view patterns and contact extraction,
then the co-occurrence rules, into one explainable `ModerationResult`.

Why one object: everything costly (fold, pinyin and component tables, the automata, the compiled rules) is
built once in `Moderator.__init__` and then shared read-only, so a process pays for it once. Listings without a
term any rule is anchored on (most of real traffic) skip the pattern search and the rules. `moderate()` never
raises: a bug or a hostile input that gets through returns decision `review` with `error` set, never a silent
pass.

Score: the score of the strongest firing rule, which is the noisy-OR of the weights of the hits it used
(`jieyao.text.rules`); 0 when the decision is pass. A hit's weight is its term's weight times its channel's
factor (`channel_weights` in the lexicon: surface 1, chaizi 0.9, glyph 0.75, pinyin 0.7, reversed 0.65,
initials 0.6), so "金丹 出售" scores 1 - (1 - 0.6)(1 - 0.6) = 0.84 (rule dan-sale) and "金蛋 出售 dfl"
1 - (1 - 0.42)(1 - 0.85)(1 - 0.6) = 0.965 (rule model-dan-sale; 金蛋 is 金丹 by pinyin, 0.6 * 0.7).
"""

from __future__ import annotations

import bisect
import functools
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick_rs

from jieyao.model import Decision
from jieyao.text.channels import Channels, Match
from jieyao.text.contacts import extract_contacts
from jieyao.text.lexicon import Lexicon, Pattern, Term, load_lexicon
from jieyao.text.normalise import DEFAULT_MAX_CHARS, Normalised, _OffsetSeq
from jieyao.text.result import SCHEMA_ID, Contact, Hit, ModerationResult, RuleFired
from jieyao.text.rules import Evidence, Firing, RuleSet, check_groups, load_rules

FIELD_SEPARATOR = "\n\n"
"""Between the fields of a listing (title, description). Hits and contacts that would cross it are dropped."""
_MAX_PATTERN_HITS = 200
_HANDLE_TYPES = frozenset({"wechat", "qq", "qq_group", "telegram", "phone", "email"})
_CHANNEL_SIGNALS = ("pinyin", "initials", "glyph", "chaizi", "reversed")


@dataclass(frozen=True)
class _PatternTerm:
    """A light-view regex dressed as a lexicon term, so pattern hits flow through the same code."""

    pattern: Pattern
    term: Term


class _DenseIndex:
    """Dense indexes <-> original offsets for one listing. A span is answered through the listing's offset maps
    (a few bisections, no list built); original -> dense (contacts and prices placed in dense coordinates)
    needs the whole offset list, built once on first use. The lists are sorted except where an RLO segment
    was turned around; then spans go through `View.span` and original -> dense goes through an inverse
    table."""

    __slots__ = ("_inverse", "_len_original", "_n", "_offsets", "_reversed", "_starts", "_view")

    def __init__(self, norm: Normalised) -> None:
        self._view = norm.dense
        self._n = len(norm.dense.text)
        self._len_original = len(norm.original)
        signals = norm.signals
        self._reversed = "reversed" in signals or "bidi_override" in signals
        seq = norm.dense.starts
        self._offsets = seq._offsets if isinstance(seq, _OffsetSeq) and not self._reversed else None
        self._starts: list[int] | None = None
        self._inverse: list[int] | None = None

    def _starts_list(self) -> list[int]:
        if self._starts is None:
            if self._offsets is not None:
                self._starts = self._offsets.lists()[0]
            else:
                self._starts = list(self._view.starts[:])
        return self._starts

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Original (start, end) of dense[i:j]."""
        if self._offsets is not None:
            return self._offsets.span(i, j)
        return self._view.span(i, j)

    def range(self, start: int, end: int) -> tuple[int, int]:
        """Dense [i, j) covering the original [start, end) (at least one char when the view is not empty)."""
        if self._n == 0:
            return 0, 0
        offsets = self._offsets
        if offsets is not None:
            i = offsets.first_at_least(start)
            if i is not None:
                j = offsets.first_at_least(end)
                assert j is not None
                i = min(i, self._n - 1)
                return i, max(j, i + 1)
        starts = self._starts_list()
        if self._reversed:
            inv = self._inverse_table(starts)
            cut = min(max(start, 0), len(inv) - 1)
            ks = [inv[o] for o in range(cut, min(max(end, cut + 1), len(inv)))] or [inv[cut]]
            i, j = min(ks), max(ks) + 1
        else:
            i = bisect.bisect_left(starts, start)
            j = bisect.bisect_left(starts, end)
        i = min(i, self._n - 1)
        return i, max(j, i + 1)

    def _inverse_table(self, starts: list[int]) -> list[int]:
        if self._inverse is None:
            inv = [-1] * (self._len_original + 1)
            for k, s in enumerate(starts):
                if 0 <= s < len(inv) and (inv[s] < 0 or k < inv[s]):
                    inv[s] = k
            nxt = self._n
            for o in range(len(inv) - 1, -1, -1):  # an offset with no dense char maps to the next one that has
                if inv[o] < 0:
                    inv[o] = nxt
                else:
                    nxt = inv[o]
            self._inverse = inv
        return self._inverse


class Moderator:
    """Moderates listings with the built-in lexicon and rules plus the user's files.

    `lexicon_paths`, `rules_paths`: extra JSON files (same schema as `jieyao/text/data/`), applied after the
    built-in ones; `include_builtin=False` uses only the given files. Raises `LexiconError` / `RulesError` for
    bad files (naming file and entry), once, here; `moderate()` itself never raises.
    """

    def __init__(self, lexicon_paths: Iterable[str | Path] = (), rules_paths: Iterable[str | Path] = (), *,
                 include_builtin: bool = True, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        t0 = time.perf_counter()
        self.lexicon: Lexicon = load_lexicon(lexicon_paths, include_builtin=include_builtin)
        self.rules: RuleSet = load_rules(rules_paths, include_builtin=include_builtin)
        check_groups(self.rules, self.lexicon.group_names())
        self.channels = Channels(self.lexicon, max_chars=max_chars)
        self.max_chars = max_chars
        self._patterns = tuple(
            _PatternTerm(p, Term(p.id, p.canonical, p.group, p.weight, frozenset({"surface"}), False, (), False,
                                 p.source))
            for p in self.lexicon.patterns)
        self._requires = tuple(frozenset(p.requires) for p in self.lexicon.patterns)
        required = sorted(frozenset().union(*self._requires))
        # one automaton pass tells which of the chars some pattern requires the listing holds (a char the
        # automaton cannot take, a lone surrogate, sends every listing to frozenset(text) instead)
        self._required_ac = (ahocorasick_rs.AhoCorasick(required)
                             if required and not any("\ud800" <= c <= "\udfff" for c in required) else None)
        # groups only terms produce: a rule anchored on them cannot fire on a listing without such a hit
        pattern_groups = {p.group for p in self.lexicon.patterns} | {"contact", "delivery"}
        self._anchors = self.rules.anchors({t.group for t in self.lexicon.terms} - pattern_groups)
        self.build_seconds = time.perf_counter() - t0
        """How long this constructor took (fold tables included when this process had not built them yet)."""

    @property
    def versions(self) -> dict[str, str]:
        """Every data file in use -> its version."""
        return {**self.lexicon.versions, **self.rules.versions}

    # ------------------------------------------------------------------------------------------------ API

    def moderate(self, text: str, id: str | None = None) -> ModerationResult:
        """One listing -> decision, labels, score, hits (original offsets), contacts, rules fired, evasions."""
        if not isinstance(text, str):
            return ModerationResult(id, Decision.REVIEW, error=f"text must be str, got {type(text).__name__}")
        try:
            return self._moderate(text, id, ())
        except Exception as exc:  # never a silent pass, never a crash in a batch job
            return ModerationResult(id, Decision.REVIEW, error=f"moderation failed: {type(exc).__name__}: {exc}")

    def moderate_listing(self, fields: Mapping[str, str], id: str | None = None) -> ModerationResult:
        """A listing made of fields (title, description, ...): they are joined with FIELD_SEPARATOR, matches
        that would cross a field boundary are dropped, and offsets are into the joined text;
        `extra["fields"]` gives each field's [start, end) in it and `extra["hit_fields"]` each hit's field."""
        try:
            names = [str(k) for k in fields]
            values = [v if isinstance(v, str) else "" for v in fields.values()]
        except Exception as exc:
            return ModerationResult(id, Decision.REVIEW, error=f"bad fields: {type(exc).__name__}: {exc}")
        bounds: list[tuple[str, int, int]] = []
        pos = 0
        for name, value in zip(names, values, strict=True):
            bounds.append((name, pos, pos + len(value)))
            pos += len(value) + len(FIELD_SEPARATOR)
        joined = FIELD_SEPARATOR.join(values)
        try:
            result = self._moderate(joined, id, tuple((s, e) for _, s, e in bounds))
        except Exception as exc:
            return ModerationResult(id, Decision.REVIEW, error=f"moderation failed: {type(exc).__name__}: {exc}")
        result.extra["fields"] = {name: {"start": s, "end": e} for name, s, e in bounds}
        result.extra["hit_fields"] = [_field_of(h.start, bounds) for h in result.hits]
        return result

    # ------------------------------------------------------------------------------------------- pipeline

    def _moderate(self, text: str, id: str | None, fields: Sequence[tuple[int, int]]) -> ModerationResult:
        norm = self.channels.normaliser.normalise(text)
        index = _DenseIndex(norm)
        matches = self.channels.match(norm)
        # fast path: no term any rule is anchored on, so no rule can fire; prices and the like are context
        # and are only looked for when there is something for them to be context of, and no evidence is built
        anchors = self._anchors
        quiet = anchors is not None and anchors.isdisjoint([m[0].group for m in matches])
        if not quiet:
            matches += self._pattern_matches(norm, index)
        matches = _outermost(matches)
        contacts = extract_contacts(norm)
        span = index._offsets.span if index._offsets is not None else index.span  # the wrapper, unwrapped
        new_hit = Hit.fast
        span_of: dict[tuple[int, int], tuple[int, int]] = {}
        spans: list[tuple[Match, tuple[int, int]]] = []
        for m in matches:
            key = (m.start, m.end)
            sp = span_of.get(key)
            if sp is None:
                sp = span_of[key] = span(m.start, m.end)
            spans.append((m, sp))
        if fields:
            spans = [(m, sp) for m, sp in spans if _within_one(sp, fields)]
            contacts = [c for c in contacts if _within_one((c.start, c.end), fields)]
        # a term inside a handle ("dan_yao01", "hl_teach") is the seller's name, not an offer
        if contacts:
            handles = [(c.start, c.end) for c in contacts if c.type in _HANDLE_TYPES]
            if handles:
                spans = [(m, sp) for m, sp in spans if not any(a <= sp[0] and sp[1] <= b for a, b in handles)]
        if len(spans) > 1:
            spans.sort(key=_by_span)
        hits = [new_hit(text[s:e], m.term.canonical, m.term.group, m.channel, s, e, m.weight) for m, (s, e) in spans]
        if quiet:
            return self._result(id, norm, hits, contacts, [])
        evidence = [Evidence(m.term.group, m.start, m.end, m.weight, hit)
                    for (m, _), hit in zip(spans, hits, strict=True)]
        for c in contacts:
            evidence.extend(_contact_evidence(c, index))
        # evasions the normaliser undid are evidence too: ordinary sellers do not hide words from filters
        evidence.extend(Evidence(f"signal:{s}", 0, 0, 0.5, s) for s in norm.signals)
        return self._result(id, norm, hits, contacts, self.rules.evaluate(evidence))

    def _required_in(self, text: str) -> frozenset[str]:
        """The chars of the text that some pattern requires (all of the text's chars when no automaton can
        read it)."""
        ac = self._required_ac
        if ac is None:
            return frozenset(text)
        try:
            found = ac.find_matches_as_indexes(text)
        except UnicodeEncodeError:  # a lone surrogate
            return frozenset(text)
        return frozenset(text[s] for _, s, _ in found)

    def _pattern_matches(self, norm: Normalised, index: _DenseIndex) -> list[Match]:
        light = norm.light
        text = light.text
        chars = self._required_in(text)
        out: list[Match] = []
        for pt, requires in zip(self._patterns, self._requires, strict=True):
            p = pt.pattern
            if requires and requires.isdisjoint(chars):
                continue
            for k, m in enumerate(p.regex.finditer(text)):
                if k >= _MAX_PATTERN_HITS:
                    break
                if m.end() <= m.start():
                    continue
                s, e = light.span(m.start(), m.end())
                i, j = index.range(s, e)
                out.append(Match(pt.term, i, j, "pattern", p.weight))
        return out

    def _result(self, id: str | None, norm: Normalised, hits: list[Hit], contacts: Sequence[Contact],
                firings: list[Firing]) -> ModerationResult:
        if firings:
            top_rank = max(f.rule.rank for f in firings)
            top = [f for f in firings if f.rule.rank == top_rank]
            decision = top[0].rule.decision
            labels = tuple(dict.fromkeys(f.rule.label for f in top if f.rule.label))
            score = max(f.score for f in top) if top_rank > 0 else 0.0
            ordered = sorted(firings, key=lambda f: -f.rule.rank)
            rules = tuple(RuleFired(f.rule.id, f.rule.decision, f.rule.label, _why(f)) for f in ordered)
        else:
            decision, labels, score, rules = Decision.PASS, (), 0.0, ()
        signals = list(norm.signals)
        if hits:
            used = {h.channel for h in hits if not h.group.startswith("allow-")}
            used.discard("surface")
            if used:
                signals += [ch for ch in _CHANNEL_SIGNALS if ch in used and ch not in signals]
        if contacts and "contact_obfuscation" not in signals and any(c.obfuscated for c in contacts):
            signals.append("contact_obfuscation")
        extra: dict[str, object] = {}
        if norm.truncated:
            extra["truncated"] = True
            extra["note"] = (f"only the first {self.max_chars} characters were read; "
                             f"the remaining {len(norm.original) - self.max_chars} were not moderated")
        return ModerationResult(id, decision, labels, score, tuple(hits), tuple(contacts), rules, tuple(signals),
                                extra=extra)


def _by_span(item: tuple[Match, tuple[int, int]]) -> tuple[int, int]:
    """Hits in text order, the longer of two that start together first."""
    s, e = item[1]
    return s, -e


def _outermost(matches: list[Match]) -> list[Match]:
    """Drop a hit inside a longer hit of the same group that weighs at least as much: 网盘秒发 says it all, 网盘
    and 秒发 inside it would only count the same evidence twice (and fill the report). One sweep per group."""
    if len(matches) < 2:
        return matches
    by_group: dict[str, list[Match]] = {}
    for m in matches:
        by_group.setdefault(m.term.group, []).append(m)
    if len(by_group) == len(matches):
        return matches  # one hit per group: nothing to drop, and the order stays
    out: list[Match] = []
    for group in by_group.values():
        if len(group) == 1:
            out.extend(group)
            continue
        group.sort(key=lambda m: (m.start, -m.end, -m.weight))
        cover: Match | None = None
        for m in group:
            if (cover is not None and cover.end >= m.end and cover.end - cover.start > m.end - m.start
                    and cover.weight >= m.weight):
                continue
            out.append(m)
            if cover is None or m.end > cover.end:
                cover = m
    return out


def _name(item: object) -> str:
    """How `why` names one piece of evidence."""
    if isinstance(item, Contact):
        return f"{item.type} contact {item.value!r}" if item.value else f"{item.type} contact"
    if not isinstance(item, Hit):
        return f"evasion {item}"
    # the term without control and format chars (none in a printable string), spaces collapsed
    term = item.term if item.term.isprintable() else "".join(
        c for c in item.term if unicodedata.category(c)[0] != "C")
    seen = " ".join(term.split())
    if len(seen) > 40:
        seen = seen[:37] + "..."
    if item.channel == "pattern":
        return f"'{seen}' ({item.canonical})"
    via = "" if item.channel == "surface" else f" ({item.channel})"
    if seen.casefold() == item.canonical.casefold():
        return f"'{seen}'{via}"
    return f"'{seen}' = {item.canonical}{via}"


def _contact_evidence(c: Contact, index: _DenseIndex) -> list[Evidence]:
    i, j = index.range(c.start, c.end)
    weight = 0.7 if c.obfuscated else 0.6
    groups = [f"contact:{c.type}"]
    if c.type == "cloud_drive":
        groups.append("delivery")
    elif c.type != "url":
        groups.append("contact")
    return [Evidence(g, i, j, weight, c) for g in groups]


def _why(f: Firing) -> str:
    seen = ", ".join(dict.fromkeys(_name(e.item) for e in f.evidence))
    return f"{f.rule.why}: {seen} (score {f.score:.2f})"


def _within_one(span: tuple[int, int], fields: Sequence[tuple[int, int]]) -> bool:
    s, e = span
    return any(a <= s and e <= b for a, b in fields)


def _field_of(pos: int, bounds: Sequence[tuple[str, int, int]]) -> str | None:
    for name, s, e in bounds:
        if s <= pos < e:
            return name
    return None


@functools.lru_cache(maxsize=1)
def default_moderator() -> Moderator:
    """The built-in lexicon and rules, built on first use and kept for the process."""
    return Moderator()


def moderate(text: str, id: str | None = None) -> ModerationResult:
    """Moderate one listing with the default Moderator."""
    return default_moderator().moderate(text, id)


def moderate_listing(fields: Mapping[str, str], id: str | None = None) -> ModerationResult:
    """Moderate a listing given as fields (title, description, ...) with the default Moderator."""
    return default_moderator().moderate_listing(fields, id)


__all__ = ["FIELD_SEPARATOR", "SCHEMA_ID", "Moderator", "default_moderator", "moderate", "moderate_listing"]
