"""Durable scan jobs, the API: `POST /v1/jobs/scan` stores a job (the runner in `job_runner` claims it and
stores every result as it comes), `GET /v1/jobs[/{id}[/results]]` shows progress and results, and
`POST /v1/jobs/{id}/cancel` stops it between targets."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert, select, update

from jieyao.service import audit
from jieyao.service.auth import Principal, Role
from jieyao.service.db import iso, now
from jieyao.service.deps import get_ctx, require
from jieyao.service.errors import bad_request, conflict, forbidden, not_found
from jieyao.service.roots import resolve_under_roots
from jieyao.service.schema import job_results, jobs

if TYPE_CHECKING:
    pass

log = logging.getLogger("jieyao.service.jobs")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
Submitter = Annotated[Principal, Depends(require(Role.submitter))]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
SUMMARY_KEYS = ("pass", "review", "block", "error", "bytes_read", "cases_opened")
RUNNER_ACTOR = "system"
MAX_LABEL = 200
MAX_RESULTS_PAGE = 1_000
MAX_LIST = 1_000
LIST_PATHS = 20
"""Paths shown per job in a list (a job may name max_batch long paths; `GET /v1/jobs/{id}` shows them all)."""
# --- the API ----------------------------------------------------------------------------------------------

class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(description="files or folders under a configured scan root")
    label: str | None = Field(default=None, max_length=MAX_LABEL)


def summary_of(stored: dict[str, Any] | None) -> dict[str, int]:
    stored = stored or {}
    return {k: int(stored.get(k, 0) or 0) for k in SUMMARY_KEYS}


def job_json(row: Any, *, max_paths: int | None = None) -> dict[str, Any]:
    params = dict(row.params or {})
    paths = [str(p) for p in params.get("paths", [])]
    return {
        "id": row.id, "kind": row.kind, "status": row.status, "label": params.get("label"),
        "paths": paths if max_paths is None else paths[:max_paths], "paths_total": len(paths),
        "submitted_by": row.submitted_by, "created": iso(row.created), "started": iso(row.started),
        "finished": iso(row.finished), "heartbeat": iso(row.heartbeat), "attempts": row.attempts,
        "progress": {"targets_done": row.targets_done}, "summary": summary_of(row.summary), "error": row.error,
        "results_url": f"/v1/jobs/{row.id}/results",
    }


def load_job(conn: Connection, job_id: str) -> Any:
    if not isinstance(job_id, str) or len(job_id) > 36:
        raise not_found(f"no job {job_id!r}")
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise not_found(f"no job {job_id!r}")
    return row


@router.post("/scan", status_code=202, summary="Queue a scan of server-side files and folders")
def create_job(body: JobRequest, request: Request, who: Submitter) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    if not body.paths:
        raise bad_request("paths must name at least one file or folder")
    if len(body.paths) > ctx.cfg.max_batch:
        raise bad_request(f"at most {ctx.cfg.max_batch} paths per job, got {len(body.paths)}")
    resolved = list(dict.fromkeys(str(resolve_under_roots(ctx.cfg.scan_roots, p)) for p in body.paths))
    job_id = str(uuid.uuid4())
    with ctx.db.tx(write=True) as conn:
        conn.execute(insert(jobs).values(id=job_id, kind="scan", status="queued", submitted_by=who.actor,
                                         params={"paths": resolved, "label": body.label}, created=now(),
                                         attempts=0, targets_done=0, summary={}))
        audit.record(conn, who.actor, "job.create", subject_type="job", subject_id=job_id,
                     details={"paths": len(resolved), "label": body.label})
        row = load_job(conn, job_id)
    ctx.jobs.wake()
    return job_json(row)


@router.get("", summary="Jobs, newest first")
def list_jobs(request: Request, _who: Submitter, status: str | None = None,
              limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise bad_request(f"status must be one of {', '.join(STATUSES)}")
    q = select(jobs).order_by(jobs.c.created.desc(), jobs.c.id).limit(limit)
    if status is not None:
        q = q.where(jobs.c.status == status)
    with get_ctx(request).db.tx(write=False) as conn:
        return {"jobs": [job_json(r, max_paths=LIST_PATHS) for r in conn.execute(q)]}


@router.get("/{job_id}", summary="A job's status, progress and summary")
def get_job(job_id: str, request: Request, _who: Submitter) -> dict[str, Any]:
    with get_ctx(request).db.tx(write=False) as conn:
        return job_json(load_job(conn, job_id))


@router.get("/{job_id}/results", summary="A job's results in walk order, paged by seq")
def get_results(job_id: str, request: Request, _who: Submitter,
                after: Annotated[int, Query(ge=-1, le=2**31)] = -1,
                limit: Annotated[int, Query(ge=1, le=MAX_RESULTS_PAGE)] = 100) -> dict[str, Any]:
    with get_ctx(request).db.tx(write=False) as conn:
        load_job(conn, job_id)
        rows = list(conn.execute(
            select(job_results.c.seq, job_results.c.path, job_results.c.decision, job_results.c.result,
                   job_results.c.case_id)
            .where(job_results.c.job_id == job_id, job_results.c.seq > after)
            .order_by(job_results.c.seq).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"job": job_id,
            "results": [{"seq": r.seq, "path": r.path, "decision": r.decision, "result": r.result,
                         "case_id": r.case_id} for r in rows],
            "next_after": rows[-1].seq if more else None}


@router.post("/{job_id}/cancel", summary="Cancel a queued or running job (it stops between targets)")
def cancel_job(job_id: str, request: Request, who: Submitter) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    with ctx.db.tx(write=True) as conn:
        row = load_job(conn, job_id)
        if row.submitted_by != who.actor and who.role < Role.reviewer:
            raise forbidden("a submitter can cancel only its own jobs")
        if row.status in FINISHED:
            raise conflict(f"job {job_id} is already {row.status}", {"status": row.status})
        done = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == row.status)
                            .values(status="cancelled", finished=now(), error=f"cancelled by {who.actor}"))
        if done.rowcount != 1:
            raise conflict(f"job {job_id} changed while it was being cancelled; try again")
        audit.record(conn, who.actor, "job.cancel", subject_type="job", subject_id=job_id,
                     details={"was": row.status, "targets_done": row.targets_done})
        row = load_job(conn, job_id)
    ctx.jobs.cancelled(job_id)
    return job_json(row)
