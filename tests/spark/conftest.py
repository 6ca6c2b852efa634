"""One local Spark session (`local[2]`, UI off, two shuffle partitions) for every Spark test. Without pyspark or
Java the tests skip, unless JIEYAO_REQUIRE_SPARK=1 (CI sets it once Java is installed): then they fail."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

REQUIRED = os.environ.get("JIEYAO_REQUIRE_SPARK") == "1"


def _missing() -> str | None:
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark/pyarrow not installed ({exc}); install jieyao[spark]"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "no Java runtime (apt-get install openjdk-17-jre-headless)"
    return None


def session_builder(master: str = "local[2]") -> Any:
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master).appName("jieyao-tests")
            .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2").config("spark.default.parallelism", "2")
            .config("spark.pyspark.python", sys.executable).config("spark.pyspark.driver.python", sys.executable)
            .config("spark.driver.memory", "1g").config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
            .config("spark.local.dir", tempfile.mkdtemp(prefix="jieyao-spark-tests-")))


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    why = _missing()
    if why:
        if REQUIRED:
            pytest.fail(f"JIEYAO_REQUIRE_SPARK=1 but {why}")
        pytest.skip(why)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = session_builder().getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
