"""The decision log: every answer given to a relying party, durable before the answer is sent.

OPA's decision logs are buffered and can be dropped under load (anchors §6: open-policy-agent/opa
#7454, #8123). Here nothing is buffered that has been answered: a request hands its decisions to
:class:`DecisionLog` and waits until they are committed; only then is the response sent. Each
process has one writer that commits everything waiting in one transaction (group commit), so
under load each commit carries more rows and the API slows down instead of dropping: a thread, or
under ``serve`` a child process fed by the event loop (:mod:`socialcredit.status.logwriter`). If
the database fails, the waiting requests fail (503) and no answer leaves without its record.

The log is written one row per request (``decision_requests``: who asked, why, when, the
rulebooks in force, and the answers as a JSON array; a batch's answers ``ROW_ANSWERS`` to a row),
the only write an answer waits for. One row
per answer (``decisions``) and who each answer was about (``decision_subjects``) are a projection
that :func:`project_decisions` builds in bulk inside the database, the subject index in subject
order: maintained with every answer, as before, it wrote one random index page per decision and
was most of a batch's cost. A :class:`Projector` builds it when the log is idle (in the writer
process under ``serve``, otherwise in a thread of the server). Nothing answered is ever missing
from what readers see: decisions about one subject
(a subject's file, correction propagation) are read from the projection and the log's tail above
the mark in one statement (:func:`decisions_about`), and so are a page of the newest decisions
(:func:`decisions_newest`, an auditor's listing) and :func:`count_decisions`. Answers older than
the retention period (:mod:`socialcredit.status.retention`) are deleted by the projector too
(:func:`purge_decisions`).

Decision ids are 64-bit, time-ordered and unique across processes: the writer allocates them under
the decision lock as ``max(unix_ms << 20, last + 1)``, and shows them as 13 Crockford base-32
characters, so they sort as text in the order they were made (like a ULID, half the size).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from socialcredit.clock import Clock, SystemClock
from socialcredit.decision_ids import encode_id
from socialcredit.ledger.db import in_this_process_only, is_sqlite, write_turn
from socialcredit.status.db import DECISION_INDEX_LOCK_KEY, DECISION_LOCK_KEY, locked_transaction
from socialcredit.status.retention import Retention
from socialcredit.status.schema import (
    access_log,
    decision_index_mark,
    decision_requests,
    decision_subjects,
    decisions,
    relying_parties,
)

if TYPE_CHECKING:
    from socialcredit.status.logwriter import WriterProcess

log = logging.getLogger(__name__)

_REQUEST_COLUMNS = ("first_id", "n", "at", "party_id", "key_id", "purpose", "rulebooks", "items")
_INSERT_SQLITE = (
    f"INSERT INTO decision_requests ({', '.join(_REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_REQUEST_COLUMNS))})"
)
_INSERT_PG = _INSERT_SQLITE.replace("?", "%s")
# answers per relying party and day, counted with the answers (what daily limits are held to)
_USAGE_SQLITE = (
    "INSERT INTO party_usage (party_id, day, answers) VALUES (?, ?, ?) "
    "ON CONFLICT (party_id, day) DO UPDATE SET answers = party_usage.answers + excluded.answers"
)
_USAGE_PG = _USAGE_SQLITE.replace("?", "%s")
_EPOCH = dt.datetime(1970, 1, 1)
# Answers in one decision_requests row at most: a batch's answers take several rows (consecutive
# ids), so that a projection transaction, which takes whole rows, can be short.
ROW_ANSWERS = 100
# The projector (Projector): answers behind the log above which it works while answers flow too,
# answers per transaction then and otherwise, and its pause when there is nothing to do.
BUSY_BACKLOG = 1_000_000
BUSY_ROWS = ROW_ANSWERS
IDLE_ROWS = 2_000
IDLE_WAIT = 0.5  # seconds
AUTOCHECKPOINT = 1000  # SQLite's default WAL size (pages) past which a commit checkpoints
TURN_FRAMES = 256  # WAL frames (pages) new since a checkpoint pass, below which one holds the turn
CATCH_UP_PASSES = 10  # checkpoint passes at most before that one (each copies what the last left)


def _header(r: Row) -> Header:
    """What a request's answers share: time, party, key, purpose, rulebooks."""
    return (r[0], r[1], r[2], r[3], r[9])


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(milliseconds=1)


# A decision as handed to the log: at, party_id, key_id, purpose, subject, measure, decision,
# reason, basis (JSON text or None), rulebooks.
Row = tuple[dt.datetime, str, str, str, str, str, str, str, str | None, str]


# What a request's answers share: at, party_id, key_id, purpose, rulebooks.
Header = tuple[dt.datetime, str, str, str, str]
# One answer: subject, measure, decision, reason, basis (JSON text or None).
Answer = Sequence[str | None]


