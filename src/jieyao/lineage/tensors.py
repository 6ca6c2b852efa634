"""Static tensor access for every model format we read: names, dtypes, shapes, layouts and raw weight bytes.

Lineage fingerprints need the weights themselves, not only the structure the format readers report. This
module finds each tensor's payload span with the existing structural readers' machinery (the pickle opcode
walk that never unpickles, the protobuf field walk, the safetensors and .npy headers, the torch zip listing)
and copies exactly those bytes, bounded by `TensorLimits`. Nothing is ever executed or unpickled, and a
file is never read whole into memory when it is large: files are read by `pread`, pickles through an mmap.

Layouts: torch zip and safetensors tensors are torch's (4-D "oihw", 2-D "oi"); DFL / TF pickles of numpy
arrays are "hwio" / "io"; ONNX 4-D initializers are "oihw" (but "unknown" when a ConvTranspose uses them),
ONNX 2-D ones are "oi" when a Gemm with transB=1 uses them as B, "io" for a MatMul's B or a Gemm without
transB, otherwise "unknown"; a plain `.npy`/`.npz` array says nothing of its convention, so >= 2-D is
"unknown"; Keras HDF5 datasets (read with h5py, datasets only, never attributes) are TF's (4-D "hwio",
2-D "io"; a 4-D kernel under a name with "transpose" is "unknown"); 1-D is always "vector". Bad input never
raises: a tensor that cannot be read is in `skipped` with why, a file that cannot be read at all has `error` set.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from jieyao.intake.blob import Blob, BytesBlob, FileBlob

# ---------------------------------------------------------------------------------------------------
# the contract


@dataclass(frozen=True)
class TensorData:
    name: str
    """As stored; reported as evidence, never used to match."""
    dtype: str
    """numpy dtype name: "float32", "float16", "bfloat16", "float64", "int8", "uint8", ..."""
    shape: tuple[int, ...]
    layout: str
    """"oihw" | "hwio" | "oi" | "io" | "vector" | "unknown" (see the module docstring)."""
    data: bytes
    """Raw little-endian bytes, exactly prod(shape) * itemsize."""
    source: str
    """"pickle" | "torch" | "onnx" | "safetensors" | "keras" | "npy" (+ ":member path" if any)."""
    scale: float | None = None
    """Per-tensor dequantisation scale for int8/uint8 weights when the file says it."""
    zero_point: float | None = None


@dataclass(frozen=True)
class TensorLimits:
    max_tensors: int = 4_096
    max_tensor_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    max_file_bytes: int = 8 * 1024 * 1024 * 1024


@dataclass
class TensorReport:
    format: str | None
    """What the file is (None: not a model format we read)."""
    tensors: list[TensorData]
    skipped: list[tuple[str, str]]
    """(name, why): over a limit, declared size mismatch, non-numeric, ..."""
    error: str | None = None
    """A file that could not be read at all."""


ITEMSIZE: dict[str, int] = {
    "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
    "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1,
}
MAX_SKIPPED = 10_000
MAX_DIMS = 64
MAX_TYPED_VALUES = 4 * 1024 * 1024
"""ONNX float_data / int32_data / ... are decoded value by value: beyond this many, skipped (raw_data is not)."""

# ---------------------------------------------------------------------------------------------------
# entry points


def read_tensors(path: str | os.PathLike[str], limits: TensorLimits | None = None) -> TensorReport:
    """Every numeric tensor of the model file at `path`, bounded by `limits`; never raises on bad input."""
    limits = limits or TensorLimits()
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        return TensorReport(None, [], [], f"cannot open: {exc.strerror or exc}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return TensorReport(None, [], [], "not a regular file")
        if info.st_size > limits.max_file_bytes:
            return TensorReport(None, [], [], f"file is {info.st_size} bytes, over max_file_bytes "
                                              f"({limits.max_file_bytes}); not read")
        blob = FileBlob(fd, info.st_size, path=name, owns_fd=False)
        return _read(os.path.basename(name), blob, limits)
    finally:
        os.close(fd)


def read_tensors_bytes(name: str, data: bytes, limits: TensorLimits | None = None) -> TensorReport:
    """Like `read_tensors`, for a file already in memory; `name` only names `.npy` arrays and hints nothing."""
    limits = limits or TensorLimits()
    if len(data) > limits.max_file_bytes:
        return TensorReport(None, [], [], f"file is {len(data)} bytes, over max_file_bytes "
                                          f"({limits.max_file_bytes}); not read")
    return _read(os.path.basename(name), BytesBlob(bytes(data)), limits)


def _read(name: str, blob: Blob, limits: TensorLimits) -> TensorReport:
    acc = _Acc(limits)
    fmt: str | None = None
    try:
        head = blob.head(4096)
        fmt, error = _dispatch(name, head, blob, acc)
    except MemoryError:
        error = "out of memory while reading tensors"
    except Exception as exc:  # hostile bytes must not crash a scan; say what happened instead
        error = f"internal: {type(exc).__name__}: {exc}"[:300]
    return TensorReport(fmt, acc.tensors, acc.skipped, error)


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _dispatch(name: str, head: bytes, blob: Blob, acc: _Acc) -> tuple[str | None, str | None]:
    from jieyao.formats.npy import looks_like_npy
    from jieyao.formats.onnx import looks_like_onnx
    from jieyao.formats.pickle import looks_like_pickle

    if looks_like_npy(head):
        return "npy", _npy(name, blob, 0, blob.size, "npy", acc)
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return _zip(blob, acc)
    if head[:8] == _HDF5_MAGIC:
        return "keras", _keras_h5(blob, acc, "keras")
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack_from("<Q", head)[0] <= blob.size - 8:
        return "safetensors", _safetensors(blob, acc)
    if looks_like_onnx(head, blob.size):
        return "onnx", _onnx(blob, acc)
    if looks_like_onnx(head, 1 << 62):  # an ONNX model cut short: its graph claims more bytes than there are
        acc.skip("...", "ONNX model cut short; only the initializers before the cut are read")
        return "onnx", _onnx(blob, acc)
    if looks_like_pickle(head):
        return _pickle(blob, acc)
    return None, None


# ---------------------------------------------------------------------------------------------------
# bounded collection


def _expected_bytes(dtype: str, shape: tuple[int, ...]) -> int:
    return math.prod(shape) * ITEMSIZE[dtype]


@dataclass
class _Acc:
    limits: TensorLimits
    tensors: list[TensorData] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    total: int = 0
    dropped: int = 0

    def skip(self, name: str, why: str) -> None:
        if len(self.skipped) < MAX_SKIPPED:
            self.skipped.append((name[:1000], why))
        else:
            self.dropped += 1
            if self.dropped == 1:
                self.skipped.append(("...", f"more than {MAX_SKIPPED} tensors skipped; the rest are not listed"))

    def offer(self, name: str, dtype: str | None, shape: Any, layout: str, source: str, available: int | None,
              read: Callable[[int], bytes | None], scale: float | None = None,
              zero_point: float | None = None) -> None:
        """Check a declared tensor against the limits, then read its `expected` bytes with `read`.

        `available`: the payload bytes the file declares for it (None: trust `read` to return what exists)."""
        lim = self.limits
        if len(self.tensors) >= lim.max_tensors:
            self.skip(name, f"over max_tensors ({lim.max_tensors})")
            return
        if dtype not in ITEMSIZE:
            self.skip(name, f"dtype {str(dtype)[:40]!r} is not a numeric type we read")
            return
        if (not isinstance(shape, tuple) or len(shape) > MAX_DIMS
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            self.skip(name, f"invalid shape {str(shape)[:80]}")
            return
        expected = _expected_bytes(dtype, shape)
        if expected > lim.max_tensor_bytes:
            self.skip(name, f"{expected} bytes ({dtype} x {list(shape)}), over max_tensor_bytes "
                            f"({lim.max_tensor_bytes})")
            return
        if self.total + expected > lim.max_total_bytes:
            self.skip(name, f"would take the total over max_total_bytes ({lim.max_total_bytes})")
            return
        if available is not None and available != expected:
            self.skip(name, f"declared payload is {available} bytes but {dtype} x {list(shape)} needs {expected}")
            return
        data = read(expected)
        if data is None:
            return  # `read` said why
        if len(data) != expected:
            self.skip(name, f"payload cut short: {len(data)} of {expected} bytes")
            return
        self.total += expected
        self.tensors.append(TensorData(name=name, dtype=dtype, shape=shape, layout=_rank_layout(layout, shape),
                                       data=bytes(data), source=source, scale=scale, zero_point=zero_point))


def _rank_layout(layout: str, shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return "vector"
    if layout in ("oihw", "hwio") and len(shape) != 4:
        return "unknown"
    if layout in ("oi", "io") and len(shape) != 2:
        return "unknown"
    return layout


def _family_layout(family: str, shape: tuple[int, ...]) -> str:
    """The layout a format family's convention gives a tensor of this rank."""
    if len(shape) == 4:
        return {"torch": "oihw", "tf": "hwio"}.get(family, "unknown")
    if len(shape) == 2:
        return {"torch": "oi", "tf": "io"}.get(family, "unknown")
    return "vector" if len(shape) == 1 else "unknown"


