#!/usr/bin/env python3
"""Model identification: does jieyao name pretrained face-swap models by their structure, at what cost, and what
do the usual model-file scanners (Protect AI's picklescan and modelscan) say about the same files?

Why this exists: a platform that must keep DeepFaceLab weights, DFM exports and inswapper-family ONNX models off
its storage needs a tool that answers "is this a face-swap model, and which one?", whatever the file is called
and whether or not it is zipped. picklescan and modelscan answer a different question, "is this file unsafe to
load?" (does its pickle import os.system and the like). A face-swap model made of plain arrays is perfectly
"safe" by that measure, so they pass it, or skip it when it is ONNX. This script shows both on one corpus.

It generates (seeded, in code, nothing downloaded) a corpus of structural imitations from `jieyao.imitations`:
planted face-swap models (DFL weight / optimizer pickles of 40-170 MiB of float32, `_data.dat` training state,
DFM and XSeg exports, a >= 500 MiB inswapper-like ONNX, a FaceFusion-contract swapper, some renamed, some in
zips), ordinary files (classifier ONNX, torch/keras-style state dicts, plain pickled dicts and lists, near
misses such as a training log called `*_data.dat`, text, random blobs) and one control pickle that would call
os.system if it were loaded (so that the safety scanners visibly work). Then, round by round on a warm page
cache, it times: a baseline (read + SHA-256 of every file), `jieyao.scan.scan_paths` (jobs=1), `picklescan
--path` and `modelscan -p ... -r json`; the best of --repeat rounds is kept. Finally it measures how many bytes
`read_onnx` reads from the big ONNX to identify it. Nothing is loaded or executed: the corpus is only written
(`pickle.dumps` of plain objects built here) and read as bytes. Not a test: run by hand,

    .venv/bin/python bench/model_identification.py [--out bench/out/models] [--count 200] [--repeat 3] [--keep]

picklescan and modelscan live in their own venv (default /tmp/benchvenv, created with `python3.11 -m venv` and
`pip install picklescan modelscan` when missing); a tool that cannot be installed is reported and skipped.
Figures go to OUT/results.json; the corpus (OUT/corpus) is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jieyao
from benchlib import source_info
from jieyao import imitations as im
from jieyao.formats.onnx import read_onnx
from jieyao.imitations import onnx as of
from jieyao.intake.blob import FileBlob
from jieyao.model import MEMBER_SEPARATOR, Category, ScanReport
from jieyao.scan import scan_paths

KiB = 1024
MiB = 1024 * KiB
READ_CHUNK = MiB
DEFAULT_SEED = 20261202
DEFAULT_COUNT = 200
BIG_ONNX_MIB = 560
TOOL_TIMEOUT_S = 300
F32 = "f4"

Spec = dict[str, tuple[tuple[int, ...], str]]
Expect = tuple[str | None, str]
"""(member inside the file or None for the file itself, jieyao rule id that must match it)."""


# -- corpus -----------------------------------------------------------------------------------------------------


@dataclass
class CorpusFile:
    rel: str
    group: str
    """planted (a face-swap model imitation, or a zip holding some), ordinary, or control."""
    what: str
    size: int = 0
    expect: list[Expect] = field(default_factory=list)


class Corpus:
    """Writes the files and remembers what each one is and what jieyao should say about it."""

    def __init__(self, root: Path, seed: int, onnx_mib: int) -> None:
        self.root = root
        self.onnx_mib = onnx_mib
        self.rng = random.Random(seed)
        self.seed = seed
        self.files: list[CorpusFile] = []

    def _path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def put(self, rel: str, data: bytes, group: str, what: str, expect: list[Expect] | None = None) -> bytes:
        self._path(rel).write_bytes(data)
        self.files.append(CorpusFile(rel, group, what, len(data), expect or []))
        return data

    def put_onnx(self, rel: str, spec: of.ModelSpec, group: str, what: str, expect: list[Expect] | None = None) -> None:
        size = of.write_onnx_file(self._path(rel), spec)
        self.files.append(CorpusFile(rel, group, what, size, expect or []))

    def next_seed(self) -> int:
        return self.rng.randrange(1 << 30)

    @property
    def planted_models(self) -> list[tuple[str, str | None, str]]:
        """(file, member, rule) for every planted model, top-level or inside a zip."""
        return [(f.rel, member, rule) for f in self.files if f.group == "planted" for member, rule in f.expect]

    def composition(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.files:
            g = out.setdefault(f.group, {"files": 0, "bytes": 0})
            g["files"] += 1
            g["bytes"] += f.size
        out["total"] = {"files": len(self.files), "bytes": sum(f.size for f in self.files)}
        return out


def dfl_encoder_spec(scale: int = 1) -> Spec:
    """SAEHD encoder variables: four 5x5 down-convs, channels doubling (e_dims 128 at scale 1)."""
    chans = [3, 128 * scale, 256 * scale, 512 * scale, 1024 * scale]
    spec: Spec = {}
    for i in range(4):
        spec[f"down1/downs_{i}/conv1/weight:0"] = ((5, 5, chans[i], chans[i + 1]), F32)
        spec[f"down1/downs_{i}/conv1/bias:0"] = ((chans[i + 1],), F32)
    return spec


def dfl_inter_spec() -> Spec:
    """SAEHD inter: two dense layers (ae_dims 512) and an upscale conv, about 170 MiB."""
    return {
        "dense1/weight:0": ((65536, 512), F32), "dense1/bias:0": ((512,), F32),
        "dense2/weight:0": ((512, 16384), F32), "dense2/bias:0": ((16384,), F32),
        "upscale1/conv1/weight:0": ((3, 3, 256, 1024), F32), "upscale1/conv1/bias:0": ((1024,), F32),
    }


def dfl_decoder_spec(d: int = 512) -> Spec:
    """SAEHD decoder: upscales, residual blocks, mask branch and the two output convs (d_dims d)."""
    return {
        "upscale0/conv1/weight:0": ((3, 3, d, 4 * d), F32), "upscale1/conv1/weight:0": ((3, 3, d, 2 * d), F32),
        "upscale2/conv1/weight:0": ((3, 3, d // 2, d), F32), "res0/conv1/weight:0": ((3, 3, d, d), F32),
        "res0/conv2/weight:0": ((3, 3, d, d), F32), "upscalem0/conv1/weight:0": ((3, 3, d, 2 * d), F32),
        "out_conv/weight:0": ((1, 1, d // 4, 3), F32), "out_convm/weight:0": ((1, 1, d // 8, 1), F32),
    }


def dfl_optimizer_spec() -> Spec:
    """AdaBelief slots named after DFL layers, plus the iteration counter."""
    spec: Spec = {"iters:0": ((), "i8")}
    for part, layers in (("encoder", dfl_encoder_spec()), ("inter", dfl_inter_spec())):
        for key, (shape, code) in list(layers.items())[:4 if part == "encoder" else 2]:
            if key == "dense1/weight:0":
                shape = (8192, 512)  # keep the file near 40 MiB
            base = f"{part}/{key.replace(':', '_')}"
            spec[f"ms_{base}:0"] = (shape, code)
            spec[f"vs_{base}:0"] = (shape, code)
    return spec


def dfl_data_dat(rng: random.Random, *, iters: int, protocol: int, author: str | None) -> bytes:
    """`<name>_SAEHD_data.dat`: DFL's training state, a plain pickled dict (no arrays needed for the keys)."""
    data: dict[str, Any] = {
        "iter": iters,
        "options": {"resolution": 224, "face_type": "wf", "archi": "liae-udt", "ae_dims": 512, "e_dims": 64,
                    "d_dims": 64, "d_mask_dims": 22, "batch_size": 8, "masked_training": True},
        "loss_history": [[round(0.6 - i / (iters * 2) + rng.random() / 50, 4),
                          round(0.55 - i / (iters * 2) + rng.random() / 50, 4)] for i in range(0, iters, 25)],
        "sample_for_preview": [im.rand_bytes(224 * 224 * 3, seed=rng.randrange(1 << 30)) for _ in range(4)],
        "choosed_gpu_indexes": [0],
    }
    if author is not None:
        data["author_name"] = author
    return pickle.dumps(data, protocol=protocol)


