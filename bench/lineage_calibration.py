#!/usr/bin/env python3
"""Lineage calibration (issue 10): freeze the descendant thresholds on dev seeds, then measure detection and false
descendants on fresh seeds, through the whole static path (writer -> `read_tensors_bytes` -> `fingerprint` ->
`compare`).

Models are the tiny DFL-shaped autoencoders of `lineage_models.py`, trained here in numpy from seeds (nothing
downloaded, nothing loaded or run; every file is written by code and read back with jieyao's static readers).

1. DEV (seeds 0..15 by default): pairwise null over all unrelated pairs (per-tensor cosines of the greedy
   same-shape pairing `compare` makes), and descendant cosines by fine-tune length x learning rate for a few
   dev bases. Thresholds are chosen from these alone: min_cosine = max(0.35, 2 x the largest null tensor
   cosine, rounded up to 0.05) (the lineage.md §4.3 bar "max null cosine < tau/2"); min_tensors = 3;
   min_coverage = 0.25 unless a dev null pair reaches it.
2. TEST (fresh seeds 100..147 by default: 48 models, 1,128 unrelated pairs): false descendants over all pairs at
   the frozen thresholds, with the 95 % upper bound on the false-descendant rate (Clopper-Pearson; 3/n when
   zero); detection rate by fine-tune length x lr x transform (fp32/fp16 DFL pickle, renamed+shuffled OIHW
   safetensors, renamed+shuffled fp16 ONNX Gemm, int8 QDQ ONNX MatMul); the transformed children are also
   compared with every *other* fresh base (a second, transformed null).
3. BANK: the fresh bases in a `LineageBank` (the common-tensor table maintained on add): common tensors and
   lineage pairs among unrelated models (expected 0 and 0), the transformed children searched through the bank
   (expected: the same verdicts as pairwise `compare`), then one tensor of base 100 copied into three other
   bases' re-registrations: it becomes common, and the copied-tensor limit cases are re-checked through the bank.
4. LIMITS: a function-preserving hidden-unit permutation of a parent (expected: not detected), the same init
   seed trained on different data (reported), one tensor copied into an unrelated model (expected: not a
   descendant), int8 safetensors with no scale.

    .venv/bin/python bench/lineage_calibration.py [--quick] [--json OUT.json]

`--quick` is a smoke run (< 60 s); the default run takes a few minutes on one core.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny matrices: threads only fight each other
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import lineage_models as lm
from jieyao.lineage.bank import LineageBank
from jieyao.lineage.fingerprint import ModelPrint, Thresholds, compare, fingerprint, fingerprint_arrays
from jieyao.lineage.tensors import read_tensors_bytes

ALL = Thresholds(min_cosine=-2.0, min_tensors=1, min_coverage=0.0)
"""Pair every same-shape tensor (no cut) to see the raw cosine distributions."""


# --- statistics -----------------------------------------------------------------------------------------

def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    return min(1.0, sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp
                                 + (n - i) * lq) for i in range(k + 1)))


def upper_95(k: int, n: int) -> float:
    """One-sided 95 % Clopper-Pearson upper bound on a rate with k events in n trials (k=0: 1-0.05^(1/n) ≈ 3/n)."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _binom_cdf(k, n, mid) > 0.05:
            lo = mid
        else:
            hi = mid
    return hi


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# --- helpers ---------------------------------------------------------------------------------------------

def print_of(params: Mapping[str, np.ndarray]) -> ModelPrint:
    """Fingerprint of a model's fp32 DFL-layout arrays, in memory."""
    return fingerprint_arrays(lm.dfl_weights(params), lm.dfl_layouts())


def print_file(name: str, data: bytes) -> ModelPrint:
    report = read_tensors_bytes(name, data)
    if report.error:
        raise RuntimeError(f"read_tensors_bytes({name}) failed: {report.error}")
    return fingerprint(report)


def tensor_cosines(child: ModelPrint, ref: ModelPrint) -> list[float]:
    return [m.cosine for m in compare(child, ref, ALL).matches]


def q(values: Sequence[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p * (len(s) - 1))))] if s else float("nan")


