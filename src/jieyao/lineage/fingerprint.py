"""Name-free weight fingerprints for model lineage (issue 10; design in shared/reference/lineage.md §3).

Per tensor: canonical layout (HWIO → OIHW, (in,out) → (out,in)), dequantised to float32, viewed as an
(out, rest) matrix, **double-centred**, count-sketched into `SKETCH_DIM` buckets, unit-normalised, plus a
`CODE_BITS`-bit SimHash of the sketch for indexing. Tensors are matched by canonical shape, never by name.

Centring: we remove both the row means and the column means of the (out, rest) matrix (M − r1ᵀ − 1cᵀ + m).
Row means are per-output-unit offsets and column means per-input offsets that all trainings of an architecture
share (initialiser means, activation statistics, a dequantisation zero point); left in, they make independent
models look alike. The pilot (§2.4) measured exactly this double-centred cosine: null sd 1/√d.

The count-sketch bucket and sign of an element depend only on its flat index in the canonical view (splitmix64
of the index), so two tensors with the same canonical shape are sketched alike and ⟨ŷ₁, ŷ₂⟩ estimates their
cosine (sd ≈ 1/√SKETCH_DIM under the null). Tables are cached per element count, bounded in bytes.

Nothing here runs or unpickles a model; input is raw bytes from `jieyao.lineage.tensors` or numpy arrays."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jieyao.lineage.tensors import TensorReport

SKETCH_DIM = 1024
CODE_BITS = 256
MIN_ELEMENTS = 256
"""Smaller tensors are skipped: too few elements for a cosine to mean anything (null sd 1/√d), and small
tensors (biases, norms, tiny kernels) are shared structure across unrelated models (§3.7)."""
SEED = 0x6A6965_79616F  # "jieyao"; changing it invalidates every stored fingerprint
TABLE_CACHE_BYTES = 128 * 1024 * 1024
"""Bound on cached bucket tables (2 bytes per element): 64 M elements of distinct tensor sizes."""
CHUNK = 1 << 22
"""Elements hashed at a time for a tensor whose table is not cached (too big for the cache)."""

FLOAT_DTYPES = {"float16", "float32", "float64", "bfloat16"}
QUANT_DTYPES = {"int8", "uint8", "int16", "uint16", "int32", "uint32"}
LAYOUTS = {"oihw", "hwio", "oi", "io", "vector", "unknown"}


class FingerprintError(ValueError):
    """A fingerprint that cannot be made or used (bad sketch size, corrupt stored print)."""


@dataclass(frozen=True)
class TensorPrint:
    name: str
    shape: tuple[int, ...]
    """Canonical shape (after layout canonicalisation)."""
    params: int
    sketch: Any
    """float32[SKETCH_DIM], unit norm."""
    code: bytes
    """CODE_BITS/8 bytes: SimHash of the sketch."""
    transposed: Any = None
    """For a 2-D tensor of unknown layout: the sketch of its transpose (so `compare` can try both)."""


@dataclass(frozen=True)
class ModelPrint:
    tensors: tuple[TensorPrint, ...]
    total_params: int
    """Parameters in the fingerprinted tensors (the denominator of coverage)."""
    format: str | None
    skipped: tuple[tuple[str, str], ...]
    """Tensors not fingerprinted and why (too small, non-float, NaN ...)."""


@dataclass(frozen=True)
class Thresholds:
    min_cosine: float = 0.35
    min_tensors: int = 3
    min_coverage: float = 0.25


@dataclass(frozen=True)
class TensorMatch:
    child: str
    reference: str
    shape: tuple[int, ...]
    cosine: float
    params: int
    common_models: int = 0
    """For a pair left out as common (`Lineage.common`): the unrelated bank models the reference tensor is seen in
    (a family counted once); 0 for a counted match."""


@dataclass(frozen=True)
class Lineage:
    descendant: bool
    matches: tuple[TensorMatch, ...]
    coverage: float
    """Share of the reference's fingerprinted, non-common parameters covered by matched tensors."""
    reference_params: int
    why: str
    common: tuple[TensorMatch, ...] = ()
    """Child tensors that matched only common reference tensors (a copied constant): evidence, never counted."""


