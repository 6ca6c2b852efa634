#!/usr/bin/env python3
"""Bank import and end-to-end matching: what a platform pays to load a hash list and to ask "does this hash
match?", against the least the same work can cost, in the same run.

  * import: `BankStore.import_signals` of N PDQ records (validation, tombstone check, provenance, audit entry)
    against a bare `sqlite3` executemany of the same (type, value) rows into a table with the same unique
    index (the baseline);
  * matcher start: `Matcher(store)` (reading every active row and building the index) against building the
    bare `PdqIndex` from the same hashes;
  * one lookup: `Matcher.match_signal("pdq", hex)` (change check, index, provenance, negative banks) against
    `PdqIndex.search(hex)` alone; queries are half near-duplicates (0..40 bits flipped), half random.

Synthetic random PDQ hashes; nothing is downloaded. Not a test; run by hand:

    .venv/bin/python bench/bank_matching.py [--n 200000] [--queries 500] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchlib import machine_info, source_info
from jieyao.banks.interop import SignalRecord
from jieyao.banks.matcher import Matcher
from jieyao.banks.pdq_index import PdqIndex
from jieyao.banks.store import BankStore
from jieyao.hashing.signals import SignalType


def _hashes(n: int, rng: random.Random) -> list[str]:
    return [f"{rng.getrandbits(256):064x}" for _ in range(n)]


def _near(value: str, rng: random.Random) -> str:
    bits = int(value, 16)
    for b in rng.sample(range(256), rng.randint(0, 40)):
        bits ^= 1 << b
    return f"{bits:064x}"


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _baseline_import(path: Path, values: list[str]) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, type TEXT, value TEXT, UNIQUE(type, value))")
    t0 = time.perf_counter()
    with con:
        con.executemany("INSERT OR IGNORE INTO s (type, value) VALUES ('pdq', ?)", ((v,) for v in values))
    dt = time.perf_counter() - t0
    con.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="PDQ signals imported (default 200000)")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    values = _hashes(args.n, rng)
    queries = [_near(rng.choice(values), rng) if k % 2 == 0 else _hashes(1, rng)[0] for k in range(args.queries)]
    out: dict[str, object] = {"schema": "jieyao.bench.bank_matching/1", "n": args.n, "queries": args.queries,
                              "machine": machine_info(), "source": source_info()}
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_import(Path(tmp) / "bare.sqlite", values)
        with BankStore.open(Path(tmp) / "banks.sqlite") as store:
            store.create_bank("ncii")
            store.create_bank("allow", "negative")
            records = [SignalRecord(SignalType.PDQ, v, quality=90) for v in values]
            t0 = time.perf_counter()
            result = store.import_signals("ncii", records, source="bench")
            ours = time.perf_counter() - t0
            assert result.added == args.n, result
            rss0 = _rss_mib()
            t0 = time.perf_counter()
            matcher = Matcher(store)
            start = time.perf_counter() - t0
            rss1 = _rss_mib()
            t0 = time.perf_counter()
            bare = PdqIndex()
            bare.add(list(range(args.n)), values)
            bare.merge()
            bare_start = time.perf_counter() - t0
            lat_m, lat_i = [], []
            matched = 0
            for q in queries:
                t0 = time.perf_counter()
                r = matcher.match_signal("pdq", q)
                lat_m.append(time.perf_counter() - t0)
                matched += r.matched
                t0 = time.perf_counter()
                bare.search(q)
                lat_i.append(time.perf_counter() - t0)
    med_m, med_i = statistics.median(lat_m) * 1e3, statistics.median(lat_i) * 1e3
    out.update({
        "import": {"seconds": round(ours, 3), "rows_per_s": round(args.n / ours), "baseline_seconds": round(base, 3),
                   "ratio": round(ours / base, 2)},
        "matcher_start": {"seconds": round(start, 3), "bare_index_seconds": round(bare_start, 3),
                          "ratio": round(start / bare_start, 2), "rss_delta_mib": round(rss1 - rss0, 1)},
        "lookup_ms": {"matcher_median": round(med_m, 3), "index_median": round(med_i, 3),
                      "matcher_p99": round(sorted(lat_m)[int(0.99 * (len(lat_m) - 1))] * 1e3, 3),
                      "ratio": round(med_m / med_i, 2), "matched": matched},
    })
    print(f"{args.n:,} PDQ signals, {args.queries} queries (half near-duplicates)")
    print(f"import        {args.n / ours:>10,.0f} rows/s   bare sqlite3 {args.n / base:>10,.0f} rows/s   "
          f"ratio {ours / base:.2f}x")
    print(f"matcher start {start:>10.2f} s        bare index   {bare_start:>10.2f} s        "
          f"ratio {start / bare_start:.2f}x   (+{rss1 - rss0:.0f} MiB RSS)")
    print(f"one lookup    {med_m:>10.3f} ms       bare search  {med_i:>10.3f} ms       ratio {med_m / med_i:.2f}x"
          f"   ({matched} matched)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bank_matching.json").write_text(json.dumps(out, indent=2))
    print(f"results: {args.out / 'bank_matching.json'}")


if __name__ == "__main__":
    main()
