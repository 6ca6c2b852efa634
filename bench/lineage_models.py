"""Tiny DeepFaceLab-shaped denoising autoencoders, trained in plain numpy on CPU, and the writers that put their
weights into the model formats jieyao reads. Shared by `lineage_calibration.py` and `lineage_search.py`.

Nothing here is, contains or reproduces a real face-swap model or a real face. The training data are random
smooth 8x8 BGR images made of a few Gaussian blobs ("face-like" only in that they are smooth blobs of skin-ish
colours); each data set is a seeded distribution of blob counts, widths and palettes. The network imitates the
*layout* of an SAEHD DF model at a tiny scale: a shared encoder (two 2x2 stride-2 convolutions), an `inter`
block (two dense layers) and two decoders (`decoder_src`, `decoder_dst`, each a 2x2 stride-2 transposed
convolution and a 2x2 output transposed convolution). Because every convolution has stride = kernel, im2col is
a pure reshape and the whole network trains as matrix products (Adam, MSE, denoising input noise).

Weights are stored with DFL's names and layouts: Conv2D kernels HWIO (k, k, in, out), Conv2DTranspose kernels
(k, k, out, in), Dense kernels (in, out). The writers emit real payload bytes:

- `dfl_pickle_bytes`: the protocol-4 `{name: ndarray}` pickle numpy 1.x writes (what DFL's `*.npy` weight files
  are), opcode by opcode. (`jieyao.imitations.numpy1_array_pickle` writes random payloads, so it is not used.)
- `safetensors_bytes`: the safetensors container (u64 header length, JSON header, raw data).
- `onnx_bytes`: an ONNX ModelProto via `jieyao.imitations.onnx` with OIHW `Conv`/`ConvTranspose`, `Gemm`
  (transB=1, (out, in)) or `MatMul` ((in, out)) initializers, fp32/fp16, or int8 with `DequantizeLinear`.

Deterministic from seeds; nothing is downloaded, loaded or executed.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------------
# synthetic data

IMG = 8  # 8x8x3 images
CH = 3


@dataclass(frozen=True)
class DataSpec:
    """A distribution of blob images: seed of the palette and of the sampling, blob count and width range."""

    seed: int
    blobs: tuple[int, int] = (2, 4)
    width: tuple[float, float] = (1.0, 2.5)


def _palette(seed: int) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    base = np.array([0.45, 0.55, 0.75])  # BGR, skin-ish
    return np.clip(base + rng.normal(0, 0.15, size=(6, 3)), 0, 1)


class BlobData:
    """An endless stream of batches from one DataSpec (its own RNG, so two streams never share batches)."""

    def __init__(self, spec: DataSpec, stream: int = 0) -> None:
        self.spec = spec
        self.palette = _palette(spec.seed)
        self.rng = np.random.default_rng([spec.seed, stream, 7])
        yy, xx = np.mgrid[0:IMG, 0:IMG]
        self.grid = np.stack([yy, xx], -1).astype(np.float64)  # (8, 8, 2)

    def batch(self, n: int) -> np.ndarray:
        rng, lo, hi = self.rng, self.spec.blobs[0], self.spec.blobs[1]
        k = hi  # fixed slots, unused ones get weight 0
        centres = rng.uniform(0, IMG - 1, size=(n, k, 2))
        widths = rng.uniform(*self.spec.width, size=(n, k))
        used = (np.arange(k)[None, :] < rng.integers(lo, hi + 1, size=(n, 1))).astype(np.float64)
        colours = self.palette[rng.integers(0, len(self.palette), size=(n, k))]  # (n, k, 3)
        d2 = ((self.grid[None, None] - centres[:, :, None, None, :]) ** 2).sum(-1)  # (n, k, 8, 8)
        g = np.exp(-d2 / (2 * widths[:, :, None, None] ** 2)) * used[:, :, None, None]
        img = np.einsum("nkyx,nkc->nyxc", g, colours)
        return np.clip(img, 0, 1.5).reshape(n, -1)


# ---------------------------------------------------------------------------------------------------
# the network: every layer is a matrix product between reshapes

# (name, kind, matrix shape (fan_in, fan_out)); kinds: conv (HWIO k=2 s=2), deconv ((k,k,out,in) k=2 s=2), dense
LAYERS: tuple[tuple[str, str, tuple[int, int]], ...] = (
    ("encoder/down1/downs_0/conv1", "conv", (2 * 2 * 3, 96)),     # 8x8x3 -> 4x4x96      kernel (2,2,3,96)
    ("encoder/down1/downs_1/conv1", "conv", (2 * 2 * 96, 64)),    # 4x4x96 -> 2x2x64     kernel (2,2,96,64)
    ("inter/dense1", "dense", (256, 64)),                         # 256 -> 64
    ("inter/dense2", "dense", (64, 256)),                         # 64 -> 256 (2x2x64)
    ("decoder_src/upscale0/conv1", "deconv", (64, 2 * 2 * 96)),   # 2x2x64 -> 4x4x96     kernel (2,2,96,64)
    ("decoder_src/out_conv", "deconv", (96, 2 * 2 * 3)),          # 4x4x96 -> 8x8x3      kernel (2,2,3,96)
    ("decoder_dst/upscale0/conv1", "deconv", (64, 2 * 2 * 96)),
    ("decoder_dst/out_conv", "deconv", (96, 2 * 2 * 3)),
)
ENCODER = LAYERS[:4]
DECODERS = {"src": LAYERS[4:6], "dst": LAYERS[6:8]}
_SPATIAL_IN = {"encoder/down1/downs_0/conv1": 8, "encoder/down1/downs_1/conv1": 4}
_SPATIAL_DE = {"upscale0/conv1": 2, "out_conv": 4}


def _lrelu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.1 * x)


def _patches(x: np.ndarray, size: int, c: int) -> np.ndarray:
    """(B, size*size*c) NHWC -> (B*(size/2)^2, 4c): im2col for a 2x2 stride-2 convolution."""
    b, h = x.shape[0], size // 2
    return x.reshape(b, h, 2, h, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b * h * h, 4 * c)


def _unpatches(g: np.ndarray, b: int, size: int, c: int) -> np.ndarray:
    h = size // 2
    return g.reshape(b, h, h, 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, size * size * c)


def init_params(seed: int) -> dict[str, np.ndarray]:
    """Glorot-uniform matrices and zero biases, from one seed."""
    rng = np.random.default_rng([seed, 1234])
    params: dict[str, np.ndarray] = {}
    for name, _kind, (fi, fo) in LAYERS:
        lim = np.sqrt(6.0 / (fi + fo))
        params[name + "/W"] = rng.uniform(-lim, lim, size=(fi, fo))
        params[name + "/b"] = np.zeros(fo)
    return params


def _forward(params: Mapping[str, np.ndarray], x: np.ndarray, decoder: str,
             keep: list[tuple[str, str, np.ndarray, np.ndarray, tuple[int, ...]]] | None) -> np.ndarray:
    """Forward pass; `keep` collects (layer, kind, input matrix, pre-activation, reshape info) for backward."""
    b = x.shape[0]
    h = x
    layers = [*ENCODER, *DECODERS[decoder]]
    for idx, (name, kind, (_fi, fo)) in enumerate(layers):
        last = idx == len(layers) - 1
        w, bias = params[name + "/W"], params[name + "/b"]
        if kind == "conv":
            size = _SPATIAL_IN[name]
            m = _patches(h, size, _fi // 4)
            z = m @ w + bias
            out = z.reshape(b, -1)
            info: tuple[int, ...] = (size, _fi // 4)
        elif kind == "dense":
            m = h
            z = m @ w + bias
            out = z
            info = ()
        else:  # deconv: (B*h*h, in) @ (in, 4*out) -> unpatch to (2h x 2h x out)
            size = _SPATIAL_DE[name.split("/", 1)[1]]
            cin = _fi
            m = h.reshape(b * size * size, cin)
            z = m @ w + bias
            out = _unpatches(z, b, 2 * size, fo // 4)
            info = (size, fo // 4)
        a = out if last else _lrelu(out)
        if keep is not None:
            keep.append((name, kind, m, out, info))
        h = a
    return h


def forward(params: Mapping[str, np.ndarray], x: np.ndarray, decoder: str = "src") -> np.ndarray:
    """The reconstruction of a batch (B, 192) through the encoder, inter and one decoder."""
    return _forward(params, x, decoder, None)


def loss(params: Mapping[str, np.ndarray], x: np.ndarray, decoder: str = "src") -> float:
    y = _forward(params, x, decoder, None)
    return float(np.mean((y - x) ** 2))


def _backward(params: Mapping[str, np.ndarray], keep: list, grad_out: np.ndarray,
              grads: dict[str, np.ndarray]) -> None:
    b = grad_out.shape[0]
    g = grad_out
    for idx in range(len(keep) - 1, -1, -1):
        name, kind, m, out, info = keep[idx]
        if idx != len(keep) - 1:
            g = g * np.where(out > 0, 1.0, 0.1)
        if kind == "conv":
            gz = g.reshape(m.shape[0], -1)
        elif kind == "dense":
            gz = g
        else:
            size, cout = info
            gz = g.reshape(b, size, 2, size, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(b * size * size, 4 * cout)
        grads[name + "/W"] = grads.get(name + "/W", 0) + m.T @ gz
        grads[name + "/b"] = grads.get(name + "/b", 0) + gz.sum(0)
        if idx == 0:
            break
        gm = gz @ params[name + "/W"].T
        if kind == "conv":
            size, cin = info
            g = _unpatches(gm, b, size, cin)
        elif kind == "dense":
            g = gm
        else:
            g = gm.reshape(b, -1)


@dataclass
class Trainer:
    """Adam state + params; `train(steps, data_src, data_dst, lr)` continues training in place."""

    params: dict[str, np.ndarray]
    lr: float = 2e-3
    batch: int = 16
    noise: float = 0.1
    steps_done: int = 0

    def __post_init__(self) -> None:
        self.m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.t = 0
        self.noise_rng = np.random.default_rng([len(self.params), 99])

    def step(self, xs: np.ndarray, xd: np.ndarray, lr: float) -> None:
        grads: dict[str, np.ndarray] = {}
        for x, dec in ((xs, "src"), (xd, "dst")):
            keep: list = []
            noisy = x + self.noise_rng.normal(0, self.noise, size=x.shape)
            y = _forward(self.params, noisy, dec, keep)
            _backward(self.params, keep, 2.0 * (y - x) / x.size, grads)
        self.t += 1
        b1, b2, eps = 0.9, 0.999, 1e-8
        for k, gk in grads.items():
            self.m[k] = b1 * self.m[k] + (1 - b1) * gk
            self.v[k] = b2 * self.v[k] + (1 - b2) * gk * gk
            mh = self.m[k] / (1 - b1 ** self.t)
            vh = self.v[k] / (1 - b2 ** self.t)
            self.params[k] -= lr * mh / (np.sqrt(vh) + eps)
        self.steps_done += 1

    def train(self, steps: int, src: BlobData, dst: BlobData, lr: float | None = None) -> None:
        for _ in range(steps):
            self.step(src.batch(self.batch), dst.batch(self.batch), self.lr if lr is None else lr)

    def snapshot(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}


PRETRAIN_STEPS = 300
BASE_LR = 2e-3


def pretrain(seed: int, data_seed: int | None = None, steps: int = PRETRAIN_STEPS, *,
             init_seed: int | None = None) -> Trainer:
    """A base model: init from `init_seed` (default `seed`), trained on data set `data_seed` (default 0: every
    base shares the same data distribution, the hardest negatives), its batches drawn from stream `seed`."""
    data_seed = 0 if data_seed is None else data_seed
    tr = Trainer(init_params(seed if init_seed is None else init_seed), lr=BASE_LR)
    tr.train(steps, BlobData(DataSpec(data_seed), stream=seed), BlobData(DataSpec(data_seed + 1), stream=seed))
    return tr


def new_data(seed: int = 500) -> DataSpec:
    """The fine-tuning distribution: another palette, fewer and sharper blobs."""
    return DataSpec(seed, blobs=(1, 3), width=(0.8, 2.0))


_EVAL: dict[str, np.ndarray] = {}


def quality(params: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """(MSE on the pretraining distribution, MSE on the fine-tuning distribution), src decoder, fixed batches."""
    if not _EVAL:
        _EVAL["pre"] = BlobData(DataSpec(0), stream=31337).batch(256)
        _EVAL["new"] = BlobData(new_data(), stream=31337).batch(256)
    return loss(params, _EVAL["pre"]), loss(params, _EVAL["new"])


def fine_tunes(base: Trainer, *, fractions: Sequence[float] = (0.1, 0.3, 1.0, 3.0),
               lr_mults: Sequence[float] = (1.0, 3.0, 10.0), data_seed: int = 500,
               pretrain_steps: int = PRETRAIN_STEPS) -> dict[tuple[float, float], dict[str, np.ndarray]]:
    """Continue training copies of `base` on a *different* data set, snapshotting at each fraction of the
    pretraining steps (nested: the 0.3x child is the 0.1x child trained further), for each lr multiple."""
    out: dict[tuple[float, float], dict[str, np.ndarray]] = {}
    for lm in lr_mults:
        tr = Trainer(base.snapshot(), lr=BASE_LR)
        tr.m, tr.v, tr.t = ({k: v.copy() for k, v in base.m.items()}, {k: v.copy() for k, v in base.v.items()},
                            base.t)  # a resumed run keeps its optimiser state, as DFL's *_opt.npy does
        src = BlobData(new_data(data_seed), stream=base.steps_done)
        dst = BlobData(new_data(data_seed + 1), stream=base.steps_done)
        done = 0
        for f in sorted(fractions):
            target = round(f * pretrain_steps)
            tr.train(target - done, src, dst, BASE_LR * lm)
            done = target
            out[(f, lm)] = tr.snapshot()
    return out


# ---------------------------------------------------------------------------------------------------
# DFL storage view and transforms

def dfl_weights(params: Mapping[str, np.ndarray], dtype: str = "float32") -> dict[str, np.ndarray]:
    """{DFL variable name: array in DFL layout} (`.../weight:0` kernels, `.../bias:0`)."""
    out: dict[str, np.ndarray] = {}
    for name, kind, (fi, fo) in LAYERS:
        w = params[name + "/W"]
        if kind == "conv":
            k = w.reshape(2, 2, fi // 4, fo)                               # HWIO
        elif kind == "dense":
            k = w                                                          # (in, out)
        else:
            k = w.reshape(fi, 2, 2, fo // 4).transpose(1, 2, 3, 0)         # (k, k, out, in)
        out[name + "/weight:0"] = np.ascontiguousarray(k, dtype=dtype)
        bias = params[name + "/b"]
        out[name + "/bias:0"] = np.ascontiguousarray(bias.reshape(-1) if kind != "deconv" else
                                                     bias.reshape(4, fo // 4).mean(0), dtype=dtype)
    return out


LAYOUT_DFL = {"conv": "hwio", "dense": "io", "deconv": "hwio"}


def dfl_layouts() -> dict[str, str]:
    """What `fingerprint_arrays(layouts=...)` should be told for `dfl_weights` arrays."""
    out = {}
    for name, kind, _ in LAYERS:
        out[name + "/weight:0"] = LAYOUT_DFL[kind]
        out[name + "/bias:0"] = "vector"
    return out


def to_torch_layout(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """HWIO -> OIHW (and (k,k,out,in) -> (in,out,k,k) as torch ConvTranspose2d stores it), (in,out) -> (out,in)."""
    out = {}
    for k, a in arrays.items():
        if a.ndim == 4:
            out[k] = np.ascontiguousarray(a.transpose(3, 2, 0, 1))
        elif a.ndim == 2:
            out[k] = np.ascontiguousarray(a.T)
        else:
            out[k] = a
    return out


def quantise_int8(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Symmetric per-tensor int8: q = round(a / scale), scale = max|a| / 127."""
    scale = float(np.max(np.abs(a))) / 127.0 or 1.0
    return np.clip(np.round(a / scale), -127, 127).astype(np.int8), scale


