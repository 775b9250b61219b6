from __future__ import annotations

import pytest

from socialcredit.errors import ConflictError, InputError, NotFoundError
from socialcredit.ledger import Ledger

from .helpers import COMPANY, PERSON, PERSON2, defaulter_row, setup_authorities, utility_row


@pytest.fixture
def reg(ledger: Ledger) -> Ledger:
    setup_authorities(ledger)
    return ledger


def _refused(ledger: Ledger, authority: str, row: dict[str, object]) -> list[tuple[str, str]]:
    before = ledger.count()
    with pytest.raises(InputError) as e:
        ledger.furnish(authority, row)
    assert ledger.count() == before, "a refused record must change nothing"
    return [(p.field, p.rule) for p in e.value.problems]


def test_furnish_and_read_back(reg: Ledger) -> None:
    out = reg.furnish("court-1", defaulter_row())
    assert out.status == "stored"
    [rec] = reg.subject_records(PERSON)
    assert rec.record_id == out.seq == rec.origin_id
    assert rec.kind == "court.judgment-defaulter"
    assert rec.amount_minor == 100050
    assert rec.attributes == {"ground": "able-but-refuses", "case_no": "(2025) Test Zhi 1"}
    assert rec.authority_id == "court-1" and rec.authority_ref == "R-1"
    assert rec.legal_basis  # defaulted from the catalogue
    assert rec.in_force and rec.state == "active"
    assert reg.verify().ok


def test_bad_check_character_names_position_and_expected(reg: Ledger) -> None:
    with pytest.raises(InputError) as e:
        reg.furnish("court-1", defaulter_row(subject="cn-rid:110105194912310021"))
    [p] = e.value.problems
    assert (p.field, p.rule) == ("subject", "check-character")
    assert "18" in p.message and "X" in p.message
    assert reg.count().get("furnish", 0) == 0


def test_unknown_kind(reg: Ledger) -> None:
    assert _refused(reg, "court-1", defaulter_row(kind="court.no-such-kind")) == [
        ("kind", "unknown-kind")
    ]


def test_authority_not_accredited(reg: Ledger) -> None:
    problems = _refused(reg, "water-1", defaulter_row())
    assert problems == [("kind", "not-accredited")]
    with pytest.raises(InputError) as e:
        reg.furnish("water-1", defaulter_row())
    assert (
        "water-1" in e.value.problems[0].message
        and "court.judgment-defaulter" in e.value.problems[0].message
    )


def test_accreditation_must_fit_the_catalogue(ledger: Ledger) -> None:
    with pytest.raises(InputError) as e:
        ledger.register_authority("water-2", "Waterworks", "utility", ["court.judgment-defaulter"])
    assert [(p.field, p.rule) for p in e.value.problems] == [("kinds", "not-furnisher")]
    with pytest.raises(InputError):
        ledger.register_authority("x", "X", "no-such-type", [])
    assert ledger.authorities() == []


def test_unregistered_authority(reg: Ledger) -> None:
    with pytest.raises(NotFoundError, match="no authority 'nobody'"):
        reg.furnish("nobody", defaulter_row())


def test_missing_and_mistyped_attributes(reg: Ledger) -> None:
    row = defaulter_row(attributes={"case_no": "x", "extension_years": "two"})
    problems = _refused(reg, "court-1", row)
    assert ("attributes.ground", "required") in problems
    assert ("attributes.extension_years", "type:integer") in problems
    row = defaulter_row(attributes={"ground": "disliked-by-neighbours", "case_no": "x"})
    assert _refused(reg, "court-1", row) == [("attributes.ground", "enum")]
    row = defaulter_row(attributes={"ground": "able-but-refuses", "case_no": "x", "colour": "red"})
    assert _refused(reg, "court-1", row) == [("attributes.colour", "unknown-attribute")]


def test_required_fields_and_types(reg: Ledger) -> None:
    problems = _refused(
        reg,
        "court-1",
        defaulter_row(
            decision_no="", decision_date="31/12/2024", severity="huge", amount="12.345", extra="?"
        ),
    )
    assert set(problems) == {
        ("decision_no", "required"),
        ("decision_date", "type:date"),
        ("severity", "enum"),
        ("amount", "type:amount"),
        ("extra", "unknown-field"),
    }


def test_decision_date_in_the_future(reg: Ledger) -> None:
    # the injected clock says 2026-01-15
    assert _refused(reg, "court-1", defaulter_row(decision_date="2026-01-16")) == [
        ("decision_date", "future-date")
    ]
    assert reg.furnish("court-1", defaulter_row(decision_date="2026-01-15")).status == "stored"


def test_subject_kind_must_fit_the_kind(reg: Ledger) -> None:
    # tax arrears are furnished about organisations only in the catalogue? whatever it allows, a
    # generic identifier must say what kind of subject it is
    problems = _refused(reg, "court-1", defaulter_row(subject="generic:ABC-1"))
    assert problems == [("subject_kind", "required")]


