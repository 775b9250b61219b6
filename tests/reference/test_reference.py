"""The reference evaluator, feature by feature, on hand-made records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from socialcredit.engine import Rec, evaluate
from socialcredit.rulebooks.model import Rulebook

S = "cn-rid:11010519491231002X"
D = dt.date.fromisoformat


def book(**parts: Any) -> Rulebook:
    return Rulebook.model_validate(
        {
            "id": "t",
            "title": "T",
            "jurisdiction": "XX",
            "version": "1",
            "effective": {"from": "2000-01-01"},
        }
        | parts
    )


def rec(
    i: int,
    kind: str,
    day: str,
    sev: str | None = None,
    amount: float | None = None,
    in_force: bool = True,
    **attrs: Any,
) -> Rec:
    return Rec(
        i,
        S,
        "person",
        kind,
        D(day),
        sev,
        None if amount is None else round(amount * 100),
        attrs,
        in_force,
    )


def lst(entry: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "id": "L",
        "title": "L",
        "type": "black",
        "authority": "a",
        "legal_basis": "b",
        "entry": entry,
    } | more


def test_each_rule_term_extension_and_cap() -> None:
    rb = book(
        lists=[
            lst(
                [
                    {
                        "id": "e",
                        "when": {"kinds": ["k"]},
                        "term": {"length": "2y", "extend_by_attribute": "ext", "max": "3y"},
                    }
                ]
            )
        ]
    )
    st = evaluate(rb, [rec(1, "k", "2024-02-29", ext=2)], D("2026-06-01"))
    m = st.membership("L")
    assert m is not None and m.since == D("2024-02-29")
    assert m.until == D("2027-02-28")  # 2 + 2 years capped at 3, clamped to the month's end
    assert st.next_change == D("2027-02-28")
    assert evaluate(rb, [rec(1, "k", "2024-02-29", ext=2)], D("2027-02-28")).membership("L") is None


def test_removal_must_share_the_attributes_and_come_later() -> None:
    rb = book(
        lists=[
            lst(
                [{"id": "e", "when": {"kinds": ["k"]}}],
                removal=[{"id": "r", "when": {"kinds": ["done"]}, "match_attributes": ["case"]}],
            )
        ]
    )
    recs = [
        rec(1, "k", "2024-01-01", case="A"),
        rec(2, "k", "2024-02-01", case="B"),
        rec(3, "done", "2024-03-01", case="A"),
        rec(4, "done", "2023-12-01", case="B"),
    ]
    m = evaluate(rb, recs, D("2024-06-01")).membership("L")
    assert m is not None and m.basis == (2,) and m.until is None  # B's removal predates B's entry
    assert (
        evaluate(
            rb, [*recs[:2], rec(5, "done", "2024-05-01", case="B"), recs[2]], D("2024-06-01")
        ).membership("L")
        is None
    )


def test_grace_gives_a_pending_listing_and_a_cure_in_grace_cancels_it() -> None:
    rb = book(
        lists=[
            lst(
                [{"id": "e", "when": {"kinds": ["k"]}, "grace": "30d", "term": {"length": "1y"}}],
                removal=[{"id": "r", "when": {"kinds": ["cured"]}}],
            )
        ]
    )
    st = evaluate(rb, [rec(1, "k", "2025-01-01")], D("2025-01-15"))
    assert st.membership("L") is None
    assert [(p.list_id, p.effective) for p in st.pending] == [("L", D("2025-01-31"))]
    assert st.next_change == D("2025-01-31")
    cured = evaluate(
        rb, [rec(1, "k", "2025-01-01"), rec(2, "cured", "2025-01-10")], D("2025-01-15")
    )
    assert cured.pending == () and cured.next_change is None
    assert evaluate(rb, [rec(1, "k", "2025-01-01")], D("2025-02-01")).membership("L") is not None


def test_count_rule_weights_window_and_term() -> None:
    rule = {
        "id": "c",
        "term": {"length": "1y"},
        "count": {
            "when": {"kinds": ["p"]},
            "weights": {"general": 1, "serious": 3},
            "at_least": 3,
            "within": "1y",
        },
    }
    rb = book(lists=[lst([rule])])
    recs = [
        rec(1, "p", "2023-01-01", "general"),
        rec(2, "p", "2024-03-01", "general"),
        rec(3, "p", "2024-06-01", "general"),
        rec(4, "p", "2024-07-01", "general"),
    ]
    m = evaluate(rb, recs, D("2024-08-01")).membership("L")
    # 2+3+4 reach 3 on 2024-07-01; record 1 is outside every window
    assert m is not None and (m.since, m.until, m.basis) == (
        D("2024-07-01"),
        D("2025-07-01"),
        (2, 3, 4),
    )
    one_serious = evaluate(rb, [rec(9, "p", "2024-01-01", "serious")], D("2024-01-02")).membership(
        "L"
    )
    assert one_serious is not None and one_serious.basis == (9,)


def test_lists_rule_needs_k_memberships() -> None:
    def simple(i: str, kind: str, length: str) -> dict[str, Any]:
        return lst(
            [{"id": "e", "when": {"kinds": [kind]}, "term": {"length": length}}],
            id=i,
            type="warning",
        )

    rb = book(
        lists=[
            simple("a", "ka", "1y"),
            simple("b", "kb", "2y"),
            simple("c", "kc", "3y"),
            lst([{"id": "two", "lists": {"any_of": ["a", "b", "c"], "at_least": 2}}], id="big"),
        ]
    )
    recs = [rec(1, "ka", "2024-01-01"), rec(2, "kb", "2024-03-01"), rec(3, "kc", "2024-05-01")]
    m = evaluate(rb, recs, D("2024-06-01")).membership("big")
    # the 2nd earliest start; the 2nd latest end (when fewer than two remain)
    assert m is not None and (m.since, m.until) == (D("2024-03-01"), D("2026-03-01"))
    assert m.via == ("a", "b", "c") and m.basis == (1, 2, 3)
    assert evaluate(rb, recs[:1], D("2024-06-01")).membership("big") is None


def scheme(**over: Any) -> dict[str, Any]:
    return {
        "id": "s",
        "title": "S",
        "subjects": ["person"],
        "base": 100,
        "restore_after": "1y",
        "rules": [{"id": "r", "when": {"kinds": ["k"]}, "points": -10}],
    } | over


def test_points_first_match_restoration_and_clamp() -> None:
    rb = book(
        schemes=[
            scheme(
                min=75,
                rules=[
                    {"id": "big", "when": {"kinds": ["k"], "amount_at_least": 100}, "points": -20},
                    {"id": "any", "when": {"kinds": ["k"]}, "points": -10, "restore_after": "2y"},
                ],
            )
        ]
    )
    recs = [
        rec(1, "k", "2024-01-01", amount=500),
        rec(2, "k", "2024-01-01", amount=5),
        rec(3, "k", "2022-06-01", amount=5),
    ]
    s = evaluate(rb, recs, D("2024-05-31")).scheme("s")
    assert s is not None and s.points == 75  # 100 - 20 - 10 - 10 = 60, clamped at 75
    assert {(c.record_id, c.rule_id) for c in s.contributions} == {
        (1, "big"),
        (2, "any"),
        (3, "any"),
    }
    assert s.next_change == D("2024-06-01")  # record 3 stops counting two years after its decision
    restored = evaluate(rb, recs, D("2024-06-01")).scheme("s")
    assert restored is not None and restored.basis == (1, 2)
    later = evaluate(rb, recs, D("2025-01-01")).scheme("s")
    assert (
        later is not None and later.points == 90 and later.basis == (2,)
    )  # "big" restores after 1y


def test_brackets_from_attribute_once_per_and_caps() -> None:
    rb = book(
        schemes=[
            scheme(
                base=0,
                rules=[
                    {
                        "id": "br",
                        "when": {"kinds": ["fine"]},
                        "brackets": [
                            {"amount_at_least": 0, "points": -1},
                            {"amount_at_least": 1000, "points": -5},
                        ],
                    },
                    {
                        "id": "pts",
                        "when": {"kinds": ["traffic"]},
                        "from_attribute": {"attribute": "points", "factor": -1},
                    },
                    {
                        "id": "cyc",
                        "when": {"kinds": ["arrears"]},
                        "points": -2,
                        "once_per": "cycle",
                    },
                    {
                        "id": "vol",
                        "when": {"kinds": ["vol"]},
                        "points": 4,
                        "cap": {"total": 6, "per": "year"},
                    },
                ],
            )
        ]
    )
    recs = [
        rec(1, "fine", "2024-05-01", amount=2000),
        rec(2, "fine", "2024-05-01", amount=10),
        rec(3, "fine", "2024-05-01"),  # no amount: not scored
        rec(4, "traffic", "2024-05-01", points=3),
        rec(5, "arrears", "2024-05-02", cycle="2024-05"),
        rec(6, "arrears", "2024-05-20", cycle="2024-05"),
        rec(7, "arrears", "2024-06-02", cycle="2024-06"),
        rec(8, "vol", "2024-01-01"),
        rec(9, "vol", "2024-02-01"),
        rec(10, "vol", "2023-12-31"),
    ]
    s = evaluate(rb, recs, D("2024-06-30")).scheme("s")
    assert s is not None
    assert s.points == -5 - 1 - 3 - 2 - 2 + 6 + 4
    assert ("vol", 8.0, 6.0) in s.capped
    assert 6 not in s.basis and 3 not in s.basis


def test_cycle_consent_limits_and_bands() -> None:
    rb = book(
        schemes=[
            scheme(
                cycle={"anchor": "04-01"},
                consent_kind="consent",
                grades={
                    "order": ["A", "B", "C"],
                    "bands": [{"grade": "A", "min": 95}, {"grade": "B", "min": 80}, {"grade": "C"}],
                    "limits": [
                        {"id": "d", "at_best": "C", "when": {"kinds": ["dui"]}, "for": "6m"}
                    ],
                },
            )
        ]
    )
    base = [rec(1, "consent", "2020-01-01"), rec(2, "k", "2024-03-31"), rec(3, "k", "2024-04-01")]
    s = evaluate(rb, base, D("2024-05-01")).scheme("s")
    assert s is not None and s.points == 90 and s.grade == "B"  # record 2 is in the last cycle
    assert s.next_change == D("2025-04-01")
    no_consent = evaluate(rb, base[1:], D("2024-05-01")).scheme("s")
    assert no_consent is not None and no_consent.points is None and not no_consent.consent
    limited = evaluate(rb, [*base, rec(4, "dui", "2024-04-15")], D("2024-05-01")).scheme("s")
    assert limited is not None and (limited.band_grade, limited.grade) == ("B", "C")
    assert limited.limits == (("d", 4, D("2024-10-15")),) and 4 in limited.basis


def test_only_in_force_records_decided_by_the_day_count() -> None:
    rb = book(schemes=[scheme()])
    recs = [rec(1, "k", "2024-01-01", in_force=False), rec(2, "k", "2024-07-01")]
    s = evaluate(rb, recs, D("2024-06-30")).scheme("s")
    assert s is not None and s.points == 100 and s.basis == ()


def test_memoranda_bind_lists_and_grades_with_subject_kinds() -> None:
    rb = book(
        lists=[lst([{"id": "e", "when": {"kinds": ["k"]}}])],
        schemes=[
            scheme(
                subjects=["person", "enterprise"],
                grades={"order": ["A", "B"], "bands": [{"grade": "A", "min": 100}, {"grade": "B"}]},
            )
        ],
        memoranda=[
            {
                "id": "m",
                "title": "M",
                "legal_basis": "x",
                "bindings": [
                    {"when": {"list": "L"}, "measures": ["travel.flights"], "subjects": ["person"]},
                    {
                        "when": {"list": "L"},
                        "measures": ["procurement.exclusion"],
                        "subjects": ["enterprise"],
                    },
                    {
                        "when": {"scheme": "s", "grades": ["B"]},
                        "measures": ["inspection.increased"],
                    },
                ],
            }
        ],
    )
    st = evaluate(rb, [rec(1, "k", "2024-01-01")], D("2024-02-01"))
    assert st.measure_ids() == {"travel.flights", "inspection.increased"}
    via = {m.measure_id: m.via for m in st.measures}
    assert via == {"travel.flights": "list:L", "inspection.increased": "scheme:s:B"}


@pytest.mark.parametrize("kind", [None, "enterprise"])
def test_subject_restrictions_skip_lists_and_schemes(kind: str | None) -> None:
    rb = book(
        lists=[lst([{"id": "e", "when": {"kinds": ["k"]}}], subjects=["person"])],
        schemes=[scheme()],
    )
    r = Rec(1, "generic:X", kind, "k", D("2024-01-01"))
    st = evaluate(rb, [r], D("2024-02-01"))
    assert st.memberships == () and st.schemes == ()
