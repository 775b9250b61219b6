"""RecordKind.coerce_attributes: every rule, and properties of the coercion."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.catalog import AttributeSpec, RecordKind
from socialcredit.errors import Problem

SOURCE = {"ref": "test", "confidence": "U"}


def make_kind(attributes: dict[str, dict[str, Any]], kind_id: str = "test.kind") -> RecordKind:
    return RecordKind.model_validate(
        {
            "id": kind_id,
            "title": "Test",
            "description": "A test kind.",
            "category": "judicial",
            "subject_kinds": ["person"],
            "severities": [],
            "furnisher_types": ["court"],
            "disclosure": "public",
            "attributes": attributes,
            "legal_basis": "none",
            "source": SOURCE,
        }
    )


KIND = make_kind(
    {
        "case_no": {"type": "string", "required": True, "description": "Case."},
        "years": {"type": "integer", "minimum": 0, "maximum": 3, "description": "Years."},
        "share": {"type": "number", "minimum": 0, "maximum": 1, "description": "Share."},
        "count": {"type": "integer", "description": "Unbounded."},
        "amount": {"type": "number", "description": "Unbounded."},
        "deadline": {"type": "date", "description": "Deadline."},
        "criminal": {"type": "boolean", "description": "Crime?"},
        "ground": {
            "type": "enum",
            "values": ["able-but-refuses", "evades-enforcement"],
            "description": "Ground.",
        },
    },
    kind_id="court.sample",
)


def coerce(**raw: Any) -> tuple[dict[str, Any], list[Problem]]:
    raw.setdefault("case_no", "C1")
    return KIND.coerce_attributes(raw)


def only_problem(**raw: Any) -> Problem:
    _out, problems = coerce(**raw)
    assert len(problems) == 1, problems
    return problems[0]


# -- happy paths -------------------------------------------------------------------------------


def test_strings_and_natives_coerce_to_json_natives() -> None:
    from_csv, p1 = coerce(
        case_no="  (2024)执1号 ",
        years="2",
        share="0.25",
        count="-7",
        amount="12",
        deadline="2024-02-29",
        criminal="Yes",
        ground=" evades-enforcement ",
    )
    from_json, p2 = coerce(
        case_no="(2024)执1号",
        years=2,
        share=0.25,
        count=-7,
        amount=12,
        deadline=date(2024, 2, 29),
        criminal=True,
        ground="evades-enforcement",
    )
    assert p1 == p2 == []
    assert (
        from_csv
        == from_json
        == {
            "case_no": "(2024)执1号",
            "years": 2,
            "share": 0.25,
            "count": -7,
            "amount": 12,
            "deadline": "2024-02-29",
            "criminal": True,
            "ground": "evades-enforcement",
        }
    )
    assert type(from_csv["years"]) is int and type(from_csv["amount"]) is int


def test_the_input_is_not_modified_and_the_output_is_new() -> None:
    raw = {"case_no": " x ", "years": "1"}
    out, _ = KIND.coerce_attributes(raw)
    assert raw == {"case_no": " x ", "years": "1"}
    assert out is not raw


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (12, 12),
        (12.0, 12),
        ("12.0", 12),
        ("+3", 3),
        (" 4 ", 4),
        ("1e3", 1000),
        (Decimal("5"), 5),
        (-0.0, 0),
    ],
)
def test_integer_accepts(value: Any, expected: int) -> None:
    out, problems = coerce(count=value)
    assert problems == []
    assert out["count"] == expected and type(out["count"]) is int


@pytest.mark.parametrize(
    "value", ["12.5", 12.5, True, False, "abc", "1_000", "١٢", "nan", "inf", math.inf, [1], "0x10"]
)
def test_integer_refuses(value: Any) -> None:
    p = only_problem(count=value)
    assert (p.field, p.rule, p.value) == ("attributes.count", "type:integer", value)
    assert p.message == "attribute 'count' of a court.sample record must be a whole number"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12", 12), ("0.5", 0.5), (0.5, 0.5), (7, 7), ("-1e-3", -0.001), (Decimal("2.5"), 2.5)],
)
def test_number_accepts(value: Any, expected: float) -> None:
    out, problems = coerce(amount=value)
    assert problems == []
    assert out["amount"] == expected


@pytest.mark.parametrize("value", ["abc", True, "nan", math.nan, "inf", -math.inf, "1,5", {}])
def test_number_refuses(value: Any) -> None:
    p = only_problem(amount=value)
    assert (p.rule, p.value) == ("type:number", value)
    assert p.message == "attribute 'amount' of a court.sample record must be a number"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-31", "2024-01-31"),
        (date(2024, 1, 31), "2024-01-31"),
        (datetime(2024, 1, 31), "2024-01-31"),
        (" 2024-01-31 ", "2024-01-31"),
    ],
)
def test_date_accepts(value: Any, expected: str) -> None:
    out, problems = coerce(deadline=value)
    assert problems == []
    assert out["deadline"] == expected


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30",
        "20240131",
        "2024-1-31",
        "31/01/2024",
        "2024-W05-3",
        "2024-01-31T00:00",
        datetime(2024, 1, 31, 12, 0),
        20240131,
        "２０２４-01-31",
    ],
)
def test_date_refuses(value: Any) -> None:
    p = only_problem(deadline=value)
    assert (p.rule, p.value) == ("type:date", value)
    assert (
        p.message
        == "attribute 'deadline' of a court.sample record must be a date written YYYY-MM-DD"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("FALSE", False),
        ("Yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (" yes ", True),
    ],
)
def test_boolean_accepts(value: Any, expected: bool) -> None:
    out, problems = coerce(criminal=value)
    assert problems == []
    assert out["criminal"] is expected


@pytest.mark.parametrize("value", ["y", "maybe", 2, 1.0, "t", "on"])
def test_boolean_refuses(value: Any) -> None:
    p = only_problem(criminal=value)
    assert (p.rule, p.value) == ("type:boolean", value)
    assert "of a court.sample record must be true or false" in p.message


def test_enum() -> None:
    p = only_problem(ground="Able-But-Refuses")
    assert (p.field, p.rule, p.value) == ("attributes.ground", "enum", "Able-But-Refuses")
    assert p.message == (
        "attribute 'ground' of a court.sample record must be one of: able-but-refuses, "
        "evades-enforcement"
    )
    assert only_problem(ground=1).rule == "enum"


def test_string_accepts_numbers_and_refuses_containers() -> None:
    out, problems = coerce(case_no=12345)
    assert (out, problems) == ({"case_no": "12345"}, [])
    p = only_problem(case_no=["a"])
    assert (p.rule, p.field) == ("type:string", "attributes.case_no")


def test_minimum_and_maximum() -> None:
    p = only_problem(years="4")
    assert (p.field, p.rule, p.value) == ("attributes.years", "maximum", "4")
    assert p.message == "attribute 'years' of a court.sample record must be at most 3"
    p = only_problem(years=-1)
    assert (p.rule, p.message) == (
        "minimum",
        "attribute 'years' of a court.sample record must be at least 0",
    )
    p = only_problem(share="1.5")
    assert (p.rule, p.message) == (
        "maximum",
        "attribute 'share' of a court.sample record must be at most 1",
    )
    out, problems = coerce(years="3", share="0")
    assert problems == [] and out["years"] == 3 and out["share"] == 0


def test_missing_values_are_dropped_and_required_ones_reported() -> None:
    out, problems = KIND.coerce_attributes(
        {"case_no": "   ", "years": "", "deadline": None, "criminal": "", "ground": ""}
    )
    assert out == {}
    assert problems == [
        Problem(
            "attributes.case_no",
            "required",
            "   ",
            "attribute 'case_no' is required for a court.sample record",
        )
    ]
    out, problems = KIND.coerce_attributes({})
    assert out == {}
    assert [(p.field, p.rule, p.value) for p in problems] == [
        ("attributes.case_no", "required", None)
    ]


def test_a_present_but_invalid_required_value_is_a_type_problem_not_a_missing_one() -> None:
    kind = make_kind({"n": {"type": "integer", "required": True, "description": "N."}})
    _, problems = kind.coerce_attributes({"n": "x"})
    assert [p.rule for p in problems] == ["type:integer"]


def test_unknown_attribute() -> None:
    out, problems = coerce(yeras="2")
    assert out == {"case_no": "C1"}
    (p,) = problems
    assert (p.field, p.rule, p.value) == ("attributes.yeras", "unknown-attribute", "2")
    assert p.message.startswith(
        "'yeras' is not an attribute of record kind court.sample; its attributes are: case_no, "
        "years,"
    )


def test_every_problem_is_reported() -> None:
    _, problems = KIND.coerce_attributes(
        {"years": "x", "share": "2", "deadline": "soon", "criminal": "?", "ground": "z", "q": 1}
    )
    assert sorted(p.rule for p in problems) == sorted(
        [
            "type:integer",
            "maximum",
            "type:date",
            "type:boolean",
            "enum",
            "unknown-attribute",
            "required",
        ]
    )


def test_a_kind_without_attributes() -> None:
    kind = make_kind({})
    assert kind.coerce_attributes({}) == ({}, [])
    _, problems = kind.coerce_attributes({"x": "1"})
    assert problems[0].message == (
        "'x' is not an attribute of record kind test.kind; its attributes are: (none)"
    )


def test_compiled_converters_do_not_leak_into_the_model() -> None:
    again = RecordKind.model_validate(KIND.model_dump())
    assert again == KIND
    assert "_coerce" not in KIND.model_dump()
    assert "_coerce" not in KIND.model_dump_json()


def test_a_copy_with_new_attributes_coerces_by_the_new_schema() -> None:
    copied = KIND.model_copy(
        update={"attributes": {"n": AttributeSpec(type="integer", description="N.")}}
    )
    assert copied.coerce_attributes({"n": "3"}) == ({"n": 3}, [])
    assert KIND.coerce_attributes({"n": "3"})[1][0].rule == "unknown-attribute"


# -- properties --------------------------------------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
integers = st.integers(min_value=-(10**30), max_value=10**30)

SPECS_AND_VALUES: list[tuple[dict[str, Any], st.SearchStrategy[Any]]] = [
    ({"type": "integer"}, integers | finite_floats),
    ({"type": "integer", "minimum": -5, "maximum": 5}, integers | finite_floats),
    ({"type": "number"}, integers | finite_floats),
    ({"type": "number", "minimum": 0, "maximum": 1}, integers | finite_floats),
    ({"type": "date"}, st.dates()),
    ({"type": "boolean"}, st.booleans() | st.sampled_from([0, 1])),
    ({"type": "enum", "values": ["A", "B", "M", "C", "D"]}, st.sampled_from("ABMCDEX")),
]
KINDS = [make_kind({"v": {**spec, "description": "Property."}}) for spec, _ in SPECS_AND_VALUES]


@st.composite
def kind_and_value(draw: st.DrawFn) -> tuple[RecordKind, Any]:
    i = draw(st.integers(min_value=0, max_value=len(KINDS) - 1))
    return KINDS[i], draw(SPECS_AND_VALUES[i][1])


def outcome(kind: RecordKind, value: Any) -> tuple[dict[str, Any], list[str]]:
    out, problems = kind.coerce_attributes({"v": value})
    return out, [p.rule for p in problems]


def typed(d: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    return {k: (type(v), v) for k, v in d.items()}


@settings(deadline=None)  # correctness, not speed: shared CI machines are slow
@given(kind_and_value())
def test_a_value_rendered_as_a_string_coerces_like_the_native_value(
    case: tuple[RecordKind, Any],
) -> None:
    kind, value = case
    native_out, native_rules = outcome(kind, value)
    string_out, string_rules = outcome(kind, str(value))
    assert typed(string_out) == typed(native_out)
    assert string_rules == native_rules


@settings(deadline=None)  # correctness, not speed: shared CI machines are slow
@given(kind_and_value())
def test_coercion_is_idempotent(case: tuple[RecordKind, Any]) -> None:
    kind, value = case
    once, _ = kind.coerce_attributes({"v": value})
    twice, problems = kind.coerce_attributes(once)
    assert problems == []
    assert typed(twice) == typed(once)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*list(KIND.attributes), "x", "y"]),
        st.none() | st.text(max_size=12) | integers | finite_floats | st.booleans(),
    )
)
def test_coercion_never_raises_and_output_recoerces_cleanly(raw: dict[str, Any]) -> None:
    out, problems = KIND.coerce_attributes(raw)
    assert set(out) <= set(KIND.attributes)
    assert all(p.field.startswith("attributes.") for p in problems)
    again, problems_again = KIND.coerce_attributes(out)
    assert again == out
    assert [p.rule for p in problems_again] in ([], ["required"])