def onnx_weights(prefix: str, total: int, n: int) -> list[of.InitSpec]:
    per = total // n // 4 * 4
    return [(f"{prefix}{i}", of.FLOAT, [per // 4], per) for i in range(n)]


def build_planted(c: Corpus) -> None:
    """Face-swap model imitations: every one must be named by a model rule, whatever its file name."""
    def weights(spec: Spec) -> bytes:
        return im.numpy1_array_pickle(spec, seed=c.next_seed())

    c.put("planted/dfl/SAEHD_encoder.npy", weights(dfl_encoder_spec()), "planted",
          "DFL SAEHD encoder weights (numpy-1 pickle dict)", [(None, "dfl.weights")])
    c.put("planted/dfl/SAEHD_inter.npy", weights(dfl_inter_spec()), "planted", "DFL SAEHD inter weights",
          [(None, "dfl.weights")])
    c.put("planted/dfl/SAEHD_decoder_src.npy", weights(dfl_decoder_spec()), "planted", "DFL SAEHD decoder weights",
          [(None, "dfl.weights")])
    c.put("planted/dfl/SAEHD_default_optimizer.npy", weights(dfl_optimizer_spec()), "planted",
          "DFL optimizer state (ms_/vs_ slots)", [(None, "dfl.optimizer")])
    c.put("planted/dfl/RTT_SAEHD_data.dat", dfl_data_dat(c.rng, iters=500_000, protocol=3, author="神农汉化"),
          "planted", "DFL training state _data.dat (protocol 3)", [(None, "dfl.model_data")])
    c.put("planted/dfl/new_SAEHD_data.dat", dfl_data_dat(c.rng, iters=40_000, protocol=4, author=None),
          "planted", "DFL training state _data.dat (protocol 4)", [(None, "dfl.model_data")])
    c.put("planted/dfl/checkpoint_0001.bin", im.dfl_like_encoder(), "planted", "small DFL encoder, renamed .bin",
          [(None, "dfl.weights")])

    c.put_onnx("planted/onnx/inswapper_128.onnx", of.inswapper_spec(
        weight_bytes=c.onnx_mib * MiB - 512 * 512 * 4, n_weights=300, n_nodes=1500, fill="random",
        seed=c.next_seed()), "planted", f"inswapper-like ONNX, {c.onnx_mib} MiB", [(None, "insightface.inswapper")])
    c.put("planted/onnx/face_enhancer_v2.bin", of.to_bytes(of.inswapper_spec(weight_bytes=64 * KiB)), "planted",
          "small inswapper-like ONNX renamed .bin", [(None, "insightface.inswapper")])
    dfm_inits: list[of.InitSpec] = [
        ("encoder/down1/downs_0/conv1/weight:0", of.FLOAT, [64, 3, 5, 5], 64 * 3 * 5 * 5 * 4),
        ("inter/dense1/weight:0", of.FLOAT, [65536, 256], 65536 * 256 * 4),
        ("decoder/upscale0/conv1/weight:0", of.FLOAT, [2048, 512, 3, 3], 2048 * 512 * 9 * 4),
        ("decoder/out_conv/weight:0", of.FLOAT, [3, 64, 1, 1], 3 * 64 * 4),
    ]
    c.put_onnx("planted/onnx/celeb_224.dfm", of.dfm_spec(initializers=dfm_inits, fill="random", seed=c.next_seed()),
               "planted", "DeepFaceLive DFM export (SAEHD), about 100 MiB", [(None, "dfl.dfm")])
    c.put("planted/onnx/model.onnx", of.to_bytes(of.dfm_spec(amp=True)), "planted", "DFM export (AMP), generic name",
          [(None, "dfl.dfm")])
    c.put("planted/onnx/xseg_256.onnx", of.to_bytes(of.dfm_spec(
        res=256, outputs=[("out_mask:0", of.FLOAT, ["unk__1094", 256, 256, 1])], graph_doc="converted from XSeg")),
        "planted", "DFL XSeg mask model export", [(None, "dfl.xseg_onnx")])
    c.put_onnx("planted/onnx/swapper_256.onnx", of.inswapper_spec(
        inputs=[("target", of.FLOAT, [1, 3, 256, 256]), ("source", of.FLOAT, [1, 512])],
        initializers=onnx_weights("onnx::Conv_", 30 * MiB, 40), fill="random", seed=c.next_seed()), "planted",
        "FaceFusion-contract swapper (target+source, no 512x512 emap), 30 MiB", [(None, "facefusion.swapper")])

    data_dat = dfl_data_dat(c.rng, iters=120_000, protocol=3, author=None)
    c.put("archives/RTT_model_share.zip", im.zip_bytes({
        "model/RTT_SAEHD_encoder.npy": im.dfl_like_encoder(),
        "model/RTT_SAEHD_decoder_src.npy": weights(dfl_decoder_spec(256)),
        "model/RTT_SAEHD_data.dat": data_dat,
        "model/readme.txt": b"shared model, see forum thread\n",
    }, compression=zipfile.ZIP_STORED), "planted", "stored zip: DFL weights x2 + _data.dat",
        [("model/RTT_SAEHD_encoder.npy", "dfl.weights"), ("model/RTT_SAEHD_decoder_src.npy", "dfl.weights"),
         ("model/RTT_SAEHD_data.dat", "dfl.model_data")])
    c.put("archives/celeb-pack.zip", im.zip_bytes({"celeb_224.dfm": of.to_bytes(of.dfm_spec()),
                                                   "readme.txt": b"face model pack\n"}),
          "planted", "deflated zip holding a DFM", [("celeb_224.dfm", "dfl.dfm")])
    swapper = of.to_bytes(of.inswapper_spec(weight_bytes=24 * MiB, n_weights=20, fill="random", seed=c.next_seed()))
    c.put("archives/swapper_pack.zip", im.zip_bytes({"models/inswapper_128.onnx": swapper}), "planted",
          "deflated zip holding a 25 MiB inswapper-like ONNX", [("models/inswapper_128.onnx", "insightface.inswapper")])
    inner = im.zip_bytes({"amp_224.dfm": of.to_bytes(of.dfm_spec(amp=True))})
    c.put("archives/nested.zip", im.zip_bytes({"inner.zip": inner, "notes.txt": b"nested\n"}), "planted",
          "zip in a zip holding an AMP DFM", [(f"inner.zip{MEMBER_SEPARATOR}amp_224.dfm", "dfl.dfm")])


def small_ordinary_pickle(rng: random.Random, i: int) -> tuple[str, bytes, str]:
    """One of eight kinds of everyday pickle, including near misses of DFL's key layouts."""
    kind = i % 8
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 10))) for _ in range(64)]
    if kind == 0:
        obj: Any = {"model": {"name": f"net{i}", "layers": [rng.choice([64, 128, 256]) for _ in range(8)]},
                    "lr": rng.random() / 100, "tags": rng.sample(words, 5), "seed": i}
        return f"ordinary/pickles/config_{i:03d}.pkl", pickle.dumps(obj, protocol=2), "config dict"
    if kind == 1:
        obj = [{"id": j, "name": rng.choice(words), "score": rng.random()} for j in range(rng.randint(50, 2000))]
        return f"ordinary/pickles/records_{i:03d}.pickle", pickle.dumps(obj, protocol=4), "list of records"
    if kind == 2:
        obj = {"iter": rng.randint(10, 10**6), "options": {"lr": 0.1, "batch_size": 32},
               "metrics": [rng.random() for _ in range(rng.randint(10, 5000))]}
        return (f"ordinary/pickles/run{i:03d}_data.dat", pickle.dumps(obj, protocol=3),
                "training log with iter/options (near miss of a DFL _data.dat)")
    if kind == 3:
        obj = {w + str(j): j for j, w in enumerate(rng.choices(words, k=rng.randint(100, 5000)))}
        return f"ordinary/pickles/vocab_{i:03d}.pkl", pickle.dumps(obj, protocol=5), "vocabulary dict"
    seed = rng.randrange(1 << 30)
    if kind == 4:
        spec: Spec = {"fc1.weight": ((rng.randint(16, 256), 64), F32), "fc1.bias": ((64,), F32),
                      "fc2.weight": ((10, 64), F32), "fc2.bias": ((10,), F32)}
        return f"ordinary/pickles/mlp_{i:03d}.pkl", im.numpy1_array_pickle(spec, seed), "torch-style state dict"
    if kind == 5:
        spec = {"dense_1/kernel:0": ((rng.randint(16, 256), 64), F32), "dense_1/bias:0": ((64,), F32),
                "conv2d/kernel:0": ((3, 3, 3, 16), F32)}
        return (f"ordinary/pickles/keras_{i:03d}.data", im.numpy1_array_pickle(spec, seed),
                "keras-style weights (':0' names, not DFL's)")
    if kind == 6:
        spec = {"dense1/weight:0": ((32, 16), F32), "dense1/bias:0": ((16,), F32)}
        spec.update({f"block{j}/bn/gamma:0": ((16,), F32) for j in range(6)})
        return (f"ordinary/pickles/mixed_{i:03d}.pkl", im.numpy1_array_pickle(spec, seed),
                "near miss: 2 DFL-like keys among 8")
    obj = [[rng.random(), rng.random()] for _ in range(rng.randint(100, 20000))]
    return f"ordinary/pickles/loss_curve_{i:03d}.pkl", pickle.dumps(obj, protocol=4), "list of loss pairs"


