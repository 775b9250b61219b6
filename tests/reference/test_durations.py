"""Durations and calendars: parsing, calendar arithmetic, working days."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcredit.rulebooks.calendar import Calendar
from socialcredit.rulebooks.durations import Duration, add, add_months

durations = st.builds(
    lambda y, m, d: Duration(months=12 * y + m, days=d),
    st.integers(0, 20),
    st.integers(0, 11),
    st.integers(0, 400),
) | st.builds(lambda n: Duration(working_days=n), st.integers(1, 60))
dates = st.dates(dt.date(1950, 1, 1), dt.date(2100, 12, 31))


@given(durations)
def test_text_round_trip(d: Duration) -> None:
    assert Duration.parse(str(d)) == d


@given(st.text(max_size=8))
def test_parse_refuses_or_round_trips(text: str) -> None:
    try:
        d = Duration.parse(text)
    except ValueError as e:
        assert "duration" in str(e) or "working days" in str(e)
    else:
        assert Duration.parse(str(d)) == d


@pytest.mark.parametrize(
    ("text", "months", "days", "wd"),
    [
        ("2y", 24, 0, 0),
        ("2y6m", 30, 0, 0),
        ("180d", 0, 180, 0),
        ("3wd", 0, 0, 3),
        (" 1Y 2M ", 14, 0, 0),
    ],
)
def test_parse_examples(text: str, months: int, days: int, wd: int) -> None:
    assert Duration.parse(text) == Duration(months, days, wd)


@pytest.mark.parametrize("bad", ["", "2", "y", "2w", "1.5y", "-1d", "3wd2d"])
def test_parse_refusals(bad: str) -> None:
    with pytest.raises(ValueError):
        Duration.parse(bad)


@given(dates, st.integers(0, 600))
def test_add_months_lands_in_the_right_month_clamped(d: dt.date, n: int) -> None:
    out = add_months(d, n)
    assert (out.year * 12 + out.month) - (d.year * 12 + d.month) == n
    assert out.day == min(d.day, calendar.monthrange(out.year, out.month)[1])


def test_month_end_examples() -> None:
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add(dt.date(2024, 2, 29), Duration.parse("1y")) == dt.date(2025, 2, 28)
    assert add(dt.date(2024, 1, 31), Duration.parse("1m1d")) == dt.date(2024, 3, 1)
    with pytest.raises(ValueError, match="calendar"):
        add(dt.date(2024, 1, 1), Duration.parse("3wd"))


def test_working_days_skip_weekends_holidays_and_honour_make_up_days() -> None:
    cal = Calendar.build(
        "t", holidays=[dt.date(2026, 10, 1), dt.date(2026, 10, 2)], workdays=[dt.date(2026, 10, 10)]
    )
    # Wed 2026-09-30 + 3 working days: Thu 1 Oct and Fri 2 Oct are holidays, then Mon 5, Tue 6, Wed 7
    assert cal.add_working_days(dt.date(2026, 9, 30), 3) == dt.date(2026, 10, 7)
    assert cal.is_working_day(dt.date(2026, 10, 10))  # a Saturday made a working day
    assert cal.working_days_between(dt.date(2026, 9, 30), dt.date(2026, 10, 7)) == 3


@given(dates, st.integers(0, 40))
def test_working_days_add_and_count_agree(d: dt.date, n: int) -> None:
    cal = Calendar.build("plain")
    out = cal.add_working_days(d, n)
    assert cal.working_days_between(d, out) == n
    assert n == 0 or cal.is_working_day(out)
