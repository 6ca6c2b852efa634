"""The ASGI app: `create_app(config)` builds a FastAPI application around one ServiceContext.

Pure-ASGI middlewares (cheaper than Starlette's BaseHTTPMiddleware, which the latency goal cannot afford)
bound request bodies and record metrics; every error leaves in the one shape of `errors.ApiError`."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jieyao import __version__
from jieyao.service.config import ServiceConfig
from jieyao.service.context import ServiceContext
from jieyao.service.db import SchemaError, StoreUnavailable
from jieyao.service.errors import ApiError

log = logging.getLogger("jieyao.service")
UPLOAD_PATHS = ("/v1/scan", "/v1/match", "/v1/hash")
"""Routes whose bodies are files (max_upload_bytes); every other body is bounded by max_body_bytes."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class BodyLimit:
    """Refuses a body over its limit: at once from Content-Length, else while it streams in."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        uploads = path.startswith(UPLOAD_PATHS) or (path.startswith("/v1/banks/") and path.endswith("/import"))
        limit = self.ctx.cfg.max_upload_bytes if uploads else self.ctx.cfg.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit or declared < 0:
                    await _too_large(send, limit) if declared > limit else await _send_error(
                        send, ApiError(400, "bad_request", "bad Content-Length"))
                    return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, bounded, send)


async def _send_error(send: Send, err: ApiError) -> None:
    import json

    body = json.dumps(err.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, limit: int) -> None:
    await _send_error(send, _too_large_error(limit))


def _too_large_error(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"the request body is larger than the limit of {limit} bytes")


class RequestMetrics:
    """Counts requests and times them by route template (not by raw path: ids would explode the labels)."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.ctx.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)


def _json_error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _json_error(exc)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        return _json_error(ApiError(503, "unavailable", str(exc), headers={"Retry-After": "30"}))

    @app.exception_handler(BodyTooLarge)
    async def too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _json_error(_too_large_error(exc.limit))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                    for e in exc.errors()[:20]]
        malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
        message = "the body is not valid JSON" if malformed else "the request does not match the API"
        return _json_error(ApiError(400 if malformed else 422, "bad_request" if malformed else "invalid", message,
                                    problems))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json_error(ApiError(500, "internal", f"internal error ({type(exc).__name__}); it was logged"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
        return _json_error(ApiError(exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail),
                                    headers=dict(exc.headers or {})))


ERROR_SCHEMA = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}
COMMON_ERRORS = {"400": "Malformed request", "401": "No key, or an unknown or revoked one",
                 "403": "The key's role is not enough", "413": "Body over the limit", "429": "Rate limit (Retry-After)",
                 "503": "Database unavailable or read-only", "504": "Took longer than request_timeout_s"}
PUBLIC = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")


def install_reference(app: FastAPI) -> None:
    """The OpenAPI document says how to authenticate (an API key header, or a bearer token) and which routes
    need none; `/docs` renders it without any script from elsewhere."""
    from fastapi.responses import HTMLResponse

    from jieyao.service import reference

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            doc.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"}}
            doc["security"] = [{"apiKey": []}, {"bearer": []}]
            doc["components"].setdefault("schemas", {})["Error"] = ERROR_SCHEMA
            ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for path, item in doc.get("paths", {}).items():
                for op in item.values():
                    if path in PUBLIC:
                        op["security"] = []
                        continue
                    for code, why in COMMON_ERRORS.items():
                        op.setdefault("responses", {}).setdefault(code, {"description": why, **ref})
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(reference.render(app.openapi()))


def create_app(config: ServiceConfig | None = None, *, background: bool = True,
               context: ServiceContext | None = None) -> FastAPI:
    """The app for `config`; the database is migrated and the engines are built when it starts (lifespan),
    so `TestClient(app)` and `uvicorn` both start it the same way."""
    ctx = context or ServiceContext(config or ServiceConfig(), background=background)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            ctx.start()
        except (StoreUnavailable, SchemaError):
            ctx.stop()
            raise
        try:
            yield
        finally:
            ctx.stop()

    app = FastAPI(title="jieyao", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Recognise the deepfake face-swap supply chain: scan files, moderate listings, match "
                              "hash banks, review cases. Every endpoint but the health checks needs an API key "
                              "(X-API-Key or Authorization: Bearer).")
    app.state.ctx = ctx
    install_error_handlers(app)
    install_reference(app)
    from jieyao.service import cases, console, jobs
    from jieyao.service.api import audit, banks, health, keys, moderate, scan

    for module in (health, scan, moderate, banks, keys, jobs, cases, audit):
        app.include_router(module.router)
    if ctx.cfg.console:
        console.mount(app)
    app.add_middleware(BodyLimit, ctx=ctx)
    app.add_middleware(RequestMetrics, ctx=ctx)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory for `jieyao serve --workers N`: the settings travel in JIEYAO_SERVICE_CONFIG_JSON."""
    import json
    import os

    from jieyao.service.config import load_config

    settings = json.loads(os.environ.get("JIEYAO_SERVICE_CONFIG_JSON", "{}"))
    path = settings.pop("config", None)
    return create_app(load_config(path, **settings))


def openapi_document(config: ServiceConfig | None = None) -> dict[str, Any]:
    """The OpenAPI document, without starting anything (for docs and schema tests)."""
    return create_app(config or ServiceConfig(database=":memory:"), background=False).openapi()
