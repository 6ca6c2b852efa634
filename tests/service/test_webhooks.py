"""Webhooks against real local HTTP receivers: signed deliveries on a decision, retries with back-off to a
target that is down, a recorded failure, and nothing else held up meanwhile."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from jieyao.model import Decision
from jieyao.service import audit, cases, webhooks
from jieyao.service.cases import CaseSubject
from jieyao.service.config import WebhookTarget
from jieyao.service.db import aware
from jieyao.service.schema import webhook_deliveries

SECRET = "s3cret-s3cret-s3cret"


def receiver_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The check the module docstring tells receivers to make, written out independently of `webhooks.sign`."""
    stamp = headers.get("x-jieyao-timestamp", "")
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = stamp.isdigit() and abs(time.time() - int(stamp)) < 300
    return fresh and hmac.compare_digest("sha256=" + expected, headers.get("x-jieyao-signature", ""))


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that checks each request's signature and keeps it."""

    secret: str = SECRET
    status: int = 204
    delay_s: float = 0.0
    got: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/private-token"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.got.append({"path": self.path, "headers": headers, "body": body, "at": time.monotonic(),
                                     "valid": receiver_verifies(receiver.secret, headers, body)})
                time.sleep(receiver.delay_s)
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        made.append(Receiver(**kw).start())
        return made[-1]

    yield make
    for r in made:
        r.stop()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


def wait_for(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s")


def open_case(ctx: Any, n: int, **identity: Any) -> int:
    ident = {"name": f"f{n}", "sha256": f"{n:064x}", "md5": f"{n:032x}", "size": 1, **identity}
    return cases.open_case(ctx, subject=CaseSubject("file", f"f{n}", ident), verdict=Decision.REVIEW, score=0.5,
                           result={}, versions={}, source="scan", actor="key:u")


def deliveries(ctx: Any) -> list[Any]:
    with ctx.db.tx(write=False) as conn:
        return list(conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)))


def by_url(ctx: Any, url: str) -> list[Any]:
    return [d for d in deliveries(ctx) if d.url == url]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_decision_is_delivered_signed(make_service: Any, receivers: Callable[..., Receiver], database: str,
                                        request: pytest.FixtureRequest) -> None:
    rx = receivers()
    s = make_service(database=request.getfixturevalue("pg_url") if database == "postgres" else None,
                     webhooks=(WebhookTarget(rx.url, SECRET),))
    case_id = open_case(s.ctx, 1, path="/srv/uploads/secret-name.bin")
    r = s.post(f"/v1/cases/{case_id}/decision", role="reviewer", json={"decision": "confirm", "reason": "bad"})
    assert r.status_code == 200 and r.json()["actions"]["webhooks_queued"] == 1
    wait_for(lambda: rx.got, timeout=2.0)
    got = rx.got[0]
    assert got["valid"] and got["path"] == "/hook/private-token"
    assert got["headers"]["content-type"] == "application/json"
    assert got["headers"]["x-jieyao-event"] == "case.decided"
    assert got["headers"]["x-jieyao-signature"].startswith("sha256=")
    body = json.loads(got["body"])
    assert body["event"] == "case.decided" and body["id"] == got["headers"]["x-jieyao-delivery"]
    data = body["data"]
    assert (data["case_id"], data["decision"], data["status"], data["reason"]) == (case_id, "confirm", "confirmed",
                                                                                    "bad")
    assert data["target"]["sha256"] == f"{1:064x}" and "path" not in data["target"]
    row = wait_for(lambda: [d for d in deliveries(s.ctx) if d.status == "delivered"])[0]
    assert row.body.encode() == got["body"] and row.attempts == 1
    done = wait_for(lambda: audit.entries(s.ctx.db, action="webhook.delivered"))
    assert done[0].details["target"].startswith("http://127.0.0.1:") and "private-token" not in str(done[0].details)
    assert s.ctx.metrics.webhook_deliveries.labels("delivered")._value.get() == 1