@dataclass(frozen=True, slots=True)
class Columns:
    """A columnar check's answers as handed to the log: one measure, the same answer for every
    subject but the ``hits`` (position, decision, reason, basis JSON). What the writer stores is
    the same as for any answers (:meth:`rows`); what the event loop hands over (pickled for the
    writer process) is one string of subjects and a few hits: a tuple per subject cost more to
    build and pickle than the rest of the request. Make one with :meth:`of`."""

    subjects: str | Sequence[str]  # joined by newlines (which no subject key has), or a list
    n: int
    measure: str
    decision: str
    reason: str
    hits: Sequence[tuple[int, str, str, str | None]] = ()

    @classmethod
    def of(
        cls,
        subjects: Sequence[str],
        measure: str,
        decision: str,
        reason: str,
        hits: Sequence[tuple[int, str, str, str | None]] = (),
    ) -> Columns:
        text = "\n".join(subjects)
        joined = text.count("\n") == len(subjects) - 1  # no subject has a newline of its own
        return cls(
            text if joined else list(subjects), len(subjects), measure, decision, reason, hits
        )

    def __len__(self) -> int:
        return self.n

    def json_rows(self, size: int) -> Iterator[tuple[int, int, str]]:
        """:meth:`rows` as JSON arrays of at most ``size`` answers: (offset, count, JSON text).
        The subjects that get the default answer are joined into the text as they are, when no
        subject needs escaping in JSON (subject keys never do), rather than dumped one by one;
        otherwise through :meth:`rows`."""
        text = self.subjects if isinstance(self.subjects, str) else None
        if text is None or len(orjson.dumps(text)) != len(text.encode()) + 2 + text.count("\n"):
            yield from _dumped(self.rows(), size)
            return
        keys = text.split("\n")
        tail = '",' + orjson.dumps([self.measure, self.decision, self.reason, None]).decode()[1:]
        sep = tail + ',["'
        hits = sorted(self.hits)
        h = 0
        for k in range(0, self.n, size):
            end = min(k + size, self.n)
            parts: list[str] = []
            start = k
            while h < len(hits) and hits[h][0] < end:
                i, decision, reason, basis = hits[h]
                if i > start:
                    parts.append('["' + sep.join(keys[start:i]) + tail)
                parts.append(
                    orjson.dumps([keys[i], self.measure, decision, reason, basis]).decode()
                )
                start = i + 1
                h += 1
            if start < end:
                parts.append('["' + sep.join(keys[start:end]) + tail)
            yield k, end - k, "[" + ",".join(parts) + "]"

    def rows(self) -> list[Answer]:
        """One answer per subject, in order: subject, measure, decision, reason, basis."""
        keys = self.subjects.split("\n") if isinstance(self.subjects, str) else self.subjects
        m, d, r = self.measure, self.decision, self.reason
        out: list[Answer] = [[s, m, d, r, None] for s in keys]
        for i, decision, reason, basis in self.hits:
            out[i] = [keys[i], m, decision, reason, basis]
        return out


# What one request hands over: its answers, or a columnar check's (Columns).
Answers = Sequence[Answer] | Columns


def _dumped(items: Sequence[Answer], size: int) -> Iterator[tuple[int, int, str]]:
    for k in range(0, len(items), size):
        part = items[k : k + size]
        yield k, len(part), orjson.dumps(part).decode()


def _json_rows(answers: Answers, size: int) -> Iterator[tuple[int, int, str]]:
    """A request's answers as the JSON arrays of its log rows (``size`` answers each at most):
    (offset of the first, count, JSON text)."""
    if isinstance(answers, Columns):
        return answers.json_rows(size)
    return _dumped(answers, size)


def _requests(rows: Sequence[Row]) -> list[tuple[Header, Answers]]:
    """Rows grouped into requests: runs of rows with the same header."""
    return [
        (head, [r[4:9] for r in group])  # type: ignore[misc]
        for head, group in itertools.groupby(rows, _header)
    ]


@dataclass(slots=True)
class LogItem:
    """What a caller hands over: a thread waits on ``future``, a coroutine on ``afuture``."""

    requests: Sequence[tuple[Header, Answers]]
    access: Sequence[dict[str, Any]]
    future: Future[Sequence[int]] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    afuture: asyncio.Future[Sequence[int]] | None = None


def _resolve(
    done: list[tuple[asyncio.Future[Sequence[int]], Sequence[int] | None, BaseException | None]],
) -> None:
    for fut, ids, exc in done:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(ids or [])


_STOP = object()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is the event loop running in this thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def item_size(item: LogItem) -> int:
    """How many rows' worth an item is, for batches bounded by ``max_rows`` (its answers, and one
    for the item itself)."""
    return sum(len(a) for _, a in item.requests) + 1


