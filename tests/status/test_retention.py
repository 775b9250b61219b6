"""The decision log keeps an answer for its retention period, then deletes it.

Whatever the requests' times, the projection's progress and the purge's chunk size, a purge
deletes exactly the answers logged before the cutoff that the projection has passed, with their
projected rows, and readers list exactly the rest; on SQLite and PostgreSQL; by the projector in
its quiet moments, in a thread or in the log's writer process; and the period has a floor.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.clock import FixedClock
from socialcredit.decision_ids import decode_id
from socialcredit.errors import InputError
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import (
    IDLE_WAIT,
    DecisionLog,
    ProjectionLag,
    Projector,
    count_decisions,
    list_decisions,
    project_decisions,
    projection_lag,
    purge_decisions,
)
from socialcredit.status.retention import MIN_MONTHS, Retention
from socialcredit.status.schema import decision_requests, decision_subjects, decisions
from tests.status.test_decision_index import BASIS, SUBJECTS, Truth, _row

AT = dt.datetime(2026, 1, 15, 9, 30)


def _at(rows: list[Any], minutes: int) -> list[Any]:
    """The rows of one request, logged ``minutes`` after AT."""
    return [(AT + dt.timedelta(minutes=minutes), *r[1:]) for r in rows]


def _request(k: int, minutes: int, size: int) -> list[Any]:
    return _at(
        [_row(SUBJECTS[(k + i) % 5], k, BASIS if i % 2 else None, k) for i in range(size)], minutes
    )


def _tables(engine: sa.Engine) -> tuple[set[int], set[int], set[int]]:
    """The decision ids in each table: answers projected, the subject index, requests' answers."""
    with engine.connect() as conn:
        projected = set(conn.execute(sa.select(decisions.c.decision_id)).scalars())
        indexed = set(conn.execute(sa.select(decision_subjects.c.decision_id)).scalars())
        logged = {
            first + i
            for first, n in conn.execute(
                sa.select(decision_requests.c.first_id, decision_requests.c.n)
            )
            for i in range(n)
        }
    return projected, indexed, logged


def _listed(engine: sa.Engine, subject: str | None) -> list[str]:
    return [d["decision_id"] for d in list_decisions(engine, subject=subject, limit=10_000)]


def _expect(truth: Truth, keep: set[int], subject: str | None) -> list[str]:
    """What a listing must give for ``subject`` (None: all) once only ``keep`` is left."""
    return [row[0] for row in truth.listed(subject) if decode_id(row[0]) in keep]


REQUESTS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 9)),  # minutes after the request before, size
    min_size=1,
    max_size=10,
)


