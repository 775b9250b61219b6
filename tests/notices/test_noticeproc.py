"""The notifier in a child process (what ``serve`` runs): it writes the notices the thread would,
a child that dies is replaced, closing stops it, and a server started that way does not notice in
its own threads."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from socialcredit.cases.noticeproc import NoticeProcess
from socialcredit.cases.notices import (
    LEDGER_STREAM,
    NOTIFIER_ROUND_KEY,
    NoticeService,
    Notifier,
    list_notices,
)
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import sole_round
from socialcredit.status.service import StatusService
from socialcredit.web.app import create_app
from tests.status.helpers import PEOPLE, defaulter, setup_authorities, write_rulebook

A, B, C = PEOPLE


def _until(done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def _checked(proc: NoticeProcess) -> bool:
    proc.check()
    return True


def _replaced(proc: NoticeProcess, pid: int) -> bool:
    proc.check()
    return proc.pid != pid


def _kinds(led: Ledger, subject: str) -> set[str]:
    return {n["kind"] for n in list_notices(led.engine, subject=subject)}


def test_the_child_writes_the_notices_and_is_replaced_when_it_dies(
    reg: tuple[Ledger, StatusService],
) -> None:
    led, svc = reg
    proc = NoticeProcess(led.engine.url.render_as_string(hide_password=False), interval=0.1)
    proc.start()
    try:
        first = proc.pid
        assert first is not None and first != os.getpid()
        # the URL (a password, on PostgreSQL) goes over the pipe: arguments are public
        args = Path(f"/proc/{first}/cmdline").read_bytes().split(b"\0")
        assert b"socialcredit.cases.noticeproc" in args
        assert not any(str(led.engine.url.database).encode() in a for a in args)

        led.furnish("court-1", defaulter("d1", A, "2026-01-10"))
        svc.catch_up()
        _until(lambda: {"record-added", "listed"} <= _kinds(led, A))
        proc.check()
        assert proc.error is None and proc.pid == first

        os.kill(first, signal.SIGKILL)
        _until(lambda: _replaced(proc, first))  # at a round of the server's loop after its death
        second = proc.pid
        assert second is not None
        assert proc.error is not None and "stopped" in proc.error  # until the new one reports
        _until(lambda: _checked(proc) and proc.error is None)
        assert proc.pid == second

        led.furnish("court-1", defaulter("d2", B, "2026-01-11"))
        svc.catch_up()
        _until(lambda: "record-added" in _kinds(led, B))
    finally:
        proc.close()
    assert proc.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)  # stopped and reaped
    # exactly once each, whoever wrote them: a notifier run now finds nothing left to write
    notifier = Notifier(led)
    assert notifier.run().notices == 0
    assert notifier.watermarks()[LEDGER_STREAM] == led.head()[0]


def test_a_child_that_cannot_open_the_database_is_reported_and_retried_later(
    tmp_path: Path,
) -> None:
    """At the server's start it fails the start; later, the loop tries again without waiting
    for the child, says why there is none, and waits longer after each child that never got
    through a round."""
    proc = NoticeProcess(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    with pytest.raises(RuntimeError, match="could not open the database"):
        proc.start()
    assert proc.pid is None
    proc.check()  # the server's loop tries again
    tried = proc.pid
    assert tried is not None
    _until(lambda: _checked(proc) and proc.pid is None)  # that child stopped too
    assert proc.error is not None and "stopped (exit status 1)" in proc.error
    for _ in range(5):  # rounds of the loop within the second: not started again yet
        proc.check()
        assert proc.pid is None
    _until(lambda: _checked(proc) and proc.pid not in (None, tried), timeout=10)
    proc.close()


def test_a_server_with_the_notice_process_notices_outside_its_own_threads(
    clock: FixedClock, tmp_path: Path
) -> None:
    db = str(tmp_path / "api.db")
    with Ledger.open(db, clock=clock) as led:
        setup_authorities(led)
        StatusService(led).activate(write_rulebook(tmp_path / "rb"))
    app = create_app(db, clock, maintenance_interval=0.1, notice_process=True)
    with TestClient(app) as client:
        rt = app.state.rt
        assert rt.notice_process is not None and rt.notice_process.pid is not None
        ticked: list[bool] = []
        rt.notices.tick = lambda **_: ticked.append(True)  # the thread's notifier: never called
        rt.ledger.furnish("court-1", defaulter("d1", A, "2026-01-10"))
        rt.after_write()
        _until(lambda: "record-added" in _kinds(rt.ledger, A))
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["notices"] == "ok"
        pid = rt.notice_process.pid
    assert not ticked
    assert rt.notice_process.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_one_notifier_round_at_a_time(reg: tuple[Ledger, StatusService]) -> None:
    """Every worker ticks its notifier (in its notice process): while one is in a round, the
    others' ticks render nothing and write nothing; the next free tick takes up the work. The
    round is held here as another process's would be (an flock on the SQLite file's lock, a
    session advisory lock on PostgreSQL)."""
    led, svc = reg
    led.furnish("court-1", defaulter("d1", A, "2026-01-10"))
    svc.catch_up()
    other = NoticeService(led, lambda: svc.rulebooks)
    with sole_round(led.engine, "notices", NOTIFIER_ROUND_KEY) as mine:
        assert mine
        with sole_round(led.engine, "notices", NOTIFIER_ROUND_KEY) as again:
            assert not again  # the same lock, asked twice, is not given twice
        other.tick(wait=True)
        assert other.last_error is None
        assert _kinds(led, A) == set()  # another round holds it: this tick did nothing
    other.tick(wait=True)
    assert {"record-added", "listed"} <= _kinds(led, A)
