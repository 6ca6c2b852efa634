"""Scan a storage listing on Spark: a DataFrame of paths or URIs in, one verdict row per target out, each with
the same per-target JSON `jieyao scan --format json` prints.

Local paths (and `file:` URIs) are scanned where they lie, so every worker needs the same filesystem (local
mode, NFS, a FUSE mount). Any other URI (`s3://`, `hdfs://`, `gs://`, chained `zip://m::s3://b/a.zip` ...) is
opened on the worker through fsspec and copied to a private temporary file, under a size cap and the target's
time budget, because the chassis reads real files; the bytes never travel through Spark. A few huge archives
cannot stall a stage past `ScanLimits.max_seconds` each (checked between members and chunks: a `limit.time`
finding), and targets are spread over many small tasks so Spark's scheduler balances the rest.

Each Python worker builds one Scanner per configuration and keeps it for every batch it is given."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from jieyao.engine import Scanner
from jieyao.intake.walk import WalkItem, iter_targets
from jieyao.limits import MiB, ScanLimits
from jieyao.model import Category, Decision, Finding, TargetResult
from jieyao.registry import RecogniserConfig
from jieyao.scan import make_scanner, result_for
from jieyao.spark.shipping import Shipment

SCAN_COLUMNS = ("path", "decision", "error", "skipped", "format", "size", "sha256", "members", "bytes_read",
                "bytes_extracted", "seconds", "rules", "limits_hit", "findings", "target", "versions")
SCAN_SCHEMA = ("path string, decision string, error string, skipped string, format string, size long, "
               "sha256 string, members long, bytes_read long, bytes_extracted long, seconds double, "
               "rules array<string>, limits_hit int, findings string, target string, versions map<string,string>")
WALK_COLUMNS = ("walk_folder", "walk_skipped", "walk_error")
"""Optional input columns a driver-side walk adds (what `jieyao.intake.walk.WalkItem` said); never output."""
ROWS_PER_BATCH = 16
"""Results sent back at once: small, so one slow archive does not hold finished results back."""
DEFAULT_SPOOL_BYTES = 16 * 1024 * MiB
_URI = re.compile(r"^[a-z][a-z0-9+.-]*:(//|[^/\\]*::)", re.IGNORECASE)
_FILE_URI = re.compile(r"^file:(//[^/]*)?/", re.IGNORECASE)


@dataclass(frozen=True)
class ScanJob:
    """Everything a worker needs to build its scanner: limits, the shipped files, options. Picklable."""

    limits: ScanLimits = field(default_factory=ScanLimits)
    shipment: Shipment = field(default_factory=Shipment)
    banks: tuple[str, ...] = ()
    """With a shipped or linked bank database: only these banks (`jieyao scan --bank`)."""
    spool_max_bytes: int = DEFAULT_SPOOL_BYTES
    """Largest remote object copied for scanning; a larger one gets a `limit.remote_bytes` finding."""
    options: dict[str, Any] = field(default_factory=dict)
    """Further RecogniserConfig options (e.g. faceset_min)."""

    def config(self) -> RecogniserConfig:
        """The recogniser configuration `jieyao scan` would build, with this process's copies of the files."""
        s = self.shipment
        options: dict[str, Any] = dict(self.options)
        bank = s.one("bank_db")
        if bank:
            options.update(bank_db=bank, banks=tuple(self.banks))
        lineage = s.one("lineage_db")
        if lineage:
            options["lineage_db"] = lineage
        return RecogniserConfig(hash_files=s.paths("hashes"), rules_dirs=s.paths("rules"),
                                yara_files=s.paths("yara"), options=options)

    @property
    def key(self) -> str:
        return json.dumps([dataclasses.asdict(self.limits), self.shipment.key, list(self.banks), self.spool_max_bytes,
                           sorted((str(k), repr(v)) for k, v in self.options.items())])


@dataclass
class _Engine:
    scanner: Scanner
    versions: dict[str, str]


_ENGINES: dict[str, _Engine] = {}
"""One scanner per configuration per Python worker process, reused across batches and tasks."""


def engine_for(job: ScanJob) -> _Engine:
    key = job.key
    found = _ENGINES.get(key)
    if found is None:
        if len(_ENGINES) >= 4:  # a long-lived worker serving many jobs: keep a few, close the rest
            for old in _ENGINES.values():
                old.scanner.close()
            _ENGINES.clear()
        found = _ENGINES[key] = _Engine(make_scanner(job.limits, job.config()), job.shipment.versions())
    return found


