"""Liveness, readiness and metrics: no key needed (they say nothing about content), as load balancers and
Prometheus expect. `/healthz` only says the process answers; `/readyz` checks what a request needs."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from jieyao import __version__
from jieyao.service.deps import get_ctx

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The service can take requests: database, schema, engines, workers")
def readyz(request: Request) -> JSONResponse:
    ctx = get_ctx(request)
    problems: list[str] = []
    if not ctx.ready:
        problems.append("engines are not built yet")
    trouble = ctx.db.ping()
    if trouble:
        problems.append(trouble)
    if ctx.read_only:
        problems.append(ctx.read_only)
    problems.extend(ctx.jobs.problems())
    body = {"ready": not problems, "problems": problems, "version": __version__}
    return JSONResponse(body, status_code=200 if not problems else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(get_ctx(request).metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
