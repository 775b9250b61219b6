"""Repair applications: exactly at the minimum period, conditions, an officer's decision."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from socialcredit.cases import repairs
from socialcredit.cases.sweep import sweep
from socialcredit.engine.reference import evaluate
from socialcredit.errors import ConflictError, InputError
from socialcredit.status.service import rec_of
from tests.cases.helpers import OFFICER_1, SUBJ, World, commitment, defaulter


def _listed(w: World) -> None:
    w.day("2026-01-06")
    w.furnish("court-1", defaulter("d1", SUBJ, "2026-01-05"))  # listed since Mon 5 Jan 2026
    assert "defaulters" in w.lists(SUBJ)


def test_repair_possible_exactly_at_the_minimum_period(world: World) -> None:
    _listed(world)
    world.day("2026-03-02")
    world.furnish("credit-1", commitment("k1", SUBJ, "2026-03-02"))
    world.day("2026-07-04")  # the day before 6 months after the listing
    el = repairs.repair_eligibility(world.ledger, world.books, SUBJ, "t-cases", "defaulters")
    assert not el.ok and el.repair_from == dt.date(2026, 7, 5)
    assert [p.rule for p in el.problems] == ["too-early"]
    head = world.ledger.head()
    with pytest.raises(InputError, match="too-early"):
        repairs.apply_for_repair(world.ledger, world.books, SUBJ, "t-cases", "defaulters", "paid")
    assert world.ledger.head() == head
    world.day("2026-07-05")  # a Sunday: applications are not procedure deadlines
    case = repairs.apply_for_repair(
        world.ledger, world.books, SUBJ, "t-cases", "defaulters", "I paid and signed a commitment"
    )
    # repair_decision 3wd on the cn calendar from Sun 5 Jul: Mon 6, Tue 7, Wed 8
    assert case["deadline"] == dt.date(2026, 7, 8)
    with pytest.raises(ConflictError):
        repairs.apply_for_repair(world.ledger, world.books, SUBJ, "t-cases", "defaulters", "again")


def test_conditions_must_be_present(world: World) -> None:
    _listed(world)
    world.day("2026-08-01")
    el = repairs.repair_eligibility(world.ledger, world.books, SUBJ, "t-cases", "defaulters")
    assert el.missing == ["credit.commitment"] and not el.ok
    with pytest.raises(InputError, match="missing-condition"):
        repairs.apply_for_repair(world.ledger, world.books, SUBJ, "t-cases", "defaulters", "x")
    with pytest.raises(InputError, match="no-repair"):
        repairs.apply_for_repair(world.ledger, world.books, SUBJ, "t-cases", "serious", "x")


def test_approval_ends_the_membership_through_the_engine(world: World) -> None:
    _listed(world)
    world.day("2026-07-06")
    world.furnish("credit-1", commitment("k1", SUBJ, "2026-07-06"))
    case = repairs.apply_for_repair(
        world.ledger, world.books, SUBJ, "t-cases", "defaulters", "paid"
    )
    with pytest.raises(InputError, match="own-case"):
        repairs.decide_repair(world.ledger, case["case_id"], SUBJ, True, "myself")
    world.day("2026-07-08")
    out = repairs.decide_repair(world.ledger, case["case_id"], OFFICER_1, True, "conditions met")
    assert out["outcome"] == "approved" and not out["late"]
    world.status.catch_up()
    assert "defaulters" not in world.lists(SUBJ)
    assert "travel.flights" not in world.measures(SUBJ)
    # the reference evaluator over the ledger's records agrees (no status hack)
    recs = [rec_of(v) for v in world.ledger.subject_records(SUBJ)]
    assert any(r.kind == "credit.repair-approved" for r in recs)
    st = evaluate(world.books[0], recs, dt.date(2026, 7, 8), subject=SUBJ)
    assert st.membership("defaulters") is None
    st_before = evaluate(world.books[0], recs, dt.date(2026, 7, 7), subject=SUBJ)
    assert st_before.membership("defaulters") is not None
    assert world.ledger.verify().ok


def test_late_decision_is_flagged(world: World) -> None:
    _listed(world)
    world.day("2026-07-06")
    world.furnish("credit-1", commitment("k1", SUBJ, "2026-07-06"))
    case = repairs.apply_for_repair(
        world.ledger, world.books, SUBJ, "t-cases", "defaulters", "paid"
    )
    assert case["deadline"] == dt.date(2026, 7, 9)
    world.day("2026-07-09")
    assert not sweep(world.status).missed
    world.day("2026-07-10")
    assert sweep(world.status).missed == [case["case_id"]]
    world.day("2026-07-13")
    out = repairs.decide_repair(world.ledger, case["case_id"], OFFICER_1, False, "not yet")
    assert out["late"] and out["missed"] and out["outcome"] == "rejected"
    world.status.catch_up()
    assert "defaulters" in world.lists(SUBJ)


@pytest.mark.slow
def test_batch_plan_agrees_with_the_reference_on_an_approved_repair(tmp_path: Path) -> None:
    from socialcredit.rulebooks import load
    from tests.cases.helpers import write_rulebook
    from tests.engine.helpers import check, duckdb_records, row

    rb = load(write_rulebook(tmp_path / "rb"))
    assert any(r.id == "repair-approved" for r in rb.get_list("defaulters").removal)
    rows = [
        row(
            1,
            SUBJ,
            "court.judgment-defaulter",
            "2025-01-10",
            severity="serious",
            attributes={"ground": "able-but-refuses", "case_no": "C1"},
        ),
        row(2, SUBJ, "credit.commitment", "2025-08-01", attributes={"purpose": "credit-repair"}),
        row(
            3,
            SUBJ,
            "credit.repair-approved",
            "2025-08-05",
            attributes={"list": "defaulters", "rulebook": "t-cases", "case_no": "9"},
        ),
        # an approval for another list ends nothing here
        row(
            4,
            "cn-rid:440524188001010014",
            "court.judgment-defaulter",
            "2025-01-10",
            severity="serious",
            attributes={"ground": "able-but-refuses", "case_no": "C2"},
        ),
        row(
            5,
            "cn-rid:440524188001010014",
            "credit.repair-approved",
            "2025-08-05",
            attributes={"list": "serious"},
        ),
    ]
    for day in (dt.date(2025, 8, 4), dt.date(2025, 8, 5)):
        res = check(rb, rows, day, duckdb_records(rows, tmp_path / f"{day}.parquet"))
        listed = {r["subject"] for r in res.memberships.to_pylist() if r["list"] == "defaulters"}
        assert (SUBJ in listed) == (day < dt.date(2025, 8, 5))
        assert "cn-rid:440524188001010014" in listed