def build_ordinary(c: Corpus, count: int) -> None:
    """Files a platform sees every day; none of them may be called a face-swap model."""
    for i in range(count):
        rel, data, what = small_ordinary_pickle(c.rng, i)
        c.put(rel, data, "ordinary", what)
    resnet: Spec = {f"layer{i}.{b}.conv{j}.weight": ((64 * 2 ** (i - 1), 64 * 2 ** (i - 1), 3, 3), F32)
                    for i in range(1, 5) for b in range(2) for j in (1, 2)}
    resnet["fc.weight"] = ((1000, 512), F32)
    resnet["fc.bias"] = ((1000,), F32)
    c.put("ordinary/big/resnet18_state.pkl", im.numpy1_array_pickle(resnet, c.next_seed()), "ordinary",
          "torch-style resnet18 state dict, about 50 MiB")
    keras: Spec = {f"dense_{i}/kernel:0": ((2048, 1024), F32) for i in range(4)}
    c.put("ordinary/big/keras_weights.pkl", im.numpy1_array_pickle(keras, c.next_seed()), "ordinary",
          "keras-style weights, 32 MiB")
    c.put("ordinary/onnx/resnet-classifier.onnx", of.to_bytes(of.classifier_spec()), "ordinary",
          "small image classifier ONNX")
    vit = [(f"blocks.{i}.attn.qkv.weight", of.FLOAT, [2304, 768], 2304 * 768 * 4) for i in range(16)]
    c.put_onnx("ordinary/onnx/vit_classifier.onnx", of.classifier_spec(initializers=vit, fill="random",
                                                                       seed=c.next_seed()),
               "ordinary", "image classifier ONNX, about 108 MiB")
    c.put_onnx("ordinary/onnx/face_recognition_r50.onnx", of.classifier_spec(
        inputs=[("input.1", of.FLOAT, [1, 3, 112, 112])], outputs=[("683", of.FLOAT, [1, 512])],
        initializers=[("fc.weight", of.FLOAT, [512, 25088], 512 * 25088 * 4)], fill="random", seed=c.next_seed()),
        "ordinary", "face-recognition embedder ONNX (112x112 in, 512-d out; not a swapper), 49 MiB")
    c.put("archives/ordinary_models.zip", im.zip_bytes({
        "classifier.onnx": of.to_bytes(of.classifier_spec()),
        "state_dict.pkl": im.numpy1_array_pickle({"fc1.weight": ((256, 64), F32)}, c.next_seed()),
        "config.json": json.dumps({"arch": "mlp", "hidden": 64}).encode(),
    }), "ordinary", "deflated zip: classifier ONNX + state dict + config")
    for i in range(20):
        text = " ".join(c.rng.choices(["model", "train", "image", "face", "data", "loss", "epoch"], k=2000))
        ext = ".json" if i % 2 else ".txt"
        body = json.dumps({"notes": text}) if ext == ".json" else text
        c.put(f"ordinary/docs/doc_{i:02d}{ext}", body.encode(), "ordinary", "text / json")
    for i in range(4):
        c.put(f"ordinary/blobs/blob_{i}.bin", im.rand_bytes((i + 1) * 2 * MiB, c.next_seed()), "ordinary",
              "random bytes (.bin)")


