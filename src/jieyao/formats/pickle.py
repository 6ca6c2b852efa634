"""Read the structure of a Python pickle without unpickling it.

A symbolic stack machine walks the opcode stream (protocols 0-5) and builds plain values and small
placeholders (`Global`, `Obj`, `PersistentRef`, `Blob`, ...) instead of importing or calling anything.
From the result it reports what a loader would see (top-level keys, nested option keys, short scalars,
numpy/torch array shapes) and what a loader would do (the globals it would import and call).

Everything is bounded (opcodes, memo, container sizes, nesting, text kept) and nothing raises: a
malformed stream gives a summary with `error` set and whatever was read before it. Raw payloads (array
bytes) are skipped by their length fields and never copied.
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------------------
# public summary types


@dataclass(frozen=True)
class ArrayInfo:
    key: str | None
    """Key path it was stored under ("a/b" for nested dicts, list indexes as numbers); None if unknown."""
    dtype: str | None
    """Numpy-style name: "float32", "float16", "bfloat16", ..."""
    shape: tuple[int, ...] | None
    kind: str
    """"numpy" | "torch"."""
    storage_key: str | None = None
    """torch: the persistent storage key (the `data/N` member of a zip checkpoint)."""
    nbytes: int | None = None
    """numpy: length of the raw payload in the pickle (protocol <= 2 keeps it as a latin-1 string: its
    length in characters when decoded, else in UTF-8 bytes); torch: None (the data is outside the pickle)."""


@dataclass(frozen=True)
class PickleSummary:
    protocol: int | None
    top: str
    """"dict" | "list" | "tuple" | "object" | "scalar" | "unknown"."""
    keys: tuple[str, ...]
    nested: dict[str, tuple[str, ...]]
    scalars: dict[str, object]
    globals: tuple[tuple[str, str], ...]
    calls: tuple[tuple[str, str], ...]
    """Globals a loader would call (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ)."""
    arrays: tuple[ArrayInfo, ...]
    opcodes: int
    end: int
    """Offset just after STOP, or of the opcode where reading stopped."""
    complete: bool
    error: str | None
    top_class: tuple[str, str] | None = None
    """For a top-level object: the global that builds it (e.g. collections.OrderedDict)."""
    value: object = None
    """For a top-level scalar: its value (strings truncated)."""
    persistent_ids: int = 0
    oob_buffers: int = 0
    """Out-of-band buffers (NEXT_BUFFER) the stream refers to."""
    length: int | None = None
    """Items in a top-level dict, list, tuple or set (as kept: bounded by max_items)."""
    element_keys: tuple[str, ...] = ()
    """For a top-level list/tuple whose first element is a dict: that dict's keys (faceset.pak sample
    configs, DFL meta.dat-like lists)."""
    notes: tuple[str, ...] = ()
    """Bounds that were reached without stopping the read (items dropped, memo full, ...)."""
    lengths: dict[str, int] = field(default_factory=dict)
    """For a top-level dict: the length of each value that is a list, tuple, dict or set (as kept, so at most
    max_items): the landmark count of a DFL face dict, the frame count of a faceswap alignments dict."""
    element_scalars: tuple[dict[str, object], ...] = ()
    """For a top-level list/tuple: the scalars of its first `max_elements` dict elements, per element. A value
    built by a call with scalar arguments is given as text, "module.name(args)" (the IntEnum
    `facelib.FaceType.FaceType(4)` of a faceset.pak sample), so per-sample values can be reported."""


def empty_summary(error: str, *, end: int = 0) -> PickleSummary:
    """A summary for bytes that could not be read at all (e.g. a zip member that fails to open)."""
    return PickleSummary(None, "unknown", (), {}, {}, (), (), (), 0, end, False, error)


# Calls that run code, spawn processes, touch files or the network, or import arbitrary modules.
_DANGEROUS_NAMES: dict[str, tuple[str, ...]] = {
    "builtins": ("eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "open", "input",
                 "breakpoint", "globals", "locals", "vars", "apply", "execfile", "file", "reload"),
    "os": ("system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe",
           "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn",
           "posix_spawnp", "fork", "forkpty", "kill", "killpg", "remove", "unlink", "rmdir", "removedirs",
           "rename", "renames", "replace", "chmod", "chown", "putenv", "startfile", "truncate", "write",
           "open", "fdopen", "makedirs", "mkdir", "symlink", "link", "setuid", "setgid"),
    "subprocess": ("Popen", "call", "run", "check_call", "check_output", "getoutput", "getstatusoutput"),
    "runpy": ("_run_code", "_run_module_code", "run_path", "run_module", "_run_module_as_main"),
    "webbrowser": ("open", "open_new", "open_new_tab", "get"),
    "pty": ("spawn", "fork"),
    "shutil": ("rmtree", "move", "copy", "copy2", "copyfile", "copytree", "chown", "unpack_archive"),
    "importlib": ("import_module", "__import__", "reload"),
    "importlib.util": ("spec_from_file_location", "module_from_spec"),
    "pickle": ("loads", "load", "Unpickler", "_loads", "_load"),
    "_pickle": ("loads", "load", "Unpickler"),
    "marshal": ("loads", "load"),
    "types": ("CodeType", "FunctionType", "LambdaType", "MethodType"),
    "code": ("interact", "InteractiveInterpreter", "InteractiveConsole", "compile_command"),
    "codeop": ("compile_command",),
    "ctypes": ("CDLL", "WinDLL", "PyDLL", "OleDLL", "cdll", "windll", "pydll"),
    "socket": ("socket", "create_connection", "create_server", "fromfd"),
    "urllib.request": ("urlopen", "urlretrieve", "build_opener"),
    "http.client": ("HTTPConnection", "HTTPSConnection"),
    "ftplib": ("FTP",),
    "smtplib": ("SMTP",),
    "telnetlib": ("Telnet",),
    "asyncio": ("create_subprocess_shell", "create_subprocess_exec", "subprocess"),
    "asyncio.subprocess": ("create_subprocess_shell", "create_subprocess_exec"),
    "multiprocessing": ("Process",),
    "multiprocessing.util": ("spawnv_passfds",),
    "_posixsubprocess": ("fork_exec",),
    "operator": ("attrgetter", "methodcaller", "itemgetter"),
    "functools": ("partial", "reduce"),
    "sys": ("exit", "setrecursionlimit", "settrace", "setprofile", "addaudithook", "breakpointhook"),
    "bdb": ("Bdb",),
    "pdb": ("Pdb", "run", "runcall", "runeval", "set_trace"),
    "timeit": ("timeit", "repeat", "Timer"),
    "cProfile": ("run", "runctx"),
    "profile": ("run", "runctx"),
    "trace": ("Trace",),
    "numpy.testing._private.utils": ("runstring",),
    "numpy.lib.npyio": ("load",),
    "torch.hub": ("load", "load_state_dict_from_url", "download_url_to_file"),
    "torch": ("load",),
    "torch.serialization": ("load",),
    "torch._inductor.codecache": ("compile_file",),
    "dill": ("loads", "load"),
    "joblib": ("load",),
    "pydoc": ("pipepager", "pager", "tempfilepager"),
    "requests": ("get", "post", "put", "request", "Session"),
    "requests.api": ("get", "post", "put", "request"),
    "aiohttp.client": ("ClientSession", "request"),
    "venv": ("create", "EnvBuilder"),
    "pip": ("main",),
    "pip._internal": ("main",),
    "pip._internal.cli.main": ("main",),
    "ensurepip": ("bootstrap",),
    "zipimport": ("zipimporter",),
    "imp": ("load_source", "load_module", "load_dynamic"),
}
_ALIASES: dict[str, tuple[str, ...]] = {
    "builtins": ("__builtin__", "__builtins__"),
    "os": ("posix", "nt", "_posixsubprocess_os"),
    "subprocess": ("_subprocess",),
    "pickle": ("cPickle",),
    "urllib.request": ("urllib", "urllib2"),
    "http.client": ("httplib",),
}
DANGEROUS_CALLS: frozenset[tuple[str, str]] = frozenset(
    (module, name)
    for base, names in _DANGEROUS_NAMES.items()
    for module in (base, *_ALIASES.get(base, ()))
    for name in names
)
"""(module, name) pairs that run code or touch the system when a loader calls them."""


def dangerous_calls(summary: PickleSummary) -> tuple[tuple[str, str], ...]:
    """The calls (and globals, which a loader imports either way) of `summary` that are dangerous."""
    seen = dict.fromkeys(g for g in (*summary.calls, *summary.globals) if g in DANGEROUS_CALLS)
    return tuple(seen)


# ---------------------------------------------------------------------------------------------------
# placeholder values built by the machine; nothing here is ever imported or called


@dataclass(eq=False, slots=True)
class Global:
    """A global a loader would import (GLOBAL / STACK_GLOBAL / INST)."""

    module: str
    name: str


@dataclass(eq=False, slots=True)
class Obj:
    """The result a loader would get by calling `func` (REDUCE, NEWOBJ, INST, OBJ), then BUILD / APPEND /
    SETITEM on it. Mutable because BUILD and SETITEMS change the object in place (memo refs see it)."""

    func: Any
    args: Any
    how: str
    state: Any = None
    listitems: list[Any] = field(default_factory=list)
    dictflat: list[Any] = field(default_factory=list)
    """SETITEM(S) on the object, flat like PDict.flat."""

    @property
    def dictitems(self) -> list[tuple[Any, Any]]:
        return list(zip(self.dictflat[::2], self.dictflat[1::2], strict=False))


@dataclass(eq=False, slots=True)
class PersistentRef:
    """A persistent id (PERSID / BINPERSID); a loader resolves it with its own persistent_load."""

    pid: Any


@dataclass(eq=False, slots=True)
class Blob:
    """A payload too large to keep (raw array bytes, long strings): only its kind and length."""

    kind: str
    size: int
    offset: int | None = None
    """Where the payload starts in the stream, when it was read from one span of it (None otherwise)."""


@dataclass(eq=False, slots=True)
class Buffer:
    """An out-of-band buffer (NEXT_BUFFER): the data is not in the stream at all."""

    index: int


@dataclass(eq=False, slots=True)
class PDict:
    """A dict as a flat [key, value, key, value, ...] list: keys need not be hashable here, order and
    duplicates are kept, and SETITEMS costs no allocation per pair."""

    flat: list[Any] = field(default_factory=list)

    @property
    def pairs(self) -> list[tuple[Any, Any]]:
        return list(zip(self.flat[::2], self.flat[1::2], strict=False))


@dataclass(eq=False, slots=True)
class PSet:
    items: list[Any] = field(default_factory=list)
    frozen: bool = False


@dataclass(eq=False, slots=True)
class Unknown:
    """A value we chose not to keep (memo full) or cannot know."""

    why: str


@dataclass(eq=False, slots=True)
class BigInt:
    """An integer with more digits than worth converting."""

    nbytes: int


_CONTAINERS = (list, PDict, PSet, Obj)
_BIG_VALUES = (list, PDict, PSet, Obj, tuple)
_DICT_CLASSES = frozenset({("collections", "OrderedDict"), ("collections", "defaultdict"), ("builtins", "dict"),
                           ("__builtin__", "dict"), ("collections", "Counter")})


class _Stop(Exception):
    """Reading ends here; the message becomes the summary's `error`."""


