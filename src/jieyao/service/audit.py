"""The service's audit trail: who did what, when, to which subject, and why. Appended inside the same
transaction as the change it records (so a change without its entry cannot commit); the database refuses
UPDATE and DELETE on it (triggers from the first migration)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from jieyao.service.db import ServiceDB, aware, iso, now
from jieyao.service.schema import audit

MAX_PAGE = 1_000


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject_type: str | None
    subject_id: str | None
    reason: str | None
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": iso(self.at), "actor": self.actor, "action": self.action,
                "subject_type": self.subject_type, "subject_id": self.subject_id, "reason": self.reason,
                "details": self.details}


def record(conn: Connection, actor: str, action: str, *, subject_type: str | None = None,
           subject_id: str | int | None = None, reason: str | None = None,
           details: dict[str, Any] | None = None, at: dt.datetime | None = None) -> None:
    """Append one entry on `conn` (the caller's write transaction)."""
    conn.execute(insert(audit).values(at=at or now(), actor=actor[:200], action=action[:60],
                                      subject_type=subject_type,
                                      subject_id=None if subject_id is None else str(subject_id)[:100],
                                      reason=reason, details=details or {}))


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(r.id, aware(r.at) or now(), r.actor, r.action, r.subject_type, r.subject_id, r.reason,
                      dict(r.details or {}))


def entries(db: ServiceDB, *, after_id: int = 0, limit: int = 100, subject_type: str | None = None,
            subject_id: str | int | None = None, action: str | None = None, actor: str | None = None,
            since: dt.datetime | None = None, before_id: int | None = None,
            newest_first: bool = False) -> list[AuditEntry]:
    """Oldest first from `after_id` (exclusive), paged with the last id seen; or, with `newest_first`, newest
    first below `before_id` (how a reviewer reads the log)."""
    q = select(audit).where(audit.c.id > after_id)
    if before_id is not None:
        q = q.where(audit.c.id < before_id)
    if subject_type is not None:
        q = q.where(audit.c.subject_type == subject_type)
    if subject_id is not None:
        q = q.where(audit.c.subject_id == str(subject_id))
    if action is not None:
        q = q.where(audit.c.action == action)
    if actor is not None:
        q = q.where(audit.c.actor == actor)
    if since is not None:
        q = q.where(audit.c.at >= since)
    q = q.order_by(audit.c.id.desc() if newest_first else audit.c.id).limit(max(1, min(limit, MAX_PAGE)))
    with db.tx(write=False) as conn:
        return [_entry(r) for r in conn.execute(q)]


def iter_all(db: ServiceDB, **filters: Any) -> Iterator[AuditEntry]:
    """Every matching entry, paged (for exports that must not hold the whole log in memory)."""
    last = 0
    while True:
        page = entries(db, after_id=last, limit=MAX_PAGE, **filters)
        yield from page
        if len(page) < MAX_PAGE:
            return
        last = page[-1].id
