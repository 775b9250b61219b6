"""One worker's accounting of a relying party's daily limit (``socialcredit.status.quotas``).

Whatever the order of requests admitted, committed to the log, answered, failed, and the worker's
reads of the count: within one worker the answers logged never pass the limit; once nothing is in
flight and the worker has read the count, it holds exactly the database's count (other workers'
answers included) and admits exactly what is left.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.ledger import Ledger
from socialcredit.status.parties import Party, usage
from socialcredit.status.quotas import Over, Quotas, Throttled

AT = dt.datetime(2026, 1, 15, 9, 30)
DAY = AT.date()
_ids = itertools.count()

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.integers(1, 40)),
        st.tuples(st.just("commit"), st.integers(0, 50)),
        st.tuples(st.just("ack"), st.integers(0, 50)),
        st.tuples(st.just("fail"), st.integers(0, 50)),
        st.tuples(st.just("refresh"), st.just(0)),
        st.tuples(st.just("other"), st.integers(1, 40)),
    ),
    max_size=60,
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    db: Path = tmp_path_factory.mktemp("quotas") / "q.db"
    with Ledger.open(str(db)) as led:
        yield led.engine


def _commit(engine: sa.Engine, party: str, n: int) -> None:
    """What the decision log does with a request's answers: count them in ``party_usage``."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO party_usage (party_id, day, answers) VALUES (:p, :d, :n) "
                "ON CONFLICT (party_id, day) DO UPDATE "
                "SET answers = party_usage.answers + excluded.answers"
            ),
            {"p": party, "d": DAY.isoformat(), "n": n},
        )


def _count(engine: sa.Engine, party: str) -> int:
    return usage(engine, DAY, [party]).get(party, 0)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, limit=st.integers(0, 120), others=st.booleans())
def test_one_worker_never_passes_the_limit_and_settles_exact(
    engine: sa.Engine, ops: list[tuple[str, int]], limit: int, others: bool
) -> None:
    party = Party(f"p{next(_ids)}", "P", "airline", frozenset({"travel"}), limit)
    q = Quotas(engine)
    q.refresh([party], DAY)
    reserved: list[int] = []  # admitted, not yet in the log
    committed: list[int] = []  # in the log, not yet answered
    mine = 0  # this worker's answers logged
    for op, n in ops:
        if op == "admit":
            over = q.admit(party, n, AT)
            if over is None:
                reserved.append(n)
            else:
                assert over.limit == limit and over.asked == n
                assert over.used + n > limit
                if not others:  # its own answers logged are always counted
                    assert over.used >= _count(engine, party.party_id) - sum(committed)
        elif op == "commit" and reserved:
            k = reserved.pop(n % len(reserved))
            _commit(engine, party.party_id, k)
            committed.append(k)
        elif op == "ack" and committed:
            k = committed.pop(n % len(committed))
            q.settle(party, k, AT, logged=True)
            mine += k
        elif op == "fail" and reserved:
            q.settle(party, reserved.pop(n % len(reserved)), AT, logged=False)
        elif op == "refresh":
            q.refresh([party], DAY)
        elif op == "other" and others:
            _commit(engine, party.party_id, n)  # another worker's answers
        if not others:
            # within one worker, what is logged and what is being logged stays within the limit
            assert _count(engine, party.party_id) + sum(reserved) <= limit
            assert mine <= limit
    for k in committed:
        q.settle(party, k, AT, logged=True)
    for k in reserved:
        q.settle(party, k, AT, logged=False)
    q.refresh([party], DAY)
    total = _count(engine, party.party_id)
    assert q.used(party.party_id, DAY) == total
    left = limit - total
    if left >= 1:
        assert q.admit(party, left + 1, AT) is not None
        assert q.admit(party, left, AT) is None
        assert q.used(party.party_id, DAY) == limit
    else:
        assert q.admit(party, 1, AT) is not None


def test_a_party_without_a_limit_is_not_held(engine: sa.Engine) -> None:
    party = Party(f"p{next(_ids)}", "P", "bank", frozenset({"finance"}), None)
    q = Quotas(engine)
    assert q.admit(party, 10**9, AT) is None
    q.settle(party, 10**9, AT, logged=True)
    q.refresh([party], DAY)
    assert q.used(party.party_id, DAY) is None  # nothing held for it


