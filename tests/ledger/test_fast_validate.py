"""The import's fast path agrees with the full one.

``RecordValidator.plan`` accepts the common rows quickly and leaves every other row to
``validate``; the importer reads quote-free CSV lines by splitting them and writes COPY text
itself. Each shortcut is held here to the thing it replaces: same verdicts, same stored values,
same row numbers, same bytes on the wire.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.catalog import load_catalogue
from socialcredit.errors import Problem
from socialcredit.ledger import Ledger, chain
from socialcredit.ledger.importer import (
    _csv_rows,
    _split_line,
    copy_escape,
    copy_fields,
    copy_text,
    import_file,
)
from socialcredit.ledger.validate import (
    PREPARED_FIELDS,
    Authority,
    RecordValidator,
    prepare,
)

from .helpers import COMPANY, PERSON, PERSON2

TODAY = dt.date(2026, 1, 15)
CATALOGUE = load_catalogue()
AUTHORITIES = {
    "water-1": Authority("water-1", "Waterworks", "utility", frozenset({"utility.late-payment"})),
    "tax-1": Authority(
        "tax-1", "Tax Bureau", "tax", frozenset({"tax.arrears", "tax.credit-rating"})
    ),
}


def _validator(authority: str) -> RecordValidator:
    return RecordValidator(CATALOGUE, AUTHORITIES[authority], TODAY)


# one validator per authority for the whole run, as in an import: memo tables fill up across rows
SHARED = {a: _validator(a) for a in AUTHORITIES}
PLANS: dict[tuple[str, tuple[str, ...]], Any] = {}

# values chosen to sit on either side of every rule, plus arbitrary text
VALUES: dict[str, list[Any]] = {
    "ref": ["R1", " R2 ", "", "  ", "x" * 128, "x" * 129, "a\tb", "a\\b", None, 7],
    "subject": [
        PERSON,
        PERSON2,
        COMPANY,
        " " + PERSON + " ",
        PERSON.lower(),
        "cn-rid:110105194912310021",  # wrong check character
        "cn-uscc:91110105MA01AB3CX1",
        "generic:ABC-1",
        "nonsense",
        "",
        None,
    ],
    "subject_scheme": ["cn-rid", " CN-RID ", "generic", "", "xx", None],
    "subject_id": [PERSON.split(":")[1], "ABC-1", "", "12", None],
    "subject_kind": ["person", "enterprise", " person ", "", "alien", None],
    "subject_name": ["Name", "  ", None, "x" * 250, " A ", "tab\there", 12],
    "kind": [
        "utility.late-payment",
        " utility.late-payment ",
        "tax.arrears",
        "tax.credit-rating",
        "court.judgment-defaulter",
        "nope",
        "",
        None,
    ],
    "decision_no": ["D1", " D2 ", "", "  ", None, 3],
    "decision_date": [
        "2025-03-01",
        " 2025-03-01 ",
        "2026-01-15",
        "2026-01-16",
        "2025-02-30",
        "20250301",
        "",
        None,
        dt.date(2025, 1, 1),
        dt.date(2027, 1, 1),
        dt.datetime(2025, 1, 1, 12, 0),
        20250101,
    ],
    "severity": ["minor", "MINOR", " general ", "serious", "", None, "bogus"],
    "amount": [
        "12.30",
        "12.3",
        "12",
        "012.30",
        "1.234",
        "-1",
        "abc",
        "",
        None,
        " 5.00 ",
        "\uff11\uff12.5",  # full-width digits
        "\u00b2",  # a superscript two: a digit, not a decimal
        "1e3",
        "123456789012345",
        "1234567890123456",
        "1E100",
        " 1000000000000000 ",
        ".5",
        "5.",
        12.5,
        True,
    ],
    "legal_basis": ["Art 1", "", None, " Art 2 "],
    "attributes": [None, "", "  ", '{"utility":"water"}', "{bad", {"utility": "gas"}, "[]"],
    "attr.utility": ["water", "gas", "lava", "", None, " water ", 1],
    "attr.court_finding": ["true", "false", "maybe", "", None, True],
    "attr.deadline": ["2025-02-01", "soon", "", None],
    "attr.grade": ["A", "Z", "", None],
    "attr.year": ["2024", "1999", "x", "", None, 2024],
    "attr.score": ["88.5", "101", "", None],
}
# valid rows of three kinds, in several spellings; a draw then spoils some of them
GOOD: dict[str, tuple[str, dict[str, list[Any]]]] = {
    "utility.late-payment": (
        "water-1",
        {
            "severity": ["minor", " General "],
            "amount": ["12.30", "12", "", None, " 5.00 ", "\uff11\uff12.5", "0.5", "1.234"],
            "attr.utility": ["water", " gas "],
            "attr.court_finding": ["true", "false", "", None],
        },
    ),
    "tax.arrears": (
        "tax-1",
        {
            "severity": ["general", "SERIOUS"],
            "amount": ["100", "99.99"],
            "attr.deadline": ["2025-02-01", dt.date(2025, 2, 1)],
        },
    ),
    "tax.credit-rating": (
        "tax-1",
        {"attr.grade": ["A", "D"], "attr.year": ["2024", " 2030 "], "attr.score": ["", "88.5"]},
    ),
}
SUBJECTS = [PERSON, PERSON2, COMPANY, " " + PERSON.lower() + " "]
COMMON: dict[str, list[Any]] = {
    "ref": ["R1", " R2 ", "x" * 128, "x" * 129],
    "decision_no": ["D1", " D 2 "],
    "decision_date": [
        "2025-03-01",
        " 2025-03-01 ",
        "2026-01-15",
        "2026-01-16",
        dt.date(2025, 1, 1),
    ],
    "subject_name": ["Name", "  ", None, "x" * 250, "tab\there"],
    "legal_basis": ["Art 1", "", None],
}


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, list[str], list[Any]]:
    kind = draw(st.sampled_from(sorted(GOOD)))
    authority, own = GOOD[kind]
    row: dict[str, Any] = {"kind": draw(st.sampled_from([kind, f" {kind} "]))}
    subject = draw(st.sampled_from(SUBJECTS if kind != "tax.credit-rating" else [COMPANY]))
    if draw(st.booleans()):
        row["subject"] = subject
    else:
        row["subject_scheme"], row["subject_id"] = subject.strip().split(":")
    if draw(st.booleans()):
        row["subject_kind"] = "enterprise" if subject == COMPANY else "person"
    for field, choices in [*own.items(), *COMMON.items()]:
        if field not in ("subject_name", "legal_basis") or draw(st.booleans()):
            row[field] = draw(st.sampled_from(choices))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):  # spoil or add a field
        field = draw(st.sampled_from(sorted(VALUES)))
        row[field] = draw(st.one_of(st.sampled_from(VALUES[field]), st.text(max_size=6)))
    if draw(st.integers(0, 9)) == 0:  # drop a field
        row.pop(draw(st.sampled_from(sorted(row))))
    columns = draw(st.permutations(list(row)))
    return authority, list(columns), [row[c] for c in columns]


def _fast(authority: str, columns: list[str], values: list[Any]) -> Any:
    key = (authority, tuple(columns))
    if key not in PLANS:
        PLANS[key] = SHARED[authority].plan(columns)
    plan = PLANS[key]
    return None if plan is None else plan(values)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_fast_plan_accepts_only_what_validate_accepts_with_the_same_values(
    row: tuple[str, list[str], list[Any]],
) -> None:
    authority, columns, values = row
    mapping = dict(zip(columns, values, strict=True))
    draft, problems = SHARED[authority].validate(mapping)
    # the memo tables never change a verdict or a problem: a fresh validator says the same
    assert (draft, problems) == _validator(authority).validate(mapping)
    assert (draft is None) == bool(problems)
    fast = _fast(authority, columns, values)
    if fast is not None:
        assert draft is not None, f"fast path accepted a row validate() refuses: {problems}"
        assert fast == prepare(draft)
    if draft is not None:
        assert chain.furnish_content_hash(authority, prepare(draft)) == chain.content_hash(draft)


def test_fast_plan_takes_the_common_rows() -> None:
    """The fast path is not dead code: ordinary rows of every shape go through it."""
    columns = ["ref", "subject", "kind", "decision_no", "decision_date", "severity", "amount"]
    plan = _validator("water-1").plan([*columns, "attr.utility", "subject_name"])
    assert plan is not None
    row = ["W1", PERSON, "utility.late-payment", "D1", "2025-03-01", "minor", "12.30", "water", ""]
    assert plan(row) == (
        "W1",
        PERSON,
        "person",
        None,
        "utility.late-payment",
        "D1",
        "2025-03-01",
        "minor",
        1230,
        CATALOGUE.record_kinds["utility.late-payment"].legal_basis,
        '{"utility":"water"}',
    )
    parts = ["ref", "subject_scheme", "subject_id", "kind", "decision_no", "decision_date"]
    by_parts = _validator("tax-1").plan([*parts, "attr.grade", "attr.year"])
    assert by_parts is not None
    uscc = COMPANY.split(":")[1]
    ok = by_parts(
        ["T1", "cn-uscc", uscc, "tax.credit-rating", "T/1", dt.date(2025, 4, 1), "A", "2024"]
    )
    assert ok is not None and ok[1] == COMPANY and ok[-1] == '{"grade":"A","year":2024}'
    # unknown or repeated columns, or a required one missing: no fast path at all
    assert _validator("water-1").plan([*columns, "colour"]) is None
    assert _validator("water-1").plan([*columns, "ref"]) is None
    assert _validator("water-1").plan(columns[1:]) is None


# ---------------------------------------------------------------- reading CSV


def _reference_rows(text: str) -> list[tuple[int, Any]]:
    """Rows as the importer read them with the csv module alone (before the quote-free fast
    path): (row number, values) or (row number, rule)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    width = len(header)
    out: list[tuple[int, Any]] = []
    line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return out
        except csv.Error:
            out.append((line + 1, "malformed-csv"))
            line = reader.line_num
            continue
        row_no, line = line + 1, reader.line_num
        if not values:
            continue
        out.append((row_no, values if len(values) == width else "malformed-row"))


