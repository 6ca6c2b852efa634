"""What a Python file or a Jupyter notebook says, read with `ast` only: never imported, compiled or run.

A face-swap app is recognised by what its code *does* with a swapper (imports insightface, passes
`inswapper_128.onnx` to `get_model`, feeds `in_face:0` to an ONNX session), so the facts kept here are the
ones rules need: imports, calls, string constants, attribute chains, defined and assigned names, keyword
arguments, and `uses`, the string constants that reach a call's arguments directly or through a variable
(one file's worth of flow-insensitive binding). A string that only sits in a blocklist never reaches a
loading call, which is what separates a deepfake *detector* from an app.

Hostile input is bounded before `ast.parse` sees it (size, then an estimate of tokens, since a 2 MiB
list literal makes a 1 GB tree), parse failures of every kind become `problems`, and the tree is walked
iteratively with a depth and node budget. Most Python a scanner sees never gets here: `might_be_faceswap`
is a prefilter (the modules a file imports, and a few substrings) that costs a few SHA-256s of the bytes.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_BYTES = 2 << 20
MAX_NOTEBOOK_BYTES = 20 << 20
MAX_CELLS = 5000
MAX_TOKENS = 200_000
"""Above this a tree costs hundreds of MB (≈0.5–1 KB a node): such a file is reported, not parsed."""
MAX_DEPTH = 120
MAX_NODES = 400_000
MAX_ITEMS = 4000
"""Entries kept per fact list (imports, calls, strings, …)."""
MAX_STRING_CHARS = 1000
MAX_SHELL_LINES = 2000
MAX_CHAIN_CHARS = 200
CONTEXTS = 4
"""Enclosing calls/assignments a constant or name is credited to: `get_model(join(d, 'x.onnx'))` gives
'x.onnx' to both calls."""
PER_RECORD = 24
"""Strings and names kept per call or assignment."""
PER_BINDING = 64
BINDING_PASSES = 3

@dataclass(frozen=True)
class Use:
    """A string constant that reaches the arguments of a call (directly or through a variable)."""

    call: str
    string: str
    where: str


@dataclass(frozen=True)
class SourceFacts:
    imports: tuple[str, ...] = ()
    """Module names imported, with every dotted prefix: `from x.y import z` gives x, x.y, x.y.z."""
    calls: tuple[str, ...] = ()
    """Dotted names of called functions as written (`.get` when the receiver is not a name), and the same
    with import aliases resolved (`ort.InferenceSession` also as `onnxruntime.InferenceSession`)."""
    strings: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    """Dotted attribute chains; a constant index is kept (`model.graph.initializer[-1]`)."""
    names: tuple[str, ...] = ()
    """Defined function and class names."""
    targets: tuple[str, ...] = ()
    """Assigned names and attribute chains (`emap`, `self.emap`)."""
    keywords: tuple[str, ...] = ()
    """Keyword argument names passed in calls (`paste_back`)."""
    uses: tuple[Use, ...] = ()
    shell: tuple[str, ...] = ()
    """Notebook shell and magic lines (`!git clone …`, `%cd …`), blanked before parsing but kept here."""
    where: Mapping[str, str] = field(default_factory=dict, compare=False)
    """`kind:value` → where it first appears ("line 12", "cell 3 line 2"), for evidence."""
    problems: tuple[str, ...] = ()
    parsed: bool = False
    cells: int = 0
    """Notebook code cells that parsed."""


# -- prefilter ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prefilter:
    """Which files are worth parsing. A substring test per term costs about one SHA-256 of the file, so
    instead of dozens of terms the Python test is one pass that lists the modules a file imports (checked
    against `imports`, dotted names and their prefixes) plus a few substrings for the rules that need
    no import (`strings`: a swapper's file name, an identity store's). Notebooks are JSON whose code sits
    inside strings, so they are tested by substrings only: every import name, every string, and the
    `notebook` terms (app repositories and launchers run from shell lines). A rule pack declares its
    prefilter next to its rules; each rule's required groups must imply one of its entries."""

    imports: frozenset[str] = frozenset()
    strings: tuple[str, ...] = ()
    notebook: tuple[str, ...] = ()
    _tops: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())
    _anchors: frozenset[bytes] = field(init=False, repr=False, compare=False, default=frozenset())
    _strings: tuple[bytes, ...] = field(init=False, repr=False, compare=False, default=())
    _notebook: tuple[bytes, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tops", frozenset(i.split(".", 1)[0].encode() for i in self.imports))
        object.__setattr__(self, "_anchors", frozenset(i.encode() for i in self.imports))
        object.__setattr__(self, "_strings", tuple(t.encode() for t in self.strings))
        terms = dict.fromkeys([*self.imports, *self.strings, *self.notebook])
        object.__setattr__(self, "_notebook", tuple(t.encode() for t in terms))

    def python(self, data: bytes) -> bool:
        for name in imported_modules(data):
            parts = name.split(b".")
            if parts[0] in self._tops and any(b".".join(parts[:k]) in self._anchors for k in range(1, len(parts) + 1)):
                return True
        return any(t in data for t in self._strings)

    def notebook_json(self, data: bytes) -> bool:
        return any(t in data for t in self._notebook)


def imported_modules(data: bytes, limit: int = 2000) -> set[bytes]:
    """Module names a Python file's `import` lines name, without parsing: `import a.b as c` gives a.b,
    `from a import b, c` gives a, a.b, a.c; relative dots are dropped. One `find` pass over the file; a
    name in a docstring's "import x" is listed too, which only costs a parse. Names of a parenthesised
    list continued on later lines are not seen (their module is)."""
    found: set[bytes] = set()
    find = data.find
    pos = 0
    while len(found) < limit:
        i = find(b"import", pos)
        if i < 0:
            break
        start = data.rfind(b"\n", 0, i) + 1
        end = find(b"\n", i)
        end = len(data) if end < 0 else end
        pos = end
        for stmt in data[start:end].split(b";"):
            words = stmt.split(None, 1)
            if len(words) < 2:
                continue
            if words[0] == b"import":
                for part in words[1].split(b","):
                    name = part.split(None, 1)
                    if name:
                        found.add(name[0].lstrip(b"."))
            elif words[0] == b"from":
                module, _, names = words[1].partition(b"import")
                base = module.strip().lstrip(b".")
                if base:
                    found.add(base)
                for part in names.strip(b" \t\r()\\").split(b","):
                    name = part.split(None, 1)
                    if name and name[0] != b"*":
                        found.add(base + b"." + name[0] if base else name[0])
    found.discard(b"")
    return found


DEFAULT_PREFILTER = Prefilter(
    imports=frozenset({
        "insightface", "onnxruntime", "onnx", "tf2onnx", "xlib.onnxruntime", "modelhub", "safetensors", "roop",
        "modules.processors", "facefusion", "core.leras", "core.interact", "core.imagelib", "core.mathlib",
        "core.joblib", "DFLIMG", "facelib", "samplelib", "mainscripts", "merger", "models.ModelBase",
        "plugins.train", "plugins.extract", "plugins.convert", "lib.align", "lib.serializer", "lib.model.nn_blocks",
        "lib.model.backup_restore", "lib.training", "lib.cli"}),
    strings=(".onnx", ".dfm", "merged_embeddings", ".fsz"),
    notebook=("s0md3v", "0untFloyd", "0untfloyd", "hacksider", "Hillobar", "hillobar", "visomaster", "VisoMaster",
              "Gourieff", "gourieff", "iperov", "deepfakes", "run.py", "main.py", "faceswap.py", "facefusion.py"),
)
"""The built-in rule pack's prefilter (rules/code.json says the same; a test keeps them equal)."""


def might_be_faceswap(text: str | bytes, prefilter: Prefilter = DEFAULT_PREFILTER, *, notebook: bool = False) -> bool:
    """Whether a Python file (or, with `notebook`, a notebook's raw JSON) is worth parsing: ordinary
    Python, nearly all of what a scanner sees, never reaches `ast.parse`."""
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    return prefilter.notebook_json(data) if notebook else prefilter.python(data)


# -- bounded parsing -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+|[^\w\s]")


def _token_bound(text: str, limit: int, *, exact: bool = False) -> int | None:
    """An upper bound on the number of tokens (≥ AST nodes), or None when there are more than `limit`.
    Words inside strings count too, so the bound is conservative; unless `exact`, a text no longer than
    `limit` is not counted (it cannot have more tokens than characters)."""
    if not exact and len(text) <= limit:
        return len(text)
    n = 0
    for n, _ in enumerate(_TOKEN.finditer(text), 1):
        if n > limit:
            return None
    return n


def _parse(text: str) -> tuple[ast.Module | None, str | None]:
    """`ast.parse` that never raises: hostile input makes it raise SyntaxError, ValueError, RecursionError
    or MemoryError (deep nesting), and warn about escapes; all become a problem string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text.removeprefix("\ufeff")), None
    except SyntaxError as exc:
        at = f" at line {exc.lineno}" if exc.lineno else ""
        return None, f"syntax error{at}: {exc.msg}"
    except RecursionError:
        return None, "nested too deeply for the parser (RecursionError)"
    except MemoryError:
        return None, "the parser ran out of memory or stack (deep nesting or huge input)"
    except Exception as exc:  # ValueError and whatever a future parser raises on odd input
        return None, f"could not parse: {type(exc).__name__}: {exc}"


# -- the walk ------------------------------------------------------------------------------------

class _Bag:
    """An insertion-ordered set with a cap; remembers where each value first appeared."""

    def __init__(self, kind: str, where: dict[str, str], cap: int | None = None) -> None:
        self.kind = kind
        self.items: dict[str, None] = {}
        self.where = where
        self.cap = MAX_ITEMS if cap is None else cap
        self.full = False

    def add(self, value: str, at: str | None = None) -> None:
        if value in self.items:
            return
        if len(self.items) >= self.cap:
            self.full = True
            return
        self.items[value] = None
        if at is not None:
            self.where.setdefault(f"{self.kind}:{value}", at)


class _Rec:
    """Strings and names found inside one call's arguments or one assignment's value."""

    __slots__ = ("name", "refs", "strings", "targets", "where")

    def __init__(self, name: str, where: str, targets: tuple[str, ...] = ()) -> None:
        self.name = name
        self.where = where
        self.targets = targets
        self.strings: list[str] = []
        self.refs: list[str] = []

    def credit_string(self, s: str) -> None:
        if len(self.strings) < PER_RECORD and s not in self.strings:
            self.strings.append(s)

    def credit_ref(self, r: str) -> None:
        if len(self.refs) < PER_RECORD and r not in self.refs:
            self.refs.append(r)


def _chain(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain, `.c` when its root is not a name (a call, a literal), None
    for other expressions."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
        if len(parts) > 40:
            return None
    if isinstance(node, ast.Name):
        parts.append(node.id)
        out = ".".join(reversed(parts))
    elif parts:
        out = "." + ".".join(reversed(parts))
    else:
        return None
    return out if len(out) <= MAX_CHAIN_CHARS else None


def _const_index(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int):
        return -node.operand.value
    return None


def _const_key(node: ast.AST) -> str | None:
    return node.value[:MAX_STRING_CHARS] if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _keyed(chain: str, key: str) -> str:
    return f"{chain}[{key!r}]"


def _lookup(bound: dict[str, dict[str, None]], ref: str) -> dict[str, None]:
    """What `ref` was bound to; an entry `X['k']` never bound on its own stands for the whole of X."""
    found = bound.get(ref)
    if found is None and ref.endswith("]") and "[" in ref:
        found = bound.get(ref[: ref.index("[")])
    return found or {}


def _target_names(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.Tuple, ast.List)):
        return [n for elt in node.elts[:PER_RECORD] for n in _target_names(elt)]
    if isinstance(node, (ast.Starred, ast.Subscript)):
        return _target_names(node.value)  # `models["swap"] = "x.onnx"` binds to `models`
    chain = _chain(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
    return [chain] if chain and not chain.startswith(".") else []


Frame = tuple[ast.AST, int, tuple[_Rec, ...]]


class _Walker:
    """Collects facts from one or more trees (a notebook's cells share one walker, so a variable set in
    one cell and used in the next still connects)."""

    def __init__(self) -> None:
        self.where: dict[str, str] = {}
        self.imports = _Bag("import", self.where)
        self.calls = _Bag("call", self.where)
        self.strings = _Bag("string", self.where)
        self.attributes = _Bag("attribute", self.where)
        self.names = _Bag("name", self.where)
        self.targets = _Bag("target", self.where)
        self.keywords = _Bag("keyword", self.where)
        self.shell: list[str] = []
        self.aliases: dict[str, str] = {}
        self.call_recs: list[_Rec] = []
        self.bind_recs: list[_Rec] = []
        self.problems: list[str] = []
        self.nodes = 0
        self.cell: int | None = None
        self._line: int | None = None
        self._deep_noted = False

    def _at(self, node: ast.AST) -> str:
        line = getattr(node, "lineno", None)
        if line is None:  # operators, contexts: where their parent was
            line = self._line
        self._line = line
        where = f"line {line}" if line is not None else "?"
        return where if self.cell is None else f"cell {self.cell} {where}"

    def _resolve(self, name: str) -> str:
        head, dot, rest = name.partition(".")
        target = self.aliases.get(head)
        if target is None or target == head:
            return name
        return target + dot + rest

    def walk(self, tree: ast.AST) -> None:
        stack: list[Frame] = [(tree, 0, ())]
        while stack:
            node, depth, ctx = stack.pop()
            self.nodes += 1
            if self.nodes > MAX_NODES:
                self.problems.append(f"more than {MAX_NODES} syntax nodes: the rest was not analysed")
                return
            if depth > MAX_DEPTH:
                if not self._deep_noted:
                    self.problems.append(f"nested deeper than {MAX_DEPTH} levels ({self._at(node)}): "
                                         "the inner part was not analysed")
                    self._deep_noted = True
                continue
            self._visit(node, depth, ctx, stack)

    def _push(self, stack: list[Frame], nodes: Iterable[ast.AST | None], depth: int,
              ctx: tuple[_Rec, ...]) -> None:
        for child in reversed([n for n in nodes if n is not None]):
            stack.append((child, depth + 1, ctx))

    def _bind(self, node: ast.AST, targets: Sequence[str], ctx: tuple[_Rec, ...]) -> tuple[_Rec, ...]:
        rec = _Rec("", self._at(node), tuple(targets))
        self.bind_recs.append(rec)
        return (*ctx[-(CONTEXTS - 1):], rec)

    def _visit(self, node: ast.AST, depth: int, ctx: tuple[_Rec, ...], stack: list[Frame]) -> None:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                s = node.value[:MAX_STRING_CHARS]
                self.strings.add(s, self._at(node))
                for rec in ctx:
                    rec.credit_string(s)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                for rec in ctx:
                    rec.credit_ref(node.id)
            return
        if isinstance(node, ast.Call):
            self._call(node, depth, ctx, stack)
            return
        if isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain:
                self.attributes.add(chain, self._at(node))
                resolved = self._resolve(chain)
                if resolved != chain:
                    self.attributes.add(resolved, self._at(node))
                if isinstance(node.ctx, ast.Load):
                    for rec in ctx:
                        rec.credit_ref(chain)
            stack.append((node.value, depth + 1, ctx))
            return
        if isinstance(node, ast.Subscript):
            chain = _chain(node.value) if isinstance(node.value, (ast.Name, ast.Attribute)) else None
            index = _const_index(node.slice)
            if chain and index is not None:
                self.attributes.add(f"{chain}[{index}]", self._at(node))
            key = _const_key(node.slice)
            if chain and key is not None and isinstance(node.ctx, ast.Load):
                # CFG["detector"] is that entry, not every string CFG holds (a detector's blocklist of swapper
                # names sits in the same dict); `_uses` falls back to CFG when the entry was never bound
                for rec in ctx:
                    rec.credit_ref(_keyed(chain, key))
                self._push(stack, (node.slice,), depth, ctx)
                return
            self._push(stack, (node.value, node.slice), depth, ctx)
            return
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            self._assign(node, depth, ctx, stack)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self._import(node)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._function(node, depth, ctx, stack)
            return
        if isinstance(node, ast.ClassDef):
            self.names.add(node.name, self._at(node))
            self._push(stack, [*node.decorator_list, *node.bases, *node.keywords, *node.body], depth, ctx)
            return
        if isinstance(node, ast.keyword):
            stack.append((node.value, depth + 1, ctx))
            return
        self._push(stack, ast.iter_child_nodes(node), depth, ctx)

    def _call(self, node: ast.Call, depth: int, ctx: tuple[_Rec, ...], stack: list[Frame]) -> None:
        at = self._at(node)
        name = _chain(node.func) or ""
        resolved = self._resolve(name) if name else ""
        if name:
            self.calls.add(name, at)
            if resolved != name:
                self.calls.add(resolved, at)
        for kw in node.keywords:
            if kw.arg:
                self.keywords.add(kw.arg, at)
        inner = ctx
        if resolved:
            rec = _Rec(resolved, at)
            self.call_recs.append(rec)
            inner = (*ctx[-(CONTEXTS - 1):], rec)
        # arguments are credited to this call; the callee (its receiver) only to enclosing ones, so a
        # blocklist's `KNOWN.get(name)` does not "pass" the blocklist's strings to `.get`
        self._push(stack, [*node.args, *node.keywords], depth, inner)
        stack.append((node.func, depth + 1, ctx))

    def _assign(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr, depth: int,
                ctx: tuple[_Rec, ...], stack: list[Frame]) -> None:
        targets_nodes: list[ast.AST] = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
        names = [n for t in targets_nodes for n in _target_names(t)]
        for n in names:
            self.targets.add(n, self._at(node))
        if node.value is not None:
            stack.append((node.value, depth + 1, self._bind(node, names, ctx) if names else ctx))
            if isinstance(node.value, ast.Dict) and len(names) == 1:
                for k, v in zip(node.value.keys[:PER_RECORD], node.value.values[:PER_RECORD], strict=False):
                    key = _const_key(k) if k is not None else None
                    if key is not None:  # each entry also bound on its own, for CFG["key"] uses
                        stack.append((v, depth + 1, self._bind(v, [_keyed(names[0], key)], ())))
        self._push(stack, targets_nodes, depth, ctx)
        if isinstance(node, ast.AnnAssign):
            stack.append((node.annotation, depth + 1, ctx))

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        at = self._at(node)
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._module(alias.name, at)
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    head = alias.name.split(".", 1)[0]
                    self.aliases.setdefault(head, head)
            return
        base = "." * (node.level or 0) + (node.module or "")
        if base:
            self._module(base, at)
        for alias in node.names:
            if alias.name == "*":
                continue
            full = f"{base}.{alias.name}" if base and not base.endswith(".") else base + alias.name
            self._module(full, at)
            if len(self.aliases) < MAX_ITEMS:
                self.aliases[alias.asname or alias.name] = full

    def _module(self, name: str, at: str) -> None:
        lead = len(name) - len(name.lstrip("."))
        parts = name[lead:].split(".")
        for i in range(1, len(parts) + 1):
            self.imports.add(name[:lead] + ".".join(parts[:i]), at)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, depth: int, ctx: tuple[_Rec, ...],
                  stack: list[Frame]) -> None:
        self.names.add(node.name, self._at(node))
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True))
        defaults += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
        self._push(stack, [*node.decorator_list, *node.body], depth, ctx)
        for arg, default in defaults:  # a parameter's default binds like an assignment
            stack.append((default, depth + 1, self._bind(default, [arg.arg], ctx)))

    # -- results --------------------------------------------------------------------------------

    def _uses(self) -> tuple[Use, ...]:
        bound: dict[str, dict[str, None]] = {}
        for _ in range(BINDING_PASSES):
            changed = False
            for rec in self.bind_recs:
                values = dict.fromkeys(rec.strings)
                for ref in rec.refs:
                    values.update(_lookup(bound, ref))
                for target in rec.targets:
                    have = bound.setdefault(target, {})
                    for v in values:
                        if v not in have and len(have) < PER_BINDING:
                            have[v] = None
                            changed = True
            if not changed:
                break
        out: dict[tuple[str, str], Use] = {}
        for rec in self.call_recs:
            strings = dict.fromkeys(rec.strings)
            for ref in rec.refs:
                strings.update(_lookup(bound, ref))
            for s in strings:
                if len(out) >= MAX_ITEMS:
                    self.problems.append(f"more than {MAX_ITEMS} (call, string) uses: the rest not kept")
                    return tuple(out.values())
                out.setdefault((rec.name, s), Use(rec.name, s, rec.where))
        return tuple(out.values())

    def facts(self, parsed: bool, problems: Sequence[str] = (), cells: int = 0) -> SourceFacts:
        capped = [b.kind for b in (self.imports, self.calls, self.strings, self.attributes, self.names,
                                   self.targets, self.keywords) if b.full]
        uses = self._uses()
        notes = [*problems, *self.problems]
        if capped:
            notes.append(f"more than {MAX_ITEMS} distinct {', '.join(capped)} values: the rest not kept")
        return SourceFacts(
            imports=tuple(self.imports.items), calls=tuple(self.calls.items), strings=tuple(self.strings.items),
            attributes=tuple(self.attributes.items), names=tuple(self.names.items),
            targets=tuple(self.targets.items), keywords=tuple(self.keywords.items), uses=uses,
            shell=tuple(self.shell), where=dict(self.where), problems=tuple(notes), parsed=parsed, cells=cells)


# -- entry points ----------------------------------------------------------------------------------

def analyse_python(text: str, *, max_bytes: int = MAX_BYTES, max_tokens: int = MAX_TOKENS) -> SourceFacts:
    """Facts of one Python source. Size is counted in characters (never more than its UTF-8 bytes); a
    source over either bound is not parsed and says so in `problems`."""
    if len(text) > max_bytes:
        return SourceFacts(problems=(f"source is {len(text)} characters, more than max_bytes={max_bytes}: "
                                     "not parsed",))
    if _token_bound(text, max_tokens) is None:
        return SourceFacts(problems=(f"source has more than max_tokens={max_tokens} tokens: not parsed (its "
                                     "syntax tree would not fit the memory bound)",))
    tree, problem = _parse(text)
    if tree is None:
        return SourceFacts(problems=(problem or "not parsed",))
    walker = _Walker()
    walker.walk(tree)
    return walker.facts(parsed=True)


_PY_CELL_MAGICS = frozenset({"capture", "time", "timeit", "prun", "debug"})
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "shell", "script", "system"})
_SHELL_ASSIGN = re.compile(r"^[\w.]+(\s*,\s*[\w.]+)*\s*=\s*[!%]")


def split_magics(source: str) -> tuple[str, list[str]]:
    """(Python with IPython magics and shell lines replaced by `pass` at their indentation, those lines).
    `pass` rather than a blank keeps `if x:\\n    !pip install y` parseable. A cell magic decides for the
    whole cell: `%%bash` is all shell, `%%capture`/`%%time` is Python, `%%writefile x.py` is the Python
    it writes, anything else (`%%html`, `%%javascript`) is neither."""
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].strip()[2:].split(None, 1)
        name = magic[0] if magic else ""
        if name in _SHELL_CELL_MAGICS:
            return "", [line.strip() for line in lines if line.strip()][:MAX_SHELL_LINES]
        writes_python = name == "writefile" and len(magic) > 1 and magic[1].strip().endswith((".py", ".pyw"))
        if name not in _PY_CELL_MAGICS and not writes_python:
            return "", [lines[first].strip()]
        shell = [lines[first].strip()[:MAX_STRING_CHARS]]
        lines[first] = ""
    else:
        shell = []
    continued = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if continued or stripped.startswith(("!", "%")) or _SHELL_ASSIGN.match(stripped):
            if len(shell) < MAX_SHELL_LINES:
                shell.append(stripped.rstrip()[:MAX_STRING_CHARS])  # bounded like strings: rules run regexes on them
            # a command's continuation lines go blank: their indentation is the shell's, not Python's
            lines[i] = "" if continued else line[: len(line) - len(stripped)] + "pass"
            continued = stripped.rstrip().endswith("\\")
    return "\n".join(lines), shell


def analyse_notebook(data: bytes, *, max_bytes: int = MAX_NOTEBOOK_BYTES, max_cells: int = MAX_CELLS,
                     max_tokens: int = MAX_TOKENS) -> SourceFacts:
    """Facts of an nbformat-4 notebook's code cells (markdown is not read). Cells that do not parse are
    skipped with a problem noted; the others are analysed together, in order."""
    if len(data) > max_bytes:
        return SourceFacts(problems=(f"notebook is {len(data)} bytes, more than max_bytes={max_bytes}: not read",))
    try:
        doc = json.loads(data)
    except RecursionError:
        return SourceFacts(problems=("notebook JSON nested too deeply: not read",))
    except (ValueError, MemoryError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return SourceFacts(problems=(f"notebook is not JSON: {str(exc)[:200]}",))
    if not isinstance(doc, dict):
        return SourceFacts(problems=(f"notebook is a JSON {type(doc).__name__}, not an object",))
    cells = doc.get("cells")
    if cells is None and "worksheets" in doc:
        return SourceFacts(problems=("nbformat 3 notebook (worksheets): only nbformat 4 is read",))
    if not isinstance(cells, list):
        return SourceFacts(problems=(f"notebook 'cells' is {type(cells).__name__}, not a list",))
    problems: list[str] = []
    if len(cells) > max_cells:
        problems.append(f"{len(cells)} cells, more than max_cells={max_cells}: only the first were read")
        cells = cells[:max_cells]
    code: list[tuple[int, str]] = []
    walker = _Walker()
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            problems.append(f"cell {i} is not an object")
            continue
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        elif not isinstance(source, str):
            problems.append(f"cell {i}: source is not a string or a list of strings")
            continue
        python, shell = split_magics(source)
        walker.shell.extend(shell[: MAX_SHELL_LINES - len(walker.shell)])
        if python.strip():
            code.append((i, python))
    # tokens are only counted when the cells together are longer than the token bound
    counting = sum(len(python) for _, python in code) > max_tokens
    budget = max_tokens
    parsed = 0
    for i, python in code:
        if counting:
            bound = _token_bound(python, budget, exact=True)
            if bound is None:
                problems.append(f"cell {i}: the notebook's code has more than max_tokens={max_tokens} tokens; "
                                "this and later cells not parsed")
                break
            budget -= bound
        tree, problem = _parse(python)
        if tree is None:
            problems.append(f"cell {i}: {problem}")
            continue
        walker.cell = i
        walker.walk(tree)
        parsed += 1
    return walker.facts(parsed=parsed > 0 or bool(walker.shell), problems=problems, cells=parsed)
