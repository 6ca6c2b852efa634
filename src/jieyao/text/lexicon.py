"""The moderation lexicon: terms (canonical form, group, weight, which matching channels may find them) and
light-view regex patterns (prices), loaded from versioned JSON files.

Why data and not code: trust-and-safety teams add vocabulary every week (a new homophone, a new tool name) and
must not have to touch Python for it. The built-in files under `jieyao/text/data/lexicon-*.json` are merged
with the user's files; a later entry with the same term text and group replaces an earlier one, so a user file
can re-weight or switch off (`"weight": 0`) a built-in term. A bad file raises `LexiconError` naming the file
and the entry, never a bare KeyError.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

SCHEMA_ID = "jieyao.text.lexicon/1"
CHANNELS: tuple[str, ...] = ("surface", "pinyin", "initials", "glyph", "chaizi", "reversed")
"""Where a term may be found. `initials` needs an explicit `initials` entry on the term ("jd", "dfl" collide)."""

_GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]*(?::[a-z0-9_-]+)?$")
_TERM_KEYS = frozenset({"term", "canonical", "weight", "channels", "word", "initials", "masks"})
_BLOCK_KEYS = frozenset({"group", "canonical", "weight", "channels", "word", "masks", "terms", "why"})
_PATTERN_KEYS = frozenset({"id", "group", "regex", "weight", "canonical", "requires", "why"})
_GROUP_KEYS = frozenset({"weight", "channels", "why"})
_MAX_REGEX = 400
_MAX_TERM = 64


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, eq=False)
class Term:
    """One lexicon term as written in its file. Compared and hashed by identity: the hot path keys dicts on
    terms, and two entries are never the same term even when their fields agree."""

    text: str
    canonical: str
    group: str
    weight: float
    channels: frozenset[str]
    word: bool
    """Latin edges need a word boundary: "roop" must not fire inside "troop"."""
    initials: tuple[str, ...] = ()
    """Latin abbreviations matched as whole Latin tokens (换脸模型 -> "hlmx"); empty unless the file says so."""
    masks: bool = False
    """Hits of other terms that overlap this one are dropped (仙丹花 masks 仙丹, 换脸盆 masks 换脸)."""
    source: str = ""


@dataclass(frozen=True)
class Pattern:
    """A regex over the normaliser's light view (punctuation and digits kept), for things a word list cannot
    enumerate: prices ("¥199", "29.9元", "20一颗"), a clause-initial "出"."""

    id: str
    group: str
    regex: re.Pattern[str]
    weight: float
    canonical: str
    source: str = ""
    requires: str = ""
    """The regex only runs on text holding one of these chars (a cheap C-level test): most listings have no 颗."""


@dataclass(frozen=True)
class GroupInfo:
    weight: float
    channels: frozenset[str] | None
    why: str


@dataclass(frozen=True)
class Lexicon:
    terms: tuple[Term, ...]
    patterns: tuple[Pattern, ...]
    groups: Mapping[str, GroupInfo]
    versions: Mapping[str, str]
    """file name -> its "version", for reports ("which lexicon said so")."""
    channel_weights: Mapping[str, float]
    """Factor on a term's weight by the channel that found it: a pinyin or glyph match is weaker evidence."""
    glyph_max_family: int = 40
    """A phonetic component shared by more chars than this (口, 木) is too common to fold by."""

    def group_names(self) -> frozenset[str]:
        return frozenset(self.groups) | {t.group for t in self.terms} | {p.group for p in self.patterns}


def is_han(ch: str) -> bool:
    """A CJK unified ideograph (any extension block) or a compatibility ideograph."""
    cp = ord(ch)
    return (0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF
            or 0x20000 <= cp <= 0x323AF or 0x2E80 <= cp <= 0x2FDF)


def _is_latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def default_channels(text: str) -> frozenset[str]:
    """Channels a term gets unless its file says otherwise: pinyin and glyph need two or more Han chars (one
    Han char collides with hundreds of homophones), chaizi needs a Han char, reversed needs three chars of which
    two are Han."""
    han = sum(1 for c in text if is_han(c))
    out = {"surface"}
    if han >= 2:
        out |= {"pinyin", "glyph"}
    if han >= 1 and len(text) >= 2:
        out.add("chaizi")
    if han >= 2 and len([c for c in text if c.isalnum()]) >= 3:
        out.add("reversed")  # Latin reversed is English ("roop" -> "poor")
    return frozenset(out)


def builtin_paths() -> list[Traversable]:
    """The lexicon files shipped with jieyao, in name order."""
    data = resources.files("jieyao.text").joinpath("data")
    return sorted((p for p in data.iterdir() if p.name.startswith("lexicon") and p.name.endswith(".json")),
                  key=lambda p: p.name)


def _fail(source: str, where: str, msg: str) -> LexiconError:
    return LexiconError(f"{source}: {where}: {msg}" if where else f"{source}: {msg}")