# --- hashing tables -------------------------------------------------------------------------------------------

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(i: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (i * _GOLDEN + np.uint64(SEED)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _table(start: int, stop: int) -> np.ndarray:
    """Bucket in [0, 2K): low bits give the bucket, bucket ≥ K means sign −1 (folded after bincount)."""
    z = _splitmix(np.arange(start, stop, dtype=np.uint64))
    return (z & np.uint64(2 * SKETCH_DIM - 1)).astype(np.int16)


_tables: OrderedDict[int, np.ndarray] = OrderedDict()
_tables_bytes = 0


def _cached_table(n: int) -> np.ndarray | None:
    global _tables_bytes
    table = _tables.get(n)
    if table is not None:
        _tables.move_to_end(n)
        return table
    if 2 * n > TABLE_CACHE_BYTES // 2:  # never let one tensor take more than half the cache
        return None
    table = _table(0, n)
    _tables[n] = table
    _tables_bytes += table.nbytes
    while _tables_bytes > TABLE_CACHE_BYTES and len(_tables) > 1:
        _, old = _tables.popitem(last=False)
        _tables_bytes -= old.nbytes
    return table


def clear_table_cache() -> None:
    global _tables_bytes
    _tables.clear()
    _tables_bytes = 0


def _count_sketch(flat: np.ndarray) -> np.ndarray:
    n = flat.size
    table = _cached_table(n)
    folded: np.ndarray
    if table is not None:
        folded = np.bincount(table, weights=flat, minlength=2 * SKETCH_DIM)
    else:
        folded = np.zeros(2 * SKETCH_DIM)
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            folded += np.bincount(_table(start, stop), weights=flat[start:stop], minlength=2 * SKETCH_DIM)
    return folded[:SKETCH_DIM] - folded[SKETCH_DIM:]


_projection: np.ndarray | None = None


def _simhash_matrix() -> np.ndarray:
    global _projection
    if _projection is None:
        _projection = np.random.default_rng(SEED).standard_normal((CODE_BITS, SKETCH_DIM)).astype(np.float32)
    return _projection


def simhash(sketch: np.ndarray) -> bytes:
    bits = (_simhash_matrix() @ np.asarray(sketch, dtype=np.float32)) > 0
    return np.packbits(bits).tobytes()


def hamming_bound(cosine: float, recall: float = 0.999) -> int:
    """Largest Hamming distance kept by the SimHash prefilter so that a tensor pair at `cosine` survives with
    probability ≥ `recall`: H ~ Bin(CODE_BITS, θ/π), θ = arccos(cosine); the bound is that quantile.
    At cosine 0.35 and 99.9 % recall this is 123 of 256 bits (null: E[H] = 128, sd 8), so the prefilter is a
    cheap first cut (it drops about 70 % of unrelated pairs), not the verdict."""
    p = math.acos(max(-1.0, min(1.0, cosine))) / math.pi
    total, h = 0.0, 0
    for h in range(CODE_BITS + 1):
        total += math.comb(CODE_BITS, h) * p**h * (1 - p) ** (CODE_BITS - h)
        if total >= recall:
            break
    return h


# --- canonicalisation ------------------------------------------------------------------------------------------

def _guess_layout(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return "vector"
    if len(shape) == 4:
        if shape[0] == shape[1] and shape[0] <= 7 and not (shape[2] == shape[3] and shape[2] <= 7):
            return "hwio"
        return "oihw"
    return "unknown"


def _canonical(arr: np.ndarray, layout: str) -> np.ndarray:
    if layout not in LAYOUTS or (layout in ("hwio", "oihw") and arr.ndim != 4) or \
            (layout in ("oi", "io") and arr.ndim != 2):
        layout = _guess_layout(arr.shape)
    if arr.ndim == 4 and layout == "unknown":
        layout = _guess_layout(arr.shape)
    if layout == "hwio":
        return arr.transpose(3, 2, 0, 1)
    if layout == "io":
        return arr.T
    return arr


def _decode(dtype: str, data: bytes, shape: tuple[int, ...], scale: float | None,
            zero_point: float | None) -> tuple[np.ndarray | None, str | None]:
    """float32 array, or None and why it was skipped."""
    count = math.prod(shape)
    if dtype == "bfloat16":
        if len(data) != 2 * count:
            return None, f"declared {count} bfloat16 elements but {len(data)} bytes"
        raw = np.frombuffer(data, dtype="<u2").astype(np.uint32) << np.uint32(16)
        return raw.view(np.float32).reshape(shape), None
    try:
        dt = np.dtype(dtype).newbyteorder("<")
    except TypeError:
        return None, f"dtype {dtype} is not numeric"
    if len(data) != dt.itemsize * count:
        return None, f"declared {count} {dtype} elements but {len(data)} bytes"
    if dtype in FLOAT_DTYPES:
        return np.frombuffer(data, dtype=dt).astype(np.float32, copy=False).reshape(shape), None
    if dtype in QUANT_DTYPES:
        # Without a scale the raw integers are the print: the double-centred, unit-normalised sketch does not
        # depend on a positive scale or on a zero point (a constant offset is removed by the centring).
        values = np.frombuffer(data, dtype=dt).astype(np.float32)
        if zero_point:
            values -= np.float32(zero_point)
        if scale is not None:
            values *= np.float32(scale)
        return values.reshape(shape), None
    return None, f"dtype {dtype} is not a float weight"


def _print_tensor(name: str, arr: np.ndarray, layout: str) -> tuple[TensorPrint | None, str | None]:
    if arr.ndim < 2 or layout == "vector":
        return None, "1-D (bias or norm): shared structure, not evidence"
    if arr.size < MIN_ELEMENTS:
        return None, f"too small ({arr.size} elements < {MIN_ELEMENTS})"
    unknown_2d = arr.ndim == 2 and layout not in ("oi", "io")
    canon = _canonical(arr, layout)
    shape = tuple(int(d) for d in canon.shape)
    matrix = np.ascontiguousarray(canon, dtype=np.float32).reshape(shape[0], -1)
    if not np.isfinite(matrix).all():
        return None, "contains NaN or infinite values"
    sketch, why = _sketch_matrix(matrix)
    if sketch is None:
        return None, why
    transposed = None
    if unknown_2d and shape[0] != 1 and shape[1] != 1:
        transposed, _ = _sketch_matrix(np.ascontiguousarray(matrix.T))
    return TensorPrint(name=name, shape=shape, params=int(arr.size), sketch=sketch, code=simhash(sketch),
                       transposed=transposed), None


def _sketch_matrix(matrix: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    rows = matrix.mean(axis=1, dtype=np.float64)
    cols = matrix.mean(axis=0, dtype=np.float64)
    centred = matrix - rows.astype(np.float32)[:, None]
    centred -= (cols - rows.mean()).astype(np.float32)[None, :]
    scale = float(np.abs(matrix).max())
    norm = float(np.linalg.norm(centred))
    if not math.isfinite(norm) or norm <= 1e-6 * scale * math.sqrt(matrix.size) or norm == 0.0:
        return None, "constant after centring (no per-unit structure)"
    y = _count_sketch(centred.ravel())
    ynorm = float(np.linalg.norm(y))
    if ynorm == 0.0 or not math.isfinite(ynorm):
        return None, "empty sketch"
    return (y / ynorm).astype(np.float32), None


def fingerprint(report: TensorReport) -> ModelPrint:
    """The fingerprint of what `jieyao.lineage.tensors.read_tensors` returned (skipped tensors carried along)."""
    prints: list[TensorPrint] = []
    skipped: list[tuple[str, str]] = list(report.skipped)
    for t in report.tensors:
        arr, why = _decode(t.dtype, t.data, tuple(t.shape), t.scale, t.zero_point)
        if arr is None:
            skipped.append((t.name, why or "unreadable"))
            continue
        tp, why = _print_tensor(t.name, arr, t.layout)
        if tp is None:
            skipped.append((t.name, why or "not fingerprinted"))
        else:
            prints.append(tp)
    return _model(prints, report.format, skipped)


def fingerprint_arrays(arrays: Mapping[str, np.ndarray], layouts: Mapping[str, str] | None = None,
                       format: str | None = None) -> ModelPrint:
    """The fingerprint of named numpy arrays; `layouts` as in TensorData.layout (default: guessed, 2-D unknown)."""
    prints: list[TensorPrint] = []
    skipped: list[tuple[str, str]] = []
    for name, value in arrays.items():
        arr = np.asarray(value)
        layout = (layouts or {}).get(name, "unknown")
        if arr.dtype.kind not in "fc" or arr.dtype.kind == "c":
            skipped.append((name, f"dtype {arr.dtype} is not a float weight"))
            continue
        tp, why = _print_tensor(name, arr.astype(np.float32, copy=False), layout)
        if tp is None:
            skipped.append((name, why or "not fingerprinted"))
        else:
            prints.append(tp)
    return _model(prints, format, skipped)


def _model(prints: list[TensorPrint], format: str | None, skipped: list[tuple[str, str]]) -> ModelPrint:
    return ModelPrint(tensors=tuple(prints), total_params=sum(p.params for p in prints), format=format,
                      skipped=tuple(skipped))


# --- comparison ------------------------------------------------------------------------------------------------

def _pair_cosine(c: TensorPrint, r: TensorPrint) -> float | None:
    if c.shape == r.shape:
        best = float(np.dot(c.sketch, r.sketch))
        if len(c.shape) == 2 and c.shape[0] == c.shape[1]:  # square, a side of unknown layout: try the transpose
            if c.transposed is not None:
                best = max(best, float(np.dot(c.transposed, r.sketch)))
            elif r.transposed is not None:
                best = max(best, float(np.dot(c.sketch, r.transposed)))
        return best
    if len(c.shape) == 2 and c.shape == r.shape[::-1]:
        if c.transposed is not None:
            return float(np.dot(c.transposed, r.sketch))
        if r.transposed is not None:
            return float(np.dot(c.sketch, r.transposed))
    return None


def _key(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(shape)) if len(shape) == 2 else shape


def tensor_pairs(child: ModelPrint, reference: ModelPrint, min_cosine: float) -> list[tuple[float, int, int]]:
    """Every (cosine, reference index, child index) with cosine >= `min_cosine`, best first: tensors pair by
    canonical shape (2-D also transposed when a side's layout is unknown)."""
    by_key: dict[tuple[int, ...], list[int]] = {}
    for j, c in enumerate(child.tensors):
        by_key.setdefault(_key(c.shape), []).append(j)
    pairs: list[tuple[float, int, int]] = []
    for i, r in enumerate(reference.tensors):
        for j in by_key.get(_key(r.shape), ()):
            cos = _pair_cosine(child.tensors[j], r)
            if cos is not None and cos >= min_cosine:
                pairs.append((cos, i, j))
    pairs.sort(key=lambda p: -p[0])
    return pairs


def _greedy(pairs: list[tuple[float, int, int]], child: ModelPrint, reference: ModelPrint, used_c: set[int],
            common: Mapping[int, int]) -> list[TensorMatch]:
    used_r: set[int] = set()
    matches: list[TensorMatch] = []
    for cos, i, j in pairs:
        if i in used_r or j in used_c:
            continue
        used_r.add(i)
        used_c.add(j)
        r = reference.tensors[i]
        matches.append(TensorMatch(child=child.tensors[j].name, reference=r.name, shape=r.shape,
                                   cosine=round(cos, 4), params=r.params, common_models=common.get(i, 0)))
    return matches


def compare(child: ModelPrint, reference: ModelPrint, thresholds: Thresholds | None = None, *,
            reference_tensors: int | None = None, common: Mapping[int, int] | None = None,
            common_params: int = 0) -> Lineage:
    """Is `child` a descendant of `reference`? Tensors pair by canonical shape (2-D also transposed when a side's
    layout is unknown), one-to-one greedily by cosine; names are reported, never used. Coverage is over
    `reference.total_params`; `reference_tensors` (default: len(reference.tensors)) is the count the evidence
    names, for a bank search that passes only a reference's prefiltered tensors.

    `common` (reference tensor index → unrelated bank models it is seen in) marks the reference's common tensors
    (copied constants, from the bank's common-tensor table): they are paired last, only with child tensors left
    over, reported in `Lineage.common` and never counted, neither in m nor in coverage; `common_params` (all the
    reference's common parameters, prefiltered or not) leaves the coverage denominator too, so a fine-tune of a
    model whose biggest tensor is a shared constant is not short of coverage for it."""
    th = thresholds or Thresholds()
    if not reference.tensors or not child.tensors:
        side = "the reference" if not reference.tensors else "the model"
        return Lineage(False, (), 0.0, reference.total_params,
                       f"nothing to compare: {side} has no fingerprintable float tensors")
    marks = common or {}
    pairs = tensor_pairs(child, reference, th.min_cosine)
    used_c: set[int] = set()
    matches = _greedy([p for p in pairs if p[1] not in marks], child, reference, used_c, marks)
    shared = _greedy([p for p in pairs if p[1] in marks], child, reference, used_c, marks) if marks else []
    params = max(0, reference.total_params - common_params)  # whether or not this child kept the constants
    covered = sum(m.params for m in matches)
    coverage = min(1.0, covered / params) if params else 0.0
    descendant = len(matches) >= th.min_tensors and coverage >= th.min_coverage
    why = _why(matches, reference_tensors or len(reference.tensors), coverage, params, th)
    if shared:
        seen = sorted({m.common_models for m in shared})
        span = str(seen[0]) if len(seen) == 1 else f"{seen[0]}-{seen[-1]}"
        why = (why if matches else "only common tensors match") + \
            f"; {len(shared)} shared common tensor{'s' if len(shared) > 1 else ''} " \
            f"(seen in {span} unrelated bank models), not counted"
    return Lineage(descendant, tuple(matches), coverage, params, why, tuple(shared))


def _count(n: int) -> str:
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f} G"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _why(matches: list[TensorMatch], total: int, coverage: float, params: int, th: Thresholds) -> str:
    if not matches:
        return f"no tensor of the reference's {total} reaches cosine {th.min_cosine:.2f}"
    cosines = [m.cosine for m in matches]
    span = f"cosine {min(cosines):.2f}" if len(cosines) == 1 else f"cosine {min(cosines):.2f}-{max(cosines):.2f}"
    text = (f"{len(matches)} of {total} tensors match ({span}), covering {coverage * 100:.0f} % of the "
            f"reference's {_count(params)} parameters")
    if len(matches) < th.min_tensors:
        text += f"; fewer than {th.min_tensors} tensors is not lineage (a copied shared tensor)"
    elif coverage < th.min_coverage:
        text += f"; under {th.min_coverage * 100:.0f} % coverage: partial reuse at most"
    return text