class DecisionLog:
    """Group-committing writer of decisions (and access-log rows). Thread-safe."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_rows: int = 20_000,
        on_commit: Callable[[int, float], None] | None = None,
        checkpoints_elsewhere: bool = False,
        row_answers: int = ROW_ANSWERS,
    ):
        self.engine = engine
        self.checkpoints_elsewhere = checkpoints_elsewhere
        self.max_rows = max_rows
        self.row_answers = row_answers
        self.on_commit = on_commit
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sqlite = is_sqlite(engine)
        self._closed = False
        self._raw: Any = None
        self._floor: int | None = None  # see _last_id
        self.commits = 0  # transactions committed (the projector's sign that answers flow)
        self._lock = threading.Lock()
        self._child: WriterProcess | None = None  # commits in a child process (use_process)

    def start(self) -> DecisionLog:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
            self._thread.start()
        return self

    async def use_process(
        self,
        *,
        project: bool = False,
        retention: Retention | None = None,
        clock: Clock | None = None,
        access_retention: Retention | None = None,
    ) -> None:
        """Commit in a child process from now on (:mod:`socialcredit.status.logwriter`, on the
        database of this log's engine), fed by the running event loop; the writer thread, if
        started, stops once it has committed what it holds. With ``project``, the child also
        projects the log between its commits (:class:`Projector`, busy while it commits), and
        deletes the answers older than ``retention`` and the access log's entries older than
        ``access_retention`` by ``clock`` (pickled: the wall clock, or a test's clock as it stands
        now). On a database that only this process can reach (SQLite in memory), a no-op."""
        if self._child is not None or in_this_process_only(self.engine):
            return
        from socialcredit.status.logwriter import WriterProcess

        url = self.engine.url.render_as_string(hide_password=False)
        child = WriterProcess(
            self,
            url,
            asyncio.get_running_loop(),
            project=project,
            retention=retention,
            clock=clock,
            access_retention=access_retention,
        )
        await child.start()
        self._child = child
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def stop_process(self, timeout: float = 30.0) -> None:
        """Commit what the child was handed, then stop it (the log is closed from then on)."""
        child = self._child
        if child is not None:
            self._closed = True
            await child.close(timeout)

    @property
    def child_pid(self) -> int | None:
        """The writer process's pid (None while the log commits in this process)."""
        return None if self._child is None else self._child.pid

    @property
    def writer_error(self) -> str | None:
        """Why the writer process is not running, if it should be (readiness reports it)."""
        return None if self._child is None or self._closed else self._child.error

    def close(self, timeout: float = 30.0) -> None:
        """Commit everything already handed over, then stop the writer."""
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        with self._lock:
            if self._raw is not None:
                self._raw.close()
                self._raw = None

    def submit(
        self, rows: Sequence[Row], access: Sequence[dict[str, Any]] = ()
    ) -> Future[Sequence[int]]:
        """Hand rows to the writer; the future gives their decision ids once committed (a
        ``range`` when they are consecutive, as one request's are)."""
        future: Future[Sequence[int]] = Future()
        item = LogItem(_requests(rows), access, future)
        child = self._child
        if self._closed:
            future.set_exception(RuntimeError("the decision log is closed"))
        elif child is not None and not _on_loop(child.loop):
            child.loop.call_soon_threadsafe(child.put, item)
        elif self._thread is None:  # not started, or called on the child's loop: write inline
            try:
                future.set_result(self.commit_batch([item])[0])
            except Exception as e:
                future.set_exception(e)
        else:
            self._queue.put(item)
        return future

    def submit_async(
        self, rows: Sequence[Row], access: Sequence[dict[str, Any]] = ()
    ) -> asyncio.Future[Sequence[int]]:
        """Like :meth:`submit`, for the event loop: one wake-up per commit, not per request."""
        return self._submit_async(_requests(rows), access)

    def submit_answers_async(
        self, header: Header, answers: Answers
    ) -> asyncio.Future[Sequence[int]]:
        """One request's answers (``subject, measure, decision, reason, basis`` each, or a
        :class:`Columns`), all with ``header``; the future gives their decision ids, consecutive,
        once committed."""
        return self._submit_async([(header, answers)], ())

    def _submit_async(
        self,
        requests: Sequence[tuple[Header, Answers]],
        access: Sequence[dict[str, Any]],
    ) -> asyncio.Future[Sequence[int]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Sequence[int]] = loop.create_future()
        item = LogItem(requests, access, loop=loop, afuture=fut)
        child = self._child
        if self._closed:
            fut.set_exception(RuntimeError("the decision log is closed"))
        elif child is not None:
            if loop is child.loop:
                child.put(item)
            else:
                child.loop.call_soon_threadsafe(child.put, item)
        elif self._thread is None:
            try:
                fut.set_result(self.commit_batch([item])[0])
            except Exception as e:
                fut.set_exception(e)
        else:
            self._queue.put(item)
        return fut

    def write(
        self, rows: Sequence[Row], access: Sequence[dict[str, Any]] = (), timeout: float = 120.0
    ) -> list[int]:
        """Commit rows and wait for it (raises if the commit failed)."""
        return list(self.submit(rows, access).result(timeout))

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[LogItem] = [first]
            n = item_size(first)
            stop = False
            while n < self.max_rows:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
                n += item_size(nxt)
            try:
                results = self.commit_batch(batch)
            except Exception as e:  # the database failed: every waiting request fails, loudly
                log.exception("decision log commit failed; %d requests refused", len(batch))
                self.settle(batch, e)
            else:
                self.settle(batch, None, results)
            if stop:
                return

    def settle(
        self,
        batch: Sequence[LogItem],
        exc: BaseException | None,
        results: Sequence[Sequence[int]] | None = None,
    ) -> None:
        """Give each waiting caller its ids (``results``, in the order of ``batch``) or ``exc``;
        one wake-up per event loop, none at all for callers on the current thread's loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for k, it in enumerate(batch):
            ids = None if results is None else results[k]
            if it.loop is not None and it.afuture is not None:
                by_loop.setdefault(it.loop, []).append((it.afuture, ids, exc))
            elif it.future is not None:
                if exc is not None:
                    it.future.set_exception(exc)
                else:
                    it.future.set_result(ids or [])
        for loop, done in by_loop.items():
            if _on_loop(loop):
                _resolve(done)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is gone: nobody waits
                    loop.call_soon_threadsafe(_resolve, done)

    def committed(self, rows: int, seconds: float) -> None:
        """Count a commit of ``rows`` answers that took ``seconds`` (here or in the child)."""
        self.commits += 1
        if self.on_commit is not None:
            self.on_commit(rows, seconds)

    def _raw_connection(self) -> Any:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
            if self._sqlite and self.checkpoints_elsewhere:
                # A commit that crosses the WAL threshold would run the checkpoint (and its fsync
                # of the database file) while requests wait for it: the runtime's background loop
                # checkpoints instead (:meth:`checkpoint`). Commits stay synchronous=FULL.
                cur = self._raw.cursor()
                cur.execute("PRAGMA wal_autocheckpoint=0")
                cur.execute("PRAGMA cache_size=-65536")  # the subject index is written at random
                cur.close()
        return self._raw

    def checkpoint(self) -> Checkpoint | None:
        """Copy committed WAL pages into the database file, and let the WAL start over. On
        SQLite only, for a log started with ``checkpoints_elsewhere`` (otherwise a no-op, None).

        Passes, all PASSIVE (never waiting for a reader or a writer): the bulk of the pages while
        writers go on, what they committed meanwhile (again while that was more than
        ``TURN_FRAMES``, ``CATCH_UP_PASSES`` times at most), and a last pass during a write turn
        (:func:`~socialcredit.ledger.db.write_turn`), so that for a moment no commit is newer than
        the checkpoint. Only then does the next commit write the WAL from its start again: under a
        steady flow of commits a checkpoint never catches up by itself, and the WAL grew by every
        byte ever committed (400 MB in 40 s of batch checks), each commit extending the file,
        which on ext4 makes its fsync wait for the file system's journal."""
        if not (self._sqlite and self.checkpoints_elsewhere):
            return None
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            first = frames = _wal_frames(cur)[0]
            if first == 0:  # the WAL starts over at the next commit already
                return Checkpoint(0, 0, True)
            for _ in range(CATCH_UP_PASSES):  # what came in meanwhile: the turn's pass is short
                seen, (frames, _) = frames, _wal_frames(cur)
                if frames - seen < TURN_FRAMES:
                    break
            with write_turn(self.engine):
                frames, done = _wal_frames(cur)
            cur.close()
        finally:
            raw.close()
        return Checkpoint(first, frames, done)

    def _drop_connection(self) -> None:
        self._floor = None
        raw, self._raw = self._raw, None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.invalidate()

    def commit_batch(self, batch: Sequence[LogItem]) -> list[Sequence[int]]:
        """One transaction for the whole batch, on a DBAPI connection kept by the writer (the
        SQLAlchemy layer costs more than the insert itself at this rate). Each request's answers
        are one ``decision_requests`` row, or one per ``row_answers`` of them, with consecutive
        ids; :func:`project_decisions` expands them later. The answers are counted per relying
        party and day in ``party_usage`` in the same transaction (what daily limits are held to:
        :mod:`~socialcredit.status.quotas`). The writer thread and the writer
        process (:mod:`~socialcredit.status.logwriter`) both commit through it."""
        t0 = time.perf_counter()
        out: list[Sequence[int]] = []
        requests: list[tuple[Any, ...]] = []
        access: list[dict[str, Any]] = []
        usage: dict[tuple[str, dt.date], int] = {}
        n_rows = 0
        with self._lock, write_turn(self.engine):
            raw = self._raw_connection()
            try:
                cur = raw.cursor()
                if self._sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                else:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (DECISION_LOCK_KEY,))
                last = self._last_id(cur)
                for it in batch:
                    ids: list[range] = []  # consecutive per request: a range, not a list
                    for head, answers in it.requests:
                        if not answers:
                            continue
                        at = head[0]
                        first = max(_ms(at) << 20, last + 1)
                        last = first + len(answers) - 1
                        ids.append(range(first, last + 1))
                        when = at.isoformat(" ", "microseconds") if self._sqlite else at
                        for k, n, text in _json_rows(answers, self.row_answers):
                            requests.append(
                                (first + k, n, when, head[1], head[2], head[3], head[4], text)
                            )
                        n_rows += len(answers)
                        day = (head[1], at.date())
                        usage[day] = usage.get(day, 0) + len(answers)
                    out.append(ids[0] if len(ids) == 1 else [i for r in ids for i in r])
                    access.extend(it.access)
                if requests:
                    self._insert(cur, requests)
                    cur.executemany(
                        _USAGE_SQLITE if self._sqlite else _USAGE_PG,
                        [
                            (party, day.isoformat() if self._sqlite else day, n)
                            for (party, day), n in usage.items()
                        ],
                    )
                if access:
                    self._insert_access(cur, access)
                if self._sqlite:
                    cur.execute("COMMIT")
                else:
                    raw.commit()
                cur.close()
            except BaseException:
                with contextlib.suppress(Exception):
                    if self._sqlite:
                        raw.cursor().execute("ROLLBACK")
                    else:
                        raw.rollback()
                self._drop_connection()
                raise
        self.committed(n_rows, time.perf_counter() - t0)
        return out

    def _insert(self, cur: Any, requests: list[tuple[Any, ...]]) -> None:
        cur.executemany(_INSERT_SQLITE if self._sqlite else _INSERT_PG, requests)

    def _last_id(self, cur: Any) -> int:
        """The largest decision id given so far: the newest request's last, or a decision logged
        row by row before requests were kept whole. Those legacy rows no longer grow (``decisions``
        only gains projected rows, none above their request), so their maximum is read once per
        connection."""
        if self._floor is None:
            cur.execute("SELECT max(decision_id) FROM decisions")
            self._floor = int(cur.fetchone()[0] or 0)
        cur.execute("SELECT first_id + n - 1 FROM decision_requests ORDER BY first_id DESC LIMIT 1")
        row = cur.fetchone()
        return max(int(row[0]) if row else 0, self._floor)

    def _insert_access(self, cur: Any, rows: list[dict[str, Any]]) -> None:
        mark = "?" if self._sqlite else "%s"
        sql = (
            f"INSERT INTO access_log ({', '.join(_ACCESS)}) "
            f"VALUES ({', '.join([mark] * len(_ACCESS))})"
        )
        params = []
        for r in rows:
            at = r["at"]
            params.append(
                (
                    at.isoformat(" ", "microseconds") if self._sqlite else at,
                    *(r.get(c) for c in _ACCESS[1:]),
                )
            )
        cur.executemany(sql, params)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What :meth:`DecisionLog.checkpoint` found: the WAL's frames at the first pass and at the
    last, and whether the last copied them all (the next commit then starts the WAL over)."""

    frames: int
    tail: int
    done: bool


def _wal_frames(cur: Any) -> tuple[int, bool]:
    """One PASSIVE checkpoint pass: the WAL's frames, and whether it copied them all."""
    cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
    busy, frames, copied = cur.fetchone()
    cur.fetchall()
    return int(frames), not busy and frames == copied


