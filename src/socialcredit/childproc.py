"""What a server worker's child processes (the decision log's writer, the notice process) do
first: ``python -m socialcredit.status.logwriter`` and ``python -m socialcredit.cases.noticeproc``.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import IO


def child_stdio() -> IO[bytes]:
    """Make this process a worker's child; returns the stream its answers go to (stdout).

    The worker stops its children by closing their stdin, after the last batch or round: a
    Ctrl-C or a service manager's SIGTERM, sent to the whole process group, must not cut that
    short, so both are ignored. Anything printed goes to stderr, never into the answers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING)
    return out
