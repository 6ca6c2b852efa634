"""Recognise face-swap software builds, app source trees and DeepFaceLab workspaces from a layout: the paths
listed in a folder or in an archive's listing. No file is opened, so a 7z whose payloads are encrypted but whose
listing is visible is recognised all the same.

Rules are data (`rules/layouts*.json`, schema `jieyao.layouts/1`): markers are paths relative to a root, the
folder where a build or tree starts, which may sit anywhere in the listing (a renamed top folder, none at all,
or a build inside a bigger archive). Each listed path is looked up once, by its name or its extension, in an
index compiled from every rule, and each hit names the root it implies; regular expressions run only on the
few names an extension already selected. So the cost is one dictionary lookup per path, not one test per rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from jieyao.intake.containers.base import Entry, EntryKind
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import DIRECTORY, Item, Recogniser

RULES_SCHEMA = "jieyao.layouts/1"
FORMATS = frozenset({DIRECTORY, "zip", "7z", "rar", "tar", "pe"})
MAX_NAME_CHARS = 1024
"""Longer listed names are not matched (no marker is that long; a hostile name must not cost more)."""
MAX_PARTS = 32
"""Paths nested deeper than this are not matched."""
MAX_ENTRIES = 100_000
"""Entries looked at per listing; the engine already bounds listings to max_members."""
MAX_FACT_NAMES = 20
"""Names kept per marker for facts and evidence; counts are always complete."""
MAX_CAPTURED = 50
SHOWN = 3
KINDS = ("file", "dir", "any")
_ANYWHERE: tuple[str, ...] = ("\0anywhere",)
"""Root key under which `anywhere` markers (tells) are accumulated."""


class RuleError(ValueError):
    """A layout rule file is malformed; the message names the file and the rule."""


# -- rules ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Marker:
    """One path pattern relative to a root. `name` is a literal name; otherwise `exts` (or `contains`) select
    candidate names cheaply and `regex`, if any, decides. Literals are case-folded: Windows builds are
    case-insensitive and repackagers change case."""

    id: str
    label: str
    dir: tuple[str, ...] = ()
    name: str | None = None
    exts: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    on_words: bool = False
    kind: str = "file"
    weight: float = 1.0
    group: str = "markers"
    min: int = 1
    exclusive: str | None = None
    tell: str | None = None
    holds: str | None = None
    fact: str | None = None
    count: bool = False
    capture: tuple[tuple[str, str], ...] = ()
    anywhere: bool = False


@dataclass(frozen=True)
class Threshold:
    """What a root's matched markers must reach for a decision: a total weight, a weight per group, and at
    least one of the anchors (markers specific enough to carry a match)."""

    score: float
    decision: Decision
    groups: tuple[tuple[str, float], ...] = ()
    anchors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LayoutRule:
    id: str
    family: str
    category: Category
    why: str
    markers: tuple[Marker, ...]
    full: Threshold
    partial: Threshold
    confidence: float = 0.9
    help: str = ""
    content: tuple[frozenset[str], frozenset[str]] | None = None
    """(holds that block, holds for review): decide by what the layout holds, not by how complete it is."""
    unless: tuple[str, ...] = ()
    mentions: tuple[str, tuple[str, ...], str] | None = None
    """(rule id, path below this rule's root, fact name): a sub-layout whose state the evidence describes
    (a build's workspace: absent, an empty skeleton, or holding something)."""
    source: str = ""


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p.casefold() for p in path.replace("\\", "/").split("/") if p and p != ".")


def _num(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a non-negative number, got {value!r}")
    return float(value)


def _strings(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key, ())
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


_KNOWN_MARKER_KEYS = frozenset({
    "id", "label", "path", "dir", "name", "ext", "contains", "name_regex", "on", "kind", "weight", "group", "min",
    "exclusive", "tell", "holds", "fact", "count", "capture", "anywhere"})


def _marker(raw: dict[str, Any]) -> Marker:
    if not isinstance(raw, dict):
        raise ValueError(f"a marker must be an object, got {raw!r}")
    unknown = set(raw) - _KNOWN_MARKER_KEYS
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    mid = raw["id"]
    if not isinstance(mid, str) or not mid:
        raise ValueError(f"marker id must be a non-empty string, got {mid!r}")
    wrong = [k for k in ("label", "group", "exclusive", "tell", "holds", "fact", "path", "dir", "name")
             if k in raw and not isinstance(raw[k], str)]
    if wrong:
        raise ValueError(f"marker {mid!r}: {', '.join(wrong)} must be strings")
    kind = raw.get("kind")
    name = None
    if "path" in raw:
        if {"dir", "name", "ext", "contains"} & set(raw):
            raise ValueError(f"marker {mid!r}: `path` excludes dir/name/ext/contains")
        path = raw["path"]
        parts = _parts(path)
        if not parts:
            raise ValueError(f"marker {mid!r}: empty path")
        kind = kind or ("dir" if path.endswith("/") else "file")
        directory, name = parts[:-1], parts[-1]
    else:
        if "dir" not in raw and not raw.get("anywhere"):
            raise ValueError(f"marker {mid!r}: needs `path`, or `dir` with `name`, `ext` or `contains`")
        directory = _parts(raw.get("dir", ""))
        name = raw["name"].casefold() if raw.get("name") else None
    exts = tuple(e.casefold() for e in _strings(raw, "ext"))
    if any(not re.fullmatch(r"\.[^./\\]+", e) for e in exts):
        raise ValueError(f"marker {mid!r}: each ext is one suffix like '.bat', got {list(exts)}")
    contains = tuple(c.casefold() for c in _strings(raw, "contains"))
    if sum(bool(x) for x in (name, exts, contains)) != 1:
        raise ValueError(f"marker {mid!r}: give exactly one of path/name, ext or contains (they select the names "
                         "its regex is tried on, so no rule tests every name)")
    kind = kind or "file"
    if kind not in KINDS or (exts and kind != "file"):
        raise ValueError(f"marker {mid!r}: kind must be one of {KINDS} (and file with ext), got {kind!r}")
    regex = None
    if "name_regex" in raw:
        try:
            regex = re.compile(raw["name_regex"], re.IGNORECASE)
        except (re.error, TypeError) as exc:
            raise ValueError(f"marker {mid!r}: bad name_regex: {exc}") from exc
    capture = raw.get("capture", {})
    if not isinstance(capture, dict) or (capture and (regex is None or not set(capture) <= set(regex.groupindex))):
        raise ValueError(f"marker {mid!r}: capture must map groups of its name_regex to fact names")
    on = raw.get("on", "name")
    if on not in ("name", "words"):
        raise ValueError(f"marker {mid!r}: on must be 'name' or 'words', got {on!r}")
    weight = _num(raw, "weight", 1.0)
    if raw.get("anywhere") and weight:
        raise ValueError(f"marker {mid!r}: an anywhere marker is a tell and must weigh 0")
    return Marker(
        id=mid, label=str(raw.get("label", mid)), dir=directory, name=name, exts=exts, contains=contains,
        regex=regex, on_words=on == "words", kind=kind, weight=weight, group=str(raw.get("group", "markers")),
        min=max(1, int(_num(raw, "min", 1))), exclusive=raw.get("exclusive"), tell=raw.get("tell"),
        holds=raw.get("holds"), fact=raw.get("fact"), count=bool(raw.get("count", False)),
        capture=tuple((str(k), str(v)) for k, v in capture.items()), anywhere=bool(raw.get("anywhere", False)))


def _threshold(raw: Any, what: str, ids: set[str]) -> Threshold:
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be an object with score and decision")
    groups = raw.get("groups", {})
    if not isinstance(groups, dict):
        raise ValueError(f"{what}.groups must map group names to minimum weights")
    anchors = frozenset(_strings(raw, "anchors"))
    if anchors - ids:
        raise ValueError(f"{what}.anchors names unknown markers {sorted(anchors - ids)}")
    return Threshold(score=_num(raw, "score", 0), decision=Decision(raw.get("decision", "review")),
                     groups=tuple((str(g), _num(groups, g, 0)) for g in groups), anchors=anchors)


def parse_layout_rules(doc: Any, source: str) -> list[LayoutRule]:
    """Validate one rule document; a bad rule raises RuleError naming `source` and the rule."""
    if not isinstance(doc, dict) or doc.get("schema") != RULES_SCHEMA:
        raise RuleError(f"{source}: expected \"schema\": \"{RULES_SCHEMA}\"")
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{source}: \"rules\" must be a list")
    rules = []
    for i, raw in enumerate(raw_rules):
        where = f"{source} rule {raw.get('id', i) if isinstance(raw, dict) else i!r}"
        try:
            if not isinstance(raw, dict):
                raise ValueError("a rule must be an object")
            markers = tuple(_marker(m) for m in raw["markers"])
            ids = [m.id for m in markers]
            if not markers or len(set(ids)) != len(ids):
                raise ValueError("markers must be a non-empty list with unique ids")
            content = raw.get("content")
            mentions = raw.get("mentions")
            rule = LayoutRule(
                id=str(raw["id"]), family=str(raw["family"]), category=Category(raw.get("category", "software")),
                why=str(raw["why"]), markers=markers, full=_threshold(raw["full"], "full", set(ids)),
                partial=_threshold(raw["partial"], "partial", set(ids)),
                confidence=min(1.0, _num(raw, "confidence", 0.9)), help=str(raw.get("help", "")),
                content=(frozenset(_strings(content, "block")), frozenset(_strings(content, "review")))
                if isinstance(content, dict) else None,
                unless=_strings(raw, "unless"),
                mentions=(str(mentions["rule"]), _parts(str(mentions.get("at", ""))),
                          str(mentions.get("fact", "mentioned")))
                if isinstance(mentions, dict) else None,
                source=source)
            if content is not None and not isinstance(content, dict):
                raise ValueError("content must be an object with block and review lists")
        except (KeyError, ValueError, TypeError) as exc:
            raise RuleError(f"{where}: {exc}") from exc
        rules.append(rule)
    return rules


def load_layout_rules(paths: Iterable[Path]) -> list[LayoutRule]:
    """All rules of the given files, in order; ids must be unique and references must resolve."""
    rules: list[LayoutRule] = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RuleError(f"{path}: {exc}") from exc
        rules.extend(parse_layout_rules(doc, Path(path).name))
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleError(f"layout rule ids defined twice: {', '.join(dupes)}")
    for r in rules:
        refs = [*r.unless, *([r.mentions[0]] if r.mentions else [])]
        missing = [x for x in refs if x not in ids]
        if missing:
            raise RuleError(f"{r.source} rule {r.id!r}: refers to unknown rules {missing}")
    return rules


# -- listings -------------------------------------------------------------------------------------

class Node(NamedTuple):
    """One path of a listing: folders a zip only implies are nodes too. (A tuple: listings have 10,000.)"""

    parts: tuple[str, ...]
    """Case-folded components."""
    shown: tuple[str, ...]
    """The same components as listed."""
    is_dir: bool


@dataclass(frozen=True)
class Listing:
    nodes: tuple[Node, ...]
    entries: int
    ignored: int
    """Names not matched: too long, too deep, or past MAX_ENTRIES."""


def _split(raw: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(components as listed, case-folded) of a name, or None for one not to match."""
    if len(raw) > MAX_NAME_CHARS:
        return None
    name = raw.replace("\\", "/")
    shown = [p for p in name.split("/") if p and p != "."]
    if shown and len(shown[0]) == 2 and shown[0][1] == ":":  # a Windows drive letter
        del shown[0]
    if not 0 < len(shown) <= MAX_PARTS:
        return None
    folded = [p for p in name.casefold().split("/") if p and p != "."]  # casefold never makes a '/'
    if len(folded) != len(shown):
        folded = [p.casefold() for p in shown]
    return tuple(shown), tuple(folded)


def read_listing(entries: Iterable[Entry]) -> Listing:
    """Normalise names (backslashes, `./`, drive letters, duplicate slashes) and add the folders that file
    paths imply, once each: zip listings often have no folder entries."""
    nodes: list[Node] = []
    dirs: set[tuple[str, ...]] = set()
    files: set[tuple[str, ...]] = set()
    count = ignored = 0
    for entry in entries:
        count += 1
        if count > MAX_ENTRIES:
            ignored += 1
            continue
        split = _split(entry.name)
        if split is None:
            ignored += 1
            continue
        shown, parts = split
        is_dir = entry.kind is EntryKind.DIR or entry.name.endswith(("/", "\\"))
        if is_dir:
            if parts not in dirs:
                dirs.add(parts)
                nodes.append(Node(parts, shown, True))
        elif parts not in files:
            files.add(parts)
            nodes.append(Node(parts, shown, False))
        for k in range(len(parts) - 1, 0, -1):  # ancestors, nearest first: stop at one already known
            prefix = parts[:k]
            if prefix in dirs:
                break
            dirs.add(prefix)
            nodes.append(Node(prefix, shown[:k], True))
    return Listing(tuple(nodes), count, ignored)


_SCRIPT_GAP = re.compile(r"(?<=[a-z0-9])(?=[^\x00-\x7f])|(?<=[^\x00-\x7f])(?=[a-z0-9])")
_WORD = re.compile(r"\w+")


def words(name: str) -> str:
    """A name's words: case-folded, extension dropped, punctuation and numbering marks to single spaces, and
    Latin split from CJK, so `5.2)--- 训练 ME 模型 --- train ME.bat` reads `5 2 训练 me 模型 train me`."""
    stem = name.casefold()
    dot = stem.rfind(".")
    if dot > 0:
        stem = stem[:dot]
    return " ".join(_WORD.findall(_SCRIPT_GAP.sub(" ", stem)))


# -- matching -------------------------------------------------------------------------------------

@dataclass
class MarkerHit:
    """What one marker matched under one root: filled in during the single pass over a listing, read after."""

    count: int = 0
    names: list[str] = field(default_factory=list)
    captured: dict[str, set[str]] = field(default_factory=dict)


Ref = tuple[int, int]
"""(rule index, marker index)."""


class _Index:
    """Every marker of every rule, by the literal name, or the extension and parent folder name, that selects
    it: a listed path meets only the few markers it could satisfy."""

    def __init__(self, rules: Sequence[LayoutRule]) -> None:
        self.by_name: dict[tuple[bool, str], list[Ref]] = {}
        self.by_ext: dict[tuple[str, str], list[Ref]] = {}
        """(extension, the marker's parent folder name, '' for one directly under its root) → markers."""
        self.by_contains: list[tuple[str, Ref]] = []
        for ri, rule in enumerate(rules):
            for mi, m in enumerate(rule.markers):
                if m.name is not None:
                    for is_dir in ((True, False) if m.kind == "any" else (m.kind == "dir",)):
                        self.by_name.setdefault((is_dir, m.name), []).append((ri, mi))
                for ext in m.exts:
                    parent = m.dir[-1] if m.dir and not m.anywhere else ""
                    self.by_ext.setdefault((ext, parent), []).append((ri, mi))
                for literal in m.contains:
                    self.by_contains.append((literal, (ri, mi)))

    def candidates(self, node: Node) -> list[Ref] | tuple[Ref, ...]:
        """The markers this node could satisfy, in rule order then marker order (`exclusive`: first wins)."""
        parts = node.parts
        base = parts[-1]
        sources: list[list[Ref]] = []
        named = self.by_name.get((node.is_dir, base))
        if named:
            sources.append(named)
        if not node.is_dir:
            dot = base.rfind(".")
            if dot > 0:
                ext = base[dot:]
                for parent in ("", parts[-2]) if len(parts) > 1 else ("",):
                    found = self.by_ext.get((ext, parent))
                    if found:
                        sources.append(found)
        if self.by_contains:
            contained = [ref for literal, ref in self.by_contains if literal in base]
            if contained:
                sources.append(contained)
        if not sources:
            return ()
        if len(sources) == 1:
            return sources[0]
        return sorted({ref for refs in sources for ref in refs})


def _root_of(parent: tuple[str, ...], below: tuple[str, ...]) -> tuple[str, ...] | None:
    """The root a marker `below` it implies for a node under `parent`, or None when the folders differ."""
    depth = len(parent) - len(below)
    if depth < 0 or parent[depth:] != below:
        return None
    return parent[:depth]


def _accumulate(rules: Sequence[LayoutRule], index: _Index, listing: Listing,
                ) -> tuple[dict[int, dict[tuple[str, ...], dict[int, MarkerHit]]], dict[tuple[str, ...], str]]:
    """One pass over the listing: for each (rule, root) the hits of each marker, and how each root is shown."""
    acc: dict[int, dict[tuple[str, ...], dict[int, MarkerHit]]] = {}
    shown_roots: dict[tuple[str, ...], str] = {}
    for node in listing.nodes:
        cands = index.candidates(node)
        if not cands:
            continue
        claimed: set[tuple[int, str, tuple[str, ...]]] = set()
        roots: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        node_words: str | None = None
        parent = node.parts[:-1]
        for ri, mi in cands:
            m = rules[ri].markers[mi]
            if m.kind != "any" and (m.kind == "dir") != node.is_dir:
                continue
            if m.anywhere:
                root: tuple[str, ...] | None = _ANYWHERE
            elif m.dir in roots:
                root = roots[m.dir]
            else:
                root = roots[m.dir] = _root_of(parent, m.dir)
            if root is None or (m.exclusive is not None and (ri, m.exclusive, root) in claimed):
                continue
            match = None
            if m.regex is not None:
                if m.on_words:
                    node_words = words(node.shown[-1]) if node_words is None else node_words
                    match = m.regex.search(node_words)
                else:
                    match = m.regex.search(node.shown[-1])
                if match is None:
                    continue
            if m.exclusive is not None:
                claimed.add((ri, m.exclusive, root))
            by_marker = acc.setdefault(ri, {}).setdefault(root, {})
            hit = by_marker.get(mi)
            if hit is None:
                hit = by_marker[mi] = MarkerHit()
            hit.count += 1
            if len(hit.names) < MAX_FACT_NAMES:
                shown = "/".join(node.shown if root is _ANYWHERE else node.shown[len(root):])
                hit.names.append(shown + "/" if node.is_dir else shown)
            if match is not None:
                for group, _fact in m.capture:
                    value = match.group(group)
                    values = hit.captured.setdefault(group, set())
                    if value and len(values) < MAX_CAPTURED:
                        values.add(value)
            if root is not _ANYWHERE and root not in shown_roots:
                shown_roots[root] = "/".join(node.shown[: len(root)])
    return acc, shown_roots


@dataclass(frozen=True)
class RootMatch:
    """How one rule matched under one root. `decision` is None for a layout that has the structure but not
    what its rule decides by (an empty workspace skeleton)."""

    rule: LayoutRule
    root: tuple[str, ...]
    shown_root: str
    score: float
    basis: str
    """'full', 'partial' or 'content'."""
    decision: Decision | None
    hits: tuple[tuple[Marker, MarkerHit], ...]
    tells: tuple[tuple[str, str], ...]
    """(tell, example name)."""
    group_scores: tuple[tuple[str, float], ...]


def _meets(t: Threshold, score: float, groups: dict[str, float], ids: set[str]) -> bool:
    return (score >= t.score and all(groups.get(g, 0.0) >= need for g, need in t.groups)
            and (not t.anchors or bool(t.anchors & ids)))


def _evaluate(rule: LayoutRule, root: tuple[str, ...], shown_root: str, hits: dict[int, MarkerHit],
              anywhere: dict[int, MarkerHit]) -> RootMatch | None:
    matched = [(rule.markers[mi], h) for mi, h in sorted(hits.items()) if h.count >= rule.markers[mi].min]
    if not matched:
        return None
    groups: dict[str, float] = {}
    for m, _ in matched:
        groups[m.group] = groups.get(m.group, 0.0) + m.weight
    score = sum(groups.values())
    ids = {m.id for m, _ in matched}
    decision: Decision | None
    if not _meets(rule.partial, score, groups, ids):
        return None
    if rule.content is not None:
        holds = {m.holds for m, _ in matched if m.holds}
        block, review = rule.content
        basis = "content"
        decision = rule.full.decision if holds & block else rule.partial.decision if holds & review else None
    elif _meets(rule.full, score, groups, ids):
        basis, decision = "full", rule.full.decision
    else:
        basis, decision = "partial", rule.partial.decision
    tells = [(m.tell, h.names[0] if h.names else "") for m, h in matched if m.tell]
    tells += [(rule.markers[mi].tell or "", h.names[0] if h.names else "") for mi, h in sorted(anywhere.items())]
    return RootMatch(rule, root, shown_root, score, basis, decision, tuple(matched), tuple(tells),
                     tuple(groups.items()))


def match_listing(rules: Sequence[LayoutRule], listing: Listing, index: _Index | None = None,
                  ) -> dict[str, list[RootMatch]]:
    """Every root each rule matched, best first (decided before undecided, then full before partial, then
    score, then the shallowest root)."""
    acc, shown_roots = _accumulate(rules, index or _Index(rules), listing)
    out: dict[str, list[RootMatch]] = {}
    for ri, by_root in acc.items():
        rule = rules[ri]
        anywhere = by_root.pop(_ANYWHERE, {})
        found = [e for root, hits in by_root.items()
                 if (e := _evaluate(rule, root, shown_roots.get(root, ""), hits, anywhere)) is not None]
        if found:
            found.sort(key=lambda e: (-(e.decision.rank if e.decision else -1), e.basis == "partial",
                                      -e.score, len(e.root)))
            out[rule.id] = found
    return out


# -- findings -------------------------------------------------------------------------------------

def _where(shown_root: str, what: str) -> str:
    return f"under {shown_root + '/'!r}" if shown_root else f"at the top of this {what}"


def _names(names: Sequence[str], count: int) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN])
    return shown + (f" … ({count} in all)" if count > SHOWN else "")


def _group_lines(e: RootMatch) -> list[str]:
    """One line per marker group (in rule order), its weightiest markers first, each with a few of its names."""
    lines: dict[str, list[tuple[float, str]]] = {}
    for m, h in e.hits:
        if m.weight == 0 and not m.fact:
            continue
        if m.count:
            text = f"{m.label}: {h.count}"
        elif h.count == 1 and h.names and h.names[0].rstrip("/") == m.label.rstrip("/"):
            text = repr(h.names[0])  # a literal path says itself
        else:
            text = f"{m.label} ({_names(h.names, h.count)})"
        lines.setdefault(m.group, []).append((-m.weight, text))
    out = []
    for group, items in lines.items():
        items.sort(key=lambda wt: wt[0])  # stable: equal weights keep rule order
        more = f"; and {len(items) - 6} more" if len(items) > 6 else ""
        out.append(f"{group} ({len(items)} matched): " + "; ".join(t for _, t in items[:6]) + more)
    return out


def _missing(e: RootMatch) -> tuple[list[str], str]:
    """(missing marker ids, a sentence) for a partial match: the groups short of a full match and the
    weightiest markers not seen."""
    have = dict(e.group_scores)
    seen = {m.id for m, _ in e.hits}
    absent = sorted((m for m in e.rule.markers if m.id not in seen and m.weight > 0), key=lambda m: -m.weight)
    short = [f"{g} {have.get(g, 0.0):g} of {need:g}" for g, need in e.rule.full.groups if have.get(g, 0.0) < need]
    parts = []
    if e.score < e.rule.full.score:
        parts.append(f"score {e.score:g} of {e.rule.full.score:g}")
    parts += short
    text = "missing for a full match: " + ", ".join(parts)
    if absent:
        text += "; not seen: " + ", ".join(m.label for m in absent[:5]) + (
            f" and {len(absent) - 5} more" if len(absent) > 5 else "")
    return [m.id for m in absent[:MAX_FACT_NAMES]], text


def _facts(e: RootMatch) -> dict[str, Any]:
    facts: dict[str, Any] = {"root": e.shown_root, "match": e.basis, "score": round(e.score, 3),
                             "full_score": e.rule.full.score, "markers": [m.id for m, _ in e.hits]}
    captured: dict[str, set[str]] = {}
    for m, h in e.hits:
        if m.fact:
            if m.count:
                facts[m.fact] = facts.get(m.fact, 0) + h.count
            else:
                facts[m.fact] = [*facts.get(m.fact, []), *h.names][:MAX_FACT_NAMES]
                facts[m.fact + "_count"] = facts.get(m.fact + "_count", 0) + h.count
        for group, fact in m.capture:
            captured.setdefault(fact, set()).update(h.captured.get(group, ()))
    for fact, values in captured.items():
        facts[fact] = sorted(values)
    tells = sorted({t for t, _ in e.tells})
    if tells:
        facts["forks"] = tells
    return facts


def _mention(e: RootMatch, matches: dict[str, list[RootMatch]]) -> tuple[str, str] | None:
    """(fact, sentence) on the state of the sub-layout a rule mentions (a build's workspace)."""
    if e.rule.mentions is None:
        return None
    rule_id, at, _fact = e.rule.mentions
    below = e.root + at
    shown = "/".join(p for p in (e.shown_root, *at) if p) + "/"
    sub = next((s for s in matches.get(rule_id, ()) if s.root == below), None)
    if sub is None:
        return "absent", f"no {shown} below this root"
    if sub.decision is None:
        dirs = ", ".join(m.label for m, _ in sub.hits[:6])
        return "skeleton", f"{shown} is an empty skeleton ({dirs}), as a fresh build ships it"
    held = sorted({m.holds for m, _ in sub.hits if m.holds})
    return "content", f"{shown} holds {', '.join(held)}: reported as {rule_id}"


def _finding(e: RootMatch, matches: dict[str, list[RootMatch]], item: Item, what: str, listing: Listing,
             merged: Sequence[RootMatch]) -> Finding:
    rule = e.rule
    decision = e.decision or rule.partial.decision  # undecided matches never get here
    n = len([m for m, _ in e.hits if m.weight > 0])
    if e.basis == "content":
        held = sorted({m.holds for m, _ in e.hits if m.holds and m.holds in rule.content[0] | rule.content[1]}
                      ) if rule.content else []
        how = f"holds {', '.join(held)}"
        confidence = rule.confidence
    elif e.basis == "full":
        how = f"full match (≥ {rule.full.score:g})"
        confidence = rule.confidence
    else:
        how = f"partial match ({rule.partial.score:g} ≤ score < {rule.full.score:g} for a full one)"
        confidence = rule.confidence * (0.5 + 0.5 * min(1.0, e.score / rule.full.score if rule.full.score else 1.0))
    evidence = [f"{rule.why}: {n} markers {_where(e.shown_root, what)}, score {e.score:g}, {how}", *_group_lines(e)]
    facts = _facts(e)
    if e.tells:
        by_tell: dict[str, str] = {}
        for tell, example in e.tells:
            by_tell.setdefault(tell, example)
        evidence.append("fork tells: " + "; ".join(f"{t} ({x!r})" if x else t for t, x in by_tell.items()))
    if e.basis == "partial":
        facts["missing"], text = _missing(e)
        evidence.append(text)
    mention = _mention(e, matches)
    if mention is not None:
        facts[rule.mentions[2] if rule.mentions else "mentioned"] = mention[0]
        evidence.append(mention[1])
    others = [o for o in matches.get(rule.id, ()) if o is not e and o.decision is not None]
    if others:
        facts["other_roots"] = len(others)
        evidence.append(f"the same layout also matches {_names([o.shown_root + '/' for o in others], len(others))}")
    if merged:
        facts["also"] = [o.rule.id for o in merged]
        evidence.append("also matched, reported as part of this: " + "; ".join(
            f"{o.rule.id} {_where(o.shown_root, what)}" for o in merged[:SHOWN]))
    if listing.ignored:
        evidence.append(f"({listing.ignored} listed names too long, too deep or too many to match)")
    return Finding(rule=rule.id, category=rule.category, decision=decision, evidence=tuple(evidence),
                   confidence=round(confidence, 4), family=rule.family, member=item.member, sha256=item.sha256,
                   facts=facts)


_BASIS_RANK = {"full": 2, "content": 2, "partial": 1}
_WHAT = {DIRECTORY: "folder", "pe": "executable's embedded archive"}


class LayoutRecogniser(Recogniser):
    """One finding per family and category per item, from the best-matching root."""

    name = "layouts"
    formats = FORMATS

    def __init__(self, rules: Sequence[LayoutRule]) -> None:
        self.rules = list(rules)
        self._index = _Index(self.rules)
        self._order = {r.id: i for i, r in enumerate(self.rules)}
        weighted = [m for r in self.rules for m in r.markers if m.weight > 0]
        self._top_dirs = frozenset(m.dir[0] for m in weighted if m.dir)
        self._top_names = frozenset(m.name for m in weighted if not m.dir and m.name is not None)
        self._top_exts = tuple((m.exts, m.regex, m.on_words) for m in weighted if not m.dir and m.exts)
        self._top_contains = tuple(sorted({c for m in weighted if not m.dir for c in m.contains}))
        self._top_regexes = tuple(m.regex for m in weighted if not m.dir and m.name is None and not m.exts
                                  and not m.contains and m.regex is not None)

    def wants_folder(self, top_level: Sequence[tuple[str, bool]]) -> bool:
        """A folder is only reported as the root of a layout, and every weighted marker sits under its root,
        so a folder none of whose entries could start a marker is not worth listing deeper (most folders a
        walk meets: listing each one's subtree is what a folder scan costs)."""
        for raw, is_dir in top_level:
            name = raw.casefold()
            if name in self._top_names or (is_dir and name in self._top_dirs):
                return True
            if not is_dir and any(name.endswith(exts) and (rx is None or rx.search(words(name) if on_words else name))
                                  for exts, rx, on_words in self._top_exts):
                return True
            if any(c in name for c in self._top_contains) or any(rx.search(name) for rx in self._top_regexes):
                return True
        return False

    def recognise(self, item: Item) -> Iterable[Finding]:
        if not item.children:
            return []
        what = _WHAT.get(item.format, f"{item.format} listing")
        return self.match(item.children, item, what)

    def match(self, entries: Sequence[Entry], item: Item, what: str = "listing") -> list[Finding]:
        listing = read_listing(entries)
        matches = match_listing(self.rules, listing, self._index)
        if item.format == DIRECTORY:
            # every folder of a walk is shown to us: report a layout on the folder that is its root, not on
            # each ancestor that happens to list it
            matches = {rid: [m for m in ms if not m.root] for rid, ms in matches.items()}
            matches = {rid: ms for rid, ms in matches.items() if ms}
        best = {rid: ms[0] for rid, ms in matches.items() if ms[0].decision is not None}
        for rid in list(best):
            if any(other in best for other in best[rid].rule.unless):
                del best[rid]
        by_kind: dict[tuple[str, Category], list[RootMatch]] = {}
        for e in best.values():
            by_kind.setdefault((e.rule.family, e.rule.category), []).append(e)
        findings = []
        for group in by_kind.values():
            group.sort(key=lambda e: (-(e.decision.rank if e.decision else 0), -_BASIS_RANK[e.basis],
                                      self._order[e.rule.id]))
            findings.append(_finding(group[0], matches, item, what, listing, group[1:]))
        return findings

    def rule_help(self) -> dict[str, str]:
        return {r.id: f"{r.family}: {r.why}. {r.help} Recognised from the names in a folder or an archive's listing "
                      "alone; no file is opened.".replace("  ", " ") for r in self.rules}


def layout_recognisers(files: Sequence[Path]) -> list[Recogniser]:
    """The layout recogniser for the given rule files (none when they hold no rules)."""
    rules = load_layout_rules(files)
    return [LayoutRecogniser(rules)] if rules else []