_ACCESS = ("at", "key_id", "role", "scope", "method", "path", "status", "rule", "subject", "detail")


# ---------------------------------------------------------------------- the projection

# The log's requests expanded one row per answer, with the columns of ``decisions``: what the
# projection inserts and what readers of the unprojected tail select. {where} filters requests
# (``r``) and answers (SQLite ``j.value``, PostgreSQL ``j.v``).
_EXPAND_SQLITE = """
SELECT r.first_id + j.key AS decision_id, r.at AS at, r.party_id AS party_id, r.key_id AS key_id,
       r.purpose AS purpose, json_extract(j.value, '$[0]') AS subject,
       json_extract(j.value, '$[1]') AS measure, json_extract(j.value, '$[2]') AS decision,
       json_extract(j.value, '$[3]') AS reason, json_extract(j.value, '$[4]') AS basis,
       r.rulebooks AS rulebooks
FROM decision_requests AS r, json_each(r.items) AS j
WHERE {where}
"""
_EXPAND_PG = """
SELECT r.first_id + j.ord - 1 AS decision_id, r.at AS at, r.party_id AS party_id,
       r.key_id AS key_id, r.purpose AS purpose, j.v ->> 0 AS subject, j.v ->> 1 AS measure,
       j.v ->> 2 AS decision, j.v ->> 3 AS reason, j.v ->> 4 AS basis, r.rulebooks AS rulebooks
FROM decision_requests AS r
CROSS JOIN LATERAL jsonb_array_elements(r.items::jsonb) WITH ORDINALITY AS j(v, ord)
WHERE {where}
"""
_INSERT_DECISIONS = """
INSERT INTO decisions (decision_id, at, party_id, key_id, purpose, subject, measure, decision,
                       reason, basis, rulebooks)
"""
_MARK = "(SELECT coalesce(max(upto), 0) FROM decision_index_mark)"  # how far the projection is
_ABOVE_MARK = f"r.first_id > {_MARK}"


