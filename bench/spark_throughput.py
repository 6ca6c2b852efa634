#!/usr/bin/env python3
"""Spark scale-out: what running the same engines through `jieyao.spark` costs against the direct library loop,
and what a second core buys, in the same run on the same inputs.

Why this exists: issue 8 promises that moderating a table or scanning a storage listing on Spark costs at most
1.5x the direct loop per row on one core (`local[1]`: Arrow batches in and out, one Moderator / Scanner per
Python worker reused across batches), and that two cores give at least 1.8x one core. This script measures:

  * listings: N generated listings of 200 characters (the mix of bench/moderation_throughput.py: 65 % filler,
    10 % with a contact, 25 % with planted lexicon terms, plain or evaded), written once to Parquet in many
    small files (a warehouse table's partitions);
      (a) direct loop: `Moderator().moderate(text, id)` over the list in memory, one thread;
      (a') the same loop also making the row's JSON (`to_dict` + `json.dumps`), which the Spark rows carry;
      (b) `moderate_dataframe` on `local[1]` and on `local[2]`, read from the Parquet and written to Spark's
          `noop` sink (everything computed, nothing stored); a warm-up job first, so the figures are steady
          state (the first job's Python worker start and Moderator build are reported apart, as `cold`);
  * files: M generated structural imitations (models, face crops, archives, code, ordinary files) in folders;
      (c) direct: `jieyao.scan_paths([root])`, one process;
      (d) `scan_dataframe` over the listing of the same files on `local[1]` and `local[2]` (no folder summaries:
          the storage-listing job), and `scan_paths` (driver walk + folder summaries) on `local[2]`.

Nothing is downloaded. Not a test: run by hand,

    .venv/bin/python bench/spark_throughput.py [--listings 200000] [--files 3000] [--out bench/out]

Results go to OUT/spark_throughput.json. The machine is shared: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib import machine_info, source_info
from moderation_throughput import lexicon_surfaces, make_listings

GOAL_OVERHEAD = 1.5
GOAL_SPEEDUP = 1.8
SEED = 20261208
SCHEMA = "jieyao.bench.spark/1"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def make_files(root: Path, n: int) -> dict[str, int]:
    """n small files of several kinds in folders of 50 (what a user upload bucket holds, in miniature)."""
    from jieyao import imitations as im
    from jieyao.imitations import apps, onnx
    from jieyao.imitations import faces as fx

    encoder = im.dfl_like_encoder()
    classifier = onnx.to_bytes(onnx.classifier_spec())
    roop = apps.roop_tree()
    roop_py = next(v for k, v in roop.items() if k.endswith(".py"))
    kinds: list[tuple[str, Callable[[int], bytes]]] = [
        ("notes.txt", lambda i: f"an ordinary note {i}\n".encode() * 20),
        ("photo.jpg", lambda i: fx.ordinary_jpeg_with_exif(seed=i % 7)),
        ("face.jpg", lambda i: fx.dfl_aligned_jpeg("whole_face", f"weibo_{i}.jpg", seed=i % 5)),
        ("encoder.npy", lambda i: encoder),
        ("docs.zip", lambda i: im.zip_bytes({"a.txt": b"hello\n" * 50, "b/c.txt": im.rand_bytes(2000, seed=i)})),
        ("model.onnx", lambda i: classifier),
        ("app.py", lambda i: roop_py),
        ("blob.bin", lambda i: im.rand_bytes(8000, seed=i)),
    ]
    counts: dict[str, int] = {}
    for i in range(n):
        name, make = kinds[i % len(kinds)]
        folder = root / f"d{i // 50:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}-{name}").write_bytes(make(i))
        counts[name] = counts.get(name, 0) + 1
    return counts


def session(master: str, tmp: Path) -> Any:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers must import this jieyao
    spark = (SparkSession.builder.master(master).appName(f"jieyao-bench {master}")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.pyspark.python", sys.executable).config("spark.driver.memory", "2g")
             .config("spark.sql.files.maxPartitionBytes", str(2 * 1024 * 1024))
             .config("spark.sql.files.openCostInBytes", str(1024 * 1024))
             .config("spark.local.dir", str(tmp / "spark-local")).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def timed(run: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by a process and all its live descendants (the JVM and its Python workers):
    unlike wall time, this does not depend on what else the shared machine is running."""
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(name)] = int(fields[1])
        used[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid in used:
        p = pid
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root:
            total += used[pid]
    return total


def timed_job(spark: Any, run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the driver, the JVM and the Python workers) for one job."""
    jvm = spark.sparkContext._gateway.proc.pid
    c0, p0 = tree_cpu(jvm), time.process_time()
    wall = timed(run)
    return wall, tree_cpu(jvm) - c0 + time.process_time() - p0


def warm_up(spark: Any, run: Callable[[Any], Any], sample: Any) -> float:
    """One job with a task per core, so every Python worker of the session is started and has built its
    engine before anything is timed."""
    cores = spark.sparkContext.defaultParallelism
    return timed(lambda: run(sample.repartition(cores * 2)).write.format("noop").mode("overwrite").save())


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def direct_listings(listings: list[tuple[str, str]]) -> dict[str, Any]:
    from jieyao.text import Moderator

    t0 = time.perf_counter()
    moderator = Moderator()
    build = time.perf_counter() - t0
    texts = [(str(i), text) for i, (_, text) in enumerate(listings)]

    def bare() -> None:
        for rid, text in texts:
            moderator.moderate(text, id=rid)

    def with_json() -> None:
        for rid, text in texts:
            r = moderator.moderate(text, id=rid).to_dict()
            json.dumps(r, ensure_ascii=False), json.dumps(r["hits"], ensure_ascii=False)

    c0 = time.process_time()
    loop = timed(bare)
    cpu = time.process_time() - c0
    loop_json = timed(with_json)
    return {"build_seconds": round(build, 3), "seconds": round(loop, 3), "cpu_seconds": round(cpu, 3),
            "per_s": rate(len(texts), loop), "with_json_seconds": round(loop_json, 3),
            "with_json_per_s": rate(len(texts), loop_json)}


def spark_listings(master: str, table: str, n: int, tmp: Path) -> dict[str, Any]:
    from jieyao.spark import moderate_dataframe

    spark = session(master, tmp)
    try:
        df = spark.read.parquet(table)
        partitions = df.rdd.getNumPartitions()
        cold = warm_up(spark, lambda d: moderate_dataframe(d, "text", id_column="id"), df.limit(2000))
        warm, cpu = timed_job(spark, lambda: moderate_dataframe(df, "text", id_column="id").write.format("noop")
                              .mode("overwrite").save())
        flagged = (moderate_dataframe(df.filter("cast(id as int) < 20000"), "text", id_column="id")
                   .filter("decision != 'pass'").count())
    finally:
        spark.stop()
    return {"master": master, "partitions": partitions, "cold_first_job_seconds": round(cold, 3),
            "seconds": round(warm, 3), "cpu_seconds": round(cpu, 3), "per_s": rate(n, warm),
            "flagged_in_first_20000": flagged}


def direct_files(root: Path, n: int) -> dict[str, Any]:
    import jieyao

    c0 = time.process_time()
    seconds = timed(lambda: jieyao.scan_paths([str(root)]))
    return {"seconds": round(seconds, 3), "cpu_seconds": round(time.process_time() - c0, 3), "per_s": rate(n, seconds)}


def spark_files(master: str, root: Path, paths: list[str], tmp: Path, with_walk: bool) -> dict[str, Any]:
    from jieyao.spark import scan_dataframe, scan_paths

    spark = session(master, tmp)
    try:
        cores = spark.sparkContext.defaultParallelism
        df = spark.createDataFrame([(p,) for p in paths], "path string").repartition(cores * 4)
        df.count()
        cold = warm_up(spark, scan_dataframe, df.limit(50))
        warm, cpu = timed_job(spark, lambda: scan_dataframe(df).write.format("noop").mode("overwrite").save())
        out: dict[str, Any] = {"master": master, "cold_first_job_seconds": round(cold, 3), "seconds": round(warm, 3),
                               "cpu_seconds": round(cpu, 3), "per_s": rate(len(paths), warm)}
        if with_walk:
            def walk() -> None:
                rows = scan_paths(spark, [str(root)])
                rows.write.format("noop").mode("overwrite").save()
                rows.unpersist()

            walked = timed(walk)
            out.update(scan_paths_seconds=round(walked, 3), scan_paths_per_s=rate(len(paths), walked))
    finally:
        spark.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listings", type=int, default=200_000)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--out", default="bench/out")
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="jieyao-bench-spark-"))
    result: dict[str, Any] = {"schema": SCHEMA, "source": source_info(), "machine": machine_info(),
                              "load_at_start": load(), "listings": args.listings, "files": args.files}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from jieyao.text import Moderator

        listings = make_listings(args.listings, 200, SEED, lexicon_surfaces(Moderator()))
        table = tmp / "listings.parquet"
        table.mkdir()
        per_file = max(1, len(listings) // 64)
        for k in range(0, len(listings), per_file):  # 64 files: a table's partitions
            chunk = listings[k:k + per_file]
            pq.write_table(pa.table({"id": [str(k + i) for i in range(len(chunk))], "text": [t for _, t in chunk]}),
                           table / f"part-{k // per_file:05d}.parquet")
        print(f"{len(listings)} listings written; direct loop ...", flush=True)
        result["direct_listings"] = direct_listings(listings)
        print(json.dumps(result["direct_listings"]), flush=True)
        for master in ("local[1]", "local[2]"):
            result[f"spark_listings_{master}"] = spark_listings(master, str(table), len(listings), tmp)
            print(json.dumps(result[f"spark_listings_{master}"]), flush=True)

        root = tmp / "files"
        result["file_kinds"] = make_files(root, args.files)
        paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
        result["direct_files"] = direct_files(root, len(paths))
        print(json.dumps(result["direct_files"]), flush=True)
        for master in ("local[1]", "local[2]"):
            result[f"spark_files_{master}"] = spark_files(master, root, paths, tmp, with_walk=master == "local[2]")
            print(json.dumps(result[f"spark_files_{master}"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_at_end"] = load()

    d, s1, s2 = result["direct_listings"], result["spark_listings_local[1]"], result["spark_listings_local[2]"]
    f, f1, f2 = result["direct_files"], result["spark_files_local[1]"], result["spark_files_local[2]"]
    result["summary"] = {
        "listings_overhead_local1_vs_direct": round(s1["seconds"] / d["seconds"], 3),
        "listings_overhead_local1_vs_direct_with_json": round(s1["seconds"] / d["with_json_seconds"], 3),
        "listings_speedup_1_to_2": round(s1["seconds"] / s2["seconds"], 3),
        "files_overhead_local1_vs_direct": round(f1["seconds"] / f["seconds"], 3),
        "files_speedup_1_to_2": round(f1["seconds"] / f2["seconds"], 3),
        "listings_cpu_overhead_local1_vs_direct": round(s1["cpu_seconds"] / d["cpu_seconds"], 3),
        "listings_cpu_per_row_local2_vs_local1": round(s2["cpu_seconds"] / s1["cpu_seconds"], 3),
        "files_cpu_overhead_local1_vs_direct": round(f1["cpu_seconds"] / f["cpu_seconds"], 3),
        "goal_overhead": GOAL_OVERHEAD, "goal_speedup": GOAL_SPEEDUP,
    }
    (out_dir / "spark_throughput.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    sm = result["summary"]
    print(f"listings: direct {d['per_s']}/s (with row JSON {d['with_json_per_s']}/s); Spark local[1] {s1['per_s']}/s, "
          f"local[2] {s2['per_s']}/s")
    print(f"  overhead at local[1]: {sm['listings_overhead_local1_vs_direct']}x the direct loop "
          f"({sm['listings_overhead_local1_vs_direct_with_json']}x the loop that also makes the JSON; goal "
          f"<= {GOAL_OVERHEAD}x); speed-up 1 -> 2 cores: {sm['listings_speedup_1_to_2']}x (goal >= {GOAL_SPEEDUP}x)")
    print(f"  CPU time (driver + JVM + Python workers): local[1] {sm['listings_cpu_overhead_local1_vs_direct']}x the "
          f"direct loop's; local[2] uses {sm['listings_cpu_per_row_local2_vs_local1']}x local[1]'s CPU for the rows")
    print(f"files: direct {f['per_s']}/s; Spark local[1] {f1['per_s']}/s, local[2] {f2['per_s']}/s; "
          f"scan_paths local[2] {f2.get('scan_paths_per_s')}/s")
    print(f"  overhead at local[1]: {sm['files_overhead_local1_vs_direct']}x (CPU "
          f"{sm['files_cpu_overhead_local1_vs_direct']}x); speed-up 1 -> 2 cores: "
          f"{sm['files_speedup_1_to_2']}x; load average {result['load_at_start']} -> {result['load_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
