"""Durable scan jobs, the runner: worker threads claim stored jobs, walk their paths with the scanner chassis
and store every result as it comes, so a job outlives the process that started it.

Durability, in short:
- A claim is a compare-and-set UPDATE on the row as it was read (status, attempts, owner, heartbeat), so two
  processes on one database never both take a job; each holder beats the heartbeat while it works.
- A `running` job whose heartbeat is older than `job_stale_s`, or whose owner is a dead process on this host,
  is taken over; one started `job_max_attempts` times already is failed with that reason instead.
- Results carry a `seq`; a resumed run walks the same paths, feeds the results it already stored back into
  the folder rollup (so folder summaries stay whole) and stores only what is new: no duplicates, no gaps.
- Every write is conditional on still owning the job: a cancelled or taken-over job stops its old holder."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, insert, select, update

from jieyao.intake.walk import WalkItem, iter_targets
from jieyao.model import Decision, TargetResult
from jieyao.recognise.base import DIRECTORY
from jieyao.rollup import FolderRollup
from jieyao.scan import result_for
from jieyao.service import audit
from jieyao.service.cases import CaseSubject, maybe_open_case
from jieyao.service.db import StoreUnavailable, aware, now
from jieyao.service.errors import ApiError
from jieyao.service.evidence import file_identity
from jieyao.service.jobs import RUNNER_ACTOR, load_job, summary_of
from jieyao.service.roots import resolve_under_roots
from jieyao.service.schema import job_results, jobs

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext


log = logging.getLogger("jieyao.service.job_runner")

FLUSH_EVERY = 32
FLUSH_SECONDS = 0.5
"""Results are written in one short transaction per FLUSH_EVERY targets or FLUSH_SECONDS, whichever comes
first: a commit per tiny file would cost more than scanning it, and a crash redoes at most this much."""
IDLE_WAIT_S = 0.5
CLAIM_RETRY_S = 1.0
JOIN_TIMEOUT_S = 10.0
CANDIDATES = 20

_HOST = socket.gethostname()[:60] or "localhost"
_LIVE_OWNERS: set[str] = set()
"""Owners of runners alive in this process: a job owned by this pid under another token was left by a
runner that has stopped (tests run several services in one process)."""
_LIVE_LOCK = threading.Lock()


# --- owners -----------------------------------------------------------------------------------------------

def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    try:  # a killed child not yet reaped is a zombie: dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[-1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def owner_dead(owner: str | None) -> bool:
    """True when `owner` is certainly gone: a process on this host that is not alive, or a runner of this
    process that has stopped. False when it may be alive (another host: only its heartbeat can tell)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _LIVE_LOCK:
            return owner not in _LIVE_OWNERS
    return not _pid_alive(pid)


# --- the runner -------------------------------------------------------------------------------------------

class _NotOwner(Exception):
    """The job is no longer ours to write (cancelled, or taken over by another process)."""


@dataclass
class Claim:
    """A job this runner now holds."""

    id: str
    paths: list[str]
    submitted_by: str
    attempts: int
    started: dt.datetime
    summary: dict[str, int]


@dataclass
class _Run:
    claim: Claim
    owner: str
    stop: threading.Event = field(default_factory=threading.Event)
    skip: Counter[str] = field(default_factory=Counter)
    """Paths of results already stored (by an earlier attempt): not stored again."""
    replay: Counter[str] = field(default_factory=Counter)
    """The same paths, for feeding their stored results to the rollup instead of scanning them again."""
    next_seq: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)


