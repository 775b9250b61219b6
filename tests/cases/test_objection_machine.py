"""A Hypothesis state machine over the objection lifecycle against a real SQLite ledger.

A simple model (open?, deadline, suspended?, record ended?) must agree with the ledger's record
view, the live status's measure index, and the cases projection (which must equal a rebuild).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from socialcredit.cases import objections as obj
from socialcredit.cases.actions import cases_snapshot, rebuild_cases
from socialcredit.cases.sweep import sweep
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.rulebooks.loader import load_calendar
from socialcredit.status.service import StatusService
from tests.cases.helpers import SUBJ, World, defaulter, setup_authorities, write_rulebook

CN = load_calendar("cn")


class ObjectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp())
        clock = FixedClock("2026-03-30T09:00:00")
        led = Ledger.open(str(self.dir / "m.db"), clock=clock)
        setup_authorities(led)
        status = StatusService(led)
        status.activate(write_rulebook(self.dir / "rb"))
        self.w = World(led, status, clock)
        self.record = self.w.furnish("court-1", defaulter("d1", SUBJ, "2026-03-01"))
        self.case: int | None = None
        self.deadline: dt.date | None = None
        self.suspended = False
        self.ended = False
        self.answers = 0

    def today(self) -> dt.date:
        return self.w.clock.now().date()

    @precondition(lambda self: self.case is None and not self.ended)
    @rule()
    def object(self) -> None:
        current = self.w.ledger.subject_records(SUBJ)[0].record_id
        c = obj.open_objection(self.w.ledger, self.w.books, SUBJ, current, "wrong")
        self.case = c["case_id"]
        self.deadline = CN.add_working_days(self.today(), 5)
        assert c["deadline"] == self.deadline

    @rule(days=st.integers(1, 4))
    def advance(self, days: int) -> None:
        self.w.clock.advance(days=days)

    @rule()
    def run_sweep(self) -> None:
        report = sweep(self.w.status)
        due = self.case is not None and self.deadline is not None and self.today() > self.deadline
        if due and not self.suspended:
            assert report.suspended == [self.case]
            self.suspended = True
        else:
            assert report.suspended == []

    @precondition(lambda self: self.case is not None)
    @rule(outcome=st.sampled_from(["confirm", "correct", "retract"]))
    def answer(self, outcome: str) -> None:
        assert self.case is not None and self.deadline is not None
        self.answers += 1
        changes = {"attr.case_no": f"C-{self.answers}"} if outcome == "correct" else None
        out = obj.answer_objection(
            self.w.ledger, self.case, "court-1", outcome, "answer", changes=changes
        )
        assert out["late"] == (self.today() > self.deadline)
        self.case = None
        self.suspended = False
        self.ended = outcome == "retract"
        self.w.status.catch_up()

    @invariant()
    def agrees(self) -> None:
        self.w.status.catch_up()
        view = self.w.ledger.subject_records(SUBJ)[0]
        assert view.suspended == self.suspended
        if not self.ended:
            assert view.disputed == (self.case is not None)
        assert (view.state != "active") == self.ended
        listed = not self.ended and not self.suspended
        assert ("travel.flights" in self.w.measures(SUBJ)) == listed

    def teardown(self) -> None:
        try:
            before = cases_snapshot(self.w.ledger.engine)
            rebuild_cases(self.w.ledger)
            assert cases_snapshot(self.w.ledger.engine) == before
            assert self.w.ledger.verify().ok
        finally:
            self.w.ledger.close()
            shutil.rmtree(self.dir, ignore_errors=True)


ObjectionMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=10, deadline=None
)
TestObjectionLifecycle = pytest.mark.slow(ObjectionMachine.TestCase)