def _weight(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise _fail(source, where, f"weight must be a number in [0, 1], got {value!r}")
    return float(value)


def _channels(value: Any, source: str, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise _fail(source, where, f"channels must be a list of names, got {value!r}")
    bad = [c for c in value if c not in CHANNELS]
    if bad:
        raise _fail(source, where, f"unknown channel(s) {bad}; known: {list(CHANNELS)}")
    return frozenset(value)


def _group(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not _GROUP_NAME.match(value):
        raise _fail(source, where, f"group must be a lower-case name like 'model' or 'allow-ml', got {value!r}")
    return value


def _text(value: Any, source: str, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, where, f"{what} must be a non-empty string, got {value!r}")
    if len(value) > _MAX_TERM:
        raise _fail(source, where, f"{what} is longer than {_MAX_TERM} chars")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in value):
        raise _fail(source, where, f"{what} contains control, format or surrogate chars")
    return value


def _unknown(obj: Mapping[str, Any], allowed: frozenset[str], source: str, where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise _fail(source, where, f"unknown key(s) {extra}; allowed: {sorted(allowed)}")


def source_name(path: Path | Traversable, builtin: bool) -> str:
    """How errors and reports name a file: built-in files by name, the user's by the path they gave."""
    return f"builtin:{path.name}" if builtin else str(path)


def _read(path: Path | Traversable, source: str) -> tuple[str, dict[str, Any]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LexiconError(f"{source}: cannot read: {exc}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LexiconError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise LexiconError(f"{source}: the top level must be an object")
    return source, data


def check_header(data: Mapping[str, Any], source: str, schema: str, error: type[ValueError]) -> str:
    """The "schema" and "version" every data file carries; returns the version."""
    if data.get("schema") != schema:
        raise error(f"{source}: \"schema\" must be {schema!r}, got {data.get('schema')!r}")
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise error(f"{source}: \"version\" must be a non-empty string, got {version!r}")
    return version


@dataclass
class _FileParts:
    groups: dict[str, GroupInfo]
    terms: list[Term]
    patterns: list[Pattern]
    channel_weights: dict[str, float]
    glyph_max_family: int | None


def _parse_settings(data: Mapping[str, Any], source: str) -> tuple[dict[str, float], int | None]:
    raw = data.get("channel_weights", {})
    if not isinstance(raw, dict):
        raise _fail(source, "channel_weights", "must be an object of channel -> factor")
    weights: dict[str, float] = {}
    for name, value in raw.items():
        if name not in CHANNELS:
            raise _fail(source, f"channel_weights.{name}", f"unknown channel; known: {list(CHANNELS)}")
        weights[name] = _weight(value, source, f"channel_weights.{name}")
    family = data.get("glyph_max_family")
    if family is not None and (isinstance(family, bool) or not isinstance(family, int) or family < 2):
        raise _fail(source, "glyph_max_family", f"must be an integer >= 2, got {family!r}")
    return weights, family


def _parse_groups(data: Mapping[str, Any], source: str) -> dict[str, GroupInfo]:
    raw = data.get("groups", {})
    if not isinstance(raw, dict):
        raise _fail(source, "groups", "must be an object of group name -> settings")
    out: dict[str, GroupInfo] = {}
    for name, spec in raw.items():
        where = f"groups.{name}"
        _group(name, source, where)
        if not isinstance(spec, dict):
            raise _fail(source, where, "must be an object")
        _unknown(spec, _GROUP_KEYS, source, where)
        chans = _channels(spec["channels"], source, where) if "channels" in spec else None
        out[name] = GroupInfo(_weight(spec.get("weight", 1.0), source, where), chans, str(spec.get("why", "")))
    return out


def _parse_term(entry: Any, block: Mapping[str, Any], group: str, info: GroupInfo | None, source: str,
                where: str) -> Term:
    spec: Mapping[str, Any] = {"term": entry} if isinstance(entry, str) else entry
    if not isinstance(spec, dict):
        raise _fail(source, where, f"a term is a string or an object, got {type(entry).__name__}")
    _unknown(spec, _TERM_KEYS, source, where)
    text = _text(spec.get("term"), source, where, "term")
    where = f"{where} {text!r}"
    canonical = _text(spec.get("canonical", block.get("canonical", text)), source, where, "canonical")
    default_w = info.weight if info else 1.0
    weight = _weight(spec.get("weight", block.get("weight", default_w)), source, where)
    if "channels" in spec:
        chans = _channels(spec["channels"], source, where)
    elif "channels" in block:
        chans = _channels(block["channels"], source, where)
    else:
        chans = default_channels(text)
        if info and info.channels is not None:
            chans = chans & info.channels
    raw_initials = spec.get("initials", [])
    if not isinstance(raw_initials, list) or not all(
            isinstance(i, str) and i.isascii() and i.isalpha() and 2 <= len(i) <= 12 for i in raw_initials):
        raise _fail(source, where, f"initials must be a list of 2-12 ASCII letters, got {raw_initials!r}")
    initials = tuple(i.lower() for i in raw_initials)
    if initials:
        chans = chans | {"initials"}
    latin_edge = _is_latin(text.strip()[0]) or _is_latin(text.strip()[-1])
    word = spec.get("word", block.get("word", latin_edge))
    masks = spec.get("masks", block.get("masks", False))
    if not isinstance(word, bool) or not isinstance(masks, bool):
        raise _fail(source, where, "word and masks must be true or false")
    return Term(text, canonical, group, weight, chans, word, initials, masks, source)


def _parse_terms(data: Mapping[str, Any], groups: Mapping[str, GroupInfo], source: str) -> list[Term]:
    raw = data.get("terms", [])
    if not isinstance(raw, list):
        raise _fail(source, "terms", "must be a list of blocks")
    out: list[Term] = []
    for b, block in enumerate(raw):
        where = f"terms[{b}]"
        if not isinstance(block, dict):
            raise _fail(source, where, "a block is an object with \"group\" and \"terms\"")
        _unknown(block, _BLOCK_KEYS, source, where)
        group = _group(block.get("group"), source, where)
        entries = block.get("terms")
        if not isinstance(entries, list) or not entries:
            raise _fail(source, where, "\"terms\" must be a non-empty list")
        for t, entry in enumerate(entries):
            out.append(_parse_term(entry, block, group, groups.get(group), source, f"{where}.terms[{t}]"))
    return out


def _parse_patterns(data: Mapping[str, Any], groups: Mapping[str, GroupInfo], source: str) -> list[Pattern]:
    raw = data.get("patterns", [])
    if not isinstance(raw, list):
        raise _fail(source, "patterns", "must be a list")
    out: list[Pattern] = []
    for k, spec in enumerate(raw):
        where = f"patterns[{k}]"
        if not isinstance(spec, dict):
            raise _fail(source, where, "must be an object")
        _unknown(spec, _PATTERN_KEYS, source, where)
        pid = _text(spec.get("id"), source, where, "id")
        where = f"{where} {pid!r}"
        group = _group(spec.get("group"), source, where)
        regex = spec.get("regex")
        if not isinstance(regex, str) or not regex or len(regex) > _MAX_REGEX:
            raise _fail(source, where, f"regex must be a non-empty string of at most {_MAX_REGEX} chars")
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            raise _fail(source, where, f"bad regex: {exc}") from None
        if compiled.match(""):
            raise _fail(source, where, "regex matches the empty string")
        info = groups.get(group)
        weight = _weight(spec.get("weight", info.weight if info else 1.0), source, where)
        canonical = str(spec.get("canonical", pid))
        requires = spec.get("requires", "")
        if not isinstance(requires, str):
            raise _fail(source, where, "requires must be a string of chars")
        out.append(Pattern(pid, group, compiled, weight, canonical, source, requires))
    return out


def parse_lexicon_file(path: Path | Traversable, known_groups: Mapping[str, GroupInfo] | None = None, *,
                       builtin: bool = False) -> tuple[str, str, _FileParts]:
    """One file -> (source name, version, its groups, terms and patterns). Groups declared in earlier files
    give their defaults (weight, channels) to terms of later files."""
    source, data = _read(path, source_name(path, builtin))
    version = check_header(data, source, SCHEMA_ID, LexiconError)
    _unknown(data, frozenset({"schema", "version", "groups", "terms", "patterns", "channel_weights",
                              "glyph_max_family", "why"}), source, "")
    groups = dict(known_groups or {})
    own = _parse_groups(data, source)
    groups.update(own)
    weights, family = _parse_settings(data, source)
    return source, version, _FileParts(own, _parse_terms(data, groups, source), _parse_patterns(data, groups, source),
                                       weights, family)


def load_lexicon(paths: Iterable[str | Path] = (), *, include_builtin: bool = True) -> Lexicon:
    """The built-in lexicon (unless `include_builtin` is false) merged with the user's files, in order.
    A later term with the same text (case-folded) and group replaces the earlier one; weight 0 removes it."""
    files: list[tuple[Path | Traversable, bool]] = [(p, True) for p in builtin_paths()] if include_builtin else []
    files += [(Path(p), False) for p in paths]
    groups: dict[str, GroupInfo] = {}
    terms: dict[tuple[str, str], Term] = {}
    patterns: dict[str, Pattern] = {}
    versions: dict[str, str] = {}
    channel_weights = dict.fromkeys(CHANNELS, 1.0)
    family = 40
    for path, builtin in files:
        source, version, parts = parse_lexicon_file(path, groups, builtin=builtin)
        versions[source] = version
        groups.update(parts.groups)
        channel_weights.update(parts.channel_weights)
        family = parts.glyph_max_family or family
        for term in parts.terms:
            key = (unicodedata.normalize("NFKC", term.text).casefold(), term.group)
            terms.pop(key, None)  # re-insert so the later file's order wins too
            terms[key] = term
        for pattern in parts.patterns:
            patterns.pop(pattern.id, None)
            patterns[pattern.id] = pattern
    live_terms = tuple(t for t in terms.values() if t.weight > 0)
    live_patterns = tuple(p for p in patterns.values() if p.weight > 0)
    return Lexicon(live_terms, live_patterns, groups, versions, channel_weights, family)