def is_remote(path: str) -> bool:
    """A URI for fsspec (anything with a scheme but `file:`); plain paths and `file:` URIs are local."""
    return bool(_URI.match(path)) and not _FILE_URI.match(path)


def local_path(path: str) -> str:
    """`file:///a/b`, `file:/a/b` (as Spark writes them) and `/a/b` → `/a/b`."""
    if _FILE_URI.match(path):
        return unquote(urlsplit(path).path)
    return path


def _limit(rule: str, message: str) -> Finding:
    return Finding(rule=rule, category=Category.LIMIT, decision=Decision.REVIEW, evidence=(message,))


_SPOOL_DIR: str | None = None


def _spool_dir() -> str:
    global _SPOOL_DIR
    if _SPOOL_DIR is None or not os.path.isdir(_SPOOL_DIR):
        _SPOOL_DIR = tempfile.mkdtemp(prefix="jieyao-spark-")  # 0700: private to this user
    return _SPOOL_DIR


def scan_remote(scanner: Scanner, uri: str, cap: int) -> TargetResult:
    """Copy one fsspec object to a private temporary file (at most `cap` bytes, within max_seconds) and scan it
    as the CLI would scan the file (within max_seconds again); the result is reported under the URI."""
    import fsspec

    started = time.monotonic()
    deadline = started + scanner.limits.max_seconds
    result = TargetResult(path=uri)
    fd, tmp = tempfile.mkstemp(dir=_spool_dir())
    try:
        try:
            fs, inner = fsspec.core.url_to_fs(uri)
            declared = fs.size(inner)
            if declared is not None and declared > cap:
                result.size = int(declared)
                result.findings.append(_limit("limit.remote_bytes", f"remote object is {declared} bytes, more than "
                                              f"spool_max_bytes={cap}: not copied, not scanned"))
                return result
            copied = 0
            with fs.open(inner, "rb") as src, os.fdopen(fd, "wb") as dst:
                fd = -1
                while chunk := src.read(4 * MiB):
                    copied += len(chunk)
                    if copied > cap:
                        result.findings.append(_limit("limit.remote_bytes", "remote object grew past "
                                                      f"spool_max_bytes={cap} while it was copied: not scanned"))
                        return result
                    if time.monotonic() > deadline:
                        result.findings.append(_limit("limit.time", f"copying the remote object took longer than "
                                                      f"max_seconds={scanner.limits.max_seconds:g}: not scanned"))
                        return result
                    dst.write(chunk)
        except FileNotFoundError:
            result.error = "no such object"
            return result
        except Exception as exc:  # any filesystem's failure (auth, network, bad URI) is this target's error only
            result.error = f"cannot open remote object: {type(exc).__name__}: {exc}"[:2000]
            return result
        scanned = scanner.scan_path(tmp, display=uri)
        scanned.seconds = time.monotonic() - started
        return scanned
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        result.seconds = time.monotonic() - started


def scan_one(engine: _Engine, job: ScanJob, path: str, folder: bool = False, skipped: str | None = None,
             error: str | None = None) -> TargetResult:
    """One row's result; never raises, so one target's failure cannot fail the task and its neighbours."""
    scanner = engine.scanner
    try:
        if folder or skipped is not None or error is not None:
            return result_for(scanner, WalkItem(path, skipped=skipped, error=error, folder=folder))
        if is_remote(path):
            return scan_remote(scanner, path, job.spool_max_bytes)
        local = local_path(path)
        result = scanner.scan_path(local, display=path)
        return result
    except Exception as exc:
        return TargetResult(path=path, error=f"scan failed: {type(exc).__name__}: {exc}"[:2000])


def result_row(result: TargetResult, versions: dict[str, str]) -> dict[str, Any]:
    """The output columns for one result (`target` is exactly the CLI's per-target JSON)."""
    doc = result.to_dict()
    return {
        "path": result.path, "decision": doc["decision"], "error": result.error, "skipped": result.skipped,
        "format": result.format, "size": result.size, "sha256": result.sha256, "members": result.members,
        "bytes_read": result.bytes_read, "bytes_extracted": result.bytes_extracted, "seconds": doc["seconds"],
        "rules": sorted({f.rule for f in result.findings}),
        "limits_hit": sum(f.category is Category.LIMIT for f in result.findings),
        "findings": json.dumps(doc["findings"], ensure_ascii=False),
        "target": json.dumps(doc, ensure_ascii=False), "versions": versions,
    }