class _Done(Exception):
    """STOP was reached."""


# ---------------------------------------------------------------------------------------------------
# the machine

_MAX_KEEP_BYTES = 4096
"""bytes/bytearray values up to this length are kept (keys, dtype codes); longer ones become Blobs."""
_MAX_KEEP_STR = 1 << 20
"""Strings longer than this (in bytes) are not decoded."""
_MAX_INT_BYTES = 64
_MAX_NAME = 512
_MAX_GLOBALS = 2000
_NL = re.compile(b"\n")

_u1 = struct.Struct("<B").unpack_from
_u2 = struct.Struct("<H").unpack_from
_u4 = struct.Struct("<I").unpack_from
_s4 = struct.Struct("<i").unpack_from
_u8 = struct.Struct("<Q").unpack_from
_f8 = struct.Struct(">d").unpack_from


class _Machine:
    def __init__(self, data: bytes | bytearray | memoryview, offset: int, max_ops: int, max_items: int,
                 max_depth: int, max_memo: int, max_text: int) -> None:
        if isinstance(data, bytes):
            self.buf: Any = data
            self.find_nl: Callable[[int], int] = lambda p: data.find(b"\n", p)
        else:
            view = memoryview(data)
            if view.ndim != 1 or view.itemsize != 1 or not view.c_contiguous:
                view = memoryview(view.tobytes())
            view = view.cast("B") if view.format != "B" else view
            self.buf = view

            def find_nl(p: int) -> int:
                m = _NL.search(view, p)
                return m.start() if m else -1

            self.find_nl = find_nl
        self.n = len(self.buf)
        self.pos = offset
        self.op_start = offset
        self.max_ops = max_ops
        self.max_items = max_items
        self.max_depth = max_depth
        self.memo_soft = max_memo
        self.memo_hard = max_memo * 4
        self.text_left = max_text
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.memo_dropped = 0
        self.dropped = 0
        self.globals: dict[tuple[str, str], None] = {}
        self.calls: dict[tuple[str, str], None] = {}
        self.protocol: int | None = None
        self.ops = 0
        self.persistent_ids = 0
        self.oob = 0
        self.result: Any = None
        self.complete = False
        self.error: str | None = None
        self.notes: list[str] = []
        self.dispatch: list[Callable[[], None] | None] = [None] * 256
        for code, handler in self._handlers().items():
            self.dispatch[code] = handler

    # --- reading primitives -------------------------------------------------------------------------

    def take(self, k: int) -> int:
        """Advance past k bytes and return where they start; claims past the end are truncation."""
        p = self.pos
        if k < 0:
            raise _Stop(f"malformed: negative length {k} at {self.op_start}")
        if p + k > self.n:
            raise _Stop(f"truncated: opcode at {self.op_start} needs {k} bytes, {self.n - p} remain")
        self.pos = p + k
        return p

    def line_span(self) -> tuple[int, int]:
        """Start and end of the newline-terminated argument of a protocol 0 opcode (not copied)."""
        p = self.pos
        end = self.find_nl(p)
        if end < 0:
            raise _Stop(f"truncated: no newline after opcode at {self.op_start}")
        self.pos = end + 1
        return p, end

    def line(self, limit: int = 4096) -> bytes:
        """A short line argument (numbers, names, memo indexes); longer ones are malformed."""
        start, end = self.line_span()
        if end - start > limit:
            raise _Stop(f"malformed: {end - start}-byte line argument at {self.op_start}")
        return bytes(self.buf[start:end])

    def text(self, start: int, size: int, encoding: str = "utf-8") -> Any:
        if size > _MAX_KEEP_STR or size > self.text_left:
            return Blob("str", size, start)
        self.text_left -= size
        try:
            return str(self.buf[start:start + size], encoding, "surrogatepass" if encoding == "utf-8" else "strict")
        except UnicodeDecodeError:
            raise _Stop(f"malformed: undecodable string at {self.op_start}") from None

    def raw(self, start: int, size: int, kind: str) -> Any:
        if size > _MAX_KEEP_BYTES or size > self.text_left:
            return Blob(kind, size, start)
        self.text_left -= size
        data = bytes(self.buf[start:start + size])
        return bytearray(data) if kind == "bytearray" else data

    def legacy_string(self, start: int, size: int) -> Any:
        """Protocol 0-2 byte strings (py2 `str`): ASCII decodes to str like the loader's default."""
        if size > _MAX_KEEP_BYTES or size > self.text_left:
            return Blob("bytes", size, start)
        self.text_left -= size
        data = bytes(self.buf[start:start + size])
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            return data

    # --- stack ---------------------------------------------------------------------------------------

    def pop(self) -> Any:
        if not self.stack:
            raise _Stop(f"malformed: stack underflow at {self.op_start}")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise _Stop(f"malformed: stack underflow at {self.op_start}")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Stop(f"malformed: no MARK for opcode at {self.op_start}")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def keep(self, target_len: int, items: list[Any]) -> list[Any]:
        """The part of `items` a container already holding target_len items may still store."""
        room = self.max_items - target_len
        if room >= len(items):
            return items
        room = max(room, 0)
        self.dropped += len(items) - room
        return items[:room]

    def add_global(self, module: Any, name: Any) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise _Stop(f"malformed: global names must be strings at {self.op_start}")
        g = Global(module[:_MAX_NAME], name[:_MAX_NAME])
        if len(self.globals) < _MAX_GLOBALS:
            self.globals.setdefault((g.module, g.name), None)
        return g

    def add_call(self, func: Any) -> None:
        if isinstance(func, Global) and len(self.calls) < _MAX_GLOBALS:
            self.calls.setdefault((func.module, func.name), None)

    def memo_put(self, index: int, value: Any) -> None:
        memo = self.memo
        small = not isinstance(value, _BIG_VALUES)
        if index in memo or len(memo) < self.memo_soft or (small and len(memo) < self.memo_hard):
            memo[index] = value
        else:
            self.memo_dropped += 1

    def memo_get(self, index: int) -> Any:
        try:
            return self.memo[index]
        except KeyError:
            if self.memo_dropped:
                return Unknown("memo full")
            raise _Stop(f"malformed: memo has no entry {index} at {self.op_start}") from None

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        """The opcode loop. The commonest opcodes of real pickles (memo, short strings, small ints,
        floats, empty containers, MARK, TUPLE1-3, APPENDS/SETITEMS) are handled inline on locals; the rest
        go to the dispatch table, with pos and stack synced around the call."""
        buf, n, dispatch, max_ops, memo = self.buf, self.n, self.dispatch, self.max_ops, self.memo
        metastack, max_depth = self.metastack, self.max_depth
        pos, ops, stack = self.pos, self.ops, self.stack
        next_check = min(ops + 1024, max_ops)
        try:
            while True:
                if ops >= next_check:  # every 1024 opcodes: the opcode budget and the stack size
                    self.op_start = pos
                    if ops >= max_ops:
                        raise _Stop(f"limit: {max_ops} opcodes read")
                    if len(stack) > self.max_items:
                        raise _Stop(f"limit: stack holds more than {self.max_items} items")
                    next_check = min(ops + 1024, max_ops)
                if pos >= n:
                    self.op_start = pos
                    raise _Stop("truncated: no STOP before end of data" if ops else "truncated: empty")
                ops += 1
                op = buf[pos]
                if op == 0x94 or op == 0x71 or op == 0x72:  # MEMOIZE, BINPUT, LONG_BINPUT
                    if not stack:
                        self.op_start = pos
                        raise _Stop(f"malformed: stack underflow at {pos}")
                    if op == 0x94:
                        index = len(memo) + self.memo_dropped
                        pos += 1
                    elif op == 0x71:
                        if pos + 2 > n:
                            break
                        index = buf[pos + 1]
                        pos += 2
                    else:
                        if pos + 5 > n:
                            break
                        index = _u4(buf, pos + 1)[0]
                        pos += 5
                    if len(memo) < self.memo_soft:
                        memo[index] = stack[-1]
                    else:
                        self.memo_put(index, stack[-1])
                elif op == 0x8C:  # SHORT_BINUNICODE
                    if pos + 2 > n:
                        break
                    start = pos + 2
                    size = buf[pos + 1]
                    end = start + size
                    if end > n:
                        break
                    if size <= self.text_left:
                        self.text_left -= size
                        try:
                            stack.append(str(buf[start:end], "utf-8", "surrogatepass"))
                        except UnicodeDecodeError:
                            self.op_start = pos
                            raise _Stop(f"malformed: undecodable string at {pos}") from None
                    else:
                        stack.append(Blob("str", size, start))
                    pos = end
                elif op == 0x4B:  # BININT1
                    if pos + 2 > n:
                        break
                    stack.append(buf[pos + 1])
                    pos += 2
                elif op == 0x68 or op == 0x6A:  # BINGET, LONG_BINGET
                    if op == 0x68:
                        if pos + 2 > n:
                            break
                        index = buf[pos + 1]
                        self.op_start = pos
                        pos += 2
                    else:
                        if pos + 5 > n:
                            break
                        index = _u4(buf, pos + 1)[0]
                        self.op_start = pos
                        pos += 5
                    stack.append(memo[index] if index in memo else self.memo_get(index))
                elif op == 0x47:  # BINFLOAT
                    if pos + 9 > n:
                        break
                    stack.append(_f8(buf, pos + 1)[0])
                    pos += 9
                elif op == 0x28:  # MARK
                    if len(metastack) >= max_depth:
                        self.op_start = pos
                        raise _Stop(f"limit: MARKs nested deeper than {max_depth}")
                    metastack.append(stack)
                    stack = self.stack = []
                    pos += 1
                elif op == 0x65 or op == 0x75:  # APPENDS, SETITEMS
                    self.op_start = pos
                    if not metastack:
                        raise _Stop(f"malformed: no MARK for opcode at {pos}")
                    items = stack
                    stack = self.stack = metastack.pop()
                    if not stack:
                        raise _Stop(f"malformed: stack underflow at {pos}")
                    if op == 0x65:
                        self.append_items(stack[-1], items)
                    else:
                        self.set_items(stack[-1], items)
                    pos += 1
                elif op == 0x5D:  # EMPTY_LIST
                    stack.append([])
                    pos += 1
                elif op == 0x7D:  # EMPTY_DICT
                    stack.append(PDict())
                    pos += 1
                elif op == 0x4E:  # NONE
                    stack.append(None)
                    pos += 1
                elif 0x85 <= op <= 0x87 and len(stack) >= op - 0x84:  # TUPLE1-3
                    k = op - 0x84
                    items = stack[-k:]
                    del stack[-k:]
                    stack.append(tuple(items))
                    pos += 1
                else:
                    handler = dispatch[op]
                    self.op_start = pos
                    if handler is None:
                        raise _Stop(f"unknown opcode 0x{op:02x} at {pos}")
                    self.pos = pos + 1
                    self.stack = stack
                    handler()
                    pos, stack = self.pos, self.stack
            # a fast path found its argument cut short
            self.op_start = pos
            raise _Stop(f"truncated: opcode at {pos} runs past the end of data")
        except _Done:
            self.complete = True
        except _Stop as stop:
            self.error = str(stop)
            self.pos = self.op_start
        finally:
            self.ops = ops

    def append_items(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(self.keep(len(target), items))
        elif isinstance(target, Obj):
            target.listitems.extend(self.keep(len(target.listitems), items))
        elif not isinstance(target, Unknown):
            raise _Stop(f"malformed: APPEND to {type(target).__name__} at {self.op_start}")

    def set_items(self, target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise _Stop(f"malformed: odd number of items for SETITEMS at {self.op_start}")
        if isinstance(target, PDict):
            flat = target.flat
        elif isinstance(target, Obj):
            flat = target.dictflat
        else:
            flat = None
        if flat is not None:
            room = 2 * self.max_items - len(flat)
            if room >= len(items):
                flat.extend(items)
            else:
                room = max(room, 0)
                self.dropped += (len(items) - room) // 2
                flat.extend(items[:room])
        if flat is None and not isinstance(target, Unknown):
            raise _Stop(f"malformed: SETITEM on {type(target).__name__} at {self.op_start}")

    # --- handlers ------------------------------------------------------------------------------------

    def _handlers(self) -> dict[int, Callable[[], None]]:
        buf = self.buf

        def proto() -> None:
            (v,) = _u1(buf, self.take(1))
            if v > 5:
                raise _Stop(f"malformed: unsupported protocol {v}")
            if self.protocol is None:
                self.protocol = v

        def frame() -> None:
            # Frames only group opcodes; one that claims more than remains is a cut download. Read on:
            # the keys before the cut still count, and running out of data reports the truncation.
            (size,) = _u8(buf, self.take(8))
            if size > self.n - self.pos and len(self.notes) < 20:
                left = self.n - self.pos
                self.notes.append(f"truncated: FRAME at {self.op_start} claims {size} bytes, {left} remain")

        def stop() -> None:
            self.result = self.pop()
            raise _Done

        def mark() -> None:
            if len(self.metastack) >= self.max_depth:
                raise _Stop(f"limit: MARKs nested deeper than {self.max_depth}")
            self.metastack.append(self.stack)
            self.stack = []

        def pop_() -> None:
            if self.stack:
                self.stack.pop()
            else:
                self.pop_mark()

        def pop_mark() -> None:
            self.pop_mark()

        def dup() -> None:
            self.stack.append(self.top())

        # numbers
        def binint() -> None:
            self.stack.append(_s4(buf, self.take(4))[0])

        def binint1() -> None:
            self.stack.append(_u1(buf, self.take(1))[0])

        def binint2() -> None:
            self.stack.append(_u2(buf, self.take(2))[0])

        def long_n(size: int) -> None:
            start = self.take(size)
            if size > _MAX_INT_BYTES:
                self.stack.append(BigInt(size))
            else:
                self.stack.append(int.from_bytes(buf[start:start + size], "little", signed=True))

        def long1() -> None:
            long_n(_u1(buf, self.take(1))[0])

        def long4() -> None:
            long_n(_s4(buf, self.take(4))[0])

        def int_text(text: bytes) -> Any:
            text = text.strip()
            if len(text) > 4 * _MAX_INT_BYTES:
                return BigInt(len(text))
            try:
                return int(text)
            except ValueError:
                raise _Stop(f"malformed: bad integer at {self.op_start}") from None

        def number_line() -> bytes | None:
            """The digits of INT/LONG; None (a BigInt) when there are too many to be worth converting."""
            start, end = self.line_span()
            return None if end - start > 4 * _MAX_INT_BYTES else bytes(buf[start:end])

        def int_() -> None:
            text = number_line()
            if text is None:
                self.stack.append(BigInt(0))
            elif text == b"00":
                self.stack.append(False)
            elif text == b"01":
                self.stack.append(True)
            else:
                self.stack.append(int_text(text))

        def long_() -> None:
            text = number_line()
            if text is None:
                self.stack.append(BigInt(0))
            else:
                self.stack.append(int_text(text[:-1] if text.endswith(b"L") else text))

        def float_() -> None:
            text = self.line()
            try:
                self.stack.append(float(text))
            except ValueError:
                raise _Stop(f"malformed: bad float at {self.op_start}") from None

        def binfloat() -> None:
            self.stack.append(_f8(buf, self.take(8))[0])

        def none() -> None:
            self.stack.append(None)

        def newtrue() -> None:
            self.stack.append(True)

        def newfalse() -> None:
            self.stack.append(False)

        # strings and bytes
        def string() -> None:
            start, end = self.line_span()
            if end - start > _MAX_KEEP_BYTES + 3 or end - start > self.text_left:
                self.stack.append(Blob("bytes", end - start))
                return
            text = bytes(buf[start:end]).rstrip(b"\r")
            if len(text) < 2 or text[0] != text[-1] or text[:1] not in (b"'", b'"'):
                raise _Stop(f"malformed: STRING not quoted at {self.op_start}")
            body = text[1:-1]
            try:
                data = codecs.escape_decode(body)[0]
            except ValueError:
                raise _Stop(f"malformed: bad STRING escape at {self.op_start}") from None
            self.text_left -= len(data)
            try:
                self.stack.append(data.decode("ascii"))
            except UnicodeDecodeError:
                self.stack.append(data)

        def binstring() -> None:
            size = _s4(buf, self.take(4))[0]
            self.stack.append(self.legacy_string(self.take(size), size))

        def short_binstring() -> None:
            size = _u1(buf, self.take(1))[0]
            self.stack.append(self.legacy_string(self.take(size), size))

        def unicode_() -> None:
            start, end = self.line_span()
            if end - start > _MAX_KEEP_STR or end - start > self.text_left:
                self.stack.append(Blob("str", end - start))
                return
            self.text_left -= end - start
            try:
                self.stack.append(str(buf[start:end], "raw-unicode-escape"))
            except UnicodeDecodeError:
                raise _Stop(f"malformed: bad UNICODE escape at {self.op_start}") from None

        def short_binunicode() -> None:
            size = _u1(buf, self.take(1))[0]
            self.stack.append(self.text(self.take(size), size))

        def binunicode() -> None:
            size = _u4(buf, self.take(4))[0]
            self.stack.append(self.text(self.take(size), size))

        def binunicode8() -> None:
            size = _u8(buf, self.take(8))[0]
            self.stack.append(self.text(self.take(size), size))

        def binbytes() -> None:
            size = _u4(buf, self.take(4))[0]
            self.stack.append(self.raw(self.take(size), size, "bytes"))

        def short_binbytes() -> None:
            size = _u1(buf, self.take(1))[0]
            self.stack.append(self.raw(self.take(size), size, "bytes"))

        def binbytes8() -> None:
            size = _u8(buf, self.take(8))[0]
            self.stack.append(self.raw(self.take(size), size, "bytes"))

        def bytearray8() -> None:
            size = _u8(buf, self.take(8))[0]
            self.stack.append(self.raw(self.take(size), size, "bytearray"))

        def next_buffer() -> None:
            self.stack.append(Buffer(self.oob))
            self.oob += 1

        def readonly_buffer() -> None:
            self.top()

        # containers
        def empty_list() -> None:
            self.stack.append([])

        def empty_tuple() -> None:
            self.stack.append(())

        def empty_dict() -> None:
            self.stack.append(PDict())

        def empty_set() -> None:
            self.stack.append(PSet())

        def list_() -> None:
            items = self.pop_mark()
            self.stack.append(self.keep(0, items))

        def tuple_() -> None:
            items = self.pop_mark()
            self.stack.append(tuple(self.keep(0, items)))

        def tuple1() -> None:
            a = self.pop()
            self.stack.append((a,))

        def tuple2() -> None:
            b = self.pop()
            a = self.pop()
            self.stack.append((a, b))

        def tuple3() -> None:
            c = self.pop()
            b = self.pop()
            a = self.pop()
            self.stack.append((a, b, c))

        def dict_() -> None:
            items = self.pop_mark()
            d = PDict()
            self.set_items(d, items)
            self.stack.append(d)

        def frozenset_() -> None:
            items = self.pop_mark()
            self.stack.append(PSet(self.keep(0, items), frozen=True))

        def append() -> None:
            value = self.pop()
            self.append_items(self.top(), [value])

        def appends() -> None:
            items = self.pop_mark()
            self.append_items(self.top(), items)

        def setitem() -> None:
            value = self.pop()
            key = self.pop()
            self.set_items(self.top(), [key, value])

        def setitems() -> None:
            items = self.pop_mark()
            self.set_items(self.top(), items)

        def additems() -> None:
            items = self.pop_mark()
            target = self.top()
            if isinstance(target, PSet):
                target.items.extend(self.keep(len(target.items), items))
            elif not isinstance(target, (Obj, Unknown)):
                raise _Stop(f"malformed: ADDITEMS to {type(target).__name__} at {self.op_start}")

        # memo
        def get() -> None:
            self.stack.append(self.memo_get(int_text(self.line())))

        def binget() -> None:
            self.stack.append(self.memo_get(_u1(buf, self.take(1))[0]))

        def long_binget() -> None:
            self.stack.append(self.memo_get(_u4(buf, self.take(4))[0]))

        def put() -> None:
            index = int_text(self.line())
            if not isinstance(index, int) or index < 0:
                raise _Stop(f"malformed: bad PUT index at {self.op_start}")
            self.memo_put(index, self.top())

        def binput() -> None:
            self.memo_put(_u1(buf, self.take(1))[0], self.top())

        def long_binput() -> None:
            self.memo_put(_u4(buf, self.take(4))[0], self.top())

        def memoize() -> None:
            self.memo_put(len(self.memo) + self.memo_dropped, self.top())

        # globals, calls, objects
        def name_line() -> str:
            raw = self.line()
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _Stop(f"malformed: undecodable global name at {self.op_start}") from None

        def global_() -> None:
            module = name_line()
            name = name_line()
            self.stack.append(self.add_global(module, name))

        def stack_global() -> None:
            name = self.pop()
            module = self.pop()
            self.stack.append(self.add_global(module, name))

        def ext(size: int) -> None:
            start = self.take(size)
            code = int.from_bytes(buf[start:start + size], "little")
            self.stack.append(self.add_global("copyreg._extension_registry", str(code)))

        def ext1() -> None:
            ext(1)

        def ext2() -> None:
            ext(2)

        def ext4() -> None:
            ext(4)

        def reduce() -> None:
            args = self.pop()
            func = self.pop()
            self.add_call(func)
            self.stack.append(Obj(func, args, "reduce"))

        def build() -> None:
            state = self.pop()
            target = self.top()
            if isinstance(target, Obj):
                target.state = state
            elif isinstance(target, Global) and len(self.notes) < 20:
                self.notes.append(f"BUILD sets attributes on global {target.module}.{target.name}"[:300])

        def inst() -> None:
            module = name_line()
            name = name_line()
            cls = self.add_global(module, name)
            args = self.pop_mark()
            self.add_call(cls)
            self.stack.append(Obj(cls, tuple(self.keep(0, args)), "inst"))

        def obj() -> None:
            items = self.pop_mark()
            if not items:
                raise _Stop(f"malformed: OBJ without a class at {self.op_start}")
            self.add_call(items[0])
            self.stack.append(Obj(items[0], tuple(self.keep(0, items[1:])), "obj"))

        def newobj() -> None:
            args = self.pop()
            cls = self.pop()
            self.add_call(cls)
            self.stack.append(Obj(cls, args, "newobj"))

        def newobj_ex() -> None:
            kwargs = self.pop()
            args = self.pop()
            cls = self.pop()
            self.add_call(cls)
            self.stack.append(Obj(cls, (args, kwargs), "newobj_ex"))

        def persid() -> None:
            text = self.line(1 << 16)
            self.persistent_ids += 1
            self.stack.append(PersistentRef(text.decode("ascii", "replace")))

        def binpersid() -> None:
            pid = self.pop()
            self.persistent_ids += 1
            self.stack.append(PersistentRef(pid))

        return {
            0x80: proto, 0x95: frame, ord("."): stop, ord("("): mark, ord("0"): pop_, ord("1"): pop_mark,
            ord("2"): dup,
            ord("J"): binint, ord("K"): binint1, ord("M"): binint2, 0x8A: long1, 0x8B: long4, ord("I"): int_,
            ord("L"): long_, ord("F"): float_, ord("G"): binfloat, ord("N"): none, 0x88: newtrue, 0x89: newfalse,
            ord("S"): string, ord("T"): binstring, ord("U"): short_binstring, ord("V"): unicode_,
            0x8C: short_binunicode, ord("X"): binunicode, 0x8D: binunicode8, ord("B"): binbytes,
            ord("C"): short_binbytes, 0x8E: binbytes8, 0x96: bytearray8, 0x97: next_buffer, 0x98: readonly_buffer,
            ord("]"): empty_list, ord(")"): empty_tuple, ord("}"): empty_dict, 0x8F: empty_set, ord("l"): list_,
            ord("t"): tuple_, 0x85: tuple1, 0x86: tuple2, 0x87: tuple3, ord("d"): dict_, 0x91: frozenset_,
            ord("a"): append, ord("e"): appends, ord("s"): setitem, ord("u"): setitems, 0x90: additems,
            ord("g"): get, ord("h"): binget, ord("j"): long_binget, ord("p"): put, ord("q"): binput,
            ord("r"): long_binput, 0x94: memoize,
            ord("c"): global_, 0x93: stack_global, 0x82: ext1, 0x83: ext2, 0x84: ext4, ord("R"): reduce,
            ord("b"): build, ord("i"): inst, ord("o"): obj, 0x81: newobj, 0x92: newobj_ex, ord("P"): persid,
            ord("Q"): binpersid,
        }

    # --- after reading -------------------------------------------------------------------------------

    def partial_root(self) -> Any:
        """For a stream that stopped early: close every open MARK as SETITEMS/APPENDS would have, so the
        keys read so far (a truncated download's dict) are still reported."""
        stack = self.stack
        for parent in reversed(self.metastack):
            if parent:
                _merge_pending(parent[-1], stack, self.max_items)
            stack = parent
        self.metastack = []
        if len(stack) > 1:  # protocol 0-2 single SETITEM/APPEND still pending on the outermost level
            _merge_pending(stack[0], stack[1:], self.max_items)
        return stack[0] if stack else None


def _merge_pending(target: Any, items: list[Any], max_items: int) -> None:
    if isinstance(target, PDict) or (isinstance(target, Obj) and _is_dict_class(target.func)):
        store = target.flat if isinstance(target, PDict) else target.dictflat
        store.extend(items[: min(len(items) & ~1, max(0, 2 * max_items - len(store)))])
    elif isinstance(target, list):
        target.extend(items[: max(0, max_items - len(target))])
    elif isinstance(target, PSet):
        target.items.extend(items[: max(0, max_items - len(target.items))])


def _is_dict_class(func: Any) -> bool:
    return isinstance(func, Global) and (func.module, func.name) in _DICT_CLASSES


# ---------------------------------------------------------------------------------------------------
# interpreting the values: keys, scalars, arrays

_MAX_KEYS = 10_000
_MAX_NESTED_DICTS = 500
_MAX_NESTED_KEYS = 2_000
_MAX_SCALARS = 1_000
_MAX_ARRAYS = 20_000
_MAX_KEY_CHARS = 1_000
_MAX_SCALAR_CHARS = 200


def render(value: Any, limit: int = _MAX_KEY_CHARS) -> str:
    """A short, bounded, cycle-safe text for a key: str as is, bytes/ints/others as repr-like text."""
    out: list[str] = []
    budget = [limit]
    _render_into(value, out, budget, 0)
    return "".join(out)[:limit]


def _render_into(value: Any, out: list[str], budget: list[int], depth: int) -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        text = value if depth == 0 else repr(value[:limit_for(budget)])
    elif isinstance(value, (bytes, bytearray)):
        text = repr(bytes(value[: limit_for(budget)]))
    elif value is None or isinstance(value, (bool, int, float)):
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 4000 else "<int>"
    elif isinstance(value, Global):
        text = f"{value.module}.{value.name}"
    elif isinstance(value, Obj):
        text = f"<{render(value.func, 100) if depth < 3 else '...'}()>"
    elif isinstance(value, Blob):
        text = f"<{value.kind} len={value.size}>"
    elif isinstance(value, tuple) and depth < 4:
        out.append("(")
        budget[0] -= 1
        for i, item in enumerate(value[:16]):
            if i:
                out.append(", ")
            _render_into(item, out, budget, depth + 1)
        out.append(",)" if len(value) == 1 else ")")
        return
    else:
        text = f"<{type(value).__name__}>"
    out.append(text)
    budget[0] -= len(text)


def limit_for(budget: list[int]) -> int:
    return max(budget[0], 0)


def _dict_pairs(value: Any) -> list[tuple[Any, Any]] | None:
    """(key, value) pairs of a dict-like value: a dict, an OrderedDict-like object, or an object whose
    BUILD state is a dict (a pickled class instance)."""
    if isinstance(value, PDict):
        return value.pairs
    if isinstance(value, Obj):
        if value.dictflat:
            return value.dictitems
        if _is_dict_class(value.func):
            args = value.args
            if isinstance(args, tuple) and args and isinstance(args[0], (list, tuple)):  # OrderedDict([(k, v)])
                return [(p[0], p[1]) for p in args[0] if isinstance(p, (list, tuple)) and len(p) == 2]
            return []
        state = value.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], PDict):
            state = state[0]
        if isinstance(state, PDict):
            return state.pairs
    return None


