"""Live status: catch-up, sweep, rebuild, history, activation; decision ids; relying parties."""

from __future__ import annotations

import datetime as dt
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from socialcredit.clock import FixedClock
from socialcredit.decision_ids import decode_id, encode_id
from socialcredit.errors import InputError, NotFoundError
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import turn_file, write_turn
from socialcredit.status.decisions import (
    AUTOCHECKPOINT,
    Checkpoint,
    DecisionLog,
    count_decisions,
    project_decisions,
)
from socialcredit.status.index import EligibilityIndex
from socialcredit.status.parties import add_party, get_party
from socialcredit.status.schema import status_changes, status_history
from socialcredit.status.service import Report, StatusService
from tests.status.helpers import (
    PEOPLE,
    arrears,
    commendation,
    defaulter,
    performed,
    setup_authorities,
    turn_held_elsewhere,
    write_rulebook,
)

A, B, C = PEOPLE


@pytest.fixture
def svc(ledger: Ledger, tmp_path: Path) -> Iterator[StatusService]:
    setup_authorities(ledger)
    s = StatusService(ledger)
    s.activate(write_rulebook(tmp_path / "rb"))
    yield s


def measures(svc: StatusService, subject: str) -> set[str]:
    return {m["measure"] for row in svc.current(subject) for m in row["status"]["measures"]}


def test_catch_up_reflects_new_entries_and_moves_the_watermark(
    svc: StatusService, ledger: Ledger
) -> None:
    assert svc.lag() == 0
    out = ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    assert svc.lag() == 1
    report = svc.catch_up()
    assert (report.subjects, report.changed, report.watermark) == (1, 1, out.seq)
    assert svc.lag() == 0
    assert measures(svc, A) == {"travel.flights", "travel.g-trains"}
    assert svc.catch_up().subjects == 0  # idempotent, cheap when idle
    row = svc.current(A)[0]
    assert row["rulebook"] == "t-status@1" and row["ledger_seq"] == out.seq
    assert "as_of" not in row["status"] and row["evaluated_for"] == "2026-01-15"


def test_removal_correction_retraction_and_overturn_are_reflected(
    svc: StatusService, ledger: Ledger
) -> None:
    d = ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    ledger.furnish("court-1", defaulter("d2", B, "2025-06-01", case="C2"))
    svc.catch_up()
    assert measures(svc, A) and measures(svc, B)
    ledger.furnish("court-1", performed("p1", A, "2025-12-01"))
    svc.catch_up()
    assert measures(svc, A) == set()
    ledger.overturn("court-1", d.seq + 1, "o1", "appeal allowed")
    svc.catch_up()
    assert measures(svc, B) == set()
    # a correction that changes the ground to a fixed term, then a retraction
    c = ledger.furnish("court-1", defaulter("d3", C, "2025-12-01", case="C3"))
    svc.catch_up()
    fixed = ledger.correct(
        "court-1", c.seq, "c1", {"attributes": {"ground": "evades-enforcement"}}, "wrong ground"
    )
    svc.catch_up()
    [row] = svc.current(C)
    assert row["next_change"] == "2026-12-01"  # the grade cap ends before the term (12-08)
    assert row["status"]["memberships"][0]["until"] == "2026-12-08"
    ledger.retract("court-1", fixed.seq, "r1", "entered in error")
    svc.catch_up()
    assert measures(svc, C) == set()
    before = svc.snapshot()
    svc.rebuild()
    assert svc.snapshot() == before


def test_sweep_applies_grace_ends_and_restoration(
    svc: StatusService, ledger: Ledger, clock: FixedClock
) -> None:
    ledger.furnish("court-1", defaulter("d1", A, "2026-01-10", ground="obstructs-enforcement"))
    ledger.furnish("tax-1", arrears("t1", B, "2025-08-01"))
    svc.catch_up()
    assert measures(svc, A) == set()  # within its 7-day grace: pending, noticed, not enforced
    [row] = svc.current(A)
    assert row["status"]["pending"][0]["effective"] == "2026-01-17"
    assert row["next_change"] == "2026-01-17"
    clock.set("2026-01-17T00:00:01")
    assert svc.sweep().subjects == 1
    assert measures(svc, A) == {"travel.flights", "travel.g-trains"}
    clock.set("2027-01-18T00:00:00")
    svc.sweep()
    assert measures(svc, A) == set()  # the one-year term ended
    b = svc.current(B)[0]["status"]["schemes"][0]
    assert b["points"] == 100  # the arrears were restored after six months
    hist = svc.history(A)
    assert [h["from"] for h in hist] == ["2026-01-15", "2026-01-17", "2027-01-18"]
    before = svc.snapshot()
    svc.rebuild()
    assert svc.snapshot() == before


