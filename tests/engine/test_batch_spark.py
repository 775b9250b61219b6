"""The batch plan on Apache Spark (PySpark, local mode) against the reference evaluator.

One SparkSession serves every test (``spark_con`` in ``conftest.py``, stopped with its JVM at the
end of the session). Spark needs seconds per plan, so this runs a few Hypothesis examples of the
differential property, the two dialect checks (dates and JSON attributes), and the ledger
scenario through ``evaluate_population(engine="spark")``. Skipped only where pyspark is missing,
never under ``CI=true``.
"""

from __future__ import annotations

import pytest

import tests.engine.test_batch_dialects as dialects
from tests.engine.conftest import Loader

pytestmark = pytest.mark.slow


def test_spark_adds_durations_like_the_reference(spark_load: Loader) -> None:
    dialects.test_durations_are_added_like_the_reference(spark_load)


def test_spark_reads_attributes_like_rec(spark_load: Loader) -> None:
    dialects.test_attributes_read_like_rec(spark_load)
