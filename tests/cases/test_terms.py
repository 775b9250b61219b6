"""Time travel over listings: grace periods and fixed terms, as relying parties see them."""

from __future__ import annotations

from tests.cases.helpers import SUBJ, World, defaulter


def test_grace_period_then_fixed_term_in_the_measure_index(world: World) -> None:
    world.day("2026-02-02")
    # fixed-term ground: 7 days' grace, then one year
    world.furnish("court-1", defaulter("d1", SUBJ, "2026-02-02", ground="evades-enforcement"))
    st = world.status_of(SUBJ)
    assert st["pending"][0]["effective"] == "2026-02-09"
    for day in ("2026-02-03", "2026-02-08"):
        world.day(day)
        world.status.sweep()
        assert "travel.flights" not in world.measures(SUBJ)
    world.day("2026-02-09")
    world.status.sweep()
    assert "travel.flights" in world.measures(SUBJ)
    world.day("2027-02-08")
    world.status.sweep()
    assert "travel.flights" in world.measures(SUBJ)
    world.day("2027-02-09")
    world.status.sweep()
    assert "travel.flights" not in world.measures(SUBJ)
    assert world.lists(SUBJ) == set()
