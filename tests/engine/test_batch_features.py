"""One feature at a time, on tiny hand-made snapshots: the batch plan equals the reference, and
the reference's answer is the one the feature is meant to give (so both are checked to do
something). Every test runs on DuckDB (Parquet), SQLite and PostgreSQL (``load`` fixture)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest

from socialcredit.engine.batch import BatchResult, compile_plan
from tests.engine.conftest import Loader
from tests.engine.helpers import check, row, rulebook

D = dt.date
P1, P2, P3 = "generic:P1", "generic:P2", "generic:P3"
ORG = "generic:O1"


def run(load: Loader, rb: Any, rows: Sequence[dict[str, Any]], *days: dt.date) -> list[BatchResult]:
    t = load(rows)
    return [check(rb, rows, d, t) for d in days]


def rows_of(t: pa.Table, **where: Any) -> list[dict[str, Any]]:
    return [r for r in t.to_pylist() if all(r[k] == v for k, v in where.items())]


# ---------------------------------------------------------------------------- lists


def test_each_grace_gives_notice_then_lists(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "entry": [
                    {"id": "e", "when": {"kinds": ["k"]}, "grace": "10d", "term": {"length": "1y"}}
                ],
                "repair": {"minimum": "6m"},
            }
        ]
    )
    rows = [row(1, P1, "k", "2024-01-31")]
    before, during = run(load, rb, rows, D(2024, 2, 5), D(2024, 3, 1))
    assert rows_of(before.pending) == [
        {"subject": P1, "list": "L", "effective": D(2024, 2, 10), "rule": "e", "basis": [1]}
    ]
    assert before.memberships.num_rows == 0
    [m] = rows_of(during.memberships)
    assert (m["since"], m["until"], m["repair_from"]) == (
        D(2024, 2, 10),
        D(2025, 2, 10),
        D(2024, 8, 10),
    )
    assert rows_of(before.next_change) == [{"subject": P1, "next_change": D(2024, 2, 10)}]


def test_each_term_extension_max_and_month_end_clamping(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "entry": [
                    {
                        "id": "e",
                        "when": {"kinds": ["k"]},
                        "term": {"length": "1m", "extend_by_attribute": "years", "max": "2y"},
                    }
                ],
            }
        ]
    )
    rows = [
        row(1, P1, "k", "2024-01-31"),  # + 1m = 2024-02-29
        row(2, P2, "k", "2024-01-31", attributes={"years": 1}),  # 2025-02-28
        row(3, P3, "k", "2024-01-31", attributes={"years": "5"}),  # capped at 2026-01-31
        row(4, ORG, "k", "2024-01-31", attributes={"years": True}, subject_kind="enterprise"),
    ]
    [res] = run(load, rb, rows, D(2024, 2, 1))
    until = {m["subject"]: m["until"] for m in rows_of(res.memberships)}
    assert until == {
        P1: D(2024, 2, 29),
        P2: D(2025, 2, 28),
        P3: D(2026, 1, 31),
        ORG: D(2024, 2, 29),
    }


def test_removal_shares_match_attributes(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "entry": [{"id": "e", "when": {"kinds": ["judgment"]}}],
                "removal": [{"id": "r", "when": {"kinds": ["paid"]}, "match_attributes": ["case"]}],
            }
        ]
    )
    rows = [
        row(1, P1, "judgment", "2024-01-10", attributes={"case": "A"}),
        row(2, P1, "judgment", "2024-01-10", attributes={"case": 2}),
        row(3, P1, "paid", "2024-03-01", attributes={"case": "A"}),
        row(4, P1, "paid", "2024-03-01", attributes={"case": 2.0}),  # canon "2" == "2"
        row(5, P2, "judgment", "2024-01-10", attributes={"case": "B"}),
        row(6, P2, "paid", "2024-01-05", attributes={"case": "B"}),  # before the entry
        row(7, P3, "judgment", "2024-01-10"),
        row(8, P3, "paid", "2024-02-01"),  # no case on either: does not remove
    ]
    listed, after = run(load, rb, rows, D(2024, 2, 1), D(2024, 3, 1))
    assert {m["subject"]: m["basis"] for m in rows_of(listed.memberships)} == {
        P1: [1, 2],
        P2: [5],
        P3: [7],
    }
    assert {m["subject"] for m in rows_of(after.memberships)} == {P2, P3}


def test_removal_during_grace_means_never_listed(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "entry": [{"id": "e", "when": {"kinds": ["k"]}, "grace": "30d"}],
                "removal": [{"id": "r", "when": {"kinds": ["paid"]}}],
            }
        ]
    )
    rows = [row(1, P1, "k", "2024-01-01"), row(2, P1, "paid", "2024-01-10")]
    before, after = run(load, rb, rows, D(2024, 1, 5), D(2024, 1, 20))
    assert before.pending.num_rows == 1
    assert after.pending.num_rows == 0 and after.memberships.num_rows == 0


def test_count_window_weights_and_threshold(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "entry": [
                    {
                        "id": "c",
                        "count": {
                            "when": {"kinds": ["fine"]},
                            "weights": {"serious": 3},
                            "at_least": 3,
                            "within": "1y",
                        },
                        "term": {"length": "6m"},
                    }
                ],
            }
        ]
    )
    rows = [
        row(1, P1, "fine", "2023-01-15", severity="minor"),
        row(2, P1, "fine", "2023-06-01", severity="minor"),
        row(3, P1, "fine", "2024-01-15", severity="general"),  # 2023-01-15 has left the window
        row(4, P1, "fine", "2024-01-20", severity="minor"),  # 2, 3, 4 -> trigger
        row(5, P2, "fine", "2024-01-01", severity="serious"),  # weight 3 alone
        row(6, P3, "fine", "2024-01-01", severity="minor"),
        row(7, P3, "fine", "2024-01-01", severity="minor"),  # same day: both windows hold both
    ]
    [res] = run(load, rb, rows, D(2024, 2, 1))
    got = {m["subject"]: (m["since"], m["basis"]) for m in rows_of(res.memberships)}
    assert got == {P1: (D(2024, 1, 20), [2, 3, 4]), P2: (D(2024, 1, 1), [5])}


def test_lists_mode_kth_since_and_kth_latest_until(load: Loader) -> None:
    rb = rulebook(
        lists=[
            # named before the lists it reads: evaluated after them all the same
            {
                "id": "ANY2",
                "entry": [{"id": "two", "lists": {"any_of": ["A", "B", "C"], "at_least": 2}}],
            },
            {"id": "A", "entry": [{"id": "a", "when": {"kinds": ["a"]}, "term": {"length": "1y"}}]},
            {"id": "B", "entry": [{"id": "b", "when": {"kinds": ["b"]}, "term": {"length": "2y"}}]},
            {"id": "C", "entry": [{"id": "c", "when": {"kinds": ["c"]}}]},
        ],
        memoranda=[{"id": "M", "bindings": [{"when": {"list": "ANY2"}, "measures": ["m1"]}]}],
    )
    rows = [
        row(1, P1, "a", "2024-01-01"),
        row(2, P1, "b", "2024-02-01"),
        row(3, P1, "c", "2024-03-01"),
        row(4, P2, "a", "2024-01-01"),
        row(5, P2, "b", "2024-02-01"),
        row(6, P3, "c", "2024-01-01"),
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    [m1] = rows_of(res.memberships, subject=P1, list="ANY2")
    assert (m1["since"], m1["until"], m1["via"], m1["basis"]) == (
        D(2024, 2, 1),  # 2nd earliest since
        D(2026, 2, 1),  # 2nd latest until (C is open-ended)
        ["A", "B", "C"],
        [1, 2, 3],
    )
    [m2] = rows_of(res.memberships, subject=P2, list="ANY2")
    assert m2["until"] == D(2025, 1, 1)
    assert not rows_of(res.memberships, subject=P3, list="ANY2")
    assert rows_of(res.measures, subject=P1) == [
        {"subject": P1, "measure": "m1", "memorandum": "M", "via": "list:ANY2", "basis": [1, 2, 3]}
    ]


def test_list_subjects_restrict_who_is_listed(load: Loader) -> None:
    rb = rulebook(
        lists=[
            {
                "id": "L",
                "subjects": ["enterprise"],
                "entry": [{"id": "e", "when": {"kinds": ["k"]}}],
            }
        ]
    )
    rows = [
        row(1, P1, "k", "2024-01-01"),
        row(2, ORG, "k", "2024-01-01", subject_kind="enterprise"),
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    assert [m["subject"] for m in rows_of(res.memberships)] == [ORG]


# ---------------------------------------------------------------------------- schemes


def _scheme(**over: Any) -> dict[str, Any]:
    return {"id": "S", "base": 100, "restore_after": "2y", **over}


def test_first_matching_rule_brackets_and_from_attribute(load: Loader) -> None:
    rb = rulebook(
        schemes=[
            _scheme(
                rules=[
                    {
                        "id": "big",
                        "when": {"kinds": ["fine"], "amount_at_least": 1000},
                        "brackets": [
                            {"amount_at_least": 5000, "points": -30},
                            {"amount_at_least": 1000, "points": -20},
                        ],
                    },
                    {"id": "any", "when": {"kinds": ["fine"]}, "points": -5},
                    {
                        "id": "hours",
                        "when": {"kinds": ["volunteer"]},
                        "from_attribute": {"attribute": "hours", "factor": 0.5},
                    },
                ]
            )
        ]
    )
    rows = [
        row(1, P1, "fine", "2024-01-01", amount_minor=600_000),  # -30
        row(2, P1, "fine", "2024-01-01", amount_minor=150_000),  # -20
        row(3, P1, "fine", "2024-01-01", amount_minor=10),  # -5 (second rule)
        row(4, P1, "volunteer", "2024-01-01", attributes={"hours": "7"}),  # +3.5
        row(5, P1, "volunteer", "2024-01-01", attributes={"hours": True}),  # not a number
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    [s] = rows_of(res.schemes)
    assert s["points"] == 48.5


def test_restoration_cycle_and_once_per(load: Loader) -> None:
    rb = rulebook(
        schemes=[
            _scheme(
                cycle={"anchor": "07-01"},
                rules=[
                    {
                        "id": "late",
                        "when": {"kinds": ["late"]},
                        "points": -2,
                        "once_per": "bill",
                        "restore_after": "3m",
                    },
                ],
            )
        ]
    )
    rows = [
        row(1, P1, "late", "2024-06-30", attributes={"bill": "x"}),  # before the cycle
        row(2, P1, "late", "2024-07-01", attributes={"bill": "x"}),
        row(3, P1, "late", "2024-07-01", attributes={"bill": "x"}),  # same bill, later id
        row(4, P1, "late", "2024-08-01", attributes={"bill": "y"}),
        row(5, P1, "late", "2024-08-02"),  # no bill: counts
    ]
    mid, late = run(load, rb, rows, D(2024, 8, 15), D(2024, 10, 15))
    [s] = rows_of(mid.schemes)
    assert (s["points"], s["next_change"]) == (94.0, D(2024, 10, 1))
    [s] = rows_of(late.schemes)
    assert s["points"] == 96.0


def test_caps_per_year_and_overall(load: Loader) -> None:
    rb = rulebook(
        schemes=[
            _scheme(
                rules=[
                    {
                        "id": "good",
                        "when": {"kinds": ["good"]},
                        "points": 4,
                        "cap": {"total": 10, "per": "year"},
                    },
                    {"id": "bad", "when": {"kinds": ["bad"]}, "points": -4, "cap": {"total": 6}},
                ]
            )
        ]
    )
    rows = [row(i, P1, "good", f"2023-0{i}-01") for i in range(1, 5)]  # 16 -> 10
    rows += [row(10 + i, P1, "good", f"2024-0{i}-01") for i in range(1, 3)]  # 8
    rows += [row(20 + i, P1, "bad", f"2024-0{i}-01") for i in range(1, 3)]  # -8 -> -6
    [res] = run(load, rb, rows, D(2024, 6, 1))
    assert rows_of(res.schemes)[0]["points"] == 112.0


def test_bands_limits_and_grade_measures(load: Loader) -> None:
    rb = rulebook(
        schemes=[
            _scheme(
                subjects=["person", "enterprise"],
                rules=[{"id": "r", "when": {"kinds": ["fine"]}, "points": -10}],
                grades={
                    "order": ["A", "B", "C", "D"],
                    "bands": [
                        {"grade": "D"},
                        {"grade": "A", "min": 100},
                        {"grade": "B", "min": 90},
                        {"grade": "C", "min": 80},
                    ],
                    "limits": [
                        {"id": "tax", "at_best": "C", "when": {"kinds": ["tax"]}, "for": "1y"}
                    ],
                },
            )
        ],
        memoranda=[
            {
                "id": "M",
                "bindings": [
                    {"when": {"scheme": "S", "grades": ["C", "D"]}, "measures": ["loan"]},
                    {
                        "when": {"scheme": "S", "grades": ["A"]},
                        "subjects": ["enterprise"],
                        "measures": ["green-lane"],
                    },
                ],
            }
        ],
    )
    rows = [
        row(1, P1, "fine", "2024-01-01"),  # 90: B
        row(2, P2, "tax", "2024-01-01"),  # 100: A, limited to C until 2025-01-01
        row(3, P3, "fine", "2023-06-01"),
        row(4, P3, "fine", "2023-07-01"),
        row(5, P3, "fine", "2023-08-01"),  # 70: D (the null-min band, tried last)
        row(6, ORG, "other", "2024-01-01", subject_kind="enterprise"),  # 100: A
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    grades = {s["subject"]: (s["band_grade"], s["grade"]) for s in rows_of(res.schemes)}
    assert grades == {P1: ("B", "B"), P2: ("A", "C"), P3: ("D", "D"), ORG: ("A", "A")}
    measures = {(m["subject"], m["measure"], m["via"]) for m in rows_of(res.measures)}
    assert measures == {
        (P2, "loan", "scheme:S:C"),
        (P3, "loan", "scheme:S:D"),
        (ORG, "green-lane", "scheme:S:A"),
    }


def test_consent(load: Loader) -> None:
    rb = rulebook(
        schemes=[
            _scheme(
                consent_kind="consent",
                rules=[{"id": "r", "when": {"kinds": ["good"]}, "points": 5}],
            )
        ]
    )
    rows = [
        row(1, P1, "consent", "2024-01-01"),
        row(2, P1, "good", "2024-01-01"),
        row(3, P2, "good", "2024-01-01"),
        row(4, P3, "consent", "2024-01-01", in_force=False),
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    got = {s["subject"]: (s["consent"], s["points"]) for s in rows_of(res.schemes)}
    assert got == {P1: (True, 105.0), P2: (False, None), P3: (False, None)}


# ---------------------------------------------------------------------------- population


def test_population_includes_subjects_with_nothing_in_force(load: Loader) -> None:
    rb = rulebook(
        lists=[{"id": "L", "entry": [{"id": "e", "when": {"kinds": ["k"]}}]}],
        schemes=[_scheme(rules=[{"id": "r", "when": {"kinds": ["k"]}, "points": -1}])],
    )
    rows = [
        row(1, P1, "k", "2024-01-01", in_force=False),
        row(2, P2, "k", "2030-01-01"),  # decided after the as-of day
        row(3, P3, "k", "2024-01-01"),
    ]
    [res] = run(load, rb, rows, D(2024, 6, 1))
    assert [r["subject"] for r in rows_of(res.next_change)] == [P1, P2, P3]
    assert {s["subject"]: s["points"] for s in rows_of(res.schemes)} == {
        P1: 100.0,
        P2: 100.0,
        P3: 99.0,
    }
    assert [m["subject"] for m in rows_of(res.memberships)] == [P3]


def test_empty_rulebook_and_empty_snapshot(load: Loader) -> None:
    [res] = run(load, rulebook(), [row(1, P1, "k", "2024-01-01")], D(2024, 6, 1))
    assert res.memberships.num_rows == res.schemes.num_rows == 0
    assert rows_of(res.next_change) == [{"subject": P1, "next_change": None}]


def test_plan_is_compiled_once_and_reused(load: Loader) -> None:
    rb = rulebook(lists=[{"id": "L", "entry": [{"id": "e", "when": {"kinds": ["k"]}}]}])
    rows = [row(1, P1, "k", "2024-01-01")]
    plan = compile_plan(rb)
    t = load(rows)
    assert plan.run(t, D(2023, 1, 1)).memberships.num_rows == 0
    assert plan.run(t, D(2024, 1, 1)).memberships.num_rows == 1


def test_circular_lists_are_refused() -> None:
    rb = rulebook(
        lists=[
            {"id": "A", "entry": [{"id": "a", "lists": {"any_of": ["B"], "at_least": 1}}]},
            {"id": "B", "entry": [{"id": "b", "lists": {"any_of": ["A"], "at_least": 1}}]},
        ]
    )
    with pytest.raises(ValueError, match="circle"):
        compile_plan(rb)
