"""The review queue (placeholder: the helper building issue 7's cases replaces this file)."""

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
    kind: str
    name: str
    identity: dict[str, Any]


def maybe_open_case(ctx: ServiceContext, *, subject: CaseSubject, verdict: Decision, score: float,
                    result: dict[str, Any], versions: dict[str, str], source: str, actor: str) -> int | None:
    return None
