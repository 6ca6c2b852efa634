"""What listing moderation returns, in the shape commercial moderation APIs use (a decision, labels, a
score, the hit terms with their positions, extracted contacts), plus which rules fired and which evasions
were seen. Offsets are code-point indexes into the *original* text, end exclusive, so an analyst's tool
can highlight them without re-normalising anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jieyao.model import Decision

SCHEMA_ID = "jieyao.moderate/1"
_new = object.__new__


@dataclass(frozen=True)
class Hit:
    """One lexicon term found in the text."""

    term: str
    """The original text of the span, as the seller wrote it (e.g. "Ａ Ｉ 金 丹", "jin dan")."""
    canonical: str
    """The lexicon's canonical form (e.g. "AI金丹")."""
    group: str
    """Lexicon group: model, tool, faceswap, service, tutorial, sale, price, delivery, contact, allow-ml, ..."""
    channel: str
    """How it was found: surface, pinyin, initials, glyph, chaizi, reversed, or pattern (a lexicon regex:
    prices, handles)."""
    start: int
    end: int
    weight: float = 1.0
    source: dict[str, Any] | None = field(default=None, compare=False)
    """Where a hit read from a listing image was: {"image", "name", "kind" (ocr | qr), "line", "box"}; None for
    the listing's own text."""

    def to_dict(self) -> dict[str, Any]:
        out = {"term": self.term, "canonical": self.canonical, "group": self.group, "channel": self.channel,
               "start": self.start, "end": self.end, "weight": round(self.weight, 3)}
        if self.source is not None:
            out["source"] = self.source
        return out

    @staticmethod
    def fast(term: str, canonical: str, group: str, channel: str, start: int, end: int, weight: float) -> Hit:
        """The same object as `Hit(...)`, built without the frozen dataclass's one `object.__setattr__` per
        field (the moderator builds a few per listing)."""
        hit = _new(Hit)
        hit.__dict__.update(term=term, canonical=canonical, group=group, channel=channel, start=start, end=end,
                            weight=weight, source=None)
        return hit


@dataclass(frozen=True)
class Contact:
    """A way to reach the seller or fetch the goods: phone, qq, qq_group, wechat, telegram, email, url,
    cloud_drive (with `provider` and the extraction `code` when one is given)."""

    type: str
    value: str
    """Normalised value: digits of a phone/QQ, the WeChat id, the URL as written (lower-cased host)."""
    start: int
    end: int
    provider: str | None = None
    code: str | None = None
    obfuscated: bool = False
    """The contact was written to dodge filters (v信, 薇信, ➕V, full-width digits, spaced digits ...)."""
    source: dict[str, Any] | None = field(default=None, compare=False)
    """As `Hit.source`: the image, line and box a contact was read from (a QR code's payload included)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "value": self.value, "start": self.start, "end": self.end}
        if self.provider:
            out["provider"] = self.provider
        if self.code:
            out["code"] = self.code
        if self.obfuscated:
            out["obfuscated"] = True
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True)
class RuleFired:
    id: str
    decision: Decision
    label: str | None
    why: str
    """What the rule means, and which terms satisfied it, in words."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decision": self.decision.value, "label": self.label, "why": self.why}


@dataclass
class ModerationResult:
    id: str | None
    decision: Decision
    labels: tuple[str, ...] = ()
    score: float = 0.0
    hits: tuple[Hit, ...] = ()
    contacts: tuple[Contact, ...] = ()
    rules: tuple[RuleFired, ...] = ()
    evasion: tuple[str, ...] = ()
    """Normalisations that changed the text in a way sellers use to dodge filters (zero_width, bidi_override,
    fullwidth, styled_letters, lookalike, traditional, noise, repeats, chaizi, reversed, enclosed_digits), and
    the channels and contacts that needed one (pinyin, initials, glyph, contact_obfuscation)."""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "decision": self.decision.value, "labels": list(self.labels),
            "score": round(self.score, 4), "hits": [h.to_dict() for h in self.hits],
            "contacts": [c.to_dict() for c in self.contacts], "rules": [r.to_dict() for r in self.rules],
            "evasion": list(self.evasion),
        }
        if self.error:
            out["error"] = self.error
        out.update(self.extra)
        return out
