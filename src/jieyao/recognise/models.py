"""Recognise pretrained face-swap models by structure, from rules kept as data (`rules/models.json` in
each rule pack). A rule names a reader (pickle, onnx) and predicates over what that reader returns:
dict keys and key patterns, graph inputs/outputs with shapes, initializer dims. Evidence strings say
which facts matched, so an analyst can check them without opening the file.

Nothing here loads a model: readers walk pickle opcodes and protobuf fields only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao.formats.onnx import OnnxSummary, TensorSig, read_onnx
from jieyao.formats.pickle import DANGEROUS_CALLS, PickleSummary, read_pickle
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

RULES_SCHEMA = "jieyao.rules/1"
MAX_PICKLE_BYTES = 256 * 1024 * 1024
"""Pickles are read whole from memory-mapped or spooled blobs; past this only a prefix is read."""
SHOWN = 4


class RuleError(ValueError):
    pass


@dataclass(frozen=True)
class ModelRule:
    id: str
    family: str
    category: Category
    decision: Decision
    confidence: float
    format: str
    why: str
    predicate: dict[str, Any]
    unless: tuple[str, ...] = ()
    source: str = ""
    compiled: tuple[re.Pattern[str], ...] = field(default=(), compare=False, repr=False)


def _compile(patterns: Sequence[str], where: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(p) for p in patterns)
    except re.error as exc:
        raise RuleError(f"{where}: bad regular expression: {exc}") from exc


def parse_rules(doc: dict[str, Any], source: str) -> list[ModelRule]:
    if doc.get("schema") != RULES_SCHEMA:
        raise RuleError(f"{source}: expected \"schema\": \"{RULES_SCHEMA}\"")
    rules = []
    for i, raw in enumerate(doc.get("rules", [])):
        where = f"{source} rule {raw.get('id', i)!r}"
        try:
            fmt = raw["format"]
            predicate = raw[fmt]
            rule = ModelRule(
                id=raw["id"], family=raw["family"], category=Category(raw.get("category", "model")),
                decision=Decision(raw.get("decision", "review")), confidence=float(raw.get("confidence", 0.8)),
                format=fmt, why=raw.get("why", ""), predicate=predicate, unless=tuple(raw.get("unless", ())),
                source=source,
                compiled=_compile(predicate.get("key_patterns", ()), where) if fmt == "pickle" else (),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RuleError(f"{where}: {exc}") from exc
        if fmt not in ("pickle", "onnx"):
            raise RuleError(f"{where}: unknown format {fmt!r} (pickle, onnx)")
        rules.append(rule)
    return rules


def load_model_rules(paths: Iterable[Path]) -> list[ModelRule]:
    rules: list[ModelRule] = []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RuleError(f"{path}: {exc}") from exc
        rules.extend(parse_rules(doc, path.name))
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuleError(f"rule ids defined twice: {', '.join(sorted(dupes))}")
    return rules


# -- pickle predicates --------------------------------------------------------------------------

def _shown(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names[:SHOWN]) + (f" … ({len(names)} in all)" if len(names) > SHOWN else "")


def match_pickle(rule: ModelRule, s: PickleSummary) -> list[str] | None:
    """Evidence strings when the rule matches the summary, else None."""
    p = rule.predicate
    if "top" in p and s.top != p["top"]:
        return None
    keys = set(s.keys)
    evidence = []
    if "keys_all" in p:
        if not set(p["keys_all"]) <= keys:
            return None
        evidence.append(f"pickle {s.top} has keys {_shown(list(p['keys_all']))}")
    if "keys_any" in p:
        hit = [k for k in p["keys_any"] if k in keys]
        if not hit:
            return None
        evidence.append(f"and {_shown(hit)}")
    if rule.compiled:
        matching = [k for k in s.keys if any(rx.search(k) for rx in rule.compiled)]
        share = len(matching) / len(s.keys) if s.keys else 0.0
        if len(matching) < p.get("min_matching", 1) or share < p.get("min_share", 0.0):
            return None
        evidence.append(f"{len(matching)} of {len(s.keys)} pickle {s.top} keys match its layer names: "
                        f"{_shown(matching)}")
        shapes = [a for a in s.arrays if a.key in set(matching[:SHOWN]) and a.shape is not None]
        if shapes:
            evidence.append("tensors " + ", ".join(f"{a.key} {a.dtype or '?'}{list(a.shape or ())}"
                                                   for a in shapes[:SHOWN]))
    for key in p.get("report_scalars", ()):
        if key in s.scalars:
            evidence.append(f"{key} = {s.scalars[key]!r}")
    if not s.complete:
        evidence.append(f"(read stopped early: {s.error})")
    return evidence


# -- onnx predicates ----------------------------------------------------------------------------

def _shape_ok(want: Sequence[int | str] | None, got: tuple[int | str | None, ...] | None) -> bool:
    if want is None:
        return True
    if got is None or len(want) != len(got):
        return False
    return all(w == "*" or w == g for w, g in zip(want, got, strict=True))


def _find(spec: dict[str, Any], sigs: Sequence[TensorSig]) -> TensorSig | None:
    rx = re.compile(spec["name"])
    for sig in sigs:
        if rx.search(sig.name) and _shape_ok(spec.get("shape"), sig.shape) and (
                "rank" not in spec or (sig.shape is not None and len(sig.shape) == spec["rank"])):
            return sig
    return None


def _sig(sig: TensorSig) -> str:
    dims = "?" if sig.shape is None else "[" + ",".join("?" if d is None else str(d) for d in sig.shape) + "]"
    return f"{sig.name} {dims}"


def match_onnx(rule: ModelRule, s: OnnxSummary) -> list[str] | None:
    p = rule.predicate
    found_in, found_out = [], []
    for spec in p.get("inputs", ()):
        sig = _find(spec, s.inputs)
        if sig is None:
            return None
        found_in.append(sig)
    for spec in p.get("outputs", ()):
        sig = _find(spec, s.outputs)
        if sig is None:
            return None
        found_out.append(sig)
    if "inputs_count" in p and len(s.inputs) != p["inputs_count"]:
        return None
    if "outputs_count" in p and len(s.outputs) != p["outputs_count"]:
        return None
    dims_any = [tuple(d) for d in p.get("initializer_dims_any", ())]
    init_hit = None
    if dims_any:
        init_hit = next((i for i in reversed(s.initializers) if tuple(i.dims) in dims_any), None)
        if init_hit is None:
            return None
    evidence = [f"ONNX graph inputs {', '.join(_sig(x) for x in s.inputs[:SHOWN])}; "
                f"outputs {', '.join(_sig(x) for x in s.outputs[:SHOWN])}"]
    if init_hit is not None:
        evidence.append(f"initializer {init_hit.name!r} dims {list(init_hit.dims)}")
    report = p.get("report", ())
    if "last_initializer" in report and s.initializers and init_hit is None:
        last = s.initializers[-1]
        evidence.append(f"last initializer {last.name!r} dims {list(last.dims)}")
    if "producer" in report and s.producer_name:
        evidence.append(f"producer {s.producer_name} {s.producer_version}".rstrip())
    doc = s.graph_doc_string or s.doc_string  # tf2onnx writes "converted from SAEHD" on the graph
    if "doc_string" in report and doc:
        evidence.append(f"doc_string {doc[:120]!r}")
    if not s.complete:
        evidence.append(f"(read stopped early: {s.error})")
    return evidence


# -- the recogniser -----------------------------------------------------------------------------

class ModelRecogniser(Recogniser):
    name = "models"
    formats = frozenset({"pickle", "onnx"})

    def __init__(self, rules: Sequence[ModelRule]) -> None:
        self.rules = list(rules)
        self._by_format: dict[str, list[ModelRule]] = {}
        for r in self.rules:
            self._by_format.setdefault(r.format, []).append(r)

    def recognise(self, item: Item) -> Iterable[Finding]:
        if item.format == "pickle":
            data = item.blob.head(MAX_PICKLE_BYTES)
            summary: Any = read_pickle(data)
            yield from self._dangerous(item, summary)
        else:
            summary = read_onnx(item.blob)
        yield from self._apply(item, summary)

    def _apply(self, item: Item, summary: Any) -> Iterator[Finding]:
        matched: set[str] = set()
        for rule in self._by_format.get(item.format, ()):
            if matched & set(rule.unless):
                continue
            evidence = match_pickle(rule, summary) if rule.format == "pickle" else match_onnx(rule, summary)
            if evidence is None:
                continue
            matched.add(rule.id)
            yield Finding(rule=rule.id, category=rule.category, decision=rule.decision, family=rule.family,
                          confidence=rule.confidence if not item.truncated else rule.confidence * 0.9,
                          member=item.member, sha256=item.sha256,
                          evidence=(f"{rule.why}: {evidence[0]}", *evidence[1:]))

    @staticmethod
    def _dangerous(item: Item, summary: PickleSummary) -> Iterator[Finding]:
        calls = [f"{m}.{n}" for m, n in summary.calls if (m, n) in DANGEROUS_CALLS]
        if calls:
            yield Finding(rule="pickle.code_execution", category=Category.CODE, decision=Decision.REVIEW,
                          member=item.member, sha256=item.sha256, confidence=1.0,
                          evidence=(f"this pickle would call {', '.join(sorted(set(calls)))} if it were loaded "
                                    "(jieyao only read its opcodes)",))

    def rule_help(self) -> dict[str, str]:
        out = {r.id: f"{r.family}: {r.why}. Matched from the file's structure, not its name." for r in self.rules}
        out["pickle.code_execution"] = ("The pickle's opcodes call a function that runs code or commands when the "
                                        "file is loaded (os.system, eval, subprocess…). Never load it.")
        return out