def table(rows: Iterable[Sequence[Any]], head: Sequence[str]) -> str:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def null_stats(prints: Sequence[ModelPrint], th: Thresholds) -> dict[str, Any]:
    cos: list[float] = []
    pair_max: list[float] = []
    best_cov, best_m, false_desc = 0.0, 0, []
    pairs = 0
    for i, j in itertools.combinations(range(len(prints)), 2):
        pairs += 1
        for a, b in ((i, j), (j, i)):  # compare is not symmetric in coverage; a pair is false if either way is
            cs = tensor_cosines(prints[a], prints[b])
            if a == i:
                cos += cs
                pair_max.append(max(cs))
            lin = compare(prints[a], prints[b], th)
            best_m = max(best_m, len(lin.matches))
            best_cov = max(best_cov, lin.coverage)
            if lin.descendant:
                false_desc.append((a, b, lin.why))
    false_pairs = len({(min(a, b), max(a, b)) for a, b, _ in false_desc})
    return {"pairs": pairs, "tensor_pairs": len(cos), "mean": statistics.fmean(cos), "sd": statistics.pstdev(cos),
            "max_abs": max(abs(c) for c in cos), "max": max(cos), "p99": q(cos, 0.99),
            "pair_max_median": statistics.median(pair_max), "best_matches": best_m, "best_coverage": best_cov,
            "false_pairs": false_pairs, "false_examples": false_desc[:3]}


# --- the bank and its common-tensor table ----------------------------------------------------------------

def bank_section(fresh: Sequence[Any], prints: Sequence[ModelPrint], children: Sequence[tuple[int, ModelPrint, bool]],
                 th: Thresholds) -> dict[str, Any]:
    t = time.perf_counter()
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, LineageBank.open(Path(tmp) / "lineage.sqlite") as bank:
        for i, p in enumerate(prints):
            bank.add("calibration", f"base{100 + i}", p)
        rep = bank.recount()  # the same table as the adds built (tests check that); here for its counts
        res["unrelated"] = {"models": rep.models, "lineage_pairs": rep.related_pairs,
                            "shared_links": rep.shared_links, "common_tensors": rep.common_tensors}
        agree = same_top = 0
        for b, child, pairwise in children:
            hits = bank.search(child, top=3, thresholds=th)
            got = bool(hits) and hits[0].lineage.descendant
            agree += got == pairwise
            same_top += (not got) or hits[0].name == f"base{100 + b}"
        res["children"] = {"searched": len(children), "agree_with_compare": agree, "right_reference": same_top}
        # a copied constant: base 100's inter/dense1 pasted into three other bases, registered as resales
        copies = []
        for k in (1, 2, 3):
            params = {n: v.copy() for n, v in fresh[k].params.items()}
            params["inter/dense1/W"] = fresh[0].params["inter/dense1/W"].copy()
            copies.append(params)
            bank.add("calibration", f"copy{k}", print_of(params))
        common = bank.common_tensors()
        res["copied"] = {"common_tensors": [(c.model, c.tensor, c.models) for c in common]}
        two = {n: v.copy() for n, v in fresh[4].params.items()}
        for n in ("inter/dense1/W", "inter/dense2/W"):
            two[n] = fresh[0].params[n].copy()
        hits = bank.search(print_of(two), top=3, thresholds=th)
        h0 = next((h for h in hits if h.name == "base100"), None)
        res["copied"]["two_copied_vs_base100"] = (h0.lineage.descendant, h0.lineage.why) if h0 else None
        again = sum(bool(hs) and hs[0].lineage.descendant and hs[0].name == f"base{100 + b}"
                    for b, child, _ in children for hs in [bank.search(child, top=1, thresholds=th)] if b == 0)
        res["copied"]["base100_children_detected"] = [again, sum(1 for b, _, _ in children if b == 0)]
        res["copied"]["base100_children_detected_pairwise"] = sum(d for b, _, d in children if b == 0)
    res["seconds"] = round(time.perf_counter() - t, 1)
    u, c, cp = res["unrelated"], res["children"], res["copied"]
    print(f"## BANK: the {u['models']} fresh bases in a LineageBank ({res['seconds']} s)")
    print(table([["unrelated fresh bases", u["lineage_pairs"], u["shared_links"], u["common_tensors"]]],
                ["bank", "lineage pairs", "shared links", "common tensors"]))
    print(f"transformed children through LineageBank.search: {c['agree_with_compare']}/{c['searched']} verdicts as "
          f"pairwise compare, {c['right_reference']}/{c['searched']} with the right (or no) top reference")
    print(f"base 100's inter/dense1 copied into 3 other bases (registered as their resales): common tensors "
          f"{[f'{m}:{n} ({k})' for m, n, k in cp['common_tensors']]}")
    print(f"  unrelated model + two tensors copied from base 100, via the bank: {cp['two_copied_vs_base100']}")
    print(f"  base 100's children still detected: {cp['base100_children_detected'][0]}/"
          f"{cp['base100_children_detected'][1]} (pairwise compare, no common table: "
          f"{cp['base100_children_detected_pairwise']})\n")
    return res


