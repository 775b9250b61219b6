"""The DuckDB engine's connection: where it spills and how much memory it may use."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from socialcredit.engine.batch import connect


def _setting(con: object, name: str) -> str:
    return str(con.con.execute(f"SELECT current_setting('{name}')").fetchone()[0])  # type: ignore[attr-defined]


def test_duckdb_spills_to_the_system_temporary_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SC_DUCKDB_MEMORY_LIMIT", raising=False)
    con = connect("duckdb", "")
    try:
        spill = Path(tempfile.gettempdir()) / "socialcredit-duckdb"
        assert Path(_setting(con, "temp_directory")) == spill
        assert _setting(con, "preserve_insertion_order").lower() == "false"
    finally:
        con.disconnect()


def test_duckdb_memory_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_DUCKDB_MEMORY_LIMIT", "512MiB")
    con = connect("duckdb", "")
    try:
        assert _setting(con, "memory_limit") == "512.0 MiB"
    finally:
        con.disconnect()


@pytest.mark.parametrize("bad", ["lots", "3", "3GB; SET threads=1", "-1GB"])
def test_duckdb_memory_limit_must_be_a_size(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("SC_DUCKDB_MEMORY_LIMIT", bad)
    with pytest.raises(ValueError, match="SC_DUCKDB_MEMORY_LIMIT must be a size"):
        connect("duckdb", "")
