"""Schemathesis drives every operation of the OpenAPI document with generated requests (from the schema, and
ones that break it): no request may produce a 500 or an error outside the one error shape. Examples are
derandomised (CI runs the same ones each time); JIEYAO_FUZZ_EXAMPLES raises the count for a long run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from jieyao.service.app import create_app, openapi_document  # noqa: E402
from jieyao.service.config import ServiceConfig  # noqa: E402

EXAMPLES = int(os.environ.get("JIEYAO_FUZZ_EXAMPLES", "10"))
_DOC = openapi_document()
OPERATIONS = sorted((method.upper(), path, mode) for path, item in _DOC["paths"].items() for method, op in item.items()
                    for mode in ("positive", "negative")
                    if mode == "positive" or op.get("parameters") or op.get("requestBody"))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """One service for the whole module (each operation's examples share it; what they change is junk data)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "roots").mkdir()
    app = create_app(ServiceConfig(database=str(tmp / "svc.db"), temp_dir=str(tmp), rate_per_minute=0,
                                   scan_roots=(str(tmp / "roots"),)), background=False)
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app), app.state.ctx.bootstrap_key


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_no_request_makes_a_server_error(fuzzed, method, path, mode):
    schema, key = fuzzed
    [operation] = [r.ok() for r in schema.get_all_operations() if r.ok().method.upper() == method
                   and r.ok().path == path]

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode)))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize="JIEYAO_FUZZ_EXAMPLES" not in os.environ,
              suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call(headers={**(case.headers or {}), "X-API-Key": key})
        assert response.status_code < 500 or response.status_code in (503, 504), \
            f"{method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
        content_type = response.headers.get("content-type") or [""]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        if response.status_code >= 400 and content_type.startswith("application/json"):
            assert set(response.json()) == {"error"}, response.text[:500]

    check()