def _span_reader(blob: Blob, offset: int) -> Callable[[int], bytes]:
    return lambda n: blob.read_at(offset, n)


# ---------------------------------------------------------------------------------------------------
# safetensors

_ST_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64", "I8": "int8", "U8": "uint8",
              "I16": "int16", "U16": "uint16", "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64",
              "BOOL": "bool"}


def _safetensors(blob: Blob, acc: _Acc) -> str | None:
    """The header is validated by `formats.safetensors` (bounded, duplicate keys refused); each tensor whose
    offsets lie in the data section is offered, the rest are skipped with why."""
    from jieyao.formats.safetensors import read_safetensors

    summary = read_safetensors(blob)
    if not summary.tensors and summary.error and not summary.problems:
        return f"safetensors: {summary.error}"
    start = 8 + summary.header_bytes
    spans = {name: (begin, end) for name, begin, end in summary.spans}
    for name, st_dtype, dims in summary.tensors:
        dtype = _ST_DTYPES.get(st_dtype)
        if dtype is None:
            acc.skip(name, f"dtype {st_dtype[:20]!r} is not a numeric type we read")
            continue
        span = spans.get(name)
        if span is None:
            acc.skip(name, f"data_offsets are invalid or outside the {blob.size - start}-byte data")
            continue
        acc.offer(name, dtype, dims, _family_layout("torch", dims), "safetensors", span[1] - span[0],
                  _span_reader(blob, start + span[0]))
    return None


# ---------------------------------------------------------------------------------------------------
# .npy / .npz


