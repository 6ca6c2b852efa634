"""Bad requests and faults: keys, roles, sizes, malformed bodies, rate limits, timeouts, a read-only database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RAW = {"content-type": "application/octet-stream"}


def test_no_key_wrong_key_and_a_role_too_low(service):
    no_key = service.client.post("/v1/moderate", json={"text": "x"})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"
    assert no_key.headers["www-authenticate"] == "Bearer"
    wrong = service.client.post("/v1/moderate", json={"text": "x"}, headers={"X-API-Key": "jy_" + "a" * 43})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["error"]["message"]
    as_admin = service.post("/v1/keys", json={"name": "sneaky", "role": "admin"}, role="reviewer")
    assert as_admin.status_code == 403 and "admin role" in as_admin.json()["error"]["message"]
    assert service.post("/v1/banks", json={"name": "b"}, role="submitter").status_code == 403
    assert service.client.get("/healthz").status_code == 200  # health checks need no key


def test_upload_over_the_limit_declared_or_streamed(make_service):
    s = make_service(max_upload_bytes=1000, max_body_bytes=200)
    declared = s.post("/v1/scan?name=big.bin", content=b"x" * 1001, headers=RAW, role="submitter")
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

    def chunks():
        for _ in range(20):
            yield b"y" * 100

    streamed = s.post("/v1/scan?name=big.bin", content=chunks(), headers=RAW, role="submitter")
    assert streamed.status_code == 413
    assert os.listdir(s.ctx.tmp_dir) == []  # the partial upload was removed
    assert s.post("/v1/scan?name=ok.bin", content=b"x" * 999, headers=RAW, role="submitter").status_code == 200
    big_json = s.post("/v1/moderate", json={"text": "z" * 300}, role="submitter")
    assert big_json.status_code == 413


def test_malformed_json_and_wrong_shapes(service):
    for body in (b"{", b"[1, 2", b"\xff\xfe"):
        r = service.post("/v1/moderate", content=body, headers={"content-type": "application/json"},
                         role="submitter")
        assert r.status_code in (400, 422), body
        assert set(r.json()) == {"error"}
    r = service.post("/v1/match", content=b"{", headers={"content-type": "application/json"}, role="submitter")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"
    assert service.get("/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_rate_limit_per_key(make_service):
    s = make_service(rate_per_minute=60)  # bursts of 10
    codes = [s.post("/v1/moderate", json={"text": "x"}, role="submitter").status_code for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[-1] == 429
    limited = s.post("/v1/moderate", json={"text": "x"}, role="submitter")
    assert int(limited.headers["retry-after"]) >= 1
    assert s.post("/v1/moderate", json={"text": "x"}, role="reviewer").status_code == 200  # per key


def test_request_timeout_answers_504(make_service):
    s = make_service(request_timeout_s=0.000001)
    # a batch runs in a worker thread under the timeout (one short listing is answered inline, in < 1 ms)
    r = s.post("/v1/moderate", json={"listings": [{"text": "出售AI金丹"}, {"text": "x"}]}, role="submitter")
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def _read_only_copy(tmp_path: Path, how: str) -> tuple[str, str]:
    """A migrated service database with an admin key, then made read-only: by permissions (needs a non-root
    run: root writes through 0444) or by opening it read-only (`mode=ro`, as a read-only mount would)."""
    import sqlite3

    from jieyao.banks.store import BankStore
    from jieyao.service.auth import Role, create_key
    from jieyao.service.db import ServiceDB

    folder = tmp_path / "ro"
    folder.mkdir()
    db_path = folder / "svc.db"
    db = ServiceDB(str(db_path))
    db.upgrade()
    key, _ = create_key(db, "admin", Role.admin, actor="test")
    db.close()
    BankStore.open(db_path).close()
    plain = sqlite3.connect(db_path)  # out of WAL mode: a reader of a WAL file must be able to write its -shm
    plain.execute("PRAGMA journal_mode=DELETE")
    plain.close()
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root writes through file permissions; the mode=ro case covers this run")
        os.chmod(db_path, 0o444)
        os.chmod(folder, 0o555)  # noqa: S103 - read-only on purpose
        return str(db_path), key
    return f"sqlite:///file:{db_path}?mode=ro&uri=true", key


@pytest.mark.parametrize("how", ["chmod", "mode_ro"])
def test_read_only_database_serves_reads_and_refuses_writes_clearly(make_service, tmp_path, how):
    """Readiness says why, reads work, writes answer 503, and a flagged listing still gets its verdict with
    the case error spelled out; nothing crashes."""
    database, key = _read_only_copy(tmp_path, how)
    try:
        s = make_service(database=database, cases_on=("review", "block"))
        h = {"X-API-Key": key}
        ready = s.client.get("/readyz")
        assert ready.status_code == 503 and any("read-only" in p for p in ready.json()["problems"])
        assert s.client.get("/v1/keys", headers=h).status_code == 200
        write = s.client.post("/v1/keys", json={"name": "n", "role": "submitter"}, headers=h)
        assert write.status_code == 503 and "read-only" in write.json()["error"]["message"]
        listing = s.client.post("/v1/moderate", json={"text": "出售AI金丹 网盘秒发"}, headers=h).json()
        assert listing["decision"] == "block"
        assert listing["case_id"] is None and "read-only" in listing["case_error"]
    finally:
        for p in (tmp_path / "ro", tmp_path / "ro" / "svc.db"):
            if p.exists():
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
