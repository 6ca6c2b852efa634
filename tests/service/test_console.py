"""The review console through TestClient: sign-in, access, the queue's order, the evidence pages (escaped,
highlighted at the right offsets), and deciding a case by form with its CSRF and Origin checks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jieyao.model import Decision
from jieyao.service import cases
from jieyao.service.app import create_app
from jieyao.service.auth import Role, create_key
from jieyao.service.config import ServiceConfig
from jieyao.service.console import pages
from jieyao.service.console.render import Span, highlight
from jieyao.service.console.session import COOKIE, MAX_FORM_BYTES

VIOLATING = "出售AI金丹 DFL整合包 加V: dfl888 <script>alert('x')</script>"
_unique = itertools.count(1)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One started service for this module's tests (a start costs a second or more: migrations, engines).
    Tests open cases with subjects of their own and look only at those, so they do not disturb each other;
    the few that need a service alone (or other settings) use `make_service`."""
    tmp: Path = tmp_path_factory.mktemp("console")
    cfg = ServiceConfig(database=str(tmp / "svc.db"), temp_dir=str(tmp))
    with TestClient(create_app(cfg, background=False), raise_server_exceptions=False) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        keys = {"admin": ctx.bootstrap_key}
        for role in (Role.submitter, Role.reviewer):
            keys[role.name], _ = create_key(ctx.db, f"{role.name}1", role, actor="test")
        yield SimpleNamespace(client=client, keys=keys, ctx=ctx)


# --- helpers -----------------------------------------------------------------------------------------------

def browser(s: Any, role: str | None = "reviewer", *, base_url: str = "http://testserver") -> TestClient:
    """A client of the running app with its own cookie jar, signed in with `role`'s key (None: not at all)."""
    client = TestClient(s.client.app, base_url=base_url, raise_server_exceptions=False, follow_redirects=False)
    if role is not None:
        r = client.post("/console/login", data={"key": s.keys[role]})
        assert r.status_code == 303, r.text
    return client


def open_listing(s: Any, text: str = VIOLATING, listing_id: str | None = None,
                 result: dict[str, Any] | None = None, verdict: Decision | None = None) -> int:
    listing_id = listing_id or f"L{next(_unique)}"
    if result is None:
        result = s.ctx.engines.moderator.moderate(text, id=listing_id).to_dict()
    return cases.open_case(
        s.ctx, subject=cases.CaseSubject("listing", listing_id, {"id": listing_id, "text": text}),
        verdict=verdict or Decision(result["decision"]), score=float(result.get("score", 0.5)), result=result,
        versions={"jieyao": "test", "lexicon": "2026.12.0"}, source="moderate", actor="key:submitter")


FILE_RESULT = {
    "path": "bundle.zip", "decision": "review", "error": None, "skipped": None, "format": "zip", "size": 1234,
    "sha256": "ab" * 32, "members": 3, "bytes_read": 1234, "bytes_extracted": 999, "seconds": 0.01,
    "findings": [{
        "rule": "model.dfl-saved-model", "family": "DeepFaceLab", "category": "model", "confidence": 0.9,
        "decision": "review", "member": "workspace/model/<img src=x onerror=alert(1)>_SAEHD_data.dat",
        "sha256": "cd" * 32, "evidence": ["a DeepFaceLab SAEHD model's data file", "pickle with 'model_data'"],
        "facts": {"architecture": "SAEHD", "resolution": 224, "keys": ["encoder", "inter"]},
    }],
}


def open_file(s: Any, name: str = "bundle.zip", sha: str | None = None, verdict: Decision = Decision.REVIEW) -> int:
    sha = sha or f"{next(_unique):064x}"
    identity = {"name": name, "sha256": sha, "md5": "ef" * 16, "size": 1234}
    return cases.open_case(s.ctx, subject=cases.CaseSubject("file", name, identity), verdict=verdict, score=0.9,
                           result={**FILE_RESULT, "sha256": sha}, versions={"jieyao": "test", "rule_pack": "p@1"},
                           source="scan", actor="key:submitter")


