"""Objections: dispute at once, answer by the furnisher, suspension on the right working day."""

from __future__ import annotations

import datetime as dt

import pytest

from socialcredit.cases import objections as obj
from socialcredit.cases.actions import cases_snapshot, list_actions, rebuild_cases, verify_cases
from socialcredit.cases.sweep import sweep
from socialcredit.errors import ConflictError, InputError, NotFoundError
from tests.cases.helpers import OTHER, SUBJ, World, defaulter


def _dispute(w: World, day: str = "2026-04-02") -> tuple[int, dict]:
    w.day("2026-03-02")
    seq = w.furnish("court-1", defaulter("d1", SUBJ, "2026-03-01"))
    assert "travel.flights" in w.measures(SUBJ)
    w.day(day)
    case = obj.open_objection(w.ledger, w.books, SUBJ, seq, "I paid in full; receipt attached")
    w.status.catch_up()
    return seq, case


def test_unanswered_objection_suspends_the_day_after_its_working_day_deadline(world: World) -> None:
    seq, case = _dispute(world)
    # opened Thu 2 Apr 2026; 5 working days on the cn calendar skip Qingming (Sat 4 - Mon 6 Apr)
    assert case["deadline"] == dt.date(2026, 4, 10)
    assert case["deadline_rulebook"] == "t-cases"
    rec = world.ledger.subject_records(SUBJ)[0]
    assert rec.disputed and rec.in_force  # disputed at once, still read until suspended
    assert "travel.flights" in world.measures(SUBJ)
    for day in ("2026-04-03", "2026-04-07", "2026-04-10"):
        world.day(day)
        assert not sweep(world.status).suspended
        assert "travel.flights" in world.measures(SUBJ)
    world.day("2026-04-11")
    report = sweep(world.status)
    assert report.suspended == [case["case_id"]]
    assert world.ledger.subject_records(SUBJ)[0].suspended
    assert "defaulters" not in world.lists(SUBJ)
    assert "travel.flights" not in world.measures(SUBJ)
    # idempotent
    world.day("2026-04-12")
    assert not sweep(world.status).changed
    missed = list_actions(world.ledger.engine, action="deadline-missed")
    assert [a["case_id"] for a in missed] == [case["case_id"]]
    assert world.ledger.verify().ok
    del seq


def test_answer_in_time_confirms_and_the_record_stays(world: World) -> None:
    _, case = _dispute(world)
    world.day("2026-04-09")
    out = obj.answer_objection(
        world.ledger, case["case_id"], "court-1", "confirm", "the debt is unpaid per the file"
    )
    assert out["state"] == "answered" and out["outcome"] == "confirmed" and not out["late"]
    world.status.catch_up()
    rec = world.ledger.subject_records(SUBJ)[0]
    assert not rec.disputed and not rec.suspended
    world.day("2026-04-20")
    assert not sweep(world.status).suspended
    assert "travel.flights" in world.measures(SUBJ)


def test_late_confirmation_reinstates_and_is_flagged(world: World) -> None:
    _, case = _dispute(world)
    world.day("2026-04-13")
    sweep(world.status)
    assert "travel.flights" not in world.measures(SUBJ)
    out = obj.answer_objection(world.ledger, case["case_id"], "court-1", "confirm", "verified")
    assert out["late"] and out["outcome"] == "confirmed"
    world.status.catch_up()
    rec = world.ledger.subject_records(SUBJ)[0]
    assert not rec.suspended
    assert [h["op"] for h in rec.history][-2:] == ["reinstate", "confirm"]
    assert "travel.flights" in world.measures(SUBJ)


def test_correction_and_retraction_answer(world: World) -> None:
    _, case = _dispute(world)
    world.day("2026-04-13")
    sweep(world.status)
    out = obj.answer_objection(
        world.ledger,
        case["case_id"],
        "court-1",
        "correct",
        "wrong ground",
        changes={"attr.ground": "evades-enforcement"},
    )
    assert out["outcome"] == "corrected" and out["late"]
    rec = world.ledger.subject_records(SUBJ)[0]
    assert rec.attributes["ground"] == "evades-enforcement" and not rec.suspended
    # a new objection on the corrected record, then a retraction
    case2 = obj.open_objection(world.ledger, world.books, SUBJ, rec.record_id, "still wrong")
    obj.answer_objection(world.ledger, case2["case_id"], "court-1", "retract", "listed in error")
    world.status.catch_up()
    assert world.ledger.subject_records(SUBJ)[0].state == "retracted"
    assert "travel.flights" not in world.measures(SUBJ)


def test_refusals_change_nothing(world: World) -> None:
    seq, case = _dispute(world)
    head = world.ledger.head()
    with pytest.raises(ConflictError):
        obj.open_objection(world.ledger, world.books, SUBJ, seq, "again")
    with pytest.raises(NotFoundError):
        obj.open_objection(world.ledger, world.books, OTHER, seq, "not mine")
    with pytest.raises(InputError, match="grounds"):
        obj.open_objection(world.ledger, world.books, SUBJ, seq, "  ")
    with pytest.raises(InputError, match="not-furnisher"):
        obj.answer_objection(world.ledger, case["case_id"], "samr-1", "confirm", "not ours")
    with pytest.raises(InputError, match="outcome"):
        obj.answer_objection(world.ledger, case["case_id"], "court-1", "ignore", "x")
    with pytest.raises(InputError, match="100 words"):
        obj.add_statement(world.ledger, SUBJ, seq, " ".join(["word"] * 101))
    assert world.ledger.head() == head


def test_statement_travels_with_the_record(world: World) -> None:
    seq, _ = _dispute(world)
    text = " ".join(["fair"] * 100)
    s1 = obj.add_statement(world.ledger, SUBJ, seq, text)
    assert obj.add_statement(world.ledger, SUBJ, seq, text) == s1  # idempotent
    rec = world.ledger.subject_records(SUBJ)[0]
    assert rec.statements == [text]


def test_extension_once_capped(world: World) -> None:
    _, case = _dispute(world)
    out = obj.extend_objection(
        world.ledger, case["case_id"], "cn-rid:110101199003074477", "new evidence"
    )
    assert out["deadline"] == dt.date(2026, 4, 25)
    with pytest.raises(ConflictError):
        obj.extend_objection(world.ledger, case["case_id"], "cn-rid:110101199003074477", "again")


def test_projection_equals_rebuild(world: World) -> None:
    _, case = _dispute(world)
    world.day("2026-04-13")
    sweep(world.status)
    obj.answer_objection(world.ledger, case["case_id"], "court-1", "confirm", "verified")
    before = cases_snapshot(world.ledger.engine)
    assert verify_cases(world.ledger) == []
    assert rebuild_cases(world.ledger) == len(before)
    assert cases_snapshot(world.ledger.engine) == before
    # an edit of the projection behind the program's back is found, and a rebuild repairs it
    from socialcredit.cases.schema import cases

    with world.ledger.engine.begin() as conn:
        conn.execute(cases.update().values(outcome="retracted"))
    assert verify_cases(world.ledger) == [case["case_id"]]
    rebuild_cases(world.ledger)
    assert verify_cases(world.ledger) == []