def _fast_rows(text: str) -> list[tuple[int, Any]]:
    lines = io.StringIO(text, newline="")
    header = next(csv.reader(lines))
    out: list[tuple[int, Any]] = []
    for row_no, row in _csv_rows(lines, 1):
        if isinstance(row, Problem):
            out.append((row_no, row.rule))
            continue
        values = _split_line(row) if isinstance(row, str) else row
        out.append((row_no, values if len(values) == len(header) else "malformed-row"))
    return out


FIELD = st.text(alphabet='ab ,"\n\r\t\\\x00\u3000', max_size=6)


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    width = draw(st.integers(1, 4))
    records = draw(st.lists(st.lists(FIELD, min_size=1, max_size=5), max_size=8))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow([f"c{i}" for i in range(width)])
    text = out.getvalue()
    for record in records:
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerow(record)
        text += out.getvalue() + draw(st.sampled_from(["", "", "\n", "\r\n"]))  # blank lines
        if draw(st.booleans()):  # raw junk: stray quotes, unterminated fields
            text += draw(st.text(alphabet='ab,"\n', max_size=6))
    return text


@settings(max_examples=300, deadline=None)
@given(csv_texts())
def test_csv_lines_read_as_the_csv_module_reads_them(text: str) -> None:
    assert _fast_rows(text) == _reference_rows(text)


