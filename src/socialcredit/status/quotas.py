"""Daily limits on the answers a relying party is given (OWASP API4:2023 and API6:2023).

A relying party only learns about its own domains, but within them a batch check answers for
thousands of subjects at once: without a limit, one party (or a leaked key of one) could check a
whole population and copy the list. ``socialcredit parties limit PARTY N`` sets how many answers
it may be given a day (UTC), over all its keys; past it, checks are refused (429, logged) until
the next day, and nothing is answered or logged as a decision.

The count is kept in ``party_usage`` by the decision log, in the transaction that logs the
answers, so it is exactly the answers logged. Each worker process holds, per limited party:

* ``others``: the day's count in the database at its last read (every ``maintenance_interval``,
  1 s, and at a party's first request of the day) less this worker's own answers logged before
  that read;
* ``mine``: this worker's answers logged today;
* ``pending``: answers this worker has admitted and is logging now.

A request is admitted if ``others + mine + pending`` plus its own answers stay within the limit,
and reserved at once (``pending``), so concurrent requests in one worker cannot pass it together.
Within one worker the limit is exact. Across workers, each sees the others' answers at its next
read: several workers can together give up to a second's answers more than the limit. The errors
all go the other way for a moment (answers counted twice until the next read), never to let more
through.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from socialcredit.status.parties import Party, usage


@dataclass(frozen=True, slots=True)
class Over:
    """A request refused by its party's daily limit."""

    party_id: str
    limit: int
    used: int  # answers counted for the party today, before this request
    asked: int  # answers this request would have been given
    resets_at: dt.datetime  # the next midnight, UTC (naive)

    def detail(self) -> str:
        if self.asked > self.limit:
            return (
                f"this request asks for {self.asked:,} answers; relying party "
                f"'{self.party_id}' may be given {self.limit:,} a day"
            )
        return (
            f"relying party '{self.party_id}' may be given {self.limit:,} answers a day (UTC) "
            f"and has been given {self.used:,} today; {self.asked:,} more would pass it"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "daily_limit": self.limit,
            "used_today": self.used,
            "asked": self.asked,
            "resets_at": self.resets_at.isoformat() + "Z",
        }


def next_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


class Quotas:
    """One worker's view of the day's answers per limited relying party (see the module)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._day: dt.date | None = None
        self._others: dict[str, int] = {}
        self._mine: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def _roll(self, day: dt.date) -> bool:
        """Move to ``day`` if it is later (under the lock): a new day starts from nothing. False
        if ``day`` is before the one held (a request stamped just before midnight, admitted just
        after: it is counted in the database for its own day, and not held to today's)."""
        if self._day == day:
            return True
        if self._day is not None and day < self._day:
            return False
        self._day = day
        self._others, self._mine, self._pending = {}, {}, {}
        return True

    def refresh(self, parties: Iterable[Party], day: dt.date) -> None:
        """Read the day's counts of the limited parties (the background loop, every second)."""
        limited = [p.party_id for p in parties if p.daily_limit is not None]
        with self._lock:
            if not self._roll(day):
                return
            mine = dict(self._mine)  # before the read: what it misses is counted twice, not lost
        counts = usage(self.engine, day, limited)
        with self._lock:
            if self._day == day:
                self._others = {p: max(0, counts.get(p, 0) - mine.get(p, 0)) for p in limited}

    def used(self, party_id: str, day: dt.date) -> int | None:
        """The answers counted for the party on ``day``, those being logged included; None if
        this worker has not read the party's count for that day."""
        with self._lock:
            if self._day != day or party_id not in self._others:
                return None
            return (
                self._others[party_id]
                + self._mine.get(party_id, 0)
                + self._pending.get(party_id, 0)
            )

    def admit(self, party: Party, asked: int, at: dt.datetime) -> Over | None:
        """Reserve ``asked`` answers for the party on ``at``'s day, or say why not. Parties
        without a limit are always admitted, and nothing is held for them. A party whose count
        this worker has not read yet for the day (the first request after midnight, or a limit
        set since the last read) has it read here, once."""
        limit = party.daily_limit
        if limit is None:
            return None
        day = at.date()
        pid = party.party_id
        with self._lock:
            if not self._roll(day):
                return None  # yesterday's request: its day has ended
            known = pid in self._others
            mine = self._mine.get(pid, 0)
        if not known:
            count = usage(self.engine, day, [pid]).get(pid, 0)
            with self._lock:
                if self._day == day and pid not in self._others:
                    self._others[pid] = max(0, count - mine)
        with self._lock:
            if not self._roll(day):
                return None
            used = self._others.get(pid, 0) + self._mine.get(pid, 0) + self._pending.get(pid, 0)
            if used + asked > limit:
                return Over(pid, limit, used, asked, next_midnight(day))
            self._pending[pid] = self._pending.get(pid, 0) + asked
        return None

    def settle(self, party: Party, asked: int, at: dt.datetime, *, logged: bool) -> None:
        """Release a reservation made by :meth:`admit`: counted as this worker's if the answers
        were logged, given back if not."""
        if party.daily_limit is None:
            return
        pid = party.party_id
        with self._lock:
            if self._day != at.date():
                return  # the day ended meanwhile: the database has it, under its own day
            self._pending[pid] = self._pending.get(pid, 0) - asked
            if logged:
                self._mine[pid] = self._mine.get(pid, 0) + asked