def _npy(name: str, blob: Blob, offset: int, size: int, source: str, acc: _Acc) -> str | None:
    """One .npy array at blob[offset:offset+size]; returns a file-level error only for the bare-.npy case."""
    from jieyao.formats.npy import read_npy
    from jieyao.formats.pickle import numpy_dtype_name

    view = blob.slice(offset, size) if (offset or size != blob.size) else blob
    summary = read_npy(view)
    label = name.removesuffix(".npy") or "array"
    if summary.has_pickle:
        acc.skip(label, "object array: its payload is a pickle, never read")
        return None
    if summary.shape is None or summary.dtype_descr is None or summary.data_offset is None:
        acc.skip(label, f"unreadable .npy header: {summary.error}")
        return None
    descr = summary.dtype_descr
    if descr.startswith(">") and not descr.endswith(("1", "b1")):
        acc.skip(label, f"big-endian dtype {descr!r} is not read")
        return None
    dtype = numpy_dtype_name(descr)
    shape = summary.shape
    if summary.fortran_order and sum(1 for d in shape if d != 1) > 1:
        acc.skip(label, "Fortran-order array is not read")
        return None
    available = view.size - summary.data_offset
    if dtype in ITEMSIZE and available > _expected_bytes(dtype, shape):
        available = _expected_bytes(dtype, shape)  # trailing bytes after the array do not matter
    acc.offer(label, dtype, shape, _family_layout("none", shape), source, available,
              _span_reader(view, summary.data_offset))
    return None


def _zip(blob: Blob, acc: _Acc) -> tuple[str | None, str | None]:
    from jieyao.formats.torchzip import is_torch_zip_listing

    stream = blob.open()
    try:
        try:
            zf = zipfile.ZipFile(stream)
            names = zf.namelist()
        except Exception as exc:  # zipfile raises anything on hostile bytes
            return None, f"unreadable zip: {type(exc).__name__}: {exc}"[:300]
        with zf:
            prefix = is_torch_zip_listing(names)
            if prefix is not None:
                return "torch", _torch_zip(zf, prefix, acc)
            lowered = {n.lower() for n in names}
            if "model.weights.h5" in lowered or ("config.json" in lowered and "metadata.json" in lowered):
                return "keras", _keras_zip(blob, zf, names, acc)
            members = [n for n in names if n.lower().endswith(".npy")]
            if members:
                for member in members:
                    _npz_member(zf, member, acc)
                return "npy", None
            return None, None
    finally:
        stream.close()


def _npz_member(zf: zipfile.ZipFile, member: str, acc: _Acc) -> None:
    try:
        info = zf.getinfo(member)
        if info.file_size > acc.limits.max_tensor_bytes + 65_536 + 12:
            acc.skip(member.removesuffix(".npy"), f"member is {info.file_size} bytes, over max_tensor_bytes "
                                                  f"({acc.limits.max_tensor_bytes})")
            return
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except Exception as exc:
        acc.skip(member.removesuffix(".npy"), f"member unreadable: {type(exc).__name__}: {exc}"[:300])
        return
    _npy(member, BytesBlob(data), 0, len(data), f"npy:{member}", acc)


# ---------------------------------------------------------------------------------------------------
# Keras HDF5


MAX_H5_NODES = 65_536
"""HDF5 groups + datasets visited in one Keras file; beyond, the rest is skipped."""
MAX_H5_DEPTH = 32
_H5_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}
"""Filters whose output h5py bounds by the chunk size it allocates; any other filter is skipped."""


def _h5py() -> Any:
    try:
        import h5py  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    return h5py


def _keras_zip(blob: Blob, zf: zipfile.ZipFile, names: list[str], acc: _Acc) -> str | None:
    """Keras 3 `.keras`: the weights are the `model.weights.h5` member (config.json is never evaluated)."""
    member = next((n for n in names if n.lower() == "model.weights.h5"), None)
    source = f"keras:{member or 'model.weights.h5'}"
    if _h5py() is None:
        acc.skip(source, "Keras HDF5 weights need h5py, which is not installed; not read")
        return None
    if member is None:
        acc.skip(source, "Keras archive has no model.weights.h5 member; no weights read")
        return None
    info = zf.getinfo(member)
    lim = acc.limits
    if info.file_size > lim.max_file_bytes:
        return f"{member} is {info.file_size} bytes, over max_file_bytes ({lim.max_file_bytes}); not read"
    if info.compress_type == zipfile.ZIP_STORED:
        local = blob.read_at(info.header_offset, 30)
        if len(local) == 30 and local[:4] == b"PK\x03\x04":
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(
                local[28:30], "little")
            if start + info.file_size <= blob.size:  # h5py seeks about: read the member in place, by span
                stream = blob.slice(start, info.file_size).open()
                try:
                    return _keras_h5_stream(stream, acc, source)
                finally:
                    stream.close()
    if info.file_size > lim.max_total_bytes + 64 * 1024 * 1024:
        acc.skip(source, f"member is {info.file_size} bytes, over max_total_bytes ({lim.max_total_bytes}) to "
                         f"decompress; not read")
        return None
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except Exception as exc:  # encrypted, bad CRC, unsupported method, ...
        return f"{member} unreadable: {type(exc).__name__}: {exc}"[:300]
    return _keras_h5_stream(io.BytesIO(data), acc, source)


def _keras_h5(blob: Blob, acc: _Acc, source: str) -> str | None:
    if _h5py() is None:
        acc.skip(source, "Keras HDF5 weights need h5py, which is not installed; not read")
        return None
    stream = blob.open()
    try:
        return _keras_h5_stream(stream, acc, source)
    finally:
        stream.close()


def _keras_h5_stream(stream: IO[bytes], acc: _Acc, source: str) -> str | None:
    """Every numeric dataset of a Keras HDF5 weights file, read as data only: attributes (where Keras keeps
    model configs and marshalled lambdas) are never read, and no link is followed out of the file."""
    h5py = _h5py()
    try:
        f = h5py.File(stream, "r")
    except Exception as exc:  # h5py raises OSError and more on hostile bytes
        return f"unreadable HDF5: {type(exc).__name__}: {exc}"[:300]
    with f:
        root = f
        link = f.get("model_weights", getlink=True)
        if isinstance(link, h5py.HardLink) and isinstance(f.get("model_weights"), h5py.Group):
            root = f["model_weights"]  # Keras 2 `model.save`: optimizer_weights beside it are not the model
        walk = _H5Walk()
        walk.seen.add(hash(root.id))
        _h5_group(h5py, root, "", 0, walk, acc, source)
    return None


