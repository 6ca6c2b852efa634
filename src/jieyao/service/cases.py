"""The review queue.

A case holds one flagged target: its identity (hashes and size of a file; id and text of a listing), the
engine's JSON as the API returned it, and the engine and rule versions. Reviewers confirm or overturn it
with a reason; a confirmed file case can add its hashes to a bank, an overturned one to a negative bank.

Concurrency: a decision is one conditional UPDATE (`WHERE status = 'open' [AND version = expected]`), so of
two reviewers deciding at once exactly one changes the row and the other is told who won (409). The audit
entry and the webhook deliveries are written in that same transaction; the bank additions come after it
commits (the bank store runs its own transactions) and are recorded in the case's `actions`."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, insert, select, update

from jieyao.banks.store import BankError, BankKind
from jieyao.model import Decision
from jieyao.service import audit
from jieyao.service.auth import Principal, Role
from jieyao.service.db import aware, iso, now
from jieyao.service.deps import get_ctx, require
from jieyao.service.errors import bad_request, conflict, not_found
from jieyao.service.schema import cases

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext

log = logging.getLogger("jieyao.service")
router = APIRouter(prefix="/v1/cases", tags=["cases"])
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]

STATUSES = ("open", "confirmed", "overturned")
DECISIONS = {"confirm": "confirmed", "overturn": "overturned"}
KINDS = ("file", "listing")
MAX_LIST = 500
MAX_ID = 2**63 - 1
"""Ids past a signed 64-bit integer exist in neither database (and SQLite's driver overflows on them)."""
MAX_REASON = 2000
MAX_SUBJECT = 1000
SEVERITY = {"block": 2, "review": 1}
NOTE_CHARS = 900
"""Bank notes are one line of at most 1000 characters; the reason is folded into that."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ADVISORY_BASE = 0x6A69_6579_0000_0000
"""Postgres advisory lock space for 'opening a case about this fingerprint' (SQLite writers are serial)."""


@dataclass(frozen=True)
class CaseSubject:
    """What a case is about. kind "file": identity {"name", "sha256", "md5", "size", "pdq": [hex, ...]
    (images only, may be absent), "path" (server-side scans only)}. kind "listing": identity {"id", "text"}
    where `text` is the exact string the moderation offsets point into."""

    kind: str
    name: str
    identity: dict[str, Any]


# --- reading -------------------------------------------------------------------------------------------------

def case_json(r: Any, at: dt.datetime | None = None) -> dict[str, Any]:
    """One svc_cases row as the API, the console and webhooks show it."""
    created = aware(r.created)
    age = ((at or now()) - created).total_seconds() if created is not None else 0.0
    return {"id": int(r.id), "kind": r.kind, "status": r.status, "verdict": r.verdict, "severity": int(r.severity),
            "score": float(r.score), "subject": r.subject, "target": dict(r.target or {}),
            "result": r.result, "versions": dict(r.versions or {}), "source": r.source,
            "submitted_by": r.submitted_by, "created": iso(r.created), "decided": iso(r.decided),
            "decided_by": r.decided_by, "reason": r.reason, "actions": r.actions, "version": int(r.version),
            "age_seconds": round(max(0.0, age), 3)}


def _row(conn: Connection, case_id: int) -> Any:
    return conn.execute(select(cases).where(cases.c.id == case_id)).first()


def get_case(ctx: ServiceContext, case_id: int) -> dict[str, Any]:
    """`case_json` of one case; ApiError 404 when there is none."""
    if not 0 < case_id <= MAX_ID:
        raise not_found(f"no case {case_id}")
    with ctx.db.tx(write=False) as conn:
        r = _row(conn, case_id)
    if r is None:
        raise not_found(f"no case {case_id}")
    return case_json(r)


def list_cases(ctx: ServiceContext, *, status: str | None = "open", kind: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """(cases as `case_json`, total matching) most severe first, then oldest first."""
    if status is not None and status not in STATUSES:
        raise bad_request(f"status {str(status)[:40]!r}: one of {', '.join(STATUSES)} (or none for all)")
    if kind is not None and kind not in KINDS:
        raise bad_request(f"kind {str(kind)[:40]!r}: one of {', '.join(KINDS)}")
    where = [c for c in ((cases.c.status == status) if status else None,
                         (cases.c.kind == kind) if kind else None) if c is not None]
    q = (select(cases).where(*where).order_by(cases.c.severity.desc(), cases.c.created, cases.c.id)
         .limit(max(1, min(int(limit), MAX_LIST))).offset(max(0, int(offset))))
    with ctx.db.tx(write=False) as conn:
        rows = list(conn.execute(q))
        total = conn.execute(select(func.count()).select_from(cases).where(*where)).scalar_one()
    at = now()
    return [case_json(r, at) for r in rows], int(total)


# --- opening -------------------------------------------------------------------------------------------------

def fingerprint(subject: CaseSubject) -> str | None:
    """What makes two cases about the same thing: a file's SHA-256; a server-side folder's (or member's)
    path when there is no SHA-256 (a resumed job must not open its folder case twice); a listing's id and
    exact text. None (never deduplicated) for an upload without either."""
    ident = subject.identity
    if subject.kind == "file":
        sha = ident.get("sha256")
        path = ident.get("path")
        if isinstance(sha, str) and sha:
            key = "file\0" + sha.lower()
        elif isinstance(path, str) and path:
            key = "path\0" + path
        else:
            return None
    else:
        key = f"listing\0{ident.get('id')}\0{ident.get('text')}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _lock_fingerprint(conn: Connection, fp: str) -> None:
    """Serialise two Postgres transactions opening a case about the same subject (check, then insert)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_ADVISORY_BASE | int(fp[:8], 16))))


