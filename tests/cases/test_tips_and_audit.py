"""Tips never change a status; actions are in the chain, filterable, and tamper-evident."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from socialcredit.cases import tips
from socialcredit.cases.actions import list_actions
from socialcredit.errors import ConflictError
from socialcredit.ledger.schema import entries
from tests.cases.helpers import OFFICER_1, OFFICER_2, OTHER, SUBJ, World, defaulter


def test_a_tip_alone_never_changes_a_status(world: World) -> None:
    world.furnish("court-1", defaulter("d1", OTHER, "2026-01-02"))
    before = world.status.snapshot()
    case = tips.submit_tip(
        world.ledger,
        world.books,
        "public:abc",
        SUBJ,
        "He refuses to pay",
        kind="court.judgment-defaulter",
    )
    world.status.catch_up()
    assert world.status.snapshot()["measure_index"] == before["measure_index"]
    assert world.lists(SUBJ) == set() and world.measures(SUBJ) == set()
    out = tips.verify_tip(world.ledger, case["case_id"], OFFICER_1, "court file found")
    assert out["outcome"] == "verified" and out["detail"]["rewardable"]
    world.status.catch_up()
    assert world.measures(SUBJ) == set()  # verified, but still no record: nothing changes
    # only a record furnished by the competent authority counts
    world.furnish("court-1", defaulter("d2", SUBJ, "2026-01-05"))
    assert "travel.flights" in world.measures(SUBJ)
    with pytest.raises(ConflictError):
        tips.reject_tip(world.ledger, case["case_id"], OFFICER_2, "too late")


def test_repeated_rejected_tips_flag_the_reporter(world: World) -> None:
    ids = [
        tips.submit_tip(world.ledger, world.books, "public:pest", SUBJ, f"gossip {i}")["case_id"]
        for i in range(3)
    ]
    other = tips.submit_tip(world.ledger, world.books, "public:fair", SUBJ, "a real tip")
    tips.reject_tip(world.ledger, ids[0], OFFICER_1, "no basis")
    tips.reject_tip(world.ledger, ids[1], OFFICER_1, "same again", duplicate=True)
    assert not tips.is_flagged(world.ledger.engine, "public:pest")
    tips.reject_tip(world.ledger, ids[2], OFFICER_1, "no basis")
    assert tips.is_flagged(world.ledger.engine, "public:pest")
    assert not tips.is_flagged(world.ledger.engine, "public:fair")
    tips.reject_tip(world.ledger, other["case_id"], OFFICER_1, "not enough")
    assert not tips.is_flagged(world.ledger.engine, "public:fair")


def test_rejections_outside_the_window_do_not_flag(world: World) -> None:
    for i in range(3):
        world.day(f"2026-0{i + 1}-10")
        c = tips.submit_tip(world.ledger, world.books, "public:slow", SUBJ, f"tip {i}")
        tips.reject_tip(world.ledger, c["case_id"], OFFICER_1, "no basis")
    assert not tips.is_flagged(world.ledger.engine, "public:slow")


def test_a_burst_flags_the_reporter(world: World) -> None:
    for i in range(tips.BURST_LIMIT + 1):
        tips.submit_tip(world.ledger, world.books, "public:burst", OTHER, f"tip {i}")
    flags = tips.flagged_reporters(world.ledger.engine)
    assert [f["rule"] for f in flags] == ["burst"]


def test_actions_filter_and_tamper_is_detected(world: World) -> None:
    c1 = tips.submit_tip(world.ledger, world.books, "public:a", SUBJ, "one")
    world.clock.advance(days=2)
    c2 = tips.submit_tip(world.ledger, world.books, "public:b", OTHER, "two")
    tips.reject_tip(world.ledger, c1["case_id"], OFFICER_1, "no basis")
    tips.verify_tip(world.ledger, c2["case_id"], OFFICER_2, "confirmed")
    eng = world.ledger.engine
    assert [a["case_id"] for a in list_actions(eng, actor=OFFICER_1)] == [c1["case_id"]]
    assert [a["action"] for a in list_actions(eng, subject=OTHER)] == [
        "case-opened",
        "tip-verified",
    ]
    assert len(list_actions(eng, case_id=c1["case_id"])) == 2
    assert [a["action"] for a in list_actions(eng, action="tip-verified")] == ["tip-verified"]
    cut = dt.datetime(2026, 1, 6)
    assert [a["case_id"] for a in list_actions(eng, until=cut)] == [c1["case_id"]]
    assert all(a["recorded_at"] >= "2026-01-06" for a in list_actions(eng, since=cut))
    assert world.ledger.verify().ok
    # edit an officer's "why" behind the program's back
    with eng.begin() as conn:
        seq = list_actions(eng, action="tip-rejected")[0]["seq"]
        conn.execute(entries.update().where(entries.c.seq == seq).values(reason="edited"))
    report = world.ledger.verify()
    assert not report.ok and report.first_bad_seq == seq
    with eng.connect() as conn:
        assert (
            conn.execute(sa.select(entries.c.op).where(entries.c.seq == seq)).scalar() == "action"
        )
