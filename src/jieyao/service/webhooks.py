"""Signed webhook deliveries: a decision is POSTed to each configured target that wants its event, retried
with back-off, and every final outcome is in the audit log.

Durable: `enqueue` writes one `svc_webhook_deliveries` row per target in the same transaction as the change
it announces, so a committed decision always has its deliveries and a rolled-back one has none. One daemon
thread delivers them; it is woken when a transaction that queued something commits, and polls otherwise
(for retries and for rows other processes queued). Delivery is at least once: a process that dies while
posting leaves the row to be retried, so receivers should drop a delivery id they have seen.

A target that is down or slow costs only this thread, for at most `webhook_timeout_s` per attempt (redirects
are not followed; the response body is not read); after a failure that target rests for the back-off while
deliveries to the other targets go on. Several processes on one database share the work safely: a row is
claimed by a conditional UPDATE that moves its `next_attempt` past the attempt's deadline.

Each request carries:

    Content-Type: application/json
    X-Jieyao-Event: case.decided
    X-Jieyao-Delivery: <the body's "id">
    X-Jieyao-Timestamp: <unix seconds when sent>
    X-Jieyao-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

and the body `{"event", "id", "at", "data"}`. A receiver verifies it so:

    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest("sha256=" + expected, signature_header) and abs(time.time() - int(timestamp)) < 300

using the raw bytes it received (not a re-serialised JSON), a constant-time comparison, and a freshness window
so a captured request cannot be replayed later; the delivery id lets it drop duplicates."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, event, func, insert, select, update

from jieyao import __version__
from jieyao.service import audit
from jieyao.service.config import WebhookTarget
from jieyao.service.db import StoreUnavailable, aware, iso, now
from jieyao.service.schema import webhook_deliveries as wd

if TYPE_CHECKING:
    from jieyao.service.context import ServiceContext

log = logging.getLogger("jieyao.service.webhooks")
SYSTEM_ACTOR = "system"
IDLE_POLL_S = 1.0
"""Longest sleep with nothing due: rows queued by another process, or whose wake-up was missed, wait this long."""
BATCH = 50
MAX_ERROR = 500
STOP_WAIT_S = 10.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Jieyao-Signature value."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300.0,
           at: float | None = None) -> bool:
    """What a receiver does (also used by the tests): signature and freshness."""
    try:
        age = abs((time.time() if at is None else at) - int(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def origin(url: str) -> str:
    """scheme://host[:port] of a target: what the audit log and errors name (paths and queries often hold
    the receiver's own secret, as Slack-style URLs do)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparsable url)"
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class Due:
    id: int
    event: str
    url: str
    body: str
    attempts: int
    claimed_until: dt.datetime


