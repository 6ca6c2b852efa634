"""The app starts, migrates, answers health checks, and refuses what has no key."""

from __future__ import annotations


def test_health_and_ready(any_db_service):
    s = any_db_service
    assert s.client.get("/healthz").json()["status"] == "ok"
    ready = s.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["ready"] is True


def test_keys_required_and_roles_enforced(service):
    assert service.client.get("/v1/keys").status_code == 401
    assert service.client.get("/v1/keys", headers={"X-API-Key": "jy_wrong"}).status_code == 401
    r = service.get("/v1/keys", role="reviewer")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert service.get("/v1/keys").status_code == 200
