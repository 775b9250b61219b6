"""The decision log's commits in a process of their own (what ``socialcredit serve`` runs).

A server's writer thread shares the interpreter lock with the event loop. Every SQLite call
releases the lock and must take it back, and each time it waits for the loop to let go of it
(a few hundred µs on 2 cores): a commit of ~10 answers made five such round trips and took
~2.5 ms, of which ~0.7 ms was work, and every request waited for it. Here the commits run in a
child process with an interpreter of its own, and the event loop talks to it over a pipe:

* the loop sends the answers of the requests that came in together as one frame, at once: it
  does not wait for the commit under way to end;
* the child commits every frame waiting in the pipe in one transaction with
  :meth:`DecisionLog.commit_batch` (group commit, as the thread does: under load groups grow,
  nothing drops; the same transaction, ids and turns as the thread) and answers once per commit
  with each frame's ids, or with the error, which fails those requests (503) as a failed commit
  does (frames that cannot be committed together are tried one by one: a frame the log cannot
  hold fails alone). The next group is in the pipe when a commit ends, so the child never waits
  for the loop to read an answer and send more (when the loop sent a batch only after the last
  one's answer, the child was idle about half the time under load, ~1 ms a commit, and every
  request waited for that);
* if the child dies, the frames it held fail (their answers are refused; a frame that committed
  before the child died is logged and unanswered, never the other way round) and a new child
  starts for the next frame;
* with ``project``, the child also projects the log when no batch is waiting
  (:class:`~socialcredit.status.decisions.Projector`), and deletes the answers and the access
  log's entries past their retention periods if they are given; the server runs no projector thread.

Frames both ways are a 4-byte length and a pickle (a pipe between two processes of this program):
to the child, a list of requests' answers; from it, one answer per group of frames it took, in
the order they were sent (each frame's ids or error, and the commits made).
The first frame to the child is the database URL, which its arguments (public to every user of
the machine) do not carry, and the projector's settings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import pickle
import select
import struct
import sys
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from socialcredit.childproc import child_stdio
from socialcredit.clock import Clock
from socialcredit.ledger.schema import entries
from socialcredit.status.decisions import IDLE_WAIT, DecisionLog, LogItem, Projector, item_size
from socialcredit.status.retention import Retention

log = logging.getLogger(__name__)
_LEN = struct.Struct("<I")


class WriterProcess:
    """The event loop's side: a child process committing what it is sent for ``dlog``."""

    def __init__(
        self,
        dlog: DecisionLog,
        url: str,
        loop: asyncio.AbstractEventLoop,
        *,
        project: bool = False,
        retention: Retention | None = None,
        clock: Clock | None = None,
        access_retention: Retention | None = None,
    ):
        self.dlog = dlog
        self.url = url
        self.loop = loop
        self.project = project  # the child projects the log between commits
        # and deletes the answers older than this (by this clock, pickled: serve's is the wall's)
        self.retention = retention
        self.access_retention = access_retention  # and the access log's entries older than this
        self.clock = clock
        self.pending: list[LogItem] = []
        self.inflight: collections.deque[list[LogItem]] = collections.deque()  # frames sent
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[None] | None = None
        self._flush_soon = False
        self._closing = False
        self.error: str | None = None  # why there is no child now (readiness reports it)

    async def start(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "socialcredit.status.logwriter",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        # the database URL over the pipe, not in the arguments, which every user can read
        setup = pickle.dumps(
            (
                self.url,
                self.dlog.checkpoints_elsewhere,
                self.project,
                self.retention,
                self.clock,
                self.access_retention,
            )
        )
        proc.stdin.write(_LEN.pack(len(setup)) + setup)
        try:
            ready = await proc.stdout.readexactly(_LEN.size)  # the child opened the database
            if _LEN.unpack(ready)[0] != 0:
                raise RuntimeError("the decision log writer did not start")
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        self._proc = proc
        self.error = None
        self._reader = self.loop.create_task(self._read(proc))
        if self.pending:
            self._flush()

    def put(self, item: LogItem) -> None:
        """Hand over a request's answers (on the loop's thread)."""
        if self._closing:
            self.dlog.settle([item], RuntimeError("the decision log is closed"))
            return
        self.pending.append(item)
        if self._proc is None:
            self._respawn()
        elif not self._flush_soon:
            # after the callbacks already due: requests that arrived together go together
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what is pending: frames of at most ``max_rows`` answers, each its own batch."""
        self._flush_soon = False
        while self.pending and self._proc is not None:
            k = _fit(self.pending, self.dlog.max_rows)
            batch = self.pending[:k]
            del self.pending[:k]
            try:
                body = pickle.dumps(
                    [(it.requests, it.access) for it in batch], pickle.HIGHEST_PROTOCOL
                )
            except Exception as e:
                # not a value the log can hold: those requests fail, not the rest
                log.exception("decision log batch could not be sent; %d requests refused", k)
                self.dlog.settle(batch, e)
                continue
            assert self._proc.stdin is not None
            self.inflight.append(batch)
            self._proc.stdin.write(_LEN.pack(len(body)) + body)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                (n,) = _LEN.unpack(await proc.stdout.readexactly(_LEN.size))
                reply = pickle.loads(await proc.stdout.readexactly(n))
                outcomes, commits = reply
                for rows, seconds in commits:
                    self.dlog.committed(rows, seconds)
                for results, error in outcomes:
                    batch = self.inflight.popleft()
                    if error is None:
                        self.dlog.settle(batch, None, results)
                    else:
                        log.error("decision log commit failed; %d requests refused", len(batch))
                        self.dlog.settle(batch, RuntimeError(error))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the child is gone: what it held fails, a new one takes over
            lost = [it for batch in self.inflight for it in batch]
            self.inflight.clear()
            if self._proc is proc:
                self._proc = None
            if not self._closing:
                self.error = f"the writer process stopped ({type(e).__name__})"
                log.error("decision log writer stopped (%s); %d requests refused", e, len(lost))
            self.dlog.settle(lost, RuntimeError("the decision log writer stopped"))
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if not self._closing:
                self._respawn()

    def _respawn(self) -> None:
        if self._starting is not None and not self._starting.done():
            return

        async def respawn() -> None:
            try:
                await self.start()
            except Exception as e:
                self.error = f"the writer process could not start ({type(e).__name__}: {e})"
                log.exception("decision log writer could not start")
                waiting, self.pending = self.pending, []
                self.dlog.settle(waiting, e)

        self._starting = self.loop.create_task(respawn())

    async def close(self, timeout: float = 30.0) -> None:
        """Commit what was handed over, then stop the child."""
        deadline = time.monotonic() + timeout
        while (self.pending or self.inflight) and self._proc is not None:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        self._closing = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()  # no new child now (one half started is killed)
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        waiting, self.pending = self.pending, []
        self.dlog.settle(waiting, RuntimeError("the decision log is closed"))
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), max(1.0, deadline - time.monotonic()))
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.inflight:  # the child was stopped before it answered (the timeout)
            lost = [it for batch in self.inflight for it in batch]
            self.inflight.clear()
            self.dlog.settle(lost, RuntimeError("the decision log writer was stopped"))

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid


def _fit(items: Sequence[LogItem], max_rows: int) -> int:
    """How many of ``items`` (at least one) fit in ``max_rows`` answers."""
    n = 0
    for k, it in enumerate(items):
        n += item_size(it)
        if n > max_rows and k:
            return k
    return len(items)


# ---------------------------------------------------------------------- the child


def main() -> int:
    """``python -m socialcredit.status.logwriter``: read the database URL, whether checkpoints
    are made elsewhere and whether to project (the first frame), then commit the frames read
    from stdin (those waiting together in one transaction: :func:`_frames`), answer once per
    commit on stdout, and stop at the end of stdin. When projecting, a
    :class:`~socialcredit.status.decisions.Projector` step runs when one is due and no batch is
    waiting (a batch that arrives meanwhile waits for one projection transaction at most, as it
    would for the write turn): here, in a process that commits and projects and nothing else, a
    transaction does not wait for the interpreter lock between its statements while it holds the
    turn, as it did in a thread of the server (5-25 ms for 100 answers under load, against
    ~1 ms)."""
    out = child_stdio()  # stopped by the end of stdin, not by a signal to the group
    inp = sys.stdin.fileno()
    from socialcredit.ledger.db import make_engine

    setup = _frame(inp)
    if setup is None:
        return 1
    url, checkpoints_elsewhere, project, retention, clock, access_retention = pickle.loads(setup)
    engine = make_engine(url)
    done: list[tuple[int, float]] = []
    dlog = DecisionLog(
        engine,
        checkpoints_elsewhere=checkpoints_elsewhere,
        on_commit=lambda rows, seconds: done.append((rows, seconds)),
    )
    dlog._raw_connection()  # fail here, before saying ready, if the database cannot be opened
    projector = (
        Projector(
            engine,
            _activity(dlog),
            checkpoints_elsewhere=checkpoints_elsewhere,
            retention=retention,
            clock=clock,
            access_retention=access_retention,
        )
        if project
        else None
    )
    out.write(_LEN.pack(0))
    out.flush()
    due = time.monotonic() + IDLE_WAIT
    try:
        while True:
            if projector is not None:
                # a batch waiting goes first; the projector's step when none came by its time
                wait = max(0.0, due - time.monotonic())
                if not select.select([inp], [], [], wait)[0]:
                    pause = projector.step()
                    due = time.monotonic() + pause
                    continue
            frames, end = _frames(inp, dlog.max_rows)
            if frames:
                body = pickle.dumps(_commit(dlog, frames, done), pickle.HIGHEST_PROTOCOL)
                out.write(_LEN.pack(len(body)) + body)
                out.flush()
            if end:
                return 0
    finally:
        dlog.close()
        engine.dispose()


def _commit(
    dlog: DecisionLog, frames: list[list[LogItem]], done: list[tuple[int, float]]
) -> tuple[list[tuple[Sequence[Sequence[int]] | None, str | None]], list[tuple[int, float]]]:
    """Commit ``frames`` together; the answer for the server: for each frame its ids or the
    error, and the commits made (answers, seconds). If the frames cannot be committed together,
    each is tried alone, so that a frame the log cannot hold fails alone, as it would have had
    it come on its own."""
    try:
        results = dlog.commit_batch([it for frame in frames for it in frame])
    except Exception as e:
        if len(frames) == 1:
            log.exception("decision log commit failed")
            return [(None, f"{type(e).__name__}: {e}")], _drain(done)
        outcomes, commits = [], []
        for frame in frames:
            alone, made = _commit(dlog, [frame], done)
            outcomes += alone
            commits += made
        return outcomes, commits
    out: list[tuple[Sequence[Sequence[int]] | None, str | None]] = []
    at = 0
    for frame in frames:
        out.append((results[at : at + len(frame)], None))
        at += len(frame)
    return out, _drain(done)


def _drain(done: list[tuple[int, float]]) -> list[tuple[int, float]]:
    taken = list(done)
    done.clear()
    return taken


def _frames(fd: int, max_rows: int) -> tuple[list[list[LogItem]], bool]:
    """The frames waiting on ``fd`` (at least one: this waits for it), as many as fit in
    ``max_rows`` answers together, and whether the input ended."""
    frames: list[list[LogItem]] = []
    rows = 0
    while not frames or (rows < max_rows and select.select([fd], [], [], 0)[0]):
        body = _frame(fd)
        if body is None:
            return frames, True
        frame = [LogItem(req, acc) for req, acc in pickle.loads(body)]
        frames.append(frame)
        rows += sum(item_size(it) for it in frame)
    return frames, False


def _activity(dlog: DecisionLog) -> Callable[[], int]:
    """What the projector watches to keep out of the way: this writer's commits, and the
    ledger's newest entry (records furnished through any process, which wait for its turn, as
    the answers' commits do)."""
    newest = sa.select(sa.func.max(entries.c.seq))

    def read() -> int:
        with dlog.engine.connect() as conn:
            return dlog.commits + int(conn.execute(newest).scalar() or 0)

    return read


def _frame(fd: int) -> bytes | None:
    """The next frame's body from ``fd`` (unbuffered, so that ``select`` sees what is unread),
    None at the end of the input."""
    head = _exactly(fd, _LEN.size)
    return None if head is None else _exactly(fd, _LEN.unpack(head)[0])


def _exactly(fd: int, n: int) -> bytes | None:
    parts: list[bytes] = []
    while n:
        part = os.read(fd, min(n, 1 << 20))
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


if __name__ == "__main__":
    sys.exit(main())