def test_grades_bind_sanctions_and_rewards(svc: StatusService, ledger: Ledger) -> None:
    for i in range(3):
        ledger.furnish("tax-1", arrears(f"t{i}", A, f"2025-12-0{i + 1}"))
    ledger.furnish("gov-1", commendation("h1", B, "2025-12-01"))
    svc.catch_up()
    assert measures(svc, A) == {"procurement.exclusion"}
    assert measures(svc, B) == {"inspection.reduced"}


def test_history_is_appended_only_on_change(svc: StatusService, ledger: Ledger) -> None:
    ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    svc.catch_up()
    ledger.furnish("gov-1", commendation("h1", A, "2025-06-02"))
    svc.catch_up()
    svc.rebuild()
    svc.rebuild()
    with ledger.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(status_history)).scalar()
        marks = conn.execute(sa.select(status_changes.c.subject)).scalars().all()
    assert n == 2  # listed; then the commendation raised the points
    assert None in marks  # rebuild tells API workers to reload everything


def test_index_follows_status_changes(svc: StatusService, ledger: Ledger) -> None:
    idx = EligibilityIndex(ledger.engine)
    idx.load()
    assert len(idx) == 0
    ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    svc.catch_up()
    assert idx.poll() == 1
    hit = idx.get(A, "travel.flights")
    assert hit is not None and hit.by == "list"
    assert hit.basis["memorandum"] == "m-defaulters" and hit.basis["via"] == "list:defaulters"
    assert hit.basis["legal_basis"] == "Test memorandum basis"
    ledger.furnish("court-1", performed("p1", A, "2025-07-01"))
    svc.catch_up()
    idx.poll()
    assert idx.get(A, "travel.flights") is None and A not in idx
    svc.rebuild()
    idx.poll()
    assert len(idx) == 0


def test_activation_refuses_historical_and_unknown_rulebooks(
    ledger: Ledger, tmp_path: Path
) -> None:
    svc = StatusService(ledger)
    with pytest.raises(InputError) as e:
        svc.activate("cn-js-suining-2010")
    assert e.value.problems[0].rule == "historical"
    with pytest.raises(InputError):
        svc.activate(tmp_path / "nowhere")
    with pytest.raises(NotFoundError):
        svc.deactivate("cn-national")


def test_deactivation_lifts_measures(svc: StatusService, ledger: Ledger) -> None:
    ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    svc.catch_up()
    svc.deactivate("t-status")
    assert svc.current(A) == [] and svc.rulebooks == []
    assert StatusService(ledger).rulebooks == []


def test_a_second_service_sees_the_activation(svc: StatusService, ledger: Ledger) -> None:
    other = StatusService(ledger)
    assert [rb.ref for rb in other.rulebooks] == ["t-status@1"]
    ledger.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    other.catch_up()
    assert svc.catch_up().subjects == 0
    assert measures(svc, A)


def test_decision_ids_sort_and_round_trip(ledger: Ledger, clock: FixedClock) -> None:
    log = DecisionLog(ledger.engine).start()
    at = clock.now().replace(tzinfo=None)
    row = (at, "p", "k", "why", A, "travel.flights", "allow", "no-restriction", None, "")
    try:
        first = log.write([row] * 3)
        second = log.write([row])
    finally:
        log.close()
    ids = [*first, *second]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert ids[0] >> 20 == int(at.replace(tzinfo=dt.UTC).timestamp() * 1000)
    texts = [encode_id(i) for i in ids]
    assert texts == sorted(texts) and all(len(t) == 13 for t in texts)
    assert [decode_id(t) for t in texts] == ids
    assert decode_id(texts[0].lower()) == ids[0]
    with pytest.raises(ValueError):
        decode_id("not-an-id")
    assert count_decisions(ledger.engine) == 4