def test_duplicate_is_a_no_op(reg: Ledger) -> None:
    first = reg.furnish("court-1", defaulter_row())
    before = reg.count()
    again = reg.furnish("court-1", defaulter_row())
    assert again.status == "duplicate" and again.seq == first.seq
    assert reg.count() == before


def test_conflicting_duplicate_is_refused(reg: Ledger) -> None:
    reg.furnish("court-1", defaulter_row())
    before = reg.count()
    with pytest.raises(ConflictError) as e:
        reg.furnish("court-1", defaulter_row(amount="999"))
    [p] = e.value.problems
    assert (p.field, p.rule, p.value) == ("ref", "conflict", "R-1")
    assert reg.count() == before
    # the same reference from another authority is a different record
    reg.register_authority("court-2", "Other Court", "court", ["court.judgment-defaulter"])
    assert reg.furnish("court-2", defaulter_row(amount="999")).status == "stored"


def test_correct_retract_overturn(reg: Ledger) -> None:
    first = reg.furnish("court-1", defaulter_row())
    fixed = reg.correct("court-1", first.seq, "R-1-c1", {"amount": "800.00"}, "amount mistyped")
    [rec] = reg.subject_records(PERSON)
    assert rec.record_id == fixed.seq and rec.origin_id == first.seq
    assert rec.amount_minor == 80000 and rec.versions == 2
    assert [h["op"] for h in rec.history] == ["furnish", "correct"]
    # the old version is still in the ledger, untouched
    assert reg.entry(first.seq)["amount_minor"] == 100050
    # only the current version can be acted on
    with pytest.raises(InputError, match="superseded"):
        reg.retract("court-1", first.seq, "R-1-r", "wrong person")
    # another authority may not retract it; a court may overturn it
    reg.register_authority("court-2", "Higher Court", "court", ["court.judgment-defaulter"])
    with pytest.raises(InputError) as e:
        reg.retract("court-2", fixed.seq, "X-1", "no")
    assert e.value.problems[0].rule == "not-furnisher"
    reg.overturn("court-2", fixed.seq, "H-1", "overturned on reconsideration")
    [rec] = reg.subject_records(PERSON)
    assert rec.state == "overturned" and not rec.in_force
    with pytest.raises(InputError, match="overturned"):
        reg.retract("court-1", fixed.seq, "R-1-r", "late")
    assert reg.verify().ok


def test_correction_cannot_move_a_record_to_another_subject(reg: Ledger) -> None:
    first = reg.furnish("court-1", defaulter_row())
    with pytest.raises(InputError) as e:
        reg.correct("court-1", first.seq, "c", {"subject": PERSON2}, "typo")
    assert e.value.problems[0].rule == "immutable"


def test_correction_is_validated_like_a_new_record(reg: Ledger) -> None:
    first = reg.furnish("court-1", defaulter_row())
    with pytest.raises(InputError) as e:
        reg.correct("court-1", first.seq, "c", {"attr.ground": "bad"}, "typo")
    assert [(p.field, p.rule) for p in e.value.problems] == [("attributes.ground", "enum")]
    with pytest.raises(InputError, match="reason"):
        reg.correct("court-1", first.seq, "c", {"amount": "1"}, " ")


def test_known_at_shows_the_file_as_it_was(reg: Ledger, clock) -> None:  # type: ignore[no-untyped-def]
    first = reg.furnish("court-1", defaulter_row())
    then = clock.now()
    clock.advance(days=3)
    reg.retract("court-1", first.seq, "R-1-r", "furnished in error")
    assert reg.subject_records(PERSON)[0].state == "retracted"
    assert reg.subject_records(PERSON, known_at=then)[0].state == "active"


def test_records_stream_matches_subject_files(reg: Ledger) -> None:
    for i in range(7):
        reg.furnish("water-1", utility_row(f"W{i}", subject=PERSON if i % 2 else PERSON2))
    reg.furnish("court-1", defaulter_row(subject=COMPANY))
    first = reg.subject_records(PERSON)[0]
    reg.correct("water-1", first.record_id, "W-fix", {"amount": "1.00"}, "fix")
    streamed = {r.origin_id: r.as_dict() for r in reg.iter_records(batch=3)}
    by_subject = {
        r.origin_id: r.as_dict() for s in (PERSON, PERSON2, COMPANY) for r in reg.subject_records(s)
    }
    assert streamed == by_subject
    assert len(streamed) == 8


def test_reregistering_unchanged_authority_writes_nothing(reg: Ledger) -> None:
    before = reg.count()
    reg.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    assert reg.count() == before
    reg.register_authority(
        "water-1", "Test Waterworks", "utility", ["utility.late-payment", "utility.theft"]
    )
    assert reg.count()["authority"] == before["authority"] + 1
    assert "utility.theft" in reg.authority("water-1").kinds
