"""Listing moderation: find sales of face-swap models, software, services and tutorials in evasive Chinese
and English marketplace text, explained (hits with original offsets, contacts, the rules that fired).

    from jieyao.text import moderate
    moderate("出售AI金丹，网盘秒发").decision   # Decision.BLOCK
"""

from __future__ import annotations

from jieyao.text.engine import Moderator, moderate, moderate_listing
from jieyao.text.lexicon import Lexicon, LexiconError, load_lexicon
from jieyao.text.result import Contact, Hit, ModerationResult, RuleFired
from jieyao.text.rules import RulesError, load_rules

__all__ = [
    "Contact", "Hit", "Lexicon", "LexiconError", "ModerationResult", "Moderator", "RuleFired", "RulesError",
    "load_lexicon", "load_rules", "moderate", "moderate_listing",
]