def _keyed(pairs: list[tuple[Any, Any]], limit: int) -> dict[str, Any]:
    """Rendered key -> value with dict semantics (first position, last value), bounded."""
    out: dict[str, Any] = {}
    for key, value in pairs[: limit * 4]:
        text = render(key)
        if text in out or len(out) < limit:
            out[text] = value
    return out


def _scalar(value: Any) -> object | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 256 else None
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return value[:_MAX_SCALAR_CHARS]
    return None


_NUMPY_RECONSTRUCT = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")})
_NUMPY_FROMBUFFER = frozenset({("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")})
_TORCH_TENSOR = frozenset({"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_qtensor"})
_TORCH_WRAPPERS = frozenset({"_rebuild_parameter", "_rebuild_parameter_with_state"})

_NUMPY_KINDS = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
_NUMPY_NAMES = {"b1": "bool", "?": "bool", "O": "object", "O4": "object", "O8": "object", "e": "float16",
                "f": "float32", "d": "float64", "g": "float128", "h": "int16", "i": "int32", "l": "int64",
                "q": "int64", "b": "int8", "B": "uint8", "H": "uint16", "I": "uint32", "L": "uint64",
                "Q": "uint64", "F": "complex64", "D": "complex128"}
_NUMPY_WORDS = frozenset({"bool", "object", "bfloat16", "float16", "float32", "float64", "float128", "int8",
                          "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "complex64",
                          "complex128", "complex256", "longdouble"})

