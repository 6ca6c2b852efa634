"""Co-occurrence rules over lexicon groups, in the commercial custom-lexicon style `A & B ~ C`:

    {"id": "model-sale", "label": "model-sale", "decision": "block",
     "all": [["model"], ["sale", "price", "delivery", "contact"]], "none": ["allow-news"], "window": 150,
     "why": "a face-swap model offered for sale"}

fires when, for every set in `all`, some piece of evidence (a lexicon hit or an extracted contact) has a group in
that set, the chosen pieces are distinct and lie within `window` chars of the dense text, and no evidence in the
listing has a group in `none`. Group names may end in `*` (`allow-*`, `contact:*`). `min_weight` ignores weak
evidence (a pinyin-initials "jd" alone must not make a sale). Why rules: a single word (金丹, 换脸, 提取码) is
innocent in fiction, news and ML; the combination is what a seller writes.

Score of a firing: the noisy-OR of the weights of the evidence that satisfied it, 1 - prod(1 - w), so more and
stronger evidence scores higher, and a reviewer can recompute it from the hits listed in `why`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, NamedTuple

from jieyao.model import Decision
from jieyao.text.lexicon import check_header, source_name

SCHEMA_ID = "jieyao.text.rules/1"
MAX_EVIDENCE = 64
"""Evidence items considered per rule: hostile text with 100k hits stays bounded (the first ones decide)."""
_GROUP_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(?::[a-z0-9_-]+)?\*?$|^[a-z][a-z0-9_-]*:\*$")
_RULE_KEYS = frozenset({"id", "label", "decision", "all", "none", "window", "min_weight", "why", "disabled"})
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


@dataclass(frozen=True)
class Rule:
    id: str
    label: str | None
    decision: Decision
    all: tuple[tuple[str, ...], ...]
    none: tuple[str, ...]
    window: int | None
    """Largest span, in dense chars, that the chosen evidence may cover; None = the whole listing."""
    min_weight: float
    why: str
    source: str = ""

    def groups(self) -> frozenset[str]:
        return frozenset(g for s in self.all for g in s) | frozenset(self.none)

    @property
    def rank(self) -> int:
        return self.decision.rank


class Evidence(NamedTuple):
    """What the rules see: one hit or contact in dense coordinates. (A NamedTuple: many per listing.)"""

    group: str
    start: int
    end: int
    weight: float
    item: Any = None
    """The hit or contact behind it, for explanations; the rules never look inside."""


@dataclass(frozen=True)
class Firing:
    rule: Rule
    evidence: tuple[Evidence, ...]
    """One piece per set of `rule.all`, in set order."""
    score: float


def group_matches(pattern: str, group: str) -> bool:
    if pattern.endswith("*"):
        return group.startswith(pattern[:-1])
    return group == pattern


def noisy_or(weights: Iterable[float]) -> float:
    p = 1.0
    for w in weights:
        p *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - p


@dataclass(frozen=True)
class _GroupSet:
    """A list of group patterns, split into exact names (a set lookup) and wildcard prefixes."""

    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, patterns: Iterable[str]) -> _GroupSet:
        pats = list(patterns)
        return cls(frozenset(p for p in pats if not p.endswith("*")), tuple(p[:-1] for p in pats if p.endswith("*")))

    def matches(self, group: str) -> bool:
        return group in self.exact or (bool(self.prefixes) and group.startswith(self.prefixes))


_Compiled = tuple[tuple[Rule, tuple[_GroupSet, ...], _GroupSet], ...]


@dataclass(frozen=True)
class _GroupRole:
    """What one group does in a rule set: the (rule, set) pairs it can satisfy and the rules it vetoes."""

    sets: tuple[tuple[int, int], ...]
    vetoes: frozenset[int]


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    versions: Mapping[str, str]
    _compiled: _Compiled = field(init=False, repr=False, compare=False)
    _roles: dict[str, _GroupRole] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(
            (r, tuple(_GroupSet.of(x) for x in r.all), _GroupSet.of(r.none)) for r in self.rules))
        object.__setattr__(self, "_roles", {})

    def _role(self, group: str) -> _GroupRole:
        role = self._roles.get(group)
        if role is None:
            sets = tuple((r, s) for r, (_, gsets, _) in enumerate(self._compiled)
                         for s, gs in enumerate(gsets) if gs.matches(group))
            vetoes = frozenset(r for r, (_, _, none) in enumerate(self._compiled) if none.matches(group))
            role = _GroupRole(sets, vetoes)
            if len(self._roles) < 10_000:  # group names come from data, but stay bounded anyway
                self._roles[group] = role
        return role

    def anchors(self, term_groups: Iterable[str]) -> frozenset[str] | None:
        """Groups at least one of which must be among the lexicon hits for any rule to fire, or None when
        some rule can fire without a term hit. For each rule this is the first set made only of groups that
        lexicon terms (not patterns, contacts or signals) produce: if no such group was hit, the listing needs
        no pattern search and no rule evaluation."""
        terms = frozenset(term_groups)
        out: set[str] = set()
        for rule in self.rules:
            anchor = next((s for s in rule.all if all(not g.endswith("*") and g in terms for g in s)), None)
            if anchor is None:
                return None
            out.update(anchor)
        return frozenset(out)

    def evaluate(self, evidence: Sequence[Evidence]) -> list[Firing]:
        """Every rule that fires on this listing's evidence, in rule order, each with its best-scoring choice.
        Evidence beyond the first MAX_EVIDENCE per rule (in the order given) is not considered."""
        by_group: dict[str, list[int]] = {}
        for k, ev in enumerate(evidence):
            by_group.setdefault(ev.group, []).append(k)
        vetoed: set[int] = set()
        groups_for: dict[tuple[int, int], list[str]] = {}
        for g in by_group:
            role = self._role(g)
            vetoed |= role.vetoes
            for key in role.sets:
                groups_for.setdefault(key, []).append(g)
        out: list[Firing] = []
        for r, (rule, sets, _) in enumerate(self._compiled):
            if r in vetoed:
                continue
            per_set = [groups_for.get((r, s)) for s in range(len(sets))]
            if not all(per_set):
                continue
            firing = _fire(rule, evidence, by_group, [p or [] for p in per_set])
            if firing is not None:
                out.append(firing)
        return out


def _assign(cands: Sequence[Sequence[int]], evidence: Sequence[Evidence]) -> tuple[int, ...] | None:
    """Pick distinct evidence, one per set, greedily: the set with the fewest candidates first, each taking its
    heaviest unused candidate. Sets are few (2-4), so greedy is as good as matching in practice."""
    n = len(cands)
    chosen = [-1] * n
    used: set[int] = set()
    for s in sorted(range(n), key=lambda s: len(cands[s])):
        best = -1
        for k in cands[s]:
            if k not in used and (best < 0 or evidence[k].weight > evidence[best].weight):
                best = k
        if best < 0:
            return None
        chosen[s] = best
        used.add(best)
    return tuple(chosen)


def _fire(rule: Rule, evidence: Sequence[Evidence], by_group: Mapping[str, list[int]],
          per_set: Sequence[list[str]]) -> Firing | None:
    floor = rule.min_weight
    cands: list[list[int]] = []
    for groups in per_set:
        ks = [k for g in groups for k in by_group[g][:MAX_EVIDENCE] if evidence[k].weight >= floor
              and evidence[k].weight > 0]
        if not ks:
            return None
        cands.append(ks)
    everything = sorted({k for ks in cands for k in ks}, key=lambda k: (evidence[k].start, evidence[k].end))
    window = rule.window
    lo = evidence[everything[0]].start
    hi = max(evidence[k].end for k in everything)
    if window is None or hi - lo <= window:
        chosen = _assign(cands, evidence)
        return None if chosen is None else _firing(rule, evidence, chosen)
    best: Firing | None = None
    sets_of = {k: [s for s, ks in enumerate(cands) if k in ks] for k in everything}
    for a, k in enumerate(everything):
        limit = evidence[k].start + window
        inside = [x for x in everything[a:] if evidence[x].start <= limit and evidence[x].end <= limit]
        covered = {s for x in inside for s in sets_of[x]}
        if len(covered) < len(cands):
            continue
        members = set(inside)
        chosen = _assign([[x for x in ks if x in members] for ks in cands], evidence)
        if chosen is not None:
            firing = _firing(rule, evidence, chosen)
            if best is None or firing.score > best.score:
                best = firing
    return best


def _firing(rule: Rule, evidence: Sequence[Evidence], chosen: Sequence[int]) -> Firing:
    picked = tuple(evidence[k] for k in chosen)
    return Firing(rule, picked, noisy_or(e.weight for e in picked))


# --------------------------------------------------------------------------------------------------- loading


def builtin_paths() -> list[Traversable]:
    data = resources.files("jieyao.text").joinpath("data")
    return sorted((p for p in data.iterdir() if p.name.startswith("rules") and p.name.endswith(".json")),
                  key=lambda p: p.name)


def _groups(value: Any, source: str, where: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(g, str) for g in value):
        raise RulesError(f"{source}: {where}: {what} must be a non-empty list of group names, got {value!r}")
    bad = [g for g in value if not _GROUP_PATTERN.match(g)]
    if bad:
        raise RulesError(f"{source}: {where}: bad group name(s) {bad} in {what}")
    return tuple(value)


def _parse_rule(spec: Any, source: str, k: int) -> Rule | str:
    """A Rule, or the id of a rule the file switches off (`"disabled": true`)."""
    where = f"rules[{k}]"
    if not isinstance(spec, dict):
        raise RulesError(f"{source}: {where}: a rule is an object")
    rid = spec.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise RulesError(f"{source}: {where}: \"id\" must be a lower-case id like 'model-sale', got {rid!r}")
    where = f"{where} {rid!r}"
    extra = sorted(set(spec) - _RULE_KEYS)
    if extra:
        raise RulesError(f"{source}: {where}: unknown key(s) {extra}; allowed: {sorted(_RULE_KEYS)}")
    if spec.get("disabled") is True:
        return rid
    try:
        decision = Decision(spec.get("decision"))
    except ValueError:
        raise RulesError(f"{source}: {where}: \"decision\" must be one of "
                         f"{[d.value for d in Decision]}, got {spec.get('decision')!r}") from None
    raw_all = spec.get("all")
    if not isinstance(raw_all, list) or not raw_all:
        raise RulesError(f"{source}: {where}: \"all\" must be a non-empty list of group lists")
    all_sets = tuple(_groups(s, source, where, f"all[{i}]") for i, s in enumerate(raw_all))
    none = _groups(spec["none"], source, where, "none") if spec.get("none") else ()
    window = spec.get("window")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise RulesError(f"{source}: {where}: \"window\" must be a positive integer or null, got {window!r}")
    min_weight = spec.get("min_weight", 0.0)
    if isinstance(min_weight, bool) or not isinstance(min_weight, int | float) or not 0 <= min_weight <= 1:
        raise RulesError(f"{source}: {where}: \"min_weight\" must be a number in [0, 1], got {min_weight!r}")
    label = spec.get("label")
    if label is not None and (not isinstance(label, str) or not label):
        raise RulesError(f"{source}: {where}: \"label\" must be a string or null")
    why = spec.get("why")
    if not isinstance(why, str) or not why.strip():
        raise RulesError(f"{source}: {where}: \"why\" must say in words what the rule means")
    return Rule(rid, label, decision, all_sets, none, window, float(min_weight), why.strip(), source)


def parse_rules_file(path: Path | Traversable, *, builtin: bool = False) -> tuple[str, str, list[Rule | str]]:
    source = source_name(path, builtin)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{source}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RulesError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{source}: the top level must be an object")
    version = check_header(data, source, SCHEMA_ID, RulesError)
    extra = sorted(set(data) - {"schema", "version", "rules", "why"})
    if extra:
        raise RulesError(f"{source}: unknown key(s) {extra}")
    raw = data.get("rules")
    if not isinstance(raw, list):
        raise RulesError(f"{source}: \"rules\" must be a list")
    parsed = [_parse_rule(spec, source, k) for k, spec in enumerate(raw)]
    ids = [r.id if isinstance(r, Rule) else r for r in parsed]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RulesError(f"{source}: rule id(s) {dupes} appear more than once")
    return source, version, parsed


def load_rules(paths: Iterable[str | Path] = (), *, include_builtin: bool = True) -> RuleSet:
    """Built-in rules (unless `include_builtin` is false) then the user's files. A later rule with the same id
    replaces the earlier one in place; `{"id": ..., "disabled": true}` removes it."""
    files: list[tuple[Path | Traversable, bool]] = [(p, True) for p in builtin_paths()] if include_builtin else []
    files += [(Path(p), False) for p in paths]
    rules: dict[str, Rule] = {}
    versions: dict[str, str] = {}
    for path, builtin in files:
        source, version, parsed = parse_rules_file(path, builtin=builtin)
        versions[source] = version
        for r in parsed:
            if isinstance(r, Rule):
                rules[r.id] = r
            else:
                rules.pop(r, None)
    return RuleSet(tuple(rules.values()), versions)


def check_groups(rules: RuleSet, known: Iterable[str]) -> None:
    """Every group a rule names (bar wildcards, contact groups from extraction and `signal:` groups from the
    normaliser's evasion signals) must exist in
    the lexicon: a typo ('modle') would otherwise make a rule silently never fire."""
    known_set = frozenset(known)
    for rule in rules.rules:
        for g in sorted(rule.groups()):
            if g.endswith("*") or g == "contact" or g.startswith(("contact:", "signal:")):
                continue
            if g not in known_set:
                raise RulesError(f"{rule.source}: rule {rule.id!r} names group {g!r}, which no lexicon term has")