def open_case(ctx: ServiceContext, *, subject: CaseSubject, verdict: Decision, score: float,
              result: dict[str, Any], versions: dict[str, str], source: str, actor: str) -> int:
    """Open a case (or return the id of the open case about the same subject); audited."""
    if subject.kind not in KINDS:
        raise ValueError(f"case kind {subject.kind!r}: one of {', '.join(KINDS)}")
    if verdict.value not in SEVERITY:
        raise ValueError(f"a case is opened for a block or review verdict, not {verdict.value}")
    fp = fingerprint(subject)
    source = str(source)[:100]
    with ctx.db.tx(write=True) as conn:
        if fp is not None:
            _lock_fingerprint(conn, fp)
            seen = conn.execute(select(cases.c.id).where(cases.c.fingerprint == fp, cases.c.status == "open")
                                .order_by(cases.c.id).limit(1)).scalar()
            if seen is not None:
                audit.record(conn, actor, "case.seen_again", subject_type="case", subject_id=seen,
                             details={"source": source, "verdict": verdict.value})
                return int(seen)
        name = str(subject.name)[:MAX_SUBJECT]
        case_id = conn.execute(insert(cases).values(
            kind=subject.kind, status="open", verdict=verdict.value, severity=SEVERITY[verdict.value],
            score=float(score), subject=name, target=dict(subject.identity), result=result,
            versions=dict(versions), source=source, submitted_by=str(actor)[:200], created=now(), version=1,
            fingerprint=fp).returning(cases.c.id)).scalar_one()
        audit.record(conn, actor, "case.open", subject_type="case", subject_id=case_id,
                     details={"kind": subject.kind, "subject": name[:200], "verdict": verdict.value,
                              "source": source})
    return int(case_id)


def maybe_open_case(ctx: ServiceContext, *, subject: CaseSubject, verdict: Decision, score: float,
                    result: dict[str, Any], versions: dict[str, str], source: str, actor: str) -> int | None:
    """`open_case` when the verdict is in `ctx.cfg.cases_on`, else None."""
    if verdict.value not in ctx.cfg.cases_on:
        return None
    return open_case(ctx, subject=subject, verdict=verdict, score=score, result=result, versions=versions,
                     source=source, actor=actor)


# --- deciding ------------------------------------------------------------------------------------------------

def _check_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise bad_request("a decision needs a reason (1 to 2000 characters)")
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise bad_request(f"the reason is longer than {MAX_REASON} characters")
    return text


def _bank_for(ctx: ServiceContext, decision: str, bank: str | None, kind: str, add_hashes: bool) -> str | None:
    """The bank the decision adds hashes to (checked to exist and be of the right kind), or None for no bank
    action. A bank named in the request is always checked, so a typo is a 400, not a silent no-op."""
    chosen = bank or (None if not add_hashes or kind != "file" else
                      ctx.cfg.confirm_bank if decision == "confirm" else ctx.cfg.negative_bank)
    if chosen is None:
        return None
    want = BankKind.POSITIVE if decision == "confirm" else BankKind.NEGATIVE
    try:
        found = ctx.engines.banks.get_bank(chosen)
    except BankError as exc:
        raise bad_request(str(exc), {"bank": chosen}) from None
    if found.kind is not want:
        raise bad_request(f"bank {chosen!r} is a {found.kind.value} bank; a{'n' if decision == 'overturn' else ''} "
                          f"{decision} adds to a {want.value} bank", {"bank": chosen, "kind": found.kind.value})
    return chosen if add_hashes and kind == "file" else None


