"""safetensors and .npy header readers: good headers summarised, bad ones reported (never raised), nothing
beyond the header read, and object-dtype .npy flagged as holding a pickle. numpy only writes fixtures here."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jieyao.formats.npy import NpySummary, looks_like_npy, read_npy
from jieyao.formats.safetensors import SafetensorsSummary, read_safetensors
from jieyao.intake.blob import Blob, BytesBlob

WIDTH = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "U8": 1, "BOOL": 1}


def safetensors_bytes(tensors: list[tuple[str, str, list[int]]], metadata: dict[str, str] | None = None,
                      *, header: dict[str, object] | None = None, data: bytes | None = None) -> bytes:
    """A safetensors file with contiguous zero-filled tensors (or a given header/data for broken cases)."""
    if header is None:
        header, pos = {}, 0
        for name, dtype, shape in tensors:
            n = int(np.prod(shape, dtype=np.int64)) * WIDTH[dtype]
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + n]}
            pos += n
        if metadata is not None:
            header["__metadata__"] = metadata
        data = bytes(pos) if data is None else data
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + (data or b"")


class CountingBlob(BytesBlob):
    """Records how many bytes readers ask for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked = 0

    def read_at(self, offset: int, n: int) -> bytes:
        self.asked += max(0, n)
        return super().read_at(offset, n)


def st_summary(data: bytes | Blob) -> SafetensorsSummary:
    return read_safetensors(data if isinstance(data, Blob) else BytesBlob(data))


# ---------------------------------------------------------------- safetensors

LLM = [("model.embed_tokens.weight", "BF16", [320, 64]), ("model.layers.0.self_attn.q_proj.weight", "BF16", [64, 64]),
       ("model.layers.0.mlp.down_proj.weight", "BF16", [64, 128]), ("lm_head.weight", "BF16", [320, 64])]
REACTOR_FACE = [("bbox", "F32", [4]), ("kps", "F32", [5, 2]), ("det_score", "F32", []),
                ("landmark_3d_68", "F32", [68, 3]), ("pose", "F32", [3]), ("landmark_2d_106", "F32", [106, 2]),
                ("embedding", "F32", [512]), ("gender", "I64", []), ("age", "I64", [])]


def test_llm_like_header() -> None:
    data = safetensors_bytes(LLM, {"format": "pt"})
    blob = CountingBlob(data)
    s = st_summary(blob)
    assert s.error is None and s.problems == ()
    assert s.tensors == tuple((n, d, tuple(sh)) for n, d, sh in LLM)
    assert s.metadata == {"format": "pt"} and s.tensor_count == 4
    assert blob.asked == 8 + s.header_bytes < len(data) / 10


def test_face_model_like_header() -> None:
    s = st_summary(safetensors_bytes(REACTOR_FACE))
    assert s.error is None
    assert [t[0] for t in s.tensors] == [n for n, _, _ in REACTOR_FACE]
    assert dict((n, sh) for n, _, sh in s.tensors)["embedding"] == (512,)


def test_header_claiming_10_gb_is_not_read() -> None:
    data = struct.pack("<Q", 10 * 1024**3) + b"{" + bytes(100)
    blob = CountingBlob(data)
    s = st_summary(blob)
    assert s.error and "bound" in s.error and s.header_bytes == 10 * 1024**3 and s.tensors == ()
    assert blob.asked <= 8


def test_header_longer_than_file() -> None:
    s = st_summary(struct.pack("<Q", 500) + b'{"a": 1}')
    assert s.error and "only 8 follow" in s.error


@pytest.mark.parametrize("raw", [b'{"a": ', b"\xff\xfe{}", b"[1, 2]", b'{"a": 1, "a": 2}', b"[" * 100_000,
                                 b'{"x": ' + b"9" * 5000 + b"}"],
                         ids=["cut", "not utf8", "list", "duplicate", "deep", "huge int"])
def test_invalid_json_header(raw: bytes) -> None:
    s = st_summary(struct.pack("<Q", len(raw)) + raw)
    assert s.error and s.tensors == ()


def test_too_short_file() -> None:
    assert st_summary(b"\x01\x00").error


def test_offsets_out_of_range_and_overlapping() -> None:
    header = {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
              "c": {"dtype": "F32", "shape": [4], "data_offsets": [24, 4000]},
              "d": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}}
    s = st_summary(safetensors_bytes([], header=header, data=bytes(40)))
    assert s.error and len(s.tensors) == 4
    text = " | ".join(s.problems)
    assert "'a' and 'b' overlap" in text and "'c' data_offsets [24, 4000]" in text


def test_engulfing_tensor_overlaps_everything_it_covers() -> None:
    header = {"big": {"dtype": "U8", "shape": [100], "data_offsets": [0, 100]},
              "x": {"dtype": "U8", "shape": [10], "data_offsets": [10, 20]},
              "y": {"dtype": "U8", "shape": [10], "data_offsets": [30, 40]}}
    s = st_summary(safetensors_bytes([], header=header, data=bytes(100)))
    assert sum("overlap" in p for p in s.problems) == 2


