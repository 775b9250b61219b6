"""The decision log committing in a child process (what ``serve`` runs): the same ids and rows
as the thread, group commit, a writer that dies or fails, closing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import DecisionLog, Row, count_decisions, projection_lag
from socialcredit.status.logwriter import _activity
from socialcredit.status.schema import decision_requests, decisions
from tests.status.helpers import PEOPLE, defaulter, setup_authorities, turn_held_elsewhere

A, B, C = PEOPLE


def _row(clock: FixedClock, subject: str = A, decision: str = "allow") -> Row:
    at = clock.now().replace(tzinfo=None)
    return (at, "p", "k", "why", subject, "travel.flights", decision, "no-restriction", None, "r")


def _logged(ledger: Ledger) -> dict[int, int]:
    """first id -> answers, of every request in the log."""
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(decision_requests.c.first_id, decision_requests.c.n))
        return {int(f): int(n) for f, n in rows}


def test_a_child_process_commits_what_the_event_loop_hands_it(
    ledger: Ledger, clock: FixedClock
) -> None:
    sizes = [1 + i % 3 for i in range(200)]

    async def main() -> tuple[list[Sequence[int]], list[int], list[int], DecisionLog]:
        log = DecisionLog(ledger.engine).start()
        await log.use_process()
        assert log.child_pid is not None and log.child_pid != os.getpid()
        # the URL (a password, on PostgreSQL) goes over the pipe: arguments are public
        args = Path(f"/proc/{log.child_pid}/cmdline").read_bytes().split(b"\0")
        assert b"socialcredit.status.logwriter" in args
        assert not any(str(ledger.engine.url.database).encode() in a for a in args)
        # 200 requests handed over together: the loop sends them as one batch
        answered = await asyncio.gather(
            *(log.submit_async([_row(clock, PEOPLE[k % 3])] * k) for k in sizes)
        )
        assert log.commits == 1
        # a thread's write goes to the child through the loop
        from_thread = await asyncio.to_thread(log.write, [_row(clock, B, "deny")] * 2)
        # a write on the loop's own thread cannot wait for the loop: it commits inline
        inline = log.write([_row(clock, C)])
        await log.stop_process()
        log.close()
        return answered, from_thread, inline, log

    answered, from_thread, inline, log = asyncio.run(main())
    assert [len(ids) for ids in answered] == sizes
    flat = [i for ids in [*answered, from_thread, inline] for i in ids]
    assert len(set(flat)) == len(flat) == sum(sizes) + 3
    # each request is one row whose ids are the ones its caller was given
    logged = _logged(ledger)
    assert {ids[0]: len(ids) for ids in [*answered, from_thread, inline]} == logged
    assert count_decisions(ledger.engine) == len(flat)
    assert log.commits == 3


def test_frames_sent_during_a_commit_are_committed_together_each_with_its_ids(
    tmp_path: Path, clock: FixedClock
) -> None:
    """The loop does not wait for a commit to end before it sends more: requests handed over
    while the child waits for its turn reach it as frames of their own, and the child commits
    the frames waiting together in one transaction, each request with its own ids."""
    with Ledger.open(str(tmp_path / "frames.db"), clock=clock) as ledger:

        async def main() -> list[Sequence[int]]:
            log = DecisionLog(ledger.engine)
            await log.use_process()
            with turn_held_elsewhere(ledger.engine) as release:
                first = log.submit_async([_row(clock)])
                await asyncio.sleep(0.5)  # the child has it and waits for the turn
                later = []
                for k in (1, 2, 3):  # three frames, one per turn of the loop
                    later.append(log.submit_async([_row(clock, B)] * k))
                    await asyncio.sleep(0.05)
                assert log.commits == 0
                release()
                answered = await asyncio.wait_for(asyncio.gather(first, *later), 30)
            commits = log.commits
            await log.stop_process()
            log.close()
            assert commits == 2  # the first frame, then the three that waited, together
            return answered

        answered = asyncio.run(main())
        assert [len(ids) for ids in answered] == [1, 1, 2, 3]
        assert _logged(ledger) == {ids[0]: len(ids) for ids in answered}
        assert count_decisions(ledger.engine) == 7


def test_a_writer_that_dies_fails_what_it_held_and_is_replaced(
    tmp_path: Path, clock: FixedClock
) -> None:
    """The child is killed while it waits for its turn with a batch, and a second batch sent
    meanwhile: those requests fail (and were not logged), readiness has the reason until a new
    child has started, and the next request is logged."""
    with Ledger.open(str(tmp_path / "dies.db"), clock=clock) as ledger:

        async def main() -> tuple[Sequence[int], int, int]:
            log = DecisionLog(ledger.engine)
            await log.use_process()
            first = log.child_pid
            assert first is not None
            with turn_held_elsewhere(ledger.engine):  # another process's log is committing
                lost = log.submit_async([_row(clock)] * 2)
                await asyncio.sleep(0.3)
                also_lost = log.submit_async([_row(clock, C)])  # sent, waiting in the pipe
                await asyncio.sleep(0.1)
                assert not lost.done() and not also_lost.done()
                os.kill(first, signal.SIGKILL)
                for handed in (lost, also_lost):
                    with pytest.raises(RuntimeError, match="writer stopped"):
                        await asyncio.wait_for(handed, 10)
                assert log.writer_error is not None and "stopped" in log.writer_error
            ids = await asyncio.wait_for(log.submit_async([_row(clock, B)]), 30)
            second = log.child_pid
            assert second is not None and log.writer_error is None
            await log.stop_process()
            log.close()
            return ids, first, second

        ids, first, second = asyncio.run(main())
        assert second != first
        assert _logged(ledger) == {ids[0]: 1}


def test_a_batch_the_child_cannot_commit_fails_alone(ledger: Ledger, clock: FixedClock) -> None:
    """A request whose answers cannot be stored fails (a basis the child cannot write as JSON;
    a value that cannot even be sent to it); the child stays, and the requests after it are
    logged."""
    bad: Any = (*_row(clock)[:8], 1 + 2j, "r")
    unsendable: Any = (*_row(clock)[:8], lambda: None, "r")

    async def main() -> tuple[Sequence[int], int, int]:
        log = DecisionLog(ledger.engine)
        await log.use_process()
        pid = log.child_pid
        assert pid is not None
        with pytest.raises(RuntimeError, match="TypeError"):
            await log.submit_async([bad])
        with pytest.raises(Exception, match="pickle"):
            await log.submit_async([unsendable])
        ids = await log.submit_async([_row(clock)] * 2)
        now = log.child_pid
        assert now is not None
        await log.stop_process()
        log.close()
        return ids, pid, now

    ids, pid, now = asyncio.run(main())
    assert now == pid
    assert _logged(ledger) == {ids[0]: 2}


def test_a_frame_the_child_cannot_commit_fails_alone_among_the_frames_it_waited_with(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Frames that waited together are committed together; when that fails, each is tried
    alone, so only the frame the log cannot hold fails."""
    bad: Any = (*_row(clock)[:8], 1 + 2j, "r")
    with Ledger.open(str(tmp_path / "poison.db"), clock=clock) as ledger:

        async def main() -> tuple[list[Sequence[int]], BaseException | None, int]:
            log = DecisionLog(ledger.engine)
            await log.use_process()
            with turn_held_elsewhere(ledger.engine) as release:
                first = log.submit_async([_row(clock)])
                await asyncio.sleep(0.5)  # the child has it and waits for the turn
                before = log.submit_async([_row(clock, B)])
                await asyncio.sleep(0.05)
                poisoned = log.submit_async([bad])
                await asyncio.sleep(0.05)
                after = log.submit_async([_row(clock, C)] * 2)
                await asyncio.sleep(0.05)
                release()
                answered = await asyncio.wait_for(asyncio.gather(first, before, after), 30)
                with pytest.raises(RuntimeError, match="TypeError"):
                    await asyncio.wait_for(poisoned, 30)
            commits = log.commits
            await log.stop_process()
            log.close()
            return answered, poisoned.exception(), commits

        answered, error, commits = asyncio.run(main())
        assert error is not None
        assert commits == 3  # the first; then the two good frames of the three, one by one
        assert [len(ids) for ids in answered] == [1, 1, 2]
        assert _logged(ledger) == {ids[0]: len(ids) for ids in answered}


