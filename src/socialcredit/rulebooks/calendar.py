"""Working-day calendars for procedure deadlines (notices, objections, reviews, repairs).

A calendar names its weekend days and, per year, public holidays and make-up working days (China
moves weekend days around its Golden Weeks). Shipped calendars live in ``rulebooks/calendars/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Calendar:
    id: str
    weekend: frozenset[int] = frozenset({5, 6})  # Monday = 0
    holidays: frozenset[dt.date] = field(default_factory=frozenset)
    workdays: frozenset[dt.date] = field(default_factory=frozenset)  # make-up working days
    covers: tuple[int, int] | None = None  # years with complete holiday data

    @classmethod
    def build(
        cls,
        id: str,
        *,
        weekend: Iterable[int] = (5, 6),
        holidays: Iterable[dt.date] = (),
        workdays: Iterable[dt.date] = (),
        covers: tuple[int, int] | None = None,
    ) -> Calendar:
        return cls(id, frozenset(weekend), frozenset(holidays), frozenset(workdays), covers)

    def is_working_day(self, d: dt.date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() not in self.weekend

    def add_working_days(self, d: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``d`` (``d`` itself does not count)."""
        if n < 0:
            raise ValueError("n must not be negative")
        while n:
            d += dt.timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]."""
        n, d = 0, start
        while d < end:
            d += dt.timedelta(days=1)
            n += self.is_working_day(d)
        return n


PLAIN = Calendar.build("plain")