def _expand(engine: sa.Engine, where_sqlite: str, where_pg: str) -> str:
    return (
        _EXPAND_SQLITE.format(where=where_sqlite)
        if is_sqlite(engine)
        else _EXPAND_PG.format(where=where_pg)
    )


def decisions_about(engine: sa.Engine, subject: str) -> sa.Subquery:
    """Every decision about ``subject``, with the columns of ``decisions``: the projected ones
    (through the subject index) and those still only in the log (its requests above the mark,
    read through the JSON functions; a plain text search first skips the requests that do not
    name the subject). One statement, so one snapshot: a projection committing meanwhile moves
    rows and mark together, and nothing is missed or read twice. A subject's own file and
    correction propagation read this, so they never wait for the projection to catch up."""
    projected = sa.select(*decisions.c).where(
        decisions.c.decision_id.in_(
            sa.select(decision_subjects.c.decision_id).where(decision_subjects.c.subject == subject)
        )
    )
    tail = (
        sa.text(
            _expand(
                engine,
                f"{_ABOVE_MARK} AND instr(r.items, :needle) > 0"
                " AND json_extract(j.value, '$[0]') = :subject",
                f"{_ABOVE_MARK} AND strpos(r.items, :needle) > 0 AND j.v ->> 0 = :subject",
            )
        )
        .bindparams(needle=orjson.dumps(subject).decode(), subject=subject)
        .columns(*decisions.c)
    )
    return sa.union_all(projected, tail).subquery("about")


def decisions_newest(
    engine: sa.Engine, *, party: str | None, before: int | None, limit: int
) -> sa.Subquery:
    """The ``limit`` newest decisions (of ``party``, below ``before``), with the columns of
    ``decisions``, some maybe more: the newest projected ones, and the answers of the newest
    requests still above the mark, up to the one that completes a page (each holds at least one
    answer below ``before``, and every older answer is older than all of theirs). So a listing
    newest first reads a page without waiting for the projection and without reading the rest
    of the log. One statement, one snapshot, as :func:`decisions_about`."""
    projected = sa.select(*decisions.c)
    if party is not None:
        projected = projected.where(decisions.c.party_id == party)
    if before is not None:
        projected = projected.where(decisions.c.decision_id < before)
    projected_page = projected.order_by(decisions.c.decision_id.desc()).limit(limit).subquery()
    newest = [
        f"q.first_id > {_MARK}",
        *(["q.party_id = :party"] if party is not None else []),
        *(["q.first_id < :before"] if before is not None else []),
    ]
    # of the newest ``limit`` requests, those up to the one that brings ``limit`` answers (below
    # ``before``): a page of a batch's answers reads that batch, not a hundred more
    below = (
        "q.n"
        if before is None
        else "CASE WHEN q.first_id + q.n > :before THEN :before - q.first_id ELSE q.n END"
    )
    requests = (
        "r.first_id IN (SELECT w.first_id FROM (SELECT c.first_id, c.below,"
        " sum(c.below) OVER (ORDER BY c.first_id DESC) AS upto FROM ("
        f"SELECT q.first_id, {below} AS below FROM decision_requests AS q"
        f" WHERE {' AND '.join(newest)} ORDER BY q.first_id DESC LIMIT :limit) AS c) AS w"
        " WHERE w.upto - w.below < :limit)"
    )
    params: dict[str, Any] = {"limit": limit}
    if party is not None:
        params["party"] = party
    if before is not None:
        params["before"] = before
    tail = sa.text(_expand(engine, requests, requests)).bindparams(**params).columns(*decisions.c)
    return sa.union_all(sa.select(*projected_page.c), tail).subquery("newest")