def test_closing_commits_what_was_handed_over_then_refuses(
    ledger: Ledger, clock: FixedClock
) -> None:
    """The child does not stop on a signal to the process group (a Ctrl-C, a service manager's
    SIGTERM) but when its server closes the pipe, after committing everything handed over."""

    async def main() -> tuple[list[asyncio.Future[Sequence[int]]], DecisionLog]:
        log = DecisionLog(ledger.engine)
        await log.use_process()
        pid = log.child_pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)  # a Ctrl-C or a SIGTERM to the process group: it goes on
        os.kill(pid, signal.SIGTERM)
        handed = [log.submit_async([_row(clock)]) for _ in range(50)]
        await asyncio.gather(*handed)
        assert log.child_pid == pid
        handed += [log.submit_async([_row(clock)]) for _ in range(50)]
        await log.stop_process()
        assert all(f.done() and f.exception() is None for f in handed)
        assert log.child_pid is None
        with pytest.raises(RuntimeError, match="closed"):
            await log.submit_async([_row(clock)])
        log.close()
        return handed, log

    handed, _ = asyncio.run(main())
    assert count_decisions(ledger.engine) == 100
    assert sorted(f.result()[0] for f in handed) == sorted(_logged(ledger))


def test_closing_a_stuck_writer_fails_what_it_held(tmp_path: Path, clock: FixedClock) -> None:
    """A child that cannot commit within the timeout (its turn is held elsewhere) is killed, and
    the request it held fails instead of waiting for ever; nothing was logged."""
    with Ledger.open(str(tmp_path / "stuck.db"), clock=clock) as ledger:

        async def main() -> int:
            log = DecisionLog(ledger.engine)
            await log.use_process()
            pid = log.child_pid
            assert pid is not None
            with turn_held_elsewhere(ledger.engine):
                stuck = log.submit_async([_row(clock)])
                await asyncio.sleep(0.2)
                await log.stop_process(timeout=0.5)
                assert stuck.done()
                with pytest.raises(RuntimeError, match="stopped"):
                    stuck.result()
            log.close()
            return pid

        pid = asyncio.run(main())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped
        assert _logged(ledger) == {}


