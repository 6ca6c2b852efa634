#!/usr/bin/env python3
"""How much of a big ONNX model `read_onnx` reads, and how long it takes, against reading the whole file once.

Why this exists: face-swap models are 100-600 MB, nearly all initializer raw_data, and a recogniser needs
only their structure (I/O names and shapes, producer, opsets, initializer names and dims). The ONNX reader's
promise is that it gets all of that after reading well under 1 % of the file. This script writes a >= 500 MB
imitation (inswapper-like I/O: `target` [1,3,128,128], `source` [1,512], one output, many initializers and a
trailing 512x512 `buff2fs`) into a temp dir, streamed so it never sits in memory, times `read_onnx` on it and
compares with two baselines on the same warm page cache: one read of every byte, and that read plus SHA-256
(what `open_file_blob` does to every file). The file is deleted at the end. Not a test: run by hand,

    .venv/bin/python bench/onnx_bytes_read.py [--size-mb 560] [--initializers 300] [--nodes 1500] [--repeat 5]

The file is opened with `FileBlob(os.open(...), size)`, not `open_file_blob`, which would hash it first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for jieyao.imitations.onnx

from jieyao.formats.onnx import OnnxSummary, read_onnx
from jieyao.imitations import onnx as of
from jieyao.intake.blob import Blob, FileBlob

MiB = 1024 * 1024


def build(path: Path, size_mb: int, n_inits: int, n_nodes: int, fill: str) -> int:
    emap = 512 * 512 * 4
    weights = max(0, size_mb * MiB - emap)
    spec = of.inswapper_spec(weight_bytes=weights, n_weights=n_inits, n_nodes=n_nodes, fill=fill)
    return of.write_onnx_file(path, spec)


def time_read_onnx(path: Path, size: int, repeat: int) -> tuple[float, OnnxSummary, int]:
    best = float("inf")
    summary: OnnxSummary | None = None
    reads = 0
    for _ in range(repeat):
        blob = FileBlob(os.open(path, os.O_RDONLY), size)
        counted = _CountingBlob(blob)
        try:
            t0 = time.perf_counter()
            summary = read_onnx(counted)
            best = min(best, time.perf_counter() - t0)
        finally:
            blob.close()
        reads = counted.calls
    assert summary is not None
    return best, summary, reads


class _CountingBlob(Blob):
    """Counts read_at calls on a FileBlob (bytes are counted by the reader itself)."""

    def __init__(self, inner: FileBlob) -> None:
        self._inner = inner
        self.size = inner.size
        self.calls = 0

    def read_at(self, offset: int, n: int) -> bytes:
        self.calls += 1
        return self._inner.read_at(offset, n)

    def close(self) -> None:
        self._inner.close()


def time_full_read(path: Path, repeat: int, *, hash_it: bool) -> float:
    best = float("inf")
    buf = bytearray(16 * MiB)
    view = memoryview(buf)
    for _ in range(repeat):
        fd = os.open(path, os.O_RDONLY)
        digest = hashlib.sha256()
        try:
            t0 = time.perf_counter()
            while n := os.readv(fd, [view]):
                if hash_it:
                    digest.update(view[:n])
            best = min(best, time.perf_counter() - t0)
        finally:
            os.close(fd)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=560, help="initializer bytes, MiB (default 560)")
    ap.add_argument("--initializers", type=int, default=300, help="weight initializers before buff2fs")
    ap.add_argument("--nodes", type=int, default=1500)
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of each, best kept")
    ap.add_argument("--fill", choices=["zeros", "random"], default="random")
    ap.add_argument("--dir", default=None, help="where to write the temp file (default: the system temp dir)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="jieyao-onnx-bench-", dir=args.dir))
    path = tmp / "inswapper_like.onnx"
    try:
        t0 = time.perf_counter()
        size = build(path, args.size_mb, args.initializers, args.nodes, args.fill)
        write_s = time.perf_counter() - t0
        parse_s, summary, reads = time_read_onnx(path, size, args.repeat)
        read_s = time_full_read(path, args.repeat, hash_it=False)
        sha_s = time_full_read(path, args.repeat, hash_it=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ok = (summary.error is None and summary.complete and [i.name for i in summary.inputs] == ["target", "source"]
          and summary.initializers[-1].name == "buff2fs" and summary.initializer_count == args.initializers + 1
          and summary.node_count == args.nodes)
    figures = {
        "file_bytes": size, "initializers": summary.initializer_count, "nodes": summary.node_count,
        "bytes_read": summary.bytes_read, "read_at_calls": reads,
        "bytes_read_pct": round(100 * summary.bytes_read / size, 4),
        "read_onnx_s": round(parse_s, 5), "full_read_s": round(read_s, 4), "full_read_sha256_s": round(sha_s, 4),
        "speedup_vs_full_read": round(read_s / parse_s, 1), "write_s": round(write_s, 2),
        "summary_correct": ok, "goal_met": ok and summary.bytes_read < size / 100,
    }
    print(f"file: {size / MiB:.1f} MiB, {summary.initializer_count} initializers, {summary.node_count} nodes "
          f"(written in {write_s:.1f} s)")
    print(f"read_onnx: {summary.bytes_read} bytes read in {reads} read_at calls = "
          f"{figures['bytes_read_pct']}% of the file (goal < 1%), {parse_s * 1000:.1f} ms")
    print(f"baseline: read every byte {read_s * 1000:.0f} ms, read + SHA-256 {sha_s * 1000:.0f} ms "
          f"(warm page cache); read_onnx is {figures['speedup_vs_full_read']}x faster than one full read")
    print(f"summary correct: {ok}")
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
