"""A notifier process killed at an arbitrary moment loses nothing and repeats nothing."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from socialcredit.cases.notices import Notifier
from socialcredit.cases.notices_schema import notices
from socialcredit.clock import FixedClock
from socialcredit.ids import random_rid
from socialcredit.ledger import Ledger, write_transaction
from socialcredit.ledger.schema import entries
from socialcredit.status.service import StatusService
from tests.status.helpers import late, setup_authorities, write_rulebook

# what `socialcredit notices run --batch 10` does, without importing every CLI command group
_NOTIFIER = (
    "import sys; from socialcredit.ledger import Ledger; "
    "from socialcredit.cases.notices import Notifier; "
    "Notifier(Ledger.open(sys.argv[1]), batch=10).run()"
)


def _count(led: Ledger) -> int:
    with led.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(notices)).scalar() or 0)


@pytest.mark.slow  # a fresh interpreter imports SQLAlchemy and Alembic: seconds on a busy machine
def test_killed_notifier_process_leaves_each_notice_exactly_once(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = str(tmp_path / "ledger.db")
    rng = random.Random(5)
    with Ledger.open(db, clock=clock) as led:
        setup_authorities(led)
        StatusService(led).activate(write_rulebook(tmp_path / "rb"))
        validator = led.validator("water-1")
        drafts = []
        for i in range(300):
            draft, problems = validator.validate(
                late(f"w{i}", f"cn-rid:{random_rid(rng)}", "2026-01-02")
            )
            assert draft is not None, problems
            drafts.append(draft)
        with write_transaction(led.engine) as conn:
            led.append(conn, drafts)
        StatusService(led).catch_up()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialcredit.cli.main",
                "--db",
                db,
                "notices",
                "run",
                "--batch=10",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while _count(led) == 0 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.kill()  # SIGKILL: no cleanup, whatever the process was doing
        proc.wait(30)
        partial = _count(led)
        assert partial > 0
        print(f"killed after {partial} of 300 notices")
        Notifier(led).run()  # a new notifier finishes the work
        Notifier(led).run()
        with led.engine.connect() as conn:
            furnished = {
                s
                for (s,) in conn.execute(sa.select(entries.c.seq).where(entries.c.op == "furnish"))
            }
            rows = conn.execute(
                sa.select(notices.c.kind, notices.c.source_seq, notices.c.dedupe_key)
            ).all()
        added = Counter(r.source_seq for r in rows if r.kind == "record-added")
        assert set(added) == furnished and set(added.values()) == {1}
        assert len({r.dedupe_key for r in rows}) == len(rows)
