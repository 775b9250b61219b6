"""The access log keeps an entry for its retention period, then deletes it.

Whatever the entries' times (in or out of order) and the purge's chunk size, purging until
nothing is left to delete removes exactly the entries before the first one made at or after the
cutoff, in id order; on SQLite and PostgreSQL; by the projector in its quiet moments, after the
decision log's own purge, in a thread or in the log's writer process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import (
    IDLE_WAIT,
    DecisionLog,
    Projector,
    count_decisions,
    purge_access_log,
)
from socialcredit.status.retention import Retention
from socialcredit.status.schema import access_log
from tests.status.test_retention import _request

AT = dt.datetime(2026, 1, 15, 9, 30)


def entry(at: dt.datetime, n: int = 0) -> dict[str, Any]:
    """A staff read of a subject's data, as the server logs it."""
    return {
        "at": at,
        "key_id": "k1",
        "role": "officer",
        "scope": None,
        "method": "GET",
        "path": f"/v1/subjects/s{n}",
        "status": 200,
        "rule": "read",
        "subject": f"cn-rid:{n}",
        "detail": None,
    }


def kept(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(access_log.c.path).order_by(access_log.c.id)).scalars())


def logged(engine: sa.Engine, entries: list[dict[str, Any]]) -> None:
    log = DecisionLog(engine)
    log.write([], entries)
    log.close()


@settings(max_examples=40, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 100), max_size=30),
    cut=st.integers(0, 101),
    chunk=st.integers(1, 8),
)
def test_a_purge_deletes_the_expired_entries_in_order(
    minutes: list[int], cut: int, chunk: int
) -> None:
    with tempfile.TemporaryDirectory() as d, Ledger.open(str(Path(d) / "a.db")) as led:
        logged(led.engine, [entry(AT + dt.timedelta(minutes=m), i) for i, m in enumerate(minutes)])
        before = AT + dt.timedelta(minutes=cut)
        total = 0
        while n := purge_access_log(led.engine, before, max_rows=chunk):
            assert n <= chunk
            total += n
        expired = next((i for i, m in enumerate(minutes) if m >= cut), len(minutes))
        assert total == expired
        assert kept(led.engine) == [f"/v1/subjects/s{i}" for i in range(expired, len(minutes))]


def test_a_purge_on_either_database(db_url: str) -> None:
    with Ledger.open(db_url) as led:
        logged(led.engine, [entry(AT + dt.timedelta(days=d), d) for d in (0, 1, 2, 3, 4)])
        before = AT + dt.timedelta(days=3)
        assert purge_access_log(led.engine, before, max_rows=2) == 2
        assert purge_access_log(led.engine, before, max_rows=2) == 1
        assert purge_access_log(led.engine, before, max_rows=2) == 0
        assert kept(led.engine) == ["/v1/subjects/s3", "/v1/subjects/s4"]


def test_the_projector_purges_the_access_log_after_the_decisions(tmp_path: Path) -> None:
    """Expired answers go first; then expired entries of the access log; a projector without an
    access-log period deletes none of those."""
    clock = FixedClock(AT)
    with Ledger.open(str(tmp_path / "p.db")) as led:
        DecisionLog(led.engine).write(_request(0, 0, 5), [entry(AT, 0)])
        logged(led.engine, [entry(AT + dt.timedelta(days=300), 1)])
        answers_only = Projector(led.engine, lambda: 0, retention=Retention(6), clock=clock)
        both = Projector(
            led.engine,
            lambda: 0,
            retention=Retention(6),
            access_retention=Retention(7),
            clock=clock,
        )
        clock.set(AT + dt.timedelta(days=8 * 31))  # ~8 months: the first answers and entry
        answers_only.step()  # projects
        assert answers_only.step() < IDLE_WAIT and count_decisions(led.engine) == 0
        assert answers_only.step() == IDLE_WAIT and len(kept(led.engine)) == 2
        assert both.step() < IDLE_WAIT and both.purged_access == 1 and both.purged == 0
        assert kept(led.engine) == ["/v1/subjects/s1"]
        assert both.step() == IDLE_WAIT  # the other is 300 days old: kept
        clock.set(AT + dt.timedelta(days=300 + 7 * 31))
        assert both.step() < IDLE_WAIT and kept(led.engine) == []


def test_the_writer_process_purges_the_access_log(tmp_path: Path) -> None:
    """Under ``serve`` the log's writer process is given the access log's period too."""
    clock = FixedClock(AT + dt.timedelta(days=400))
    with Ledger.open(str(tmp_path / "w.db"), clock=clock) as led:
        logged(led.engine, [entry(AT, 0), entry(AT + dt.timedelta(days=380), 1)])

        async def run() -> list[str]:
            dlog = DecisionLog(led.engine)
            await dlog.use_process(project=True, access_retention=Retention(12), clock=clock)
            try:
                deadline = time.monotonic() + 60
                while len(kept(led.engine)) > 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                return kept(led.engine)
            finally:
                await dlog.stop_process()

        assert asyncio.run(run()) == ["/v1/subjects/s1"]
