"""Keras HDF5 weights (jieyao.lineage.tensors with h5py): Keras 2 `model.save` and `save_weights` layouts and the
Keras 3 `.keras` zip give back the bytes written, bit-exact, as TF layouts; unbounded datasets, links out of the
file and corrupt files are skips or errors, never exceptions. Fixtures are written here with h5py (tiny random
arrays); attributes are written the way Keras writes them and never read back; no model is ever loaded."""

from __future__ import annotations

import io
import json
import struct
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from jieyao.lineage.fingerprint import compare, fingerprint  # noqa: E402
from jieyao.lineage.tensors import TensorLimits, TensorReport, read_tensors, read_tensors_bytes  # noqa: E402

RNG = np.random.default_rng(4321)


def _rand(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


LAYERS: dict[str, dict[str, np.ndarray]] = {
    "conv2d": {"kernel:0": _rand((3, 3, 3, 8)), "bias:0": _rand((8,))},
    "dense": {"kernel:0": _rand((72, 10), np.float16), "bias:0": _rand((10,), np.float64)},
    "conv2d_transpose": {"kernel:0": _rand((2, 2, 4, 8))},
}


def _expected(prefix: str = "") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays, layouts = {}, {}
    for layer, weights in LAYERS.items():
        for w, arr in weights.items():
            name = f"{prefix}{layer}/{layer}/{w}"
            arrays[name] = arr
            layouts[name] = {4: "hwio", 2: "io", 1: "vector"}[arr.ndim]
    layouts["conv2d_transpose/conv2d_transpose/kernel:0"] = "unknown"
    return arrays, layouts


def _write_layers(group: Any) -> None:
    group.attrs["layer_names"] = [n.encode() for n in LAYERS]
    for layer, weights in LAYERS.items():
        g = group.create_group(layer)
        g.attrs["weight_names"] = [f"{layer}/{w}".encode() for w in weights]
        inner = g.create_group(layer)
        for w, arr in weights.items():
            inner.create_dataset(w, data=arr)


def _keras2_full(**extra: Any) -> bytes:
    """Keras 2 `model.save("x.h5")`: model_weights/<layer>/<layer>/<w>:0, optimizer_weights beside it."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
        _write_layers(f.create_group("model_weights"))
        f.create_dataset("optimizer_weights/Adam/iter:0", data=np.array(3, np.int64))
        for key, make in extra.items():
            make(f, key)
    return buf.getvalue()


def _keras2_weights_only() -> bytes:
    """Keras 2 `save_weights("x.h5")`: the layers at the root."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_layers(f)
    return buf.getvalue()


def _assert_exact(report: TensorReport, arrays: dict[str, np.ndarray], layouts: dict[str, str]) -> None:
    assert report.error is None, report.error
    assert report.format == "keras"
    got = {t.name: t for t in report.tensors}
    assert set(got) == set(arrays), (set(got), report.skipped)
    for name, arr in arrays.items():
        t = got[name]
        assert t.dtype == arr.dtype.name
        assert t.shape == arr.shape
        assert t.layout == layouts[name], (name, t.layout)
        assert t.data == arr.tobytes()
        assert t.source.startswith("keras")


def test_keras2_model_save_bit_exact(tmp_path: Path) -> None:
    data = _keras2_full()
    arrays, layouts = _expected()
    _assert_exact(read_tensors_bytes("m.h5", data), arrays, layouts)
    path = tmp_path / "m.h5"
    path.write_bytes(data)
    report = read_tensors(path)
    _assert_exact(report, arrays, layouts)
    assert not any("optimizer" in t.name for t in report.tensors)


def test_keras2_save_weights_bit_exact() -> None:
    arrays, layouts = _expected()
    _assert_exact(read_tensors_bytes("w.h5", _keras2_weights_only()), arrays, layouts)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_keras3_zip_bit_exact(compression: int, tmp_path: Path) -> None:
    kernel, bias = _rand((3, 3, 2, 4)), _rand((4,))
    h5 = io.BytesIO()
    with h5py.File(h5, "w") as f:
        f.create_dataset("layers/conv2d/vars/0", data=kernel)
        f.create_dataset("layers/conv2d/vars/1", data=bias)
        f.create_dataset("optimizer/vars/0", data=np.array(1, np.int64))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        zf.writestr("config.json", json.dumps({"class_name": "Sequential"}))
        zf.writestr("model.weights.h5", h5.getvalue())
    path = tmp_path / "m.keras"
    path.write_bytes(out.getvalue())
    for report in (read_tensors_bytes("m.keras", out.getvalue()), read_tensors(path)):
        _assert_exact(report, {"layers/conv2d/vars/0": kernel, "layers/conv2d/vars/1": bias},
                      {"layers/conv2d/vars/0": "hwio", "layers/conv2d/vars/1": "vector"})
        assert all(t.source == "keras:model.weights.h5" for t in report.tensors)


def test_big_endian_and_compressed_datasets_read_exactly() -> None:
    arr = _rand((4, 6))

    def big(f: Any, key: str) -> None:
        f["model_weights"].create_dataset(key, data=arr.astype(">f4"))

    def gz(f: Any, key: str) -> None:
        f["model_weights"].create_dataset(key, data=arr, compression="gzip", shuffle=True, chunks=(2, 3))

    report = read_tensors_bytes("m.h5", _keras2_full(big=big, gz=gz))
    got = {t.name: t for t in report.tensors}
    for key in ("big", "gz"):
        assert got[key].dtype == "float32" and got[key].layout == "io"
        assert got[key].data == arr.astype("<f4").tobytes()


def test_huge_declared_dataset_skipped_fast() -> None:
    def huge(f: Any, key: str) -> None:  # 10^10 float32 elements declared, nothing written
        f["model_weights"].create_dataset(key, shape=(10**5, 10**5), dtype="f4", chunks=(1000, 1000))

    data = _keras2_full(huge=huge)
    assert len(data) < 1_000_000
    start = time.perf_counter()
    report = read_tensors_bytes("m.h5", data)
    assert time.perf_counter() - start < 5.0
    why = dict(report.skipped)["huge"]
    assert "over max_tensor_bytes" in why
    assert len(report.tensors) == 5


def test_links_out_of_file_and_non_numeric_skipped_with_why(tmp_path: Path) -> None:
    def ext(f: Any, key: str) -> None:
        f["model_weights"][key] = h5py.ExternalLink("/etc/other.h5", "/w")

    def soft(f: Any, key: str) -> None:
        f["model_weights"][key] = h5py.SoftLink("/model_weights/dense/dense/bias:0")

    def strings(f: Any, key: str) -> None:
        f["model_weights"].create_dataset(key, data=np.array([b"abc", b"de"]))

    def virtual(f: Any, key: str) -> None:
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "absent.h5"), "x", shape=(4,))
        f["model_weights"].create_virtual_dataset(key, layout, fillvalue=0)

    report = read_tensors_bytes("m.h5", _keras2_full(ext=ext, soft=soft, strings=strings, virtual=virtual))
    assert report.error is None
    why = dict(report.skipped)
    assert "external link" in why["ext"]
    assert "soft link" in why["soft"]
    assert "not a numeric type" in why["strings"]
    assert "virtual dataset" in why["virtual"]
    assert len(report.tensors) == 5


