"""Recognise face-swap apps in Python source and Jupyter notebooks, from rules kept as data
(`rules/code*.json`, schema `jieyao.code/1`) over what `formats.pysource` reads with `ast`.

One file is a `review` finding: an app's face_swapper module, a notebook that clones roop and runs it.
A set of such files in one archive or folder (or one plus the layout recogniser's `layout.app.*` finding)
is the app's source tree, `code.faceswap_app`, `block`. Nothing is imported or run; markdown (a README's
mention of roop) is not read at all; a swapper's name that never reaches a loading call (a detector's
blocklist) is not evidence.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao.formats.pysource import (
    MAX_BYTES,
    MAX_NOTEBOOK_BYTES,
    Prefilter,
    SourceFacts,
    analyse_notebook,
    analyse_python,
)
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

CODE_SCHEMA = "jieyao.code/1"
PYTHON_SUFFIXES = (".py", ".pyw")
NOTEBOOK_SUFFIX = ".ipynb"
HEAD_BYTES = 64 * 1024
"""Of a source too large to parse, this much is prefiltered to decide whether to say so."""
SHOWN = 4
APP_RULE = "code.faceswap_app"
LIMIT_RULE = "limit.source_bytes"
UNPARSED_RULE = "code.unparsed"
LAYOUT_PREFIX = "layout.app."
MAX_LISTED = 20

_NAME_KINDS = ("imports_any", "calls_any", "attributes_any", "names_any", "targets_any", "keywords_any")
_REGEX_KINDS = ("strings_any", "shell_any", "paths_any")
_GROUP_KEYS = frozenset({"name", "required", "min", *_NAME_KINDS, *_REGEX_KINDS, "uses_any"})
_RULE_KEYS = frozenset({"id", "family", "decision", "confidence", "why", "groups", "require"})
_DEF_REF = re.compile(r"@(\w+)")


class RuleError(ValueError):
    """A code rule file that cannot be used: says which file and which rule."""


# -- rules as data ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class UsePattern:
    call: re.Pattern[str]
    string: re.Pattern[str]


@dataclass(frozen=True)
class Group:
    """Predicates over SourceFacts; holds when `min` distinct entries hit, across all its predicates."""

    name: str
    names: tuple[tuple[str, tuple[str, ...]], ...] = ()
    regexes: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = ()
    uses: tuple[UsePattern, ...] = ()
    min: int = 1
    required: bool = False


@dataclass(frozen=True)
class CodeRule:
    id: str
    family: str
    decision: Decision
    confidence: float
    why: str
    groups: tuple[Group, ...]
    require: int
    source: str = ""


@dataclass(frozen=True)
class FamilyHint:
    family: str
    group: Group


@dataclass(frozen=True)
class CodeRules:
    rules: tuple[CodeRule, ...]
    families: tuple[FamilyHint, ...] = ()
    prefilter: Prefilter = field(default_factory=Prefilter)
    models: re.Pattern[str] | None = None
    """The `swapper_models` definition, used to name the models a file mentions."""


def _expand_regex(text: str, defs: dict[str, Any], where: str) -> str:
    """`@name` inside a regular expression becomes that definition, its `(?i)` scoped to it."""
    def sub(m: re.Match[str]) -> str:
        value = defs.get(m[1])
        if value is None:
            return m[0]
        if not isinstance(value, str):
            raise RuleError(f"{where}: @{m[1]} is a list; only string definitions go inside a pattern")
        return f"(?i:{value[4:]})" if value.startswith("(?i)") else f"(?:{value})"
    return _DEF_REF.sub(sub, text)


def _entries(raw: Any, defs: dict[str, Any], where: str) -> list[str]:
    """A predicate's list, with `@name` entries expanded (a list definition splices in)."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise RuleError(f"{where}: expected a list of strings, got {raw!r}")
    out: list[str] = []
    for entry in raw:
        ref = entry[1:] if entry.startswith("@") else None
        if ref is not None and ref in defs and isinstance(defs[ref], list):
            out.extend(str(x) for x in defs[ref])
        else:
            out.append(entry)
    return out


