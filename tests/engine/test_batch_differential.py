"""The differential property test: the batch plan equals the reference for every subject.

Random populations and random rulebooks (``strategies.py``), random as-of days; the snapshot is
written as Parquet for DuckDB, into a real SQLite file, and into PostgreSQL, and the batch plan's
five tables are compared with what ``reference.evaluate`` gives subject by subject.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import ibis
import pytest
from hypothesis import HealthCheck, given, settings

from socialcredit.rulebooks.model import Rulebook
from tests.engine.helpers import check, duckdb_records, postgres_records, sqlite_records
from tests.engine.strategies import as_of_dates, populations, rulebooks

# SC_BATCH_EXAMPLES=10 runs ten times as many examples (a longer hunt than CI's)
_SCALE = float(os.environ.get("SC_BATCH_EXAMPLES", "1"))


def _n(examples: int) -> int:
    return max(1, round(examples * _SCALE))


_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


_DUCKDB = ibis.duckdb.connect()  # one in-memory database for every example (snapshots are views)


@settings(max_examples=_n(60), **_SETTINGS)
@given(rb=rulebooks(), rows=populations(), as_of=as_of_dates)
def test_duckdb_equals_reference(rb: Rulebook, rows: list[dict[str, Any]], as_of: dt.date) -> None:
    with tempfile.TemporaryDirectory() as d:
        check(rb, rows, as_of, duckdb_records(rows, Path(d) / "snapshot.parquet", _DUCKDB))


@settings(max_examples=_n(20), **_SETTINGS)
@given(rb=rulebooks(), rows=populations(), as_of=as_of_dates)
def test_duckdb_text_keys_equal_reference(
    rb: Rulebook, rows: list[dict[str, Any]], as_of: dt.date
) -> None:
    """DuckDB keys subjects by their text's hash unless two hashes collide; then by the text,
    as the other backends do. That path equals the reference too."""
    with tempfile.TemporaryDirectory() as d:
        records = duckdb_records(rows, Path(d) / "snapshot.parquet", _DUCKDB)
        check(rb, rows, as_of, records, subject_keys="text")


@settings(max_examples=_n(30), **_SETTINGS)
@given(rb=rulebooks(), rows=populations(), as_of=as_of_dates)
def test_sqlite_equals_reference(rb: Rulebook, rows: list[dict[str, Any]], as_of: dt.date) -> None:
    with tempfile.TemporaryDirectory() as d:
        check(rb, rows, as_of, sqlite_records(rows, Path(d) / "snapshot.db"))


@pytest.mark.postgres
def test_postgres_equals_reference(pg_url: str) -> None:
    @settings(max_examples=_n(15), **_SETTINGS)
    @given(rb=rulebooks(), rows=populations(), as_of=as_of_dates)
    def run(rb: Rulebook, rows: list[dict[str, Any]], as_of: dt.date) -> None:
        check(rb, rows, as_of, postgres_records(rows, pg_url))

    run()