class Marks(HTMLParser):
    """The listing text as (text, class, title) segments: class and title None for unmarked text."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.mark: tuple[str, str] | None = None
        self.segments: list[tuple[str, str | None, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") == "listing-text":
            self.inside = True
        elif self.inside and tag == "mark":
            self.mark = (a.get("class") or "", a.get("title") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self.mark = None
        elif tag == "div":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            cls, title = self.mark if self.mark else (None, None)
            self.segments.append((data, cls, title))


def segments(html: str) -> list[tuple[str, str | None, str | None]]:
    parser = Marks()
    parser.feed(html)
    return parser.segments


def form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the decision form."""

    class Inputs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.fields: dict[str, str] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "input" and a.get("type") == "hidden" and a.get("name"):
                self.fields[str(a["name"])] = a.get("value") or ""

    parser = Inputs()
    parser.feed(html)
    return parser.fields


def decide(client: TestClient, case_id: int, **fields: str) -> Any:
    page = client.get(f"/console/cases/{case_id}")
    assert page.status_code == 200, page.text
    data = form_fields(page.text) | {"decision": "confirm", "reason": "a DFL model for sale"} | fields
    return client.post(f"/console/cases/{case_id}/decision", data=data)


# --- signing in and access ---------------------------------------------------------------------------------

def test_login_with_a_wrong_key_is_the_login_page_again_with_401(service):
    client = browser(service, None)
    r = client.post("/console/login", data={"key": "jy_not-a-key"})
    assert r.status_code == 401
    assert "unknown or revoked API key" in r.text and 'name="key"' in r.text
    assert COOKIE not in r.headers.get("set-cookie", "")


def test_login_sets_a_strict_httponly_cookie_scoped_to_the_console(service):
    client = browser(service, None)
    r = client.post("/console/login", data={"key": service.keys["reviewer"]})
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={service.keys['reviewer']}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    assert client.get("/console/").status_code == 200


def test_login_over_https_marks_the_cookie_secure(service):
    client = browser(service, None, base_url="https://testserver")
    r = client.post("/console/login", data={"key": service.keys["admin"]})
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


@pytest.mark.parametrize("url", ["/console/", "/console/cases/1", "/console/audit"])
def test_pages_without_a_session_redirect_to_login(service, url):
    r = browser(service, None).get(url)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_a_bad_cookie_redirects_and_is_cleared(service):
    client = browser(service, None)
    client.cookies.set(COOKIE, "jy_forged", path="/console")
    r = client.get("/console/")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert f'{COOKIE}=""' in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]


def test_a_submitter_key_gets_403(service):
    client = browser(service, None)
    r = client.post("/console/login", data={"key": service.keys["submitter"]})
    assert r.status_code == 403 and "reviewer role" in r.text
    client.cookies.set(COOKIE, service.keys["submitter"], path="/console")
    page = client.get("/console/")
    assert page.status_code == 403 and "reviewer role" in page.text
    assert 'class="grid queue"' not in page.text


def test_a_revoked_key_ends_the_session(make_service):
    s = make_service(key_cache_s=0.0, background=False)
    client = browser(s)
    assert client.get("/console/").status_code == 200
    from jieyao.service.auth import revoke_key

    name = s.ctx.keys.verify(s.keys["reviewer"]).name
    revoke_key(s.ctx.db, name, actor="test")
    assert client.get("/console/").status_code == 303