def _compile(pattern: str, defs: dict[str, Any], where: str) -> re.Pattern[str]:
    try:
        return re.compile(_expand_regex(pattern, defs, where))
    except re.error as exc:
        raise RuleError(f"{where}: bad regular expression {pattern!r}: {exc}") from exc


def _group(raw: Any, defs: dict[str, Any], where: str) -> Group:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a group must be an object")
    unknown = set(raw) - _GROUP_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown predicate {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(sorted(_GROUP_KEYS))})")
    names = tuple((k, tuple(_entries(raw[k], defs, f"{where} {k}"))) for k in _NAME_KINDS if k in raw)
    regexes = tuple((k, tuple(_compile(p, defs, f"{where} {k}") for p in _entries(raw[k], defs, f"{where} {k}")))
                    for k in _REGEX_KINDS if k in raw)
    uses = []
    for spec in raw.get("uses_any", ()):
        if not isinstance(spec, dict) or set(spec) != {"call", "string"}:
            raise RuleError(f"{where}: uses_any entries are {{\"call\": regex, \"string\": regex}}, got {spec!r}")
        uses.append(UsePattern(_compile(spec["call"], defs, f"{where} uses_any"),
                               _compile(spec["string"], defs, f"{where} uses_any")))
    minimum = raw.get("min", 1)
    if type(minimum) is not int or minimum < 1:
        raise RuleError(f"{where}: min must be a positive integer")
    if not names and not regexes and not uses:
        raise RuleError(f"{where}: a group needs at least one predicate")
    return Group(name=str(raw.get("name", "")), names=names, regexes=regexes, uses=tuple(uses), min=minimum,
                 required=bool(raw.get("required", False)))


def _rule(raw: Any, defs: dict[str, Any], source: str, index: int) -> CodeRule:
    rid = raw.get("id", index) if isinstance(raw, dict) else index
    where = f"{source} rule {rid!r}"
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a rule must be an object")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown key {', '.join(sorted(unknown))}")
    try:
        rule_id, family, why = raw["id"], raw["family"], raw.get("why", "")
        if not all(isinstance(x, str) and x for x in (rule_id, family)) or not isinstance(why, str):
            raise RuleError(f"{where}: id and family must be non-empty strings, why a string")
        confidence = float(raw.get("confidence", 0.8))
        if not 0.0 <= confidence <= 1.0:
            raise RuleError(f"{where}: confidence must be within 0..1")
        decision = Decision(raw.get("decision", "review"))
        raw_groups = raw["groups"]
        if not isinstance(raw_groups, list) or not raw_groups:
            raise RuleError(f"{where}: groups must be a non-empty list")
        groups = tuple(_group(g, defs, f"{where} group {g.get('name', i) if isinstance(g, dict) else i!r}")
                       for i, g in enumerate(raw_groups))
        require = raw.get("require", len(groups))
        if type(require) is not int or not 1 <= require <= len(groups):
            raise RuleError(f"{where}: require must be an integer from 1 to {len(groups)}")
    except KeyError as exc:
        raise RuleError(f"{where}: missing {exc}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RuleError):
            raise
        raise RuleError(f"{where}: {exc}") from exc
    return CodeRule(rule_id, family, decision, confidence, why, groups, require, source)


def parse_code_rules(doc: Any, source: str) -> CodeRules:
    if not isinstance(doc, dict) or doc.get("schema") != CODE_SCHEMA:
        raise RuleError(f"{source}: expected \"schema\": \"{CODE_SCHEMA}\"")
    defs = doc.get("defs", {})
    if not isinstance(defs, dict):
        raise RuleError(f"{source}: defs must be an object")
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"{source}: rules must be a list")
    rules = tuple(_rule(raw, defs, source, i) for i, raw in enumerate(raw_rules))
    families = []
    for i, raw in enumerate(doc.get("families", [])):
        where = f"{source} family {raw.get('family', i) if isinstance(raw, dict) else i!r}"
        if not isinstance(raw, dict) or not isinstance(raw.get("family"), str):
            raise RuleError(f"{where}: a family hint is an object with a \"family\" name")
        body = {k: v for k, v in raw.items() if k != "family"}
        families.append(FamilyHint(raw["family"], _group(body, defs, where)))
    prefilter = _prefilter(doc.get("prefilter", {}), defs, source)
    if rules and not (prefilter.imports or prefilter.strings):
        raise RuleError(f"{source}: rules without prefilter imports or strings would never see a Python file")
    models = defs.get("swapper_models")
    return CodeRules(rules, tuple(families), prefilter,
                     _compile(models, defs, f"{source} defs swapper_models") if isinstance(models, str) else None)