@pytest.mark.parametrize("entry, match", [
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}, "needs 16"),
    ({"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}, "unknown dtype"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}, "invalid shape"),
    ({"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}, "outside"),
    ({"dtype": "F32", "shape": [4], "data_offsets": "0-16"}, "invalid data_offsets"),
    ({"dtype": "F32", "shape": [2**62] * 64, "data_offsets": [0, 16]}, "needs"),
    ([1, 2], "not an object"),
])
def test_bad_entries_reported(entry: object, match: str) -> None:
    s = st_summary(safetensors_bytes([], header={"t": entry, "__metadata__": {"n": 1}}, data=bytes(16)))
    assert s.error and any(match in p for p in s.problems), s.problems
    assert any("__metadata__['n']" in p for p in s.problems)


# ---------------------------------------------------------------- npy


def npy_bytes(arr: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


def npy_raw(header: str, *, version: int = 1, hlen: int | None = None, data: bytes = b"") -> bytes:
    raw = header.encode("latin-1")
    n = len(raw) if hlen is None else hlen
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if version == 1 else "<I", n) + raw + data


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_versions(version: tuple[int, int]) -> None:
    data = npy_bytes(np.zeros((3, 5), dtype="<f4"), version)
    s = read_npy(BytesBlob(data))
    assert s == NpySummary(version=version, dtype_descr="<f4", fortran_order=False, shape=(3, 5),
                           data_bytes_expected=60, error=None, has_pickle=False, data_offset=len(data) - 60)
    assert looks_like_npy(data)


def test_npy_fortran_order_and_other_dtypes() -> None:
    s = read_npy(BytesBlob(npy_bytes(np.asfortranarray(np.zeros((4, 2), dtype="<i8")))))
    assert s.fortran_order is True and s.shape == (4, 2) and s.data_bytes_expected == 64 and s.error is None
    u = read_npy(BytesBlob(npy_bytes(np.array(["abc", "d"]))))
    assert u.dtype_descr == "<U3" and u.data_bytes_expected == 24
    rec = read_npy(BytesBlob(npy_bytes(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (3,))]))))
    assert rec.data_bytes_expected == 56 and not rec.has_pickle and rec.error is None


def test_npy_object_dtype_flagged() -> None:
    s = read_npy(BytesBlob(npy_bytes(np.array([1, "x", None], dtype=object))))
    assert s.has_pickle and s.dtype_descr == "|O" and s.data_bytes_expected is None and s.error is None
    rec = read_npy(BytesBlob(npy_raw("{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, "
                                     "'shape': (2,), }\n")))
    assert rec.has_pickle


def test_npy_members_of_npz() -> None:
    buf = io.BytesIO()
    np.savez(buf, weights=np.zeros((2, 2), dtype="<f2"))
    with zipfile.ZipFile(buf) as zf:
        s = read_npy(BytesBlob(zf.read("weights.npy")))
    assert s.shape == (2, 2) and s.dtype_descr == "<f2"


@pytest.mark.parametrize("data, match", [
    (b"\x93NUMPY\x01", "truncated"),
    (b"\x93NUMP", "magic"),
    (npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", hlen=200), "cut short"),
    (npy_raw("x", version=2, hlen=0xFFFFFFFF), "bound"),
    (b"\x93NUMPY\x09\x00" + bytes(8), "unsupported"),
    (npy_raw("__import__('os').system('echo pwned')"), "not a Python literal"),
    (npy_raw("[1, 2]"), "not a dict"),
    (npy_raw("{'a': " + "(" * 100 + ")" * 100 + "}"), "nests"),
    (npy_raw("{'descr': '<f4', 'shape': (3,)}"), "lacks"),
    (npy_raw("{'descr': '<f4', 'fortran_order': 1, 'shape': (-3,)}"), "fortran_order"),
    (npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (10,)}", data=bytes(8)), "needs 40"),
    (npy_raw("{'descr': 'zz', 'fortran_order': False, 'shape': ()}"), "understands"),
    (npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",)}"), "literal"),
])
def test_npy_bad_headers(data: bytes, match: str) -> None:
    s = read_npy(BytesBlob(data))
    assert s.error and match in s.error, s.error


def test_npy_truncated_at_every_offset() -> None:
    data = npy_bytes(np.zeros(3, dtype="<f4"))
    for cut in range(len(data)):
        assert read_npy(BytesBlob(data[:cut])).error, cut


# ---------------------------------------------------------------- fuzz

ST_SEED = safetensors_bytes(REACTOR_FACE[:4], {"format": "pt"})
NPY_SEED = npy_bytes(np.zeros((2, 3), dtype=[("a", "<f4"), ("b", "<i2", (2,))]))


def _mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, pos, junk in edits:
        if not out:
            break
        pos %= len(out)
        if kind == 0:
            out[pos] ^= junk[0] | 1
        elif kind == 1:
            out[pos : pos + len(junk)] = junk
        elif kind == 2:
            out[pos:pos] = junk
        else:
            del out[pos:]
    return bytes(out)


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
                 min_size=1, max_size=6)


@given(EDITS)
def test_fuzz_safetensors(edits: list[tuple[int, int, bytes]]) -> None:
    assert isinstance(st_summary(_mutate(ST_SEED, edits)), SafetensorsSummary)


@given(EDITS)
def test_fuzz_npy(edits: list[tuple[int, int, bytes]]) -> None:
    assert isinstance(read_npy(BytesBlob(_mutate(NPY_SEED, edits))), NpySummary)


@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    st_summary(data)
    read_npy(BytesBlob(data))
    read_npy(BytesBlob(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(data)) + data))
