from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import ibis
import pytest

from tests.engine.helpers import duckdb_records, postgres_records, spark_records, sqlite_records

Loader = Callable[[Sequence[dict[str, Any]]], ibis.Table]


@pytest.fixture(params=["duckdb", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def load(request: pytest.FixtureRequest, tmp_path: Path) -> Loader:
    """Puts snapshot rows on a backend and returns the records table there."""
    n = itertools.count()
    if request.param == "duckdb":
        return lambda rows: duckdb_records(rows, tmp_path / f"snap{next(n)}.parquet")
    if request.param == "sqlite":
        return lambda rows: sqlite_records(rows, tmp_path / f"snap{next(n)}.db")
    url = request.getfixturevalue("pg_url")
    return lambda rows: postgres_records(rows, url)


@pytest.fixture(scope="session")
def spark_con() -> Iterator[object]:
    """One local SparkSession (through ``batch.connect("spark")``) for the whole test session;
    its JVM is ended at the end. Skipped only where pyspark is not installed, never in CI."""
    from socialcredit.engine import batch_spark
    from socialcredit.engine.batch import connect

    if not batch_spark.available():
        reason = "pyspark is not installed (the optional extra: uv sync --extra spark)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}, but CI must run the Spark tests")
        pytest.skip(reason)
    con = connect("spark", "")
    # tests evaluate a few dozen rows: compiling Java code for each query costs more than it
    # saves (interpreted evaluation gives the same results), and one partition is enough
    for key, value in {
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.sql.shuffle.partitions": "1",
    }.items():
        con._session.conf.set(key, value)  # type: ignore[attr-defined]
    try:
        yield con
    finally:
        batch_spark.stop()


@pytest.fixture
def spark_load(spark_con: object, tmp_path: Path) -> Loader:
    """Like ``load``, on Spark: the rows as a Parquet snapshot read by the shared session."""
    n = itertools.count()
    return lambda rows: spark_records(rows, tmp_path / f"snap{next(n)}.parquet", spark_con)
