"""Who is using the console, and whether a form really came from it.

The session is the API key itself in a cookie (HttpOnly, SameSite=Strict, Path=/console, Secure over
https): the service keeps no session table, and a revoked key ends its console sessions within the key
cache time. Forms carry a CSRF token, HMAC-SHA256 of a per-process secret and the key's hash, and a
cross-site Origin is refused as well (belt and braces beside SameSite)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from jieyao.service.auth import Principal, Role, hash_key
from jieyao.service.deps import authorise, get_ctx
from jieyao.service.errors import ApiError

COOKIE = "jieyao_console"
COOKIE_PATH = "/console"
MAX_KEY_CHARS = 200
"""Keys are 46 characters; anything much longer is not one and is not even hashed."""
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 20


class ConsoleAuth(Exception):
    """A console page's caller is not a signed-in reviewer: `status` 401 (sign in), 403 or 429 (a page)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str


@dataclass
class Csrf:
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def token(self, key: str) -> str:
        return hmac.new(self.secret, hash_key(key).encode(), hashlib.sha256).hexdigest()

    def valid(self, key: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.token(key), str(token))


def check_key(request: Request, key: str | None) -> Principal:
    """A reviewer (or admin) key's Principal; ConsoleAuth otherwise."""
    if not key or len(key) > MAX_KEY_CHARS:
        raise ConsoleAuth(401, "an API key is required")
    try:
        return authorise(get_ctx(request), key.strip(), Role.reviewer)
    except ApiError as exc:
        raise ConsoleAuth(exc.status, exc.message, exc.headers) from None


def session(request: Request, csrf: Csrf) -> Session:
    key = request.cookies.get(COOKIE)
    principal = check_key(request, key)
    assert key is not None
    return Session(principal, csrf.token(key.strip()))


def cookie_key(request: Request) -> str:
    return (request.cookies.get(COOKIE) or "").strip()


def cookie_path(request: Request) -> str:
    """/console, under the app's root_path when a proxy mounts it below one."""
    return str(request.scope.get("root_path", "")).rstrip("/") + COOKIE_PATH


def set_cookie(request: Request, response: Response, key: str) -> None:
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path=cookie_path(request),
                        secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=cookie_path(request), httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def same_origin(request: Request) -> bool:
    """False for a form posted from another site: an Origin (or Referer) naming another host, the opaque
    origin "null", or the browser's own Sec-Fetch-Site saying cross-site."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    host = request.headers.get("host", "").lower()
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        return referer is None or urlsplit(referer).netloc.lower() == host
    return origin.lower() != "null" and urlsplit(origin).netloc.lower() == host


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, bounded in bytes and fields (the first value of a repeated field wins)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported", "the console's forms are application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, "too_large", f"a console form is at most {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_request", "the form is not valid (UTF-8, at most "
                                           f"{MAX_FORM_FIELDS} fields)") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form
