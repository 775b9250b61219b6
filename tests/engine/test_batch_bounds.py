"""The decision-day bounds the batch plan filters with instead of adding durations per record.

``add(d, duration) > as_of`` holds exactly from one first day on, because adding a duration that
is not negative never goes back as ``d`` grows (months clamp to the month's end, then days add).
The plan filters ``d >= first`` (a comparison) instead of computing the sum for every record.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from socialcredit.engine.batch import _first_after
from socialcredit.rulebooks.durations import Duration, add

durations = st.builds(Duration, months=st.integers(0, 400), days=st.integers(0, 1000))
days = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 12, 31))
# month ends and leap days, where clamping makes add() flat
edges = st.sampled_from(
    [dt.date(2024, 2, 29), dt.date(2023, 2, 28), dt.date(2024, 3, 31), dt.date(2025, 4, 30)]
)


def _chain(day: dt.date, durs: list[Duration]) -> dt.date:
    for d in durs:
        day = add(day, d)
    return day


@given(as_of=days | edges, durs=st.lists(durations, min_size=1, max_size=3))
def test_first_after_is_the_first_day_the_sum_passes_as_of(
    as_of: dt.date, durs: list[Duration]
) -> None:
    first = _first_after(as_of, *durs)
    assert first is not None
    assert _chain(first, durs) > as_of
    assert _chain(first - dt.timedelta(days=1), durs) <= as_of


@given(as_of=days, months=st.integers(-50, 50), neg_days=st.integers(-400, -1))
def test_negative_durations_have_no_bound(as_of: dt.date, months: int, neg_days: int) -> None:
    assert _first_after(as_of, Duration(months, neg_days)) is None
    assert _first_after(as_of, Duration(3, 0), Duration(-1 - abs(months), 0)) is None


def test_zero_duration_is_the_next_day() -> None:
    assert _first_after(dt.date(2025, 6, 30), Duration()) == dt.date(2025, 7, 1)
    # 2024-01-31 + 1 month = 2024-02-29, as are Jan 29 and 30: the first day after Feb 28 is Jan 29
    assert _first_after(dt.date(2024, 2, 28), Duration(1, 0)) == dt.date(2024, 1, 29)
