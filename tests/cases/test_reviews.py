"""Human review: proposals withheld until confirmed, four eyes, own proposals, halts."""

from __future__ import annotations

import datetime as dt

import pytest

from socialcredit.cases import reviews
from socialcredit.cases.sweep import sweep
from socialcredit.errors import ConflictError, InputError
from tests.cases.helpers import (
    OFFICER_1,
    OFFICER_2,
    OFFICER_3,
    OTHER,
    SUBJ,
    World,
    defaulter,
    serious,
)


def _proposed(w: World) -> dict:
    w.day("2026-03-02")
    w.furnish("samr-1", serious("s1", SUBJ, "2026-03-02"))
    st = w.status_of(SUBJ)
    assert "serious" not in w.lists(SUBJ)
    assert st["review"][0]["state"] == "proposed" and st["review"][0]["case"] is None
    assert "procurement.exclusion" not in w.measures(SUBJ)
    report = sweep(w.status)
    assert len(report.reviews_opened) == 1
    assert not sweep(w.status).reviews_opened  # idempotent
    case_id = report.reviews_opened[0]
    assert w.status_of(SUBJ)["review"][0]["case"] == case_id
    return reviews.open_review_cases(w.ledger)[0]


def test_four_eyes_needs_two_different_officers(world: World) -> None:
    case = _proposed(world)
    assert case["deadline"] == dt.date(2026, 3, 12)  # review_decision 10d
    out = reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_1, "checked")
    assert out["state"] == "open"
    world.status.catch_up()
    assert "serious" not in world.lists(SUBJ)
    head = world.ledger.head()
    with pytest.raises(InputError, match="same-reviewer"):
        reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_1, "again")
    assert world.ledger.head() == head
    out = reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_2, "agree")
    assert out["state"] == "decided" and out["outcome"] == "confirmed"
    world.status.catch_up()
    assert "serious" in world.lists(SUBJ)
    assert "procurement.exclusion" in world.measures(SUBJ)
    assert "review" not in world.status_of(SUBJ)
    with pytest.raises(ConflictError):
        reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_3, "third")


def test_nobody_reviews_their_own_proposal_or_themselves(world: World) -> None:
    world.day("2026-03-02")
    world.furnish("water-1", {**_late_row(), "subject": SUBJ})
    case = reviews.propose_review(
        world.ledger, world.books, SUBJ, "t-cases", "watched", actor=OFFICER_1, reason="seen"
    )
    assert case is not None and case["opened_by"] == OFFICER_1
    with pytest.raises(InputError, match="own-proposal"):
        reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_1, "mine")
    with pytest.raises(InputError, match="own-case"):
        reviews.confirm_review(world.ledger, world.books, case["case_id"], SUBJ, "me")
    # an officer of the agency that furnished the records cannot confirm either
    with pytest.raises(InputError, match="own-proposal"):
        reviews.confirm_review(
            world.ledger, world.books, case["case_id"], OFFICER_2, "ours", agency="water-1"
        )
    out = reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_2, "ok")
    assert out["outcome"] == "confirmed"  # one confirmation: no four eyes on 'watched'
    world.status.catch_up()
    assert "watched" in world.lists(SUBJ)


def _late_row() -> dict:
    return {
        "ref": "w1",
        "kind": "utility.late-payment",
        "decision_no": "W-1",
        "decision_date": "2026-03-01",
        "severity": "minor",
        "attributes": {"utility": "water"},
    }


def test_halt_removes_measures_until_lifted(world: World) -> None:
    world.day("2026-03-02")
    world.furnish("court-1", defaulter("d1", SUBJ, "2026-03-01"))
    assert "travel.flights" in world.measures(SUBJ)
    case = reviews.halt_listing(
        world.ledger, world.books, SUBJ, "t-cases", "defaulters", OFFICER_1, "identity mix-up"
    )
    assert case["state"] == "halted"
    world.status.catch_up()
    assert "travel.flights" not in world.measures(SUBJ)
    assert world.status_of(SUBJ)["review"][0]["state"] == "halted"
    with pytest.raises(ConflictError):
        reviews.halt_listing(
            world.ledger, world.books, SUBJ, "t-cases", "defaulters", OFFICER_2, "again"
        )
    reviews.lift_halt(world.ledger, case["case_id"], OFFICER_2, "identity confirmed")
    world.status.catch_up()
    assert "travel.flights" in world.measures(SUBJ)


def test_review_deadline_missed_is_flagged_and_nothing_takes_effect(world: World) -> None:
    case = _proposed(world)
    world.day("2026-03-13")
    assert sweep(world.status).missed == [case["case_id"]]
    assert "serious" not in world.lists(SUBJ)


def test_incremental_equals_rebuild_with_review_actions(world: World) -> None:
    case = _proposed(world)
    reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_1, "checked")
    reviews.confirm_review(world.ledger, world.books, case["case_id"], OFFICER_2, "agree")
    world.furnish("court-1", defaulter("d1", SUBJ, "2026-03-01"))
    reviews.halt_listing(world.ledger, world.books, SUBJ, "t-cases", "defaulters", OFFICER_3, "why")
    world.status.catch_up()
    before = world.status.snapshot()
    world.status.rebuild()
    assert world.status.snapshot() == before


def test_a_sweep_since_a_change_reads_only_the_subjects_changed(world: World) -> None:
    """The runtime's sweeps within a day read the proposals of the subjects whose status changed
    since the sweep before: a proposal that arrives later is found, one already swept is not
    read again, and a full rebuild meanwhile makes the sweep read everything."""
    world.day("2026-03-02")
    first = sweep(world.status)
    assert not first.reviews_opened
    world.furnish("samr-1", serious("s1", SUBJ, "2026-03-02"))
    second = sweep(world.status, changed_since=first.changes_seen)
    assert len(second.reviews_opened) == 1 and second.changes_seen > first.changes_seen
    # nothing changed since: nothing is read, so nothing opens (a full sweep agrees)
    third = sweep(world.status, changed_since=second.changes_seen)
    assert not third.reviews_opened and not sweep(world.status).reviews_opened
    # a proposal whose change the mark has passed is not read ...
    world.furnish("samr-1", serious("s2", OTHER, "2026-03-02"))
    world.status.catch_up()
    passed = sweep(world.status, changed_since=10**12)
    assert not passed.reviews_opened
    # ... until a full rebuild, which changes every subject
    world.status.rebuild()
    fourth = sweep(world.status, changed_since=passed.changes_seen)
    assert len(fourth.reviews_opened) == 1
    case_subjects = {c["subject_key"] for c in reviews.open_review_cases(world.ledger)}
    assert case_subjects == {SUBJ, OTHER}
