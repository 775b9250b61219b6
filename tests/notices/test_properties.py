"""Property: whatever the interleaving of writes, status catch-ups, sweeps and notifier runs (with
any batch size), every ledger event about a subject is noticed exactly once, and the status stream
is read to its end exactly once."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.cases.notices import RECORD_EVENTS, Notifier
from socialcredit.cases.notices_schema import notices
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.ledger.schema import entries
from socialcredit.status.schema import status_history
from socialcredit.status.service import StatusService
from tests.status.helpers import PEOPLE, defaulter, late, setup_authorities, write_rulebook

STEP = st.one_of(
    st.tuples(st.just("furnish"), st.integers(0, 2), st.sampled_from(["late", "defaulter"])),
    st.tuples(st.just("correct"), st.integers(0, 50), st.just("")),
    st.tuples(st.just("retract"), st.integers(0, 50), st.just("")),
    st.tuples(st.just("catch-up"), st.just(0), st.just("")),
    st.tuples(st.just("day"), st.integers(1, 12), st.just("")),
    st.tuples(st.just("notify"), st.integers(1, 7), st.just("")),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(STEP, min_size=1, max_size=14))
def test_each_event_is_noticed_exactly_once(steps: list[tuple[str, int, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = FixedClock("2026-01-15T09:30:00")
        with Ledger.open(str(Path(tmp) / "l.db"), clock=clock) as led:
            setup_authorities(led)
            svc = StatusService(led)
            svc.activate(write_rulebook(Path(tmp) / "rb"))
            records: list[tuple[str, int]] = []  # (authority, current seq)
            for n, (op, k, what) in enumerate(steps, 1):
                if op == "furnish":
                    if what == "late":
                        out = led.furnish("water-1", late(f"w{n}", PEOPLE[k], "2026-01-02"))
                        records.append(("water-1", out.seq))
                    else:
                        row = defaulter(f"d{n}", PEOPLE[k], "2026-01-10", "obstructs-enforcement")
                        records.append(("court-1", led.furnish("court-1", row).seq))
                elif op in ("correct", "retract") and records:
                    i = k % len(records)
                    who, seq = records.pop(i)
                    if op == "correct":
                        out = led.correct(who, seq, f"c{n}", {"decision_no": f"X-{n}"}, "typo")
                        records.append((who, out.seq))
                    else:
                        led.retract(who, seq, f"r{n}", "entered in error")
                elif op == "catch-up":
                    svc.catch_up()
                elif op == "day":
                    clock.advance(days=k)
                    svc.sweep()
                elif op == "notify":
                    Notifier(led, batch=k).run(max_batches=k)
            svc.catch_up()
            Notifier(led, batch=5).run()
            with led.engine.connect() as conn:
                events = {
                    s
                    for (s,) in conn.execute(
                        sa.select(entries.c.seq).where(entries.c.op.in_(list(RECORD_EVENTS)))
                    )
                }
                rows = conn.execute(
                    sa.select(notices.c.kind, notices.c.source_seq, notices.c.dedupe_key)
                ).all()
                history = conn.execute(sa.select(sa.func.max(status_history.c.id))).scalar()
            per_event = Counter(r.source_seq for r in rows if r.kind in RECORD_EVENTS.values())
            assert set(per_event) == events and set(per_event.values()) <= {1}
            assert len({r.dedupe_key for r in rows}) == len(rows)
            assert Notifier(led).watermarks() == {"ledger": led.head()[0], "status": history or 0}
