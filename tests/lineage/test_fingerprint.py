"""Fingerprint invariances and verdicts on synthetic weights (no files, no models run)."""

from __future__ import annotations

import numpy as np
import pytest

from jieyao.lineage import fingerprint as fp
from jieyao.lineage.fingerprint import (
    CODE_BITS,
    SKETCH_DIM,
    Thresholds,
    compare,
    fingerprint_arrays,
    hamming_bound,
)

SHAPES = {"enc.conv1": (64, 3, 5, 5), "enc.conv2": (128, 64, 3, 3), "inter.dense": (256, 512),
          "dec.conv": (64, 128, 3, 3), "dec.out": (3, 64, 1, 1)}


def model(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(s) * 0.05 + 0.01).astype(np.float32) for k, s in SHAPES.items()}


def child_of(parent: dict[str, np.ndarray], noise: float, seed: int = 99) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (v + noise * v.std() * rng.standard_normal(v.shape)).astype(np.float32) for k, v in parent.items()}


def cosines(a: dict[str, np.ndarray], b: dict[str, np.ndarray], la=None, lb=None) -> dict[str, float]:
    pa, pb = fingerprint_arrays(a, la), fingerprint_arrays(b, lb)
    return {m.reference: m.cosine for m in compare(pb, pa, Thresholds(min_cosine=-1.0)).matches}


def test_print_shape_and_norm() -> None:
    p = fingerprint_arrays(model(1))
    assert len(p.tensors) == 4  # dec.out (192 elements) is too small
    assert dict(p.skipped)["dec.out"].startswith("too small")
    for t in p.tensors:
        assert t.sketch.shape == (SKETCH_DIM,) and t.sketch.dtype == np.float32
        assert abs(float(np.linalg.norm(t.sketch)) - 1.0) < 1e-5
        assert len(t.code) == CODE_BITS // 8
    assert p.total_params == sum(t.params for t in p.tensors)


def test_child_matches_parent() -> None:
    parent = model(1)
    lin = compare(fingerprint_arrays(child_of(parent, 0.5)), fingerprint_arrays(parent))
    assert lin.descendant
    assert len(lin.matches) == 4 and lin.coverage == pytest.approx(1.0)
    assert all(m.cosine > 0.8 for m in lin.matches)
    assert all(m.child == m.reference for m in lin.matches)
    assert "4 of 4 tensors match" in lin.why and "100 %" in lin.why


def test_independent_models_near_orthogonal() -> None:
    values = []
    for seed in range(12):
        values += list(cosines(model(100 + seed), model(200 + seed)).values())
    values_arr = np.abs(np.array(values))
    assert len(values) == 48
    assert values_arr.mean() < 0.05 and values_arr.max() < 0.15
    for seed in range(6):
        assert not compare(fingerprint_arrays(model(300 + seed)), fingerprint_arrays(model(400 + seed))).descendant


def test_shared_mean_removed_by_centring() -> None:
    # Unrelated tensors that share a large per-output-unit offset must not look alike.
    rng = np.random.default_rng(5)
    offset = rng.standard_normal((128, 1)) * 3
    a = {"w": (rng.standard_normal((128, 256)) + offset).astype(np.float32)}
    b = {"w": (rng.standard_normal((128, 256)) + offset).astype(np.float32)}
    assert abs(cosines(a, b, {"w": "oi"}, {"w": "oi"})["w"]) < 0.1


def test_invariances() -> None:
    parent = model(1)
    child = child_of(parent, 0.7)
    base = cosines(parent, child)
    layouts = {"enc.conv1": "oihw", "enc.conv2": "oihw", "dec.conv": "oihw", "inter.dense": "oi"}
    hwio = {k: (v.transpose(2, 3, 1, 0) if v.ndim == 4 else v.T) for k, v in child.items()}
    hwio_layouts = {k: ("hwio" if v.ndim == 4 else "io") for k, v in child.items()}
    renamed = {f"t{i}": child[k] for i, k in enumerate(reversed(list(child)))}
    f16 = {k: v.astype(np.float16) for k, v in child.items()}
    transposed_unknown = {k: (v.T if v.ndim == 2 else v) for k, v in child.items()}
    variants = {
        "hwio": cosines(parent, hwio, layouts, hwio_layouts),
        "fp16": cosines(parent, f16),
        "transposed-2d-unknown": cosines(parent, transposed_unknown),
    }
    for label, got in variants.items():
        assert set(got) == set(base), label
        for k in base:
            assert got[k] == pytest.approx(base[k], abs=0.01), (label, k)
    got = cosines(parent, renamed)
    assert sorted(got.values()) == pytest.approx(sorted(base.values()), abs=0.01)


