"""Shared test helpers. Fixtures are built by code (jieyao.imitations); nothing binary is committed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The test command (and CI) runs the same examples every time, so a red build is reproducible; a long run
# (JIEYAO_FUZZ_EXAMPLES=5000) explores new ones.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          max_examples=int(os.environ.get("JIEYAO_FUZZ_EXAMPLES", "60")),
                          derandomize="JIEYAO_FUZZ_EXAMPLES" not in os.environ)
settings.load_profile("default")

# tests/support holds helpers several test folders share (the throwaway Postgres server, pg.py).
sys.path.insert(0, str(Path(__file__).parent / "support"))


@pytest.fixture
def put(tmp_path: Path):
    """put('a/b.zip', data) writes a file under tmp_path and returns its path."""

    def _put(rel: str, data: bytes) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return _put
