"""Explanations name records, rules, removal triggers, repair dates and the next change."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from socialcredit.engine.explain import explain, render
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import evaluate
from socialcredit.rulebooks.loader import load
from socialcredit.rulebooks.model import Rulebook
from tests.rulebooks.helpers import CLEAN_DIR, mutate, write

S = "cn-rid:11010519491231002X"


@pytest.fixture(scope="module")
def rb() -> Rulebook:
    return load(CLEAN_DIR)


def recs() -> list[Rec]:
    return [
        Rec(
            1,
            S,
            "person",
            "court.judgment-defaulter",
            dt.date(2024, 6, 1),
            "serious",
            120050,
            {"ground": "able-but-refuses", "case_no": "(2024) Zhi 7"},
        ),
        Rec(
            2,
            S,
            "person",
            "utility.late-payment",
            dt.date(2024, 9, 1),
            "minor",
            None,
            {"utility": "water"},
        ),
        Rec(3, S, "person", "civil.volunteering", dt.date(2024, 10, 1), None, None, {"hours": 20}),
        Rec(
            4,
            S,
            "person",
            "court.judgment-defaulter",
            dt.date(2024, 12, 28),
            "serious",
            None,
            {"ground": "able-but-refuses", "case_no": "(2024) Zhi 9"},
        ),
    ]


def test_a_listing_is_explained_with_records_rules_removal_and_repair(rb: Rulebook) -> None:
    st = evaluate(rb, recs(), dt.date(2025, 1, 1))
    ex = explain(st, rb, recs())
    text = "\n".join(render(ex))
    # the membership: list, rule, record, term end, removal trigger, repair date
    assert "Listed on defaulters" in text and "since 2024-06-11, until 2026-06-11" in text
    assert "entry rule refuses" in text and "record #1" in text
    assert "SPC Fa Shi (2013) No. 17, art. 1" in text  # the list's legal basis
    assert "the listing ends on 2026-06-11" in text
    assert (
        "removal 'performed': a court.obligation-performed record for the same case_no "
        "((2024) Zhi 7) removes you; the listing authority (the enforcing court) must take the "
        "entry down within 3 working days"
    ) in text
    assert "you may apply for credit repair from 2025-06-11 once you have:" in text
    assert "(credit.commitment record) — not yet on file" in text
    # the pending listing from record 4, with the way to avoid it
    assert "takes effect on 2025-01-07 (entry rule refuses)" in text
    assert "record #4" in text and "same case_no ((2024) Zhi 9)" in text
    # the scheme: base + contributions with rule ids, band, limit, grade, next change
    assert (
        "points = base 1000 −5 (record #2, rule late-utility) +20 (record #3, rule volunteering)"
        in text
    )
    assert "= 1015 points" in text and "band reached: B (from 990 points)" in text
    assert (
        "limit defaulter-at-best-c: grade at best C until 2025-06-01 because of record #1" in text
    )
    assert "grade: C" in text
    assert "next change on 2025-06-01: limit defaulter-at-best-c from record #1 ends" in text
    # the measures, with memorandum and legal basis from the catalogue
    assert "travel.flights" in text and "memorandum spending" in text
    assert "legal basis: SPC Several Provisions on Restricting High Spending" in text


def test_the_json_has_the_next_change(rb: Rulebook) -> None:
    st = evaluate(rb, recs(), dt.date(2025, 1, 1))
    ex = explain(st, rb, recs())
    json.dumps(ex)  # JSON-able
    assert ex["next_change"] == {
        "date": "2025-01-07",
        "changes": [
            "defaulters: now also because of record #4",
            "defaulters: listed until 2027-01-07",
        ],
    }
    [civic] = ex["schemes"]
    assert civic["next_change"] == {
        "date": "2025-06-01",
        "points": 1015.0,
        "grade": "C",  # record 4's limit still holds
        "because": ["limit defaulter-at-best-c from record #1 ends"],
    }
    [m] = ex["memberships"]
    assert [r["id"] for r in m["records"]] == [1] and m["rules"][0]["id"] == "refuses"
    assert m["repair"]["from"] == "2025-06-11"
    assert [p["list"] for p in ex["pending"]] == ["defaulters"]
    assert {x["measure"]: [b["via"] for b in x["brought_by"]] for x in ex["measures"]} == {
        "consumption.star-hotels": ["list:defaulters"],
        "travel.flights": ["list:defaulters"],
    }
    [flights] = [x for x in ex["measures"] if x["measure"] == "travel.flights"]
    assert flights["type"] == "sanction" and flights["brought_by"][0]["records"] == [1]
    assert flights["brought_by"][0]["ends"] == "2026-06-11"


def test_record_dicts_bring_decision_numbers_and_authorities(rb: Rulebook) -> None:
    rows = {
        7: {
            "record_id": 7,
            "subject": S,
            "subject_kind": "person",
            "kind": "court.judgment-defaulter",
            "decision_no": "(2024) Jing 0105 Zhi 123",
            "decision_date": "2024-06-01",
            "authority_id": "bj-chaoyang-court",
            "severity": "serious",
            "amount": 1200.5,
            "attributes": {"ground": "able-but-refuses", "case_no": "A"},
            "state": "active",
        }
    }
    st = evaluate(rb, [Rec.from_row(r) for r in rows.values()], dt.date(2025, 1, 1))
    text = "\n".join(render(explain(st, rb, rows)))
    assert (
        "because of record #7: Listed as a dishonest judgment defaulter "
        "(court.judgment-defaulter), decision (2024) Jing 0105 Zhi 123, decided 2024-06-01, "
        "by bj-chaoyang-court, severity serious, amount 1200.50 yuan"
    ) in text


def test_scores_caps_and_rewards(rb: Rulebook) -> None:
    vol = [
        Rec(1, S, "person", "civil.volunteering", dt.date(2024, 2, 1), None, None, {"hours": 30}),
        Rec(2, S, "person", "civil.volunteering", dt.date(2024, 3, 1), None, None, {"hours": 40}),
    ]
    st = evaluate(rb, vol, dt.date(2024, 6, 1))
    ex = explain(st, rb, vol)
    text = "\n".join(render(ex))
    assert "cap: rule volunteering totals 70, capped to 50" in text
    assert "= 1050 points" in text and "grade: A" in text
    assert "public-services.deposit-free" in text and "your grade A in scheme civic" in text


def test_nothing_applies(rb: Rulebook) -> None:
    st = evaluate(
        rb, [], dt.date(2024, 6, 1), subject="cn-uscc:91110105MA01AB3CXM", subject_kind="enterprise"
    )
    lines = render(explain(st, rb, []))
    assert any("Nothing in this rulebook applies" in x for x in lines)
    assert lines[-1].startswith("Next change: none scheduled")


def test_a_scheme_without_consent_is_not_scored_and_says_why(tmp_path: Path) -> None:
    text = mutate(("  - id: civic\n", "  - id: civic\n    consent_kind: credit.commitment\n"))
    rb = load(write(tmp_path, text))
    vol = [
        Rec(1, S, "person", "civil.volunteering", dt.date(2024, 2, 1), None, None, {"hours": 30})
    ]
    ex = explain(evaluate(rb, vol, dt.date(2024, 6, 1)), rb, vol)
    [civic] = ex["schemes"]
    assert civic["points"] is None and civic["consent"] is False
    assert "needs an in-force credit.commitment record (consent)" in "\n".join(render(ex))