def test_int8_and_bfloat16_from_raw_bytes() -> None:
    from jieyao.lineage.tensors import TensorData, TensorReport  # helper A's contract

    parent = model(1)
    child = child_of(parent, 0.7)
    ref = fingerprint_arrays(parent)
    tensors = []
    for k, v in child.items():
        layout = "oihw" if v.ndim == 4 else "oi"
        scale = float(np.abs(v).max()) / 127
        q = np.clip(np.round(v / scale), -127, 127).astype(np.int8)
        tensors.append(TensorData(k, "int8", v.shape, layout, q.tobytes(), "npy", scale=scale, zero_point=0.0))
        bf = (v.view(np.uint32) >> 16).astype("<u2")
        tensors.append(TensorData(k + ".bf16", "bfloat16", v.shape, layout, bf.tobytes(), "npy"))
    print_ = fp.fingerprint(TensorReport(format="npy", tensors=tensors, skipped=[]))
    base = cosines(parent, child)
    by_name = {t.name: t for t in print_.tensors}
    for r in ref.tensors:
        for suffix in ("", ".bf16"):
            got = float(np.dot(by_name[r.name + suffix].sketch, r.sketch))
            assert got == pytest.approx(base[r.name], abs=0.01), (r.name, suffix)


def test_bad_tensors_skipped_and_reported() -> None:
    from jieyao.lineage.tensors import TensorData, TensorReport

    good = np.random.default_rng(1).standard_normal((32, 32)).astype(np.float32)
    nan = good.copy()
    nan[3, 4] = np.nan
    inf = good.copy()
    inf[0, 0] = np.inf
    tensors = [
        TensorData("nan", "float32", (32, 32), "oi", nan.tobytes(), "npy"),
        TensorData("inf", "float32", (32, 32), "oi", inf.tobytes(), "npy"),
        TensorData("int-noscale", "int8", (32, 32), "oi", bytes(1024), "npy"),
        TensorData("int64", "int64", (32, 32), "oi", bytes(8192), "npy", scale=1.0),
        TensorData("short", "float32", (32, 32), "oi", good.tobytes()[:100], "npy"),
        TensorData("const", "float32", (32, 32), "oi", np.full((32, 32), 0.5, np.float32).tobytes(), "npy"),
        TensorData("bias", "float32", (1024,), "vector", good.tobytes(), "npy"),
    ]
    p = fp.fingerprint(TensorReport(format="npy", tensors=tensors, skipped=[("huge", "over the size limit")]))
    why = dict(p.skipped)
    assert p.tensors == () and p.total_params == 0
    assert "NaN" in why["nan"] and "NaN" in why["inf"]
    assert "constant" in why["int-noscale"] and "not a float" in why["int64"]  # read, then all zero
    assert "bytes" in why["short"] and "constant" in why["const"] and "1-D" in why["bias"]
    assert why["huge"] == "over the size limit"


def test_no_float_tensors_nothing_to_compare() -> None:
    empty = fingerprint_arrays({"ids": np.arange(4096, dtype=np.int64).reshape(64, 64)})
    assert empty.tensors == () and "not a float" in dict(empty.skipped)["ids"]
    lin = compare(empty, fingerprint_arrays(model(1)))
    assert not lin.descendant and lin.why.startswith("nothing to compare")
    lin = compare(fingerprint_arrays(model(1)), empty)
    assert not lin.descendant and "reference" in lin.why


def test_different_shapes_no_match() -> None:
    rng = np.random.default_rng(3)
    other = {"a": rng.standard_normal((100, 200)).astype(np.float32),
             "b": rng.standard_normal((32, 16, 3, 3)).astype(np.float32)}
    lin = compare(fingerprint_arrays(other), fingerprint_arrays(model(1)))
    assert not lin.descendant and lin.matches == () and lin.coverage == 0.0