# ---------------------------------------------------------------- COPY text

TEXT = st.one_of(st.none(), st.text(max_size=8).filter(lambda s: "\x00" not in s))


@st.composite
def prepared_rows(draw: st.DrawFn) -> tuple[Any, ...]:
    return (
        draw(st.text(min_size=1, max_size=8).filter(lambda s: "\x00" not in s)),
        *[draw(TEXT) for _ in range(7)],
        draw(st.one_of(st.none(), st.integers(0, 10**17))),
        draw(TEXT),
        draw(TEXT),
    )


@settings(max_examples=300, deadline=None)
@given(prepared_rows())
def test_copy_text_is_what_psycopg_writes(prepared: tuple[Any, ...]) -> None:
    from psycopg._copy_base import TextFormatter
    from psycopg.adapt import Transformer

    formatter = TextFormatter(Transformer())
    wire = bytes(formatter.write_row((*prepared, None))) + bytes(formatter.end())
    assert (copy_text(prepared) + "\n").encode() == wire
    assert copy_fields(copy_text(prepared)) == [
        None if v is None else str(v) for v in (*prepared, None)
    ]
    assert len(PREPARED_FIELDS) == len(prepared)


def test_copy_escape_of_a_timestamp_is_psycopgs() -> None:
    from psycopg._copy_base import TextFormatter
    from psycopg.adapt import Transformer

    for t in (dt.datetime(2026, 1, 15, 9, 30), dt.datetime(2026, 1, 15, 9, 30, 0, 120)):
        formatter = TextFormatter(Transformer())
        wire = bytes(formatter.write_row((t,))) + bytes(formatter.end())
        assert (copy_escape(t) + "\n").encode() == wire


# ---------------------------------------------------------------- whole imports, both backends


def _expected(ledger: Ledger, rows: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any] | None]:
    validator = ledger.validator("water-1")
    for row in rows:
        yield validator.validate(row)[0]


