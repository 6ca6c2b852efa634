"""The console's pages: sign in, the queue, a case's evidence with its decision form, the audit log.

Server-rendered (Jinja2, autoescape on) with a strict Content-Security-Policy: the pages load only their own
stylesheet and script from /console/static, so a listing's text can never run in a reviewer's browser.
Engine and database work runs in a worker thread under the request timeout (`run_bounded`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from jieyao.service import audit, cases
from jieyao.service.console import render
from jieyao.service.console.session import (
    COOKIE,
    ConsoleAuth,
    Csrf,
    Session,
    check_key,
    clear_cookie,
    cookie_key,
    read_form,
    same_origin,
    session,
    set_cookie,
)
from jieyao.service.db import StoreUnavailable
from jieyao.service.deps import get_ctx, run_bounded
from jieyao.service.errors import ApiError

HERE = Path(__file__).parent
PAGE_SIZE = 50
AUDIT_PAGE = 100
CASE_AUDIT_LIMIT = 200
MAX_REASON = cases.MAX_REASON
MAX_BANK = 64
STATUSES = ("open", "confirmed", "overturned", "all")
KINDS = ("", "file", "listing")
DONE = {"confirm": "Confirmed", "overturn": "Overturned"}
"""The flash after a decision: chosen from this map by the redirect's `done`, never echoed from the URL."""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


@dataclass
class ConsoleState:
    """What the console keeps per app: its templates and the CSRF secret (new with every process)."""

    env: Environment = field(default_factory=lambda: Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True))
    csrf: Csrf = field(default_factory=Csrf)

    def __post_init__(self) -> None:
        self.env.filters["age"] = render.age
        self.env.filters["score"] = render.score


def state(request: Request) -> ConsoleState:
    st: ConsoleState = request.app.state.console
    return st


