"""The audit trail over HTTP (reviewers and admins): page through it, or export all of it.

The export streams page by page (`audit.iter_all`), so a log of millions of entries costs the memory of one
page. CSV cells that a spreadsheet would run as a formula (starting with = + - @ or a tab) are prefixed with
a single quote; the JSON Lines export is the faithful copy."""

from __future__ import annotations

import csv
import io
import itertools
import json
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from jieyao.service import audit
from jieyao.service.audit import MAX_PAGE, AuditEntry
from jieyao.service.auth import Principal, Role
from jieyao.service.deps import get_ctx, require

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
CSV_COLUMNS = ("id", "at", "actor", "action", "subject_type", "subject_id", "reason", "details")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SubjectType = Annotated[str | None, Query(max_length=30)]
SubjectId = Annotated[str | None, Query(max_length=100)]
Action = Annotated[str | None, Query(max_length=60)]
Actor = Annotated[str | None, Query(max_length=200)]


def _filters(subject_type: str | None, subject_id: str | None, action: str | None,
             actor: str | None) -> dict[str, Any]:
    return {"subject_type": subject_type, "subject_id": subject_id, "action": action, "actor": actor}


@router.get("", summary="Audit entries, oldest first; page with next_after")
def list_entries(request: Request, _who: Reviewer,
                 after: Annotated[int, Query(ge=0, le=2**63 - 1, description="the last id seen (exclusive)")] = 0,
                 limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                 subject_type: SubjectType = None, subject_id: SubjectId = None, action: Action = None,
                 actor: Actor = None) -> dict[str, Any]:
    page = audit.entries(get_ctx(request).db, after_id=after, limit=limit,
                         **_filters(subject_type, subject_id, action, actor))
    return {"entries": [e.to_dict() for e in page],
            "next_after": page[-1].id if len(page) == limit else None}


def _cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                                     sort_keys=True)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def csv_rows(entries: Iterator[AuditEntry]) -> Iterator[str]:
    yield _csv_line(list(CSV_COLUMNS))
    for e in entries:
        d = e.to_dict()
        yield _csv_line([str(d["id"])] + [_cell(d[c]) for c in CSV_COLUMNS[1:]])


def jsonl_rows(entries: Iterator[AuditEntry]) -> Iterator[str]:
    for e in entries:
        yield json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"


def _started(entries: Iterator[AuditEntry]) -> Iterator[AuditEntry]:
    """`entries` with its first page already read, so a database that is down answers 503 before the
    response starts instead of a truncated 200."""
    first = next(entries, None)
    if first is None:
        return iter(())
    return itertools.chain((first,), entries)


@router.get("/export", summary="Every matching entry as JSON Lines or CSV (streamed)",
            response_class=StreamingResponse)
def export(request: Request, _who: Reviewer, format: Literal["jsonl", "csv"] = "jsonl",
           subject_type: SubjectType = None, subject_id: SubjectId = None, action: Action = None,
           actor: Actor = None) -> StreamingResponse:
    db = get_ctx(request).db
    filters = _filters(subject_type, subject_id, action, actor)
    entries = _started(audit.iter_all(db, **filters))
    body = csv_rows(entries) if format == "csv" else jsonl_rows(entries)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"jieyao-audit-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{format}"
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                              "Cache-Control": "no-store"})
