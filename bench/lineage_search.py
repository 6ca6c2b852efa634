#!/usr/bin/env python3
"""Lineage cost (issue 10): fingerprint throughput and lineage-bank search latency, each against a baseline
measured in the same run.

1. Fingerprint throughput: `jieyao.lineage.fingerprint.fingerprint` over one synthetic tensor (float32 and
   float16, a few sizes), in weight elements per second on one core; first call (the count-sketch table for a
   new element count is built) and warm (table cached). Baselines on the same bytes: SHA-256, and np.dot of the
   float32 values with a fixed vector (one pass of arithmetic over every weight).
2. Bank search: a `LineageBank` (SQLite in a temp dir) of N reference models (default 5,000) with synthetic
   prints: random unit sketches with their SimHash codes, 12 tensors each, canonical shapes drawn per
   "architecture family" from a shared pool (so families collide on some shapes, as real ones do). Planted:
   reference #K and a synthetic descendant of it (each tensor at cosine ~0.6), plus a real trained base from
   `lineage_models.py` and its 1x fine-tune. Each query is timed through `LineageBank.search` and through a
   brute-force numpy cosine over all same-shape bank tensors held in memory (same verdict rule); the two
   top-1 answers must agree. The bank's build time ("add") includes, per add, the search of the new model
   against the bank that keeps the common-tensor table (lineage.md §3.4).

    .venv/bin/python bench/lineage_search.py [--models 5000] [--quick] [--json OUT.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import lineage_models as lm
from jieyao.lineage import fingerprint as fp
from jieyao.lineage.bank import LineageBank
from jieyao.lineage.tensors import TensorData, TensorReport


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(head)]
    line = lambda cs: "| " + " | ".join(c.ljust(w) for c, w in zip(cs, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def _dot(data: bytes, dtype: str, vec: np.ndarray) -> float:
    return float(np.dot(np.frombuffer(data, dtype=dtype).astype(np.float32), vec))


def _collect(into: list[Any], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    into.append(fn(*args, **kwargs))


# --- 1. throughput --------------------------------------------------------------------------------------

def throughput(sizes: Sequence[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        o = 256
        shape = (o, n // (o * 9), 3, 3)
        count = int(np.prod(shape))
        w32 = rng.standard_normal(count).astype(np.float32)
        vec = rng.standard_normal(count).astype(np.float32)
        for dtype in ("float32", "float16"):
            data = w32.astype(dtype).tobytes()
            report = TensorReport(format="safetensors", tensors=[TensorData(
                name="w", dtype=dtype, shape=shape, layout="oihw", data=data, source="safetensors")], skipped=[])
            fp._tables.clear()  # a cold table: what the first tensor of a new size costs
            fp._tables_bytes = 0
            t = time.perf_counter()
            mp = fp.fingerprint(report)
            cold = time.perf_counter() - t
            assert len(mp.tensors) == 1, mp.skipped
            warm = best_of(partial(fp.fingerprint, report), repeat)
            sha = best_of(partial(hashlib.sha256, data), repeat)
            dot = best_of(partial(_dot, data, dtype, vec), repeat)
            rows.append({"elements": count, "dtype": dtype, "MB": len(data) / 1e6, "cold_s": cold, "warm_s": warm,
                         "warm_Melem_s": count / warm / 1e6, "cold_Melem_s": count / cold / 1e6,
                         "sha256_Melem_s": count / sha / 1e6, "dot_Melem_s": count / dot / 1e6})
    return rows


# --- 2. bank search -------------------------------------------------------------------------------------

def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _tp(name: str, shape: tuple[int, ...], sketch: np.ndarray) -> fp.TensorPrint:
    return fp.TensorPrint(name=name, shape=shape, params=int(np.prod(shape)), sketch=sketch, code=fp.simhash(sketch))


def synthetic_bank(n_models: int, tensors: int, families: int, seed: int = 0) -> list[fp.ModelPrint]:
    rng = np.random.default_rng(seed)
    chans = [3, 32, 64, 96, 128, 192, 256, 384, 512]
    pool: list[tuple[int, ...]] = []
    while len(pool) < 40:
        o, i = (int(c) for c in rng.choice(chans, 2))
        k = int(rng.choice([1, 3, 5]))
        s = (o, i, k, k) if rng.random() < 0.8 else (o * 4, i * 4)
        if int(np.prod(s)) >= fp.MIN_ELEMENTS and s not in pool:
            pool.append(s)
    fams = [[pool[j] for j in rng.choice(len(pool), tensors, replace=False)] for _ in range(families)]
    models = []
    for m in range(n_models):
        shapes = fams[m % families]
        sk = _unit_rows(rng.standard_normal((tensors, fp.SKETCH_DIM)))
        ts = tuple(_tp(f"m{m}/t{j}", s, sk[j]) for j, s in enumerate(shapes))
        models.append(fp.ModelPrint(tensors=ts, total_params=sum(t.params for t in ts), format="synthetic", skipped=()))
    return models


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def descendant_of(ref: fp.ModelPrint, cosine: float, seed: int) -> fp.ModelPrint:
    """Each tensor's sketch moved to `cosine` of the reference's (plus fresh noise), names changed, order reversed."""
    rng = np.random.default_rng([seed, 55])
    ts = []
    for j, t in enumerate(reversed(ref.tensors)):
        noise = rng.standard_normal(fp.SKETCH_DIM)
        noise -= noise.dot(t.sketch) * t.sketch
        noise = _unit(noise)
        ts.append(_tp(f"child{j}", t.shape, _unit(cosine * t.sketch + np.sqrt(1 - cosine ** 2) * noise)))
    return fp.ModelPrint(tensors=tuple(ts), total_params=ref.total_params, format="synthetic", skipped=())


class BruteForce:
    """All bank sketches in memory by shape key; the verdict rule of lineage.md §3.4 with one-to-one greedy
    pairing (as `compare` does)."""

    def __init__(self, models: Sequence[tuple[str, fp.ModelPrint]]) -> None:
        self.names = [n for n, _ in models]
        self.total = np.array([m.total_params for _, m in models], dtype=np.float64)
        by: dict[tuple[int, ...], list[tuple[int, int, np.ndarray]]] = {}
        for mi, (_, m) in enumerate(models):
            for ti, t in enumerate(m.tensors):
                by.setdefault(t.shape, []).append((mi, ti, t.sketch))
        self.keys = {k: (np.array([a for a, _, _ in v]), np.array([b for _, b, _ in v]),
                         np.stack([s for _, _, s in v]).astype(np.float32)) for k, v in by.items()}
        self.params = {(mi, ti): t.params for mi, (_, m) in enumerate(models) for ti, t in enumerate(m.tensors)}

    def search(self, child: fp.ModelPrint, th: fp.Thresholds) -> list[tuple[str, bool, float, int]]:
        cand: dict[int, list[tuple[float, int, int]]] = {}
        for cj, t in enumerate(child.tensors):
            entry = self.keys.get(t.shape)
            if entry is None:
                continue
            mids, tids, mat = entry
            cos = mat @ np.asarray(t.sketch, dtype=np.float32)
            for k in np.nonzero(cos >= th.min_cosine)[0]:
                cand.setdefault(int(mids[k]), []).append((float(cos[k]), int(tids[k]), cj))
        out = []
        for mi, pairs in cand.items():
            pairs.sort(reverse=True)
            used_r: set[int] = set()
            used_c: set[int] = set()
            covered, m = 0, 0
            for _c, ti, cj in pairs:
                if ti in used_r or cj in used_c:
                    continue
                used_r.add(ti)
                used_c.add(cj)
                covered += self.params[(mi, ti)]
                m += 1
            coverage = covered / self.total[mi]
            out.append((self.names[mi], m >= th.min_tensors and coverage >= th.min_coverage, coverage, m))
        out.sort(key=lambda r: (not r[1], -r[2], r[0]))
        return out


def bank_bench(n_models: int, tensors: int, families: int, repeat: int) -> dict[str, Any]:
    th = fp.Thresholds()
    t = time.perf_counter()
    models = synthetic_bank(n_models, tensors, families)
    gen_s = time.perf_counter() - t
    base = lm.pretrain(7)
    child_params = lm.fine_tunes(base, fractions=(1.0,), lr_mults=(1.0,))[(1.0, 1.0)]
    real_base = fp.fingerprint_arrays(lm.dfl_weights(base.params), lm.dfl_layouts())
    real_child = fp.fingerprint_arrays(lm.to_torch_layout(lm.dfl_weights(child_params)))  # OIHW, layouts unknown
    named = [(f"ref{m:05d}", p) for m, p in enumerate(models)] + [("real-base", real_base)]
    planted = n_models // 2
    queries = {
        "synthetic descendant (cos 0.6) of ref": (descendant_of(models[planted], 0.6, 1), f"ref{planted:05d}"),
        "real 1x fine-tune, OIHW, unknown 2-D": (real_child, "real-base"),
        "unrelated (random sketches, same shapes)": (descendant_of(models[planted + 1], 0.0, 2), None),
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "lineage.sqlite"
        t = time.perf_counter()
        with LineageBank.open(str(db)) as bank:
            for name, p in named:
                bank.add("bench", name, p)
        add_s = time.perf_counter() - t
        size = db.stat().st_size
        t = time.perf_counter()
        brute = BruteForce(named)
        brute_load_s = time.perf_counter() - t
        rows = []
        with LineageBank.open(str(db), create=False) as bank:
            for label, (query, expect) in queries.items():
                hits: list[Any] = []
                bank_s = best_of(partial(_collect, hits, bank.search, query, top=5, thresholds=th), repeat)
                got = hits[-1]
                res: list[Any] = []
                brute_s = best_of(partial(_collect, res, brute.search, query, th), repeat)
                b_top = res[-1][0][0] if res[-1] and res[-1][0][1] else None
                s_top = got[0].name if got and got[0].lineage.descendant else None
                rows.append({"query": label, "expected": expect, "bank_top": s_top, "brute_top": b_top,
                             "agree": s_top == b_top, "correct": s_top == expect, "bank_ms": bank_s * 1e3,
                             "brute_ms": brute_s * 1e3, "bank_hits": len(got),
                             "bank_why": got[0].lineage.why if got else ""})
    return {"models": len(named), "tensors_per_model": tensors, "families": families, "generate_s": gen_s,
            "add_s": add_s, "db_MB": size / 1e6, "brute_load_s": brute_load_s, "queries": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=None, help="bank size (default 5000; quick 500)")
    ap.add_argument("--tensors", type=int, default=12, help="tensors per synthetic reference")
    ap.add_argument("--families", type=int, default=10, help="architecture families in the synthetic bank")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = (1 << 16, 1 << 20) if args.quick else (1 << 16, 1 << 20, 1 << 22, 1 << 24)
    repeat = 2 if args.quick else 3
    n_models = args.models or (500 if args.quick else 5000)
    out: dict[str, Any] = {}
    rows = throughput(sizes, repeat)
    out["throughput"] = rows
    print("## fingerprint throughput, one core (M weight elements / s)")
    print(table([[f"{r['elements']:,}", r["dtype"], f"{r['MB']:.1f}", f"{r['cold_Melem_s']:.1f}",
                  f"{r['warm_Melem_s']:.1f}", f"{r['sha256_Melem_s']:.1f}", f"{r['dot_Melem_s']:.1f}",
                  f"{r['dot_Melem_s'] / r['warm_Melem_s']:.1f}x"] for r in rows],
                ["elements", "dtype", "MB", "fingerprint cold", "fingerprint warm", "SHA-256", "np.dot", "dot/fp"]))
    res = bank_bench(n_models, args.tensors, args.families, repeat)
    out["bank"] = res
    print(f"\n## bank search: {res['models']:,} references x {res['tensors_per_model']} tensors "
          f"({res['families']} architecture families); add {res['add_s']:.1f} s, SQLite {res['db_MB']:.0f} MB, "
          f"brute-force load {res['brute_load_s']:.2f} s")
    print(table([[q["query"], q["expected"], q["bank_top"], q["brute_top"], "yes" if q["agree"] else "NO",
                  f"{q['bank_ms']:.0f}", f"{q['brute_ms']:.2f}", q["bank_hits"]] for q in res["queries"]],
                ["query", "expected", "LineageBank.search top", "brute top", "agree", "search ms", "brute ms",
                 "hits"]))
    ms = [q["bank_ms"] for q in res["queries"]]
    print(f"median search {statistics.median(ms):.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    bad = [q for q in res["queries"] if not (q["agree"] and q["correct"])]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
