"""Portal search: identifiers, prefixes, substrings; persons only while they have public entries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.publish import search as S
from socialcredit.status.service import StatusService
from tests.portal.helpers import (
    COMPANY,
    COMPANY2,
    PERSON,
    PERSON2,
    PERSON_MASKED,
    setup_registry,
)

D = dt.date.fromisoformat


def refs(led: Ledger, q: str, day: str = "2026-01-15") -> list[str]:
    return [h.subject_ref for h in S.search(led.engine, q, D(day))]


def test_search_keeps_in_step_and_hides_private_persons(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    seqs = setup_registry(db_url, clock, tmp_path / "rb")
    with Ledger.open(db_url, clock=clock) as led:
        svc = StatusService(led)
        today = D("2026-01-15")
        assert S.sync(led.engine, svc.rulebooks, today) == 5  # two persons, three companies
        assert S.sync(led.engine, svc.rulebooks, today) == 0  # idle: nothing to do

        # a listed person is found by name prefix, case-insensitively, and shown masked
        assert refs(led, "zhang") == [PERSON_MASKED]
        hit = S.search(led.engine, "Zhang San", today)[0]
        assert hit.person and hit.slug == f"p{hit.rid}" and PERSON not in hit.slug
        # ... and by their exact identifier (lower case, full-width forms normalised)
        assert refs(led, "11010519491231002x") == [PERSON_MASKED]
        # a person on a private list only is not findable at all
        assert refs(led, "Li Si") == []
        assert refs(led, PERSON2) == []
        # organisations are always findable: registry data is public
        assert refs(led, "quiet water") == [COMPANY2]
        assert refs(led, COMPANY) == [COMPANY]
        assert refs(led, COMPANY.split(":")[1].lower()) == [COMPANY]
        # substring (trigram on SQLite, LIKE or pg_trgm on PostgreSQL)
        assert refs(led, "bright pipes") == [COMPANY]
        assert refs(led, "Co., Ltd.").count(COMPANY) == 1
        assert refs(led, "") == []
        assert refs(led, "no such name anywhere") == []
        # the publicity period of the person's entry ends on 2027-03-01
        assert refs(led, "zhang", "2027-02-28") == [PERSON_MASKED]
        assert refs(led, "zhang", "2027-03-01") == []

        # the record is retracted: the person drops out once the index catches up
        led.retract("court-1", seqs["d1"], "d1-retract", "wrong person")
        svc.catch_up()
        assert S.sync(led.engine, svc.rulebooks, today) >= 1
        assert refs(led, "zhang") == []
        # a new company appears by name
        led.furnish(
            "court-1",
            {
                "ref": "d9",
                "subject": "cn-uscc:911101017597306315",
                "subject_name": "Quiet Water Holding",
                "kind": "court.judgment-defaulter",
                "decision_no": "D-9",
                "decision_date": "2026-01-10",
                "severity": "serious",
                "attributes": {"ground": "able-but-refuses", "case_no": "C9"},
            },
        )
        svc.catch_up()
        S.sync(led.engine, svc.rulebooks, today)
        hits = S.search(led.engine, "quiet water", today)
        assert [h.name for h in hits] == ["Quiet Water Holding"]
        # a full rebuild gives the same answers
        S.rebuild(led.engine, svc.rulebooks, today)
        assert refs(led, "quiet water") == [COMPANY2]
        assert refs(led, "zhang") == []