# --- the run ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (< 60 s)")
    ap.add_argument("--dev", type=int, default=None, help="dev seeds 0..N-1 (default 16; quick 6)")
    ap.add_argument("--fresh", type=int, default=None, help="fresh seeds 100..100+N-1 (default 48; quick 8)")
    ap.add_argument("--ft-bases", type=int, default=None, help="bases fine-tuned per split (default dev 3, test 5)")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    args = ap.parse_args(argv)
    n_dev = args.dev or (6 if args.quick else 16)
    n_fresh = args.fresh or (8 if args.quick else 48)
    ft_dev = args.ft_bases or (1 if args.quick else 3)
    ft_test = args.ft_bases or (1 if args.quick else 5)
    fractions = (0.1, 0.3, 1.0, 3.0)
    lr_mults = (1.0, 3.0, 10.0)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"pretrain_steps": lm.PRETRAIN_STEPS, "base_lr": lm.BASE_LR, "fractions": fractions,
                           "lr_mults": lr_mults}

    # ---------------- DEV ----------------
    t = time.perf_counter()
    dev = [lm.pretrain(s) for s in range(n_dev)]
    dev_prints = [print_of(m.params) for m in dev]
    train_s = (time.perf_counter() - t) / n_dev
    print(f"# lineage calibration  (pretrain {lm.PRETRAIN_STEPS} Adam steps at lr {lm.BASE_LR}, "
          f"{train_s:.2f} s per model; {dev_prints[0].total_params} fingerprinted params in "
          f"{len(dev_prints[0].tensors)} tensors; {len(dev_prints[0].skipped)} vectors skipped)\n")
    dev_null = null_stats(dev_prints, Thresholds())
    ft_cos: dict[tuple[float, float], list[float]] = {}
    ft_min: dict[tuple[float, float], list[float]] = {}
    ft_q: dict[tuple[float, float], list[tuple[float, float]]] = {}
    for b in range(ft_dev):
        for key, params in lm.fine_tunes(dev[b], fractions=fractions, lr_mults=lr_mults).items():
            cs = tensor_cosines(print_of(params), dev_prints[b])
            ft_cos.setdefault(key, []).extend(cs)
            ft_min.setdefault(key, []).append(min(cs))
            qb, qc = lm.quality(dev[b].params), lm.quality(params)
            ft_q.setdefault(key, []).append((qc[0] / qb[0], qc[1] / qb[1]))
    print(f"## DEV: seeds 0-{n_dev - 1}: {dev_null['pairs']} unrelated pairs ({dev_null['tensor_pairs']} "
          f"same-shape tensor pairings)")
    print(table([["unrelated (same data, same recipe)", f"{dev_null['mean']:+.4f}", f"{dev_null['sd']:.4f}",
                  f"{dev_null['p99']:+.3f}", f"{dev_null['max']:+.3f}", f"{dev_null['max_abs']:.3f}"]],
                ["dev null: tensor sketch cosine", "mean", "sd", "p99", "max", "max |cos|"]))
    print(f"(theory under the null: sd ≈ 1/√K = {1 / math.sqrt(1024):.4f}; greedy best-of-several pairing "
          f"biases the mean up)\n")
    rows = []
    for (f, lmul), cs in sorted(ft_cos.items()):
        rows.append([f"{f:g}x", f"{lmul:g}x", f"{min(cs):.3f}", f"{statistics.median(cs):.3f}", f"{max(cs):.3f}",
                     f"{min(ft_min[(f, lmul)]):.3f}", f"{statistics.median(r[0] for r in ft_q[(f, lmul)]):.2f}",
                     f"{statistics.median(r[1] for r in ft_q[(f, lmul)]):.2f}"])
    print(f"dev descendants ({ft_dev} bases fine-tuned on a different blob distribution; tensor cosines to the base):")
    print(table(rows, ["steps", "lr", "min", "median", "max", "worst model's min", "MSE pre / base",
                       "MSE new / base"]))
    print("(MSE ratios: the child's reconstruction error on the pretraining / fine-tuning distribution over the "
          "base's; a ratio >> 1 on both means training diverged and the model is broken, not fine-tuned)")

    tau = max(0.35, math.ceil(2 * max(dev_null["max"], 0.0) / 0.05) * 0.05)
    min_cov = 0.25
    if dev_null["best_coverage"] >= min_cov and dev_null["best_matches"] >= 3:
        min_cov = math.ceil(dev_null["best_coverage"] * 1.5 / 0.05) * 0.05
    frozen = Thresholds(min_cosine=round(tau, 2), min_tensors=3, min_coverage=min_cov)
    dev_check = null_stats(dev_prints, frozen)
    print(f"\nFROZEN on dev: min_cosine={frozen.min_cosine}, min_tensors={frozen.min_tensors}, "
          f"min_coverage={frozen.min_coverage}  (largest dev null tensor cosine {dev_null['max']:.3f} = "
          f"{dev_null['max'] / frozen.min_cosine:.2f} x tau; dev false descendants: {dev_check['false_pairs']})\n")
    out["dev"] = {"seeds": n_dev, "null": dev_null, "descendants": {f"{k[0]}x@{k[1]}x": v for k, v in ft_cos.items()},
                  "frozen": frozen.__dict__}

    # ---------------- TEST ----------------
    t = time.perf_counter()
    fresh_seeds = list(range(100, 100 + n_fresh))
    fresh = [lm.pretrain(s) for s in fresh_seeds]
    # the bank side as a real bank would hold it: the base read back from its DFL pickle
    fresh_prints = [print_file("model_SAEHD.npy", lm.dfl_pickle_bytes(lm.dfl_weights(m.params))) for m in fresh]
    test_null = null_stats(fresh_prints, frozen)
    n_pairs = test_null["pairs"]
    print(f"## TEST: fresh seeds {fresh_seeds[0]}-{fresh_seeds[-1]} ({n_fresh} models, {n_pairs} unrelated pairs, "
          f"both directions compared), thresholds frozen")
    print(table([["unrelated, fp32 DFL pickle", n_pairs, f"{test_null['sd']:.4f}", f"{test_null['max']:+.3f}",
                  test_null["best_matches"], f"{test_null['best_coverage']:.2f}", test_null["false_pairs"],
                  f"{upper_95(test_null['false_pairs'], n_pairs) * 100:.2f} %"]],
                ["null", "pairs", "tensor cos sd", "max tensor cos", "max matched tensors", "max coverage",
                 "false descendants", "95 % upper bound"]))
    variant_names = [k for k in lm.variants(lm.dfl_weights(fresh[0].params)) if "int8" not in k or "qdq" in k]
    det: dict[tuple[float, float, str], list[bool]] = {}
    det_cos: dict[tuple[float, float], list[float]] = {}
    cross_false, cross_n, cross_max = 0, 0, -1.0
    det_q: dict[tuple[float, float], list[tuple[float, float]]] = {}
    children: list[tuple[int, ModelPrint, bool]] = []
    for b in range(ft_test):
        others = [p for i, p in enumerate(fresh_prints) if i != b]
        for (f, lmul), params in lm.fine_tunes(fresh[b], fractions=fractions, lr_mults=lr_mults).items():
            vs = lm.variants(lm.dfl_weights(params), seed=b * 100 + int(f * 10) + int(lmul))
            for vname in variant_names:
                fname, data = vs[vname]
                child = print_file(fname, data)
                lin = compare(child, fresh_prints[b], frozen)
                det.setdefault((f, lmul, vname), []).append(lin.descendant)
                children.append((b, child, lin.descendant))
                if vname == variant_names[0]:
                    det_cos.setdefault((f, lmul), []).extend(tensor_cosines(child, fresh_prints[b]))
                    qb, qc = lm.quality(fresh[b].params), lm.quality(params)
                    det_q.setdefault((f, lmul), []).append((qc[0] / qb[0], qc[1] / qb[1]))
                for o in others:
                    cross_n += 1
                    lo = compare(child, o, frozen)
                    cross_false += lo.descendant
                    if lo.matches:
                        cross_max = max(cross_max, max(m.cosine for m in lo.matches))
    short = {v: v.split(" ", 1)[0] + " " + v.split(" ", 1)[1][:14] for v in variant_names}
    rows = []
    for f in fractions:
        for lmul in lr_mults:
            cs = det_cos[(f, lmul)]
            cells = [f"{f:g}x", f"{lmul:g}x", f"{min(cs):.2f}-{statistics.median(cs):.2f}-{max(cs):.2f}",
                     f"{statistics.median(r[0] for r in det_q[(f, lmul)]):.2f}",
                     f"{statistics.median(r[1] for r in det_q[(f, lmul)]):.2f}"]
            for v in variant_names:
                hits = det[(f, lmul, v)]
                cells.append(f"{sum(hits)}/{len(hits)}")
            rows.append(cells)
    print(f"\ndetection by fine-tune length x lr x transform ({ft_test} fresh bases; cos = min-median-max tensor "
          f"cosine, fp32 pickle):")
    print(table(rows, ["steps", "lr", "cos", "MSE pre/base", "MSE new/base", *[short[v] for v in variant_names]]))
    allv = [h for hs in det.values() for h in hs]
    within = [h for (f, lmul, _), hs in det.items() if f <= 1.0 and lmul == 1.0 for h in hs]
    lo_w, hi_w = wilson(sum(within), len(within))
    print(f"overall {sum(allv)}/{len(allv)}; at <= 1x steps and 1x lr: {sum(within)}/{len(within)} "
          f"(95 % Wilson {lo_w:.2f}-{hi_w:.2f})")
    print(f"transformed children vs every other fresh base: {cross_false} false descendants in {cross_n} comparisons "
          f"(95 % upper bound {upper_95(cross_false, cross_n) * 100:.2f} %; "
          + (f"max matched cosine {cross_max:.3f})\n" if cross_max > -1 else "no tensor reached min_cosine)\n"))
    out["test"] = {"seeds": fresh_seeds, "null": test_null, "false_rate_upper_95": upper_95(test_null["false_pairs"],
                                                                                            n_pairs),
                   "detection": {f"{k[0]}x@{k[1]}x {k[2]}": [sum(v), len(v)] for k, v in det.items()},
                   "cross_null": [cross_false, cross_n, cross_max]}

    out["bank"] = bank_section(fresh, fresh_prints, children, frozen)

    # ---------------- LIMITS ----------------
    base, bprint = fresh[0], fresh_prints[0]
    limits: list[list[Any]] = []
    perm = lm.permute_hidden(base.params, seed=1)
    x = lm.BlobData(lm.DataSpec(0), stream=5).batch(64)
    same = max(float(np.abs(lm.forward(perm, x, d) - lm.forward(base.params, x, d)).max()) for d in ("src", "dst"))
    lin = compare(print_of(perm), bprint, frozen)
    limits.append(["hidden-unit permutation of the parent (function-preserving, max |dy| "
                 f"{same:.1e})", "not detected", lin.descendant, lin.why])
    twin = lm.pretrain(fresh_seeds[0] + 5000, data_seed=900, init_seed=fresh_seeds[0])
    lin = compare(print_of(twin.params), bprint, frozen)
    limits.append(["same init seed, different data (full pretraining)", "report", lin.descendant, lin.why])
    untrained = lm.init_params(fresh_seeds[0])
    lin = compare(print_of(untrained), bprint, frozen)
    limits.append(["the parent's untrained init", "report", lin.descendant, lin.why])
    copied = {k: v.copy() for k, v in fresh[1].params.items()}
    copied["inter/dense1/W"] = base.params["inter/dense1/W"].copy()
    lin = compare(print_of(copied), bprint, frozen)
    limits.append(["unrelated model + one copied tensor (inter/dense1)", "not a descendant", lin.descendant, lin.why])
    copied2 = {k: v.copy() for k, v in copied.items()}
    copied2["inter/dense2/W"] = base.params["inter/dense2/W"].copy()
    lin = compare(print_of(copied2), bprint, frozen)
    limits.append(["unrelated model + two copied tensors (inter)", "not a descendant", lin.descendant, lin.why])
    ft3 = lm.fine_tunes(base, fractions=(0.3,), lr_mults=(1.0,))[(0.3, 1.0)]
    w8 = {k: (lm.quantise_int8(v)[0] if v.ndim >= 2 else v) for k, v in lm.dfl_weights(ft3).items()}
    lin = compare(print_file("model.safetensors", lm.safetensors_bytes(w8)), bprint, frozen)
    limits.append(["0.3x child as int8 safetensors with no scale tensor", "report", lin.descendant, lin.why])
    print("## LIMITS (fresh base 100)")
    print(table(limits, ["case", "expected", "descendant", "evidence"]))
    out["limits"] = limits
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\ntotal {out['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
