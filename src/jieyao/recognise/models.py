"""Recognise pretrained face-swap models by structure, from rules kept as data (`rules/models.json` in
each rule pack). A rule names a reader (pickle, onnx, torch, safetensors, keras, json) and predicates over
what that reader returns: dict keys and key patterns, tensor names and shapes, graph inputs/outputs with
shapes, initializer dims, Keras layer names. Evidence strings say which facts matched, so an analyst can
check them without opening the file.

Nothing here loads a model: readers walk pickle opcodes, protobuf fields and JSON headers only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jieyao.formats.keras import JsonSummary, KerasSummary, read_json_object, read_keras_h5, read_keras_zip
from jieyao.formats.onnx import OnnxSummary, TensorSig, read_onnx
from jieyao.formats.pickle import DANGEROUS_CALLS, PickleSummary, read_pickle
from jieyao.formats.safetensors import SafetensorsSummary, read_safetensors
from jieyao.formats.torchmember import read_torch_local_header, read_torch_zip_blob
from jieyao.formats.torchzip import LEGACY_MAGIC, TorchSummary, read_torch_legacy
from jieyao.model import Category, Decision, Finding
from jieyao.recognise.base import Item, Recogniser

RULES_SCHEMA = "jieyao.rules/1"
MAX_PICKLE_BYTES = 256 * 1024 * 1024
"""Pickles are read whole from memory-mapped or spooled blobs; past this only a prefix is read."""
SHOWN = 4
FORMATS = ("pickle", "onnx", "torch", "safetensors", "keras", "json", "text")
"""Rule formats: the reader whose summary a rule's predicate is applied to."""
TENSOR_FORMATS = ("pickle", "torch", "safetensors")


