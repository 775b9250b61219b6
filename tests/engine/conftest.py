from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ibis
import pytest

from tests.engine.helpers import duckdb_records, postgres_records, sqlite_records

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