def root(request: Request) -> str:
    """The app's mount prefix (behind a proxy's root_path), so every link and redirect stays inside it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def page(request: Request, template: str, http_status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("session", None)
    values.setdefault("flash", None)
    values.setdefault("error", None)
    html = state(request).env.get_template(template).render(root=root(request), **values)
    return HTMLResponse(html, status_code=http_status, headers=HEADERS)


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(root(request) + path, status_code=303, headers={"Cache-Control": "no-store"})


def console_session(request: Request) -> Session:
    """The dependency of every page but sign-in: a signed-in reviewer, else ConsoleAuth (see `mount`)."""
    return session(request, state(request).csrf)


Reviewer = Annotated[Session, Depends(console_session)]


async def auth_failed(request: Request, exc: Exception) -> Response:
    """Not signed in (or the key was revoked): to the sign-in page; signed in but not allowed: a page."""
    assert isinstance(exc, ConsoleAuth)
    if exc.status == 401:
        response: Response = redirect(request, "/console/login")
        if request.cookies.get(COOKIE) is not None:
            clear_cookie(request, response)
        return response
    shown = page(request, "error.html", exc.status, title="Not allowed" if exc.status == 403 else "Slow down",
                 error=exc.message)
    shown.headers.update(exc.headers)  # Retry-After on 429
    return shown


# --- sign in and out ---------------------------------------------------------------------------------------

@router.get("/console")
async def console_root(request: Request) -> Response:
    return redirect(request, "/console/")


@router.get("/console/login")
async def login_form(request: Request) -> Response:
    return page(request, "login.html", title="Sign in")


@router.post("/console/login")
async def login(request: Request) -> Response:
    if not same_origin(request):
        return page(request, "login.html", 403, title="Sign in", error="a sign-in from another site was refused")
    try:
        form = await read_form(request)
    except ApiError as exc:
        return page(request, "login.html", exc.status, title="Sign in", error=exc.message)
    key = form.get("key", "").strip()
    try:
        await run_bounded(get_ctx(request), check_key, request, key)
    except ConsoleAuth as exc:
        message = "unknown or revoked API key" if exc.status == 401 else exc.message
        return page(request, "login.html", exc.status, title="Sign in", error=message)
    response = redirect(request, "/console/")
    set_cookie(request, response, key)
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    if not same_origin(request):
        return page(request, "error.html", 403, title="Not allowed", error="a form from another site was refused")
    response = redirect(request, "/console/login")
    clear_cookie(request, response)
    return response


# --- the queue ---------------------------------------------------------------------------------------------

def queue_link(status: str, kind: str, page_no: int = 1) -> str:
    query = {"status": status} | ({"kind": kind} if kind else {}) | ({"page": str(page_no)} if page_no > 1 else {})
    return "/console/?" + urlencode(query)


def _page_number(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < len(text) <= 6 and int(text) > 0 else None


@router.get("/console/")
async def queue(request: Request, who: Reviewer, status: str = "open", kind: str = "",
                page_no: Annotated[str, Query(alias="page")] = "1") -> Response:
    number = _page_number(page_no)
    if status not in STATUSES or kind not in KINDS or number is None:
        return page(request, "error.html", 400, session=who, title="Bad filter",
                    error="status is open, confirmed, overturned or all; kind is file or listing; page is 1 or more")
    ctx = get_ctx(request)
    try:
        rows, total = await run_bounded(ctx, lambda: cases.list_cases(
            ctx, status=None if status == "all" else status, kind=kind or None, limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE))
    except ApiError as exc:
        return page(request, "error.html", exc.status, session=who, title="Queue", error=exc.message)
    pages = max(1, -(-total // PAGE_SIZE))
    return page(request, "queue.html", session=who, title="Queue", cases=rows, total=total, status=status,
                kind=kind, page_no=number, pages=pages, statuses=STATUSES, link=queue_link,
                prev_link=queue_link(status, kind, number - 1) if number > 1 else None,
                next_link=queue_link(status, kind, number + 1) if number < pages else None)


# --- a case ------------------------------------------------------------------------------------------------

def _case_id(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 18 else None


def case_values(ctx: Any, case_id: int) -> dict[str, Any]:
    """Everything the case page shows, read in one worker-thread call."""
    case = cases.get_case(ctx, case_id)
    target, result = render.mapping(case.get("target")), render.mapping(case.get("result"))
    trail = audit.entries(ctx.db, subject_type="case", subject_id=case_id, limit=CASE_AUDIT_LIMIT)
    values: dict[str, Any] = {
        "case": case, "identity": render.identity_rows(target), "versions": render.flat(case.get("versions")),
        "trail": [audit_row(e.to_dict()) for e in trail], "actions": render.flat(case.get("actions")),
        "listing": None, "findings": [], "file_facts": [],
    }
    if case.get("kind") == "listing":
        values["listing"] = render.listing_view(target, result)
    else:
        values["findings"] = render.findings_of(result)
        values["file_facts"] = render.file_facts(result)
    return values


def audit_row(entry: dict[str, Any]) -> dict[str, Any]:
    details = entry.get("details") or {}
    text = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str) if details else ""
    case_link = (f"/console/cases/{entry['subject_id']}" if entry.get("subject_type") == "case"
                 and _case_id(str(entry.get("subject_id") or "")) is not None else None)
    return entry | {"details_text": text if len(text) <= 1000 else text[:1000] + "…", "case_link": case_link}


async def case_page(request: Request, who: Session, case_id: int, http_status: int = 200, **values: Any
                    ) -> Response:
    ctx = get_ctx(request)
    try:
        found = await run_bounded(ctx, case_values, ctx, case_id)
    except ApiError as exc:
        return page(request, "error.html", exc.status, session=who, title=f"Case {case_id}", error=exc.message)
    values.setdefault("form", {"reason": "", "bank": ""})
    return page(request, "case.html", http_status, session=who, title=f"Case {case_id}", legend=render.LEGEND,
                max_reason=MAX_REASON, max_bank=MAX_BANK,
                **found, **values)


@router.get("/console/cases/{case_id}")
async def case(request: Request, who: Reviewer, case_id: str, done: str = "") -> Response:
    number = _case_id(case_id)
    if number is None:
        return page(request, "error.html", 404, session=who, title="No such case", error=f"no case {case_id!r}")
    return await case_page(request, who, number, flash=DONE.get(done))


def decision_fields(form: dict[str, str]) -> tuple[str, str, str | None, int]:
    """(decision, reason, bank, expected_version) from the form; ApiError 400 when one is missing or bad."""
    decision = form.get("decision", "")
    reason = form.get("reason", "").strip()
    bank = form.get("bank", "").strip() or None
    version = form.get("expected_version", "")
    if decision not in DONE:
        raise ApiError(400, "bad_request", "choose Confirm or Overturn")
    if not reason:
        raise ApiError(400, "bad_request", "a reason is required")
    if len(reason) > MAX_REASON or (bank is not None and len(bank) > MAX_BANK):
        raise ApiError(400, "bad_request", f"the reason is at most {MAX_REASON} characters, a bank name {MAX_BANK}")
    if not version.isdigit() or len(version) > 9:
        raise ApiError(400, "bad_request", "the form is missing the case's version; reload the page")
    return decision, reason, bank, int(version)


@router.post("/console/cases/{case_id}/decision")
async def decide(request: Request, who: Reviewer, case_id: str) -> Response:
    number = _case_id(case_id)
    if number is None:
        return page(request, "error.html", 404, session=who, title="No such case", error=f"no case {case_id!r}")
    if not same_origin(request):
        return await case_page(request, who, number, 403, error="a decision posted from another site was refused")
    form: dict[str, str] = {}
    try:
        form = await read_form(request)
        if not state(request).csrf.valid(cookie_key(request), form.get("csrf")):
            return await case_page(request, who, number, 403, form=form,
                                   error="the form's security token is not valid; reload the page and decide again")
        decision, reason, bank, version = decision_fields(form)
        ctx = get_ctx(request)
        await run_bounded(ctx, lambda: cases.decide(ctx, number, decision=decision, reason=reason,
                                                    actor=who.principal.actor, bank=bank, expected_version=version))
    except ApiError as exc:
        return await case_page(request, who, number, exc.status, form=form, error=exc.message)
    except StoreUnavailable as exc:
        return await case_page(request, who, number, 503, form=form, error=f"the decision was not saved: {exc}")
    return redirect(request, f"/console/cases/{number}?" + urlencode({"done": decision}))


# --- the audit log -----------------------------------------------------------------------------------------

def recent_audit(ctx: Any, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, older than `before` (an id): the log as a reviewer reads it."""
    return [audit_row(e.to_dict()) for e in audit.entries(ctx.db, before_id=before, limit=limit, newest_first=True)]


@router.get("/console/audit")
async def audit_log(request: Request, who: Reviewer, before: str = "") -> Response:
    if before and (not before.isdigit() or len(before) > 18):
        return page(request, "error.html", 400, session=who, title="Audit", error="before is an entry id")
    ctx = get_ctx(request)
    rows = await run_bounded(ctx, recent_audit, ctx, int(before) if before else None, AUDIT_PAGE + 1)
    older = f"/console/audit?before={rows[AUDIT_PAGE - 1]['id']}" if len(rows) > AUDIT_PAGE else None
    return page(request, "audit.html", session=who, title="Audit log", entries=rows[:AUDIT_PAGE], older=older,
                paged=bool(before))