def rename_shuffle(arrays: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """Random opaque names, random order (values untouched)."""
    rng = np.random.default_rng([seed, 4242])
    keys = list(arrays)
    order = rng.permutation(len(keys))
    return {f"t{rng.integers(1 << 40):010x}": arrays[keys[i]] for i in order}


def permute_hidden(params: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A function-preserving relabelling of every hidden unit: the 96 channels of the first conv, the 64
    bottleneck units of inter/dense1, the 64 channels inter/dense2 feeds the decoders and each decoder's 96
    hidden channels. LeakyReLU is elementwise, so the network computes exactly the same function."""
    rng = np.random.default_rng([seed, 777])
    p = {k: v.copy() for k, v in params.items()}
    perm = rng.permutation(64)
    p["inter/dense1/W"] = p["inter/dense1/W"][:, perm]
    p["inter/dense1/b"] = p["inter/dense1/b"][perm]
    p["inter/dense2/W"] = p["inter/dense2/W"][perm, :]
    perm2 = rng.permutation(96)  # conv1 output channels; conv2's patch rows are (kh, kw, c)
    p["encoder/down1/downs_0/conv1/W"] = p["encoder/down1/downs_0/conv1/W"][:, perm2]
    p["encoder/down1/downs_0/conv1/b"] = p["encoder/down1/downs_0/conv1/b"][perm2]
    w2 = p["encoder/down1/downs_1/conv1/W"].reshape(4, 96, 64)[:, perm2, :]
    p["encoder/down1/downs_1/conv1/W"] = w2.reshape(384, 64)
    # dense2's output is reshaped to (2,2,64): permute decoder input channels too
    perm3 = rng.permutation(64)
    p["inter/dense2/W"] = p["inter/dense2/W"].reshape(64, 4, 64)[:, :, perm3].reshape(64, 256)
    p["inter/dense2/b"] = p["inter/dense2/b"].reshape(4, 64)[:, perm3].reshape(256)
    for dec in ("decoder_src", "decoder_dst"):
        p[f"{dec}/upscale0/conv1/W"] = p[f"{dec}/upscale0/conv1/W"][perm3, :]
        perm4 = rng.permutation(96)  # the decoder's hidden channels: columns (kh, kw, c) of upscale0, rows of out
        p[f"{dec}/upscale0/conv1/W"] = p[f"{dec}/upscale0/conv1/W"].reshape(64, 4, 96)[:, :, perm4].reshape(64, 384)
        p[f"{dec}/upscale0/conv1/b"] = p[f"{dec}/upscale0/conv1/b"].reshape(4, 96)[:, perm4].reshape(384)
        p[f"{dec}/out_conv/W"] = p[f"{dec}/out_conv/W"][perm4, :]
    return p


# ---------------------------------------------------------------------------------------------------
# writers (real payload bytes)

def _p_str(text: str) -> bytes:
    raw = text.encode()
    return (b"\x8c" + bytes([len(raw)]) if len(raw) < 256 else b"X" + struct.pack("<I", len(raw))) + raw


def _p_global(module: str, name: str) -> bytes:
    return _p_str(module) + _p_str(name) + b"\x93"


def _p_int(n: int) -> bytes:
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


_DTYPE_CODE = {"float32": "f4", "float16": "f2", "float64": "f8", "int8": "i1", "uint8": "u1"}


def dfl_pickle_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """`pickle.dumps({name: ndarray}, 4)` as numpy 1.x writes it (numpy.core.multiarray._reconstruct, dtype
    state, BUILD with the raw C-order bytes), opcode by opcode and with the arrays' real bytes."""
    out = [b"\x80\x04", b"}", b"("]
    for key, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        code = _DTYPE_CODE[a.dtype.name]
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        order = "|" if a.dtype.itemsize == 1 else "<"
        dims = b"(" + b"".join(_p_int(d) for d in a.shape) + b"t"
        dtype = (_p_global("numpy", "dtype") + _p_str(code) + b"\x89\x88\x87R"
                 + b"(" + _p_int(3) + _p_str(order) + b"NNN" + _p_int(-1) + _p_int(-1) + _p_int(0) + b"tb")
        out += [
            _p_str(key),
            _p_global("numpy.core.multiarray", "_reconstruct"),
            _p_global("numpy", "ndarray"), _p_int(0), b"\x85", b"C\x01b", b"\x87R",
            b"(", _p_int(1), dims, dtype, b"\x89", b"B" + struct.pack("<I", len(raw)) + raw, b"tb",
        ]
    out += [b"u", b"."]
    return b"".join(out)


_ST_DTYPE = {"float32": "F32", "float16": "F16", "float64": "F64", "int8": "I8", "uint8": "U8"}


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    header: dict[str, object] = {}
    blobs, offset = [], 0
    for k, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[k] = {"dtype": _ST_DTYPE[arr.dtype.name], "shape": list(arr.shape),
                     "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = dict(metadata)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


def onnx_bytes(arrays: Mapping[str, np.ndarray], *, int8: bool = False, gemm: bool = True) -> bytes:
    """An ONNX model whose initializers are `arrays` (already in torch/ONNX layout: OIHW conv, (in,out,k,k)
    ConvTranspose, (out,in) for Gemm transB=1 or (in,out) for MatMul when gemm=False), one node using each
    weight so a reader can see the op. int8: each 2-D/4-D weight stored as INT8 + a float scale + zero point,
    consumed by DequantizeLinear (QDQ), as quantised exports do."""
    from jieyao.imitations import onnx as ox

    inits: list[ox.Init] = []
    nodes: list[bytes] = []
    prev = "input"
    for i, (name, arr) in enumerate(arrays.items()):
        a = np.ascontiguousarray(arr)
        dt = {"float32": ox.FLOAT, "float16": ox.FLOAT16}.get(a.dtype.name)
        if a.ndim < 2 or not int8:
            if dt is None:
                raise ValueError(f"onnx_bytes: dtype {a.dtype} not supported")
            inits.append(ox.Init(name, dt, list(a.shape), a.tobytes()))
            wname = name
        else:
            q, scale = quantise_int8(a.astype(np.float64))
            inits.append(ox.Init(name + "_quantized", 3, list(a.shape), q.tobytes()))  # INT8 = 3
            inits.append(ox.Init(name + "_scale", ox.FLOAT, [], np.float32(scale).tobytes()))
            inits.append(ox.Init(name + "_zero_point", 3, [], np.int8(0).tobytes()))
            nodes.append(ox.node_proto("DequantizeLinear", [name + "_quantized", name + "_scale",
                                                            name + "_zero_point"], [name], name=f"dq_{i}"))
            wname = name
        if a.ndim == 4:
            op = "ConvTranspose" if "decoder" in name or name.startswith("dec") else "Conv"
            nodes.append(ox.node_proto(op, [prev, wname], [f"h{i}"], name=f"{op.lower()}_{i}"))
            prev = f"h{i}"
        elif a.ndim == 2:
            if gemm:
                attr = ox.f_str(1, "transB") + ox.tag(3, ox.VARINT) + ox.varint(1) + ox.f_varint(20, 2)
                nodes.append(ox.node_proto("Gemm", [prev, wname], [f"h{i}"], name=f"gemm_{i}", attributes=[attr]))
            else:
                nodes.append(ox.node_proto("MatMul", [prev, wname], [f"h{i}"], name=f"matmul_{i}"))
            prev = f"h{i}"
    spec = ox.ModelSpec(inputs=[("input", ox.FLOAT, [1, 3, IMG, IMG])], outputs=[(prev, ox.FLOAT, None)],
                        initializers=inits, nodes=nodes, producer="tf2onnx", producer_version="1.9.3", opset=13)
    return ox.to_bytes(spec)


# the transforms a calibration run applies: name -> (file name, bytes builder over DFL-layout float arrays)

def variants(weights: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, tuple[str, bytes]]:
    """One model written several ways; every variant is what a reseller might upload."""
    f16 = {k: v.astype(np.float16) for k, v in weights.items()}
    torch32 = to_torch_layout(weights)
    return {
        "dfl-pickle fp32": ("model_SAEHD.npy", dfl_pickle_bytes(weights)),
        "dfl-pickle fp16": ("model_SAEHD.npy", dfl_pickle_bytes(f16)),
        "safetensors oihw+renamed+shuffled": ("model.safetensors",
                                              safetensors_bytes(rename_shuffle(torch32, seed))),
        "safetensors int8": ("model.safetensors", safetensors_bytes(
            {k: (quantise_int8(v)[0] if v.ndim >= 2 else v) for k, v in weights.items()})),
        "onnx fp16 gemm renamed+shuffled": ("model.dfm", onnx_bytes(
            rename_shuffle({k: v.astype(np.float16) for k, v in torch32.items()}, seed + 1))),
        "onnx int8-qdq matmul": ("model.onnx", onnx_bytes(
            {k: (v if v.ndim != 2 else np.ascontiguousarray(v.T)) for k, v in torch32.items()}, int8=True,
            gemm=False)),
    }