def _arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    return {"path": pa.string(), "decision": pa.string(), "error": pa.string(), "skipped": pa.string(),
            "format": pa.string(), "size": pa.int64(), "sha256": pa.string(), "members": pa.int64(),
            "bytes_read": pa.int64(), "bytes_extracted": pa.int64(), "seconds": pa.float64(),
            "rules": pa.list_(pa.string()), "limits_hit": pa.int32(), "findings": pa.string(), "target": pa.string(),
            "versions": pa.map_(pa.string(), pa.string())}


def _to_arrow(rows: list[dict[str, Any]], passthrough: Any) -> Any:
    """One output batch: the input's other columns as they were, then the result columns."""
    import pyarrow as pa

    types = _arrow_types()
    arrays = [passthrough.column(i) for i in range(passthrough.num_columns)]
    names = list(passthrough.schema.names)
    for name in SCAN_COLUMNS:
        values = [r[name] for r in rows]
        if name == "versions":
            values = [list(v.items()) for v in values]
        arrays.append(pa.array(values, type=types[name]))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _values(batch: Any, name: str) -> list[Any]:
    names = batch.schema.names
    return batch.column(names.index(name)).to_pylist() if name in names else [None] * batch.num_rows


def _scan_batches(batches: Iterator[Any], job: ScanJob, column: str) -> Iterator[Any]:
    engine = engine_for(job)
    try:
        for batch in batches:
            names = batch.schema.names
            keep = [i for i, n in enumerate(names) if n not in WALK_COLUMNS and n not in SCAN_COLUMNS]
            for start in range(0, batch.num_rows, ROWS_PER_BATCH):
                part = batch.slice(start, ROWS_PER_BATCH)
                rows = []
                for path, folder, skipped, error in zip(*(_values(part, c) for c in (column, *WALK_COLUMNS)),
                                                        strict=True):
                    if path is None:
                        result = TargetResult(path="", error="no path (null)")
                    else:
                        result = scan_one(engine, job, str(path), bool(folder), skipped, error)
                    rows.append(result_row(result, engine.versions))
                yield _to_arrow(rows, part.select(keep))
    finally:
        engine.scanner.close()  # remove the scanner's spool folder between tasks (made again on need)


def output_schema(input_schema: Any, column: str) -> Any:
    """The input's columns (walk columns and any named like a result column dropped) + SCAN_SCHEMA's."""
    from pyspark.sql.types import StructType, _parse_datatype_string

    result = _parse_datatype_string(SCAN_SCHEMA)
    assert isinstance(result, StructType)
    kept = [f for f in input_schema.fields if f.name not in WALK_COLUMNS and f.name not in SCAN_COLUMNS]
    return StructType([*kept, *result.fields])


def scan_dataframe(df: Any, job: ScanJob | None = None, column: str = "path", partitions: int | None = None) -> Any:
    """Scan every path/URI in `column`: the input's other columns, then one verdict row each (SCAN_COLUMNS).
    `partitions` spreads the targets over that many tasks first (default: as they are)."""
    job = job or ScanJob()
    if column not in df.columns:
        raise ValueError(f"no column {column!r} in the DataFrame (columns: {', '.join(df.columns)})")
    if partitions:
        df = df.repartition(partitions)
    return df.mapInArrow(lambda it: _scan_batches(it, job, column), output_schema(df.schema, column))


def _walk_rows(paths: Sequence[str]) -> Iterator[tuple[int, str, bool, str | None, str | None]]:
    seq = 0
    for given in paths:
        items: Iterator[WalkItem] = iter([WalkItem(given)]) if is_remote(given) else iter_targets([given],
                                                                                                   folders=True)
        for item in items:
            yield seq, item.path, item.folder, item.skipped, item.error
            seq += 1


def scan_paths(spark: Any, paths: Sequence[str], job: ScanJob | None = None, partitions: int | None = None,
               max_targets: int = 5_000_000) -> Any:
    """`jieyao scan PATH...` on Spark: folders are walked on the driver (as the CLI walks them), files and folder
    layouts are scanned on the workers, and folder summaries (a folder of aligned faces is one face set) are made
    on the driver from the rows that have findings, in walk order, exactly as the CLI makes them. Returns the
    rows, with a `seq` column giving the walk order; the scanned rows are cached until you unpersist them."""
    from pyspark import StorageLevel

    job = job or ScanJob()
    rows: list[tuple[int, str, bool, str | None, str | None]] = []
    for row in _walk_rows(paths):
        if len(rows) >= max_targets:
            raise ValueError(f"more than {max_targets} targets under the given paths: give Spark a listing "
                             "(a DataFrame of paths, or --paths-from) instead of walking them on the driver")
        rows.append(row)
    schema = "seq long, path string, walk_folder boolean, walk_skipped string, walk_error string"
    slices = partitions or max(1, min(len(rows), spark.sparkContext.defaultParallelism * 4))
    df = spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), schema)
    scanned = scan_dataframe(df.withColumn("walk_folder_keep", df.walk_folder), job)
    scanned = scanned.persist(StorageLevel.MEMORY_AND_DISK)
    folders = _rollup_rows(scanned, job)
    files = scanned.filter(~scanned.walk_folder_keep).drop("walk_folder_keep")
    if not folders:
        return files
    extra = spark.createDataFrame(folders, files.schema)
    return files.unionByName(extra)