@dataclass
class _H5Walk:
    budget: int = MAX_H5_NODES
    seen: set[int] = field(default_factory=set)
    """Objects already visited (h5py hashes an object id by file and object number): a group hard-linked
    into itself is walked once, a dataset linked under two names is read once."""


def _h5_group(h5py: Any, group: Any, prefix: str, depth: int, walk: _H5Walk, acc: _Acc, source: str) -> None:
    try:
        keys = list(group.keys())
    except Exception as exc:
        acc.skip(prefix or "/", f"group unreadable: {type(exc).__name__}: {exc}"[:300])
        return
    for key in keys:
        name = f"{prefix}{key}"
        if not prefix and key in ("optimizer", "optimizer_weights"):
            continue  # optimizer state, not the model's weights
        if walk.budget <= 0:
            acc.skip("...", f"more than {MAX_H5_NODES} HDF5 objects; the rest are not read")
            return
        walk.budget -= 1
        try:
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                acc.skip(name, "external link to another file; not followed")
                continue
            if isinstance(link, h5py.SoftLink):
                acc.skip(name, "soft link; not followed")
                continue
            obj = group.get(key)
            ident = hash(obj.id)
        except Exception as exc:
            acc.skip(name, f"object unreadable: {type(exc).__name__}: {exc}"[:300])
            continue
        if ident in walk.seen:
            acc.skip(name, "another name for an object already read; not read twice")
            continue
        walk.seen.add(ident)
        if isinstance(obj, h5py.Group):
            if depth >= MAX_H5_DEPTH:
                acc.skip(name, f"groups nested deeper than {MAX_H5_DEPTH}; not read")
            else:
                _h5_group(h5py, obj, f"{name}/", depth + 1, walk, acc, source)
        elif isinstance(obj, h5py.Dataset):
            _h5_dataset(h5py, obj, name, acc, source)
        else:
            acc.skip(name, f"HDF5 object {type(obj).__name__} is not a dataset")


def _h5_dataset(h5py: Any, ds: Any, name: str, acc: _Acc, source: str) -> None:
    import numpy as np

    try:
        why = _h5_unbounded(h5py, ds)
        if why is not None:
            acc.skip(name, why)
            return
        dt = ds.dtype
        if dt.kind not in "fiu" or dt.fields is not None or dt.subdtype is not None:
            acc.skip(name, f"dtype {str(dt)[:40]!r} is not a numeric type we read")
            return
        dtype = dt.newbyteorder("=").name
        shape = ds.shape
        if shape is None:
            acc.skip(name, "null dataspace: no data")
            return
        shape = tuple(int(d) for d in shape)
        layout = _family_layout("tf", shape)
        if len(shape) == 4 and "transpose" in name.lower():
            layout = "unknown"  # Conv2DTranspose kernels are (h, w, out, in)
        stored = ds.id.get_storage_size() if ds.chunks is None and ds.compression is None else None
        if stored is not None and stored == 0 and math.prod(shape) > 0:
            acc.skip(name, "no data stored (fill value only)")
            return
    except Exception as exc:
        acc.skip(name, f"dataset unreadable: {type(exc).__name__}: {exc}"[:300])
        return

    def read(expected: int) -> bytes | None:
        try:
            arr = np.asarray(ds[()])
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
            return np.ascontiguousarray(arr).tobytes()
        except Exception as exc:
            acc.skip(name, f"dataset unreadable: {type(exc).__name__}: {exc}"[:300])
            return None

    acc.offer(name, dtype, shape, layout, source, None, read)


def _h5_unbounded(h5py: Any, ds: Any) -> str | None:
    """Why a dataset's read cannot be bounded by its declared size (None: it can)."""
    if ds.is_virtual:
        return "virtual dataset (maps other files); not read"
    if ds.external:
        return "data stored in external files; not read"
    plist = ds.id.get_create_plist()
    for i in range(plist.get_nfilters()):
        code = plist.get_filter(i)[0]
        if code not in _H5_FILTERS:
            return f"HDF5 filter {code} is not one we can bound; not read"
    return None


# ---------------------------------------------------------------------------------------------------
# pickles (DFL / TF numpy dicts)


def _payload(value: Any, stream: bytes | memoryview, limit: int) -> tuple[bytes | None, str | None]:
    """The raw bytes of a numpy payload placeholder: kept bytes, a Blob span of the stream, or a protocol-2
    `_codecs.encode(str, 'latin1')`; `limit` bounds the bytes copied. (None, why) when it cannot be had."""
    from jieyao.formats.pickle import Blob as PBlob
    from jieyao.formats.pickle import Global, Obj

    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    if isinstance(value, PBlob):
        if value.offset is None:
            return None, "payload was not kept in one span of the stream"
        if value.kind == "str":
            if value.size > 2 * limit:
                return None, f"payload text is {value.size} bytes, more than the tensor can need"
            try:
                return bytes(stream[value.offset:value.offset + value.size]).decode("utf-8").encode("latin-1"), None
            except (UnicodeDecodeError, UnicodeEncodeError):
                return None, "payload text is not latin-1 bytes"
        if value.size > limit:
            return None, f"declared payload is {value.size} bytes but the array needs {limit}"
        return bytes(stream[value.offset:value.offset + value.size]), None
    if isinstance(value, str):
        try:
            return value.encode("latin-1"), None
        except UnicodeEncodeError:
            return None, "payload text is not latin-1 bytes"
    if (isinstance(value, Obj) and isinstance(value.func, Global) and value.func.name == "encode"
            and value.func.module in ("_codecs", "codecs") and isinstance(value.args, tuple) and value.args):
        return _payload(value.args[0], stream, limit)
    return None, f"payload is a {type(value).__name__}, not bytes"


