"""Request bodies that are files: streamed to a private temporary file (never held whole in memory), with
SHA-256 and MD5 taken on the way, from a raw body (`application/octet-stream`, name in `?name=`) or from a
`multipart/form-data` part named `file` (parsed as it streams with python-multipart's push parser)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from jieyao.service.context import ServiceContext
from jieyao.service.errors import bad_request

MAX_NAME_CHARS = 255
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


@dataclass
class Upload:
    """A received file: where it lies (private, removed after the request), its given name and digests."""

    path: str
    name: str
    size: int
    sha256: str
    md5: str

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "md5": self.md5, "size": self.size}


def clean_name(name: str | None, default: str = "upload") -> str:
    """A display name: the last path component, control characters and separators removed, bounded."""
    if not name:
        return default
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE_NAME.sub("_", base).strip()[:MAX_NAME_CHARS]
    return base if base not in ("", ".", "..") else default


class _Sink:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)
        self.sha256.update(data)
        self.md5.update(data)


@asynccontextmanager
async def receive_upload(ctx: ServiceContext, request: Request, name: str | None) -> AsyncIterator[Upload]:
    """The body as a file; removed when the block ends, whatever happens. The body limit is enforced by the
    BodyLimit middleware while the bytes stream in."""
    fd, path = ctx.private_temp(".upload")
    try:
        sink = _Sink(fd)
        content_type = request.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/form-data"):
            name = await _multipart(request, content_type, sink) or name
        else:
            async for chunk in request.stream():
                sink.write(chunk)
        os.close(fd)
        fd = -1
        yield Upload(path, clean_name(name), sink.size, sink.sha256.hexdigest(), sink.md5.hexdigest())
    finally:
        if fd >= 0:
            os.close(fd)
        ctx.remove(path)


async def _multipart(request: Request, content_type: str, sink: _Sink) -> str | None:
    """Stream the part named `file` into `sink`; other parts are ignored (bounded). Returns its filename."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise bad_request("multipart body without a boundary")
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "in_file": False, "found": False,
                             "filename": None, "parts": 0}

    def on_part_begin() -> None:
        state["headers"] = {}
        state["in_file"] = False
        state["parts"] += 1
        if state["parts"] > 20:
            raise bad_request("too many parts in the multipart body")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]
        if len(state["field"]) > 200:
            raise bad_request("multipart header name too long")

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]
        if len(state["value"]) > 4096:
            raise bad_request("multipart header value too long")

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = state["headers"].get(b"content-disposition", b"")
        _, p = parse_options_header(disposition)
        if p.get(b"name") == b"file" and not state["found"]:
            state["in_file"] = True
            state["found"] = True
            raw = p.get(b"filename")
            state["filename"] = raw.decode("utf-8", "replace") if raw else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            sink.write(memoryview(data)[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
    })
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except ValueError as exc:  # python-multipart's MultipartParseError is a ValueError
            raise bad_request(f"malformed multipart body: {exc}") from None
    try:
        parser.finalize()
    except ValueError as exc:
        raise bad_request(f"malformed multipart body: {exc}") from None
    if not state["found"]:
        raise bad_request("the multipart body has no part named 'file'")
    filename: str | None = state["filename"]
    return filename

