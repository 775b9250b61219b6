"""Durations in rulebooks: ``180d``, ``6m``, ``2y``, ``2y6m``, ``3wd`` (working days).

Calendar months and years are added with clamping to the end of the month, as courts and
registries count them: 2024-01-31 + 1m = 2024-02-29, 2024-02-29 + 1y = 2025-02-28. Working days
need a calendar (see :mod:`socialcredit.rulebooks.calendar`) and are only used for procedure
deadlines, never inside status evaluation.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_PART = re.compile(r"(\d+)(wd|y|m|d)")
_WHOLE = re.compile(r"^(?:\d+(?:wd|y|m|d))+$")


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    months: int = 0
    days: int = 0
    working_days: int = 0

    @classmethod
    def parse(cls, text: str | int) -> Duration:
        if isinstance(text, int):  # a bare number means days
            return cls(days=text)
        s = str(text).strip().lower().replace(" ", "")
        if not _WHOLE.match(s):
            raise ValueError(
                f"'{text}' is not a duration: use e.g. 180d, 6m, 2y, 2y6m or 3wd (working days)"
            )
        months = days = wd = 0
        for n, unit in _PART.findall(s):
            k = int(n)
            if unit == "y":
                months += 12 * k
            elif unit == "m":
                months += k
            elif unit == "d":
                days += k
            else:
                wd += k
        if wd and (months or days):
            raise ValueError(f"'{text}' mixes working days with calendar time")
        return cls(months, days, wd)

    @property
    def is_calendar(self) -> bool:
        return self.working_days == 0

    def __str__(self) -> str:
        if self.working_days:
            return f"{self.working_days}wd"
        y, m = divmod(self.months, 12)
        out = (
            (f"{y}y" if y else "") + (f"{m}m" if m else "") + (f"{self.days}d" if self.days else "")
        )
        return out or "0d"

    def describe(self) -> str:
        if self.working_days:
            return f"{self.working_days} working day" + ("s" if self.working_days != 1 else "")
        y, m = divmod(self.months, 12)
        parts = []
        for n, word in ((y, "year"), (m, "month"), (self.days, "day")):
            if n:
                parts.append(f"{n} {word}" + ("s" if n != 1 else ""))
        return " ".join(parts) or "0 days"


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus calendar months, clamped to the last day of the target month."""
    if not months:
        return d
    ym = d.year * 12 + d.month - 1 + months
    y, m = divmod(ym, 12)
    m += 1
    return dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))


def add(d: dt.date, dur: Duration) -> dt.date:
    """Calendar arithmetic: months first (clamped), then days. Working days are refused here."""
    if dur.working_days:
        raise ValueError("working days need a calendar: use Calendar.add_working_days")
    return add_months(d, dur.months) + dt.timedelta(days=dur.days)
