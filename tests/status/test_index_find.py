"""``EligibilityIndex.find`` with a scan (a sorted array of subject codes searched for a whole
batch) answers exactly as looking every key up in the map does, whatever the index went through:
subjects entering and leaving, a full reload, and the codes added since the array was sorted
being merged into it (RECENT is lowered so that happens within a few steps). The index is fed the
way the status service feeds it: rows in ``measure_index`` and marks in ``status_changes``, in a
real database."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit import ids
from socialcredit.ids.bulk import scan
from socialcredit.ledger import Ledger
from socialcredit.status import index as index_module
from socialcredit.status.index import EligibilityIndex
from socialcredit.status.schema import measure_index, status_changes

RNG = random.Random(11)
PEOPLE = [f"cn-rid:{ids.random_rid(RNG)}" for _ in range(40)]
ORGS = ["cn-uscc:91350100M000100Y43", "cn-uscc:9111000071093123XY"]
SUBJECTS = PEOPLE + ORGS
MEASURES = ("travel.flights", "finance.loans")
AT = dt.datetime(2026, 1, 15, 9, 30)

# one step: ("set", subject index, measures held) | ("reload",)
step = st.one_of(
    st.tuples(
        st.just("set"),
        st.integers(0, len(SUBJECTS) - 1),
        st.sets(st.sampled_from(MEASURES)),
    ),
    st.just(("reload",)),
)


@pytest.fixture(scope="module")
def led(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with Ledger.open(str(Path(tmp_path_factory.mktemp("find")) / "ledger.db")) as opened:
        yield opened


def put(led: Ledger, seq: int, subject: str | None, held: set[str]) -> None:
    with led.engine.begin() as conn:
        if subject is not None:
            conn.execute(measure_index.delete().where(measure_index.c.subject == subject))
            for m in sorted(held):
                conn.execute(
                    measure_index.insert().values(
                        subject=subject,
                        rulebook_id="t",
                        measure=m,
                        memorandum="memo",
                        via="list:l",
                        rulebook_ref="t@1",
                        domain=m.split(".")[0],
                        basis='{"legal_basis": "basis", "records": [1]}',
                        since=AT.date(),
                    )
                )
        conn.execute(status_changes.insert().values(change_seq=seq, subject=subject, at=AT))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=25), picks=st.lists(st.integers(0, 10**6)))
def test_find_with_a_scan_answers_as_the_map_does(
    led: Ledger, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[Any, ...]], picks: list[int]
) -> None:
    monkeypatch.setattr(index_module, "RECENT", 3)
    with led.engine.begin() as conn:
        conn.execute(measure_index.delete())
        conn.execute(status_changes.delete())
    idx = EligibilityIndex(led.engine)
    idx.load()
    held: dict[str, set[str]] = {}
    # a batch: every subject, in and out of the index, two keys no index holds, and a non-key
    batch = [*SUBJECTS, f"cn-rid:{ids.random_rid(random.Random(99))}", "cn-uscc:X", ""]
    batch += [SUBJECTS[p % len(SUBJECTS)] for p in picks]  # repeats
    for seq, s in enumerate(steps, start=1):
        if s[0] == "reload":
            put(led, seq, None, set())
        else:
            subject = SUBJECTS[s[1]]
            put(led, seq, subject, s[2])
            held[subject] = s[2]
        idx.poll()
        for m in MEASURES:
            expected = [(i, k) for i, k in enumerate(batch) if m in held.get(k, set())]
            by_map = [(i, batch[i]) for i, _ in idx.find(batch, m)]
            by_scan = [(i, batch[i]) for i, _ in idx.find(batch, m, scan(batch))]
            assert by_map == expected
            assert by_scan == expected
    idx.close()


def test_codes_of_subjects_that_left_change_no_answer(led: Ledger) -> None:
    with led.engine.begin() as conn:
        conn.execute(measure_index.delete())
        conn.execute(status_changes.delete())
    put(led, 1, PEOPLE[0], {"travel.flights"})
    idx = EligibilityIndex(led.engine)
    idx.load()
    batch = [PEOPLE[0], PEOPLE[1]]
    assert [i for i, _ in idx.find(batch, "travel.flights", scan(batch))] == [0]
    put(led, 2, PEOPLE[0], set())  # leaves the index; its code stays in the sorted array
    idx.poll()
    assert idx.find(batch, "travel.flights", scan(batch)) == []
    put(led, 3, PEOPLE[1], {"travel.flights"})  # enters: its code is among the recent ones
    idx.poll()
    assert [i for i, _ in idx.find(batch, "travel.flights", scan(batch))] == [1]
    idx.close()