def _no_bank_why(kind: str, add_hashes: bool) -> str:
    if kind != "file":
        return "a listing case has no hashes"
    if not add_hashes:
        return "add_hashes was false"
    return "no bank named and none configured"


def webhook_payload(case: dict[str, Any], decision: str, bank: str | None) -> dict[str, Any]:
    """What a platform needs to act: which target, what was decided, by whom and why. Not sent: server-side
    paths, and a listing's text (the platform has it; a digest says which version was judged)."""
    target = {k: v for k, v in case["target"].items() if k not in ("path", "text")}
    if isinstance(case["target"].get("text"), str):
        target["text_sha256"] = hashlib.sha256(case["target"]["text"].encode("utf-8", "surrogatepass")).hexdigest()
    return {"case_id": case["id"], "kind": case["kind"], "decision": decision, "status": case["status"],
            "verdict": case["verdict"], "severity": case["severity"], "score": case["score"],
            "subject": case["subject"], "target": target, "reason": case["reason"],
            "decided_by": case["decided_by"], "decided": case["decided"], "source": case["source"],
            "versions": case["versions"], "bank": bank}


def _refuse(conn: Connection, case_id: int, expected_version: int | None) -> None:
    """Why the conditional UPDATE changed nothing: 404 no such case, else 409 with who decided it."""
    r = _row(conn, case_id)
    if r is None:
        raise not_found(f"no case {case_id}")
    details = {"status": r.status, "decided_by": r.decided_by, "version": int(r.version)}
    if r.status == "open":
        raise conflict(f"case {case_id} is at version {r.version}, not {expected_version}: reload it", details)
    raise conflict(f"case {case_id} was already {r.status} by {r.decided_by}", details)


def decide(ctx: ServiceContext, case_id: int, *, decision: str, reason: str, actor: str, bank: str | None = None,
           add_hashes: bool = True, expected_version: int | None = None) -> dict[str, Any]:
    """Confirm ("confirm") or overturn ("overturn") an open case; returns the updated `case_json`.
    404 unknown case, 409 closed case or lost race (or `expected_version` stale), 400 bad decision or bank."""
    if decision not in DECISIONS:
        raise bad_request(f"decision {str(decision)[:40]!r}: confirm or overturn")
    text = _check_reason(reason)
    ctx.check_writable()
    current = get_case(ctx, case_id)
    if current["status"] != "open":
        raise conflict(f"case {case_id} was already {current['status']} by {current['decided_by']}",
                       {"status": current["status"], "decided_by": current["decided_by"],
                        "version": current["version"]})
    target_bank = _bank_for(ctx, decision, bank, current["kind"], add_hashes)
    status = DECISIONS[decision]
    with ctx.db.tx(write=True) as conn:
        case = _close(conn, ctx, case_id, status, text, actor, expected_version, decision, target_bank,
                      current["kind"], add_hashes)
    if target_bank is None:
        return case
    return _bank_action(ctx, case, decision, target_bank, actor)


def _close(conn: Connection, ctx: ServiceContext, case_id: int, status: str, reason: str, actor: str,
           expected_version: int | None, decision: str, bank: str | None, kind: str, add_hashes: bool
           ) -> dict[str, Any]:
    """The decision's one transaction: the conditional UPDATE, its audit entry and its webhooks."""
    when = now()
    cond = [cases.c.id == case_id, cases.c.status == "open"]
    if expected_version is not None:
        cond.append(cases.c.version == expected_version)
    bank_plan: dict[str, Any] = ({"bank": bank, "status": "pending"} if bank else
                                 {"bank": None, "status": "skipped", "why": _no_bank_why(kind, add_hashes)})
    done = conn.execute(update(cases).where(*cond).values(
        status=status, decided=when, decided_by=str(actor)[:200], reason=reason, version=cases.c.version + 1,
        actions={"decision": decision, "bank": bank_plan}))
    if done.rowcount != 1:
        _refuse(conn, case_id, expected_version)
    r = _row(conn, case_id)
    audit.record(conn, actor, "case.decide", subject_type="case", subject_id=case_id, reason=reason,
                 details={"decision": decision, "verdict": r.verdict, "bank": bank}, at=when)
    case = case_json(r, when)
    queued = ctx.webhooks.enqueue(conn, "case.decided", webhook_payload(case, decision, bank))
    actions = {**case["actions"], "webhooks_queued": queued}
    conn.execute(update(cases).where(cases.c.id == case_id).values(actions=actions))
    case["actions"] = actions
    return case