_TORCH_STORAGE = {
    "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16", "DoubleStorage": "float64",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
}
_TORCH_DTYPES = {
    "float32": "float32", "float": "float32", "float16": "float16", "half": "float16", "bfloat16": "bfloat16",
    "float64": "float64", "double": "float64", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
    "uint64": "uint64", "bool": "bool", "complex64": "complex64", "cfloat": "complex64", "complex128": "complex128",
    "cdouble": "complex128", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz", "qint8": "qint8",
    "quint8": "quint8", "qint32": "qint32",
}


def numpy_dtype_name(code: str) -> str | None:
    """'<f4' / 'f4' / 'float32' / 'e' -> numpy's name ('float32', 'float16', ...)."""
    code = code.strip()
    if code in _NUMPY_WORDS:
        return code
    if code[:1] in "<>|=!":
        code = code[1:]
    if code in _NUMPY_NAMES:
        return _NUMPY_NAMES[code]
    m = re.fullmatch(r"([a-zA-Z])(\d+)", code)
    if not m:
        return code or None
    kind, size = m.group(1), int(m.group(2))
    if kind in _NUMPY_KINDS:
        return f"{_NUMPY_KINDS[kind]}{size * 8}"
    if kind == "b" and size == 1:
        return "bool"
    if kind == "V":
        return f"void{size * 8}"
    if kind == "S":
        return f"bytes{size * 8}"
    if kind == "U":
        return f"str{size * 32}"
    if kind in "Mm":
        return "datetime64" if kind == "M" else "timedelta64"
    return code


