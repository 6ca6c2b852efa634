"""The audit API: paging with next_after, filters, streamed exports (JSON Lines and CSV) and roles; and the
database itself refusing to change or delete what was recorded."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import text

from jieyao.service import audit
from jieyao.service.api import audit as audit_api
from jieyao.service.db import StoreUnavailable


def fill(ctx: Any, n: int, action: str = "test.entry", **kw: Any) -> None:
    with ctx.db.tx(write=True) as conn:
        for i in range(n):
            audit.record(conn, "key:test", action, subject_type="thing", subject_id=i, details={"i": i}, **kw)


def test_paging_follows_next_after_to_the_end(service: Any) -> None:
    fill(service.ctx, 7)
    seen: list[int] = []
    after = 0
    for _ in range(20):
        r = service.get(f"/v1/audit?after={after}&limit=3", role="reviewer")
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [e["id"] for e in page["entries"]]
        if page["next_after"] is None:
            break
        assert page["next_after"] == page["entries"][-1]["id"]
        after = page["next_after"]
    total = len(audit.entries(service.ctx.db, limit=1000))
    assert seen == sorted(set(seen)) and len(seen) == total >= 7


def test_filters(service: Any) -> None:
    fill(service.ctx, 3)
    fill(service.ctx, 2, action="other.entry")
    r = service.get("/v1/audit?action=other.entry", role="reviewer").json()
    assert [e["action"] for e in r["entries"]] == ["other.entry"] * 2
    r = service.get("/v1/audit?subject_type=thing&subject_id=1", role="reviewer").json()
    assert len(r["entries"]) == 2 and all(e["subject_id"] == "1" for e in r["entries"])
    entry = r["entries"][0]
    assert set(entry) == {"id", "at", "actor", "action", "subject_type", "subject_id", "reason", "details"}
    assert entry["at"].endswith("Z") and entry["details"] == {"i": 1}
    assert service.get("/v1/audit?actor=key:nobody", role="reviewer").json() == {"entries": [], "next_after": None}
    assert service.get("/v1/audit?limit=1001", role="reviewer").status_code == 422
    assert service.get("/v1/audit?after=-1", role="reviewer").status_code == 422
    assert service.get(f"/v1/audit?after={2**64}", role="reviewer").status_code == 422
    assert service.get("/v1/audit?action=" + "x" * 61, role="reviewer").status_code == 422


def test_roles(service: Any) -> None:
    for url in ("/v1/audit", "/v1/audit/export"):
        assert service.client.get(url).status_code == 401
        assert service.get(url, role="submitter").status_code == 403
        assert service.get(url, role="reviewer").status_code == 200
        assert service.get(url, role="admin").status_code == 200


def test_export_jsonl_streams_every_entry_across_pages(service: Any) -> None:
    fill(service.ctx, audit.MAX_PAGE + 5)
    r = service.get("/v1/audit/export?format=jsonl", role="reviewer")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="jieyao-audit-' in r.headers["content-disposition"]
    assert r.headers["content-disposition"].endswith('.jsonl"')
    rows = [json.loads(line) for line in r.text.splitlines()]
    ids = [row["id"] for row in rows]
    assert len(rows) == len(list(audit.iter_all(service.ctx.db))) > audit.MAX_PAGE
    assert ids == sorted(set(ids))
    only = service.get("/v1/audit/export?action=key.create", role="reviewer").text.splitlines()
    assert {json.loads(line)["action"] for line in only} == {"key.create"}


def test_export_csv_has_a_header_and_defuses_formulas(service: Any) -> None:
    fill(service.ctx, 2, reason="=HYPERLINK(\"http://evil\")")
    r = service.get("/v1/audit/export?format=csv", role="reviewer")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].endswith('.csv"')
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == list(audit_api.CSV_COLUMNS)
    body = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    assert len(body) == len(list(audit.iter_all(service.ctx.db)))
    tests = [row for row in body if row["action"] == "test.entry"]
    assert len(tests) == 2 and all(row["reason"].startswith("'=HYPERLINK") for row in tests)
    assert json.loads(tests[0]["details"]) == {"i": 0}
    assert service.get("/v1/audit/export?format=xml", role="reviewer").status_code == 422


def test_export_answers_503_when_the_database_is_down(service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_a: Any, **_k: Any) -> Any:
        raise StoreUnavailable("service database error: gone")

    monkeypatch.setattr(audit, "entries", down)
    r = service.get("/v1/audit/export", role="reviewer")
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"


def test_the_database_refuses_to_change_the_log(any_db_service: Any) -> None:
    ctx = any_db_service.ctx
    fill(ctx, 1)
    before = [e.to_dict() for e in audit.entries(ctx.db)]
    for statement in ("UPDATE svc_audit SET actor = 'someone else'", "DELETE FROM svc_audit"):
        with pytest.raises(StoreUnavailable, match="append-only"), ctx.db.tx(write=True) as conn:
            conn.execute(text(statement))
    assert [e.to_dict() for e in audit.entries(ctx.db)] == before