def _prefilter(raw: Any, defs: dict[str, Any], source: str) -> Prefilter:
    if not isinstance(raw, dict) or set(raw) - {"imports", "strings", "notebook"}:
        raise RuleError(f"{source}: prefilter is an object with lists \"imports\", \"strings\", \"notebook\"")
    lists = {k: _entries(raw.get(k, []), defs, f"{source} prefilter {k}") for k in ("imports", "strings", "notebook")}
    return Prefilter(frozenset(lists["imports"]), tuple(lists["strings"]), tuple(lists["notebook"]))


def _merge(a: Prefilter, b: Prefilter) -> Prefilter:
    return Prefilter(a.imports | b.imports, tuple(dict.fromkeys([*a.strings, *b.strings])),
                     tuple(dict.fromkeys([*a.notebook, *b.notebook])))


def load_code_rules(paths: Iterable[Path]) -> CodeRules:
    """Every rule file merged, in order: rules and family hints appended, prefilter terms united."""
    rules: list[CodeRule] = []
    families: list[FamilyHint] = []
    prefilter = Prefilter()
    models: re.Pattern[str] | None = None
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuleError(f"{path}: {exc}") from exc
        part = parse_code_rules(doc, Path(path).name)
        rules.extend(part.rules)
        families.extend(part.families)
        prefilter = _merge(prefilter, part.prefilter)
        models = models or part.models
    ids = [r.id for r in rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RuleError(f"code rule ids defined twice: {', '.join(dupes)}")
    return CodeRules(tuple(rules), tuple(families), prefilter, models)


# -- matching ----------------------------------------------------------------------------------------

def _suffixes(values: Iterable[str]) -> set[str]:
    """`a.b.c` → {a.b.c, b.c, c}: an entry `get_model` matches `insightface.model_zoo.get_model`."""
    out: set[str] = set()
    for v in values:
        parts = v.lstrip(".").split(".")
        out.update(".".join(parts[i:]) for i in range(len(parts)))
    return out


class _Index:
    """SourceFacts as sets, built once per file and shared by every rule."""

    def __init__(self, facts: SourceFacts, path: str) -> None:
        self.facts = facts
        self.path = path
        self.sets: dict[str, set[str]] = {
            # a relative import also counts under its own name: `from .reactor_utils import x` is reactor_utils
            "imports_any": {i.lstrip(".") for i in facts.imports} - {""}, "calls_any": _suffixes(facts.calls),
            "attributes_any": _suffixes(facts.attributes), "names_any": set(facts.names),
            "targets_any": _suffixes(facts.targets), "keywords_any": set(facts.keywords),
        }
        self.texts: dict[str, tuple[str, ...]] = {"strings_any": facts.strings, "shell_any": facts.shell,
                                                  "paths_any": (path,)}

    def _where(self, kind: str, value: str) -> str:
        at = self.facts.where.get(f"{kind}:{value}")
        return f" ({at})" if at else ""

    def hits(self, group: Group) -> list[str]:
        """Distinct entries of the group that hit, as evidence phrases."""
        out: list[str] = []
        for kind, entries in group.names:
            have = self.sets[kind]
            for e in entries:
                if e in have:
                    out.append(self._name_phrase(kind, e))
        for kind, patterns in group.regexes:
            for rx in patterns:
                hit = next((t for t in self.texts[kind] if rx.search(t)), None)
                if hit is not None:
                    out.append(self._text_phrase(kind, hit))
        for spec in group.uses:
            use = next((u for u in self.facts.uses if spec.string.search(u.string) and spec.call.search(u.call)),
                       None)
            if use is not None:
                out.append(f"calls {use.call} with {use.string[:120]!r} ({use.where})")
        return list(dict.fromkeys(out))

    def _name_phrase(self, kind: str, entry: str) -> str:
        if kind == "imports_any":
            return f"imports {entry}{self._where('import', entry)}"
        if kind == "keywords_any":
            return f"passes {entry}={self._where('keyword', entry)}"
        if kind == "names_any":
            return f"defines {entry}{self._where('name', entry)}"
        label = {"calls_any": "calls", "attributes_any": "uses", "targets_any": "assigns"}[kind]
        facts = {"calls_any": self.facts.calls, "attributes_any": self.facts.attributes,
                 "targets_any": self.facts.targets}[kind]
        full = next((v for v in facts if v == entry or v.endswith("." + entry)), entry)
        where_kind = {"calls_any": "call", "attributes_any": "attribute", "targets_any": "target"}[kind]
        return f"{label} {full}{self._where(where_kind, full)}"

    def _text_phrase(self, kind: str, text: str) -> str:
        if kind == "shell_any":
            return f"runs {text[:160]!r}"
        if kind == "paths_any":
            return f"sits at {text!r}"
        return f"string {text[:120]!r}{self._where('string', text)}"


def match_rule(rule: CodeRule, index: _Index) -> list[str] | None:
    """Evidence (one phrase per holding group) when the rule holds, else None."""
    held = []
    for group in rule.groups:
        hits = index.hits(group)
        if len(hits) >= group.min:
            held.append(f"{group.name}: {', '.join(hits[:SHOWN])}" + (f" … ({len(hits)} in all)"
                                                                       if len(hits) > SHOWN else ""))
        elif group.required:
            return None
    return held if len(held) >= rule.require else None


def _family(hints: Sequence[FamilyHint], index: _Index) -> tuple[str, str] | None:
    for hint in hints:
        hits = index.hits(hint.group)
        if len(hits) >= hint.group.min:
            return hint.family, hits[0]
    return None


def match_facts(rules: CodeRules, facts: SourceFacts, path: str = "") -> tuple[list[tuple[CodeRule, list[str]]],
                                                                            tuple[str, str] | None]:
    """The rules that hold for one file's facts, in rule order, with their evidence; and the (family,
    why) its layout suggests. `path` is the file's path, used only for family hints."""
    index = _Index(facts, path)
    matched = [(rule, ev) for rule in rules.rules if (ev := match_rule(rule, index)) is not None]
    return matched, (_family(rules.families, index) if matched else None)


def _models(rx: re.Pattern[str] | None, facts: SourceFacts) -> list[str]:
    if rx is None:
        return []
    found: dict[str, None] = {}
    for text in (*facts.strings, *facts.shell):
        for m in rx.finditer(text):
            found[m[0]] = None
            if len(found) >= MAX_LISTED:
                return list(found)
    return list(found)


# -- the recogniser ----------------------------------------------------------------------------------

_INSTALLED_LIBRARY = re.compile(r"(?:^|[/!])(?:site|dist)-packages/")
"""Where pip puts libraries: every image with insightface installed would otherwise carry its swapper
module. An app's own tree is not under it, and a vendored copy of a library elsewhere still counts."""


class CodeRecogniser(Recogniser):
    name = "code"
    formats = frozenset({"text"})

    def __init__(self, rules: CodeRules, *, max_python_bytes: int = MAX_BYTES,
                 max_notebook_bytes: int = MAX_NOTEBOOK_BYTES) -> None:
        self.rules = rules
        self.max_python_bytes = max_python_bytes
        self.max_notebook_bytes = max_notebook_bytes
        self._ids = frozenset(r.id for r in rules.rules)

    # which items

    def wants(self, item: Item) -> bool:
        return item.format == "text" and self._kind(item) is not None

    @staticmethod
    def _kind(item: Item) -> str | None:
        """`python` or `notebook` by name, else by a look at the head (a shebang naming python) and
        the tail (nbformat writes `"nbformat"` after `"cells"`), so renamed files are still read."""
        name = item.name.lower()
        if name.endswith(PYTHON_SUFFIXES):
            return "python"
        if name.endswith(NOTEBOOK_SUFFIX):
            return "notebook"
        head = item.blob.head(512)
        if head.startswith(b"#!") and b"python" in head.split(b"\n", 1)[0]:
            return "python"
        if head.lstrip().startswith(b"{") and b'"cells"' in item.blob.head(HEAD_BYTES) \
                and b'"nbformat"' in item.blob.tail(4096):
            return "notebook"
        return None

    def _path(self, item: Item) -> str:
        return (item.member or item.target).replace("\\", "/")

    # one file

    def recognise(self, item: Item) -> Iterable[Finding]:
        kind = self._kind(item)
        if kind is None or _INSTALLED_LIBRARY.search(item.display_path.replace("\\", "/")):
            return  # a library installed in an environment (insightface's own inswapper.py) is not an app

        limit = self.max_python_bytes if kind == "python" else self.max_notebook_bytes
        if item.size > limit or item.truncated:
            if self._worth_parsing(item.blob.head(HEAD_BYTES), kind):
                yield self._too_large(item, kind, limit)
            return
        raw = item.blob.head(item.size)
        if not self._worth_parsing(raw, kind):
            return  # ordinary code: not parsed
        if kind == "python":
            facts = analyse_python(raw.decode("utf-8", errors="replace"), max_bytes=limit)
        else:
            facts = analyse_notebook(raw, max_bytes=limit)
        if not facts.parsed:
            yield self._unparsed(item, kind, facts)
            return
        finding = self._match(item, kind, facts)
        if finding is not None:
            yield finding

    def _worth_parsing(self, data: bytes, kind: str) -> bool:
        pre = self.rules.prefilter
        return pre.notebook_json(data) if kind == "notebook" else pre.python(data)

    def _match(self, item: Item, kind: str, facts: SourceFacts) -> Finding | None:
        path = self._path(item)
        matched, hinted = match_facts(self.rules, facts, path)
        if not matched:
            return None
        rule, evidence = matched[0]
        family = hinted[0] if hinted else rule.family
        models = _models(self.rules.models, facts)
        lines = [f"{rule.why}: {evidence[0]}", *evidence[1:]]
        for other, more in matched[1:]:
            lines.append(f"also {other.id} ({other.why}): {'; '.join(more)}")
        if hinted:
            lines.append(f"{family}'s layout: {hinted[1]}")
        if models:
            lines.append(f"models named: {', '.join(models[:8])}")
        if facts.problems:
            lines.append(f"(read with problems: {'; '.join(facts.problems[:3])})")
        facts_out: dict[str, Any] = {
            "kind": kind, "path": path, "rules": [r.id for r, _ in matched],
            "imports": sorted({i.split('.', 1)[0] for i in facts.imports if not i.startswith(".")})[:MAX_LISTED],
            "calls": sorted({u.call for u in facts.uses if self.rules.models and self.rules.models.search(u.string)}
                            )[:MAX_LISTED],
            "models": models, "family_from": hinted[1] if hinted else None,
        }
        if kind == "notebook":
            facts_out["cells"] = facts.cells
        confidence = min(1.0, max(r.confidence for r, _ in matched) + 0.03 * (len(matched) - 1))
        return Finding(rule=rule.id, category=Category.CODE, decision=rule.decision, evidence=tuple(lines),
                       confidence=round(confidence, 4), family=family, member=item.member, sha256=item.sha256,
                       facts=facts_out)

    def _too_large(self, item: Item, kind: str, limit: int) -> Finding:
        cut = " (only a prefix was extracted)" if item.truncated else ""
        return Finding(rule=LIMIT_RULE, category=Category.LIMIT, decision=Decision.REVIEW, member=item.member,
                       sha256=item.sha256,
                       evidence=(f"{'notebook' if kind == 'notebook' else 'Python source'} of {item.size} bytes"
                                 f"{cut} is larger than the {limit} bytes jieyao parses, and its first "
                                 f"{HEAD_BYTES // 1024} KiB mention face-swap terms: not analysed",),
                       facts={"kind": kind, "size": item.size, "limit": limit, "path": self._path(item)})

    def _unparsed(self, item: Item, kind: str, facts: SourceFacts) -> Finding:
        return Finding(rule=UNPARSED_RULE, category=Category.INTAKE, decision=Decision.PASS, member=item.member,
                       sha256=item.sha256, confidence=1.0,
                       evidence=(f"{'notebook' if kind == 'notebook' else 'Python source'} mentions face-swap "
                                 f"terms but could not be analysed: {'; '.join(facts.problems[:3])}",),
                       facts={"kind": kind, "problems": list(facts.problems[:8]), "path": self._path(item)})

    # a set of files

    def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
        """One `code.faceswap_app` (block) for an archive or folder holding an app's source tree: code
        findings in two or more files attributed to one app, or in one file plus the layout recogniser's
        `layout.app.*`."""
        if any(f.rule == APP_RULE for f in findings):
            return  # an inner archive or sub-folder already said it
        files: dict[str, Finding] = {}
        layouts = []
        for f in findings:
            if f.rule in self._ids and f.category is Category.CODE:
                files.setdefault(f.member or item.target, f)
            elif f.rule.startswith(LAYOUT_PREFIX) and f.category is Category.CODE:
                layouts.append(f)
        # two files only make an app when one of them names the app by its own module layout (imports of
        # roop.processors, its path ...): two unrelated scripts that each load a swapper (two users' uploads
        # in one folder) stay two reviews
        named = any(f.family and f.facts.get("family_from") for f in files.values())
        if (files and layouts) or (len(files) >= 2 and named):
            yield self._app(item, files, layouts)

    def _app(self, item: Item, files: dict[str, Finding], layouts: Sequence[Finding]) -> Finding:
        hinted = Counter(f.family for f in files.values() if f.family and f.facts.get("family_from"))
        families = sorted({f.family for f in [*files.values(), *layouts] if f.family})
        family: str | None
        if layouts and layouts[0].family:
            family = layouts[0].family
        elif hinted:
            family = hinted.most_common(1)[0][0]
        else:
            family = Counter(f.family for f in files.values()).most_common(1)[0][0]
        models = list(dict.fromkeys(m for f in files.values() for m in f.facts.get("models", ())))
        listed = sorted(files)
        shown = ", ".join(f"{p} ({files[p].family})" for p in listed[:6])
        more = f" and {len(listed) - 6} more" if len(listed) > 6 else ""
        where = f"this {item.format}" if item.format != "directory" else "this folder"
        evidence = [f"face-swap app source tree: {len(listed)} file{'s' if len(listed) > 1 else ''} in {where} "
                    f"use face-swap code: {shown}{more}"]
        if layouts:
            evidence.append("with the app's layout: " + ", ".join(f"{f.rule} ({f.family})" for f in layouts[:3]))
        if models:
            evidence.append(f"models named: {', '.join(models[:8])}")
        return Finding(rule=APP_RULE, category=Category.CODE, decision=Decision.BLOCK, evidence=tuple(evidence),
                       confidence=0.95 if len(listed) >= 2 else 0.9, family=family, member=item.member,
                       sha256=item.sha256,
                       facts={"families": families, "files": listed[:MAX_LISTED], "file_count": len(listed),
                              "models": models[:MAX_LISTED], "rules": sorted({f.rule for f in files.values()}),
                              "layouts": [f.rule for f in layouts]})

    def rule_help(self) -> dict[str, str]:
        out = {r.id: f"{r.family}: {r.why}. Read from the code's syntax tree (never imported or run); a name in a "
                     "string is only evidence when it reaches a call." for r in self.rules.rules}
        out[APP_RULE] = ("A face-swap app's source tree: code findings in two or more files of one app in one archive "
                         "or folder (or one plus the app's file layout), with the families and models they name.")
        out[LIMIT_RULE] = ("A Python file or notebook larger than jieyao parses, whose first 64 KiB mention "
                           "face-swap terms: not analysed, so it needs a look.")
        out[UNPARSED_RULE] = ("A Python file or notebook mentions face-swap terms but did not parse (syntax error, "
                              "not JSON, too deep): reported so that it is not silently passed.")
        return out


def code_recognisers(files: Sequence[Path]) -> list[Recogniser]:
    """The code recogniser for these rule files (`rulepack.rule_files(dirs, "code")`); none without rules."""
    rules = load_code_rules(files)
    return [CodeRecogniser(rules)] if rules.rules else []
