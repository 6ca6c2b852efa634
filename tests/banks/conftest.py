"""Bank test fixtures: a fresh SQLite store per test (values are made by code; no real content anywhere)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "banks.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Any]:
    from jieyao.banks.store import BankStore

    s = BankStore.open(db_path)
    yield s
    s.close()


# The throwaway Postgres server (session) and an empty schema of it per test (`pg_url`); they skip, or fail under
# JIEYAO_REQUIRE_POSTGRES=1, where no server can be started. tests/support is on sys.path (tests/conftest.py).
from pg import pg_server, pg_url  # noqa: E402, F401
