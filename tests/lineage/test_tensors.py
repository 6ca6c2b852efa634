"""Static tensor access (jieyao.lineage.tensors): every format gives back the bytes written, bit-exact, with the
right dtype, shape and layout; bad input is a bounded skip or an error, never an exception. Fixtures are made
by code here (tiny random tensors); nothing is downloaded and nothing is ever unpickled."""

from __future__ import annotations

import io
import json
import struct
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.formats.conftest import numpy1_pickle, tensors, torch_pickle

from jieyao.imitations import numpy1_array_pickle
from jieyao.imitations.onnx import FLOAT, UINT8, Init, ModelSpec, f_len, f_str, f_varint, node_proto, to_bytes
from jieyao.lineage.tensors import ITEMSIZE, TensorLimits, TensorReport, read_tensors, read_tensors_bytes

RNG = np.random.default_rng(1234)


def _rand(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def _by_name(report: TensorReport) -> dict[str, Any]:
    return {t.name: t for t in report.tensors}


def _assert_exact(report: TensorReport, arrays: dict[str, np.ndarray], layouts: dict[str, str]) -> None:
    assert report.error is None, report.error
    got = _by_name(report)
    assert set(got) == set(arrays), (set(got), report.skipped)
    for name, arr in arrays.items():
        t = got[name]
        assert t.dtype == arr.dtype.name
        assert t.shape == arr.shape
        assert t.layout == layouts[name], (name, t.layout)
        assert t.data == arr.tobytes()
        assert len(t.data) == arr.nbytes


# -- fixtures ---------------------------------------------------------------------------------------

DFL = {"encoder/down1/conv1/weight:0": _rand((3, 3, 16, 32)),  # 18 KB: kept as a span, not inline
       "encoder/down1/conv1/bias:0": _rand((32,)),
       "inter/dense1/weight:0": _rand((64, 48), np.float16),
       "decoder/out/weight:0": _rand((1, 1, 8, 3), np.float64)}
DFL_LAYOUTS = {"encoder/down1/conv1/weight:0": "hwio", "encoder/down1/conv1/bias:0": "vector",
               "inter/dense1/weight:0": "io", "decoder/out/weight:0": "hwio"}

TORCH = {"conv.weight": _rand((8, 3, 3, 3)), "fc.weight": _rand((10, 72)), "fc.bias": _rand((10,)),
         "bn.num_batches_tracked": np.array(7, dtype=np.int64).reshape(())}
TORCH_LAYOUTS = {"conv.weight": "oihw", "fc.weight": "oi", "fc.bias": "vector", "bn.num_batches_tracked": "unknown"}


def _torch_zip(arrays: dict[str, np.ndarray], prefix: str = "archive", compression: int = zipfile.ZIP_STORED,
               data_pkl: bytes | None = None) -> bytes:
    """A torch zip checkpoint whose storages hold the arrays' real bytes."""
    sd = tensors({k: v.shape for k, v in arrays.items()}, "float32")
    for i, (key, arr) in enumerate(arrays.items()):  # dtypes per tensor
        from tests.formats.conftest import FAKE_TORCH, STORAGE_OF

        sd[key].storage.storage_class = getattr(FAKE_TORCH.torch, STORAGE_OF[arr.dtype.name])
        assert sd[key].storage.key == str(i)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        zf.writestr(f"{prefix}/data.pkl", data_pkl if data_pkl is not None else torch_pickle(sd))
        zf.writestr(f"{prefix}/byteorder", b"little")
        for i, arr in enumerate(arrays.values()):
            zf.writestr(f"{prefix}/data/{i}", arr.tobytes())
        zf.writestr(f"{prefix}/version", b"3\n")
    return out.getvalue()


ST = {"model.conv.weight": _rand((4, 2, 3, 3)), "model.fc.weight": _rand((6, 5), np.float16),
      "model.fc.bias": _rand((6,)), "model.ids": np.arange(7, dtype=np.int64)}
ST_LAYOUTS = {"model.conv.weight": "oihw", "model.fc.weight": "oi", "model.fc.bias": "vector",
              "model.ids": "vector"}
_ST_CODES = {"float32": "F32", "float16": "F16", "int64": "I64", "float64": "F64"}


def _safetensors(arrays: dict[str, np.ndarray], *, lie: dict[str, Any] | None = None) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    body = b""
    for name, arr in arrays.items():
        raw = arr.tobytes()
        header[name] = {"dtype": _ST_CODES[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    for name, entry in (lie or {}).items():
        header[name] = entry
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


ONNX = {"conv.weight": _rand((4, 3, 3, 3)), "conv.bias": _rand((4,)), "gemm.w": _rand((5, 36)),
        "gemm0.w": _rand((36, 5)), "mm.w": _rand((5, 7)), "loose.w": _rand((3, 3)), "deconv.w": _rand((4, 2, 2, 2))}
ONNX_LAYOUTS = {"conv.weight": "oihw", "conv.bias": "vector", "gemm.w": "oi", "gemm0.w": "io", "mm.w": "io",
                "loose.w": "unknown", "deconv.w": "unknown"}
QW = RNG.integers(0, 256, (6, 4), dtype=np.uint8)


def _onnx_bytes() -> bytes:
    trans_b = f_str(1, "transB") + f_varint(3, 1) + f_varint(20, 2)
    nodes: list[Any] = [
        ("Conv", ["x", "conv.weight", "conv.bias"], ["c"]),
        node_proto("Gemm", ["c", "gemm.w"], ["g"], name="gemm", attributes=[trans_b]),
        ("Gemm", ["g", "gemm0.w"], ["g0"]),
        ("MatMul", ["g0", "mm.w"], ["m"]),
        ("ConvTranspose", ["m", "deconv.w"], ["d"]),
        ("DequantizeLinear", ["q.w", "q.scale", "q.zp"], ["qf"]),
    ]
    inits = [Init(name, FLOAT, list(arr.shape), arr.tobytes()) for name, arr in ONNX.items()]
    inits += [Init("q.w", UINT8, [6, 4], QW.tobytes()),
              Init("q.scale", FLOAT, [], np.array(0.125, np.float32).tobytes()),
              Init("q.zp", UINT8, [], bytes([3])),
              Init("ext.w", FLOAT, [100, 100], 0, external={"location": "weights.bin", "offset": "0"})]
    return to_bytes(ModelSpec(inputs=[("x", FLOAT, [1, 3, 8, 8])], outputs=[("d", FLOAT, None)],
                              initializers=inits, nodes=nodes))


def _onnx_typed_model(tensor_fields: bytes) -> bytes:
    """A ModelProto with one initializer written from raw TensorProto fields (float_data, int32_data, ...)."""
    graph = f_len(5, tensor_fields) + f_str(2, "g")
    return f_varint(1, 7) + f_str(2, "test") + f_len(7, graph) + f_len(8, f_varint(2, 13))


# -- each format, bit-exact -------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dfl_pickle_bit_exact(protocol: int) -> None:
    report = read_tensors_bytes("encoder.npy", numpy1_pickle(DFL, protocol=protocol))
    assert report.format == "pickle"
    _assert_exact(report, DFL, DFL_LAYOUTS)
    assert all(t.source == "pickle" for t in report.tensors)


def test_imitation_dfl_pickle_matches_its_payload_bytes() -> None:
    data = numpy1_array_pickle({"a/weight:0": ((5, 5, 3, 64), "f4"), "a/bias:0": ((64,), "f4")})
    report = read_tensors_bytes("enc.npy", data)
    got = _by_name(report)
    assert got["a/weight:0"].shape == (5, 5, 3, 64) and got["a/weight:0"].layout == "hwio"
    assert len(got["a/weight:0"].data) == 5 * 5 * 3 * 64 * 4
    assert got["a/weight:0"].data in data and got["a/bias:0"].data in data


def test_file_path_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "encoder.npy"
    path.write_bytes(numpy1_pickle(DFL))
    _assert_exact(read_tensors(path), DFL, DFL_LAYOUTS)
    path = tmp_path / "m.safetensors"
    path.write_bytes(_safetensors(ST))
    _assert_exact(read_tensors(str(path)), ST, ST_LAYOUTS)


def test_safetensors_bit_exact() -> None:
    report = read_tensors_bytes("m.safetensors", _safetensors(ST))
    assert report.format == "safetensors"
    _assert_exact(report, ST, ST_LAYOUTS)


def test_npy_and_npz_bit_exact() -> None:
    arr = _rand((3, 3, 8, 16))
    buf = io.BytesIO()
    np.save(buf, arr)
    report = read_tensors_bytes("layer1.npy", buf.getvalue())
    assert report.format == "npy"
    _assert_exact(report, {"layer1": arr}, {"layer1": "unknown"})
    buf = io.BytesIO()
    members = {"w": _rand((4, 5)), "b": _rand((5,), np.float16)}
    np.savez(buf, **members)  # type: ignore[arg-type]
    report = read_tensors_bytes("weights.npz", buf.getvalue())
    assert report.format == "npy"
    _assert_exact(report, members, {"w": "unknown", "b": "vector"})
    assert {t.source for t in report.tensors} == {"npy:w.npy", "npy:b.npy"}


def test_npy_object_array_is_refused_without_unpickling() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    report = read_tensors_bytes("obj.npy", buf.getvalue())
    assert report.tensors == [] and report.error is None
    assert "pickle" in report.skipped[0][1]


def test_onnx_bit_exact_with_layouts_and_dequant_scale() -> None:
    report = read_tensors_bytes("m.onnx", _onnx_bytes())
    assert report.format == "onnx"
    got = _by_name(report)
    floats = {k: v for k, v in got.items() if k in ONNX}
    _assert_exact(TensorReport("onnx", list(floats.values()), []), ONNX, ONNX_LAYOUTS)
    q = got["q.w"]
    assert q.dtype == "uint8" and q.shape == (6, 4) and q.data == QW.tobytes()
    assert q.scale == 0.125 and q.zero_point == 3.0
    assert got["q.scale"].shape == () and got["q.scale"].layout == "unknown"
    assert ("ext.w", "weights in an external file ('weights.bin'); not read") in report.skipped


def test_onnx_float_data_and_int32_data() -> None:
    values = _rand((2, 3))
    fields = f_len(1, bytes([2, 3])) + f_varint(2, FLOAT) + f_str(8, "fd") + f_len(4, values.tobytes())
    _assert_exact(read_tensors_bytes("a.onnx", _onnx_typed_model(fields)), {"fd": values}, {"fd": "unknown"})
    halves = _rand((5,), np.float16)
    packed = b"".join(_varint(int(v)) for v in halves.view(np.uint16))
    fields = f_len(1, bytes([5])) + f_varint(2, 10) + f_str(8, "h") + f_len(5, packed)
    _assert_exact(read_tensors_bytes("b.onnx", _onnx_typed_model(fields)), {"h": halves}, {"h": "vector"})
    ints = np.array([-3, 0, 127, -128], np.int8)
    packed = b"".join(_varint(int(v) & ((1 << 64) - 1)) for v in ints)
    fields = f_len(1, bytes([4])) + f_varint(2, 3) + f_str(8, "i8") + f_len(5, packed)
    _assert_exact(read_tensors_bytes("c.onnx", _onnx_typed_model(fields)), {"i8": ints}, {"i8": "vector"})


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_onnx_typed_data_count_mismatch_is_skipped() -> None:
    fields = f_len(1, bytes([4])) + f_varint(2, 6) + f_str(8, "short") + f_len(5, bytes([1, 2, 3]))
    report = read_tensors_bytes("d.onnx", _onnx_typed_model(fields))
    assert report.tensors == [] and report.error is None
    assert report.skipped[0][0] == "short" and "3 values" in report.skipped[0][1]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_torch_zip_bit_exact(compression: int) -> None:
    report = read_tensors_bytes("model.pth", _torch_zip(TORCH, compression=compression))
    assert report.format == "torch"
    _assert_exact(report, TORCH, TORCH_LAYOUTS)
    assert report.tensors[0].source == "torch:archive/data/0"


def test_torch_zip_storage_offset_and_non_contiguous() -> None:
    shared = _rand((20,))
    sd = tensors({"a": (4,), "b": (2, 3), "c": (3, 2)}, "float32")
    storage = sd["a"].storage
    storage.numel = 20
    for t in sd.values():
        t.storage = storage

    class Offset:
        def __init__(self, inner: Any, offset: int, stride: tuple[int, ...] | None = None) -> None:
            self.inner, self.offset, self.stride = inner, offset, stride

        def __reduce_ex__(self, protocol: Any) -> Any:
            func, args = self.inner.__reduce_ex__(protocol)
            stride = self.stride if self.stride is not None else args[3]
            return func, (args[0], self.offset, args[2], stride, *args[4:])

    obj = {"a": Offset(sd["a"], 2), "b": Offset(sd["b"], 10), "c": Offset(sd["c"], 0, (1, 3))}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", torch_pickle(obj))
        zf.writestr("archive/data/0", shared.tobytes())
        zf.writestr("archive/version", b"3\n")
    report = read_tensors_bytes("m.pt", out.getvalue())
    got = _by_name(report)
    assert got["a"].data == shared[2:6].tobytes()
    assert got["b"].data == shared[10:16].tobytes() and got["b"].shape == (2, 3)
    assert "c" not in got and any(n == "c" and "non-contiguous" in why for n, why in report.skipped)


# -- nothing to read, limits, damage ---------------------------------------------------------------

def test_no_float_tensors_is_empty_not_error() -> None:
    report = read_tensors_bytes("opts.dat", numpy1_pickle({"epoch": 3, "name": "SAEHD", "opts": {"a": 1}}))
    assert report.format == "pickle" and report.tensors == [] and report.error is None
    report = read_tensors_bytes("m.safetensors", _safetensors({}))
    assert report.format == "safetensors" and report.tensors == [] and report.error is None
    report = read_tensors_bytes("notes.txt", b"hello, not a model at all\n" * 10)
    assert report.format is None and report.tensors == [] and report.error is None


def _huge_safetensors() -> bytes:
    return _safetensors({"small": np.ones(3, np.float32)},
                        lie={"huge": {"dtype": "F32", "shape": [100_000, 100_000], "data_offsets": [0, 12]}})


def _huge_pickle() -> bytes:
    data = numpy1_array_pickle({"ok": ((7, 11), "f4")})
    big = b"J" + struct.pack("<i", 100_000)
    assert data.count(b"K\x07K\x0b") == 1
    return data.replace(b"K\x07K\x0b", big + big)  # shape (7, 11) -> (100000, 100000): 10^10 elements


def _huge_onnx() -> bytes:
    return to_bytes(ModelSpec(initializers=[Init("huge", FLOAT, [100_000, 100_000], 16)]))


def _npy_claiming(n: int) -> bytes:
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({n},), }}".ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(16)


def _huge_npy() -> bytes:
    return _npy_claiming(10**10)


@pytest.mark.parametrize("make", [_huge_safetensors, _huge_pickle, _huge_onnx, _huge_npy])
def test_ten_to_the_ten_elements_is_skipped_fast(make: Any) -> None:
    data = make()
    tracemalloc.start()
    start = time.perf_counter()
    report = read_tensors_bytes("huge", data)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 50 * 1024 * 1024
    assert report.error is None
    assert any("over max_tensor_bytes" in why for _, why in report.skipped), report.skipped


def test_huge_pickle_fixture_really_declares_huge() -> None:
    report = read_tensors_bytes("huge", _huge_pickle())
    assert any(name == "ok" and "[100000, 100000]" in why for name, why in report.skipped), report.skipped


def _torch_legacy(arrays: dict[str, np.ndarray], *, cut: int = 0) -> bytes:
    """The pre-1.6 torch.save form with the arrays' real bytes as storages."""
    import pickle

    from tests.formats.conftest import FAKE_TORCH, LEGACY_MAGIC, STORAGE_OF

    sd = tensors({k: v.shape for k, v in arrays.items()}, "float32")
    for key, arr in arrays.items():
        sd[key].storage.storage_class = getattr(FAKE_TORCH.torch, STORAGE_OF[arr.dtype.name])
    out = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True,
                                     "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, out, protocol=2)
    out.write(torch_pickle(sd))
    pickle.dump([sd[k].storage.key for k in arrays], out, protocol=2)
    for arr in arrays.values():
        out.write(struct.pack("<q", arr.size) + arr.tobytes())
    data = out.getvalue()
    return data[: len(data) - cut]


def test_legacy_torch_checkpoint_bit_exact() -> None:
    report = read_tensors_bytes("old.pth", _torch_legacy(TORCH))
    assert report.format == "torch"
    _assert_exact(report, TORCH, TORCH_LAYOUTS)
    assert report.tensors[0].source == "torch:legacy/0"


def test_legacy_torch_checkpoint_cut_short() -> None:
    report = read_tensors_bytes("old.pth", _torch_legacy(TORCH, cut=TORCH["fc.bias"].nbytes + 9))
    got = _by_name(report)
    assert set(got) == {"conv.weight", "fc.weight"}  # the storages before the cut
    assert {name for name, _ in report.skipped} == {"fc.bias", "bn.num_batches_tracked"}


def test_limits_on_count_and_total() -> None:
    limits = TensorLimits(max_tensors=2)
    report = read_tensors_bytes("m.safetensors", _safetensors(ST), limits)
    assert len(report.tensors) == 2 and sum("max_tensors" in why for _, why in report.skipped) == 2
    limits = TensorLimits(max_total_bytes=ST["model.conv.weight"].nbytes + 10)
    report = read_tensors_bytes("m.safetensors", _safetensors(ST), limits)
    assert sum(len(t.data) for t in report.tensors) <= limits.max_total_bytes
    assert any("max_total_bytes" in why for _, why in report.skipped)


def test_file_over_max_file_bytes_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(_safetensors(ST))
    report = read_tensors(path, TensorLimits(max_file_bytes=100))
    assert report.tensors == [] and report.error is not None and "max_file_bytes" in report.error
    report = read_tensors_bytes("m", _safetensors(ST), TensorLimits(max_file_bytes=100))
    assert report.error is not None and "max_file_bytes" in report.error
    assert read_tensors(tmp_path / "missing.onnx").error is not None
    assert read_tensors(tmp_path).error == "not a regular file"


def test_declared_size_mismatch_is_skipped() -> None:
    data = _safetensors({"a": np.ones(3, np.float32)},
                        lie={"b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}})
    report = read_tensors_bytes("m.safetensors", data)
    assert [t.name for t in report.tensors] == ["a"]
    assert report.skipped[0][0] == "b" and "needs 16" in report.skipped[0][1]
    onnx = to_bytes(ModelSpec(initializers=[Init("w", FLOAT, [4, 4], 60)]))
    report = read_tensors_bytes("m.onnx", onnx)
    assert report.tensors == [] and "needs 64" in report.skipped[0][1]


@pytest.mark.parametrize("fixture", ["pickle", "safetensors", "npy", "onnx", "torch", "torch_legacy"])
def test_truncated_payload_is_skipped_or_error(fixture: str) -> None:
    data = FIXTURES[fixture]()
    cut = data[: len(data) * 2 // 3]
    report = read_tensors_bytes("cut", cut)
    full = read_tensors_bytes("full", data)
    assert len(report.tensors) < len(full.tensors)
    assert report.error is not None or report.skipped
    for t in report.tensors:  # what does come back is whole
        assert len(t.data) == int(np.prod(t.shape)) * ITEMSIZE[t.dtype]


def test_nan_and_inf_come_back_as_they_are() -> None:
    arr = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    for data in (numpy1_pickle({"w": arr}), _safetensors({"w": arr}), _torch_zip({"w": arr})):
        got = _by_name(read_tensors_bytes("m", data))["w"]
        assert got.data == arr.tobytes()


def test_keras_h5_without_h5py_is_a_clear_skip() -> None:
    pytest.importorskip("numpy")
    try:
        import h5py  # type: ignore[import-not-found]  # noqa: F401
        pytest.skip("h5py installed")
    except ImportError:
        pass
    report = read_tensors_bytes("model.h5", b"\x89HDF\r\n\x1a\n" + bytes(200))
    assert report.format == "keras" and report.tensors == [] and report.error is None
    assert "h5py" in report.skipped[0][1]


def test_never_unpickles_a_pickle_that_would_run_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import pickle

    from tests.fixtures.models import pickle_that_runs_code

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("loaded")

    evil = pickle_that_runs_code()
    monkeypatch.setattr(os, "system", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    report = read_tensors_bytes("evil.pkl", evil)
    assert report.tensors == [] and report.error is None


# -- fuzz -----------------------------------------------------------------------------------------

FIXTURES = {
    "pickle": lambda: numpy1_pickle(DFL, protocol=4),
    "pickle2": lambda: numpy1_pickle(DFL, protocol=2),
    "safetensors": lambda: _safetensors(ST),
    "npy": lambda: _npy_bytes(),
    "onnx": _onnx_bytes,
    "torch": lambda: _torch_zip(TORCH),
    "torch_legacy": lambda: _torch_legacy(TORCH),
}


def _npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, DFL["encoder/down1/conv1/weight:0"])
    return buf.getvalue()


_CACHE = {k: make() for k, make in FIXTURES.items()}
_FUZZ_LIMITS = TensorLimits(max_tensors=64, max_tensor_bytes=1 << 20, max_total_bytes=4 << 20)


@settings(suppress_health_check=[HealthCheck.too_slow])  # examples and seed: tests/conftest.py profile
@given(which=st.sampled_from(sorted(_CACHE)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=8))
def test_fuzz_truncations_and_bit_flips_never_raise(which: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(_CACHE[which])
    for where, bit in flips:
        data[int(where * (len(data) - 1))] ^= 1 << bit
    data = data[: max(1, int(cut * len(data)))] if cut < 0.98 else data
    report = read_tensors_bytes("fuzz", bytes(data), _FUZZ_LIMITS)
    assert not (report.error or "").startswith("internal"), report.error  # the safety net must not be needed
    assert len(report.tensors) <= _FUZZ_LIMITS.max_tensors
    assert sum(len(t.data) for t in report.tensors) <= _FUZZ_LIMITS.max_total_bytes
    for t in report.tensors:
        assert len(t.data) <= _FUZZ_LIMITS.max_tensor_bytes
        assert t.layout in ("oihw", "hwio", "oi", "io", "vector", "unknown")


def test_bfloat16_torch_v3_and_safetensors() -> None:
    bits = RNG.integers(0, 1 << 16, (3, 4), dtype=np.uint16)
    sd = tensors({"w": (3, 4)}, "bfloat16", v3=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", torch_pickle(sd))
        zf.writestr("archive/data/0", bits.tobytes())
        zf.writestr("archive/version", b"3\n")
    got = _by_name(read_tensors_bytes("m.pt", out.getvalue()))["w"]
    assert (got.dtype, got.shape, got.layout, got.data) == ("bfloat16", (3, 4), "oi", bits.tobytes())
    text = json.dumps({"w": {"dtype": "BF16", "shape": [3, 4], "data_offsets": [0, 24]}}).encode()
    got = _by_name(read_tensors_bytes("m.safetensors", struct.pack("<Q", len(text)) + text + bits.tobytes()))["w"]
    assert (got.dtype, got.data) == ("bfloat16", bits.tobytes())


def test_npy_big_endian_and_fortran_order_are_skipped_with_why() -> None:
    for arr, why in ((_rand((4, 4)).astype(">f4"), "big-endian"), (np.asfortranarray(_rand((4, 5))), "Fortran")):
        buf = io.BytesIO()
        np.save(buf, arr)
        report = read_tensors_bytes("a.npy", buf.getvalue())
        assert report.tensors == [] and why in report.skipped[0][1]
    report = read_tensors_bytes("enc.npy", numpy1_pickle({"w": np.asfortranarray(_rand((4, 5)))}))
    assert report.tensors == [] and "Fortran" in report.skipped[0][1]


def test_non_numeric_dtypes_are_skipped() -> None:
    text = json.dumps({"f8": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}).encode()
    report = read_tensors_bytes("m.safetensors", struct.pack("<Q", len(text)) + text + b"\0\0")
    assert report.tensors == [] and report.skipped[0][0] == "f8" and "numeric" in report.skipped[0][1]
    onnx = to_bytes(ModelSpec(initializers=[Init("s", 8, [1], 0)]))  # STRING
    report = read_tensors_bytes("m.onnx", onnx)
    assert report.tensors == [] and "string" in report.skipped[0][1]