class WebhookDispatcher:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._resting: dict[str, float] = {}
        """url -> monotonic time before which it is not tried again (it just failed)."""
        self._client: httpx.Client | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or not self.ctx.cfg.webhooks:
            return
        self._stop.clear()
        self._client = httpx.Client(timeout=self.ctx.cfg.webhook_timeout_s, follow_redirects=False,
                                    headers={"User-Agent": f"jieyao-webhooks/{__version__}"})
        self._thread = threading.Thread(target=self._run, name="jieyao-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in flight (waits at most the request timeout, bounded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=min(STOP_WAIT_S, self.ctx.cfg.webhook_timeout_s + 1.0))
            if self._thread.is_alive():
                log.warning("the webhook thread did not stop within its wait; it is left to end with the process")
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- queueing -------------------------------------------------------------------------------------------

    def enqueue(self, conn: Connection, event_name: str, payload: dict[str, Any]) -> int:
        """Queue `payload` for every target that wants `event_name`, on `conn` (the caller's write
        transaction); the thread is woken when that transaction commits. Returns the number queued."""
        targets = [t for t in self.ctx.cfg.webhooks if event_name in t.events]
        when = now()
        for t in targets:
            body = json.dumps({"event": event_name, "id": str(uuid.uuid4()), "at": iso(when), "data": payload},
                              ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
            conn.execute(insert(wd).values(event=event_name, url=t.url, body=body, status="pending", attempts=0,
                                           next_attempt=when, created=when))
        if targets:
            event.listen(conn, "commit", lambda _conn: self._wake.set(), once=True)
        return len(targets)

    # --- the thread -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
                pause = 0.0 if worked else self._until_next_due()
            except StoreUnavailable as exc:
                log.warning("webhooks: %s", exc)
                pause = IDLE_POLL_S
            except Exception:  # the thread must outlive any one bad row
                log.exception("webhooks: unexpected error")
                pause = IDLE_POLL_S
            if pause > 0:
                self._wake.wait(pause)
                self._wake.clear()

    def run_once(self) -> int:
        """Attempt every due delivery whose target is not resting; the number attempted."""
        attempted = 0
        for row in self._due():
            if self._stop.is_set():
                break
            if self._resting.get(row.url, 0.0) > time.monotonic():
                continue
            claimed = self._claim(row)
            if claimed is None:
                continue
            self._attempt(claimed)
            attempted += 1
        return attempted

    def _due(self) -> list[Any]:
        with self.ctx.db.tx(write=False) as conn:
            return list(conn.execute(select(wd.c.id, wd.c.url, wd.c.next_attempt)
                                     .where(wd.c.status == "pending", wd.c.next_attempt <= now())
                                     .order_by(wd.c.next_attempt, wd.c.id).limit(BATCH)))

    def _until_next_due(self) -> float:
        """Seconds to sleep: until the next pending row (or a resting target wakes), at most IDLE_POLL_S."""
        with self.ctx.db.tx(write=False) as conn:
            nxt = conn.execute(select(func.min(wd.c.next_attempt)).where(wd.c.status == "pending")).scalar()
        waits = [IDLE_POLL_S]
        if nxt is not None:
            waits.append((aware(nxt) or now()).timestamp() - time.time())
        t = time.monotonic()
        waits += [until - t for until in self._resting.values() if until > t]
        return max(0.01, min(waits))

    def _claim(self, row: Any) -> Due | None:
        """Take the row for this attempt: push next_attempt past its deadline, only if nobody else did."""
        until = now() + dt.timedelta(seconds=self.ctx.cfg.webhook_timeout_s * 3 + 5)
        with self.ctx.db.tx(write=True) as conn:
            took = conn.execute(update(wd).where(wd.c.id == row.id, wd.c.status == "pending",
                                                 wd.c.next_attempt == row.next_attempt).values(next_attempt=until))
            if took.rowcount != 1:
                return None
            r = conn.execute(select(wd).where(wd.c.id == row.id)).one()
        return Due(int(r.id), r.event, r.url, r.body, int(r.attempts), until)

    def _target(self, url: str, event_name: str) -> WebhookTarget | None:
        matching = [t for t in self.ctx.cfg.webhooks if t.url == url]
        return next((t for t in matching if event_name in t.events), matching[0] if matching else None)

    def _attempt(self, d: Due) -> None:
        target = self._target(d.url, d.event)
        if target is None:
            self._finish_failed(d, d.attempts, "the target is no longer configured")
            return
        error = self._post(target, d)
        attempts = d.attempts + 1
        if error is None:
            self._resting.pop(d.url, None)
            self._finish_delivered(d, attempts)
            return
        self._resting[d.url] = time.monotonic() + self.ctx.cfg.webhook_backoff_s
        if attempts >= self.ctx.cfg.webhook_max_attempts:
            self._finish_failed(d, attempts, error)
        else:
            self._retry_later(d, attempts, error)

    def _post(self, target: WebhookTarget, d: Due) -> str | None:
        """One POST; None when the target answered 2xx, else why not (naming the origin, never the path)."""
        assert self._client is not None
        body = d.body.encode("utf-8")
        stamp = str(int(time.time()))
        try:
            delivery_id = str(json.loads(d.body).get("id", d.id))
        except (ValueError, AttributeError):
            delivery_id = str(d.id)
        headers = {"Content-Type": "application/json", "X-Jieyao-Event": d.event, "X-Jieyao-Delivery": delivery_id,
                   "X-Jieyao-Timestamp": stamp, "X-Jieyao-Signature": sign(target.secret, stamp, body)}
        try:
            with self._client.stream("POST", d.url, content=body, headers=headers) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            return f"{origin(d.url)}: {type(exc).__name__}: {str(exc)[:200]}"[:MAX_ERROR]
        if 200 <= status < 300:
            return None
        why = " (redirects are not followed)" if 300 <= status < 400 else ""
        return f"{origin(d.url)}: HTTP {status}{why}"

    def _finish_delivered(self, d: Due, attempts: int) -> None:
        self.ctx.metrics.webhook_deliveries.labels("delivered").inc()
        with self.ctx.db.tx(write=True) as conn:
            conn.execute(update(wd).where(wd.c.id == d.id).values(status="delivered", attempts=attempts,
                                                                  finished=now(), last_error=None))
            audit.record(conn, SYSTEM_ACTOR, "webhook.delivered", subject_type="webhook", subject_id=d.id,
                         details={"event": d.event, "target": origin(d.url), "attempts": attempts})

    def _retry_later(self, d: Due, attempts: int, error: str) -> None:
        self.ctx.metrics.webhook_deliveries.labels("retry").inc()
        delay = self.ctx.cfg.webhook_backoff_s * 2 ** (attempts - 1)
        with self.ctx.db.tx(write=True) as conn:
            conn.execute(update(wd).where(wd.c.id == d.id).values(
                attempts=attempts, last_error=error, next_attempt=now() + dt.timedelta(seconds=delay)))

    def _finish_failed(self, d: Due, attempts: int, error: str) -> None:
        self.ctx.metrics.webhook_deliveries.labels("failed").inc()
        with self.ctx.db.tx(write=True) as conn:
            conn.execute(update(wd).where(wd.c.id == d.id).values(status="failed", attempts=attempts,
                                                                  last_error=error, finished=now()))
            audit.record(conn, SYSTEM_ACTOR, "webhook.failed", subject_type="webhook", subject_id=d.id,
                         reason=error, details={"event": d.event, "target": origin(d.url), "attempts": attempts,
                                                "last_error": error})
