"""Statistics: counts per list and grade over time, and the SVG chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.publish.stats import compute_stats, month_ends, svg_chart
from tests.portal.helpers import setup_registry

D = dt.date.fromisoformat


def test_month_ends() -> None:
    assert month_ends(D("2025-11-20"), D("2026-01-15")) == [
        D("2025-11-01"),
        D("2025-12-01"),
        D("2026-01-01"),
        D("2026-01-15"),
    ]


def test_counts_per_list_and_grade(tmp_path: Path, clock: FixedClock) -> None:
    db = str(tmp_path / "s.db")
    setup_registry(db, clock, tmp_path / "rb")
    with Ledger.open(db, clock=clock) as led:
        st = compute_stats(led.engine, D("2026-01-15"))
    days = list(st.days)
    assert days[-1] == D("2026-01-15") and days[0] == D("2024-01-01")
    lists = {s.label: s.values for s in st.lists["t-portal"]}
    defaulters = dict(zip(days, lists["defaulters"], strict=True))
    # COMPANY3 since 2023-05-01, the person since 2025-03-01, COMPANY since 2025-06-10
    assert defaulters[D("2025-01-01")] == 1
    assert defaulters[D("2025-04-01")] == 2
    assert defaulters[D("2025-07-01")] == 3
    late = dict(zip(days, lists["late-payers"], strict=True))  # two subjects from 2025-11-01
    assert late[D("2025-10-01")] == 0 and late[D("2026-01-15")] == 2
    grades = {s.label: s.values for s in st.grades["t-portal/points"]}
    # grades only from the first evaluation (2026-01-15): two persons, grade B (100) and C (90)
    assert sum(v[-1] or 0 for v in grades.values()) == 2
    assert all(v[-2] is None for v in grades.values())  # unknown before the first evaluation
    assert st.subjects == 5
    svg = svg_chart("Subjects per list", st.days, st.lists["t-portal"])
    assert svg.startswith("<svg") and 'aria-label="Subjects per list"' in svg
    assert "defaulters" in svg  # the legend is text
