"""The shipped rulebooks through the batch plan: every rulebook's own test cases, made into one
population (a subject per case), evaluated on each case's as-of day, equal the reference.

DuckDB and SQLite here; Spark in ``test_batch_spark.py`` (cn-national, fewer days)."""

from __future__ import annotations

import pytest

from tests.engine.conftest import Loader
from tests.engine.helpers import check, shipped_scenario
from tests.shipped.test_shipped_rulebooks import SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_rulebook_batch_equals_reference(name: str, load: Loader) -> None:
    rb, rows, days = shipped_scenario(name)
    assert rows and days
    records = load(rows)
    listed = 0
    for day in days:
        res = check(rb, rows, day, records)
        listed += res.memberships.num_rows + res.schemes.num_rows
    assert listed > 0  # the scenario exercises the rulebook
