"""The review queue (CONTRACT STUB: the cases helper replaces the bodies; the signatures are fixed).

A case holds one flagged target: its identity (hashes and size of a file; id and text of a listing), the
engine's JSON as the API returned it, and the engine and rule versions. Reviewers confirm or overturn it
with a reason; a confirmed file case can add its hashes to a bank, an overturned one to a negative bank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from jieyao.model import Decision

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext

router = APIRouter()


@dataclass(frozen=True)
class CaseSubject:
    """What a case is about. kind "file": identity {"name", "sha256", "md5", "size", "pdq": [hex, ...]
    (images only, may be absent), "path" (server-side scans only)}. kind "listing": identity {"id", "text"}
    where `text` is the exact string the moderation offsets point into."""

    kind: str
    name: str
    identity: dict[str, Any]


def open_case(ctx: ServiceContext, *, subject: CaseSubject, verdict: Decision, score: float,
              result: dict[str, Any], versions: dict[str, str], source: str, actor: str) -> int:
    """Open a case (or return the id of the open case about the same subject); audited."""
    raise NotImplementedError


def maybe_open_case(ctx: ServiceContext, *, subject: CaseSubject, verdict: Decision, score: float,
                    result: dict[str, Any], versions: dict[str, str], source: str, actor: str) -> int | None:
    """`open_case` when the verdict is in `ctx.cfg.cases_on`, else None."""
    return None


def list_cases(ctx: ServiceContext, *, status: str | None = "open", kind: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """(cases as `case_json`, total matching) most severe first, then oldest first."""
    raise NotImplementedError


def get_case(ctx: ServiceContext, case_id: int) -> dict[str, Any]:
    """`case_json` of one case; ApiError 404 when there is none."""
    raise NotImplementedError


def decide(ctx: ServiceContext, case_id: int, *, decision: str, reason: str, actor: str, bank: str | None = None,
           add_hashes: bool = True, expected_version: int | None = None) -> dict[str, Any]:
    """Confirm ("confirm") or overturn ("overturn") an open case; returns the updated `case_json`.
    404 unknown case, 409 closed case or lost race (or `expected_version` stale), 400 bad decision or bank."""
    raise NotImplementedError