def _numpy_dtype(value: Any) -> str | None:
    if isinstance(value, str):
        return numpy_dtype_name(value)
    if isinstance(value, Obj) and isinstance(value.func, Global) and value.func.name == "dtype":
        args = value.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            return numpy_dtype_name(args[0])
    if isinstance(value, Global) and value.module.startswith("numpy"):
        name = value.name.removesuffix("DType").lower()
        return numpy_dtype_name(name)
    return None


def _int_tuple(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def _nbytes(value: Any) -> int | None:
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, Blob):
        return value.size
    if isinstance(value, Obj) and isinstance(value.args, tuple) and value.args:  # _codecs.encode(str, 'latin1')
        return _nbytes(value.args[0])
    return None


def _torch_dtype(value: Any) -> str | None:
    if isinstance(value, Global) and value.module.startswith("torch"):
        if value.name in _TORCH_STORAGE:
            return _TORCH_STORAGE[value.name]
        return _TORCH_DTYPES.get(value.name)
    return None


def array_info(value: Any, key: str | None) -> ArrayInfo | None:
    """An ArrayInfo when `value` is a numpy array or torch tensor as its pickle rebuilds it."""
    if not isinstance(value, Obj) or not isinstance(value.func, Global):
        return None
    func = (value.func.module, value.func.name)
    args = value.args if isinstance(value.args, tuple) else ()
    if func in _NUMPY_RECONSTRUCT:
        state = value.state
        if isinstance(state, tuple) and len(state) == 4:
            state = (1, *state)
        if isinstance(state, tuple) and len(state) == 5:
            return ArrayInfo(key, _numpy_dtype(state[2]), _int_tuple(state[1]), "numpy", None, _nbytes(state[4]))
        return ArrayInfo(key, None, None, "numpy")
    if func in _NUMPY_FROMBUFFER:
        if len(args) >= 3:
            return ArrayInfo(key, _numpy_dtype(args[1]), _int_tuple(args[2]), "numpy", None, _nbytes(args[0]))
        return ArrayInfo(key, None, None, "numpy")
    if func[0] == "torch._utils":
        if func[1] in _TORCH_WRAPPERS and args:
            return array_info(args[0], key)
        if func[1] in _TORCH_TENSOR:
            return _torch_tensor(func[1], args, key)
        if func[1] == "_rebuild_meta_tensor_no_storage" and len(args) >= 2:
            return ArrayInfo(key, _torch_dtype(args[0]), _int_tuple(args[1]), "torch")
    return None