def test_logout_clears_the_cookie_and_refuses_a_cross_site_post(service):
    client = browser(service)
    refused = client.post("/console/logout", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    r = client.post("/console/logout")
    assert r.status_code == 303 and "Max-Age=0" in r.headers["set-cookie"]
    assert client.get("/console/").status_code == 303


def test_pages_carry_a_strict_content_security_policy_and_static_files_are_served(service):
    r = browser(service).get("/console/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
    css = service.client.get("/console/static/console.css")
    assert css.status_code == 200 and ".hl-contact" in css.text
    assert "data-decision-form" in service.client.get("/console/static/console.js").text
    assert service.client.get("/console", follow_redirects=False).headers.get("location") == "/console/"


# --- the queue ---------------------------------------------------------------------------------------------

def queue_ids(html: str) -> list[int]:
    import re

    return [int(x) for x in re.findall(r'data-case="(\d+)"', html)]


def test_the_queue_lists_the_most_severe_first_then_the_oldest(make_service):
    s = make_service(background=False)
    older_review = open_file(s, "a.zip", verdict=Decision.REVIEW)
    block = open_file(s, "b.zip", verdict=Decision.BLOCK)
    newer_review = open_listing(s, "出售AI金丹", verdict=Decision.REVIEW)
    client = browser(s)
    r = client.get("/console/")
    assert r.status_code == 200
    assert queue_ids(r.text) == [block, older_review, newer_review]
    assert "badge-block" in r.text and "3 cases" in r.text
    assert queue_ids(client.get("/console/?kind=listing").text) == [newer_review]
    assert queue_ids(client.get("/console/?status=confirmed").text) == []
    assert decide(client, block).status_code == 303
    assert queue_ids(client.get("/console/?status=confirmed").text) == [block]
    assert queue_ids(client.get("/console/").text) == [older_review, newer_review]
    assert queue_ids(client.get("/console/?status=all").text) == [block, older_review, newer_review]
    bad = client.get("/console/?status=<b>x</b>")
    assert bad.status_code == 400 and "<b>x</b>" not in bad.text


def test_the_queue_pages(make_service, monkeypatch):
    s = make_service(background=False)
    monkeypatch.setattr(pages, "PAGE_SIZE", 2)
    ids = [open_file(s, f"f{i}.zip") for i in range(5)]
    client = browser(s)
    first, last = client.get("/console/"), client.get("/console/?page=3")
    assert queue_ids(first.text) == ids[:2] and "page 1 of 3" in first.text and 'rel="next"' in first.text
    assert queue_ids(last.text) == ids[4:] and 'rel="next"' not in last.text
    assert client.get("/console/?page=0").status_code == 400


# --- evidence ----------------------------------------------------------------------------------------------

def test_a_listing_page_escapes_the_text_and_highlights_each_hit_at_its_offsets(service):
    case_id = open_listing(service)
    r = browser(service).get(f"/console/cases/{case_id}")
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "&lt;script&gt;alert(" in r.text
    segs = segments(r.text)
    assert "".join(t for t, _, _ in segs) == VIOLATING  # the text, whole and in order
    by_text = {t: (c, title) for t, c, title in segs}
    # 出售 [0,2) sale; AI金丹 [2,6) and 金丹 [4,6) overlap: "AI" has one mark, "金丹" both (split, not nested)
    assert by_text["出售"][0] == "hl hl-hit" and "sale" in by_text["出售"][1]
    assert by_text["AI"][0] == "hl hl-hit" and "AI金丹" in by_text["AI"][1]
    assert "hl-overlap" in by_text["金丹"][0]
    assert "AI金丹" in by_text["金丹"][1] and "dan" in by_text["金丹"][1]
    contact = next(c for t, c, _ in segs if c and "hl-contact" in c)
    assert contact == "hl hl-contact"
    assert by_text["加V: dfl888"][1].startswith("contact: wechat dfl888")
    assert "model-sale" in r.text and "contact_obfuscation" in r.text  # labels, rules, evasions
    assert "a pretrained face-swap model" in r.text  # a rule's why
    assert "lexicon" in r.text and "2026.12.0" in r.text  # versions
    assert 'data-action="case.open"' in r.text  # the audit trail


def test_hostile_offsets_are_dropped_not_misplaced(service):
    result = {"decision": "review", "labels": [], "score": 0.5, "rules": [], "evasion": [],
              "hits": [{"term": "x", "canonical": "x", "group": "g", "channel": "pinyin", "start": 1, "end": 3},
                       {"term": "y", "start": "1", "end": 2}, {"term": "z", "start": 50, "end": 60}],
              "contacts": [{"type": "qq", "value": "<b>1</b>", "start": -5, "end": 1}]}
    case_id = open_listing(service, "abcd", result=result)
    r = browser(service).get(f"/console/cases/{case_id}")
    assert r.status_code == 200
    assert segments(r.text) == [("a", "hl hl-contact", "contact: qq <b>1</b>"),
                                ("bc", "hl hl-evasion", "g: “x” (found by pinyin)"), ("d", None, None)]
    assert "2 span(s) could not be placed" in r.text and "<b>1</b>" not in r.text


def test_highlight_splits_nested_identical_and_adjacent_spans():
    spans: list[Span | None] = [Span(0, 6, "hit", "outer"), Span(2, 4, "contact", "inner"),
                                Span(2, 4, "pattern", "same"), Span(6, 8, "hit", "next"), None]
    out = highlight("abcdefgh", spans)
    assert [(s.text, s.why) for s in out.segments] == [
        ("ab", ("outer",)), ("cd", ("outer", "inner", "same")), ("ef", ("outer",)), ("gh", ("next",))]
    assert out.segments[1].css == "hl hl-contact hl-hit hl-pattern hl-overlap"
    assert out.dropped == 1
    one_char = highlight("abcd", [Span(0, 3, "hit", "outer"), Span(1, 2, "contact", "inner")])
    assert [(s.text, s.why) for s in one_char.segments] == [
        ("a", ("outer",)), ("b", ("outer", "inner")), ("c", ("outer",)), ("d", ())]
    assert highlight("", [Span(0, 1, "hit", "x")]).segments == []


def test_a_file_page_shows_member_rule_family_and_facts(service):
    case_id = open_file(service, sha="ab" * 32)
    r = browser(service).get(f"/console/cases/{case_id}")
    assert r.status_code == 200
    assert "workspace/model/&lt;img src=x onerror=alert(1)&gt;_SAEHD_data.dat" in r.text
    assert "<img src=x" not in r.text
    assert "model.dfl-saved-model" in r.text and "DeepFaceLab" in r.text
    assert "a DeepFaceLab SAEHD model&#39;s data file" in r.text
    assert "architecture" in r.text and "SAEHD" in r.text and "resolution" in r.text
    assert "ab" * 32 in r.text and "ef" * 16 in r.text and "p@1" in r.text


def test_an_unknown_case_is_a_404_page(service):
    client = browser(service)
    assert client.get("/console/cases/999999").status_code == 404
    assert client.get("/console/cases/x1").status_code == 404


# --- deciding ----------------------------------------------------------------------------------------------

def test_a_decision_with_a_bad_csrf_token_is_refused(service):
    case_id = open_listing(service)
    client = browser(service)
    assert decide(client, case_id, csrf="0" * 64).status_code == 403
    missing = client.post(f"/console/cases/{case_id}/decision",
                          data={"decision": "confirm", "reason": "x", "expected_version": "1"})
    assert missing.status_code == 403 and "security token" in missing.text
    other = browser(service, "admin")  # another key's token is not this key's
    token = form_fields(other.get(f"/console/cases/{case_id}").text)["csrf"]
    assert decide(client, case_id, csrf=token).status_code == 403
    assert cases.get_case(service.ctx, case_id)["status"] == "open"


def test_a_decision_from_another_site_is_refused(service):
    case_id = open_listing(service)
    client = browser(service)
    page = client.get(f"/console/cases/{case_id}")
    data = form_fields(page.text) | {"decision": "confirm", "reason": "r"}
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Referer": "https://evil.example/x"}):
        r = client.post(f"/console/cases/{case_id}/decision", data=data, headers=headers)
        assert r.status_code == 403 and "another site" in r.text, headers
    assert cases.get_case(service.ctx, case_id)["status"] == "open"


def test_a_good_decision_closes_the_case_and_shows_its_audit_entry(service):
    case_id = open_listing(service)
    client = browser(service)
    r = decide(client, case_id, decision="confirm", reason="sells a DFL model <b>bold</b>",
               extra="ignored")  # an unknown field is ignored
    assert r.status_code == 303 and r.headers["location"] == f"/console/cases/{case_id}?done=confirm"
    case = cases.get_case(service.ctx, case_id)
    assert case["status"] == "confirmed" and case["reason"] == "sells a DFL model <b>bold</b>"
    assert case["decided_by"].startswith("key:reviewer")
    page = client.get(r.headers["location"])
    assert 'id="flash">Confirmed<' in page.text
    assert 'data-action="case.decide"' in page.text and "sells a DFL model &lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "data-decision-form" not in page.text and case["decided_by"] in page.text


def test_overturn_flash_and_no_echo_of_the_done_parameter(service):
    case_id = open_file(service)
    client = browser(service)
    r = decide(client, case_id, decision="overturn", reason="a training tutorial, not a sale")
    assert r.status_code == 303
    assert 'id="flash">Overturned<' in client.get(r.headers["location"]).text
    assert 'id="flash"' not in client.get(f"/console/cases/{case_id}?done=<script>").text


def test_a_decision_on_a_closed_case_shows_the_conflict(service):
    case_id = open_listing(service)
    client = browser(service)
    page = client.get(f"/console/cases/{case_id}")
    stale = form_fields(page.text) | {"decision": "overturn", "reason": "late"}
    assert decide(client, case_id).status_code == 303  # the first reviewer wins
    r = client.post(f"/console/cases/{case_id}/decision", data=stale)
    assert r.status_code == 409
    assert "already confirmed by key:reviewer" in r.text
    assert cases.get_case(service.ctx, case_id)["status"] == "confirmed"


@pytest.mark.parametrize(("fields", "message"), [
    ({"reason": "   "}, "a reason is required"),
    ({"decision": "delete"}, "choose Confirm or Overturn"),
    ({"expected_version": "x"}, "missing the case"),
    ({"bank": "no-such-bank"}, "no-such-bank"),
])
def test_a_bad_decision_form_is_shown_with_its_error_and_the_case_stays_open(service, fields, message):
    case_id = open_file(service)
    client = browser(service)
    r = decide(client, case_id, **fields)
    assert r.status_code == 400 and message in r.text, r.text
    assert 'id="error"' in r.text and "data-decision-form" in r.text
    assert cases.get_case(service.ctx, case_id)["status"] == "open"


def test_a_form_too_large_or_not_urlencoded_is_refused(service):
    case_id = open_listing(service)
    client = browser(service)
    big = client.post(f"/console/cases/{case_id}/decision", content=b"reason=" + b"x" * MAX_FORM_BYTES,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    as_json = client.post(f"/console/cases/{case_id}/decision", json={"decision": "confirm"})
    assert as_json.status_code == 415
    assert cases.get_case(service.ctx, case_id)["status"] == "open"


def test_a_read_only_database_shows_the_decision_was_not_saved(service, monkeypatch):
    case_id = open_listing(service)
    client = browser(service)
    monkeypatch.setattr(service.ctx, "read_only", "the database file is read-only")
    r = decide(client, case_id)
    assert r.status_code == 503 and "was not saved" in r.text and "read-only" in r.text
    monkeypatch.undo()
    assert cases.get_case(service.ctx, case_id)["status"] == "open"


# --- the audit log -----------------------------------------------------------------------------------------

def test_the_audit_page_lists_newest_first_and_pages(service, monkeypatch):
    monkeypatch.setattr(pages, "AUDIT_PAGE", 2)
    ids = [open_file(service, f"f{i}.zip") for i in range(3)]
    client = browser(service)
    r = client.get("/console/audit")
    assert r.status_code == 200
    assert r.text.index(f"case {ids[2]}<") < r.text.index(f"case {ids[1]}<")
    assert f'href="/console/cases/{ids[2]}"' in r.text
    older = r.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert older.startswith("/console/audit?before=")
    rest = client.get(older.replace("&amp;", "&"))
    assert f"case {ids[0]}<" in rest.text and f"case {ids[2]}<" not in rest.text
    assert client.get("/console/audit?before=x").status_code == 400


def test_deciding_and_the_audit_page_on_both_databases(any_db_service):
    s = any_db_service
    case_id = open_file(s)
    client = browser(s)
    assert decide(client, case_id, reason="confirmed on this store").status_code == 303
    log = client.get("/console/audit")
    assert log.status_code == 200
    first = log.text.index('data-action="case.decide"')
    assert first < log.text.index('data-action="case.open"')  # newest first
    assert "confirmed on this store" in log.text and f"case {case_id}<" in log.text


def test_a_rate_limited_reviewer_gets_a_429_page_with_retry_after(make_service):
    s = make_service(background=False, rate_per_minute=1)  # a burst of 10, then one a minute
    client = browser(s)  # the sign-in is the first request
    statuses = [client.get("/console/").status_code for _ in range(10)]
    assert statuses[:9] == [200] * 9 and statuses[9] == 429
    r = client.get("/console/")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "requests a minute" in r.text
