"""What one API worker process holds: the ledger, live status, the index, the keys, the log.

A background thread keeps it current: every ``poll_interval`` (20 ms) it applies status changes
to the in-memory index (one indexed query), so several worker processes answer alike; every
``maintenance_interval`` (1 s) it reloads keys if their table changed (so a revoked key is
refused by every worker within a second; the worker that sees an unknown key id looks it up at
once) and the relying parties, reads the day's answers of the parties with a daily limit
(:mod:`~socialcredit.status.quotas`), catches the status up with the ledger (writes made by
imports or other processes), sweeps the subjects whose status changes today, and sweeps the cases
(deadlines that passed, review cases for new proposals) when the day or the ledger moved, and
checkpoints the decision log's WAL. A second thread projects the decision log behind the answers
and deletes the answers and access-log entries past their retention periods
(:class:`~socialcredit.status.decisions.Projector`), until the log's writer process takes that
over (``serve``: :meth:`Runtime.log_in_process`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.requests import Request

from socialcredit.cases.noticeproc import NoticeProcess
from socialcredit.clock import Clock
from socialcredit.errors import Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import in_this_process_only
from socialcredit.status.db import naive_utc
from socialcredit.status.decisions import DecisionLog, ProjectionLag, Projector
from socialcredit.status.index import EligibilityIndex
from socialcredit.status.parties import Party, get_party, list_parties
from socialcredit.status.quotas import Quotas
from socialcredit.status.retention import Retention
from socialcredit.status.service import StatusService
from socialcredit.web import metrics
from socialcredit.web.keys import ApiKey, KeyCache
from socialcredit.web.problems import ApiProblem

log = logging.getLogger(__name__)


_UNAUTH_TEXT = {
    "no-key": "send an API key: Authorization: Bearer sck_<id>_<secret>",
    "malformed-key": "the API key is not of the form sck_<id>_<secret>",
    "unknown-key": "no such API key",
    "bad-secret": "no such API key",
    "revoked-key": "this API key was revoked",
}


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: str
    scope: str | None


def header_value(request: Request, name: bytes) -> str | None:
    """A request header's value (``name`` in lower case, as ASGI servers give them), read from the
    scope: Starlette's ``request.headers`` builds a mapping first (~1 us), and a check reads two."""
    for key, value in request.scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Runtime:
    def __init__(
        self,
        db: str | None,
        clock: Clock | None = None,
        *,
        rulebooks: Sequence[str] = (),
        poll_interval: float = 0.02,
        maintenance_interval: float = 1.0,
        background: bool = True,
        decision_retention: Retention | None = None,
        access_log_retention: Retention | None = None,
        workers: int = 1,
    ):
        self.ledger = Ledger.open(db, clock=clock)
        # how long answers stay in the decision log (None: the caller set no limit, as tests do;
        # serve's default is 24 months), shown with every listing of decisions; and entries in
        # the access log (serve's default: 48 months), shown in the subject's file
        self.decision_retention = decision_retention or Retention(None)
        self.access_log_retention = access_log_retention or Retention(None)
        self.engine = self.ledger.engine
        self.clock = self.ledger.clock
        self.catalogue = self.ledger.catalogue
        self.status = StatusService(self.ledger)
        active = {a.rulebook.id for a in self.status.active()}
        for name in rulebooks:
            from socialcredit.rulebooks import load

            if load(name).id not in active:
                self.status.activate(name)
        self.status.catch_up()
        self.index = EligibilityIndex(self.engine)
        self.index.load()
        self.keys = KeyCache(self.engine)
        self.keys.refresh()
        self._parties: dict[str, Party] = {}
        # relying parties' limits (a worker's share of a rate: the rate over the server's workers)
        self.quotas = Quotas(self.engine, workers)
        self.refresh_parties()
        self.log = DecisionLog(
            self.engine, on_commit=metrics.on_commit, checkpoints_elsewhere=True
        ).start()
        self.poll_interval = poll_interval
        self.maintenance_interval = maintenance_interval
        # answers not yet projected, read incrementally: the metric and the projector's policy
        self._projection_lag = ProjectionLag(self.engine)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_maint = 0.0
        self._last_sweep_day: dt.date | None = None
        self._last_cases_mark: tuple[dt.date, int] | None = None
        self._cases_changes = 0  # status_changes read by the last cases sweep
        self.rulebook_refs = self._refs()
        from socialcredit.cases.notices import NoticeService

        self.notices = NoticeService(self.ledger, lambda: self.status.rulebooks)
        self.notice_process: NoticeProcess | None = None  # notices_in_process
        self.writes = 0  # ledger writes made through this process's API
        self.projector = Projector(  # this runtime's loop checkpoints (tick)
            self.engine,
            lambda: self.log.commits + self.writes,
            self._projection_lag,
            checkpoints_elsewhere=True,
            retention=self.decision_retention,
            clock=self.clock,
            access_retention=self.access_log_retention,
        )
        self._projector: threading.Thread | None = None
        self._projector_stop = threading.Event()
        if background:
            self._thread = threading.Thread(target=self._loop, name="status-poller", daemon=True)
            self._thread.start()
            self._projector = threading.Thread(
                target=self._project_loop, name="decision-projector", daemon=True
            )
            self._projector.start()

    def _refs(self) -> str:
        return ",".join(rb.ref for rb in self.status.rulebooks)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.stop_projector()
        if self.notice_process is not None:
            self.notice_process.close()
        self.notices.close()
        self.log.close()
        self.index.close()
        self.ledger.close()

    # ------------------------------------------------------------------ keeping current

    def refresh_parties(self) -> None:
        """Reload the relying parties (a small table, read whole: a fingerprint of its count and
        latest ``updated_at`` missed changes made within one tick of the clock, as under a fixed
        clock), then the day's answers of those with a daily limit."""
        self._parties = {p.party_id: p for p in list_parties(self.engine)}
        self.quotas.refresh(self._parties.values(), naive_utc(self.clock.now()).date())

    def party(self, party_id: str) -> Party:
        p = self._parties.get(party_id)
        if p is None:
            p = get_party(self.engine, party_id)
            self._parties[party_id] = p
        return p

    def tick(self, *, maintenance: bool = False) -> None:
        """One round of the background loop (tests call it directly)."""
        now = time.monotonic()
        if maintenance or now - self._last_maint >= self.maintenance_interval:
            self._last_maint = now
            self.status.catch_up()
            today = self.clock.now().date()
            if self._last_sweep_day != today:
                self.status.sweep()
                self._last_sweep_day = today
            self.sweep_cases(today)
            self.rulebook_refs = self._refs()
            if self.notice_process is not None:
                self.notice_process.check()  # it notices and delivers; restarted if it died
            else:
                self.notices.tick()  # notices derived from the ledger and status, then delivery
            metrics.NOTICES_FAILING.set(1 if self.notices_error else 0)
            self.keys.refresh()
            self.refresh_parties()
            metrics.STATUS_LAG.set(self.status.lag())
            metrics.INDEX_SUBJECTS.set(len(self.index))
            from socialcredit.publish.watchlists import runtime_tick

            runtime_tick(self)  # wakes the watchlist alerter (its own thread)
            metrics.DECISION_PROJECTION_LAG.set(self._projection_lag())
            self.log.checkpoint()  # the decision log's WAL, off the requests' path
        self.index.poll()

    def sweep_cases(self, today: dt.date) -> None:
        """Case deadlines and review proposals (``socialcredit.cases.sweep``), when anything moved:
        the first sweep of a day reads every subject's proposals, the others only those of the
        subjects whose status changed since the sweep before."""
        mark = (today, self.status.watermark())
        if mark == self._last_cases_mark:
            return
        from socialcredit.cases.sweep import sweep

        same_day = self._last_cases_mark is not None and self._last_cases_mark[0] == today
        report = sweep(self.status, changed_since=self._cases_changes if same_day else None)
        self._cases_changes = report.changes_seen
        self._last_cases_mark = (today, self.status.watermark())

    def _project_loop(self) -> None:
        """The projector thread (:class:`~socialcredit.status.decisions.Projector`), until the
        runtime closes or the decision log's writer process takes the projection over."""
        wait = 0.0
        while not self._projector_stop.wait(wait):
            wait = self.projector.step()

    async def log_in_process(self) -> None:
        """Commit the decision log in a writer process (``serve``), which projects it too: the
        projector thread stops once that process runs (on SQLite in memory there is none)."""
        await self.log.use_process(
            project=True,
            retention=self.decision_retention,
            clock=self.clock,
            access_retention=self.access_log_retention,
        )
        if self.log.child_pid is not None:
            await asyncio.to_thread(self.stop_projector)

    def notices_in_process(self) -> None:
        """Write and deliver notices in a child process (``serve``, see
        :mod:`socialcredit.cases.noticeproc`), not in the background loop's thread, where
        rendering them took the interpreter from the requests. On a database only this process
        can reach (SQLite in memory), the loop goes on noticing itself."""
        if self.notice_process is not None or in_this_process_only(self.engine):
            return
        url = self.engine.url.render_as_string(hide_password=False)
        proc = NoticeProcess(url, self.maintenance_interval)
        proc.start()
        self.notice_process = proc

    @property
    def notices_error(self) -> str | None:
        """Why notices are not being written or delivered, if they are not (readiness)."""
        if self.notice_process is not None:
            return self.notice_process.error
        return self.notices.last_error

    def stop_projector(self) -> None:
        """Stop the projector thread (the writer process projects under ``serve``: a thread here
        waits for the interpreter lock between its statements while holding the write turn)."""
        self._projector_stop.set()
        if self._projector is not None:
            self._projector.join(30)
            self._projector = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.tick()
                self.last_error = None
            except Exception as e:  # keep going; readiness reports it
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("status poller")

    def after_write(self) -> None:
        """Make a committed ledger write visible: status, then this worker's index, at once."""
        self.writes += 1  # the projector keeps out of the way while writes come in
        try:
            self.status.catch_up(refresh=False)
            self.index.poll()
        except Exception:  # the write is committed; the background loop will catch up
            log.exception("catch-up after a write")

    # ------------------------------------------------------------------ access and refusals

    def access_row(
        self,
        request: Request,
        status: int,
        rule: str,
        key: ApiKey | Principal | None = None,
        *,
        subject: str | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        return {
            "at": naive_utc(self.clock.now()),
            "key_id": key.key_id if key else None,
            "role": key.role if key else None,
            "scope": key.scope if key else None,
            "method": request.method[:8],
            "path": request.url.path[:300],
            "status": status,
            "rule": rule[:40],
            "subject": subject,
            "detail": detail,
        }

    def refusal(
        self,
        request: Request,
        status: int,
        slug: str,
        rule: str,
        detail: str,
        key: ApiKey | Principal | None = None,
        *,
        subject: str | None = None,
        problems: Iterable[Problem] = (),
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> tuple[ApiProblem, dict[str, object]]:
        metrics.REFUSALS.labels(rule).inc()
        probs = list(problems)
        logged = (
            detail
            if not probs
            else detail + " [" + ", ".join(f"{p.field}:{p.rule}" for p in probs[:20]) + "]"
        )
        row = self.access_row(request, status, rule, key, subject=subject, detail=logged[:2000])
        if status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="socialcredit"', **(headers or {})}
        return ApiProblem(status, slug, detail, probs, headers=headers, extra=extra), row

    def refuse(
        self,
        request: Request,
        status: int,
        slug: str,
        rule: str,
        detail: str,
        key: ApiKey | Principal | None = None,
        *,
        subject: str | None = None,
        problems: Iterable[Problem] = (),
    ) -> ApiProblem:
        """Log the refusal durably, then return the problem to raise."""
        exc, row = self.refusal(
            request, status, slug, rule, detail, key, subject=subject, problems=problems
        )
        self.log.write([], [row])
        return exc

    async def refuse_async(
        self,
        request: Request,
        status: int,
        slug: str,
        rule: str,
        detail: str,
        key: ApiKey | Principal | None = None,
        *,
        subject: str | None = None,
        problems: Iterable[Problem] = (),
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> ApiProblem:
        exc, row = self.refusal(
            request,
            status,
            slug,
            rule,
            detail,
            key,
            subject=subject,
            problems=problems,
            headers=headers,
            extra=extra,
        )
        await self.log.submit_async([], [row])
        return exc

    def logged_read(self, request: Request, who: Principal, subject: str) -> None:
        """Staff reads of a subject's data are logged (ASVS 16.3.2 at L3)."""
        if who.role != "subject":
            self.log.write([], [self.access_row(request, 200, "read", who, subject=subject)])

    def authenticate(self, request: Request, roles: Sequence[str]) -> Principal:
        key, rule = self.keys.check(bearer(header_value(request, b"authorization")))
        if rule or key is None or key.role not in roles:
            exc, row = self._refusal_for(request, key, rule, roles)
            self.log.write([], [row])
            raise exc
        return Principal(key.key_id, key.role, key.scope)

    async def authenticate_async(self, request: Request, roles: Sequence[str]) -> Principal:
        token = bearer(header_value(request, b"authorization"))
        if token and not self.keys.cached(token):
            from starlette.concurrency import run_in_threadpool

            key, rule = await run_in_threadpool(self.keys.check, token)
        else:
            key, rule = self.keys.check(token)
        if rule or key is None or key.role not in roles:
            exc, row = self._refusal_for(request, key, rule, roles)
            await self.log.submit_async([], [row])
            raise exc
        return Principal(key.key_id, key.role, key.scope)

    def _refusal_for(
        self, request: Request, key: ApiKey | None, rule: str, roles: Sequence[str]
    ) -> tuple[ApiProblem, dict[str, object]]:
        if rule or key is None:
            return self.refusal(
                request, 401, "unauthenticated", rule or "no-key", _UNAUTH_TEXT.get(rule, rule), key
            )
        return self.refusal(
            request,
            403,
            "forbidden",
            "role",
            f"a {key.role} key cannot use {request.method} {request.url.path} "
            f"(allowed: {', '.join(roles)})",
            key,
        )