def test_unboundable_filter_and_hard_link_cycle() -> None:
    def scaleoffset(f: Any, key: str) -> None:  # a built-in filter not on the bounded list
        f["model_weights"].create_dataset(key, data=np.arange(64, dtype=np.int32), scaleoffset=0)

    def cycle(f: Any, key: str) -> None:
        f["model_weights/dense"][key] = f["model_weights"]
        f["model_weights"]["again"] = f["model_weights/conv2d/conv2d/bias:0"]

    report = read_tensors_bytes("m.h5", _keras2_full(scaleoffset=scaleoffset, cycle=cycle))
    assert report.error is None
    why = dict(report.skipped)
    assert "filter 6" in why["scaleoffset"]
    assert "already read" in why["dense/cycle"]
    assert len(report.tensors) == 5  # the bias linked twice is read once


def test_limits_apply() -> None:
    data = _keras2_full()
    report = read_tensors_bytes("m.h5", data, TensorLimits(max_tensors=2))
    assert len(report.tensors) == 2 and any("max_tensors" in w for _, w in report.skipped)
    report = read_tensors_bytes("m.h5", data, TensorLimits(max_tensor_bytes=100))
    assert all(len(t.data) <= 100 for t in report.tensors)
    assert any("over max_tensor_bytes" in w for _, w in report.skipped)
    report = read_tensors_bytes("m.h5", data, TensorLimits(max_file_bytes=100))
    assert report.error is not None and "max_file_bytes" in report.error


