"""What is public: publicity periods (boundary days), masking, private lists, review gates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.publish.public import (
    PublicEntry,
    is_public,
    mask_subject,
    membership_blocked,
    public_entries,
    public_lists,
    publish_until,
)
from socialcredit.status.service import StatusService
from tests.portal.helpers import (
    COMPANY,
    COMPANY2,
    COMPANY3,
    PERSON,
    PERSON2,
    PERSON_MASKED,
    setup_registry,
)

D = dt.date.fromisoformat


def entries_on(db: str, clock: FixedClock, day: str, **kw: str) -> list[PublicEntry]:
    with Ledger.open(db, clock=clock) as led:
        svc = StatusService(led)
        return list(public_entries(led.engine, svc.rulebooks, D(day), **kw))


@pytest.fixture
def reg(db_url: str, clock: FixedClock, tmp_path: Path) -> tuple[str, dict[str, int]]:
    return db_url, setup_registry(db_url, clock, tmp_path / "rb")


def test_mask_subject() -> None:
    assert mask_subject(PERSON) == PERSON_MASKED
    assert mask_subject(COMPANY) == COMPANY  # organisation codes are public
    assert mask_subject("generic:ABCDEFGH") == "generic:AB****GH"
    assert mask_subject("generic:ABCDEFGH", "enterprise") == "generic:ABCDEFGH"
    assert mask_subject("cn-rid:not-an-id").startswith("cn-rid:")
    assert "not-an-id" not in mask_subject("cn-rid:not-an-id")


def test_only_public_lists_and_periods(reg: tuple[str, dict[str, int]], clock: FixedClock) -> None:
    db, seqs = reg
    got = entries_on(db, clock, "2026-01-15")
    by_ref = {e.subject_ref: e for e in got}
    # the person (masked) and the company are public; the late payers list has no publicity;
    # COMPANY3's listing is still in force but its two-year publicity period ended 2025-05-01
    assert set(by_ref) == {PERSON_MASKED, COMPANY}
    assert COMPANY2 not in by_ref and COMPANY3 not in by_ref
    assert PERSON2 not in str([e.as_dict() for e in got])

    person = by_ref[PERSON_MASKED]
    assert person.list_id == "defaulters" and person.list_type == "black"
    assert person.since == D("2025-03-01") and person.until is None
    assert person.publish_until == D("2027-03-01")
    assert person.subject_kind == "person" and person.subject_name == "Zhang San"
    assert person.record_ids == (seqs["d1"],)
    assert person.fields == {
        "subject_name": "Zhang San",
        "subject": PERSON_MASKED,
        "kind": "court.judgment-defaulter",
        "decision_no": "D-d1",
        "decision_date": "2025-03-01",
    }
    text = orjson.dumps([e.as_dict() for e in got]).decode()
    assert "11010519491231002X" not in text  # no unmasked identifier anywhere
    assert "case_no" not in text  # attributes are not among the published fields

    company = by_ref[COMPANY]
    assert company.fields["subject"] == COMPANY and not company.masked
    assert company.legal_basis == "Test basis for the defaulter list"


def test_boundary_day_of_the_publicity_period(
    reg: tuple[str, dict[str, int]], clock: FixedClock
) -> None:
    db, _ = reg
    # listed 2025-03-01 with a 2y period: published up to and including 2027-02-28
    last = entries_on(db, clock, "2027-02-28", subject=PERSON)
    assert [e.subject_ref for e in last] == [PERSON_MASKED]
    assert is_public(last[0], D("2027-02-28"))
    assert not is_public(last[0], D("2027-03-01"))
    assert entries_on(db, clock, "2027-03-01", subject=PERSON) == []
    # and never before the listing starts
    assert not is_public(last[0], D("2025-02-28"))


def test_filters(reg: tuple[str, dict[str, int]], clock: FixedClock) -> None:
    db, _ = reg
    assert [e.subject_ref for e in entries_on(db, clock, "2026-01-15", subject=COMPANY)] == [
        COMPANY
    ]
    assert entries_on(db, clock, "2026-01-15", list_id="late-payers") == []
    assert len(entries_on(db, clock, "2026-01-15", list_id="defaulters")) == 2
    assert entries_on(db, clock, "2026-01-15", rulebook_id="nope") == []


def test_retracted_record_is_no_longer_public(
    reg: tuple[str, dict[str, int]], clock: FixedClock
) -> None:
    db, seqs = reg
    with Ledger.open(db, clock=clock) as led:
        led.retract("court-1", seqs["d2"], "d2-retract", "entered in error")
        StatusService(led).catch_up()
    assert [e.subject_ref for e in entries_on(db, clock, "2026-01-15")] == [PERSON_MASKED]


def test_review_gate_and_publish_until() -> None:
    assert membership_blocked({"list": "x", "review": "proposed"})
    assert membership_blocked({"list": "x", "review": {"state": "halted"}})
    assert not membership_blocked({"list": "x", "review": "confirmed"})
    assert not membership_blocked({"list": "x"})
    import yaml

    from socialcredit.rulebooks.model import Rulebook
    from tests.portal.helpers import RULEBOOK_YAML

    rb = Rulebook.model_validate(yaml.safe_load(RULEBOOK_YAML))
    lists = public_lists([rb])
    assert [lst.id for _, lst in lists] == ["defaulters"]
    assert publish_until(rb.get_list("defaulters"), D("2024-02-29")) == D("2026-02-28")
    assert publish_until(rb.get_list("late-payers"), D("2024-02-29")) is None
