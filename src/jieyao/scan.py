"""Batch scanning: walk the given paths, scan each target (in a process pool with jobs > 1), and stream
results back in input order. The CLI and the Python API both go through `iter_scan`."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from jieyao.engine import Scanner
from jieyao.intake.walk import WalkItem, iter_targets
from jieyao.limits import ScanLimits
from jieyao.model import ScanReport, TargetResult
from jieyao.recognise.base import DIRECTORY
from jieyao.registry import RecogniserConfig, build_recognisers
from jieyao.rollup import FolderRollup
from jieyao.rulepack import RulePack

RulesArg = RecogniserConfig | RulePack | str | Path | None


def make_config(rules: RulesArg = None, hashes: Iterable[str | Path] = (),
                yara: Iterable[str | Path] = ()) -> RecogniserConfig:
    if isinstance(rules, RecogniserConfig):
        base = rules
    elif isinstance(rules, RulePack):
        base = RecogniserConfig(rules_dirs=(str(rules.path),))
    elif rules is not None:
        base = RecogniserConfig(rules_dirs=(str(rules),))
    else:
        base = RecogniserConfig()
    return RecogniserConfig(
        hash_files=(*base.hash_files, *map(str, hashes)),
        rules_dirs=base.rules_dirs,
        yara_files=(*base.yara_files, *map(str, yara)),
        options=base.options,
    )


def make_scanner(limits: ScanLimits | None, config: RecogniserConfig) -> Scanner:
    return Scanner(limits, build_recognisers(config))


def result_for(scanner: Scanner, item: WalkItem) -> TargetResult:
    """One walked item's result; a folder is always one (a marker even when the layout says nothing: the
    rollup needs folder boundaries). Shared with the service's scan jobs."""
    if item.folder:
        return scanner.scan_folder(item.path) or TargetResult(path=item.path, format=DIRECTORY, size=0)
    if item.skipped is not None:
        return TargetResult(path=item.path, skipped=item.skipped)
    if item.error is not None:
        return TargetResult(path=item.path, error=item.error)
    return scanner.scan_path(item.path)


_WORKER: Scanner | None = None


def _worker_init(limits: ScanLimits, config: RecogniserConfig) -> None:
    global _WORKER
    _WORKER = make_scanner(limits, config)


def _worker_scan(batch: list[WalkItem]) -> list[TargetResult]:
    assert _WORKER is not None
    try:
        return [result_for(_WORKER, item) for item in batch]
    finally:
        _WORKER.close()  # pool workers exit without atexit handlers: remove the spool dir per batch


BATCH = 16
"""Targets sent to a worker at once: amortises inter-process overhead for many small files."""
BATCH_BYTES = 4 * 1024 * 1024
"""...unless they add up to this many bytes: big files go out alone, so no worker hoards them."""


def _size(item: WalkItem) -> int:
    if item.folder or item.skipped or item.error:
        return 0
    try:
        return os.stat(item.path).st_size
    except OSError:
        return 0


def _batches(items: Iterable[WalkItem], size: int, max_bytes: int = BATCH_BYTES) -> Iterator[list[WalkItem]]:
    batch: list[WalkItem] = []
    total = 0
    for item in items:
        batch.append(item)
        total += _size(item)
        if len(batch) >= size or total >= max_bytes:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


class _Pool:
    """A process pool that survives the death of a worker (killed for memory, crashed in a C library):
    the batch it held is reported as errors, a fresh pool takes the batches still in flight."""

    def __init__(self, jobs: int, limits: ScanLimits, config: RecogniserConfig) -> None:
        self._args = (jobs, limits, config)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        jobs, limits, config = self._args
        return ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init, initargs=(limits, config))

    def submit(self, batch: list[WalkItem]) -> Future[list[TargetResult]]:
        return self._pool.submit(_worker_scan, batch)

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _ordered_pool_map(pool: _Pool, items: Iterable[WalkItem], window: int) -> Iterator[TargetResult]:
    """Like pool.map, but keeps at most `window` batches in flight, so walking a bucket of a billion
    files does not queue a billion futures."""
    pending: deque[tuple[list[WalkItem], Future[list[TargetResult]]]] = deque()

    def settle() -> Iterator[TargetResult]:
        batch, future = pending.popleft()
        try:
            yield from future.result()
        except BrokenProcessPool as exc:
            for item in batch:
                yield TargetResult(path=item.path, error=f"the worker process scanning this batch died ({exc}); "
                                                         "not scanned")
            pool.restart()
            for i, (other, _) in enumerate(pending):
                pending[i] = (other, pool.submit(other))

    for batch in _batches(items, BATCH):
        pending.append((batch, pool.submit(batch)))
        if len(pending) >= window:
            yield from settle()
    while pending:
        yield from settle()


def iter_scan(paths: Sequence[str | Path], limits: ScanLimits | None = None,
              config: RecogniserConfig | None = None, jobs: int = 1) -> Iterator[TargetResult]:
    """Results in input order, as soon as each is ready. Recognisers are built before the first
    target so that a bad hash list or rule file fails the run up front."""
    limits = limits or ScanLimits()
    config = config or RecogniserConfig()
    given = [os.fspath(p) for p in paths]
    with make_scanner(limits, config) as scanner:  # in the pool case: validates configuration up front
        rollup = FolderRollup(scanner.recognisers)
        items = iter_targets(given, folders=True)
        if jobs <= 1:
            results = (result_for(scanner, item) for item in items)
            yield from rollup.wrap(results)
            return
        pool = _Pool(jobs, limits, config)
        try:
            yield from rollup.wrap(_ordered_pool_map(pool, items, window=jobs * 4))
        finally:
            pool.close()


def scan_paths(paths: Sequence[str | Path], limits: ScanLimits | None = None, rules: RulesArg = None, *,
               hashes: Iterable[str | Path] = (), yara: Iterable[str | Path] = (), jobs: int = 1,
               on_result: Callable[[TargetResult], None] | None = None) -> ScanReport:
    """Scan files and folders; returns the same report the CLI prints."""
    report = ScanReport()
    started = time.monotonic()
    for result in iter_scan(paths, limits, make_config(rules, hashes, yara), jobs):
        report.add(result)
        if on_result is not None:
            on_result(result)
    report.stats.seconds = time.monotonic() - started
    return report


def scan_bytes(name: str, data: bytes, limits: ScanLimits | None = None, rules: RulesArg = None, *,
               hashes: Iterable[str | Path] = (), yara: Iterable[str | Path] = ()) -> TargetResult:
    """Scan one in-memory upload; `name` is only used for display and for naming layer payloads."""
    with make_scanner(limits, make_config(rules, hashes, yara)) as scanner:
        return scanner.scan_bytes(name, data)
