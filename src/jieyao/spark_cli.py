"""`jieyao spark-scan` and `jieyao spark-moderate`: run a scan or a moderation job on Spark, from paths or a
table to a Parquet file, in local mode by default (`local[*]`) or on a cluster with `--master`. Argument
parsing, the session and the summary line only; the work is `jieyao.spark`. pyspark is imported when a
command runs, never when the CLI is loaded, so `jieyao scan` does not pay for it.

Exit codes, as `jieyao scan` / `jieyao moderate`: 0 everything passes; 1 something to block or review;
2 an error stopped a target, a listing or the job (the output still holds every row that was made)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, metavar="OUT.parquet", help="where to write the rows (Parquet)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--master", default=None,
                   help="Spark master (default local[*]; yarn, k8s://..., spark://host:7077; spark-submit's own "
                        "--master wins when this is left out)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    p.add_argument("--no-ship", action="store_true",
                   help="do not ship rule/lexicon/hash/bank files to the workers: they read the paths as given "
                        "(a shared filesystem)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from jieyao.cli import _limit_args, parse_size

    scan = sub.add_parser("spark-scan", help="scan paths or a storage listing on Spark, to Parquet",
                          description="Folders given as PATH are walked on the driver, as `jieyao scan` walks them; "
                                      "--paths-from FILE is a listing (one path or URI a line, e.g. s3://bucket/key) "
                                      "read by Spark, each line one target. Other URIs are opened on the workers "
                                      "through fsspec. One row per target, with the per-target JSON of "
                                      "`jieyao scan --format json`.")
    scan.add_argument("paths", nargs="*", metavar="PATH_OR_URI")
    scan.add_argument("--paths-from", metavar="FILE", help="a listing of paths/URIs, one a line (read by Spark)")
    scan.add_argument("--binary-files", action="store_true",
                      help="read PATH with Spark's binaryFile source (many small files; no folder summaries)")
    scan.add_argument("--rules", action="append", default=[], metavar="DIR", help="extra rule pack directory")
    scan.add_argument("--hashes", action="append", default=[], metavar="FILE", help="known-hash list")
    scan.add_argument("--yara", action="append", default=[], metavar="FILE", help="YARA rule file")
    scan.add_argument("--bank-db", metavar="PATH_OR_URL", help="hash banks (a SQLite file is shipped as a snapshot)")
    scan.add_argument("--bank", action="append", default=[], metavar="NAME", help="with --bank-db: only this bank")
    scan.add_argument("--lineage-db", metavar="PATH_OR_URL", help="lineage banks (a SQLite file is shipped)")
    scan.add_argument("--partitions", type=int, default=None, metavar="N",
                      help="spread the targets over N tasks (default: 4 per core for walked paths)")
    scan.add_argument("--spool-max-bytes", type=parse_size, default=None, metavar="SIZE",
                      help="largest remote object copied to a worker for scanning (default 16GiB)")
    _common(scan)
    _limit_args(scan)

    mod = sub.add_parser("spark-moderate", help="moderate a table of listings on Spark, to Parquet",
                         description="INPUT is .jsonl/.json, .csv (with a header) or .parquet (a file or folder), or "
                                     "--table NAME (a table or view of the session's catalog). The text is --column "
                                     "(repeatable: several columns are one listing of fields, as title and "
                                     "description are for `jieyao moderate`); default text, else title/description.")
    mod.add_argument("input", nargs="?", metavar="INPUT")
    mod.add_argument("--table", metavar="NAME", help="read this table instead of a file")
    mod.add_argument("--input-format", choices=("auto", "jsonl", "csv", "parquet"), default="auto")
    mod.add_argument("--column", "--field", dest="columns", action="append", default=[], metavar="NAME",
                     help="a text column (repeatable)")
    mod.add_argument("--id-column", default=None, metavar="NAME", help="the id column (default id, when present)")
    mod.add_argument("--lexicon", action="append", default=[], metavar="FILE", help="extra lexicon file")
    mod.add_argument("--rules", action="append", default=[], metavar="FILE", help="extra moderation rule file")
    mod.add_argument("--prefix", default="", help="prefix for the result columns (when the input has a 'score'...)")
    mod.add_argument("--partitions", type=int, default=None, metavar="N",
                     help="spread the listings over N tasks first (default: the input's own partitions)")
    _common(mod)


class _Session:
    """The job's SparkSession: made here (and stopped after) unless one is running already (tests, notebooks)."""

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        import warnings

        from pyspark.sql import SparkSession

        # pyspark warns about every pandas release newer than it knows; jieyao.spark uses Arrow, not pandas
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        self.owned = SparkSession.getActiveSession() is None
        builder = SparkSession.builder.appName(name)
        submitted = os.environ.get("PYSPARK_GATEWAY_PORT") or os.environ.get("SPARK_ENV_LOADED")  # spark-submit
        master = args.master or (None if submitted else "local[*]")
        if master:
            builder = builder.master(master)
        if (master or "").startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers run this interpreter (and its venv)
        builder = builder.config("spark.ui.showConsoleProgress", str(sys.stderr.isatty()).lower())
        for item in args.conf:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"--conf wants KEY=VALUE, got {item!r}")
            builder = builder.config(key.strip(), value)
        self.spark: Any = builder.getOrCreate()
        url = self.spark.sparkContext.uiWebUrl
        if url and self.owned and sys.stderr.isatty():
            print(f"Spark UI: {url}", file=sys.stderr)

    def close(self) -> None:
        if self.owned:
            self.spark.stop()