def test_awkward_text_is_stored_exactly(ledger: Ledger, tmp_path: Path) -> None:
    """Quotes, line breaks, tabs and backslashes in fields; blank lines; and a conflict in the
    same batch, so the batch takes the ledger's checked path with rows rebuilt from COPY text."""
    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    names = ["plain", 'with "quotes"', "two\nlines", "a\ttab", "back\\slash", "\\N", "cr\rhere"]
    header = ["ref", "subject", "subject_name", "kind", "decision_no", "decision_date"]
    header += ["severity", "amount", "attr.utility", "legal_basis"]

    def row(i: int, name: str, amount: str = "1.00") -> dict[str, Any]:
        basis = "Art. 1\\2" if i % 2 else ""
        values = [f"Q{i}", PERSON, name, "utility.late-payment", f"D,{i}", "2025-03-01", "minor"]
        return dict(zip(header, [*values, amount, "water", basis], strict=True))

    first = [row(i, n) for i, n in enumerate(names)]
    import_file(ledger, _write(tmp_path / "a.csv", header, first[:2]), "water-1")
    # Q0 again (duplicate), Q1 changed (conflict), then the rest: one batch
    second = [first[0], row(1, names[1], "2.00"), *first[2:]]
    path = _write(tmp_path / "b.csv", header, second, blank_lines=True)
    report = import_file(ledger, path, "water-1", batch_size=100)
    assert (report.stored, report.duplicates, report.rejected) == (len(names) - 2, 1, 1)
    assert [(p.row, p.rule) for p in report.problems] == [(4, "conflict")]  # blank line 3
    stored = {v.authority_ref: v for v in ledger.iter_records()}
    for draft in _expected(ledger, first):
        assert draft is not None
        got = stored[draft["authority_ref"]]
        assert (got.subject_name, got.decision_no, got.legal_basis) == (
            draft["subject_name"],
            draft["decision_no"],
            draft["legal_basis"],
        )
    assert ledger.verify().ok


def test_ndjson_rows_of_several_shapes(ledger: Ledger, tmp_path: Path) -> None:
    import json

    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    base = {"ref": "N0", "subject": PERSON, "kind": "utility.late-payment", "decision_no": "D"}
    base |= {"decision_date": "2025-03-01", "severity": "minor", "attr.utility": "gas"}
    rows = [
        base,
        {**base, "ref": "N1", "amount": 3.5},  # a number: the full path
        {**base, "ref": "N2", "amount": "3.50", "subject_name": "X"},
        {**base, "ref": "N3", "attr.utility": None, "attributes": {"utility": "water"}},
        {**base, "ref": "N4", "severity": "fatal"},  # refused
    ]
    path = tmp_path / "n.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_file(ledger, path, "water-1")
    assert (report.stored, report.rejected) == (4, 1)
    assert [(p.row, p.field, p.rule) for p in report.problems] == [(5, "severity", "enum")]
    stored = {v.authority_ref: v for v in ledger.iter_records()}
    assert stored["N1"].amount_minor == stored["N2"].amount_minor == 350
    assert stored["N3"].attributes == {"utility": "water"}
    assert ledger.verify().ok


def _write(
    path: Path, header: list[str], rows: list[dict[str, Any]], blank_lines: bool = False
) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([r[h] for h in header])
            if blank_lines:
                f.write("\r\n")
    return path


@pytest.mark.parametrize("value", ["1.00", "１.００"])
def test_amount_shortcut_matches_parse_amount(value: str) -> None:
    from socialcredit.ledger.validate import parse_amount

    columns = ["ref", "subject", "kind", "decision_no", "decision_date", "severity", "amount"]
    plan = _validator("water-1").plan([*columns, "attr.utility"])
    assert plan is not None
    got = plan(["R", PERSON, "utility.late-payment", "D", "2025-01-01", "minor", value, "gas"])
    assert got is not None and got[8] == parse_amount(value) == 100


def test_an_amount_beyond_the_ledger_is_refused_not_a_crash() -> None:
    """1E100 yuan used to pass validation and then break the content hash (64-bit integers)."""
    row = {"ref": "R", "subject": PERSON, "kind": "utility.late-payment", "decision_no": "D"}
    row |= {"decision_date": "2025-01-01", "severity": "minor", "attr.utility": "gas"}
    for amount in ("1E100", "1000000000000000", "999999999999999.99"):
        draft, problems = _validator("water-1").validate({**row, "amount": amount})
        if amount.startswith("9"):
            assert draft is not None and draft["amount_minor"] == 99999999999999999
        else:
            assert draft is None
            assert [(p.field, p.rule, p.value, p.message) for p in problems] == [
                (
                    "amount",
                    "type:amount",
                    amount,
                    "is too large: at most 15 digits before the decimal point",
                )
            ]
