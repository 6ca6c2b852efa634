#!/usr/bin/env python3
"""PDQ index benchmark: lookup latency, build time and resident memory at 1M and 10M hashes, MIH against brute
force in the same run.

Why: issue 6 promises PDQ lookup (Hamming distance <= 31) under 5 ms a query on one thread and under 4 GB
resident at 10 million hashes (HMA's own target is 10M in < 8 GB), updated as banks change. This measures
`jieyao.banks.pdq_index.PdqIndex` (multi-index hashing, 16 chunks x 16 bits) against `FlatPdqIndex` (numpy
brute force, the baseline) and, when `faiss` is importable, FAISS IndexBinaryFlat / IndexBinaryMultiHash, which
is what HMA uses. Two data sets, generated from a fixed seed in chunks:

  * uniform: independent random 256-bit hashes (the hard case for MIH: every bucket equally full);
  * clustered: 70 % near-duplicates (0..40 bits flipped) of n/50 seeds whose family sizes are skewed (the
    largest ~16k members at 10M), 30 % uniform; real PDQ banks cluster like this.

Queries: half near-duplicates of stored hashes (0..40 bits flipped, so the 31/32 boundary is crossed), half
uniform random. Every MIH answer is checked against brute force. Also measured at the largest size: adding to
the delta, merging it, removing, compacting, a hot spot of 100k near-identical hashes, and save + mmap load.
Single thread (OMP/OPENBLAS/MKL set to 1; numpy's ufuncs are single-threaded anyway). Not a test; run by hand:

    .venv/bin/python bench/pdq_index.py [--sizes 1000000,10000000] [--queries 1000] [--out bench/out]

Figures go to OUT/pdq_index.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchlib import machine_info, source_info  # noqa: E402
from jieyao.banks.pdq_index import FlatPdqIndex, Hits, PdqIndex, Tuning  # noqa: E402

GEN_CHUNK = 1_000_000
MiB = 1 << 20


# ---- data ---------------------------------------------------------------------------------------------------

def flip_bits(rng: np.random.Generator, hashes: np.ndarray, max_bits: int, exact: bool = False) -> np.ndarray:
    """Flip 0..max_bits random bits of each hash: exactly that many with `exact` (slow, for queries), else up
    to that many (positions may repeat; fast, for 10M rows)."""
    n = len(hashes)
    k = rng.integers(0, max_bits + 1, n)
    mask = np.zeros((n, 256), bool)
    if exact:
        for i in range(n):
            mask[i, rng.choice(256, int(k[i]), replace=False)] = True
    else:
        pos = rng.integers(0, 256, (n, max_bits))
        use = np.arange(max_bits)[None, :] < k[:, None]
        mask[np.repeat(np.arange(n), max_bits)[use.ravel()], pos[use]] = True
    return hashes ^ np.packbits(mask, axis=1)


def uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, 32), np.uint8)
    for s in range(0, n, GEN_CHUNK):
        e = min(n, s + GEN_CHUNK)
        out[s:e] = rng.integers(0, 256, (e - s, 32), dtype=np.uint8)
    return out


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    seeds = rng.integers(0, 256, (max(1, n // 50), 32), dtype=np.uint8)
    out = np.empty((n, 32), np.uint8)
    for s in range(0, n, GEN_CHUNK):
        e = min(n, s + GEN_CHUNK)
        c = e - s
        family = np.minimum((len(seeds) * rng.random(c) ** 2).astype(np.int64), len(seeds) - 1)
        block = flip_bits(rng, seeds[family], 40)
        lone = rng.random(c) < 0.3
        block[lone] = rng.integers(0, 256, (int(lone.sum()), 32), dtype=np.uint8)
        out[s:e] = block
    return out


def queries(rng: np.random.Generator, stored: np.ndarray, count: int) -> np.ndarray:
    near = flip_bits(rng, stored[rng.integers(0, len(stored), count - count // 2)], 40, exact=True)
    far = rng.integers(0, 256, (count // 2, 32), dtype=np.uint8)
    q = np.concatenate([near, far])
    return q[rng.permutation(len(q))]


# ---- measuring ----------------------------------------------------------------------------------------------

def _status(field: str) -> int:
    """kB from /proc/self/status (VmRSS, VmHWM), or 0 where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def first_touch_ms_per_mib(mib: int = 256) -> float:
    """What fresh memory costs here: on some VMs the first write to a page is slow enough to dominate build
    and merge times (every new array is written once), so the figure goes next to them."""
    t0 = time.perf_counter()
    block = np.empty(mib * MiB, np.uint8)
    block.fill(1)
    spent = time.perf_counter() - t0
    del block
    return round(spent * 1e3 / mib, 3)