def test_decision_logs_on_one_sqlite_file_commit_in_turns(
    tmp_path: Path, clock: FixedClock
) -> None:
    """Each API worker has its own log; on SQLite they wait for one another on an operating
    system lock (woken as soon as it is let go) rather than in SQLite's sleeping busy handler.
    A log whose turn is held by another waits, then commits; the ids of all stay distinct.
    (PostgreSQL orders the logs' commits with an advisory lock.)"""
    with Ledger.open(str(tmp_path / "turns.db"), clock=clock) as ledger:
        at = clock.now().replace(tzinfo=None)
        row = (at, "p", "k", "why", A, "travel.flights", "allow", "no-restriction", None, "")
        one, two = DecisionLog(ledger.engine).start(), DecisionLog(ledger.engine).start()
        try:
            first = one.write([row] * 2)
            with turn_held_elsewhere(ledger.engine) as release:  # another process's log commits
                waiting = two.submit([row] * 3)
                time.sleep(0.3)
                assert not waiting.done()
                release()
                second = list(waiting.result(10))
            third = one.write([row])
        finally:
            one.close()
            two.close()
        ids = [*first, *second, *third]
        assert len(set(ids)) == 6 and ids == sorted(ids)
        assert count_decisions(ledger.engine) == 6


def _waits_for_the_turn(engine: sa.Engine, write: Callable[[], object]) -> object:
    """Run ``write`` in a thread while another holder has the turn: it must wait, then finish."""
    out: list[object] = []
    with turn_held_elsewhere(engine) as release:
        worker = threading.Thread(target=lambda: out.append(write()))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive() and not out
        release()
        worker.join(10)
    assert out
    return out[0]


def test_every_writer_of_a_sqlite_file_takes_its_turn(tmp_path: Path, clock: FixedClock) -> None:
    """A record furnished, the status catching up, a projection of the decision log: each waits
    for the turn the decision logs take (woken at once when it is let go, where SQLite's busy
    handler sleeps), and a write inside a write of the same thread goes on. (PostgreSQL orders
    its writers with advisory locks.)"""
    with Ledger.open(str(tmp_path / "turns.db"), clock=clock) as ledger:
        setup_authorities(ledger)
        svc = StatusService(ledger)
        svc.activate(write_rulebook(tmp_path / "rb"))
        assert str(turn_file(ledger.engine)).endswith("turns.db-writes.lock")
        stored = _waits_for_the_turn(
            ledger.engine, lambda: ledger.furnish("court-1", defaulter("d1", A, "2025-06-01")).seq
        )
        report = _waits_for_the_turn(ledger.engine, svc.catch_up)
        assert isinstance(report, Report) and report.watermark == stored
        at = clock.now().replace(tzinfo=None)
        row = (at, "p", "k", "why", A, "travel.flights", "deny", "restricted-by-list", None, "")
        DecisionLog(ledger.engine).write([row] * 3)
        assert _waits_for_the_turn(ledger.engine, lambda: project_decisions(ledger.engine)) == 3
        with write_turn(ledger.engine), write_turn(ledger.engine):  # nested: no wait for itself
            assert count_decisions(ledger.engine) == 3


