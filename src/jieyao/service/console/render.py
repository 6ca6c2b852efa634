"""Turning a case's stored JSON into what the templates show: the listing text cut into highlighted
segments, the findings of a file, and a few short formats. Pure functions: no request, no database.

Everything here comes from scanned files and sellers' listings, so nothing is trusted: types are checked,
offsets are clamped, counts and lengths are bounded, and the templates escape every string (autoescape)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

MAX_TEXT = 100_000
"""Characters of a listing shown (a longer text is cut, with a note); offsets past it are dropped."""
MAX_SPANS = 2_000
"""Hits plus contacts highlighted; more is not a listing a person reads."""
MAX_FINDINGS = 500
MAX_EVIDENCE = 50
MAX_FACTS = 100
MAX_FACT_CHARS = 500

KIND_CLASS = {"hit": "hl-hit", "evasion": "hl-evasion", "pattern": "hl-pattern", "contact": "hl-contact"}
"""CSS class per highlight kind (fixed names: nothing from the input reaches a class attribute)."""
LEGEND = (("hit", "lexicon term, as written"),
          ("evasion", "lexicon term found through an evasion (pinyin, initials, lookalikes, split glyphs ...)"),
          ("pattern", "pattern (price, handle ...)"),
          ("contact", "contact (WeChat, QQ, phone, URL, cloud drive ...)"),
          ("overlap", "more than one of these at once"))


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    """hit | evasion | pattern | contact"""
    why: str


@dataclass
class Segment:
    """A run of the text covered by the same spans (none: plain text)."""

    text: str
    kinds: tuple[str, ...] = ()
    why: tuple[str, ...] = ()

    @property
    def css(self) -> str:
        if not self.kinds:
            return ""
        classes = ["hl", *sorted({KIND_CLASS[k] for k in self.kinds})]
        if len(self.kinds) > 1:
            classes.append("hl-overlap")
        return " ".join(classes)

    @property
    def title(self) -> str:
        return "; ".join(self.why)


@dataclass
class Highlighted:
    segments: list[Segment] = field(default_factory=list)
    truncated: bool = False
    dropped: int = 0
    """Spans that could not be shown (bad offsets, past the shown text, over MAX_SPANS)."""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any, limit: int = 200) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _dicts(value: Any, limit: int) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [v for v in value[:limit] if isinstance(v, dict)]


def hit_kind(channel: str) -> str:
    if channel == "surface":
        return "hit"
    return "pattern" if channel == "pattern" else "evasion"


def hit_why(hit: dict[str, Any]) -> str:
    group = _str(hit.get("group")) or "term"
    text = f"{group}: “{_str(hit.get('term'))}”"
    canonical = _str(hit.get("canonical"))
    if canonical and canonical != hit.get("term"):
        text += f" → {canonical}"
    return text + f" (found by {_str(hit.get('channel')) or '?'})"


def contact_why(contact: dict[str, Any]) -> str:
    text = f"contact: {_str(contact.get('type')) or '?'} {_str(contact.get('value'))}".rstrip()
    if contact.get("provider"):
        text += f" on {_str(contact.get('provider'))}"
    if contact.get("code"):
        text += f" (code {_str(contact.get('code'))})"
    if contact.get("obfuscated"):
        text += " (obfuscated)"
    return text


def spans_of(result: dict[str, Any]) -> list[Span | None]:
    """Every hit and contact as a Span (None where its offsets are not integers), hits first."""
    out: list[Span | None] = []
    for hit in _dicts(result.get("hits"), MAX_SPANS):
        start, end = _int(hit.get("start")), _int(hit.get("end"))
        out.append(None if start is None or end is None else
                   Span(start, end, hit_kind(_str(hit.get("channel"))), hit_why(hit)))
    for contact in _dicts(result.get("contacts"), MAX_SPANS):
        start, end = _int(contact.get("start")), _int(contact.get("end"))
        out.append(None if start is None or end is None else Span(start, end, "contact", contact_why(contact)))
    return out


def highlight(text: str, spans: list[Span | None]) -> Highlighted:
    """Cut `text` at every span boundary; each piece knows which spans cover it, so overlapping and nested
    spans render as adjacent marks, never as broken nesting. Offsets are code points into the original."""
    shown = text[:MAX_TEXT]
    out = Highlighted(truncated=len(text) > len(shown))
    usable: list[Span] = []
    for span in spans:
        if span is None or len(usable) >= MAX_SPANS:
            out.dropped += 1
            continue
        start, end = max(0, span.start), min(span.end, len(shown))
        if start >= end:
            out.dropped += 1
            continue
        usable.append(Span(start, end, span.kind, span.why))
    cuts = sorted({0, len(shown)} | {s.start for s in usable} | {s.end for s in usable})
    starting: dict[int, list[int]] = {}
    for i, s in enumerate(usable):
        starting.setdefault(s.start, []).append(i)
    active: set[int] = set()
    for a, b in pairwise(cuts):
        active = {i for i in active if usable[i].end > a} | set(starting.get(a, ()))
        covering = [usable[i] for i in sorted(active)]
        out.segments.append(Segment(shown[a:b], tuple(s.kind for s in covering), tuple(s.why for s in covering)))
    return out


@dataclass
class ListingView:
    text: Highlighted
    labels: list[str]
    score: Any
    rules: list[dict[str, str]]
    evasion: list[str]
    hits: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    error: str


def listing_view(target: dict[str, Any], result: dict[str, Any]) -> ListingView:
    text = target.get("text")
    text = text if isinstance(text, str) else ""
    rules = [{"id": _str(r.get("id")), "decision": _str(r.get("decision")), "label": _str(r.get("label")),
              "why": _str(r.get("why"), 2000)} for r in _dicts(result.get("rules"), 200)]
    hits = [{k: _str(h.get(k)) for k in ("term", "canonical", "group", "channel", "start", "end")}
            | {"kind": hit_kind(_str(h.get("channel")))} for h in _dicts(result.get("hits"), MAX_SPANS)]
    contacts = [{k: _str(c.get(k)) for k in ("type", "value", "provider", "code", "start", "end")}
                | {"obfuscated": bool(c.get("obfuscated"))} for c in _dicts(result.get("contacts"), MAX_SPANS)]
    labels = result.get("labels")
    evasion = result.get("evasion")
    return ListingView(
        text=highlight(text, spans_of(result)),
        labels=[_str(x) for x in labels[:50]] if isinstance(labels, list) else [],
        score=result.get("score"), rules=rules,
        evasion=[_str(x) for x in evasion[:50]] if isinstance(evasion, list) else [],
        hits=hits, contacts=contacts, error=_str(result.get("error"), 2000))


@dataclass
class FindingView:
    member: str
    rule: str
    family: str
    category: str
    decision: str
    confidence: str
    sha256: str
    evidence: list[str]
    facts: list[tuple[str, str]]


def fact_text(value: Any) -> str:
    return _str(value, MAX_FACT_CHARS)


def finding_view(f: dict[str, Any]) -> FindingView:
    evidence = f.get("evidence")
    facts = f.get("facts")
    confidence = f.get("confidence")
    return FindingView(
        member=_str(f.get("member"), 1000), rule=_str(f.get("rule")), family=_str(f.get("family")),
        category=_str(f.get("category")), decision=_str(f.get("decision")),
        confidence=f"{confidence:.2f}" if isinstance(confidence, int | float) else _str(confidence),
        sha256=_str(f.get("sha256"), 64),
        evidence=[_str(e, 2000) for e in evidence[:MAX_EVIDENCE]] if isinstance(evidence, list) else [],
        facts=[(_str(k, 100), fact_text(v)) for k, v in list(facts.items())[:MAX_FACTS]]
        if isinstance(facts, dict) else [])


def findings_of(result: dict[str, Any]) -> list[FindingView]:
    """The findings of a file case's result (one target's verdict JSON, or a whole report's targets)."""
    found = _dicts(result.get("findings"), MAX_FINDINGS)
    for target in _dicts(result.get("targets"), MAX_FINDINGS):
        found += _dicts(target.get("findings"), MAX_FINDINGS)
    return [finding_view(f) for f in found[:MAX_FINDINGS]]