_DFL_FILE = re.compile(r"^(?P<name>.+?)_(?P<cls>[A-Za-z0-9]+)_(?P<part>[A-Za-z_]+)\.(npy|dat|txt)$")
_DFL_PART_RULES = frozenset({"dfl.weights", "dfl.optimizer", "dfl.model_data", "dfl.summary"})
_DFL_SET_FACTS = ("author_name", "iter", "options/archi", "options/resolution", "options/face_type", "options/ae_dims")


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
    shapes: tuple[ShapeSpec, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class ShapeSpec:
    """`shapes_all` entry: at least `min` tensors whose key matches `key` (and `shape`/`rank` if given).
    Shapes are what separate a face-swap generator from an ordinary net that reuses a layer name."""

    key: re.Pattern[str]
    shape: tuple[int | str, ...] | None = None
    rank: int | None = None
    min: int = 1


def _compile(patterns: Sequence[str], where: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(p) for p in patterns)
    except re.error as exc:
        raise RuleError(f"{where}: bad regular expression: {exc}") from exc


def _shape_specs(raw: Sequence[dict[str, Any]], where: str) -> tuple[ShapeSpec, ...]:
    specs = []
    for entry in raw:
        (key,) = _compile([entry["key"]], where)
        shape = entry.get("shape")
        specs.append(ShapeSpec(key, tuple(shape) if shape is not None else None, entry.get("rank"),
                               int(entry.get("min", 1))))
    return tuple(specs)


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
                compiled=_compile(predicate.get("key_patterns", ()), where) if fmt in TENSOR_FORMATS else (),
                shapes=_shape_specs(predicate.get("shapes_all", ()), where),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RuleError(f"{where}: {exc}") from exc
        if fmt not in FORMATS:
            raise RuleError(f"{where}: unknown format {fmt!r} ({', '.join(FORMATS)})")
        rules.append(rule)
    return rules


@dataclass(frozen=True)
class Companion:
    """A dual-use model (face recogniser, detector, restorer): never a finding on its own, but evidence
    when it sits next to a face-swap model."""

    pattern: re.Pattern[str]
    what: str


def load_companions(paths: Iterable[Path]) -> list[Companion]:
    out = []
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for raw in doc.get("companions", ()):
            try:
                out.append(Companion(re.compile(raw["pattern"]), str(raw["what"])))
            except (KeyError, re.error) as exc:
                raise RuleError(f"{path.name}: bad companion {raw!r}: {exc}") from exc
    return out


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


# -- tensor tables (torch checkpoints, safetensors) ---------------------------------------------

Tensor = tuple[str, str | None, tuple[int, ...] | None]
"""(key, dtype, shape) as a reader lists it."""


def _dims(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else str(list(shape))


def _has_key(keys: Sequence[str], want: str) -> bool:
    """`want` itself, or `want` under a wrapper (`state_dict/…`, DataParallel's `module.…`)."""
    return any(k == want or k.endswith(("/" + want, "." + want)) for k in keys)


def _spec_hits(spec: ShapeSpec, tensors: Sequence[Tensor]) -> list[Tensor]:
    return [t for t in tensors if spec.key.search(t[0])
            and (spec.rank is None or (t[2] is not None and len(t[2]) == spec.rank))
            and (spec.shape is None or _shape_ok(spec.shape, t[2]))]


def match_tensors(rule: ModelRule, tensors: Sequence[Tensor], what: str) -> list[str] | None:
    """Shared by torch and safetensors rules: names (exact, any, patterns with a count and a share of all
    tensors) and shapes of named components. `what` names the container in evidence."""
    p = rule.predicate
    keys = [t[0] for t in tensors]
    if not keys or ("max_tensors" in p and len(keys) > p["max_tensors"]):
        return None
    evidence = []
    if "keys_all" in p:
        if not all(_has_key(keys, k) for k in p["keys_all"]):
            return None
        evidence.append(f"{what} has tensors {_shown(list(p['keys_all']))}")
    if "keys_any" in p:
        hit = [k for k in p["keys_any"] if _has_key(keys, k)]
        if not hit:
            return None
        evidence.append(f"and {_shown(hit)}")
    if rule.compiled:
        matching = [k for k in keys if any(rx.search(k) for rx in rule.compiled)]
        share = len(matching) / len(keys)
        if len(matching) < p.get("min_matching", 1) or share < p.get("min_share", 0.0):
            return None
        evidence.append(f"{len(matching)} of {len(keys)} tensors in {what} match its layer names: {_shown(matching)}")
    for spec in rule.shapes:
        hits = _spec_hits(spec, tensors)
        if len(hits) < spec.min:
            return None
        evidence.append(f"{len(hits)} tensor{'s' if len(hits) > 1 else ''} shaped like " + ", ".join(
            f"{k} {dtype or '?'}{_dims(shape)}" for k, dtype, shape in hits[:2]))
    return evidence


def match_torch(rule: ModelRule, s: TorchSummary) -> list[str] | None:
    tensors = [(t.key, t.dtype, t.shape) for t in s.tensors if t.key is not None]
    evidence = match_tensors(rule, tensors, f"torch {s.kind} checkpoint" + (f" {s.prefix}/" if s.prefix else ""))
    if evidence is None:
        return None
    dtypes = sorted({t.dtype for t in s.tensors if t.dtype})
    if dtypes:
        evidence.append(f"dtypes {', '.join(dtypes)}")
    if not s.pickle.complete:
        evidence.append(f"(read stopped early: {s.pickle.error})")
    return evidence


def match_safetensors(rule: ModelRule, s: SafetensorsSummary) -> list[str] | None:
    evidence = match_tensors(rule, [(n, d, sh) for n, d, sh in s.tensors], "safetensors header")
    if evidence is None:
        return None
    for key in rule.predicate.get("report_metadata", ()):
        if key in s.metadata:
            evidence.append(f"__metadata__ {key} = {s.metadata[key][:120]!r}")
    if s.error:
        evidence.append(f"(header problems: {s.error})")
    return evidence


# -- keras configs and JSON objects -------------------------------------------------------------

def _all_and_any(p: dict[str, Any], have: set[str], all_key: str, any_key: str) -> list[str] | None:
    """The names a predicate's `<x>_all` and `<x>_any` lists matched, or None when they do not hold."""
    required = list(p.get(all_key, ()))
    if not set(required) <= have:
        return None
    hit = [n for n in p.get(any_key, ()) if n in have]
    if any_key in p and not hit:
        return None
    return [*required, *hit]


def match_keras(rule: ModelRule, s: KerasSummary) -> list[str] | None:
    p = rule.predicate
    matched = _all_and_any(p, set(s.names), "names_all", "names_any")
    if matched is None:
        return None
    where = "config.json of a .keras zip" if s.source == "keras-zip" else "model_config of a Keras HDF5 file"
    evidence = [f"{where} names layers {_shown(matched)}"]
    custom = [c for c in s.class_names if c in set(p.get("report_classes", ()))]
    if custom:
        evidence.append(f"custom layer classes {_shown(custom)}")
    if s.keras_version:
        evidence.append(f"keras_version {s.keras_version}")
    return evidence


def match_json(rule: ModelRule, s: JsonSummary) -> list[str] | None:
    p = rule.predicate
    matched = _all_and_any(p, set(s.keys), "keys_all", "keys_any")
    if matched is None:
        return None
    evidence = [f"JSON object has keys {_shown(matched)}"]
    evidence += [f"{k} = {s.scalars[k]!r}" for k in p.get("report_scalars", ()) if k in s.scalars]
    return evidence


TEXT_BYTES = 64 * 1024


def match_text(rule: ModelRule, text: str) -> list[str] | None:
    """Text artifacts (DFL's _summary.txt) by multi-line regular expressions over their first 64 KiB."""
    p = rule.predicate
    if not all(literal in text for literal in p.get("contains", ())):  # cheap: most text is not a summary
        return None
    for pattern in p.get("patterns_all", ()):
        if not re.search(pattern, text, re.MULTILINE):
            return None
    if "patterns_any" in p and not any(re.search(x, text, re.MULTILINE) for x in p["patterns_any"]):
        return None
    evidence = [f"text matches {len(p.get('patterns_all', ()))} of its tell-tale lines"]
    for pattern in p.get("report", ()):
        m = re.search(pattern, text, re.MULTILINE)
        shown = m.group(0).strip(" =")[:200] if m else ""
        if shown:
            evidence.append(shown)
    return evidence


MATCHERS: dict[str, Callable[[ModelRule, Any], list[str] | None]] = {
    "pickle": match_pickle, "onnx": match_onnx, "torch": match_torch, "safetensors": match_safetensors,
    "keras": match_keras, "json": match_json, "text": match_text,
}


# -- the recogniser -----------------------------------------------------------------------------

class ModelRecogniser(Recogniser):
    name = "models"
    formats = frozenset({"pickle", "onnx", "zip", "safetensors", "hdf5", "text"})

    def __init__(self, rules: Sequence[ModelRule], companions: Sequence[Companion] = ()) -> None:
        self.rules = list(rules)
        self.companions = list(companions)
        self._dfl_data: dict[str, PickleSummary] = {}
        self._by_format: dict[str, list[ModelRule]] = {}
        for r in self.rules:
            self._by_format.setdefault(r.format, []).append(r)

    def recognise(self, item: Item) -> Iterable[Finding]:
        if item.format == "pickle":
            data = item.blob.view(MAX_PICKLE_BYTES)  # zero-copy: a 200 MB pickle is walked, not joined
            pickle = read_pickle(data)
            yield from self._dangerous(item, pickle)
            yield from self._apply(item, "pickle", pickle, None)
            legacy = self._legacy_torch(item, pickle, data) if "torch" in self._by_format else None
            if legacy is not None:
                yield from self._apply(item, "torch", legacy, None)
            return
        for fmt, summary, note in self._summaries(item):
            yield from self._apply(item, fmt, summary, note)

    def _summaries(self, item: Item) -> Iterator[tuple[str, Any, str | None]]:
        """(rule format, reader summary, a note for evidence) for each reading of the item. Readers are
        only run for rule formats that have rules, so an empty rule pack costs nothing."""
        want = self._by_format
        if item.format == "onnx":
            yield "onnx", read_onnx(item.blob), None
        elif item.format == "zip":
            yield from self._zip(item)
        elif item.format == "safetensors" and "safetensors" in want:
            yield "safetensors", read_safetensors(item.blob), None
        elif item.format == "hdf5" and "keras" in want:
            keras = read_keras_h5(item.blob)
            if keras is not None:
                yield "keras", keras, None
        elif item.format == "text":
            if "json" in want:
                doc = read_json_object(item.blob)
                if doc is not None:
                    yield "json", doc, None
            if "text" in want:
                yield "text", item.blob.head(TEXT_BYTES).decode("utf-8", errors="replace"), None

    def _zip(self, item: Item) -> Iterator[tuple[str, Any, str | None]]:
        """A zip is a torch checkpoint or a `.keras` model by its listing. When the listing could not be read
        (a truncated download, a member cut at max_member_bytes), a torch checkpoint is still read from its
        first local header, since torch.save writes data.pkl first."""
        if item.children is None:
            if "torch" in self._by_format:
                torch = read_torch_local_header(item.blob)
                if torch is not None:
                    yield "torch", torch, "zip listing unreadable (truncated?): data.pkl read from its local header"
            return
        names = [e.name for e in item.children]
        if "torch" in self._by_format:
            torch = read_torch_zip_blob(item.blob, names)
            if torch is not None:
                yield "torch", torch, None
                return
        if "keras" in self._by_format:
            keras = read_keras_zip(item.blob, names)
            if keras is not None:
                yield "keras", keras, None

    @staticmethod
    def _legacy_torch(item: Item, pickle: PickleSummary, data: bytes | memoryview) -> TorchSummary | None:
        """Pre-1.6 torch.save: a pickle sequence opening with torch's magic number, or the tar form, whose
        object pickle arrives here as the tar member `pickle` next to `storages` and `sys_info`."""
        if pickle.top == "scalar" and pickle.value == LEGACY_MAGIC:
            return read_torch_legacy(bytes(data))  # rare, old files: a copy is fine
        siblings = {e.name for e in item.siblings}
        if item.name == "pickle" and {"storages", "sys_info"} <= siblings:
            tensors = tuple(a for a in pickle.arrays if a.kind == "torch")
            return TorchSummary("legacy", None, pickle, tensors, tuple(sorted(siblings)))
        return None

    def _apply(self, item: Item, fmt: str, summary: Any, note: str | None) -> Iterator[Finding]:
        matched: set[str] = set()
        matcher = MATCHERS[fmt]
        for rule in self._by_format.get(fmt, ()):
            if matched & set(rule.unless):
                continue
            evidence = matcher(rule, summary)
            if evidence is None:
                continue
            matched.add(rule.id)
            if rule.id == "dfl.model_data" and item.member is not None and len(self._dfl_data) < 1000:
                # kept for the set's summary, once its container is done
                self._dfl_data[f"{item.target}\0{item.member}"] = summary
            if note:
                evidence.append(f"({note})")
            yield Finding(rule=rule.id, category=rule.category, decision=rule.decision, family=rule.family,
                          confidence=rule.confidence if not item.truncated else rule.confidence * 0.9,
                          member=item.member, sha256=item.sha256,
                          evidence=(f"{rule.why}: {evidence[0]}", *evidence[1:]))

    def summarise(self, item: Item, findings: Sequence[Finding]) -> Iterable[Finding]:
        """One `dfl.model_set` finding for an archive holding several parts of a DeepFaceLab model: the
        way pretrained models ("底丹") are sold. Class and user name come from DFL's file naming, the
        architecture, resolution and iterations from the set's data.dat."""
        yield from self._companions(item, findings)
        groups: dict[tuple[str, str], dict[str, Finding]] = {}
        summarised = [f.member for f in findings if f.rule == "dfl.model_set" and f.member]
        for f in findings:
            if f.family != "DeepFaceLab" or f.rule not in _DFL_PART_RULES or f.member is None:
                continue
            if any(f.member.startswith((s + "!", s + "/")) for s in summarised):
                continue  # a nested archive or sub-folder already said it
            base = f.member.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
            m = _DFL_FILE.match(base)
            key = (m["name"], m["cls"]) if m else ("?", "?")
            groups.setdefault(key, {})[m["part"] if m else base] = f
        prefix = f"{item.target}\0{item.member}!" if item.member else f"{item.target}\0"
        data = {k.split("\0", 1)[1]: v for k, v in self._dfl_data.items() if k.startswith(prefix)}
        for k in [k for k in self._dfl_data if k.startswith(prefix)]:
            del self._dfl_data[k]
        for (name, cls), parts in sorted(groups.items()):
            if len(parts) < 2:
                continue
            evidence = [f"{len(parts)} DeepFaceLab model parts in this {item.format}"
                        + (f", model {name!r} of class {cls}" if cls != "?" else "") + f": {', '.join(sorted(parts))}"]
            for f in parts.values():
                summary = data.get(f.member or "")
                if summary is not None:
                    shown = [f"{k} = {summary.scalars[k]!r}" for k in _DFL_SET_FACTS if k in summary.scalars]
                    if shown:
                        evidence.append("from its data.dat: " + "; ".join(shown))
            yield Finding(rule="dfl.model_set", category=Category.MODEL, decision=Decision.BLOCK,
                          family="DeepFaceLab", confidence=0.99, member=item.member, sha256=item.sha256,
                          evidence=tuple(evidence))

    def _companions(self, item: Item, findings: Sequence[Finding]) -> Iterator[Finding]:
        if not self.companions or not item.children:
            return
        swappers = [f for f in findings if f.category is Category.MODEL and f.decision is Decision.BLOCK]
        if not swappers:
            return
        seen = []
        for entry in item.children:
            base = entry.name.rsplit("/", 1)[-1]
            what = next((c.what for c in self.companions if c.pattern.search(base)), None)
            if what is not None:
                seen.append(f"{entry.name!r} ({what})")
        if seen:
            families = sorted({f.family or f.rule for f in swappers})
            yield Finding(rule="model.companions", category=Category.MODEL, decision=Decision.PASS,
                          confidence=0.9, member=item.member,
                          evidence=(f"next to {', '.join(families)} in this {item.format}: {', '.join(seen[:8])}"
                                    + (f" and {len(seen) - 8} more" if len(seen) > 8 else ""),
                                    "dual-use models are not findings on their own; here they complete a "
                                    "face-swap kit"))

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
        out["model.companions"] = ("Face recognisers, detectors or restorers found next to a face-swap model: "
                                   "not findings on their own, named as evidence of a complete kit.")
        out["dfl.model_set"] = ("Several parts of one DeepFaceLab model (weights, optimizer state, data.dat) in one "
                                "archive: a complete pretrained model as it is sold, with its class and settings.")
        out["pickle.code_execution"] = ("The pickle's opcodes call a function that runs code or commands when the "
                                        "file is loaded (os.system, eval, subprocess…). Never load it.")
        return out