def test_a_checkpoint_lets_the_wal_start_over_though_commits_go_on(
    tmp_path: Path, clock: FixedClock
) -> None:
    """The decision log's checkpoint copies the WAL while writers go on, then what they committed
    meanwhile during a write turn, so the next commit writes the WAL from its start: here a
    commit lands while the checkpoint waits for the turn, and is copied too. (A checkpoint that
    never caught up with a steady flow of commits let the WAL grow by every byte committed.)"""
    with Ledger.open(str(tmp_path / "wal.db"), clock=clock) as ledger:
        log = DecisionLog(ledger.engine, checkpoints_elsewhere=True)
        at = clock.now().replace(tzinfo=None)
        row = (at, "p", "k", "why", A, "travel.flights", "allow", "no-restriction", None, "")
        for _ in range(20):
            log.write([row] * 50)
        path = str(ledger.engine.url.database)

        def commit_meanwhile() -> None:  # a writer that holds the turn elsewhere
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("PRAGMA wal_autocheckpoint=0")
            other.execute("CREATE TABLE meanwhile (x)")
            other.close()

        done: list[Checkpoint | None] = []
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")  # a read under way: the commit below cannot start the WAL over
        reader.execute("SELECT count(*) FROM decision_requests").fetchall()
        with turn_held_elsewhere(ledger.engine) as release:
            worker = threading.Thread(target=lambda: done.append(log.checkpoint()))
            worker.start()
            worker.join(0.3)
            assert worker.is_alive()  # the first passes are done; it waits for the turn
            before = _wal_frames(path)
            commit_meanwhile()
            grown = _wal_frames(path)
            reader.execute("COMMIT")
            reader.close()
            release()
            worker.join(10)
        [found] = done
        assert found is not None and found.done and found.tail == grown > before > 0
        log.write([row])  # starts the WAL over
        assert _wal_frames(path) < before
        log.close()


def test_a_server_projection_leaves_the_checkpoints_to_the_servers_loop(
    tmp_path: Path, clock: FixedClock
) -> None:
    """A projection committed with ``checkpoints_elsewhere`` never copies the WAL itself, however
    large the WAL (a checkpoint in its commit would run while it holds the write turn), and hands
    the pool its connection as it found it; without, SQLite checkpoints past 1,000 pages."""
    with Ledger.open(str(tmp_path / "proj.db"), clock=clock) as ledger:
        at = clock.now().replace(tzinfo=None)
        row = (at, "p", "k", "why", A, "travel.flights", "allow", "no-restriction", None, "")
        log = DecisionLog(ledger.engine, checkpoints_elsewhere=True)
        for _ in range(60):
            log.write([row] * 1000)
        log.checkpoint()  # what the server's loop does: the WAL starts over at the next commit
        path = str(ledger.engine.url.database)
        projected = project_decisions(
            ledger.engine, max_rows=10_000, rounds=4, checkpoints_elsewhere=True
        )
        assert projected == 40_000
        assert _wal_frames(path) > AUTOCHECKPOINT and _wal_backfilled(path) == 0
        with ledger.engine.connect() as conn:  # the pool's connections checkpoint as before
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == AUTOCHECKPOINT
        assert project_decisions(ledger.engine, max_rows=10_000, rounds=1) == 10_000
        assert _wal_backfilled(path) > 0
        log.close()


def _wal_frames(path: str) -> int:
    """Frames in the WAL of the SQLite file at ``path`` (``mxFrame`` of the WAL index header)."""
    return _wal_index(path)[0]


def _wal_backfilled(path: str) -> int:
    """Frames of the WAL copied into the database since it started over (``nBackfill``)."""
    return _wal_index(path)[1]


def _wal_index(path: str) -> tuple[int, int]:
    """``mxFrame`` and ``nBackfill`` from the start of the ``-shm`` file: the WAL index header
    (its first copy) and the checkpoint information after the two copies. Read without a
    connection, which could checkpoint."""
    with open(path + "-shm", "rb") as shm:
        head = shm.read(100)
    return struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]


def test_relying_parties_are_checked_against_the_catalogue(
    ledger: Ledger, clock: FixedClock
) -> None:
    now = clock.now()
    p = add_party(ledger.engine, ledger.catalogue, now, "air-1", "Air", "airline")
    assert p.domains == {"travel"}
    p = add_party(
        ledger.engine, ledger.catalogue, now, "ta-1", "Agency", "travel-agency", ["travel"]
    )
    assert get_party(ledger.engine, "ta-1").domains == {"travel"}
    with pytest.raises(InputError) as e:
        add_party(ledger.engine, ledger.catalogue, now, "air-2", "Air", "airline", ["finance"])
    assert e.value.problems[0].rule == "not-in-type"
    with pytest.raises(InputError) as e:
        add_party(ledger.engine, ledger.catalogue, now, "bad id!", "", "spaceline")
    assert {p.rule for p in e.value.problems} == {
        "format",
        "required",
        "unknown-relying-party-type",
    }
