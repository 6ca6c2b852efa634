"""safetensors header summaries: tensor names, dtypes and shapes, and `__metadata__`, without reading weights.

A safetensors file is an 8-byte little-endian header length, a JSON header, then the tensor bytes. ReActor
face models (`models/reactor/faces/*.safetensors`) are recognised by their tensor names, LLM and diffusion
checkpoints by theirs, so the header is all we need. Its length is bounded before anything is read, and
offsets are checked against the file; problems are reported, never raised.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jieyao.intake.blob import Blob

MAX_HEADER_BYTES = 100 * 1024 * 1024
MAX_TENSORS = 100_000
MAX_PROBLEMS = 50
MAX_DIMS = 64
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6,
}

TensorEntry = tuple[str, str, tuple[int, ...]]


@dataclass(frozen=True)
class SafetensorsSummary:
    tensors: tuple[TensorEntry, ...]
    """(name, dtype, shape) in header order, at most MAX_TENSORS."""
    metadata: dict[str, str]
    header_bytes: int
    """The header length the file claims (its JSON is read only when that is plausible)."""
    error: str | None
    """Why the header could not be read, or a digest of `problems`; None for a clean file."""
    problems: tuple[str, ...] = ()
    """Every inconsistency found (bad offsets, overlaps, sizes that do not match dtype x shape), bounded."""
    tensor_count: int = 0
    spans: tuple[tuple[str, int, int], ...] = ()
    """(name, begin, end) of each tensor whose data_offsets lie inside the data section, relative to its start
    (`8 + header_bytes` in the file), in header order, at most MAX_TENSORS: a reader of the weights needs them."""


def _fail(header_bytes: int, message: str) -> SafetensorsSummary:
    return SafetensorsSummary(tensors=(), metadata={}, header_bytes=header_bytes, error=message)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key[:80]!r} in header")
        seen[key] = value
    return seen


def read_safetensors(blob: Blob, *, max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsSummary:
    """Summarise a safetensors header; never raises on malformed input."""
    if blob.size < 8:
        return _fail(0, f"file is {blob.size} bytes, too short for the 8-byte header length")
    (n,) = struct.unpack("<Q", blob.read_at(0, 8))
    if n > max_header_bytes:
        return _fail(n, f"header claims {n} bytes, more than the {max_header_bytes}-byte bound; not read")
    if n > blob.size - 8:
        return _fail(n, f"header claims {n} bytes but only {blob.size - 8} follow the length field")
    raw = blob.read_at(8, n)
    if len(raw) < n:
        return _fail(n, "header cut short by the end of the blob")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        return _fail(n, "header is not UTF-8")
    except RecursionError:
        return _fail(n, "header JSON nested too deeply")
    except ValueError as exc:  # JSONDecodeError, duplicate keys, over-long integers
        return _fail(n, f"header is not valid JSON: {str(exc)[:200]}")
    if not isinstance(header, dict):
        return _fail(n, f"header is a JSON {type(header).__name__}, not an object")
    return _summarise(header, n, blob.size - 8 - n)


def _summarise(header: dict[str, Any], header_bytes: int, data_bytes: int) -> SafetensorsSummary:
    problems: list[str] = []

    def problem(msg: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(msg)

    metadata: dict[str, str] = {}
    meta = header.get("__metadata__")
    if meta is not None:
        if isinstance(meta, dict):
            for key, value in meta.items():
                if isinstance(value, str):
                    metadata[key] = value
                else:
                    problem(f"__metadata__[{key[:80]!r}] is not a string")
        else:
            problem("__metadata__ is not an object")

    tensors: list[TensorEntry] = []
    located: list[tuple[str, int, int]] = []
    spans: list[tuple[int, int, str]] = []
    count = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count += 1
        parsed = _entry(name, entry, data_bytes, problem)
        if parsed is None:
            continue
        dtype, shape, span = parsed
        if len(tensors) < MAX_TENSORS:
            tensors.append((name, dtype, shape))
        if span is not None:
            spans.append((span[0], span[1], name))
            if len(located) < MAX_TENSORS:
                located.append((name, span[0], span[1]))
    spans.sort()
    reach, holder = 0, ""  # the furthest end seen so far, and whose it is
    for begin, end, name in spans:
        if begin < reach:
            problem(f"tensors {holder[:80]!r} and {name[:80]!r} overlap")
        if end > reach:
            reach, holder = end, name
    error = None
    if problems:
        error = f"{len(problems)} problem(s) in header: {problems[0]}"
    return SafetensorsSummary(tensors=tuple(tensors), metadata=metadata, header_bytes=header_bytes, error=error,
                              problems=tuple(problems), tensor_count=count, spans=tuple(located))


def _entry(name: str, entry: object, data_bytes: int,
           problem: Callable[[str], None]) -> tuple[str, tuple[int, ...], tuple[int, int] | None] | None:
    """Validate one tensor entry; returns (dtype, shape, (begin, end) when the offsets are usable)."""
    label = repr(name[:80])
    if not isinstance(entry, dict):
        problem(f"tensor {label} is not an object")
        return None
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if not isinstance(dtype, str):
        problem(f"tensor {label} has no string dtype")
        dtype = "?"
    elif dtype not in DTYPE_BITS:
        problem(f"tensor {label} has unknown dtype {dtype[:20]!r}")
    shape_ok = (isinstance(shape, list) and len(shape) <= MAX_DIMS
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape))
    if not shape_ok:
        problem(f"tensor {label} has an invalid shape")
    dims: tuple[int, ...] = tuple(shape) if shape_ok and isinstance(shape, list) else ()
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        problem(f"tensor {label} has invalid data_offsets")
        return dtype, dims, None
    begin, end = offsets
    if not 0 <= begin <= end <= data_bytes:
        problem(f"tensor {label} data_offsets [{begin}, {end}] lie outside the {data_bytes}-byte data section")
        return dtype, dims, None
    bits = DTYPE_BITS.get(dtype)
    if bits is not None and shape_ok:
        expected = (math.prod(dims) * bits + 7) // 8
        if expected != end - begin:
            problem(f"tensor {label} is {end - begin} bytes but {dtype} x {list(dims)} needs {expected}")
    return dtype, dims, (begin, end)


__all__ = ["SafetensorsSummary", "read_safetensors"]