@settings(max_examples=30, deadline=None)
@given(
    REQUESTS,
    st.integers(0, 40),  # answers projected before the purge (a chunk size, one round)
    st.integers(0, 35),  # the cutoff, minutes after AT
    st.integers(1, 12),  # the purge's chunk size
)
def test_a_purge_deletes_exactly_the_projected_answers_logged_before_the_cutoff(
    requests: list[tuple[int, int]], projected: int, cutoff: int, chunk: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(str(Path(tmp) / "r.db")) as led:
        log = DecisionLog(led.engine)
        truth = Truth()
        minutes = 0
        times: dict[int, int] = {}  # decision id -> minutes after AT
        for k, (gap, size) in enumerate(requests):
            minutes += gap
            before = set(truth.rows)
            truth.log(log, _request(k, minutes, size))
            times.update(dict.fromkeys(set(truth.rows) - before, minutes))
        if projected:
            project_decisions(led.engine, max_rows=projected, rounds=1)
        passed, _, _ = _tables(led.engine)  # what the projection has passed
        before = AT + dt.timedelta(minutes=cutoff)
        deleted = 0
        while n := purge_decisions(led.engine, before, max_rows=chunk):
            deleted += n
        gone = {i for i in passed if times[i] < cutoff}
        keep = set(truth.rows) - gone
        assert deleted == len(gone)
        projected_ids, indexed, logged = _tables(led.engine)
        assert projected_ids == indexed == passed - gone  # the projection's rows went with them
        assert logged == keep  # and the requests (whole: every answer of one is before or after)
        assert count_decisions(led.engine) == len(keep)
        for s in (None, *SUBJECTS):
            assert _listed(led.engine, s) == _expect(truth, keep, s)
        # the projection goes on from where it was; a purge after it takes the rest
        assert projection_lag(led.engine) == len(set(truth.rows) - passed)
        project_decisions(led.engine)
        while purge_decisions(led.engine, before, max_rows=chunk):
            pass
        rest = {i for i in truth.rows if times[i] >= cutoff}
        assert _tables(led.engine) == (rest, rest, rest)
        assert _listed(led.engine, None) == _expect(truth, rest, None)


def test_a_purge_is_exact_on_both_databases(db_url: str) -> None:
    with Ledger.open(db_url) as led:
        log = DecisionLog(led.engine)
        truth = Truth()
        for k in range(6):  # requests at 0, 10, ... 50 minutes; of 5 and 1 answers
            truth.log(log, _request(k, 10 * k, 5 if k % 2 == 0 else 1))
        project_decisions(led.engine, max_rows=11, rounds=1)  # 5 + 1 + 5 answers, up to 20 min
        before = AT + dt.timedelta(minutes=35)  # three requests older, one more not projected
        # whole requests, about max_rows answers a transaction (and at least one request)
        assert purge_decisions(led.engine, before, max_rows=5) == 5
        assert purge_decisions(led.engine, before, max_rows=5) == 1
        assert purge_decisions(led.engine, before, max_rows=2) == 5
        assert purge_decisions(led.engine, before) == 0  # the request at 30 min is not projected
        ids = sorted(truth.rows)
        keep = set(ids[11:])
        assert _tables(led.engine)[2] == keep
        assert _listed(led.engine, None) == _expect(truth, keep, None)
        assert count_decisions(led.engine) == len(keep)
        project_decisions(led.engine)
        assert purge_decisions(led.engine, before) == 1  # now it is
        keep = set(ids[12:])
        assert _tables(led.engine) == (keep, keep, keep)
        for s in SUBJECTS:
            assert _listed(led.engine, s) == _expect(truth, keep, s)


def test_the_projector_purges_when_it_has_nothing_to_project(tmp_path: Path) -> None:
    """Answers older than the period are deleted, by the projector's clock, once projected; a
    projector without a period deletes nothing."""
    clock = FixedClock(AT)
    with Ledger.open(str(tmp_path / "p.db")) as led:
        truth = Truth()
        log = DecisionLog(led.engine)
        truth.log(log, _request(0, 0, 5))
        truth.log(log, _request(1, 60 * 24 * 40, 5))  # 40 days later
        keeper = Projector(led.engine, lambda: 0, clock=clock)
        projector = Projector(led.engine, lambda: 0, retention=Retention(6), clock=clock)
        clock.set(AT + dt.timedelta(days=7 * 30))  # ~7 months: the first request is past 6
        keeper.step()  # projects everything
        assert keeper.step() == IDLE_WAIT and count_decisions(led.engine) == 10  # no period
        assert projector.step() < IDLE_WAIT  # it deleted something
        assert projector.purged == 5 and count_decisions(led.engine) == 5
        assert projector.step() == IDLE_WAIT  # nothing more is old enough
        assert _tables(led.engine)[2] == set(sorted(truth.rows)[5:])
        clock.set(AT + dt.timedelta(days=8 * 30))  # the second request is past 6 months now
        assert projector.step() < IDLE_WAIT and count_decisions(led.engine) == 0
        assert projector.purged == 10


def test_the_writer_process_purges_by_the_servers_clock(tmp_path: Path) -> None:
    """Under ``serve`` the log's writer process projects and purges: it is given the period and
    the clock (here a test's, as it stands when the process starts)."""
    db = str(tmp_path / "w.db")
    clock = FixedClock(AT + dt.timedelta(days=400))
    with Ledger.open(db, clock=clock) as led:
        DecisionLog(led.engine).write(_request(0, 0, 5) + _request(1, 60 * 24 * 380, 1))

        async def run() -> int:
            dlog = DecisionLog(led.engine)
            await dlog.use_process(project=True, retention=Retention(12), clock=clock)
            try:
                deadline = time.monotonic() + 60
                while count_decisions(led.engine) > 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return count_decisions(led.engine)
            finally:
                await dlog.stop_process()

        assert asyncio.run(run()) == 1  # the answers of 400 days ago went, 20 days ago stayed
        assert projection_lag(led.engine) == 0


def test_the_period_is_months_or_forever_with_a_floor() -> None:
    assert Retention.parse("24").months == 24
    assert Retention.parse(" Forever ").months is None
    assert Retention.parse(str(MIN_MONTHS)).months == MIN_MONTHS
    with pytest.raises(InputError) as e:
        Retention.parse("5", "--decision-retention")
    p = e.value.problems[0]
    assert (p.field, p.rule, p.value) == ("--decision-retention", "minimum", "5")
    assert "6 months" in p.message and "AI Act" in p.message
    with pytest.raises(InputError) as e:
        Retention.parse("two years")
    assert (e.value.problems[0].field, e.value.problems[0].rule) == ("decision_retention", "format")
    with pytest.raises(InputError):
        Retention(3)


@pytest.mark.parametrize(
    ("now", "months", "cutoff"),
    [
        ("2026-08-31T10:00:00", 6, "2026-02-28T10:00:00"),  # clamped to the month's last day
        ("2028-08-31T10:00:00", 6, "2028-02-29T10:00:00"),
        ("2026-03-31T23:59:59", 24, "2024-03-31T23:59:59"),
        ("2026-01-15T09:30:00+08:00", 12, "2025-01-15T01:30:00"),  # in UTC, as the log stores
    ],
)
def test_the_cutoff_is_calendar_months_before_now_in_utc(
    now: str, months: int, cutoff: str
) -> None:
    at = dt.datetime.fromisoformat(now)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    assert Retention(months).cutoff(at) == dt.datetime.fromisoformat(cutoff)
    told = Retention(months).describe(at)
    assert told["months"] == months and told["deleted_before"] == cutoff + "Z"
    assert Retention(None).cutoff(at) is None
    assert Retention(None).describe(at)["deleted_before"] is None


def test_a_lag_count_kept_elsewhere_comes_right_once_the_projection_catches_up(
    tmp_path: Path,
) -> None:
    """A server's lag metric counts incrementally (what was logged and what the projection passed
    since its last read). Requests projected and purged by another process between two reads are
    missing from what passed; the count is right again once the mark reaches the newest one."""
    with Ledger.open(str(tmp_path / "l.db")) as led:
        log = DecisionLog(led.engine)
        for k, minutes, size in ((0, 0, 5), (1, 0, 5), (2, 60 * 24 * 300, 1)):
            log.write(_request(k, minutes, size))
        elsewhere = ProjectionLag(led.engine)
        assert elsewhere() == 11
        assert project_decisions(led.engine, max_rows=10, rounds=1) == 10
        assert purge_decisions(led.engine, AT + dt.timedelta(days=1)) == 10
        assert projection_lag(led.engine) == 1  # counted afresh
        assert elsewhere() >= 1  # the purged requests are not among those it saw pass
        assert project_decisions(led.engine) == 1
        assert elsewhere() == 0 == projection_lag(led.engine)