def build_measured(make: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    gc.collect()
    rss0 = _status("VmRSS")
    peak_ok = _reset_peak()
    t0 = time.perf_counter()
    index = make()
    build = time.perf_counter() - t0
    gc.collect()
    rss1 = _status("VmRSS")
    out = {"build_s": round(build, 3), "rss_delta_mib": round((rss1 - rss0) / 1024, 1)}
    if peak_ok:
        out["build_peak_extra_mib"] = round((_status("VmHWM") - rss0) / 1024, 1)
    return index, out


def latency(search: Callable[[np.ndarray], Any], qs: np.ndarray, warm: int = 5) -> tuple[dict[str, float], list[Any]]:
    for q in qs[:warm]:
        search(q)
    times, answers = [], []
    for q in qs:
        t0 = time.perf_counter()
        answers.append(search(q))
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"median_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "max_ms": round(float(ms.max()), 3), "mean_ms": round(float(ms.mean()), 3)}, answers


def same(a: list[Hits], b: list[Hits]) -> int:
    """How many queries got different answers."""
    return sum(x.pairs() != y.pairs() for x, y in zip(a, b, strict=True))


def faiss_runs(data: np.ndarray, qs: np.ndarray, radius: int, flat_answers: list[Hits]) -> dict[str, Any]:
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        return {"skipped": "faiss is not importable (not installed)"}
    faiss.omp_set_num_threads(1)
    out: dict[str, Any] = {}
    for name, make in (("faiss_flat", lambda: faiss.IndexBinaryFlat(256)),
                       ("faiss_multihash", lambda: faiss.IndexBinaryMultiHash(256, 16, 16))):
        def build(make: Callable[[], Any] = make, multihash: bool = name == "faiss_multihash") -> Any:
            index = make()
            index.add(data)
            if multihash:
                index.nflip = radius // 16  # as HMA sets it
            return index

        index, row = build_measured(build)
        stats, answers = latency(lambda q, index=index: index.range_search(q[None, :], radius + 1), qs)
        row.update(stats)
        row["mismatches_vs_flat"] = sum(sorted(ans[2].tolist()) != sorted(flat.ids.tolist())
                                        for ans, flat in zip(answers, flat_answers, strict=True))
        out[name] = row
        del index
        gc.collect()
    return out


def updates(index: PdqIndex, rng: np.random.Generator, tmp: Path, qs: np.ndarray, radius: int) -> dict[str, Any]:
    """Changes to a built index as a bank changes: add (delta), merge (insert without re-sorting), remove
    (tombstones), compact, and a save + mmap load that answers the same."""
    n = index.stats()["rows"]
    out: dict[str, Any] = {}
    batch = uniform(rng, 10_000)
    t0 = time.perf_counter()
    index.add(np.arange(n, n + len(batch)), batch)
    out["add_10k_to_delta_s"] = round(time.perf_counter() - t0, 4)
    out["query_with_10k_delta"], _ = latency(lambda q: index.search(q, radius), qs[:200])
    t0 = time.perf_counter()
    index.merge()
    out["merge_10k_s"] = round(time.perf_counter() - t0, 3)
    gone = rng.choice(n, 10_000, replace=False)
    t0 = time.perf_counter()
    index.remove(gone)
    out["remove_10k_s"] = round(time.perf_counter() - t0, 3)
    out["query_with_10k_removed"], _ = latency(lambda q: index.search(q, radius), qs[:200])
    t0 = time.perf_counter()
    index.compact()
    out["compact_10k_removed_s"] = round(time.perf_counter() - t0, 3)
    # A hot spot, as blank or near-blank images make in real banks: 100k hashes within 8 bits of one value.
    # Queries near it match most of them; the index must stay bounded (it scans instead of probing).
    hot = flip_bits(rng, np.zeros((100_000, 32), np.uint8), 8)
    index.add(np.arange(2 * n, 2 * n + len(hot)), hot)
    hot_qs = np.concatenate([flip_bits(rng, np.zeros((20, 32), np.uint8), 20, exact=True),
                             flip_bits(rng, np.zeros((20, 32), np.uint8), 40, exact=True)])
    out["hot_cluster_100k_query"], answers = latency(lambda q: index.search(q, radius), hot_qs)
    out["hot_cluster_100k_mean_hits"] = round(float(np.mean([len(a.ids) for a in answers])), 1)
    index.remove(np.arange(2 * n, 2 * n + len(hot)))
    before = [index.search(q, radius) for q in qs[:200]]
    t0 = time.perf_counter()
    index.save(tmp / "mih")
    out["save_s"] = round(time.perf_counter() - t0, 3)
    out["saved_mib"] = round(sum(f.stat().st_size for f in (tmp / "mih").iterdir()) / MiB, 1)
    for verify in (True, False):
        gc.collect()
        rss0, anon0 = _status("VmRSS"), _status("RssAnon")
        t0 = time.perf_counter()
        loaded = PdqIndex.load(tmp / "mih", mmap=True, verify=verify)
        key = "load_mmap_verified" if verify else "load_mmap_unverified"
        out[f"{key}_s"] = round(time.perf_counter() - t0, 3)
        stats, after = latency(lambda q, ix=loaded: ix.search(q, radius), qs[:200], warm=0)
        out[f"{key}_query"] = stats
        # Mapped pages count in RSS once touched, but they are page cache the kernel can drop; RssAnon is the
        # memory the index itself holds.
        out[f"{key}_rss_delta_mib"] = round((_status("VmRSS") - rss0) / 1024, 1)
        out[f"{key}_anon_delta_mib"] = round((_status("RssAnon") - anon0) / 1024, 1)
        out[f"{key}_mismatches"] = same(before, after)
        del loaded
    return out


def crossover(rng: np.random.Generator, qs_count: int, radius: int) -> list[dict[str, Any]]:
    """Where the tables start to beat a scan, to set Tuning.min_indexed."""
    rows = []
    forced = Tuning(min_indexed=0)
    for n in (1_000, 4_000, 16_000, 64_000, 256_000):
        data = uniform(rng, n)
        qs = queries(rng, data, qs_count)
        flat, mih = FlatPdqIndex(), PdqIndex(tuning=forced)
        flat.add(np.arange(n), data)
        mih.add(np.arange(n), data)
        f, _ = latency(lambda q, ix=flat: ix.search(q, radius), qs)
        m, _ = latency(lambda q, ix=mih: ix.search(q, radius), qs)
        rows.append({"n": n, "flat_median_ms": f["median_ms"], "mih_median_ms": m["median_ms"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated numbers of stored hashes")
    ap.add_argument("--datasets", default="uniform,clustered")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--radius", type=int, default=31)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--no-updates", action="store_true", help="skip the add/merge/remove/save/load part")
    ap.add_argument("--no-crossover", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    results: dict[str, Any] = {"source": source_info(), "machine": machine_info(), "radius": args.radius,
                               "queries": args.queries, "numpy": np.__version__,
                               "first_touch_ms_per_mib": first_touch_ms_per_mib(), "runs": []}
    if not args.no_crossover:
        results["crossover"] = crossover(rng, 200, args.radius)
    tmp = Path(tempfile.mkdtemp(prefix="pdq_index_bench."))
    try:
        for dataset in args.datasets.split(","):
            for n in sizes:
                gc.collect()
                t0 = time.perf_counter()
                data = {"uniform": uniform, "clustered": clustered}[dataset](rng, n)
                qs = queries(rng, data, args.queries)
                ids = np.arange(n, dtype=np.int64)
                run: dict[str, Any] = {"dataset": dataset, "n": n, "generate_s": round(time.perf_counter() - t0, 2),
                                       "data_mib": round(data.nbytes / MiB, 1)}
                flat, row = build_measured(lambda ids=ids, data=data: _built(FlatPdqIndex(), ids, data))
                row["nbytes_mib"] = round(flat.stats()["nbytes"] / MiB, 1)
                stats, flat_answers = latency(lambda q, ix=flat: ix.search(q, args.radius), qs)
                row.update(stats)
                row["mean_hits"] = round(float(np.mean([len(h.ids) for h in flat_answers])), 2)
                run["flat"] = row
                del flat
                gc.collect()
                mih, row = build_measured(lambda ids=ids, data=data: _built(PdqIndex(), ids, data))
                row["nbytes_mib"] = round(mih.stats()["nbytes"] / MiB, 1)
                stats, mih_answers = latency(lambda q, ix=mih: ix.search(q, args.radius), qs)
                row.update(stats)
                row["mismatches_vs_flat"] = same(mih_answers, flat_answers)
                row["speedup_vs_flat"] = round(run["flat"]["median_ms"] / max(stats["median_ms"], 1e-9), 1)
                run["mih"] = row
                run.update(faiss_runs(data, qs, args.radius, flat_answers))
                if not args.no_updates and n == max(sizes):
                    run["mih_updates"] = updates(mih, rng, tmp, qs, args.radius)
                del mih, data
                results["runs"].append(run)
                print(_line(run), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["peak_rss_mib"] = round(_status("VmHWM") / 1024, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pdq_index.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(_table(results))
    print(f"wrote {args.out / 'pdq_index.json'}")


def _built(index: Any, ids: np.ndarray, data: np.ndarray) -> Any:
    index.add(ids, data)
    return index


def _line(run: dict[str, Any]) -> str:
    return (f"{run['dataset']} n={run['n']:,}: flat {run['flat']['median_ms']} ms, mih {run['mih']['median_ms']} ms "
            f"(p99 {run['mih']['p99_ms']}), mismatches {run['mih']['mismatches_vs_flat']}")


def _table(results: dict[str, Any]) -> str:
    head = (f"{'dataset':<10} {'n':>11} {'method':<16} {'build s':>8} {'RSS MiB':>8} {'arrays MiB':>10} "
            f"{'median ms':>10} {'p99 ms':>8} {'vs flat':>8}")
    lines = [head, "-" * len(head)]
    for run in results["runs"]:
        base = run["flat"]["median_ms"]
        for method in ("flat", "mih", "faiss_flat", "faiss_multihash"):
            row = run.get(method)
            if not isinstance(row, dict):
                continue
            ratio = base / row["median_ms"] if row["median_ms"] else float("inf")
            lines.append(f"{run['dataset']:<10} {run['n']:>11,} {method:<16} {row['build_s']:>8} "
                         f"{row['rss_delta_mib']:>8} {row.get('nbytes_mib', ''):>10} {row['median_ms']:>10} "
                         f"{row['p99_ms']:>8} {ratio:>7.1f}x")
        if "skipped" in run:
            lines.append(f"{'':<10} {'':>11} faiss: {run['skipped']}")
    if "crossover" in results:
        lines.append("")
        lines.append("crossover (uniform, tables forced): " + ", ".join(
            f"n={r['n']:,} flat {r['flat_median_ms']} / mih {r['mih_median_ms']} ms" for r in results["crossover"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