def test_a_listing_decision_carries_its_id_not_its_text(make_service: Any, receivers: Callable[..., Receiver]
                                                        ) -> None:
    rx = receivers()
    s = make_service(webhooks=(WebhookTarget(rx.url, SECRET),))
    text = "face swap app for sale, telegram @seller"
    case_id = cases.open_case(s.ctx, subject=CaseSubject("listing", "L-1", {"id": "L-1", "text": text}),
                              verdict=Decision.REVIEW, score=0.5, result={}, versions={}, source="moderate",
                              actor="key:u")
    cases.decide(s.ctx, case_id, decision="confirm", reason="sale of a swapper", actor="key:r")
    wait_for(lambda: rx.got, timeout=2.0)
    target = json.loads(rx.got[0]["body"])["data"]["target"]
    assert target == {"id": "L-1", "text_sha256": hashlib.sha256(text.encode()).hexdigest()}


def test_a_wrong_secret_does_not_verify(make_service: Any, receivers: Callable[..., Receiver]) -> None:
    rx = receivers(secret=SECRET[::-1])
    s = make_service(webhooks=(WebhookTarget(rx.url, SECRET),))
    cases.decide(s.ctx, open_case(s.ctx, 2), decision="overturn", reason="fine", actor="key:r")
    wait_for(lambda: rx.got, timeout=2.0)
    assert rx.got[0]["valid"] is False


def test_down_target_retries_then_fails_while_the_rest_goes_on(make_service: Any,
                                                               receivers: Callable[..., Receiver]) -> None:
    rx = receivers()
    down = closed_port_url()
    s = make_service(webhooks=(WebhookTarget(down, SECRET), WebhookTarget(rx.url, SECRET)),
                     webhook_backoff_s=0.1, webhook_max_attempts=3)
    started = time.monotonic()
    r = s.post(f"/v1/cases/{open_case(s.ctx, 3)}/decision", role="reviewer",
               json={"decision": "confirm", "reason": "x"})
    assert r.status_code == 200 and r.json()["actions"]["webhooks_queued"] == 2
    wait_for(lambda: len(rx.got) == 1, timeout=2.0)
    # a second decision while the down target is still being retried: delivered, and the API stays fast
    t = time.monotonic()
    r = s.post(f"/v1/cases/{open_case(s.ctx, 4)}/decision", role="reviewer",
               json={"decision": "confirm", "reason": "y"})
    assert r.status_code == 200
    assert s.get("/v1/cases?status=all", role="reviewer").status_code == 200
    assert time.monotonic() - t < 1.0
    wait_for(lambda: len(rx.got) == 2, timeout=2.0)
    assert [json.loads(g["body"])["data"]["reason"] for g in rx.got] == ["x", "y"]

    failed = wait_for(lambda: [d for d in by_url(s.ctx, down) if d.status == "failed"], timeout=5.0)
    first = failed[0]
    assert first.attempts == 3 and "refused" in first.last_error.lower()
    assert str(first.url) not in first.last_error  # the origin is named, not the path
    # back-off: 0.1 s then 0.2 s between the three attempts
    assert (aware(first.finished) - aware(first.created)).total_seconds() >= 0.3 - 0.02
    assert time.monotonic() - started >= 0.28
    entry = wait_for(lambda: audit.entries(s.ctx.db, action="webhook.failed", subject_id=first.id))[0]
    assert entry.details["attempts"] == 3 and entry.details["last_error"] == first.last_error
    assert entry.reason == first.last_error
    wait_for(lambda: len([d for d in by_url(s.ctx, down) if d.status == "failed"]) == 2, timeout=5.0)
    assert all(d.status == "delivered" for d in by_url(s.ctx, rx.url))
    m = s.ctx.metrics.webhook_deliveries
    assert m.labels("failed")._value.get() == 2 and m.labels("retry")._value.get() == 4
    assert m.labels("delivered")._value.get() == 2


