"""A kill at any moment of an import leaves the ledger consistent; a re-run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import PIPELINE_MIN_BYTES
from socialcredit.ledger.schema import entries, imports

from .helpers import setup_authorities
from .test_import import HEADER, _rows, write_csv

N = 40_000


def _state(ledger: Ledger) -> tuple[int, int, int]:
    with ledger.engine.connect() as conn:
        stored = conn.execute(
            sa.select(sa.func.count()).select_from(entries).where(entries.c.op == "furnish")
        )
        furnished = int(stored.scalar_one())
        row = conn.execute(sa.select(imports.c.last_row, imports.c.rows_stored)).first()
    return furnished, (int(row[0]) if row else 0), (int(row[1]) if row else 0)


@pytest.mark.parametrize(
    "pipelined",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["inline", "pipelined"],
)
def test_kill_mid_import_then_rerun(
    ledger: Ledger, db_url: str, tmp_path: Path, pipelined: bool
) -> None:
    """Inline, and with the forked validating processes (a file above PIPELINE_MIN_BYTES)."""
    setup_authorities(ledger)
    rows = _rows(N)
    header = HEADER
    if pipelined:  # the same records with a long name each: a file large enough to pipeline
        header = [*HEADER, "subject_name"]
        rows = [[*r, f"Subject {i:06d} " + "x" * 80] for i, r in enumerate(rows)]
    f = write_csv(tmp_path / "big.csv", rows, header=header)
    assert (f.stat().st_size >= PIPELINE_MIN_BYTES) == pipelined
    cmd = [
        sys.executable,
        "-m",
        "socialcredit.cli.main",
        "--db",
        db_url,
        "records",
        "import",
        str(f),
        "--authority",
        "water-1",
        "--batch-size",
        "700",
    ]
    env = {**os.environ, "SOCIALCREDIT_DB": db_url}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if _state(ledger)[0] >= 3 * 700:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    furnished, last_row, rows_stored = _state(ledger)
    assert 0 < furnished < N, "the kill should land mid-import"
    # every committed batch carries its checkpoint: nothing half-written
    assert furnished == rows_stored == last_row - 1  # row numbers count the CSV header line
    assert ledger.verify().ok
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resumed after row" in done.stdout
    furnished, last_row, _ = _state(ledger)
    assert furnished == N and last_row == N + 1
    with ledger.engine.connect() as conn:
        distinct = conn.execute(
            sa.select(sa.func.count(sa.distinct(entries.c.authority_ref))).where(
                entries.c.op == "furnish"
            )
        ).scalar_one()
    assert distinct == N
    assert ledger.verify().ok