def _torch_tensor(func: str, args: tuple[Any, ...], key: str | None) -> ArrayInfo:
    storage = args[0] if args else None
    dtype: str | None = None
    storage_key: str | None = None
    if isinstance(storage, PersistentRef) and isinstance(storage.pid, tuple) and len(storage.pid) >= 3:
        pid = storage.pid
        dtype = _torch_dtype(pid[1])
        storage_key = render(pid[2], 200)
    if func == "_rebuild_tensor_v3" and len(args) >= 7:
        dtype = _torch_dtype(args[6]) or dtype
    shape = _int_tuple(args[2]) if len(args) >= 3 else None
    return ArrayInfo(key, dtype, shape, "torch", storage_key)


_WALKABLE = (list, tuple, PDict, PSet, Obj, PersistentRef)
_SAME = object()
"""Key-path segment marker: the child sits at its parent's path (BUILD state, call args)."""


def _children(value: Any) -> list[tuple[Any, Any]]:
    """What to walk inside a value: (raw key or index or _SAME, child), only children that can hold
    arrays, so dicts of scalars cost nothing to walk."""
    if isinstance(value, PDict):
        flat = value.flat
        return [(flat[i - 1], v) for i, v in enumerate(flat) if i & 1 and isinstance(v, _WALKABLE)]
    if isinstance(value, (list, tuple)):
        return [(i, v) for i, v in enumerate(value) if isinstance(v, _WALKABLE)]
    if isinstance(value, PSet):
        return [(i, v) for i, v in enumerate(value.items) if isinstance(v, _WALKABLE)]
    if isinstance(value, Obj):
        flat = value.dictflat
        out = [(flat[i - 1], v) for i, v in enumerate(flat) if i & 1 and isinstance(v, _WALKABLE)]
        out += [(i, v) for i, v in enumerate(value.listitems) if isinstance(v, _WALKABLE)]
        pairs = _dict_pairs(value) if not value.dictflat else None
        if pairs:
            out += [(k, v) for k, v in pairs if isinstance(v, _WALKABLE)]
        elif isinstance(value.state, _WALKABLE):
            out.append((_SAME, value.state))
        if isinstance(value.args, tuple) and not _is_dict_class(value.func):
            out += [(_SAME, v) for v in value.args if isinstance(v, _WALKABLE)]
        return out
    if isinstance(value, PersistentRef) and isinstance(value.pid, _WALKABLE):
        return [(_SAME, value.pid)]
    return []


