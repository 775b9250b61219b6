"""The injected clock. Nothing in socialcredit calls ``datetime.now()`` directly (invariant 2)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock that stands still until moved; used by tests and by the simulator."""

    def __init__(self, at: dt.datetime | dt.date | str):
        self._at = to_utc(at)

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime | dt.date | str) -> None:
        self._at = to_utc(at)

    def advance(self, **delta: float) -> None:
        self._at = self._at + dt.timedelta(**delta)


def to_utc(at: dt.datetime | dt.date | str) -> dt.datetime:
    """Read an instant: an ISO string, a date (midnight UTC) or a datetime (naive means UTC)."""
    if isinstance(at, str):
        at = (
            dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
            if "T" in at or " " in at
            else (dt.date.fromisoformat(at))
        )
    if not isinstance(at, dt.datetime):
        at = dt.datetime(at.year, at.month, at.day)
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC)


def today(clock: Clock) -> dt.date:
    return clock.now().date()