def _rollup_rows(scanned: Any, job: ScanJob) -> list[tuple[Any, ...]]:
    """Folder results, summarised by the CLI's FolderRollup from the folder markers and the rows with findings
    (files without findings add nothing to a summary, so they never reach the driver)."""
    from jieyao.rollup import FolderRollup

    # partitions of a parallelized list hold contiguous runs of it: sorting within each keeps walk order
    # without a shuffle, and the driver holds one partition at a time
    needed = (scanned.filter(scanned.walk_folder_keep | (scanned.findings != "[]"))
              .select("seq", "walk_folder_keep", "target").sortWithinPartitions("seq"))
    engine = engine_for(job)
    rollup = FolderRollup(engine.scanner.recognisers)
    markers: dict[int, tuple[TargetResult, int]] = {}
    """id -> (the folder marker itself, its seq): holding the object keeps its id from being reused by a file's."""

    def results() -> Iterator[TargetResult]:
        last = -1
        for row in needed.toLocalIterator(prefetchPartitions=True):
            if row["seq"] <= last:
                raise RuntimeError("scan rows came back out of walk order; folder summaries cannot be made")
            last = row["seq"]
            result = TargetResult.from_dict(json.loads(row["target"]))
            if row["walk_folder_keep"]:
                markers[id(result)] = (result, int(row["seq"]))
            yield result

    out: list[tuple[Any, ...]] = []
    for result in rollup.wrap(results()):
        marker = markers.get(id(result))
        if marker is None or marker[0] is not result:
            continue  # a file: already in the scanned rows as it is
        seq = marker[1]
        row = result_row(result, engine.versions)
        out.append((seq, *(row[c] for c in SCAN_COLUMNS)))
    return out


def scan_binary_files(spark: Any, path: str, job: ScanJob | None = None, *, max_bytes: int = 64 * MiB,
                      recursive: bool = True, glob: str | None = None) -> Any:
    """Spark's `binaryFile` source for many small files: files up to `max_bytes` are read by Spark and scanned
    from memory (`scan_bytes`); larger ones are scanned through their path like any other target, so their
    bytes are never loaded into a row. Folder summaries are not made (rows are files), and Spark's file sources
    leave empty files out."""
    job = job or ScanJob()
    reader = spark.read.format("binaryFile").option("recursiveFileLookup", str(recursive).lower())
    if glob:
        reader = reader.option("pathGlobFilter", glob)
    files = reader.load(path)
    small = files.filter(files.length <= max_bytes).select("path", "content")
    big = files.filter(files.length > max_bytes).select("path")
    from_bytes = small.mapInArrow(lambda it: _scan_contents(it, job), output_schema(big.schema, "path"))
    return from_bytes.unionByName(scan_dataframe(big, job))


def _scan_contents(batches: Iterator[Any], job: ScanJob) -> Iterator[Any]:
    engine = engine_for(job)
    try:
        for batch in batches:
            for start in range(0, batch.num_rows, ROWS_PER_BATCH):
                part = batch.slice(start, ROWS_PER_BATCH)
                rows = []
                for path, content in zip(part.column(0).to_pylist(), part.column(1).to_pylist(), strict=True):
                    try:
                        result = engine.scanner.scan_bytes(str(path), content or b"")
                    except Exception as exc:
                        result = TargetResult(path=str(path), error=f"scan failed: {type(exc).__name__}: {exc}")
                    rows.append(result_row(result, engine.versions))
                yield _to_arrow(rows, part.select([]))
    finally:
        engine.scanner.close()


def cleanup_spool() -> None:
    """Remove this process's remote spool folder (tests; workers' folders go with their temp dirs)."""
    global _SPOOL_DIR
    if _SPOOL_DIR is not None:
        shutil.rmtree(_SPOOL_DIR, ignore_errors=True)
        _SPOOL_DIR = None