def _join(path: str | None, segment: Any) -> str | None:
    if segment is _SAME:
        return path
    text = str(segment) if isinstance(segment, int) else render(segment)
    return f"{path}/{text}" if path else text


def _walk_arrays(root: Any, max_depth: int, max_nodes: int) -> tuple[list[ArrayInfo], str | None]:
    """Every array/tensor reachable from root, depth first in key order; cycle-safe and bounded."""
    found, problem = walk_array_values(root, max_depth, max_nodes)
    return [info for info, _ in found], problem


def walk_array_values(root: Any, max_depth: int = 100,
                      max_nodes: int = 400_000) -> tuple[list[tuple[ArrayInfo, Any]], str | None]:
    """Like the summary's array walk, but each ArrayInfo comes with the placeholder value (an `Obj`) that
    rebuilds it, so a caller can find its payload (`Blob.offset`, torch storage arguments)."""
    arrays: list[tuple[ArrayInfo, Any]] = []
    seen: set[int] = set()
    todo: list[tuple[Any, str | None, int]] = [(root, None, 0)]
    nodes = 0
    problem: str | None = None
    while todo:
        value, path, depth = todo.pop()
        if not isinstance(value, _WALKABLE) or id(value) in seen:
            continue
        seen.add(id(value))
        info = array_info(value, path)
        if info is not None:
            if len(arrays) < _MAX_ARRAYS:
                arrays.append((info, value))
            continue
        if depth >= max_depth:
            problem = f"limit: values nested deeper than {max_depth}"
            continue
        nodes += 1
        if nodes > max_nodes:
            problem = problem or f"limit: more than {max_nodes} containers to walk"
            break
        for segment, child in reversed(_children(value)):
            if id(child) not in seen:
                todo.append((child, _join(path, segment), depth + 1))
    return arrays, problem


def _top_kind(root: Any) -> str:
    if isinstance(root, PDict) or (isinstance(root, Obj) and (_is_dict_class(root.func) or root.dictflat)):
        return "dict"
    if isinstance(root, list):
        return "list"
    if isinstance(root, tuple):
        return "tuple"
    if isinstance(root, (Obj, Global, PersistentRef, PSet, Buffer)):
        return "object"
    if root is None or isinstance(root, (str, bytes, bytearray, int, float, Blob, BigInt)):
        return "scalar"
    return "unknown"