@pytest.mark.parametrize(("status", "why"), [(500, "HTTP 500"), (302, "redirects are not followed")])
def test_non_2xx_answers_are_retried_with_doubling_back_off(make_service: Any, receivers: Callable[..., Receiver],
                                                            status: int, why: str) -> None:
    rx = receivers(status=status)
    s = make_service(webhooks=(WebhookTarget(rx.url, SECRET),), webhook_backoff_s=0.15, webhook_max_attempts=3)
    cases.decide(s.ctx, open_case(s.ctx, 5), decision="confirm", reason="x", actor="key:r")
    row = wait_for(lambda: [d for d in deliveries(s.ctx) if d.status == "failed"], timeout=3.0)[0]
    assert why in row.last_error and row.attempts == 3
    assert len(rx.got) == 3 and all(g["path"] == "/hook/private-token" for g in rx.got)  # no redirect followed
    gaps = [b["at"] - a["at"] for a, b in zip(rx.got, rx.got[1:], strict=False)]
    assert gaps[0] >= 0.14 and gaps[1] >= 0.29, gaps
    assert len({g["headers"]["x-jieyao-delivery"] for g in rx.got}) == 1  # one delivery id across retries


def test_a_slow_target_is_cut_off_by_the_timeout(make_service: Any, receivers: Callable[..., Receiver]) -> None:
    slow, quick = receivers(delay_s=1.5), receivers()
    s = make_service(webhooks=(WebhookTarget(slow.url, SECRET), WebhookTarget(quick.url, SECRET)),
                     webhook_timeout_s=0.3, webhook_max_attempts=1)
    t = time.monotonic()
    cases.decide(s.ctx, open_case(s.ctx, 6), decision="confirm", reason="x", actor="key:r")
    assert time.monotonic() - t < 1.0
    wait_for(lambda: quick.got, timeout=2.0)
    row = wait_for(lambda: [d for d in by_url(s.ctx, slow.url) if d.status == "failed"], timeout=2.0)[0]
    assert "timeout" in row.last_error.lower()


def test_enqueue_is_part_of_the_transaction_and_follows_events(make_service: Any) -> None:
    s = make_service(webhooks=(WebhookTarget("http://127.0.0.1:9/a", SECRET),
                               WebhookTarget("http://127.0.0.1:9/b", SECRET, events=("case.other",))),
                     background=False)
    with pytest.raises(RuntimeError), s.ctx.db.tx(write=True) as conn:
        assert s.ctx.webhooks.enqueue(conn, "case.decided", {"x": 1}) == 1
        raise RuntimeError("the change fails")
    assert deliveries(s.ctx) == []
    with s.ctx.db.tx(write=True) as conn:
        assert s.ctx.webhooks.enqueue(conn, "case.other", {"x": 2}) == 1
        assert s.ctx.webhooks.enqueue(conn, "nobody.wants", {"x": 3}) == 0
    rows = deliveries(s.ctx)
    assert [(r.url, r.status, r.attempts) for r in rows] == [("http://127.0.0.1:9/b", "pending", 0)]
    body = json.loads(rows[0].body)
    assert body["event"] == "case.other" and body["data"] == {"x": 2} and body["at"].endswith("Z") and body["id"]


def test_verify_refuses_tampering_and_replays() -> None:
    body = b'{"event":"case.decided"}'
    stamp = str(int(time.time()))
    signature = webhooks.sign(SECRET, stamp, body)
    assert webhooks.verify(SECRET, stamp, body, signature)
    assert not webhooks.verify(SECRET, stamp, body + b" ", signature)
    assert not webhooks.verify(SECRET, str(int(stamp) + 1), body, signature)
    assert not webhooks.verify(SECRET, stamp, body, signature, at=time.time() + 3600)
    assert not webhooks.verify(SECRET, "not-a-number", body, signature)
    assert webhooks.origin("https://user:pw@hooks.example.com:8443/T0/B1/xyz?token=1") == \
        "https://hooks.example.com:8443"