class _RunsCodeIfLoaded:
    """Pickles to a call of os.system: written here, never loaded anywhere."""

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("echo this would run if the file were loaded",))


def build_control(c: Corpus) -> None:
    c.put("control/runs_code.pkl", pickle.dumps({"weights": _RunsCodeIfLoaded()}, protocol=4), "control",
          "pickle that would call os.system if loaded", [(None, "pickle.code_execution")])


def build_corpus(root: Path, seed: int, count: int, onnx_mib: int) -> Corpus:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    c = Corpus(root, seed, onnx_mib)
    build_planted(c)
    build_ordinary(c, count)
    build_control(c)
    return c


# -- measurements -----------------------------------------------------------------------------------------------


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def baseline(files: list[Path]) -> int:
    """Read every byte once, 1 MiB at a time, and SHA-256 it: the least any scanner must do."""
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    total = 0
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as fp:
            while n := fp.readinto(buf):
                digest.update(view[:n])
                total += n
    return total


@dataclass
class ToolRun:
    seconds: float
    rc: int | None
    output: str = ""


def run_tool(argv: list[str], cwd: Path) -> ToolRun:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return ToolRun(time.perf_counter() - t0, None, out + f"\n[timed out after {TOOL_TIMEOUT_S} s]")
    return ToolRun(time.perf_counter() - t0, proc.returncode, proc.stdout + proc.stderr)