def _byteorder(dtype_value: Any) -> str:
    from jieyao.formats.pickle import Obj

    if isinstance(dtype_value, Obj) and isinstance(dtype_value.state, tuple) and len(dtype_value.state) > 1:
        order = dtype_value.state[1]
        if isinstance(order, str):
            return order
    if isinstance(dtype_value, str) and dtype_value[:1] in "<>|=":
        return dtype_value[:1]
    return "<"


def _pickle(blob: Blob, acc: _Acc) -> tuple[str | None, str | None]:
    from jieyao.formats.pickle import read_pickle_value
    from jieyao.formats.torchzip import LEGACY_MAGIC

    stream = blob.view()
    try:
        root, complete, error, end = read_pickle_value(stream, max_ops=16)
        if complete and isinstance(root, int) and root == LEGACY_MAGIC:
            return "torch", _torch_legacy(stream, end, acc)
        root, complete, error, _ = read_pickle_value(stream)
        return "pickle", _pickle_arrays(stream, root, complete, error, acc)
    finally:
        del stream


def _pickle_arrays(stream: bytes | memoryview, root: Any, complete: bool, error: str | None,
                   acc: _Acc) -> str | None:
    from jieyao.formats.pickle import walk_array_values

    found, problem = walk_array_values(root)
    for i, (info, obj) in enumerate(found):
        name = info.key or f"#{i}"
        if info.kind == "torch":
            acc.skip(name, "torch tensor whose storage lies outside this pickle; not read")
            continue
        _numpy_array(name, info, obj, stream, acc)
    if problem:
        acc.skip("...", problem)
    if not complete and error and not found:
        return f"pickle unreadable: {error}"
    if not complete and error:
        acc.skip("...", f"pickle stopped early ({error}); arrays after that point are missing")
    return None


def _numpy_array(name: str, info: Any, obj: Any, stream: bytes | memoryview, acc: _Acc) -> None:
    from jieyao.formats.pickle import Global

    func = obj.func.name if isinstance(obj.func, Global) else ""
    dtype, shape = info.dtype, info.shape
    if func == "_reconstruct":
        state = obj.state
        if isinstance(state, tuple) and len(state) == 4:
            state = (1, *state)
        if not (isinstance(state, tuple) and len(state) == 5):
            acc.skip(name, "numpy array without a readable state")
            return
        order, fortran, raw = _byteorder(state[2]), state[3], state[4]
    else:  # _frombuffer(buffer, dtype, shape, order)
        args = obj.args if isinstance(obj.args, tuple) else ()
        if len(args) < 4:
            acc.skip(name, "numpy _frombuffer call without its arguments")
            return
        order, fortran, raw = _byteorder(args[1]), args[3] == "F", args[0]
    if order == ">" and dtype not in ("int8", "uint8", "bool"):
        acc.skip(name, "big-endian array is not read")
        return
    if fortran is True and shape is not None and sum(1 for d in shape if d != 1) > 1:
        acc.skip(name, "Fortran-order array is not read")
        return

    def read(expected: int) -> bytes | None:
        data, why = _payload(raw, stream, expected)
        if data is None:
            acc.skip(name, why or "payload unreadable")
            return None
        if len(data) != expected:
            acc.skip(name, f"declared payload is {len(data)} bytes but the array needs {expected}")
            return None
        return data

    acc.offer(name, dtype, shape, _family_layout("tf", shape or ()), "pickle", None, read)


# ---------------------------------------------------------------------------------------------------
# torch zip checkpoints


def _contiguous(shape: tuple[int, ...], stride: Any) -> bool:
    if not isinstance(stride, tuple) or len(stride) != len(shape):
        return False
    acc = 1
    for dim, step in zip(reversed(shape), reversed(stride), strict=True):
        if dim != 1 and step != acc:
            return False
        acc *= dim
    return True


def _torch_zip(zf: zipfile.ZipFile, prefix: str, acc: _Acc) -> str | None:
    from jieyao.formats.pickle import read_pickle_value, walk_array_values
    from jieyao.formats.torchzip import MAX_DATA_PKL

    try:
        with zf.open(f"{prefix}/data.pkl") as fh:
            raw = fh.read(MAX_DATA_PKL)
        order = b"little"
        with contextlib.suppress(KeyError), zf.open(f"{prefix}/byteorder") as fh:
            order = fh.read(16).strip()
    except Exception as exc:
        return f"torch zip: data.pkl unreadable: {type(exc).__name__}: {exc}"[:300]
    root, complete, error, _ = read_pickle_value(raw)
    found, problem = walk_array_values(root)
    if not found and not complete and error:
        return f"torch zip: data.pkl unreadable: {error}"
    if order != b"little":
        acc.skip("...", f"byteorder {order[:16]!r} is not little-endian; no tensor read")
        return None

    def storage(name: str, dtype: str | None, shape: Any, offset: int, key: str) -> None:
        _torch_storage(zf, prefix, name, dtype, shape, offset, key, acc)

    _torch_tensors(found, storage, acc)
    if problem:
        acc.skip("...", problem)
    if not complete and error:
        acc.skip("...", f"data.pkl stopped early ({error}); tensors after that point are missing")
    return None


