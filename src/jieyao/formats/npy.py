"""NumPy `.npy` header summaries: dtype, order, shape, and whether the payload is a pickle.

`.npy` is `\\x93NUMPY`, a version, a header length and a Python dict literal. We parse that literal with
`ast.literal_eval` (literals only, no names, calls or attribute access), after bounding its length and its
bracket nesting, and never read the array itself. Object arrays (`'|O'`) store their data as a pickle, which
`np.load(allow_pickle=True)` would execute: we flag them (`has_pickle`). `.npz` files are zips of `.npy`
members, which the chassis already opens. (DeepFaceLab's `*.npy` weights are pickles, not NPY: see pickle.py.)
"""

from __future__ import annotations

import ast
import math
import re
import struct
import warnings
from dataclasses import dataclass

from jieyao.intake.blob import Blob

MAGIC = b"\x93NUMPY"
MAX_HEADER_BYTES = 64 * 1024
MAX_NESTING = 32
MAX_DIMS = 64
DESCR_LIMIT = 1024
_SIMPLE = re.compile(r"^[<>|=]?([biufcSUVMmO?])(\d{0,12})(\[[A-Za-z0-9]{1,8}\])?$")


@dataclass(frozen=True)
class NpySummary:
    version: tuple[int, int] | None
    dtype_descr: str | None
    """The descr as written ('<f4', '|O', ...); a structured dtype's list is given as its repr (bounded)."""
    fortran_order: bool | None
    shape: tuple[int, ...] | None
    data_bytes_expected: int | None
    """Bytes the array needs, from dtype x shape; None when unknown (object arrays are pickles, any length)."""
    error: str | None
    has_pickle: bool = False
    """The dtype holds Python objects, so the data is a pickle: never np.load(allow_pickle=True) it."""
    data_offset: int | None = None


def _fail(message: str, version: tuple[int, int] | None = None) -> NpySummary:
    return NpySummary(version=version, dtype_descr=None, fortran_order=None, shape=None, data_bytes_expected=None,
                      error=message)


def looks_like_npy(head: bytes) -> bool:
    return head[:6] == MAGIC and head[6:7] in (b"\x01", b"\x02", b"\x03")


def read_npy(blob: Blob) -> NpySummary:
    """Summarise a .npy header; never raises on malformed input."""
    pre = blob.read_at(0, 12)
    if len(pre) < 10 or pre[:6] != MAGIC:
        return _fail("not a .npy file (no \\x93NUMPY magic)" if pre[:6] != MAGIC else "truncated .npy preamble")
    version = (pre[6], pre[7])
    if version[0] == 1:
        (hlen,) = struct.unpack_from("<H", pre, 8)
        start = 10
    elif version[0] in (2, 3):
        if len(pre) < 12:
            return _fail("truncated .npy preamble", version)
        (hlen,) = struct.unpack_from("<I", pre, 8)
        start = 12
    else:
        return _fail(f"unsupported .npy version {version[0]}.{version[1]}", version)
    if hlen > MAX_HEADER_BYTES:
        return _fail(f"header claims {hlen} bytes, more than the {MAX_HEADER_BYTES}-byte bound; not read", version)
    raw = blob.read_at(start, hlen)
    if len(raw) < hlen:
        return _fail(f"header cut short: {len(raw)} of {hlen} bytes", version)
    text = raw.decode("utf-8" if version[0] == 3 else "latin-1", errors="replace")
    header, problem = _literal(text)
    if header is None:
        return _fail(problem or "unreadable header", version)
    return _summarise(header, version, start + hlen, blob.size)


def _literal(text: str) -> tuple[dict[object, object] | None, str | None]:
    if _nesting(text) > MAX_NESTING:
        return None, f"header nests brackets deeper than {MAX_NESTING}"
    try:
        with warnings.catch_warnings():  # hostile headers hold odd escapes; their SyntaxWarnings are noise
            warnings.simplefilter("ignore")
            value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        return None, f"header is not a Python literal: {type(exc).__name__}"
    if not isinstance(value, dict):
        return None, f"header is a {type(value).__name__}, not a dict"
    return value, None


def _nesting(text: str) -> int:
    """Deepest bracket nesting outside string literals (literal_eval recurses on it; bound it first)."""
    depth = deepest = 0
    quote = ""
    escaped = False
    for ch in text:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _summarise(header: dict[object, object], version: tuple[int, int], data_offset: int, size: int) -> NpySummary:
    problems: list[str] = []
    missing = {"descr", "fortran_order", "shape"} - set(header)
    extra = {k for k in header if k not in ("descr", "fortran_order", "shape")}
    if missing:
        problems.append(f"header lacks {sorted(missing)}")
    if extra:
        problems.append(f"header has unexpected keys {sorted(repr(k)[:40] for k in extra)[:5]}")
    descr = header.get("descr")
    has_pickle = _has_object(descr)
    itemsize = _itemsize(descr)
    if isinstance(descr, str):
        descr_text: str | None = descr[:DESCR_LIMIT]
    elif descr is not None:
        descr_text = repr(descr)[:DESCR_LIMIT]
    else:
        descr_text = None
    if descr is not None and itemsize is None and not has_pickle:
        problems.append(f"descr {descr_text!r} is not a dtype this reader understands")
    order = header.get("fortran_order")
    if order is not None and not isinstance(order, bool):
        problems.append("fortran_order is not a bool")
        order = None
    raw_shape = header.get("shape")
    shape: tuple[int, ...] | None = None
    if isinstance(raw_shape, tuple) and len(raw_shape) <= MAX_DIMS and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw_shape):
        shape = tuple(int(d) for d in raw_shape)
    elif raw_shape is not None:
        problems.append("shape is not a tuple of non-negative ints")
    expected = None
    if shape is not None and itemsize is not None and not has_pickle:
        expected = math.prod(shape) * itemsize
        if size - data_offset < expected:
            problems.append(f"data section is {max(0, size - data_offset)} bytes but the header needs {expected}")
    return NpySummary(version=version, dtype_descr=descr_text, fortran_order=order, shape=shape,
                      data_bytes_expected=expected, error="; ".join(problems) or None, has_pickle=has_pickle,
                      data_offset=data_offset)


def _has_object(descr: object, depth: int = 0) -> bool:
    """Does any field of the dtype hold Python objects ('O')?"""
    if depth > MAX_NESTING:
        return False
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        return bool(m and m.group(1) == "O") or descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(f, tuple) and len(f) >= 2 and _has_object(f[1], depth + 1) for f in descr)
    return False


def _itemsize(descr: object, depth: int = 0) -> int | None:
    """Bytes per element of a descr (simple string or structured list); None when not understood."""
    if depth > MAX_NESTING:
        return None
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        if not m or m.group(1) == "O":
            return None
        kind, digits = m.group(1), m.group(2)
        if kind == "?":
            return 1
        if not digits:
            return None
        return int(digits) * (4 if kind == "U" else 1)
    if isinstance(descr, list):
        total = 0
        for f in descr:
            if not (isinstance(f, tuple) and len(f) in (2, 3)):
                return None
            size = _itemsize(f[1], depth + 1)
            if size is None:
                return None
            if len(f) == 3:
                sub = f[2]
                if isinstance(sub, int) and not isinstance(sub, bool) and sub >= 0:
                    size *= sub
                elif isinstance(sub, tuple) and all(isinstance(d, int) and d >= 0 for d in sub):
                    size *= math.prod(sub)
                else:
                    return None
            total += size
        return total
    return None


__all__ = ["NpySummary", "looks_like_npy", "read_npy"]