def test_single_copied_tensor_is_not_descendant() -> None:
    parent = model(1)
    child = model(2)
    child["inter.dense"] = parent["inter.dense"].copy()  # a shared embedding-like tensor, copied verbatim
    lin = compare(fingerprint_arrays(child), fingerprint_arrays(parent))
    assert len(lin.matches) == 1 and lin.matches[0].cosine > 0.99
    assert lin.coverage > 0.25  # it is a big share of the parameters ...
    assert not lin.descendant  # ... but one tensor is not lineage
    assert "fewer than 3" in lin.why


def test_one_to_one_matching() -> None:
    # Two child tensors of the same shape cannot both claim one reference tensor.
    rng = np.random.default_rng(8)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    lin = compare(fingerprint_arrays({"a": w, "b": w.copy()}, {"a": "oi", "b": "oi"}),
                  fingerprint_arrays({"r": w}, {"r": "oi"}), Thresholds(min_tensors=1))
    assert len(lin.matches) == 1 and lin.descendant


def test_hamming_bound_recall() -> None:
    bound = hamming_bound(0.35)
    assert 115 <= bound < 128
    # Empirically: pairs at cosine ~0.35 pass the bound (recall), unrelated pairs mostly do not.
    rng = np.random.default_rng(0)
    passed = 0
    for _ in range(200):
        a = rng.standard_normal(SKETCH_DIM)
        n = rng.standard_normal(SKETCH_DIM)
        n -= a * (a @ n) / (a @ a)
        b = 0.35 * a / np.linalg.norm(a) + np.sqrt(1 - 0.35**2) * n / np.linalg.norm(n)
        ha = np.frombuffer(fp.simhash(a / np.linalg.norm(a)), np.uint8)
        hb = np.frombuffer(fp.simhash(b), np.uint8)
        passed += int(np.unpackbits(ha ^ hb).sum()) <= bound
    assert passed >= 195


def test_table_cache_bounded_and_chunked_path_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((300, 300)).astype(np.float32)
    cached = fingerprint_arrays({"w": w}, {"w": "oi"}).tensors[0].sketch
    monkeypatch.setattr(fp, "TABLE_CACHE_BYTES", 1000)
    monkeypatch.setattr(fp, "CHUNK", 7_777)
    fp.clear_table_cache()
    chunked = fingerprint_arrays({"w": w}, {"w": "oi"}).tensors[0].sketch
    assert 90_000 not in fp._tables
    np.testing.assert_allclose(cached, chunked, atol=1e-5)
    fp.clear_table_cache()


def test_int8_without_scale_is_fingerprinted_as_raw_integers() -> None:
    from jieyao.lineage.tensors import TensorData, TensorReport

    v = np.random.default_rng(4).standard_normal((64, 48)).astype(np.float32)
    scale = float(np.abs(v).max()) / 127
    q = np.clip(np.round(v / scale), -127, 127).astype(np.int8)
    u = (q.astype(np.int16) + 128).astype(np.uint8)  # the same values with a zero point of 128, not declared
    report = TensorReport(format="npy", tensors=[
        TensorData("q", "int8", v.shape, "oi", q.tobytes(), "npy"),
        TensorData("u", "uint8", v.shape, "oi", u.tobytes(), "npy"),
        TensorData("s", "int8", v.shape, "oi", q.tobytes(), "npy", scale=scale, zero_point=0.0)], skipped=[])
    p = fp.fingerprint(report)
    assert [t.name for t in p.tensors] == ["q", "u", "s"] and p.skipped == ()
    ref = fp.fingerprint_arrays({"v": v}, {"v": "oi"}).tensors[0]
    q_print, u_print, s_print = p.tensors
    assert float(np.dot(q_print.sketch, s_print.sketch)) > 0.9999  # the scale does not change the print
    assert float(np.dot(q_print.sketch, u_print.sketch)) > 0.9999  # nor does the zero point
    assert float(np.dot(q_print.sketch, ref.sketch)) > 0.99  # and it matches the float original
