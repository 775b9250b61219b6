"""The notifier in a process of its own (what ``socialcredit serve`` runs).

Every record furnished and every status change is noticed (``socialcredit.cases.notices``): the
notifier reads what is new, renders each notice (evaluating the subject's rulebooks as of the
event) and writes it. That costs ~1.5-2 ms of interpreter time a record. Run in a thread of a
server, once a second, it took the interpreter lock from the event loop and from the request that
furnished the next record: with ~80 records a second, a record's write-to-visible p99 was 49-67 ms
with the notifier in a thread of the server, against 23-38 ms with it here. Here it runs in a child
process with an interpreter of its own, on the same database, with the same notifier and delivery
pump (:class:`~socialcredit.cases.notices.NoticeService`), once per ``interval``.

The server sends one line, the settings as JSON (the database URL is not in the child's arguments,
which every user of the machine can read); the child answers ``ready`` once it has opened the
database, then one line of JSON after each round: ``{"error": null}`` or the notifier's error. It
stops when the server closes its stdin, after the round under way (a Ctrl-C or a SIGTERM to the
process group does not cut a round short). A child that dies is replaced at the server's next
:meth:`NoticeProcess.check` (without waiting for it, and later each time if it keeps stopping
before its first round); the notifier's watermarks make a round that was cut short safe to run
again (each notice is written exactly once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import time

from socialcredit.childproc import child_stdio

log = logging.getLogger(__name__)
START_TIMEOUT = 60.0  # seconds for a child to open the database and say it is ready
RETRY_FIRST = 1.0  # seconds before starting again a child that stopped before its first round
RETRY_MAX = 60.0  # ... doubling each time up to this


class NoticeProcess:
    """The server's side: the child that writes and delivers notices for the database at ``url``.
    Not thread-safe: one thread (the server's background loop) calls :meth:`check`."""

    def __init__(self, url: str, interval: float = 1.0):
        self.url = url
        self.interval = interval
        self.error: str | None = None  # why notices are not being written, if they are not
        self._proc: subprocess.Popen[bytes] | None = None
        self._partial = b""
        self._reported = False  # the child has finished a round
        self._backoff = RETRY_FIRST
        self._retry_at = 0.0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child and wait until it has opened the database (raises if it cannot): the
        server's start fails rather than run without notices."""
        proc = self._spawn()
        assert proc.stdout is not None
        try:
            if not select.select([proc.stdout], [], [], START_TIMEOUT)[0]:
                raise RuntimeError("the notice process did not start in time")
            if proc.stdout.readline() != b"ready\n":
                raise RuntimeError("the notice process could not open the database")
        except BaseException:
            _stop(proc, 0)
            raise
        self._adopt(proc)
        self.error = None

    def check(self) -> None:
        """Read the child's reports; start a new child if it has stopped (the server's
        background loop calls this instead of running the notifier itself). A new child is not
        waited for, so the loop goes on with its other work; one that stops before its first
        round is tried again after 1, 2, 4 ... 60 seconds, not at every round."""
        proc = self._proc
        if proc is not None:
            self._read(proc)
            code = proc.poll()
            if code is None:
                return
            self._proc = None
            _stop(proc, 0)
            self.error = f"the notice process stopped (exit status {code})"
            log.error("%s; starting another", self.error)
            self._retry_later(again=not self._reported)
        if time.monotonic() < self._retry_at:
            return
        try:
            self._adopt(self._spawn())
        except Exception as e:
            self.error = f"the notice process could not start ({type(e).__name__}: {e})"
            log.exception("notice process")
            self._retry_later(again=True)

    def _retry_later(self, *, again: bool) -> None:
        """After a child that worked, a new one at once; after one that never did, wait longer
        each time."""
        if again:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, RETRY_MAX)
        else:
            self._retry_at = 0.0
            self._backoff = RETRY_FIRST

    def _spawn(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "socialcredit.cases.noticeproc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None
        try:
            setup = {"url": self.url, "interval": self.interval}
            proc.stdin.write(json.dumps(setup).encode() + b"\n")
            proc.stdin.flush()
        except BaseException:
            _stop(proc, 0)
            raise
        return proc

    def _adopt(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        self._proc = proc
        self._partial = b""
        self._reported = False

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """The child's reports since the last call: the last one says whether it fails (its
        ``ready`` line is not a report)."""
        assert proc.stdout is not None
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := proc.stdout.read(65536):
                data += chunk
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError, AttributeError):
                self.error = json.loads(line).get("error")
                self._reported = True

    def close(self, timeout: float = 10.0) -> None:
        """Let the child finish its round and stop (killed after ``timeout`` seconds)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc, timeout)


def _stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


# ---------------------------------------------------------------------- the child


def main() -> int:
    """``python -m socialcredit.cases.noticeproc``: read the settings line, then notice and
    deliver once per interval until stdin ends."""
    out = child_stdio()  # stopped by the end of stdin, not by a signal to the group
    fd = sys.stdin.fileno()
    line = b""
    while not line.endswith(b"\n"):  # unbuffered: select must see whatever is unread
        part = os.read(fd, 1)
        if not part:
            return 1
        line += part
    setup = json.loads(line)
    from socialcredit.cases.notices import NoticeService
    from socialcredit.ledger import Ledger
    from socialcredit.status.service import StatusService

    with Ledger.open(setup["url"], create=False) as ledger:
        status = StatusService(ledger)
        notices = NoticeService(ledger, lambda: status.rulebooks)
        out.write(b"ready\n")
        out.flush()
        try:
            while True:
                error: str | None = None
                try:
                    status.refresh_rulebooks()  # an activation in any process
                except Exception as e:
                    error = f"rulebooks: {type(e).__name__}: {e}"
                    log.exception("notice process: rulebooks")
                notices.tick()  # notices due, then the delivery pump (its own thread)
                out.write(json.dumps({"error": error or notices.last_error}).encode() + b"\n")
                out.flush()
                if select.select([fd], [], [], setup["interval"])[0] and not os.read(fd, 4096):
                    return 0  # the server closed the pipe
        finally:
            notices.close()


if __name__ == "__main__":
    sys.exit(main())
