"""The two places backends differ: calendar arithmetic and JSON attributes.

Each backend must add durations exactly as ``durations.add`` does (months first, clamped to the
end of the month, then days) and read attributes exactly as ``Rec.attr`` / ``Rec.number`` do.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from socialcredit.engine.batch import _Stages
from socialcredit.engine.batch_dates import DateMath
from socialcredit.engine.batch_json import parse_attributes
from socialcredit.engine.records import Rec
from socialcredit.rulebooks.durations import Duration, add, add_months
from tests.engine.conftest import Loader
from tests.engine.helpers import row

DURATIONS = [
    Duration(1, 0),
    Duration(13, 5),
    Duration(0, 40),
    Duration(24, 0),
    Duration(0, 0),
    Duration(1, 1),
    Duration(-1, 0),
]


def _dates() -> list[dt.date]:
    rng = random.Random(5)
    edges = [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2023, 1, 31), dt.date(2100, 1, 29)]
    edges += [
        dt.date(y, m, d) for y in (2023, 2024) for m in (1, 3, 5, 8, 10, 12) for d in (29, 31)
    ]
    return edges + [
        dt.date(2000, 1, 1) + dt.timedelta(days=rng.randint(0, 40000)) for _ in range(60)
    ]


def test_durations_are_added_like_the_reference(load: Loader) -> None:
    days = _dates()
    years = [random.Random(i).randint(-3, 3) for i in range(len(days))]
    rows = [  # the amount column carries a number of years to add (as extend_by_attribute does)
        row(i + 1, "generic:S", "k", d, amount_minor=n)
        for i, (d, n) in enumerate(zip(days, years, strict=True))
    ]
    t = load(rows)
    stages = _Stages(t.get_backend())
    dm = DateMath(t.get_backend().name)
    try:
        x = t.select(rid=t.record_id, d=t.decision_date.cast("date"), n=t.amount_minor * 12)
        x = dm.add_columns(
            x, {f"a{i}": ("d", du.months, du.days) for i, du in enumerate(DURATIONS)}
        )
        x = dm.add_columns(x, {"v": ("d", "n", 0)})
        got = {r["rid"]: r for r in stages.fetch(x).to_pylist()}
    finally:
        stages.close()
    for i, (d, n) in enumerate(zip(days, years, strict=True)):
        r = got[i + 1]
        for j, du in enumerate(DURATIONS):
            assert r[f"a{j}"] == add(d, du), (d, du)
        assert r["v"] == add_months(d, 12 * n), (d, n)


VALUES: list[Any] = [
    1,
    0,
    -3,
    2.0,
    -0.0,
    1.5,
    1e-05,
    1.5e-05,
    0.0001,
    1e-07,
    0.1,
    0.30000000000000004,
    1e16,
    123.456,
    -7.25e-06,
    True,
    False,
    None,
    "x",
    "",
    "1",
    " 2.5 ",
    "1e3",
    "abc",
    "true",
    "1.",
    ".5",
    "+3",
    'x"y',
    "ü",
]


def test_attributes_read_like_rec(load: Loader) -> None:
    rows = [
        row(i + 1, "generic:S", "k", "2024-01-01", attributes={"a": v, "b": 1})
        for i, v in enumerate(VALUES)
    ]
    rows.append(row(len(rows) + 1, "generic:S", "k", "2024-01-01", attributes={"b": 1}))
    t = load(rows)
    backend = t.get_backend()
    stages = _Stages(backend)
    try:
        x = t.select(rid=t.record_id, attributes=t.attributes)
        x = parse_attributes(x, "attributes", ["a", "b"], {"a"}, backend.name)
        got = {r["rid"]: r for r in stages.fetch(x).to_pylist()}
    finally:
        stages.close()
    for r in rows:
        rec = Rec.from_row(r)
        g = got[r["record_id"]]
        assert (g["a0"], g["x0"], g["a1"]) == (rec.attr("a"), rec.number("a"), "1"), json.dumps(
            r["attributes"]
        )
