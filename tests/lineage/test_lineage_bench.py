"""The calibration fixtures of bench/lineage_models.py (tiny numpy autoencoders and their writers) and the
statistics of bench/lineage_calibration.py: each writer round-trips real weights through jieyao's static
readers, training is deterministic and its gradients are right, the permutation attack preserves the function.
Nothing is unpickled: pickles are inspected with pickletools.genops (opcodes only)."""

from __future__ import annotations

import json
import pickletools
import struct
import sys
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import lineage_models as lm  # noqa: E402
from jieyao.lineage.fingerprint import Thresholds, compare, fingerprint, fingerprint_arrays  # noqa: E402
from jieyao.lineage.tensors import read_tensors_bytes  # noqa: E402


@pytest.fixture(scope="module")
def trained() -> lm.Trainer:
    return lm.pretrain(3, steps=40)


def _numeric_grad(params, x, key, idx, eps=1e-6):
    params[key][idx] += eps
    up = lm.loss(params, x)
    params[key][idx] -= 2 * eps
    down = lm.loss(params, x)
    params[key][idx] += eps
    return (up - down) / (2 * eps)


def test_backprop_matches_finite_differences() -> None:
    params = lm.init_params(5)
    x = lm.BlobData(lm.DataSpec(0)).batch(4)
    keep: list = []
    y = lm._forward(params, x, "src", keep)
    grads: dict = {}
    lm._backward(params, keep, 2.0 * (y - x) / x.size, grads)
    for key, idx in [("encoder/down1/downs_0/conv1/W", (3, 7)), ("encoder/down1/downs_1/conv1/W", (100, 5)),
                     ("inter/dense1/W", (10, 20)), ("inter/dense2/b", (17,)),
                     ("decoder_src/upscale0/conv1/W", (4, 200)), ("decoder_src/out_conv/W", (50, 11))]:
        assert grads[key][idx] == pytest.approx(_numeric_grad(params, x, key, idx), rel=1e-4, abs=1e-9), key


def test_training_is_deterministic_and_learns(trained: lm.Trainer) -> None:
    again = lm.pretrain(3, steps=40)
    for k, v in trained.params.items():
        assert np.array_equal(v, again.params[k]), k
    x = lm.BlobData(lm.DataSpec(0), stream=77).batch(64)
    assert lm.loss(trained.params, x) < 0.5 * lm.loss(lm.init_params(3), x)
    other = lm.pretrain(4, steps=40)
    assert not np.array_equal(other.params["inter/dense1/W"], trained.params["inter/dense1/W"])


def test_fine_tunes_are_nested_snapshots(trained: lm.Trainer) -> None:
    fts = lm.fine_tunes(trained, fractions=(0.1, 0.3), lr_mults=(1.0, 10.0), pretrain_steps=40)
    assert set(fts) == {(0.1, 1.0), (0.3, 1.0), (0.1, 10.0), (0.3, 10.0)}
    base = trained.params["inter/dense1/W"]
    moved = {k: float(np.linalg.norm(v["inter/dense1/W"] - base)) for k, v in fts.items()}
    assert 0 < moved[(0.1, 1.0)] < moved[(0.3, 1.0)]
    assert moved[(0.1, 1.0)] < moved[(0.1, 10.0)]
    assert np.array_equal(trained.params["inter/dense1/W"], base)  # the base itself is untouched


def test_dfl_layouts_and_shapes(trained: lm.Trainer) -> None:
    w = lm.dfl_weights(trained.params)
    assert w["encoder/down1/downs_0/conv1/weight:0"].shape == (2, 2, 3, 96)        # HWIO
    assert w["decoder_src/upscale0/conv1/weight:0"].shape == (2, 2, 96, 64)        # (k, k, out, in)
    assert w["inter/dense1/weight:0"].shape == (256, 64)                           # (in, out)
    weights = [a for k, a in w.items() if k.endswith("weight:0")]
    assert len(weights) == 8 and all(1_000 <= a.size <= 65_536 for a in weights)
    torch = lm.to_torch_layout(w)
    assert torch["encoder/down1/downs_0/conv1/weight:0"].shape == (96, 3, 2, 2)
    assert torch["inter/dense1/weight:0"].shape == (64, 256)


def test_pickle_writer_holds_the_real_bytes(trained: lm.Trainer) -> None:
    w = lm.dfl_weights(trained.params, dtype="float16")
    blob = lm.dfl_pickle_bytes(w)
    ops = list(pickletools.genops(blob))
    payloads = [arg for op, arg, _ in ops if op.name == "BINBYTES"]
    assert payloads == [a.tobytes() for a in w.values()]
    globals_ = {arg for op, arg, _ in ops if op.name == "SHORT_BINUNICODE"} & {"_reconstruct", "ndarray", "dtype"}
    assert globals_ == {"_reconstruct", "ndarray", "dtype"}
    report = read_tensors_bytes("model_SAEHD.npy", blob)
    assert report.error is None and report.format is not None
    got = {t.name: t for t in report.tensors}
    assert set(got) == set(w)
    t = got["encoder/down1/downs_1/conv1/weight:0"]
    assert (t.dtype, t.shape, t.layout) == ("float16", (2, 2, 96, 64), "hwio")
    assert t.data == w["encoder/down1/downs_1/conv1/weight:0"].tobytes()


