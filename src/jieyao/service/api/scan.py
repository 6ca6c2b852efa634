"""`POST /v1/scan`: one file, uploaded (raw body or multipart part `file`) or named by a server-side path
under the scan roots; answers the CLI's verdict JSON (`jieyao.scan/1`) plus what the service did with it.
Folders and many files go to `/v1/jobs/scan`."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from jieyao.hashing.files import digest_file
from jieyao.model import Decision, ScanReport, TargetResult
from jieyao.service.api.uploads import Upload, clean_name, receive_upload
from jieyao.service.auth import Principal, Role
from jieyao.service.cases import CaseSubject, maybe_open_case
from jieyao.service.context import ServiceContext
from jieyao.service.db import StoreUnavailable
from jieyao.service.deps import get_ctx, require, run_bounded
from jieyao.service.errors import bad_request
from jieyao.service.evidence import pdq_of
from jieyao.service.roots import resolve_under_roots

router = APIRouter(tags=["scan"])
Submitter = Annotated[Principal, Depends(require(Role.submitter))]
SCAN_BODY = {
    "requestBody": {"content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
        "application/json": {"schema": {"type": "object", "properties": {
            "path": {"type": "string", "description": "a file under a configured scan root"}},
            "required": ["path"]}},
    }, "required": True}}


def scan_file(ctx: ServiceContext, path: str, display: str) -> TargetResult:
    with ctx.engines.scanner() as scanner:
        return scanner.scan_path(path, display=display)


def score_of(result: TargetResult) -> float:
    flagged = [f.confidence for f in result.findings if f.decision is not Decision.PASS]
    return max(flagged, default=1.0 if result.error else 0.0)


async def verdict_response(ctx: ServiceContext, who: Principal, result: TargetResult, identity: dict[str, Any],
                           file_path: str | None, source: str) -> dict[str, Any]:
    """The CLI's JSON for this one target, plus `service` (hashes, case); opens a case when configured."""
    report = ScanReport()
    report.add(result)
    report.stats.seconds = result.seconds
    body = report.to_dict()
    ctx.metrics.observe_findings("scan", result.decision.value,
                                 [(f.rule, f.decision.value) for f in result.findings])
    case_id = None
    case_error: str | None = None
    if result.decision is not Decision.PASS:
        if file_path is not None and result.decision.value in ctx.cfg.cases_on:
            pdq = await run_bounded(ctx, pdq_of, file_path)
            if pdq:
                identity = {**identity, "pdq": pdq}
        try:
            case_id = await run_bounded(ctx, lambda: maybe_open_case(
                ctx, subject=CaseSubject("file", identity["name"], identity), verdict=result.decision,
                score=score_of(result), result=result.to_dict(), versions=ctx.engines.scan_versions(),
                source=source, actor=who.actor))
        except StoreUnavailable as exc:  # the verdict still stands; the caller is told the case is missing
            case_error = str(exc)
    body["service"] = {"target": identity, "case_id": case_id, "versions": ctx.engines.scan_versions()}
    if case_error:
        body["service"]["case_error"] = case_error
    return body


@router.post("/v1/scan", summary="Scan one file: an upload, or a server-side path under the scan roots",
             openapi_extra=SCAN_BODY)
async def scan(request: Request, who: Submitter,
               name: Annotated[str | None, Query(description="the upload's file name (raw bodies)")] = None
               ) -> dict[str, Any]:
    ctx = get_ctx(request)
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/json"):
        return await _scan_server_path(ctx, request, who)
    started = time.monotonic()
    upload: Upload
    async with receive_upload(ctx, request, name) as upload:
        result = await run_bounded(ctx, scan_file, ctx, upload.path, upload.name)
        result.seconds = time.monotonic() - started
        return await verdict_response(ctx, who, result, upload.identity(), upload.path, "scan")


async def _scan_server_path(ctx: ServiceContext, request: Request, who: Principal) -> dict[str, Any]:
    try:
        payload = await request.json()
    except ValueError:
        raise bad_request("the body is not valid JSON") from None
    if not isinstance(payload, dict) or set(payload) - {"path"} or not isinstance(payload.get("path"), str):
        raise bad_request('expected {"path": "<a file under a scan root>"}')
    real = resolve_under_roots(ctx.cfg.scan_roots, payload["path"])
    if not real.is_file():
        raise bad_request(f"{payload['path']} is not a regular file (scan folders with POST /v1/jobs/scan)")
    shown = payload["path"]
    result = await run_bounded(ctx, scan_file, ctx, str(real), shown)
    digests = await run_bounded(ctx, digest_file, str(real))
    identity = {"name": clean_name(real.name), "path": str(real), "sha256": digests.sha256, "md5": digests.md5,
                "size": digests.size}
    return await verdict_response(ctx, who, result, identity, str(real), "scan")