@dataclass
class Tool:
    name: str
    version: str | None
    argv: Callable[[Path, Path], list[str]] | None
    """(corpus, work dir) -> command line; None when the tool is not available."""
    skipped: str | None = None


def venv_version(venv: Path, package: str) -> str | None:
    try:
        proc = subprocess.run([str(venv / "bin" / "python"), "-c",
                               "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", package],
                              capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def ensure_tools(venv: Path, python: str, install: bool) -> tuple[Tool, Tool, list[str]]:
    """picklescan and modelscan from their own venv, installed there when missing (each on its own, so that one
    failing install does not cost the other tool)."""
    notes: list[str] = []
    bins = {"picklescan": venv / "bin" / "picklescan", "modelscan": venv / "bin" / "modelscan"}
    if install and not all(b.exists() for b in bins.values()):
        if not (venv / "bin" / "pip").exists():
            proc = subprocess.run([python, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
            if proc.returncode:
                notes.append(f"{python} -m venv {venv} failed: {proc.stderr.strip()[-300:]}")
        for pkg, exe in bins.items():
            if not exe.exists() and (venv / "bin" / "pip").exists():
                proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", pkg], capture_output=True,
                                      text=True, check=False)
                if proc.returncode:
                    notes.append(f"pip install {pkg} failed: {proc.stderr.strip()[-300:]}")

    def tool(pkg: str, argv: Callable[[Path, Path], list[str]]) -> Tool:
        if not bins[pkg].exists():
            return Tool(pkg, None, None, skipped=f"{bins[pkg]} not installed")
        return Tool(pkg, venv_version(venv, pkg), argv)

    pick = tool("picklescan", lambda corpus, work: [str(bins["picklescan"]), "--path", str(corpus)])
    model = tool("modelscan", lambda corpus, work: [str(bins["modelscan"]), "scan", "-p", str(corpus), "-r", "json",
                                                   "-o", str(work / "modelscan.json"), "--show-skipped"])
    return pick, model, notes


# -- what each tool said ----------------------------------------------------------------------------------------


def model_findings(report: ScanReport, root: Path) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """(file relative to the corpus, member) -> jieyao findings there (all categories)."""
    out: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for target in report.targets:
        rel = os.path.relpath(target.path, root)
        for f in target.findings:
            out.setdefault((rel, f.member), []).append(
                {"rule": f.rule, "family": f.family, "category": f.category.value, "decision": f.decision.value,
                 "evidence": list(f.evidence)})
        if target.error:
            out.setdefault((rel, None), []).append({"rule": "error", "category": "error", "evidence": [target.error]})
    return out


def judge_jieyao(report: ScanReport, c: Corpus) -> dict[str, Any]:
    found = model_findings(report, c.root)
    groups = {f.rel: f.group for f in c.files}
    planted = c.planted_models
    named = [(rel, member, rule) for rel, member, rule in planted
             if any(x["rule"] == rule and x["family"] for x in found.get((rel, member), []))]
    model_hits = {k: v for k, v in found.items() if any(x["category"] == Category.MODEL.value for x in v)}
    expected = {(rel, member) for rel, member, _ in planted}
    ordinary_flagged = sorted({rel for (rel, _), _ in model_hits.items() if groups.get(rel) == "ordinary"})
    # an archive holding a model's parts also gets one summary finding (dfl.model_set): expected, not extra
    set_rules = {"dfl.model_set", "model.companions"}
    unexpected = sorted(f"{rel}{MEMBER_SEPARATOR + m if m else ''}" for (rel, m), hits in model_hits.items()
                        if (rel, m) not in expected and groups.get(rel) != "ordinary"
                        and not all(x["rule"] in set_rules for x in hits))
    ordinary_non_pass = sorted({os.path.relpath(t.path, c.root) for t in report.targets
                                if groups.get(os.path.relpath(t.path, c.root)) == "ordinary"
                                and t.decision.value != "pass"})
    control = [f.rel for f in c.files if f.group == "control"]
    return {
        "planted_models": len(planted), "named": len(named),
        "missed": [f"{r}{MEMBER_SEPARATOR + m if m else ''} ({rule})" for r, m, rule in planted
                   if (r, m, rule) not in named],
        "files_with_model_findings": len({rel for rel, _ in model_hits}),
        "ordinary_flagged": ordinary_flagged, "ordinary_not_pass": ordinary_non_pass, "unexpected": unexpected,
        "control_flagged": all(any(x["rule"] == "pickle.code_execution" for x in found.get((r, None), []))
                               for r in control),
        "per_model": {f"{r}{MEMBER_SEPARATOR + m if m else ''}": [f"{x['rule']} ({x['family']}, {x['decision']})"
                                                                 for x in found.get((r, m), [])
                                                                 if x["category"] == Category.MODEL.value]
                      for r, m, _ in planted},
        "stats": report.stats.to_dict(),
    }


_PS_SCAN_ZIP = re.compile(r"^Scanning file (.+) in zip archive (.+)$")
_PS_SCAN = re.compile(r"^Scanning file (.+)$")
_PS_GLOBALS = re.compile(r"^Global imports in (.+): (set\(\)|\{.*\})$")
_PS_UNPARSED = re.compile(r"could not parse (.+) as pickle: (.+)$")
_PS_FOUND = re.compile(r"^(.+): (dangerous|suspicious) import '(.+)' FOUND$")
_PS_SUMMARY = re.compile(r"^(Scanned files|Infected files|Suspicious globals|Dangerous globals): (\d+)$")


def picklescan_per_file(debug_output: str, root: Path) -> dict[str, dict[str, Any]]:
    """Parse picklescan's DEBUG log into id -> {scanned, globals, unparsed, found}; id is the path relative to the
    corpus, with ':member' for a zip member (picklescan's own notation)."""
    per: dict[str, dict[str, Any]] = {}

    def rec(abs_id: str) -> dict[str, Any]:
        rel = os.path.relpath(abs_id, root) if abs_id.startswith(str(root)) else abs_id
        return per.setdefault(rel, {"scanned": False, "globals": None, "unparsed": None, "found": []})

    for line in debug_output.splitlines():
        line = line.strip()
        if m := _PS_SCAN_ZIP.match(line):
            rec(f"{m[2]}:{m[1]}")["scanned"] = True
        elif m := _PS_SCAN.match(line):
            rec(m[1])["scanned"] = True
        elif m := _PS_GLOBALS.match(line):
            rec(m[1])["globals"] = m[2]
        elif m := _PS_FOUND.match(line):
            rec(m[1])["found"].append(f"{m[2]} {m[3]}")
        elif m := _PS_UNPARSED.search(line):
            rec(m[1])["unparsed"] = m[2]
    return per


def picklescan_summary(output: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for line in output.splitlines() if (m := _PS_SUMMARY.match(line.strip()))}


def picklescan_verdict(per: dict[str, dict[str, Any]], ident: str) -> str:
    r = per.get(ident)
    if r is None or not r["scanned"]:
        return "not scanned (not on its extension list)"
    if r["found"]:
        return "FLAGGED: " + "; ".join(r["found"])
    if r["unparsed"]:
        return "warning only: could not parse as pickle"
    if r["globals"] in (None, "set()"):
        return "scanned: no globals (safe)"
    names = sorted(set(re.findall(r"\('([\w.]+)', '(\w+)'\)", r["globals"])))
    return "scanned: safe globals only (" + ", ".join(f"{a}.{b}" for a, b in names) + ")"


def modelscan_per_file(doc: dict[str, Any]) -> dict[str, str]:
    """source (path relative to the corpus, ':member' inside a zip) -> what modelscan did with it."""
    out: dict[str, str] = {}
    summary = doc.get("summary", {})
    for src in summary.get("scanned", {}).get("scanned_files", []):
        out[src] = "scanned: no issues (safe)"
    for s in summary.get("skipped", {}).get("skipped_files", []):
        out.setdefault(s.get("source", "?"), f"skipped ({s.get('category')}: {s.get('description')})")
    for e in doc.get("errors", []) or []:
        src = e.get("source", "?") if isinstance(e, dict) else "?"
        out[src] = f"error: {e.get('description', e) if isinstance(e, dict) else e}"
    issues: dict[str, list[str]] = {}
    for i in doc.get("issues", []):
        issues.setdefault(i.get("source", "?"), []).append(f"{i.get('severity')} {i.get('module')}.{i.get('operator')}")
    for src, what in issues.items():
        out[src] = "FLAGGED: " + "; ".join(what)
    return out


def tool_ident(rel: str, member: str | None) -> str:
    return rel if member is None else f"{rel}:{member.replace(MEMBER_SEPARATOR, ':')}"


def modelscan_said(per: dict[str, str], ident: str) -> str:
    """What modelscan said about ident, or about the closest enclosing container it reported (a nested zip)."""
    parts = ident.split(":")
    for n in range(len(parts), 0, -1):
        said = per.get(":".join(parts[:n]))
        if said is not None:
            return said if n == len(parts) else f"not looked at (container {':'.join(parts[:n])}: {said})"
    return "not looked at"


def time_by_folder(report: ScanReport, root: Path) -> dict[str, float]:
    """jieyao's seconds per corpus folder (two levels), from each target's own timing."""
    out: dict[str, float] = {}
    for t in report.targets:
        rel = Path(os.path.relpath(t.path, root))
        key = "/".join(rel.parts[:2]) if len(rel.parts) > 2 else rel.parts[0]
        out[key] = out.get(key, 0.0) + t.seconds
    return {k: round(v, 4) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def flagged_files(per: dict[str, str], c: Corpus, group: str) -> list[str]:
    rels = {f.rel for f in c.files if f.group == group}
    return sorted({src.split(":", 1)[0] for src, what in per.items() if what.startswith("FLAGGED")} & rels)


# -- the big ONNX -----------------------------------------------------------------------------------------------


def onnx_bytes_read(path: Path, repeat: int) -> dict[str, Any]:
    """What identifying the big ONNX costs: read_onnx on a FileBlob (no hashing) against a full read + SHA-256
    and against a whole scan_paths of that one file (which hashes every byte for the hash lists)."""
    size = path.stat().st_size
    parse_s = sha_s = scan_s = float("inf")
    summary = None
    rule = None
    for _ in range(repeat):
        blob = FileBlob(os.open(path, os.O_RDONLY), size)
        try:
            t0 = time.perf_counter()
            summary = read_onnx(blob)
            parse_s = min(parse_s, time.perf_counter() - t0)
        finally:
            blob.close()
        t0 = time.perf_counter()
        baseline([path])
        sha_s = min(sha_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = scan_paths([path])
        scan_s = min(scan_s, time.perf_counter() - t0)
        rule = next((f.rule for f in report.targets[0].findings if f.category is Category.MODEL), None)
    assert summary is not None
    ok = (summary.error is None and summary.complete and [i.name for i in summary.inputs] == ["target", "source"]
          and summary.initializers[-1].name == "buff2fs")
    return {
        "file": path.name, "size": size, "bytes_read": summary.bytes_read,
        "bytes_read_pct": round(100 * summary.bytes_read / size, 4), "goal_pct": 1.0,
        "goal_met": ok and summary.bytes_read < size / 100, "summary_correct": ok,
        "initializers": summary.initializer_count, "nodes": summary.node_count,
        "read_onnx_s": round(parse_s, 5), "read_sha256_s": round(sha_s, 4), "scan_paths_s": round(scan_s, 4),
        "scan_paths_rule": rule, "scan_paths_vs_sha256": round(scan_s / sha_s, 2),
    }


# -- reporting --------------------------------------------------------------------------------------------------


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/models"), help="output folder (default %(default)s)")
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT,
                    help="small ordinary pickles in the corpus (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds, the best is kept (default %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--onnx-mib", type=int, default=BIG_ONNX_MIB,
                    help="size of the big inswapper-like ONNX, MiB (default %(default)s; the goal is for >= 500)")
    ap.add_argument("--keep", action="store_true", help="keep the generated corpus in OUT/corpus")
    ap.add_argument("--tools-venv", type=Path, default=Path("/tmp/benchvenv"),
                    help="venv holding picklescan and modelscan (default %(default)s)")
    ap.add_argument("--tools-python", default="python3.11", help="python that creates that venv when missing")
    ap.add_argument("--no-install", action="store_true", help="do not create the tools venv or pip install")
    args = ap.parse_args(argv)

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = out / "corpus"
    work = Path(tempfile.mkdtemp(prefix="jieyao-models-bench-"))
    picklescan, modelscan, notes = ensure_tools(args.tools_venv, args.tools_python, not args.no_install)
    for note in notes:
        print(f"note: {note}")
    try:
        t0 = time.perf_counter()
        corpus = build_corpus(root, args.seed, args.count, args.onnx_mib)
        build_s = time.perf_counter() - t0
        files = all_files(root)
        total = sum(p.stat().st_size for p in files)
        comp = corpus.composition()
        print(f"corpus: {len(files)} files, {total / MiB:,.1f} MiB, written in {build_s:.1f} s (seed {args.seed})")
        for group in ("planted", "ordinary", "control"):
            g = comp.get(group, {"files": 0, "bytes": 0})
            print(f"  {group:9s} {g['files']:4d} files {g['bytes'] / MiB:9.1f} MiB")
        print(f"  planted face-swap models: {len(corpus.planted_models)} (top-level files and zip members)")

        baseline(files)  # untimed: warm the page cache
        best: dict[str, float] = {}
        runs: dict[str, list[float]] = {}
        last: dict[str, Any] = {}
        tools = [t for t in (picklescan, modelscan) if t.argv is not None]
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            baseline(files)
            runs.setdefault("baseline", []).append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            last["jieyao"] = scan_paths([root], jobs=1)
            runs.setdefault("jieyao", []).append(time.perf_counter() - t0)
            for tool in tools:
                assert tool.argv is not None
                run = run_tool(tool.argv(root, work), work)
                runs.setdefault(tool.name, []).append(run.seconds)
                last[tool.name] = run
        best = {k: min(v) for k, v in runs.items()}

        jv = judge_jieyao(last["jieyao"], corpus)
        ps_per: dict[str, dict[str, Any]] = {}
        ms_per: dict[str, str] = {}
        tool_results: dict[str, Any] = {}
        if picklescan.argv is not None:
            debug = run_tool([*picklescan.argv(root, work), "-l", "DEBUG"], work)  # untimed: what it looked at
            ps_per = picklescan_per_file(debug.output, root)
            ps_said = {ident: picklescan_verdict(ps_per, ident) for ident in ps_per}
            tool_results["picklescan"] = {
                "rc": last["picklescan"].rc, "summary": picklescan_summary(last["picklescan"].output),
                "output_tail": last["picklescan"].output[-4000:],
                "ordinary_flagged": flagged_files(ps_said, corpus, "ordinary"),
                "control_flagged": bool(flagged_files(ps_said, corpus, "control")),
                "warnings": sorted(k for k, r in ps_per.items() if r["unparsed"]),
            }
        if modelscan.argv is not None:
            try:
                doc = json.loads((work / "modelscan.json").read_text())
            except (OSError, json.JSONDecodeError) as exc:
                doc = {"error": str(exc)}
            ms_per = modelscan_per_file(doc)
            tool_results["modelscan"] = {
                "rc": last["modelscan"].rc, "summary": doc.get("summary", {}).get("total_issues_by_severity"),
                "total_issues": doc.get("summary", {}).get("total_issues"),
                "scanned": doc.get("summary", {}).get("scanned", {}).get("total_scanned"),
                "skipped": doc.get("summary", {}).get("skipped", {}).get("total_skipped"),
                "errors": doc.get("errors"), "issues": doc.get("issues"),
                "ordinary_flagged": flagged_files(ms_per, corpus, "ordinary"),
                "control_flagged": bool(flagged_files(ms_per, corpus, "control")),
            }

        big = onnx_bytes_read(root / "planted/onnx/inswapper_128.onnx", args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    planted = corpus.planted_models
    n_planted = len(planted)

    def row(name: str, key: str, rc: str, identified: str, flagged: str, control: str) -> list[str]:
        s = best[key]
        return [name, f"{s:.2f}", f"{total / MiB / s:,.0f}", f"{s / best['baseline']:.2f}x", rc, identified,
                flagged, control]

    rows = [row("baseline: read + SHA-256", "baseline", "-", "-", "-", "-"),
            row(f"jieyao {jieyao.__version__} scan_paths jobs=1", "jieyao", str(last["jieyao"].exit_code),
                f"{jv['named']} / {n_planted}", str(len(jv["ordinary_flagged"])),
                "yes" if jv["control_flagged"] else "NO")]
    for tool in (picklescan, modelscan):
        if tool.argv is None:
            rows.append([f"{tool.name} (skipped: {tool.skipped})", "-", "-", "-", "-", "-", "-", "-"])
            continue
        tr = tool_results[tool.name]
        rows.append(row(f"{tool.name} {tool.version}", tool.name, str(tr["rc"]), f"0 / {n_planted} (not its question)",
                        str(len(tr["ordinary_flagged"])), "yes" if tr["control_flagged"] else "NO"))
    print()
    print(f"best of {args.repeat}, warm page cache, {total / MiB:,.1f} MiB in {len(files)} files")
    print_table(rows, ["tool", "seconds", "MiB/s", "vs baseline", "exit", "models identified / planted",
                       "ordinary flagged", "code-exec control flagged"])

    per_model = []
    for rel, member, rule in planted:
        ident = tool_ident(rel, member)
        shown = f"{rel}{MEMBER_SEPARATOR + member if member else ''}"
        per_model.append({
            "model": shown, "expected_rule": rule,
            "jieyao": ", ".join(jv["per_model"][shown]) or "MISSED",
            "picklescan": picklescan_verdict(ps_per, ident) if picklescan.argv else "skipped",
            "modelscan": modelscan_said(ms_per, ident) if modelscan.argv else "skipped",
        })
    print()
    print("what each tool said about each planted face-swap model")
    print_table([[m["model"], m["jieyao"], m["picklescan"], m["modelscan"]] for m in per_model],
                ["planted model", "jieyao", "picklescan", "modelscan"])

    print(f"\njieyao: {jv['files_with_model_findings']} of {len(files)} files have a model finding; "
          f"{jv['named']} of {n_planted} planted models named (top-level files and zip members), "
          f"{len(jv['ordinary_flagged'])} of {comp['ordinary']['files']} ordinary files flagged as a model")
    if jv["missed"] or jv["ordinary_flagged"] or jv["unexpected"]:
        print(f"\n!! jieyao missed {jv['missed']}, flagged ordinary {jv['ordinary_flagged']}, "
              f"unexpected model findings {jv['unexpected']}")
    by_folder = time_by_folder(last["jieyao"], root)
    slowest = sorted(last["jieyao"].targets, key=lambda t: -t.seconds)[:5]
    print("\njieyao seconds by folder: " + ", ".join(f"{k} {v:.2f}" for k, v in by_folder.items()))
    print("jieyao slowest targets: " + ", ".join(f"{os.path.relpath(t.path, root)} ({(t.size or 0) / MiB:.0f} MiB) "
                                                 f"{t.seconds:.2f} s" for t in slowest))
    if jv["ordinary_not_pass"]:
        print(f"note: ordinary files jieyao did not pass (non-model findings): {jv['ordinary_not_pass']}")
    print()
    print(f"big ONNX ({big['size'] / MiB:,.1f} MiB, {big['initializers']} initializers, {big['nodes']} nodes): "
          f"read_onnx read {big['bytes_read']:,} bytes = {big['bytes_read_pct']}% of the file (goal < 1%) in "
          f"{big['read_onnx_s'] * 1000:.1f} ms; read + SHA-256 of the file {big['read_sha256_s'] * 1000:.0f} ms; "
          f"scan_paths of the file {big['scan_paths_s'] * 1000:.0f} ms ({big['scan_paths_vs_sha256']}x the hash, "
          f"rule {big['scan_paths_rule']}): a full scan's cost is the SHA-256 it computes for the hash lists")

    ok = (not jv["missed"] and not jv["ordinary_flagged"] and not jv["unexpected"] and jv["control_flagged"]
          and big["goal_met"])
    results = {
        "tool": "model_identification/1", "ok": ok, "seed": args.seed, "count": args.count, "repeat": args.repeat,
        "jieyao": {"version": jieyao.__version__, **source_info()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "tools": {t.name: {"version": t.version, "skipped": t.skipped} for t in (picklescan, modelscan)},
        "install_notes": notes,
        "corpus": {"files": len(files), "bytes": total, "build_s": round(build_s, 2), "composition": comp,
                   "planted_models": n_planted, "list": [asdict(f) for f in corpus.files]},
        "seconds": {k: {"best": round(v, 4), "runs": [round(x, 4) for x in runs[k]],
                        "mib_per_s": round(total / MiB / v, 1), "vs_baseline": round(v / best["baseline"], 3)}
                    for k, v in best.items()},
        "jieyao_seconds_by_folder": by_folder,
        "jieyao_slowest": [{"path": os.path.relpath(t.path, root), "size": t.size, "seconds": round(t.seconds, 4)}
                           for t in slowest],
        "jieyao_verdict": jv, "tool_results": tool_results, "per_model": per_model, "big_onnx": big,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {out / 'results.json'}" + ("" if args.keep else " (corpus deleted; --keep to keep it)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