def test_the_writer_process_projects_the_log_and_a_batch_goes_before_its_rounds(
    ledger: Ledger, clock: FixedClock
) -> None:
    """With ``project``, the child works off the log's backlog when no batch is waiting. A batch
    handed over while it does is committed after one projection transaction, not after the whole
    backlog, and in the end every answer is projected."""
    backlog = 40

    async def main() -> tuple[int, int]:
        log = DecisionLog(ledger.engine)  # not started: these commit inline
        for k in range(backlog):
            log.write([_row(clock, PEOPLE[k % 3])] * 1000)
        assert projection_lag(ledger.engine) == backlog * 1000
        await log.use_process(project=True)
        lag = await _until(lambda: projection_lag(ledger.engine), lambda n: n < backlog * 1000)
        await log.submit_async([_row(clock, B, "deny")])
        lag_at_commit = projection_lag(ledger.engine)
        await _until(lambda: projection_lag(ledger.engine), lambda n: n == 0)
        await log.stop_process()
        log.close()
        return lag, lag_at_commit

    lag, lag_at_commit = asyncio.run(main())
    assert lag > 1000  # the batch came while most of the backlog was still there ...
    assert lag_at_commit > 1000  # ... and did not wait for all of it
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() == (
            backlog * 1000 + 1
        )


async def _until(read: Callable[[], int], done: Callable[[int], bool], limit: float = 60) -> int:
    """Poll ``read`` until ``done`` says yes (failing after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while not done(value := read()):
        assert time.monotonic() < deadline, f"still {value} after {limit} s"
        await asyncio.sleep(0.01)
    return value


def test_the_writer_process_counts_records_furnished_anywhere_as_activity(
    ledger: Ledger, clock: FixedClock
) -> None:
    """The projector in the writer process keeps out of the way of the ledger's writes too,
    which it sees as the ledger's newest entry moving (they may come through another process)."""
    dlog = DecisionLog(ledger.engine)
    read = _activity(dlog)
    quiet = read()
    assert read() == quiet
    setup_authorities(ledger)
    ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    assert read() > quiet
    dlog.write([_row(clock)])
    assert read() > quiet + 1
