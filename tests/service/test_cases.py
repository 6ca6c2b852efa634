"""The review queue: open (deduplicated), list by severity then age, decide once with a reason, and the bank
the decision feeds; every fault the issue names (unknown case, closed case, bad input, roles, races)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from jieyao.banks.store import BankKind
from jieyao.model import Decision
from jieyao.service import audit, cases
from jieyao.service.cases import CaseSubject
from jieyao.service.errors import ApiError

PDQ = "0123456789abcdef" * 4


def sha(n: int) -> str:
    return f"{n:064x}"


def md5(n: int) -> str:
    return f"{n:032x}"


def open_file(ctx: Any, n: int, verdict: Decision = Decision.REVIEW, *, pdq: bool = False, source: str = "scan",
              **extra: Any) -> int:
    identity = {"name": f"f{n}.bin", "sha256": sha(n), "md5": md5(n), "size": n, **extra}
    if pdq:
        identity["pdq"] = [PDQ]
    return cases.open_case(ctx, subject=CaseSubject("file", f"f{n}.bin", identity), verdict=verdict,
                           score=0.9 if verdict is Decision.BLOCK else 0.5, result={"decision": verdict.value},
                           versions={"jieyao": "test"}, source=source, actor="key:uploader")


def open_listing(ctx: Any, listing_id: str, text: str, verdict: Decision = Decision.REVIEW) -> int:
    return cases.open_case(ctx, subject=CaseSubject("listing", listing_id, {"id": listing_id, "text": text}),
                           verdict=verdict, score=0.5, result={"decision": verdict.value}, versions={},
                           source="moderate", actor="key:uploader")


def actions_of(ctx: Any, case_id: int) -> list[str]:
    return [e.action for e in audit.entries(ctx.db, subject_type="case", subject_id=case_id)]


def in_bank(ctx: Any, signal_type: str, value: str) -> set[str]:
    return {s.bank for s in ctx.engines.banks.lookup_exact(signal_type, value)}


@pytest.fixture(params=["sqlite", "postgres"])
def banked(request: pytest.FixtureRequest, make_service: Any) -> Any:
    """A service on either database with a positive and a negative bank as the defaults."""
    database = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = make_service(database=database, cases_on=("review", "block"), confirm_bank="known",
                     negative_bank="allowed")
    s.ctx.engines.banks.create_bank("known", BankKind.POSITIVE, actor="test")
    s.ctx.engines.banks.create_bank("allowed", BankKind.NEGATIVE, actor="test")
    return s


def test_queue_flow_open_list_decide_bank_audit(banked: Any) -> None:
    s, ctx = banked, banked.ctx
    review = open_file(ctx, 1, pdq=True)
    block = open_file(ctx, 2, Decision.BLOCK)
    listing = open_listing(ctx, "L-9", "cheap face swap app, dm me")

    r = s.get("/v1/cases", role="reviewer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["id"] for c in body["cases"]] == [block, review, listing] and body["total"] == 3
    first = body["cases"][0]
    assert set(first) == {"id", "kind", "status", "verdict", "severity", "score", "subject", "target", "result",
                          "versions", "source", "submitted_by", "created", "decided", "decided_by", "reason",
                          "actions", "version", "age_seconds"}
    assert (first["severity"], first["verdict"], first["status"], first["version"]) == (2, "block", "open", 1)
    assert first["created"].endswith("Z") and first["age_seconds"] >= 0

    one = s.get(f"/v1/cases/{review}", role="reviewer").json()
    assert one["target"]["sha256"] == sha(1) and one["submitted_by"] == "key:uploader" and one["severity"] == 1

    r = s.post(f"/v1/cases/{review}/decision", role="reviewer",
               json={"decision": "confirm", "reason": "known face-swap installer"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "confirmed" and done["reason"] == "known face-swap installer"
    assert done["decided_by"].startswith("key:reviewer") and done["decided"] is not None
    assert done["actions"]["bank"]["status"] == "done"
    assert sorted(a["type"] for a in done["actions"]["bank"]["added"]) == ["md5", "pdq", "sha256"]
    assert in_bank(ctx, "sha256", sha(1)) == {"known"} and in_bank(ctx, "md5", md5(1)) == {"known"}
    assert in_bank(ctx, "pdq", PDQ) == {"known"}
    assert actions_of(ctx, review) == ["case.open", "case.decide", "case.bank_add"]
    decide_entry = audit.entries(ctx.db, subject_type="case", subject_id=review, action="case.decide")[0]
    assert decide_entry.reason == "known face-swap installer" and decide_entry.details["bank"] == "known"
    assert decide_entry.details["decision"] == "confirm" and decide_entry.actor == done["decided_by"]

    r = s.post(f"/v1/cases/{block}/decision", role="reviewer",
               json={"decision": "overturn", "reason": "a photo editor, not a swapper"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "overturned"
    assert in_bank(ctx, "sha256", sha(2)) == {"allowed"}

    r = s.post(f"/v1/cases/{listing}/decision", role="reviewer", json={"decision": "confirm", "reason": "spam"})
    assert r.status_code == 200 and r.json()["actions"]["bank"]["status"] == "skipped"
    assert "listing" in r.json()["actions"]["bank"]["why"]
    assert actions_of(ctx, listing) == ["case.open", "case.decide"]

    assert s.get("/v1/cases", role="reviewer").json()["total"] == 0
    everything = s.get("/v1/cases?status=all", role="reviewer").json()
    assert everything["total"] == 3
    confirmed = s.get("/v1/cases?status=confirmed&kind=file", role="reviewer").json()
    assert [c["id"] for c in confirmed["cases"]] == [review]


def test_list_sorts_by_severity_then_age_and_pages(service: Any) -> None:
    ctx = service.ctx
    ids = [open_file(ctx, n, Decision.BLOCK if n % 2 else Decision.REVIEW) for n in range(1, 7)]
    expected = [i for i in ids if ids.index(i) % 2 == 0] + [i for i in ids if ids.index(i) % 2 == 1]
    listed, total = cases.list_cases(ctx, status=None)
    assert [c["id"] for c in listed] == expected and total == 6
    page, total = cases.list_cases(ctx, status="open", limit=2, offset=2)
    assert [c["id"] for c in page] == expected[2:4] and total == 6
    assert cases.list_cases(ctx, kind="listing") == ([], 0)
    assert service.get("/v1/cases?limit=501", role="reviewer").status_code == 422
    assert service.get("/v1/cases?status=pending", role="reviewer").status_code == 400
    assert service.get("/v1/cases?kind=video", role="reviewer").status_code == 400


def test_dedupe_of_open_case_about_the_same_subject(service: Any) -> None:
    ctx = service.ctx
    first = open_file(ctx, 7)
    assert open_file(ctx, 7, source="job:abc") == first
    assert cases.list_cases(ctx)[1] == 1
    seen = audit.entries(ctx.db, subject_type="case", subject_id=first, action="case.seen_again")
    assert len(seen) == 1 and seen[0].details["source"] == "job:abc"
    assert open_file(ctx, 8) != first

    a = open_listing(ctx, "L-1", "face swap pro")
    assert open_listing(ctx, "L-1", "face swap pro") == a
    assert open_listing(ctx, "L-1", "edited text") != a

    no_hash = [cases.open_case(ctx, subject=CaseSubject("file", "x", {"name": "x"}), verdict=Decision.REVIEW,
                               score=0.5, result={}, versions={}, source="scan", actor="key:u") for _ in range(2)]
    assert no_hash[0] != no_hash[1]

    cases.decide(ctx, first, decision="overturn", reason="fine", actor="key:r", add_hashes=False)
    reopened = open_file(ctx, 7)
    assert reopened != first and cases.get_case(ctx, reopened)["status"] == "open"


def test_maybe_open_case_follows_cases_on(make_service: Any) -> None:
    ctx = make_service().ctx  # cases_on = ("review",)
    subject = CaseSubject("file", "a", {"name": "a", "sha256": sha(1)})
    kw: dict[str, Any] = {"subject": subject, "score": 0.5, "result": {}, "versions": {}, "source": "scan",
                          "actor": "key:u"}
    assert cases.maybe_open_case(ctx, verdict=Decision.BLOCK, **kw) is None
    assert cases.maybe_open_case(ctx, verdict=Decision.PASS, **kw) is None
    assert isinstance(cases.maybe_open_case(ctx, verdict=Decision.REVIEW, **kw), int)
    both = make_service(cases_on=("review", "block")).ctx
    assert isinstance(cases.maybe_open_case(both, verdict=Decision.BLOCK, **kw), int)
    with pytest.raises(ValueError):
        cases.open_case(both, verdict=Decision.PASS, **kw)


def test_unknown_and_closed_cases(service: Any) -> None:
    assert service.get("/v1/cases/999", role="reviewer").status_code == 404
    r = service.post("/v1/cases/999/decision", role="reviewer", json={"decision": "confirm", "reason": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert service.get("/v1/cases/abc", role="reviewer").status_code == 422
    assert service.get(f"/v1/cases/{2**70}", role="reviewer").status_code == 422
    assert service.get("/v1/cases/-1", role="reviewer").status_code == 422
    with pytest.raises(ApiError) as huge:
        cases.decide(service.ctx, 2**70, decision="confirm", reason="x", actor="key:r")
    assert huge.value.status == 404

    case_id = open_file(service.ctx, 3)
    assert service.post(f"/v1/cases/{case_id}/decision", role="reviewer",
                        json={"decision": "confirm", "reason": "yes"}).status_code == 200
    r = service.post(f"/v1/cases/{case_id}/decision", role="admin", json={"decision": "overturn", "reason": "no"})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "conflict"
    assert err["details"]["status"] == "confirmed" and err["details"]["decided_by"].startswith("key:reviewer")
    assert service.get(f"/v1/cases/{case_id}", role="reviewer").json()["status"] == "confirmed"
    assert actions_of(service.ctx, case_id).count("case.decide") == 1


@pytest.mark.parametrize(("body", "status"), [
    ({"decision": "approve", "reason": "x"}, 400),
    ({"decision": "confirm", "reason": "   "}, 400),
    ({"decision": "confirm", "reason": "x" * 2001}, 400),
    ({"decision": "confirm"}, 422),
    ({"reason": "x"}, 422),
    ({"decision": "confirm", "reason": "x", "expected_version": "one"}, 422),
])
def test_bad_decisions_change_nothing(service: Any, body: dict[str, Any], status: int) -> None:
    case_id = open_file(service.ctx, 4)
    r = service.post(f"/v1/cases/{case_id}/decision", role="reviewer", json=body)
    assert r.status_code == status, r.text
    assert service.get(f"/v1/cases/{case_id}", role="reviewer").json()["version"] == 1
    assert actions_of(service.ctx, case_id) == ["case.open"]


def test_malformed_json_body(service: Any) -> None:
    case_id = open_file(service.ctx, 4)
    r = service.post(f"/v1/cases/{case_id}/decision", role="reviewer", content=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def test_wrong_banks_are_refused_before_anything_changes(make_service: Any) -> None:
    s = make_service(negative_bank="known")  # misconfigured: a positive bank as the negative one
    banks = s.ctx.engines.banks
    banks.create_bank("known", BankKind.POSITIVE, actor="test")
    banks.create_bank("allowed", BankKind.NEGATIVE, actor="test")
    case_id = open_file(s.ctx, 5)
    for body in ({"decision": "confirm", "reason": "x", "bank": "nosuch"},
                 {"decision": "overturn", "reason": "x", "bank": "known"},
                 {"decision": "confirm", "reason": "x", "bank": "allowed"},
                 {"decision": "overturn", "reason": "x"},
                 {"decision": "confirm", "reason": "x", "bank": "../../etc"}):
        r = s.post(f"/v1/cases/{case_id}/decision", role="reviewer", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["details"]["bank"] == body.get("bank", "known")
    case = s.get(f"/v1/cases/{case_id}", role="reviewer").json()
    assert (case["status"], case["version"]) == ("open", 1)
    assert actions_of(s.ctx, case_id) == ["case.open"]
    assert in_bank(s.ctx, "sha256", sha(5)) == set()
    # the right bank, named: accepted; add_hashes=false skips the (misconfigured) default altogether
    r = s.post(f"/v1/cases/{case_id}/decision", role="reviewer",
               json={"decision": "overturn", "reason": "benign", "bank": "allowed"})
    assert r.status_code == 200 and in_bank(s.ctx, "sha256", sha(5)) == {"allowed"}
    other = open_file(s.ctx, 6)
    r = s.post(f"/v1/cases/{other}/decision", role="reviewer",
               json={"decision": "overturn", "reason": "benign", "add_hashes": False})
    assert r.status_code == 200 and r.json()["actions"]["bank"]["why"] == "add_hashes was false"


def test_roles(service: Any) -> None:
    case_id = open_file(service.ctx, 6)
    urls = ["/v1/cases", f"/v1/cases/{case_id}"]
    body = {"decision": "confirm", "reason": "x"}
    for url in urls:
        assert service.client.get(url).status_code == 401
        assert service.get(url, role="submitter").status_code == 403
        assert service.get(url, role="reviewer").status_code == 200
    decision_url = f"/v1/cases/{case_id}/decision"
    assert service.client.post(decision_url, json=body).status_code == 401
    r = service.post(decision_url, role="submitter", json=body)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert actions_of(service.ctx, case_id) == ["case.open"]
    assert service.post(decision_url, role="reviewer", json=body).status_code == 200


def test_stale_expected_version_is_a_conflict(service: Any) -> None:
    case_id = open_file(service.ctx, 9)
    r = service.post(f"/v1/cases/{case_id}/decision", role="reviewer",
                     json={"decision": "confirm", "reason": "x", "expected_version": 7})
    assert r.status_code == 409 and r.json()["error"]["details"] == {"status": "open", "decided_by": None,
                                                                     "version": 1}
    r = service.post(f"/v1/cases/{case_id}/decision", role="reviewer",
                     json={"decision": "confirm", "reason": "x", "expected_version": 1})
    assert r.status_code == 200 and r.json()["version"] == 2


def test_two_reviewers_at_once_exactly_one_wins(any_db_service: Any) -> None:
    ctx = any_db_service.ctx
    for n in range(4):
        case_id = open_file(ctx, 100 + n)
        barrier = threading.Barrier(2)
        outcomes: dict[str, Any] = {}

        def reviewer(name: str, decision: str, case_id: int = case_id, barrier: threading.Barrier = barrier,
                     outcomes: dict[str, Any] = outcomes) -> None:
            barrier.wait()
            try:
                outcomes[name] = cases.decide(ctx, case_id, decision=decision, reason=f"by {name}",
                                              actor=f"key:{name}")
            except ApiError as exc:
                outcomes[name] = exc

        threads = [threading.Thread(target=reviewer, args=(name, d)) for name, d in (("ann", "confirm"),
                                                                                      ("bob", "overturn"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        wins = {k: v for k, v in outcomes.items() if isinstance(v, dict)}
        losses = {k: v for k, v in outcomes.items() if isinstance(v, ApiError)}
        assert len(wins) == 1 and len(losses) == 1, outcomes
        (winner, case), (_loser, err) = next(iter(wins.items())), next(iter(losses.items()))
        assert err.status == 409 and err.details["decided_by"] == f"key:{winner}"
        assert err.details["status"] == case["status"]
        assert actions_of(ctx, case_id).count("case.decide") == 1
        assert cases.get_case(ctx, case_id)["decided_by"] == f"key:{winner}"


def test_bank_trouble_after_the_decision_is_recorded(make_service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_service(confirm_bank="known")
    s.ctx.engines.banks.create_bank("known", BankKind.POSITIVE, actor="test")
    s.ctx.engines.banks.add_signal("known", "sha256", sha(11), actor="test")
    already = open_file(s.ctx, 11)
    case = cases.decide(s.ctx, already, decision="confirm", reason="again", actor="key:r")
    bank = case["actions"]["bank"]
    assert bank["status"] == "done" and [a["type"] for a in bank["added"]] == ["md5"]
    assert "already holds" in bank["skipped"][0]["why"]

    def down(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("bank store unreachable")

    monkeypatch.setattr(s.ctx.engines.banks, "add_signal", down)
    broken = open_file(s.ctx, 12)
    r = s.post(f"/v1/cases/{broken}/decision", role="reviewer", json={"decision": "confirm", "reason": "bad"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "confirmed" and r.json()["actions"]["bank"]["status"] == "failed"
    assert "unreachable" in r.json()["actions"]["bank"]["error"]
    failed = audit.entries(s.ctx.db, subject_type="case", subject_id=broken, action="case.bank_add_failed")
    assert len(failed) == 1 and "unreachable" in failed[0].details["error"]


def test_read_only_service_refuses_decisions(service: Any) -> None:
    case_id = open_file(service.ctx, 13)
    service.ctx.read_only = "the service database file is read-only: test"
    try:
        r = service.post(f"/v1/cases/{case_id}/decision", role="reviewer", json={"decision": "confirm",
                                                                                 "reason": "x"})
        assert r.status_code == 503 and "read-only" in r.json()["error"]["message"]
        assert service.get("/v1/cases", role="reviewer").status_code == 200
    finally:
        service.ctx.read_only = None
    assert cases.get_case(service.ctx, case_id)["status"] == "open"