def test_a_new_day_starts_from_its_own_count(engine: sa.Engine) -> None:
    party = Party(f"p{next(_ids)}", "P", "airline", frozenset({"travel"}), 10)
    q = Quotas(engine)
    assert q.admit(party, 10, AT) is None
    q.settle(party, 10, AT, logged=True)
    _commit(engine, party.party_id, 10)
    over = q.admit(party, 1, AT)
    assert over is not None and over.resets_at == dt.datetime(2026, 1, 16)
    assert over.as_dict()["resets_at"] == "2026-01-16T00:00:00Z"
    tomorrow = AT + dt.timedelta(days=1)
    assert q.admit(party, 10, tomorrow) is None
    # a request stamped yesterday, admitted once the day has turned, is not held to today's
    assert q.admit(party, 5, AT) is None
    assert q.used(party.party_id, tomorrow.date()) == 10
    q.settle(party, 5, AT, logged=True)  # counted under its own day, in the log
    assert q.used(party.party_id, tomorrow.date()) == 10


def test_the_migration_counts_the_answers_still_in_the_log(db_url: str) -> None:
    """A ledger at revision 0006 with answers logged: after upgrading, each party's count per
    day is the answers of its requests that day (split rows of one request included)."""
    from alembic import command

    from socialcredit.ledger.db import _alembic_config, make_engine, resolve_url, write_transaction

    engine = make_engine(resolve_url(db_url))
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "0006")
    rows = [  # first id, answers, time, party
        (1, 100, AT, "air-1"),
        (101, 20, AT, "air-1"),  # the rest of the same request
        (200, 5, AT + dt.timedelta(hours=15), "air-1"),  # 00:30 the next day
        (300, 7, AT, "bank-1"),
    ]
    with engine.begin() as conn:
        for first, n, at, party in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO decision_requests (first_id, n, at, party_id, key_id, purpose, "
                    "rulebooks, items) VALUES (:f, :n, :at, :p, 'k', 'p', 'r@1', '[]')"
                ),
                {"f": first, "n": n, "at": at, "p": party},
            )
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
    assert usage(engine, DAY) == {"air-1": 120, "bank-1": 7}
    assert usage(engine, DAY + dt.timedelta(days=1)) == {"air-1": 5}
    engine.dispose()


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0, 2, allow_nan=False), st.integers(1, 30)), min_size=1, max_size=60
    ),
    rate=st.integers(1, 50),
    workers=st.integers(1, 4),
)
def test_a_worker_gives_its_share_of_a_rate_and_a_refusal_says_how_long_to_wait(
    steps: list[tuple[float, int]], rate: int, workers: int
) -> None:
    """Over any stretch of time a worker admits at most its share of the rate for that time,
    plus one second's share, plus one request; a refused party that waits as long as it was told
    is admitted."""
    ticks = Ticks()
    q = Quotas(sa.create_engine("sqlite://"), workers, ticks)  # no daily limit: no reads
    party = Party("p", "P", "airline", frozenset({"travel"}), None, rate)
    share = rate / workers
    admitted: list[tuple[float, int]] = []
    for wait, asked in steps:
        ticks.t += wait
        over = q.admit(party, asked, AT)
        if over is None:
            admitted.append((ticks.t, asked))
            continue
        assert over.rate == rate and over.asked == asked and over.retry_after > 0
        ticks.t += over.retry_after
        assert q.admit(party, asked, AT) is None  # waited as told
        admitted.append((ticks.t, asked))
    biggest = max(n for _, n in admitted)
    for i, (start, _) in enumerate(admitted):
        total = 0
        for end, n in admitted[i:]:
            total += n
            assert total <= share * (end - start) + share + biggest + 1e-6


def test_a_bucket_starts_full_and_a_batch_of_any_size_passes_into_debt() -> None:
    ticks = Ticks()
    q = Quotas(sa.create_engine("sqlite://"), 2, ticks)
    party = Party("p", "P", "bank", frozenset({"finance"}), None, 20)  # 10 a second here
    assert q.admit(party, 9, AT) is None and q.admit(party, 50, AT) is None  # 1 left, then -49
    over = q.admit(party, 1, AT)
    assert over is not None and over.retry_after == pytest.approx(5.0)  # until 1 is back
    assert over.as_dict() == {"rate_limit": 20, "asked": 1, "retry_after": 5.0}
    ticks.t += 4.9
    assert q.admit(party, 1, AT) is not None
    ticks.t += 0.2
    assert q.admit(party, 1, AT) is None


def test_the_daily_limit_is_told_before_the_rate(engine: sa.Engine) -> None:
    """A request past both limits is told of the day's (waiting a moment does not lift it), and
    one refused by the rate reserves nothing of the day's."""
    q = Quotas(engine, 1, Ticks())
    party = Party(f"p{next(_ids)}", "P", "airline", frozenset({"travel"}), 10, 1)
    q.refresh([party], DAY)
    assert q.admit(party, 5, AT) is None
    assert isinstance(q.admit(party, 6, AT), Over)
    assert isinstance(q.admit(party, 1, AT), Throttled)
    assert q.used(party.party_id, DAY) == 5