def _summarise(m: _Machine, max_elements: int = 256) -> PickleSummary:
    root = m.result if m.complete else m.partial_root()
    has_root = m.complete or root is not None
    top = _top_kind(root) if has_root else "unknown"
    keys: tuple[str, ...] = ()
    nested: dict[str, tuple[str, ...]] = {}
    scalars: dict[str, object] = {}
    lengths: dict[str, int] = {}
    pairs = _dict_pairs(root) if has_root else None
    if pairs is not None:
        items = _keyed(pairs, _MAX_KEYS)
        keys = tuple(items)
        lengths = _lengths(items)
        for key, value in items.items():
            sub = _dict_pairs(value)
            if sub is not None and len(nested) < _MAX_NESTED_DICTS:
                sub_items = _keyed(sub, _MAX_NESTED_KEYS)
                nested[key] = tuple(sub_items)
                for sub_key, sub_value in sub_items.items():
                    add_scalar(scalars, f"{key}/{sub_key}", sub_value)
            else:
                add_scalar(scalars, key, value)
    arrays, problem = _walk_arrays(root, m.max_depth, m.max_items * 20) if has_root else ([], None)
    error = m.error or problem
    notes = list(m.notes[:20])
    if m.dropped:
        notes.append(f"limit: {m.dropped} container items beyond {m.max_items} per container not kept")
    if m.memo_dropped:
        notes.append(f"limit: memo full, {m.memo_dropped} entries not kept")
    if problem and m.error:
        notes.append(problem)
    top_class = None
    if isinstance(root, Obj) and isinstance(root.func, Global):
        top_class = (root.func.module, root.func.name)
    value = _scalar(root) if top == "scalar" else None
    end = m.pos if m.complete else m.op_start
    length = _length(root) if has_root else None
    element_keys: tuple[str, ...] = ()
    if isinstance(root, (list, tuple)) and root:
        first = _dict_pairs(root[0])
        element_keys = tuple(_keyed(first, _MAX_NESTED_KEYS)) if first is not None else ()
    element_scalars = _element_scalars(root, max_elements) if isinstance(root, (list, tuple)) else ()
    return PickleSummary(
        protocol=m.protocol, top=top, keys=keys, nested=nested, scalars=scalars, globals=tuple(m.globals),
        calls=tuple(m.calls), arrays=tuple(arrays), opcodes=m.ops, end=end, complete=m.complete, error=error,
        top_class=top_class, value=value, persistent_ids=m.persistent_ids, oob_buffers=m.oob, length=length,
        element_keys=element_keys, notes=tuple(notes), lengths=lengths, element_scalars=element_scalars,
    )


def _lengths(items: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in items.items():
        if isinstance(value, (list, tuple, PDict, PSet)) or (isinstance(value, Obj) and _is_dict_class(value.func)):
            size = _length(value)
            if size is not None:
                out[key] = size
    return out


_MAX_CALL_TEXT = 200


def _call_text(value: Any) -> str | None:
    """"module.name(1, 'a')" for a value built by calling a global with a few scalar arguments."""
    if not isinstance(value, Obj) or not isinstance(value.func, Global) or not isinstance(value.args, tuple):
        return None
    args = value.args
    if len(args) > 4 or not all(a is None or isinstance(a, (bool, int, float, str)) for a in args):
        return None
    shown = ", ".join(repr(a[:40] if isinstance(a, str) else a) if not isinstance(a, int) or a.bit_length() < 64
                      else "<int>" for a in args)
    return f"{value.func.module}.{value.func.name}({shown})"[:_MAX_CALL_TEXT]


def _element_scalars(root: list[Any] | tuple[Any, ...], limit: int) -> tuple[dict[str, object], ...]:
    out: list[dict[str, object]] = []
    for element in root[: max(0, limit)]:
        pairs = _dict_pairs(element)
        scalars: dict[str, object] = {}
        out.append(scalars)  # one per element, so positions match the list's (non-dicts stay empty)
        if pairs is None:
            continue
        for key, value in _keyed(pairs, 64).items():
            text = _call_text(value)
            if text is not None:
                scalars[key] = text
            else:
                add_scalar(scalars, key, value)
    return tuple(out)


def _length(root: Any) -> int | None:
    if isinstance(root, (list, tuple)):
        return len(root)
    if isinstance(root, PSet):
        return len(root.items)
    pairs = _dict_pairs(root)
    return None if pairs is None else len(pairs)


def add_scalar(scalars: dict[str, object], key: str, value: Any) -> None:
    if len(scalars) < _MAX_SCALARS:
        s = _scalar(value)
        if s is not None:
            scalars[key] = s


# ---------------------------------------------------------------------------------------------------
# entry points


def read_pickle(data: bytes | bytearray | memoryview, *, offset: int = 0, max_ops: int = 5_000_000,
                max_items: int = 20_000, max_depth: int = 100, max_memo: int = 100_000,
                max_text: int = 32 << 20, max_elements: int = 256) -> PickleSummary:
    """Summarise the pickle starting at `offset`. Never raises, never imports or calls anything.

    max_ops: opcodes read; max_items: items kept per container (and stack size); max_depth: MARK nesting
    and value nesting walked; max_memo: memo entries kept (containers; 4x that for scalars); max_text:
    total bytes of strings/bytes decoded and kept; max_elements: elements of a top-level list whose scalars
    are reported (`element_scalars`)."""
    if offset < 0:
        return empty_summary(f"malformed: negative offset {offset}")
    try:
        m = _Machine(data, offset, max_ops, max_items, max_depth, max_memo, max_text)
    except (TypeError, ValueError) as exc:
        return empty_summary(f"malformed: unreadable input ({exc})", end=offset)
    try:
        m.run()
    except RecursionError:
        m.error = "limit: recursion"
    except MemoryError:
        m.error = "limit: out of memory"
    except Exception as exc:  # a bug must not let a hostile file crash the scan
        m.error = f"internal: {type(exc).__name__}: {exc}"[:300]
    try:
        return _summarise(m, max_elements)
    except Exception as exc:
        return empty_summary(f"internal: summarising failed: {type(exc).__name__}"[:300], end=m.op_start)


def read_pickle_value(data: bytes | bytearray | memoryview, *, offset: int = 0, max_ops: int = 5_000_000,
                      max_items: int = 20_000, max_depth: int = 100, max_memo: int = 100_000,
                      max_text: int = 32 << 20) -> tuple[Any, bool, str | None, int]:
    """The placeholder value the opcode walk builds (PDict, Obj, Blob, ... never a real object), whether the
    stream ended with STOP, the error that stopped it, and the offset just after STOP (or where reading
    stopped). Same bounds as `read_pickle`; never raises."""
    if offset < 0:
        return None, False, f"malformed: negative offset {offset}", offset
    try:
        m = _Machine(data, offset, max_ops, max_items, max_depth, max_memo, max_text)
    except (TypeError, ValueError) as exc:
        return None, False, f"malformed: unreadable input ({exc})", offset
    try:
        m.run()
    except RecursionError:
        return None, False, "limit: recursion", m.op_start
    except MemoryError:
        return None, False, "limit: out of memory", m.op_start
    except Exception as exc:  # a bug must not let a hostile file crash the caller
        return None, False, f"internal: {type(exc).__name__}: {exc}"[:300], m.op_start
    try:
        root = m.result if m.complete else m.partial_root()
    except Exception as exc:
        return None, False, f"internal: {type(exc).__name__}: {exc}"[:300], m.op_start
    return root, m.complete, m.error, m.pos if m.complete else m.op_start


_PICKLE_START = frozenset(b"(c}])NIJKLMSTUVXFGi\x8c\x95")
_NAME = re.compile(r"[A-Za-z_][\w.]*\Z")


def looks_like_pickle(head: bytes) -> bool:
    """A cheap structural test on the first bytes: a PROTO 2-5 header followed by opcodes that read
    cleanly, or a protocol 0/1 stream whose first opcodes read cleanly and whose globals are dotted
    names (text almost always hits a bad opcode, an empty memo or an empty stack within a few bytes)."""
    if len(head) < 2:
        return False
    if head[0] == 0x80:
        if head[1] not in (2, 3, 4, 5):
            return False
    elif head[0] not in _PICKLE_START:
        return False
    summary = read_pickle(head[:4096], max_ops=2000)
    names_ok = all(_NAME.match(m) and _NAME.match(n) for m, n in summary.globals)
    if head[0] != 0x80 and (summary.opcodes < 3 or not names_ok):
        return False
    return summary.complete or (summary.error or "").startswith(("truncated", "limit"))
