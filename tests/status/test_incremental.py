"""Property: any sequence of writes, catch-ups and sweeps with the clock moving on leaves the
materialised status and the measure index exactly as a rebuild from the ledger computes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.clock import FixedClock
from socialcredit.errors import InputError
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService
from tests.status.helpers import (
    PEOPLE,
    arrears,
    commendation,
    defaulter,
    late,
    performed,
    setup_authorities,
    wipe,
    write_rulebook,
)

START = "2026-01-15T09:30:00"
GROUNDS = ("able-but-refuses", "obstructs-enforcement", "evades-enforcement")
FURNISHERS = {
    "defaulter": "court-1",
    "performed": "court-1",
    "late": "water-1",
    "arrears": "tax-1",
    "commendation": "gov-1",
}

furnish = st.tuples(
    st.just("furnish"),
    st.sampled_from(sorted(FURNISHERS)),
    st.integers(0, len(PEOPLE) - 1),
    st.integers(0, 400),  # days before today
    st.sampled_from(GROUNDS),
    st.sampled_from(("C1", "C2")),
    st.booleans(),  # catch up right after (as the API's write path does)
)
action = st.one_of(
    st.tuples(
        st.just("correct"), st.integers(0, 30), st.integers(0, 400), st.sampled_from(GROUNDS)
    ),
    st.tuples(st.just("retract"), st.integers(0, 30)),
    st.tuples(st.just("overturn"), st.integers(0, 30)),
    st.tuples(st.just("advance"), st.integers(1, 400)),
    st.tuples(st.just("advance"), st.integers(1, 400)),
    st.tuples(st.just("catch_up")),
    st.tuples(st.just("none")),
)
# every round furnishes a record, then does one other thing
ops = st.lists(st.tuples(furnish, action), min_size=2, max_size=10).map(
    lambda rounds: [step for pair in rounds for step in pair]
)


def _row(kind: str, ref: str, subject: str, day: str, ground: str, case: str) -> dict[str, Any]:
    if kind == "defaulter":
        return defaulter(ref, subject, day, ground=ground, case=case)
    if kind == "performed":
        return performed(ref, subject, day, case=case)
    if kind == "late":
        return late(ref, subject, day)
    if kind == "arrears":
        return arrears(ref, subject, day)
    return commendation(ref, subject, day)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_incremental_status_equals_rebuild(
    ledger: Ledger, clock: FixedClock, tmp_path: Path, steps: list[tuple[Any, ...]]
) -> None:
    clock.set(START)
    wipe(ledger)
    setup_authorities(ledger)
    svc = StatusService(ledger)
    svc.activate(write_rulebook(tmp_path / "rb"), lint=False)
    live: list[tuple[int, str, str]] = []  # (current seq, furnisher, kind) of each lineage
    for n, step in enumerate(steps, 1):
        op = step[0]
        today = clock.now().date()
        if op == "furnish":
            _, kind, who, days, ground, case, then_catch_up = step
            day = (today - dt.timedelta(days=days)).isoformat()
            out = ledger.furnish(
                FURNISHERS[kind], _row(kind, f"r{n}", PEOPLE[who], day, ground, case)
            )
            live.append((out.seq, FURNISHERS[kind], kind))
            if then_catch_up:
                svc.catch_up()
        elif op in ("correct", "retract", "overturn") and live:
            i = step[1] % len(live)
            seq, authority, kind = live[i]
            try:
                if op == "correct":
                    day = (today - dt.timedelta(days=step[2])).isoformat()
                    changes: dict[str, Any] = {"decision_date": day}
                    if kind == "defaulter":
                        changes["attributes"] = {"ground": step[3]}
                    out = ledger.correct(authority, seq, f"c{n}", changes, "correction")
                    live[i] = (out.seq, authority, kind)
                elif op == "retract":
                    ledger.retract(authority, seq, f"x{n}", "retracted")
                    live.pop(i)
                else:
                    ledger.overturn("court-1", seq, f"o{n}", "overturned on appeal")
                    live.pop(i)
            except InputError:
                pass
        elif op == "advance":
            clock.advance(days=step[1])
            svc.sweep()
        elif op == "catch_up":
            svc.catch_up()
    svc.catch_up()
    svc.sweep()
    incremental = svc.snapshot()
    svc.rebuild()
    assert svc.snapshot() == incremental
