"""Limits on the answers a relying party is given: a day, and a second (OWASP API4:2023 and
API6:2023).

A relying party only learns about its own domains, but within them a batch check answers for
thousands of subjects at once: without a limit, one party (or a leaked key of one) could check a
whole population and copy the list. ``socialcredit parties limit PARTY --daily N`` sets how many
answers it may be given a day (UTC), over all its keys; past it, checks are refused (429, logged)
until the next day, and nothing is answered or logged as a decision.

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

``socialcredit parties limit PARTY --per-second N`` bounds the rate instead, so that one party's
batches cannot take the whole server from the others (a bank's nightly run from an airline's
boarding gates). Each worker holds a token bucket per rate-limited party, filled at its share of
the rate (``N`` divided by the server's workers) and holding one second of it: a request is
admitted while the bucket is not empty and takes its answers from it, into debt if it is larger
than what is left, so a batch of any size passes, and the party's next requests wait until the
debt is paid (429 ``rate-limited`` with ``Retry-After``; the SDK waits and retries). Over any
stretch of time a worker gives at most its share for that time, plus one second's share, plus one
request. The buckets are not shared between workers: the kernel spreads connections over them,
and a party whose connections all land on one worker gets that worker's share.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
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


@dataclass(frozen=True, slots=True)
class Throttled:
    """A request refused by its party's rate limit, until the debt of its last ones is paid."""

    party_id: str
    rate: int  # answers a second, all workers together
    asked: int
    retry_after: float  # seconds

    def detail(self) -> str:
        return (
            f"relying party '{self.party_id}' may be given {self.rate:,} answers a second on "
            f"average; retry in {self.retry_after:.2f} s"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "rate_limit": self.rate,
            "asked": self.asked,
            "retry_after": round(self.retry_after, 3),
        }


def next_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


class Quotas:
    """One worker's view of the day's answers per relying party with a daily limit, and its
    buckets for those with a rate (see the module)."""

    def __init__(
        self,
        engine: sa.Engine,
        workers: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.engine = engine
        self.workers = max(1, workers)  # the server's: a worker's share of a rate
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # party: (answers left, when)
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
        """Read the day's counts of the limited parties (the background loop, every second);
        parties without a daily limit are dropped."""
        self._read(day, [p.party_id for p in parties if p.daily_limit is not None], every=True)

    def _read(self, day: dt.date, party_ids: list[str], *, every: bool = False) -> None:
        """Set ``others`` for these parties from the database (``every``: for these alone)."""
        with self._lock:
            if not self._roll(day):
                return
            mine = dict(self._mine)  # before the read: what it misses is counted twice, not lost
        counts = usage(self.engine, day, party_ids)
        with self._lock:
            if self._day == day:
                read = {p: max(0, counts.get(p, 0) - mine.get(p, 0)) for p in party_ids}
                self._others = read if every else {**self._others, **read}

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

    def admit(self, party: Party, asked: int, at: dt.datetime) -> Over | Throttled | None:
        """Reserve ``asked`` answers for the party on ``at``'s day and take them from its
        bucket, or say why not (the daily limit first: it does not lift by waiting a moment).
        Parties without limits are always admitted, and nothing is held for them. A party whose
        count this worker has not read yet for the day (the first request after midnight, or a
        limit set since the last read) has it read here, once."""
        limit = party.daily_limit
        if limit is None:
            if party.rate_limit is None:
                return None
            with self._lock:
                return self._take(party, asked)
        day = at.date()
        pid = party.party_id
        if pid not in self._others or self._day != day:
            self._read(day, [pid])
        with self._lock:
            if not self._roll(day):
                return None
            used = self._others.get(pid, 0) + self._mine.get(pid, 0) + self._pending.get(pid, 0)
            if used + asked > limit:
                return Over(pid, limit, used, asked, next_midnight(day))
            if party.rate_limit is not None:
                throttled = self._take(party, asked)
                if throttled is not None:
                    return throttled
            self._pending[pid] = self._pending.get(pid, 0) + asked
        return None

    def _take(self, party: Party, asked: int) -> Throttled | None:
        """Take ``asked`` answers from the party's bucket (the lock held), or say how long until
        one answer's worth is back in it."""
        rate = party.rate_limit
        assert rate is not None
        share = rate / self.workers
        now = self._monotonic()
        left, then = self._buckets.get(party.party_id, (share, now))
        left = min(share, left + (now - then) * share)
        if left <= 0:
            self._buckets[party.party_id] = (left, now)
            return Throttled(party.party_id, rate, asked, (1 - left) / share)
        self._buckets[party.party_id] = (left - asked, now)
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