def projection_lag(engine: sa.Engine) -> int:
    """How many answers are logged but not yet projected into ``decisions``."""
    return ProjectionLag(engine)()


class ProjectionLag:
    """:func:`projection_lag`, asked again and again (a server's metric, each second): after the
    first call it reads only what changed since the previous one, the requests logged since and
    the ones the projection has passed since, not the whole backlog (which after a load of
    single checks is millions of requests). Exact: decision ids only grow, so the requests logged
    after a call all have larger ids than every request that call saw; one statement reads the
    mark, the newest id and both sums in one snapshot."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._seen: tuple[int, int, int] | None = None  # mark, newest first_id, lag
        self._lock = threading.Lock()  # a server's metric and its projector share one

    def __call__(self) -> int:
        with self._lock:
            return self._read()

    def _read(self) -> int:
        r = decision_requests.c
        mark = sa.select(
            sa.func.coalesce(sa.func.max(decision_index_mark.c.upto), 0)
        ).scalar_subquery()
        top = sa.select(sa.func.coalesce(sa.func.max(r.first_id), 0)).scalar_subquery()

        def total(*where: Any) -> Any:
            return sa.select(sa.func.coalesce(sa.func.sum(r.n), 0)).where(*where).scalar_subquery()

        with self.engine.connect() as conn:
            if self._seen is None:
                now_mark, now_top, lag = conn.execute(
                    sa.select(mark, top, total(r.first_id > mark))
                ).one()
            else:
                was_mark, was_top, was_lag = self._seen
                now_mark, now_top, added, passed = conn.execute(
                    sa.select(
                        mark,
                        top,
                        total(r.first_id > was_top, r.first_id > mark),
                        total(r.first_id > was_mark, r.first_id <= mark, r.first_id <= was_top),
                    )
                ).one()
                if now_mark < was_mark or now_top < was_top:  # rewound: count it all again
                    self._seen = None
                    return self._read()
                # a purge (purge_decisions) may have deleted requests the projection passed since
                # the last read, which ``passed`` then misses: the lag is nothing once the mark
                # reaches the newest request, whatever came between
                lag = 0 if now_mark >= now_top else was_lag + added - passed
        self._seen = (int(now_mark), int(now_top), int(lag))
        return int(lag)


@contextlib.contextmanager
def _projection_transaction(
    engine: sa.Engine, checkpoints_elsewhere: bool = False
) -> Iterator[sa.Connection]:
    """A projection transaction. On SQLite it commits without waiting for the disk
    (``synchronous=NORMAL``, on this connection and for this transaction only): what it writes is
    derived from ``decision_requests``, committed durably before, and the mark moves in the same
    transaction as the rows, so a power loss can only take back a projection that is then done
    again, never leave half of one. Waiting for the disk was most of a projection's time. It
    takes its turn with the other writers (:func:`~socialcredit.ledger.db.write_turn`): a commit
    that found the write lock held by a projection slept in SQLite's busy handler. With
    ``checkpoints_elsewhere`` (a server, whose background loop checkpoints) its commit never runs
    a checkpoint of the WAL, as the decision log's never does: one that crossed SQLite's threshold
    would copy the WAL while holding the turn, and every commit behind it would wait."""
    if not is_sqlite(engine):
        with locked_transaction(engine, DECISION_INDEX_LOCK_KEY) as conn:
            yield conn
        return
    with write_turn(engine), engine.connect() as conn:
        raw = conn.connection.driver_connection  # autocommit: a PRAGMA opens no transaction
        assert raw is not None
        try:
            raw.execute("PRAGMA synchronous=NORMAL")
            if checkpoints_elsewhere:
                raw.execute("PRAGMA wal_autocheckpoint=0")
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
        finally:
            try:
                raw.execute("PRAGMA synchronous=FULL")
                if checkpoints_elsewhere:
                    raw.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")
            except Exception:
                # never hand the pool a connection whose commits skip the disk
                conn.invalidate()
                raise


def project_decisions(
    engine: sa.Engine,
    *,
    max_rows: int = 20_000,
    rounds: int | None = None,
    max_seconds: float | None = None,
    checkpoints_elsewhere: bool = False,
) -> int:
    """Expand the requests logged since the mark into ``decisions`` (one row per answer) and
    ``decision_subjects`` (in subject order, so index pages are written once per chunk, not once
    per answer), about ``max_rows`` answers per transaction, inside the database (JSON functions).
    Returns how many answers it projected. Stops when nothing is left, after ``rounds``
    transactions, or once ``max_seconds`` have passed (the server's loop: the answers' commits
    get the database between rounds). Safe to run from several processes at once. With
    ``checkpoints_elsewhere``, its commits leave the WAL's checkpoints to the server's loop."""
    with engine.connect() as conn:  # the usual case, nothing new, costs no write transaction
        mark = conn.execute(sa.select(sa.func.max(decision_index_mark.c.upto))).scalar() or 0
        top = conn.execute(
            sa.select(decision_requests.c.first_id)
            .order_by(decision_requests.c.first_id.desc())
            .limit(1)
        ).scalar()
    if top is None or top <= mark:
        return 0
    done = 0
    between = "r.first_id > :mark AND r.first_id <= :upto"
    sql = sa.text(_INSERT_DECISIONS + _expand(engine, between, between))
    started = time.perf_counter()
    for k in itertools.count():
        if (rounds is not None and k >= rounds) or (
            max_seconds is not None and time.perf_counter() - started >= max_seconds
        ):
            break
        with _projection_transaction(engine, checkpoints_elsewhere) as conn:
            mark = conn.execute(
                sa.select(decision_index_mark.c.upto).where(decision_index_mark.c.id == 1)
            ).scalar()
            if mark is None:
                mark = 0
                conn.execute(decision_index_mark.insert().values(id=1, upto=0))
            # ids are allocated under the decision lock in commit order, so every request committed
            # later has a larger first id than any seen here: the mark never skips one
            pending = conn.execute(
                sa.select(decision_requests.c.first_id, decision_requests.c.n)
                .where(decision_requests.c.first_id > mark)
                .order_by(decision_requests.c.first_id)
                .limit(max_rows)
            ).all()
            if not pending:
                return done
            total = 0
            for first, n in pending:
                upto, last_id = first, first + n - 1
                total += n
                if total >= max_rows:
                    break
            conn.execute(sql, {"mark": mark, "upto": upto})
            conn.execute(
                decision_subjects.insert().from_select(
                    ["subject", "decision_id"],
                    sa.select(decisions.c.subject, decisions.c.decision_id)
                    .where(
                        decisions.c.decision_id >= pending[0][0],
                        decisions.c.decision_id <= last_id,
                    )
                    .order_by(decisions.c.subject, decisions.c.decision_id),
                )
            )
            conn.execute(
                decision_index_mark.update().where(decision_index_mark.c.id == 1).values(upto=upto)
            )
            done += total
    return done


def oldest(engine: sa.Engine, table: sa.Table) -> dt.datetime | None:
    """When the first row by id still in ``table`` was logged (``at``): the oldest request of
    the decision log (``decision_requests``) or entry of the access log (None: it is empty)."""
    order = table.c.first_id if table is decision_requests else table.c.id
    with engine.connect() as conn:
        return conn.execute(  # type: ignore[no-any-return]
            sa.select(table.c.at).order_by(order).limit(1)
        ).scalar()


def purge_decisions(
    engine: sa.Engine,
    before: dt.datetime,
    *,
    max_rows: int = IDLE_ROWS,
    checkpoints_elsewhere: bool = False,
) -> int:
    """Delete the answers logged before ``before`` (naive UTC, as the log stores times): the
    oldest requests in id order, up to the first one logged at or after ``before`` (ids follow
    the order of logging; a request timed a moment before the one ahead of it waits for the next
    purge), and only requests the projection has passed, whose rows in ``decisions`` and
    ``decision_subjects`` go with them in the same transaction. So a reader, which reads the
    projection below the mark and the log above it in one snapshot, never sees half an answer.
    About ``max_rows`` answers per transaction (at least one request), taken in turn with the
    other writers as a projection is (:func:`_projection_transaction`). Returns how many answers
    it deleted; nothing expired costs one indexed read and no write transaction."""
    r = decision_requests.c
    earliest = oldest(engine, decision_requests)
    if earliest is None or earliest >= before:
        return 0
    with _projection_transaction(engine, checkpoints_elsewhere) as conn:
        mark = conn.execute(sa.select(sa.func.max(decision_index_mark.c.upto))).scalar() or 0
        rows = conn.execute(
            sa.select(r.first_id, r.n, r.at)
            .where(r.first_id <= mark)
            .order_by(r.first_id)
            .limit(max_rows)
        ).all()
        total = 0
        end: int | None = None  # the first decision id kept
        for first, n, at in rows:
            if at >= before or (end is not None and total + n > max_rows):
                break
            total += n
            end = first + n
        if end is None:
            return 0
        d = decisions.c
        conn.execute(
            sa.delete(decision_subjects).where(
                decision_subjects.c.subject.in_(sa.select(d.subject).where(d.decision_id < end)),
                decision_subjects.c.decision_id < end,
            )
        )
        conn.execute(sa.delete(decisions).where(d.decision_id < end))
        conn.execute(sa.delete(decision_requests).where(r.first_id < end))
    return total


def purge_access_log(
    engine: sa.Engine,
    before: dt.datetime,
    *,
    max_rows: int = IDLE_ROWS,
    checkpoints_elsewhere: bool = False,
) -> int:
    """Delete the access log's entries made before ``before`` (naive UTC): the oldest in id
    order, up to the first made at or after ``before`` (ids follow the order of logging; an entry
    timed a moment before the one ahead of it waits for the next purge), ``max_rows`` at most per
    transaction, taken in turn as :func:`purge_decisions` takes it. Returns how many it deleted;
    nothing expired costs one indexed read."""
    a = access_log.c
    earliest = oldest(engine, access_log)
    if earliest is None or earliest >= before:
        return 0
    with _projection_transaction(engine, checkpoints_elsewhere) as conn:
        end: int | None = None  # the last id deleted
        for id_, at in conn.execute(sa.select(a.id, a.at).order_by(a.id).limit(max_rows)):
            if at >= before:
                break
            end = id_
        if end is None:
            return 0
        return int(conn.execute(sa.delete(access_log).where(a.id <= end)).rowcount)


class Projector:
    """When to project the decision log, and how much at a time: a server's projector thread
    (:class:`~socialcredit.web.runtime.Runtime`) or its writer process
    (:mod:`socialcredit.status.logwriter`) calls :meth:`step` again and again.

    Readers do not need the projection (decisions about a subject are read from the log's tail as
    well), so it keeps out of the way of the answers' commits and the ledger's writes, which wait
    for its transactions (:func:`~socialcredit.ledger.db.write_turn`): it projects ``IDLE_ROWS``
    at a time when ``activity`` (a count of commits and writes) did not move since the last step,
    two thirds of the time; while it moves, only once more than ``busy_backlog`` answers are
    behind (a tail that long makes reading it slow), then ``BUSY_ROWS`` at a time (one log row of
    ``ROW_ANSWERS``: a commit waits for one such transaction at most), a tenth of the time.

    With a ``retention`` period, a step with nothing to project deletes the answers older than
    the period instead (:func:`purge_decisions`, by ``clock``), at the same sizes and pace; once
    it finds none, it looks again when the period has passed for the oldest answer kept. With an
    ``access_retention`` period, a step with neither deletes the access log's expired entries
    (:func:`purge_access_log`) the same way."""

    def __init__(
        self,
        engine: sa.Engine,
        activity: Callable[[], int],
        lag: ProjectionLag | None = None,
        *,
        busy_backlog: int = BUSY_BACKLOG,
        checkpoints_elsewhere: bool = False,
        retention: Retention | None = None,
        clock: Clock | None = None,
        access_retention: Retention | None = None,
    ):
        self.engine = engine
        self.activity = activity
        self.lag = lag if lag is not None else ProjectionLag(engine)
        self.busy_backlog = busy_backlog
        self.checkpoints_elsewhere = checkpoints_elsewhere
        self.retention = retention
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.access_retention = access_retention
        self.purged = 0  # answers deleted by this projector
        self.purged_access = 0  # access-log entries deleted by this projector
        self._oldest: dt.datetime | None = None  # the oldest answer's time, as last read
        self._oldest_access: dt.datetime | None = None  # the oldest access-log entry's
        self._seen = activity()

    def step(self) -> float:
        """One projection transaction, if one is due; the seconds to wait before the next step.
        A failure (of the database, say) is logged, and the next step comes after a pause."""
        try:
            now = self.activity()
            busy, self._seen = now != self._seen, now
            # read at every step, so that each read covers one step's work: after a long catch-up
            # the first read covered all of it (~200 ms at 1,000,000 subjects, in a writer
            # process that commits nothing meanwhile)
            behind = self.lag()
            t0 = time.monotonic()
            if not behind or (busy and behind < self.busy_backlog):
                n = self._purge(busy)
            else:
                n = project_decisions(
                    self.engine,
                    max_rows=BUSY_ROWS if busy else IDLE_ROWS,
                    rounds=1,
                    checkpoints_elsewhere=self.checkpoints_elsewhere,
                )
        except Exception:
            log.exception("decision projection")
            return IDLE_WAIT
        if not n:
            return IDLE_WAIT
        return (9 if busy else 0.5) * (time.monotonic() - t0)

    def _purge(self, busy: bool) -> int:
        """Answers, or else access-log entries, deleted for being older than their retention
        period, if any can be. The oldest one's time is read once and kept until a purge deletes
        it: those logged since are younger, so until the cutoff passes it there is nothing to
        read or delete."""
        now = self.clock.now()
        rows = BUSY_ROWS if busy else IDLE_ROWS
        before = None if self.retention is None else self.retention.cutoff(now)
        if before is not None:
            if self._oldest is None:
                self._oldest = oldest(self.engine, decision_requests)
            if self._oldest is not None and self._oldest < before:
                n = purge_decisions(
                    self.engine,
                    before,
                    max_rows=rows,
                    checkpoints_elsewhere=self.checkpoints_elsewhere,
                )
                self.purged += n
                if n:
                    self._oldest = None  # read again at the next step
                    return n
        before = None if self.access_retention is None else self.access_retention.cutoff(now)
        if before is None:
            return 0
        if self._oldest_access is None:
            self._oldest_access = oldest(self.engine, access_log)
        if self._oldest_access is None or self._oldest_access >= before:
            return 0
        n = purge_access_log(
            self.engine, before, max_rows=rows, checkpoints_elsewhere=self.checkpoints_elsewhere
        )
        self.purged_access += n
        if n:
            self._oldest_access = None
        return n


# ---------------------------------------------------------------------- reading


def list_decisions(
    engine: sa.Engine,
    *,
    subject: str | None = None,
    party: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Decisions, newest first, with the relying party's name (who checked, why, what was said).
    Read from the log and its projection together, so never waiting for the projection: about
    one subject, every one (:func:`decisions_about`); otherwise a page's worth of the newest
    (:func:`decisions_newest`)."""
    if subject is None:
        d: Any = decisions_newest(engine, party=party, before=before, limit=limit)
    else:
        d = decisions_about(engine, subject)
    q = sa.select(d, relying_parties.c.name.label("party_name")).join(
        relying_parties, relying_parties.c.party_id == d.c.party_id, isouter=True
    )
    if party is not None:
        q = q.where(d.c.party_id == party)
    if before is not None:
        q = q.where(d.c.decision_id < before)
    q = q.order_by(d.c.decision_id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    return [
        {
            "decision_id": encode_id(r["decision_id"]),
            "at": r["at"].isoformat(timespec="microseconds") + "Z",
            "party": r["party_id"],
            "party_name": r["party_name"],
            "purpose": r["purpose"],
            "subject": r["subject"],
            "measure": r["measure"],
            "decision": r["decision"],
            "reason": r["reason"],
            "basis": orjson.loads(r["basis"]) if r["basis"] else None,
            "rulebooks": r["rulebooks"].split(",") if r["rulebooks"] else [],
        }
        for r in rows
    ]


def count_decisions(engine: sa.Engine) -> int:
    """How many decisions there are: the projected rows and the answers of the requests above
    the mark, in one statement (so one snapshot, and no waiting for the projection)."""
    mark = sa.select(sa.func.coalesce(sa.func.max(decision_index_mark.c.upto), 0))
    projected = sa.select(sa.func.count()).select_from(decisions).scalar_subquery()
    tail = (
        sa.select(sa.func.coalesce(sa.func.sum(decision_requests.c.n), 0))
        .where(decision_requests.c.first_id > mark.scalar_subquery())
        .scalar_subquery()
    )
    with engine.connect() as conn:
        return int(conn.execute(sa.select(projected + tail)).scalar() or 0)
