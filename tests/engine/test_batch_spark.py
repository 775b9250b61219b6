"""The batch plan on Apache Spark (PySpark, local mode) against the reference evaluator.

One SparkSession serves every test (``spark_con`` in ``conftest.py``, stopped with its JVM at the
end of the session; code generation off, one shuffle partition: the data are tiny). Spark needs
seconds per plan, so this runs 15 Hypothesis examples of the differential property
(``SC_BATCH_EXAMPLES`` scales them), the two dialect checks (dates and JSON attributes), the
cn-national cases as one population, the ledger scenario through
``evaluate_population(engine="spark")`` and ``socialcredit evaluate --engine spark`` against
``--engine duckdb``. Skipped only where pyspark is missing, never under ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import tests.engine.test_batch_dialects as dialects
import tests.engine.test_batch_ledger as ledger_scenario
from socialcredit.clock import FixedClock
from socialcredit.engine.batch import evaluate_population
from socialcredit.ledger import Ledger
from socialcredit.ledger.export import export
from socialcredit.rulebooks.model import Rulebook
from tests.engine.conftest import Loader
from tests.engine.helpers import check, shipped_scenario, spark_records
from tests.engine.strategies import as_of_dates, populations, rulebooks
from tests.engine.test_batch_differential import _n

pytestmark = pytest.mark.slow


def test_spark_adds_durations_like_the_reference(spark_load: Loader) -> None:
    dialects.test_durations_are_added_like_the_reference(spark_load)


def test_spark_reads_attributes_like_rec(spark_load: Loader) -> None:
    dialects.test_attributes_read_like_rec(spark_load)


# ------------------------------------------------------------------ the property, on Spark

_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def test_spark_equals_reference(spark_con: Any) -> None:
    @settings(max_examples=_n(15), **_SETTINGS)
    @given(rb=rulebooks(), rows=populations(), as_of=as_of_dates)
    def run(rb: Rulebook, rows: list[dict[str, Any]], as_of: dt.date) -> None:
        with tempfile.TemporaryDirectory() as d:
            check(rb, rows, as_of, spark_records(rows, Path(d) / "snapshot.parquet", spark_con))

    run()


# ------------------------------------------------------------------ scenarios


def _views(con: Any) -> set[str]:
    # (SHOW TABLES, not catalog.listTables(), which fails without code generation)
    return set(con._session.sql("SHOW TABLES").toArrow().column("tableName").to_pylist())


def test_spark_shipped_rulebook_equals_reference(spark_load: Loader) -> None:
    rb, rows, days = shipped_scenario("cn-national", max_days=2)
    records = spark_load(rows)
    for day in days:
        res = check(rb, rows, day, records)
        assert res.memberships.num_rows > 0


def test_spark_over_an_exported_ledger_equals_the_reference(
    spark_con: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """``evaluate_population(engine="spark")`` (what ``socialcredit evaluate --engine spark``
    runs) over a Parquet export of a real ledger with corrections, retractions and suspensions."""
    views = _views(spark_con)
    with Ledger.open(str(tmp_path / "ledger.db"), clock=clock) as ledger:
        ledger_scenario._fill(ledger)
        snap = tmp_path / "snapshot.parquet"
        export(ledger, snap, "parquet")
        for as_of in ledger_scenario.AS_OF[2:3]:
            res = evaluate_population(ledger_scenario.RB, engine="spark", source=snap, as_of=as_of)
            ledger_scenario._check(res, ledger, as_of)
    # the session is kept for the next evaluation; the snapshot's and the stages' views are not
    assert _views(spark_con) == views


def test_cli_evaluate_on_spark_prints_what_duckdb_prints(
    spark_con: Any, tmp_path: Path, clock: FixedClock
) -> None:
    """``socialcredit evaluate --engine spark`` (in the shared session) and ``--engine duckdb``
    give the same counts per list, grade and measure for a shipped rulebook over a real ledger."""
    import json

    from typer.testing import CliRunner

    from socialcredit.cli.main import app

    db = tmp_path / "ledger.db"
    with Ledger.open(str(db), clock=clock) as ledger:
        ledger_scenario._fill(ledger)
    runner = CliRunner()
    out = {}
    for engine in ("duckdb", "spark"):
        args = ["--db", str(db), "evaluate", "--rulebook", "cn-national", "--as-of", "2025-09-30"]
        res = runner.invoke(app, [*args, "--engine", engine, "--json"])
        assert res.exit_code == 0, res.output
        out[engine] = json.loads(res.stdout)
    assert out["spark"].pop("engine") == "spark"
    assert out["duckdb"].pop("engine") == "duckdb"
    assert out["spark"] == out["duckdb"]
    assert out["spark"]["lists"]  # somebody is listed: the comparison is not vacuous