def test_safetensors_writer_round_trips(trained: lm.Trainer) -> None:
    w = lm.rename_shuffle(lm.to_torch_layout(lm.dfl_weights(trained.params)), seed=1)
    blob = lm.safetensors_bytes(w)
    (n,) = struct.unpack_from("<Q", blob)
    header = json.loads(blob[8:8 + n])
    assert (8 + n) % 8 == 0 and set(header) == set(w)
    report = read_tensors_bytes("model.safetensors", blob)
    assert report.error is None
    assert {t.name: t.data for t in report.tensors} == {k: v.tobytes() for k, v in w.items()}
    assert not any(k.startswith(("encoder", "inter", "decoder")) for k in w)  # renamed


def test_onnx_writer_round_trips_fp16_and_int8(trained: lm.Trainer) -> None:
    torch = lm.to_torch_layout(lm.dfl_weights(trained.params))
    half = {k: v.astype(np.float16) for k, v in torch.items()}
    report = read_tensors_bytes("model.dfm", lm.onnx_bytes(half))
    assert report.error is None and report.format is not None
    got = {t.name: t for t in report.tensors}
    assert got["inter/dense1/weight:0"].data == half["inter/dense1/weight:0"].tobytes()
    report8 = read_tensors_bytes("model.onnx", lm.onnx_bytes(torch, int8=True, gemm=False))
    q = {t.name: t for t in report8.tensors}["inter/dense1/weight:0_quantized"]
    assert q.dtype == "int8" and q.scale == pytest.approx(float(np.abs(torch["inter/dense1/weight:0"]).max()) / 127,
                                                          rel=1e-6)


def test_every_variant_is_its_own_descendant_and_unrelated_models_are_not(trained: lm.Trainer) -> None:
    ref = fingerprint_arrays(lm.dfl_weights(trained.params), lm.dfl_layouts())
    other = fingerprint_arrays(lm.dfl_weights(lm.pretrain(9, steps=40).params), lm.dfl_layouts())
    for name, (fname, data) in lm.variants(lm.dfl_weights(trained.params), seed=2).items():
        child = fingerprint(read_tensors_bytes(fname, data))
        if name == "safetensors int8":  # int8 with no scale in the file: fingerprinted as the raw integers
            # (the variant keeps DFL's HWIO layout, read as OIHW: compared with the float file laid out alike)
            floats = fingerprint(read_tensors_bytes(fname, lm.safetensors_bytes(lm.dfl_weights(trained.params))))
            lin = compare(child, floats, Thresholds())
            assert len(child.tensors) == len(floats.tensors) == len(ref.tensors), child.skipped
            assert lin.descendant and lin.coverage == pytest.approx(1.0) and min(m.cosine for m in lin.matches) > 0.99
            continue
        lin = compare(child, ref, Thresholds())
        assert lin.descendant and lin.coverage == pytest.approx(1.0), name
        assert min(m.cosine for m in lin.matches) > 0.99, name
        assert not compare(child, other, Thresholds()).descendant, name


def test_hidden_permutation_preserves_the_function_and_hides_lineage(trained: lm.Trainer) -> None:
    perm = lm.permute_hidden(trained.params, seed=3)
    x = lm.BlobData(lm.DataSpec(0)).batch(16)
    for dec in ("src", "dst"):
        assert np.allclose(lm.forward(perm, x, dec), lm.forward(trained.params, x, dec), atol=1e-12)
    assert not np.array_equal(perm["inter/dense1/W"], trained.params["inter/dense1/W"])
    ref = fingerprint_arrays(lm.dfl_weights(trained.params), lm.dfl_layouts())
    lin = compare(fingerprint_arrays(lm.dfl_weights(perm), lm.dfl_layouts()), ref, Thresholds())
    assert not lin.descendant and not lin.matches


def test_quantise_int8_is_symmetric_and_bounded() -> None:
    a = np.array([[-1.0, 0.5], [0.25, 2.0]])
    q, scale = lm.quantise_int8(a)
    assert q.dtype == np.int8 and scale == pytest.approx(2.0 / 127) and q.max() == 127
    q0, s0 = lm.quantise_int8(np.zeros((2, 2)))
    assert s0 == 1.0 and not q0.any()


def test_writers_reject_unsupported_dtypes() -> None:
    with pytest.raises(KeyError):
        lm.dfl_pickle_bytes({"w": np.zeros(3, dtype=np.complex64)})
    with pytest.raises(ValueError, match="not supported"):
        lm.onnx_bytes({"w": np.zeros((4, 4), dtype=np.float64)})


def test_upper_bound_statistics() -> None:
    import lineage_calibration as cal

    assert cal.upper_95(0, 1128) == pytest.approx(1 - 0.05 ** (1 / 1128), rel=1e-6)
    assert cal.upper_95(0, 1128) == pytest.approx(3 / 1128, rel=0.01)
    # k = 1 of 100: the exact Clopper-Pearson one-sided bound is 0.0466
    assert cal.upper_95(1, 100) == pytest.approx(0.0466, abs=5e-4)
    assert cal.upper_95(5, 5) == 1.0
    lo, hi = cal.wilson(15, 15)
    assert hi == 1.0 and 0.75 < lo < 0.85