IDENTITY_FIELDS = ("name", "path", "sha256", "md5", "size", "pdq", "id")


def identity_rows(target: dict[str, Any]) -> list[tuple[str, str]]:
    """The target's identity, the known fields first, for a small definition list."""
    rows = [(k, fact_text(target[k])) for k in IDENTITY_FIELDS if k in target and k != "text"]
    rows += [(_str(k, 100), fact_text(v)) for k, v in list(target.items())[:50]
             if k not in IDENTITY_FIELDS and k != "text"]
    return rows


def file_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The verdict's own lines (format, error, skipped, members ...) that a reviewer may need."""
    keys = ("format", "error", "skipped", "members", "bytes_read", "bytes_extracted")
    return [(k, fact_text(result[k])) for k in keys if result.get(k) not in (None, "")]


def flat(mapping: Any, limit: int = 100) -> list[tuple[str, str]]:
    if not isinstance(mapping, dict):
        return []
    return [(_str(k, 100), fact_text(v)) for k, v in list(mapping.items())[:limit]]


def age(seconds: Any) -> str:
    """3 s, 5 min, 2 h, 4 d: how long a case has waited."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return "?"
    s = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit}"
    return f"{s} s"


def score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else _str(value)


def subject_text(case: dict[str, Any]) -> str:
    return _str(case.get("subject"), 200)
