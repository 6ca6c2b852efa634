"""Service test fixtures: an app on a fresh SQLite file (or a throwaway Postgres schema) per test, started
through its lifespan exactly as uvicorn starts it, with one key per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient
from pg import pg_server, pg_url  # noqa: F401

from jieyao.service.app import create_app
from jieyao.service.auth import Role, create_key
from jieyao.service.config import ServiceConfig


@dataclass
class Service:
    """A started app: `client` (no key), `as_(role)` a client sending that role's key, and the context."""

    client: TestClient
    keys: dict[str, str]
    cfg: ServiceConfig

    @property
    def ctx(self) -> Any:
        return self.client.app.state.ctx  # type: ignore[attr-defined]

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[role]}

    def get(self, url: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.get(url, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)

    def post(self, url: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.post(url, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[ServiceFactory]:
    """make_service(**config) -> a started Service; every one made is stopped at the end of the test."""
    started: list[TestClient] = []

    def make(database: str | None = None, background: bool = True, **changes: Any) -> Service:
        changes.setdefault("scan_roots", (str(tmp_path / "roots"),))
        (tmp_path / "roots").mkdir(exist_ok=True)
        cfg = ServiceConfig(database=database or str(tmp_path / f"svc{len(started)}.db"),
                            temp_dir=str(tmp_path), **changes)
        client = TestClient(create_app(cfg, background=background), raise_server_exceptions=False)
        client.__enter__()
        started.append(client)
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        keys = {"admin": ctx.bootstrap_key} if ctx.bootstrap_key else {}
        if ctx.read_only is None:  # a read-only database gets no keys: the test brings its own
            for role in (Role.submitter, Role.reviewer):
                name = f"{role.name}{len(started)}"
                keys[role.name], _ = create_key(ctx.db, name, role, actor="test")
            if "admin" not in keys:
                keys["admin"], _ = create_key(ctx.db, f"admin{len(started)}", Role.admin, actor="test")
        return Service(client, keys, cfg)

    yield make
    for client in reversed(started):
        client.__exit__(None, None, None)


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    return make_service()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_service(request: pytest.FixtureRequest, make_service: ServiceFactory) -> Service:
    """The same test on SQLite and on a real Postgres server."""
    if request.param == "sqlite":
        return make_service()
    return make_service(database=request.getfixturevalue("pg_url"))