def _job_errors() -> tuple[type[BaseException], ...]:
    """What a failed Spark job raises (analysis errors, a task that failed its retries, a lost gateway)."""
    import importlib

    from pyspark.errors import PySparkException

    py4j_error: type[BaseException] = importlib.import_module("py4j.protocol").Py4JError  # comes with pyspark
    return (PySparkException, py4j_error)


def _failed(prog: str, exc: BaseException) -> int:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"{prog}: the Spark job failed: {first[:1000]}", file=sys.stderr)
    return EXIT_ERROR


def _write(df: Any, args: argparse.Namespace) -> None:
    df.write.mode("overwrite" if args.overwrite else "errorifexists").parquet(args.output)


def _summary(spark: Any, output: str, what: str, prog: str, prefix: str = "") -> int:
    """Read the written rows back (no second scan) and print the one-line summary; the exit code."""
    from pyspark.sql import functions as F

    rows = spark.read.parquet(output)
    error_col, decision_col = prefix + "error", prefix + "decision"
    counts = {r[0]: r[1] for r in rows.groupBy(decision_col).count().collect()}
    errors = rows.filter(F.col(error_col).isNotNull()).count()
    total = sum(counts.values())
    parts = ", ".join(f"{d} {counts.get(d, 0)}" for d in ("block", "review", "pass"))
    extra = ""
    if "limits_hit" in rows.columns:
        extra = f", {rows.agg(F.sum('limits_hit')).collect()[0][0] or 0} limits hit"
    noun = what if total != 1 else what[:-1]
    print(f"{prog}: {total} {noun} ({parts}), {errors} error{'s' if errors != 1 else ''}{extra} -> {output}")
    if errors:
        return EXIT_ERROR
    return EXIT_FLAGGED if counts.get("block") or counts.get("review") else EXIT_OK


def run_scan(args: argparse.Namespace) -> int:
    from jieyao.cli import _limits
    from jieyao.spark import ScanJob, scan_binary_files, scan_dataframe, scan_paths, ship
    from jieyao.spark.scanning import DEFAULT_SPOOL_BYTES
    from jieyao.spark.shipping import local

    if not args.paths and not args.paths_from:
        print("jieyao spark-scan: no paths given (PATH... or --paths-from FILE)", file=sys.stderr)
        return EXIT_ERROR
    if args.bank and not args.bank_db:
        print("jieyao spark-scan: --bank needs --bank-db", file=sys.stderr)
        return EXIT_ERROR
    session = _Session(args, "jieyao spark-scan")
    try:
        spark = session.spark
        files = {"rules": args.rules, "hashes": args.hashes, "yara": args.yara, "bank_db": args.bank_db,
                 "lineage_db": args.lineage_db}
        shipment = local(**files) if args.no_ship else ship(spark, **files)
        job = ScanJob(limits=_limits(args), shipment=shipment, banks=tuple(args.bank),
                      spool_max_bytes=args.spool_max_bytes or DEFAULT_SPOOL_BYTES)
        frames: list[Any] = []
        if args.paths:
            if args.binary_files:
                frames.extend(scan_binary_files(spark, p, job) for p in args.paths)
            else:
                frames.append(scan_paths(spark, args.paths, job, partitions=args.partitions))
        if args.paths_from:
            listing = spark.read.text(args.paths_from).withColumnRenamed("value", "path")
            listing = listing.filter(listing.path != "")
            frames.append(scan_dataframe(listing, job, partitions=args.partitions))
        out = frames[0]
        for other in frames[1:]:
            out = out.unionByName(other, allowMissingColumns=True)
        _write(out, args)
        return _summary(spark, args.output, "targets", "jieyao spark-scan")
    except _job_errors() as exc:
        return _failed("jieyao spark-scan", exc)
    finally:
        session.close()