def _signals(target: dict[str, Any]) -> list[tuple[str, str]]:
    """(signal type, value) of a file case's hashes: SHA-256, MD5 and each PDQ."""
    out = [(t, target[t]) for t in ("sha256", "md5") if isinstance(target.get(t), str) and target[t]]
    pdq = target.get("pdq") or []
    if isinstance(pdq, list):
        out += [("pdq", p) for p in pdq[:64] if isinstance(p, str) and p]
    return out


def _note(case: dict[str, Any], decision: str) -> str:
    reason = _CONTROL.sub(" ", case["reason"] or "")
    return f"case {case['id']} {decision}ed by {case['decided_by']}: {reason}"[:NOTE_CHARS].strip()


def _bank_action(ctx: ServiceContext, case: dict[str, Any], decision: str, bank: str, actor: str) -> dict[str, Any]:
    """Add the case's hashes to `bank` (after the decision committed); records what happened in `actions`
    and the audit log. A hash the bank already holds is noted, not a failure."""
    added: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    error: str | None = None
    try:
        for signal_type, value in _signals(case["target"]):
            try:
                sid = ctx.engines.banks.add_signal(bank, signal_type, value, source=f"case:{case['id']}",
                                                   actor=actor, note=_note(case, decision))
                added.append({"type": signal_type, "value": value, "id": sid})
            except BankError as exc:
                skipped.append({"type": signal_type, "value": value, "why": str(exc)[:300]})
    except Exception as exc:  # the store is down: the decision stands, the failure is recorded
        log.warning("case %s: adding hashes to bank %s failed: %s", case["id"], bank, exc)
        error = f"{type(exc).__name__}: {exc}"[:500]
    failed = error is not None or (not added and bool(skipped) and not _all_present(skipped))
    outcome = {"bank": bank, "status": "failed" if failed else "done", "added": added, "skipped": skipped,
               **({"error": error} if error else {})}
    actions = {**(case["actions"] or {}), "bank": outcome}
    with ctx.db.tx(write=True) as conn:
        conn.execute(update(cases).where(cases.c.id == case["id"])
                     .values(actions=actions, version=cases.c.version + 1))
        audit.record(conn, actor, "case.bank_add_failed" if failed else "case.bank_add", subject_type="case",
                     subject_id=case["id"], details={"bank": bank, "added": added, "skipped": skipped,
                                                     **({"error": error} if error else {})})
        r = _row(conn, case["id"])
    return case_json(r)


def _all_present(skipped: list[dict[str, str]]) -> bool:
    return all("already holds" in s["why"] for s in skipped)


# --- HTTP ----------------------------------------------------------------------------------------------------

CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]


class DecisionBody(BaseModel):
    decision: str = Field(description="confirm or overturn")
    reason: str = Field(max_length=MAX_REASON * 2, description="why (1 to 2000 characters); kept in the audit log")
    bank: str | None = Field(None, max_length=64, description="bank for the hashes (default: the configured "
                                                             "confirm_bank / negative_bank)")
    add_hashes: bool = Field(True, description="add a file case's hashes to the bank")
    expected_version: int | None = Field(None, ge=0, le=2**31 - 1,
                                         description="refuse (409) if the case changed since this version")


@router.get("", summary="The review queue: most severe first, then oldest first")
def list_route(request: Request, _who: Reviewer,
               status: Annotated[str, Query(max_length=20, description="open, confirmed, overturned or all")] = "open",
               kind: Annotated[str | None, Query(max_length=20, description="file or listing")] = None,
               limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 50,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
    found, total = list_cases(get_ctx(request), status=None if status == "all" else status, kind=kind,
                              limit=limit, offset=offset)
    return {"cases": found, "total": total}


@router.get("/{case_id}", summary="One case with its target, evidence and versions")
def get_route(case_id: CaseId, request: Request, _who: Reviewer) -> dict[str, Any]:
    return get_case(get_ctx(request), case_id)


@router.post("/{case_id}/decision", summary="Confirm or overturn an open case (one reviewer wins a race)")
def decide_route(case_id: CaseId, body: DecisionBody, request: Request, who: Reviewer) -> dict[str, Any]:
    ctx = get_ctx(request)
    ctx.check_writable()
    return decide(ctx, case_id, decision=body.decision, reason=body.reason, actor=who.actor, bank=body.bank,
                  add_hashes=body.add_hashes, expected_version=body.expected_version)