def _torch_tensors(found: list[tuple[Any, Any]], storage: Callable[[str, str | None, Any, int, str], None],
                   acc: _Acc) -> None:
    """Check each rebuilt tensor (storage reference, offset, contiguous strides) and hand it to `storage`."""
    from jieyao.formats.pickle import Global, Obj, PersistentRef

    for i, (info, obj) in enumerate(found):
        name = info.key or f"#{i}"
        if info.kind != "torch":
            acc.skip(name, "numpy array inside a torch checkpoint; not read")
            continue
        while (isinstance(obj, Obj) and isinstance(obj.func, Global) and obj.func.name.startswith("_rebuild_param")
               and isinstance(obj.args, tuple) and obj.args and isinstance(obj.args[0], Obj)):
            obj = obj.args[0]
        args = obj.args if isinstance(obj.args, tuple) else ()
        func = obj.func.name if isinstance(obj.func, Global) else ""
        if func not in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3") or len(args) < 4:
            acc.skip(name, f"tensor rebuilt by {func or '?'} is not read")
            continue
        storage_ref, offset, shape, stride = args[0], args[1], info.shape, args[3]
        if not (isinstance(storage_ref, PersistentRef) and info.storage_key):
            acc.skip(name, "tensor without a storage reference")
            continue
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            acc.skip(name, "invalid storage_offset")
            continue
        if shape is not None and not _contiguous(shape, stride):
            acc.skip(name, f"non-contiguous strides {str(stride)[:60]}; not read")
            continue
        if isinstance(storage_ref.pid, tuple) and len(storage_ref.pid) > 5 and storage_ref.pid[5] is not None:
            acc.skip(name, "storage view (legacy view_metadata) is not read")
            continue
        storage(name, info.dtype, shape, offset, info.storage_key)


def _torch_legacy(stream: bytes | memoryview, end: int, acc: _Acc) -> str | None:
    """The pre-1.6 form: magic, protocol version, sys_info, the object pickle, the storage keys list, then
    each storage in that order as an int64 element count and its bytes."""
    from jieyao.formats.pickle import read_pickle_value, walk_array_values

    _, ok, _, end = read_pickle_value(stream, offset=end, max_ops=16)
    if not ok:
        return "legacy torch checkpoint: protocol version unreadable"
    info, ok, _, end = read_pickle_value(stream, offset=end, max_ops=10_000)
    if not ok:
        return "legacy torch checkpoint: sys_info unreadable"
    root, complete, error, end = read_pickle_value(stream, offset=end)
    found, problem = walk_array_values(root)
    if not complete:
        return f"legacy torch checkpoint: object pickle unreadable: {error}"
    keys, ok, error, pos = read_pickle_value(stream, offset=end, max_ops=1_000_000)
    if not ok or not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        acc.skip("...", f"legacy torch checkpoint: storage key list unreadable ({error}); no tensor read")
        return None
    if info_little_endian(info) is False:
        acc.skip("...", "legacy torch checkpoint written big-endian; no tensor read")
        return None
    sizes: dict[str, int] = {}
    for tensor_info, _ in found:
        if tensor_info.storage_key and tensor_info.dtype in ITEMSIZE:
            sizes.setdefault(tensor_info.storage_key, ITEMSIZE[tensor_info.dtype])
    spans: dict[str, tuple[int, int]] = {}  # key -> (offset of its bytes, byte length)
    for key in keys:
        head = bytes(stream[pos:pos + 8])
        if len(head) < 8 or key not in sizes:
            break  # cut short, or a storage no tensor uses (its element size is unknown): stop here
        (numel,) = struct.unpack("<q", head)
        length = numel * sizes[key]
        if numel < 0 or pos + 8 + length > len(stream):
            break
        spans[key] = (pos + 8, length)
        pos += 8 + length

    def storage(name: str, dtype: str | None, shape: Any, offset: int, key: str) -> None:
        if key not in spans:
            acc.skip(name, f"storage {key[:40]!r} not found after the pickles (cut short or unreadable)")
            return
        begin, length = spans[key]
        start = begin + offset * ITEMSIZE.get(str(dtype), 1)

        def read(expected: int) -> bytes | None:
            if start + expected > begin + length:
                acc.skip(name, f"storage {key[:40]!r} is {length} bytes, too short for offset {offset} + "
                               f"{expected} bytes")
                return None
            return bytes(stream[start:start + expected])

        acc.offer(name, dtype, shape, _family_layout("torch", shape or ()), f"torch:legacy/{key}"[:300], None,
                  read)

    _torch_tensors(found, storage, acc)
    if problem:
        acc.skip("...", problem)
    return None


def info_little_endian(info: Any) -> bool | None:
    """sys_info's little_endian flag, when it says."""
    from jieyao.formats.pickle import PDict

    if isinstance(info, PDict):
        for key, value in info.pairs:
            if key == "little_endian" and isinstance(value, bool):
                return value
    return None


def _torch_storage(zf: zipfile.ZipFile, prefix: str, name: str, dtype: str | None, shape: Any, offset: int,
                   key: str, acc: _Acc) -> None:
    try:
        member = zf.getinfo(f"{prefix}/data/{key}")
    except KeyError:
        acc.skip(name, f"storage {key[:40]!r} has no data/ member")
        return
    size = member.file_size

    def read(expected: int) -> bytes | None:
        begin = offset * ITEMSIZE[str(dtype)]
        if begin + expected > size:
            acc.skip(name, f"storage {key[:40]!r} is {size} bytes, too short for offset {offset} + {expected} bytes")
            return None
        try:
            with zf.open(member) as fh:
                _skip(fh, begin)
                return fh.read(expected)
        except Exception as exc:
            acc.skip(name, f"storage {key[:40]!r} unreadable: {type(exc).__name__}: {exc}"[:300])
            return None

    acc.offer(name, dtype, shape, _family_layout("torch", shape or ()), f"torch:{prefix}/data/{key}"[:300], None,
              read)