def _read_input(spark: Any, args: argparse.Namespace) -> Any:
    if args.table:
        return spark.table(args.table)
    if not args.input:
        raise ValueError("no INPUT given (a .jsonl/.csv/.parquet file, or --table NAME)")
    fmt = args.input_format
    if fmt == "auto":
        lower = args.input.lower().rstrip("/")
        fmt = ("jsonl" if lower.endswith((".jsonl", ".json", ".ndjson")) else "csv" if lower.endswith(".csv")
               else "parquet")
    if fmt == "jsonl":
        return (spark.read.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
                .json(args.input))
    if fmt == "csv":
        return spark.read.option("header", "true").option("escape", '"').option("multiLine", "true").csv(args.input)
    return spark.read.parquet(args.input)


def _text_columns(args: argparse.Namespace, columns: list[str]) -> list[str]:
    if args.columns:
        return list(args.columns)
    from jieyao.text.listings import TEXT_FIELDS

    fields = [c for c in TEXT_FIELDS if c in columns]  # as `jieyao moderate` reads JSONL: each row its own
    if not fields:
        raise ValueError(f"no text column: pass --column (the input has {', '.join(columns)})")
    return fields


def _corrupt_rows_reviewed(out: Any, prefix: str, F: Any) -> Any:
    """Rows Spark could not parse get every column from one `review` result with the error, as the CLI's
    bad-record output does (not a pass of "" with only the decision overridden)."""
    import json

    from jieyao.model import Decision
    from jieyao.text.result import ModerationResult

    doc = ModerationResult(None, Decision.REVIEW, error="not a JSON object").to_dict()
    bad = F.col("_corrupt_record").isNotNull()
    empty = F.array().cast("array<string>")
    replace = {"decision": F.lit(doc["decision"]), "labels": empty, "score": F.lit(0.0), "hits": F.lit("[]"),
               "contacts": F.lit("[]"), "rules": empty, "evasion": empty, "error": F.lit(doc["error"]),
               "result": F.lit(json.dumps(doc, ensure_ascii=False))}
    for name, value in replace.items():
        out = out.withColumn(prefix + name, F.when(bad, value).otherwise(F.col(prefix + name)))
    return out


def run_moderate(args: argparse.Namespace) -> int:
    from pyspark.sql import functions as F

    from jieyao.spark import ModerationJob, moderate_dataframe, ship
    from jieyao.spark.shipping import local

    session = _Session(args, "jieyao spark-moderate")
    try:
        spark = session.spark
        df = _read_input(spark, args)
        cols = _text_columns(args, df.columns)
        id_column = args.id_column or ("id" if "id" in df.columns else None)
        files = {"lexicons": args.lexicon, "moderation_rules": args.rules}
        shipment = local(**files) if args.no_ship else ship(spark, **files)
        out = moderate_dataframe(df, cols, ModerationJob(shipment), id_column=id_column, prefix=args.prefix,
                                 partitions=args.partitions)
        if "_corrupt_record" in df.columns:  # a line that is not JSON: reported, never a silent pass
            out = _corrupt_rows_reviewed(out, args.prefix, F)
        _write(out, args)
        return _summary(spark, args.output, "listings", "jieyao spark-moderate", args.prefix)
    except _job_errors() as exc:
        return _failed("jieyao spark-moderate", exc)
    finally:
        session.close()