class JobRunner:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.owner = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        with _LIVE_LOCK:
            _LIVE_OWNERS.add(self.owner)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._deaths: list[str] = []
        self._active: dict[str, _Run] = {}
        self._lock = threading.Lock()

    # --- life ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        for n in range(self.ctx.cfg.job_workers):
            self._spawn(f"jieyao-job-worker-{n}", self._work)
        self._spawn("jieyao-job-heartbeat", self._beat_forever)

    def _spawn(self, name: str, target: Any) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:  # recorded for /readyz; the process goes on serving
                self._deaths.append(f"{name}: {type(exc).__name__}: {exc}")
                log.exception("%s died", name)

        t = threading.Thread(target=guarded, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Workers stop between targets, write what they have and hand their jobs back to the queue; a target
        being scanned is bounded by ScanLimits.max_seconds, and this waits at most JOIN_TIMEOUT_S for it."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            for run in self._active.values():
                run.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        with _LIVE_LOCK:
            _LIVE_OWNERS.discard(self.owner)

    def problems(self) -> list[str]:
        out = [f"job worker thread died: {d}" for d in self._deaths]
        if not self._stopping.is_set():
            out += [f"job worker thread died: {t.name}" for t in self._threads
                    if not t.is_alive() and not any(d.startswith(t.name + ":") for d in self._deaths)]
        return out

    def wake(self) -> None:
        """A job was queued: an idle worker starts it now rather than at its next poll."""
        self._wake.set()

    def cancelled(self, job_id: str) -> None:
        """The API cancelled `job_id`; if this process runs it, stop before the next target."""
        with self._lock:
            run = self._active.get(job_id)
        if run is not None:
            run.stop.set()

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                claim = self.claim()
            except StoreUnavailable as exc:
                log.warning("cannot claim scan jobs now: %s", exc)
                self._stopping.wait(CLAIM_RETRY_S)
                continue
            except Exception:
                log.exception("claiming a scan job failed")
                self._stopping.wait(CLAIM_RETRY_S)
                continue
            if claim is None:
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()
                continue
            self.run(claim)

    def run_once(self) -> str | None:
        """Claim one job and run it in this thread; its id, or None when there was nothing to do (tests)."""
        claim = self.claim()
        if claim is None:
            return None
        self.run(claim)
        return claim.id

    # --- claiming ---------------------------------------------------------------------------------------

    def claim(self) -> Claim | None:
        """Take the oldest queued job, else a running one whose holder is gone; None when there is none."""
        cutoff = now() - dt.timedelta(seconds=self.ctx.cfg.job_stale_s)
        with self.ctx.db.tx(write=False) as conn:
            queued = list(conn.execute(select(jobs).where(jobs.c.status == "queued")
                                       .order_by(jobs.c.created, jobs.c.id).limit(CANDIDATES)))
            stale = list(conn.execute(select(jobs).where(jobs.c.status == "running", jobs.c.heartbeat < cutoff)
                                      .order_by(jobs.c.created).limit(CANDIDATES)))
            ours = list(conn.execute(select(jobs).where(jobs.c.status == "running",
                                                        jobs.c.owner.like(f"{_HOST}:%"))
                                     .order_by(jobs.c.created).limit(CANDIDATES)))
        seen: set[str] = set()
        for row in [*queued, *stale, *(r for r in ours if owner_dead(r.owner))]:
            if row.id in seen or row.owner == self.owner:
                continue
            seen.add(row.id)
            got = self._take(row)
            if got is not None:
                return got
        return None

    def _unchanged(self, row: Any) -> list[ColumnElement[bool]]:
        """The compare-and-set condition: the row is still as it was read."""
        return [jobs.c.id == row.id, jobs.c.status == row.status, jobs.c.attempts == row.attempts,
                jobs.c.owner.is_(None) if row.owner is None else jobs.c.owner == row.owner,
                jobs.c.heartbeat.is_(None) if row.heartbeat is None else jobs.c.heartbeat == row.heartbeat]

    def _take(self, row: Any) -> Claim | None:
        attempts = row.attempts + 1
        if attempts > self.ctx.cfg.job_max_attempts:
            self._give_up(row)
            return None
        when = now()
        started = aware(row.started) or when
        with self.ctx.db.tx(write=True) as conn:
            res = conn.execute(update(jobs).where(*self._unchanged(row)).values(
                status="running", owner=self.owner, attempts=attempts, started=started, heartbeat=when))
            if res.rowcount != 1:
                return None
            audit.record(conn, RUNNER_ACTOR, "job.start", subject_type="job", subject_id=row.id,
                         details={"attempt": attempts, "owner": self.owner,
                                  "resumed_from": row.owner if row.status == "running" else None,
                                  "targets_done": row.targets_done})
        params = dict(row.params or {})
        return Claim(id=row.id, paths=[str(p) for p in params.get("paths", [])], submitted_by=row.submitted_by,
                     attempts=attempts, started=started, summary=summary_of(row.summary))

    def _give_up(self, row: Any) -> None:
        reason = (f"gave up after {row.attempts} starts: the service stopped during the job each time "
                  f"(last owner {row.owner or 'unknown'})")
        when = now()
        with self.ctx.db.tx(write=True) as conn:
            res = conn.execute(update(jobs).where(*self._unchanged(row))
                               .values(status="failed", finished=when, error=reason))
            if res.rowcount != 1:
                return
            audit.record(conn, RUNNER_ACTOR, "job.finish", subject_type="job", subject_id=row.id, reason=reason,
                         details={"status": "failed", "summary": summary_of(row.summary),
                                  "targets_done": row.targets_done})
        self._observe("failed", aware(row.started) or aware(row.created) or when, when)
        log.warning("scan job %s: %s", row.id, reason)

    # --- running ------------------------------------------------------------------------------------------

    def run(self, claim: Claim) -> None:
        """Scan the claimed job to its end (or until it is cancelled, taken over or the runner stops). Never
        raises: a failure is written to the job when the database takes it, else left to the stale claim."""
        run = _Run(claim, self.owner)
        with self._lock:
            self._active[claim.id] = run
        if self._stopping.is_set():  # claimed just as stop() began: hand it straight back
            run.stop.set()
        try:
            self._load_stored(run)
            finished = self._scan(run)
            self._flush(run)
            if finished:
                self._finish(run, "done", None)
            elif self._stopping.is_set():
                self._release(run)
            else:
                self._settle(run)
        except _NotOwner:
            self._settle(run)
        except StoreUnavailable as exc:
            self._fail(run, f"the database failed during the job: {exc}")
        except Exception as exc:
            log.exception("scan job %s failed", claim.id)
            self._fail(run, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active.pop(claim.id, None)

    def _load_stored(self, run: _Run) -> None:
        with self.ctx.db.tx(write=False) as conn:
            for r in conn.execute(select(job_results.c.path).where(job_results.c.job_id == run.claim.id)):
                run.skip[r.path] += 1
            top = conn.execute(select(func.max(job_results.c.seq))
                               .where(job_results.c.job_id == run.claim.id)).scalar()
        run.replay = run.skip.copy()
        run.next_seq = -1 if top is None else int(top)
        run.next_seq += 1

    def _walk(self, run: _Run) -> Iterator[WalkItem | TargetResult]:
        """The job's targets in a fixed order. Each path is checked against the roots again: the
        configuration, or what a path's folders are, may have changed since the job was queued."""
        for path in run.claim.paths:
            try:
                resolve_under_roots(self.ctx.cfg.scan_roots, path)
            except ApiError as exc:
                yield TargetResult(path=path, error=f"not scanned: {exc.message}")
                continue
            yield from iter_targets([path], folders=True)

    def _scan(self, run: _Run) -> bool:
        """True when every target was seen; False when stopped part-way (folders left open are not
        summarised: the next run walks them again)."""
        with self.ctx.engines.scanner() as scanner:
            # summarise hooks are pure functions of the findings they are given, so the recognisers of a
            # scanner back in the pool may still summarise here
            rollup = FolderRollup(scanner.recognisers)
        for item in self._walk(run):
            if run.stop.is_set():
                return False
            result = item if isinstance(item, TargetResult) else self._target(run, item)
            if run.stop.is_set():  # stopped while scanning it (a closing service may have cut it short): the
                return False       # next run scans it again
            for out in rollup.feed(result):
                self._emit(run, out)
        if run.stop.is_set():
            return False
        for out in rollup.finish():
            self._emit(run, out)
        return True

    def _target(self, run: _Run, item: WalkItem) -> TargetResult:
        if not item.folder and run.replay[item.path] > 0:
            stored = self._stored_result(run.claim.id, item.path)
            if stored is not None:
                run.replay[item.path] -= 1
                return stored
        try:
            with self.ctx.engines.scanner() as scanner:
                return result_for(scanner, item)
        except StoreUnavailable:
            raise
        except Exception as exc:  # the chassis reports errors as results: this is a bug, and it stays one target's
            log.exception("scanning %s failed", item.path)
            return TargetResult(path=item.path, error=f"internal error scanning this target: "
                                                      f"{type(exc).__name__}: {exc}")

    def _stored_result(self, job_id: str, path: str) -> TargetResult | None:
        with self.ctx.db.tx(write=False) as conn:
            data = conn.execute(select(job_results.c.result).where(job_results.c.job_id == job_id,
                                                                   job_results.c.path == path)
                                .order_by(job_results.c.seq).limit(1)).scalar()
        if not isinstance(data, dict):
            return None
        try:
            return TargetResult.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # unreadable: scan it again (only for the rollup; the stored row stays)

    def _emit(self, run: _Run, result: TargetResult) -> None:
        if run.skip[result.path] > 0:
            run.skip[result.path] -= 1
            return
        decision = result.decision
        self.ctx.metrics.observe_findings("scan", decision.value,
                                          [(f.rule, f.decision.value) for f in result.findings])
        data = result.to_dict()
        case_id = self._open_case(run, result, data) if decision is not Decision.PASS else None
        summary = run.claim.summary
        summary[decision.value] += 1
        summary["error"] += result.error is not None
        summary["bytes_read"] += result.bytes_read
        summary["cases_opened"] += case_id is not None
        run.buffer.append({"job_id": run.claim.id, "seq": run.next_seq, "path": result.path,
                           "decision": decision.value, "result": data, "case_id": case_id})
        run.next_seq += 1
        if len(run.buffer) >= FLUSH_EVERY or time.monotonic() - run.last_flush >= FLUSH_SECONDS:
            self._flush(run)

    def _open_case(self, run: _Run, result: TargetResult, data: dict[str, Any]) -> int | None:
        identity: dict[str, Any] = {"name": os.path.basename(result.path.rstrip(os.sep)) or result.path,
                                    "path": result.path}
        if result.format != DIRECTORY and result.decision.value in self.ctx.cfg.cases_on:
            identity.update(file_identity(result.path, self.ctx.cfg.limits.max_file_bytes))
        flagged = [f.confidence for f in result.findings if f.decision is not Decision.PASS]
        return maybe_open_case(self.ctx, subject=CaseSubject(kind="file", name=identity["name"], identity=identity),
                               verdict=result.decision, score=max(flagged, default=1.0), result=data,
                               versions=self.ctx.engines.scan_versions(), source=f"job:{run.claim.id}",
                               actor=run.claim.submitted_by)

    def _flush(self, run: _Run) -> None:
        """Store the buffered results, progress, summary and heartbeat in one transaction, if still ours."""
        rows, run.buffer = run.buffer, []
        run.last_flush = time.monotonic()
        with self.ctx.db.tx(write=True) as conn:
            res = conn.execute(update(jobs).where(*self._ours(run)).values(
                targets_done=jobs.c.targets_done + len(rows), summary=dict(run.claim.summary), heartbeat=now()))
            if res.rowcount != 1:
                raise _NotOwner(run.claim.id)
            if rows:
                conn.execute(insert(job_results), rows)

    def _ours(self, run: _Run, status: str = "running") -> list[ColumnElement[bool]]:
        return [jobs.c.id == run.claim.id, jobs.c.owner == run.owner, jobs.c.status == status]

    def _finish(self, run: _Run, status: str, reason: str | None) -> None:
        when = now()
        with self.ctx.db.tx(write=True) as conn:
            res = conn.execute(update(jobs).where(*self._ours(run)).values(
                status=status, finished=when, heartbeat=when, error=reason, summary=dict(run.claim.summary)))
            if res.rowcount != 1:
                raise _NotOwner(run.claim.id)
            audit.record(conn, RUNNER_ACTOR, "job.finish", subject_type="job", subject_id=run.claim.id,
                         reason=reason, details={"status": status, "summary": dict(run.claim.summary),
                                                 "targets_done": run.next_seq, "attempts": run.claim.attempts})
        self._observe(status, run.claim.started, when)

    def _settle(self, run: _Run) -> None:
        """The job stopped being ours: when it was cancelled (and is still ours to close), record how it
        ended; when another process took it over, leave it to that one."""
        when = now()
        with self.ctx.db.tx(write=True) as conn:
            res = conn.execute(update(jobs).where(*self._ours(run, "cancelled")).values(heartbeat=when))
            if res.rowcount != 1:
                log.info("scan job %s was taken over by another process; this one stops", run.claim.id)
                return
            row = load_job(conn, run.claim.id)
            audit.record(conn, RUNNER_ACTOR, "job.finish", subject_type="job", subject_id=run.claim.id,
                         reason=row.error, details={"status": "cancelled", "summary": summary_of(row.summary),
                                                    "targets_done": row.targets_done,
                                                    "attempts": run.claim.attempts})
        self._observe("cancelled", run.claim.started, when)

    def _release(self, run: _Run) -> None:
        """The service is stopping: hand the job back to the queue (this start does not count as an attempt,
        since nothing went wrong), so the next process resumes it at once."""
        with self.ctx.db.tx(write=True) as conn:
            conn.execute(update(jobs).where(*self._ours(run)).values(
                status="queued", owner=None, heartbeat=None, attempts=jobs.c.attempts - 1))

    def _fail(self, run: _Run, reason: str) -> None:
        try:
            self._finish(run, "failed", reason[:2000])
        except _NotOwner:
            self._settle(run)
        except StoreUnavailable:
            log.warning("scan job %s failed (%s) and the database cannot say so now; it will be taken over "
                        "when its heartbeat is stale", run.claim.id, reason)

    def _observe(self, status: str, started: dt.datetime, finished: dt.datetime) -> None:
        self.ctx.metrics.job_seconds.labels(status).observe(max(0.0, (finished - started).total_seconds()))

    # --- heartbeat --------------------------------------------------------------------------------------

    def _beat_forever(self) -> None:
        while not self._stopping.wait(self.ctx.cfg.job_heartbeat_s):
            with self._lock:
                running = list(self._active.values())
            for run in running:
                self.beat(run)

    def beat(self, run: _Run) -> None:
        """Say the job is alive; a job no longer ours (cancelled, taken over) is told to stop."""
        try:
            with self.ctx.db.tx(write=True) as conn:
                res = conn.execute(update(jobs).where(*self._ours(run)).values(heartbeat=now()))
        except StoreUnavailable as exc:
            log.warning("scan job %s: heartbeat not written: %s", run.claim.id, exc)
            return
        if res.rowcount != 1:
            run.stop.set()