def _skip(fh: IO[bytes], n: int) -> None:
    if n <= 0:
        return
    if fh.seekable():
        fh.seek(n, io.SEEK_CUR)
        return
    while n > 0:
        chunk = fh.read(min(n, 1 << 20))
        if not chunk:
            return
        n -= len(chunk)


# ---------------------------------------------------------------------------------------------------
# ONNX

_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
                10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
_ONNX_TYPE_NAMES = {8: "string", 14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
                    19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1"}
# TensorProto fields: dims 1, data_type 2, float_data 4, int32_data 5, string_data 6, int64_data 7, name 8,
# raw_data 9, double_data 10, uint64_data 11, external_data 13, data_location 14
_TYPED_FIELDS = {4: "float", 5: "int32", 7: "int64", 10: "double", 11: "uint64"}


@dataclass
class _Init:
    name: str = ""
    dims: list[int] = field(default_factory=list)
    data_type: int | None = None
    raw: Any = None  # Span of raw_data
    typed: dict[int, list[Any]] = field(default_factory=dict)  # field number -> spans (packed) or ints
    external: str | None = None


@dataclass
class _Graph:
    inits: list[_Init] = field(default_factory=list)
    uses: dict[str, str] = field(default_factory=dict)  # initializer name -> layout from the node using it
    dequant: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # weight -> (scale, zero point)


def _onnx(blob: Blob, acc: _Acc) -> str | None:
    from jieyao.formats.protobuf import ProtobufError, ProtoReader

    reader = ProtoReader(blob)
    graph = _Graph()
    try:
        for span in _graph_spans(reader):
            _onnx_graph(reader, span, graph, acc)
    except ProtobufError as exc:
        if not graph.inits:
            return f"onnx unreadable: {exc}"
        acc.skip("...", f"onnx walk stopped early ({exc}); initializers after that point are missing")
    values = {i.name: i for i in graph.inits}
    for init in graph.inits:
        _onnx_tensor(reader, init, graph, values, acc)
    return None


def _graph_spans(r: Any) -> Any:
    """The ModelProto's graph fields; a graph that runs past the end of the file is clipped to it."""
    from jieyao.formats.protobuf import Span

    pos, end = 0, r.blob.size
    while pos < end:
        tag, pos = r.varint(pos, end)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = r.varint(pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = r.varint(pos, end)
            if number == 7:
                yield Span(pos, min(length, end - pos))
            pos += length
        else:
            return
        if number == 0:
            return


def _onnx_graph(r: Any, span: Any, graph: _Graph, acc: _Acc) -> None:
    for f in r.fields(span, 1):
        if f.wire_type != 2:
            continue
        if f.number == 1:
            _onnx_node(r, f.value, graph)
        elif f.number == 5:
            if len(graph.inits) < acc.limits.max_tensors + MAX_SKIPPED:
                graph.inits.append(_onnx_init(r, f.value))
            else:
                acc.skip("...", "too many initializers; the rest are not listed")
                return


def _onnx_node(r: Any, span: Any, graph: _Graph) -> None:
    inputs: list[str] = []
    op = ""
    trans_b = 0
    for f in r.fields(span, 2):
        if f.wire_type != 2:
            continue
        if f.number == 1 and len(inputs) < 8:
            inputs.append(r.read_str(f.value, 4096))
        elif f.number == 4:
            op = r.read_str(f.value, 256)
        elif f.number == 5 and op in ("", "Gemm") and f.value.length < 256:
            attr_name, attr_int = "", 0
            for a in r.fields(f.value, 3):
                if a.number == 1 and a.wire_type == 2:
                    attr_name = r.read_str(a.value, 64)
                elif a.number == 3 and a.wire_type == 0:
                    attr_int = a.value
            if attr_name == "transB":
                trans_b = attr_int
    if len(inputs) < 2:
        return
    weight = inputs[1]
    if op == "Conv":
        graph.uses.setdefault(weight, "oihw")
    elif op == "ConvTranspose":
        graph.uses[weight] = "unknown"
    elif op == "Gemm":
        graph.uses.setdefault(weight, "oi" if trans_b else "io")
    elif op == "MatMul":
        graph.uses.setdefault(weight, "io")
    elif op == "DequantizeLinear":
        graph.dequant[inputs[0]] = (inputs[1], inputs[2] if len(inputs) > 2 else None)


def _onnx_init(r: Any, span: Any) -> _Init:
    from jieyao.formats.protobuf import signed64

    init = _Init()
    for f in r.fields(span, 2):
        n, w = f.number, f.wire_type
        if n == 1:
            if w == 2:
                room = MAX_DIMS + 1 - len(init.dims)
                if room > 0:
                    init.dims.extend(signed64(v) for v in r.packed_varints(f.value, room))
            elif w == 0 and len(init.dims) <= MAX_DIMS:
                init.dims.append(signed64(f.value))
        elif n == 2 and w == 0:
            init.data_type = signed64(f.value)
        elif n == 8 and w == 2:
            init.name = r.read_str(f.value, 4096)
        elif n == 9 and w == 2:
            init.raw = f.value
        elif n in _TYPED_FIELDS:
            values = init.typed.setdefault(n, [])
            if len(values) <= MAX_TYPED_VALUES:
                values.append(f)
        elif n == 14 and w == 0 and f.value == 1:
            init.external = init.external or ""
        elif n == 13 and w == 2 and init.external in (None, ""):
            key = value = ""
            for e in r.fields(f.value, 3):
                if e.number == 1 and e.wire_type == 2:
                    key = r.read_str(e.value, 256)
                elif e.number == 2 and e.wire_type == 2:
                    value = r.read_str(e.value, 1024)
            if key == "location":
                init.external = value
    return init


def _onnx_tensor(r: Any, init: _Init, graph: _Graph, values: dict[str, _Init], acc: _Acc) -> None:
    name = init.name
    if init.external is not None:
        acc.skip(name, f"weights in an external file ({init.external[:200]!r}); not read")
        return
    dtype = _ONNX_DTYPES.get(init.data_type or 0)
    if dtype is None:
        what = _ONNX_TYPE_NAMES.get(init.data_type or 0, f"ONNX data_type {init.data_type}")
        acc.skip(name, f"dtype {what} is not a numeric type we read")
        return
    shape = tuple(init.dims)
    if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        acc.skip(name, f"invalid dims {list(shape)[:8]}")
        return
    layout = graph.uses.get(name) or ("oihw" if len(shape) == 4 else "unknown")
    scale = zero_point = None
    if dtype in ("int8", "uint8") and name in graph.dequant:
        scale_name, zp_name = graph.dequant[name]
        scale = _onnx_scalar(r, values.get(scale_name))
        zero_point = _onnx_scalar(r, values.get(zp_name)) if zp_name else 0.0
        if scale is None:
            zero_point = None
    if init.raw is not None:
        span = init.raw
        acc.offer(name, dtype, shape, layout, "onnx", span.length, _span_reader(r.blob, span.offset), scale,
                  zero_point)
        return

    def read(expected: int) -> bytes | None:
        data, why = _onnx_typed(r, init, dtype, math.prod(shape))
        if data is None:
            acc.skip(name, why or "no data")
        return data

    acc.offer(name, dtype, shape, layout, "onnx", None, read, scale, zero_point)


def _onnx_typed(r: Any, init: _Init, dtype: str, count: int) -> tuple[bytes | None, str | None]:
    """The tensor's bytes from float_data / int32_data / int64_data / double_data / uint64_data."""
    import numpy as np

    from jieyao.formats.protobuf import decode_varint

    if count > MAX_TYPED_VALUES:
        return None, f"{count} values in typed fields, more than the {MAX_TYPED_VALUES} we decode"
    if count == 0:
        return b"", None
    for number, fields in init.typed.items():
        kind = _TYPED_FIELDS[number]
        if kind in ("float", "double"):
            width = 4 if kind == "float" else 8
            parts: list[bytes] = []
            for f in fields:
                if f.wire_type == 2:
                    if f.value.length > (count + 1) * width:
                        return None, "typed data longer than the dims need"
                    parts.append(r.read_bytes(f.value, f.value.length))
                elif f.wire_type in (1, 5):
                    parts.append(int(f.value).to_bytes(width, "little"))
            data = b"".join(parts)
            want = "float32" if kind == "float" else "float64"
            if dtype != want:
                return None, f"{kind}_data holds {dtype} values, which ONNX does not allow"
            return data, None
        ints: list[int] = []
        for f in fields:
            if f.wire_type == 2:
                raw = r.read_bytes(f.value, min(f.value.length, (count + 1) * 10))
                pos = 0
                while pos < len(raw) and len(ints) <= count:
                    v, pos = decode_varint(raw, pos)
                    ints.append(v)
            elif f.wire_type == 0:
                ints.append(f.value)
            if len(ints) > count:
                return None, "typed data longer than the dims need"
        if len(ints) != count:
            return None, f"typed data holds {len(ints)} values but the dims need {count}"
        mask = (1 << 64) - 1
        if dtype in ("float16", "bfloat16"):
            arr = np.array([v & 0xFFFF for v in ints], dtype="<u2")
        elif kind == "uint64":
            arr = np.array([v & mask for v in ints], dtype="<u8")
        else:
            signed = [v - (1 << 64) if v >= 1 << 63 else v for v in ints]
            np_dtype = {"bool": "u1", "uint8": "u1", "int8": "i1", "uint16": "<u2", "int16": "<i2",
                        "int32": "<i4", "uint32": "<u4", "int64": "<i8", "uint64": "<u8"}.get(dtype)
            if np_dtype is None:
                return None, f"{kind}_data cannot hold {dtype} values"
            try:
                arr = np.array(signed, dtype=np.int64).astype(np_dtype)
            except (OverflowError, ValueError):
                return None, "typed values out of range"
        return arr.tobytes(), None
    return None, "no raw_data and no typed data"


def _onnx_scalar(r: Any, init: _Init | None) -> float | None:
    """The value of a one-element float / int initializer (a DequantizeLinear scale or zero point)."""
    import numpy as np

    if init is None or init.external is not None or math.prod(init.dims) != 1:
        return None
    dtype = _ONNX_DTYPES.get(init.data_type or 0)
    if dtype is None or dtype == "bfloat16":
        return None
    if init.raw is not None:
        if init.raw.length != ITEMSIZE[dtype]:
            return None
        data: bytes | None = r.read_bytes(init.raw, init.raw.length)
    else:
        data, _ = _onnx_typed(r, init, dtype, 1)
    if not data or len(data) != ITEMSIZE[dtype]:
        return None
    np_dtype = np.dtype(dtype).newbyteorder("<")
    return float(np.frombuffer(data, dtype=np_dtype)[0])


__all__ = ["ITEMSIZE", "TensorData", "TensorLimits", "TensorReport", "read_tensors", "read_tensors_bytes"]