@pytest.mark.parametrize("cut", [16, 200, 1000, 2048, 4096, -1000, -100])
def test_truncated_or_corrupt_never_crashes(cut: int) -> None:
    data = _keras2_full()
    for bad in (data[:cut], data[:cut] + bytes(64) + data[cut + 64:] if cut > 0 else data):
        report = read_tensors_bytes("m.h5", bad)
        assert report.format == "keras"
        assert report.error is not None or report.skipped or report.tensors


def test_random_garbage_after_magic_is_an_error() -> None:
    report = read_tensors_bytes("m.h5", b"\x89HDF\r\n\x1a\n" + np.random.default_rng(0).bytes(5000))
    assert report.format == "keras" and report.error is not None and report.tensors == []


def test_without_h5py_is_a_clear_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _keras2_full()
    monkeypatch.setitem(sys.modules, "h5py", None)
    report = read_tensors_bytes("m.h5", data)
    assert report.format == "keras" and report.tensors == [] and report.error is None
    assert "h5py" in report.skipped[0][1]


# -- end to end: a Keras h5 (hwio / io) copy of torch (oihw / oi) safetensors weights is a descendant ----------

TORCH_SHAPES = {"enc.conv1": (64, 3, 5, 5), "enc.conv2": (128, 64, 3, 3), "inter.dense": (256, 512),
                "dec.conv": (64, 128, 3, 3)}


def _safetensors(arrays: dict[str, np.ndarray]) -> bytes:
    header: dict[str, Any] = {}
    body = b""
    for name, arr in arrays.items():
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def test_keras_copy_of_safetensors_is_a_descendant() -> None:
    rng = np.random.default_rng(7)
    parent = {k: (rng.standard_normal(s) * 0.05 + 0.01).astype(np.float32) for k, s in TORCH_SHAPES.items()}
    other = {k: (rng.standard_normal(s) * 0.05 + 0.01).astype(np.float32) for k, s in TORCH_SHAPES.items()}

    def keras(weights: dict[str, np.ndarray]) -> bytes:
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            for i, v in enumerate(weights.values()):
                noisy = v + 0.3 * v.std() * rng.standard_normal(v.shape).astype(np.float32)
                tf = noisy.transpose(2, 3, 1, 0) if v.ndim == 4 else noisy.T
                f.create_dataset(f"model_weights/layer{i}/layer{i}/kernel:0", data=np.ascontiguousarray(tf))
        return buf.getvalue()

    ref = fingerprint(read_tensors_bytes("parent.safetensors", _safetensors(parent)))
    child_report = read_tensors_bytes("child.h5", keras(parent))
    assert {t.layout for t in child_report.tensors} == {"hwio", "io"}
    lin = compare(fingerprint(child_report), ref)
    assert lin.descendant, lin.why
    assert len(lin.matches) == 4
    unrelated = compare(fingerprint(read_tensors_bytes("other.h5", keras(other))), ref)
    assert not unrelated.descendant
