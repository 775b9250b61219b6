"""A due-process rulebook on the cn calendar, its authorities, and record rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.rulebooks import Rulebook
from socialcredit.status.service import StatusService

SUBJ = "cn-rid:11010519491231002X"
OTHER = "cn-rid:440524188001010014"
FIRM = "cn-uscc:91350100M000100Y43"
OFFICER_1 = "cn-rid:110101199003074477"
OFFICER_2 = "cn-rid:11010119900307651X"
OFFICER_3 = "cn-rid:110101199003070011"

RULEBOOK_YAML = """\
id: t-cases
title: Test rulebook for due process
jurisdiction: CN
version: "1"
effective: {from: 2020-01-01}
lists:
  - id: defaulters
    title: Defaulters
    type: black
    authority: Test court
    legal_basis: Test basis for the defaulter list
    source: test fixture
    confidence: U
    entry:
      - id: refuses
        when:
          kinds: [court.judgment-defaulter]
          attributes: {ground: [able-but-refuses]}
      - id: fixed-term
        when:
          kinds: [court.judgment-defaulter]
          attributes: {ground: [obstructs-enforcement, evades-enforcement]}
        grace: 7d
        term: {length: 1y}
    removal:
      - id: performed
        when: {kinds: [court.obligation-performed]}
        match_attributes: [case_no]
    repair:
      minimum: 6m
      conditions: [credit.commitment]
  - id: serious
    title: Seriously untrustworthy
    type: black
    authority: Test market regulator
    legal_basis: Test basis for the serious list
    source: test fixture
    confidence: U
    entry:
      - id: listing
        when: {kinds: [market.serious-violation-listing]}
        term: {length: 3y}
    review: {required: true, four_eyes: true}
  - id: watched
    title: Watched
    type: key-attention
    authority: Test office
    legal_basis: Test basis for the watch list
    source: test fixture
    confidence: U
    entry:
      - id: late
        when: {kinds: [utility.late-payment]}
        term: {length: 6m}
    review: {required: true}
memoranda:
  - id: m
    title: Measures
    legal_basis: Test memorandum basis
    source: test fixture
    confidence: U
    bindings:
      - when: {list: defaulters}
        measures: [travel.flights]
      - when: {list: serious}
        measures: [procurement.exclusion]
      - when: {list: watched}
        measures: [consumption.star-hotels]
procedure:
  calendar: cn
  source: test fixture
  confidence: U
  deadlines:
    objection_response: 5wd
    repair_decision: 3wd
    review_decision: 10d
"""


def write_rulebook(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rulebook.yaml").write_text(RULEBOOK_YAML, encoding="utf-8")
    return folder


def setup_authorities(ledger: Ledger) -> None:
    ledger.register_authority(
        "court-1",
        "Test Court",
        "court",
        ["court.judgment-defaulter", "court.obligation-performed"],
    )
    ledger.register_authority(
        "samr-1", "Test SAMR", "market-regulation", ["market.serious-violation-listing"]
    )
    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    ledger.register_authority(
        "credit-1", "Test Credit Office", "credit-office", ["credit.commitment"]
    )


def defaulter(
    ref: str, subject: str, day: str, ground: str = "able-but-refuses", case: str = "C1"
) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "court.judgment-defaulter",
        "decision_no": f"D-{ref}",
        "decision_date": day,
        "severity": "serious",
        "attributes": {"ground": ground, "case_no": case},
    }


def serious(ref: str, subject: str, day: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "market.serious-violation-listing",
        "decision_no": f"S-{ref}",
        "decision_date": day,
        "severity": "serious",
        "attributes": {"field": "food"},
    }


def late(ref: str, subject: str, day: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "utility.late-payment",
        "decision_no": f"W-{ref}",
        "decision_date": day,
        "severity": "minor",
        "attributes": {"utility": "water"},
    }


def commitment(ref: str, subject: str, day: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "credit.commitment",
        "decision_no": f"K-{ref}",
        "decision_date": day,
        "attributes": {"purpose": "credit-repair"},
    }


@dataclass
class World:
    ledger: Ledger
    status: StatusService
    clock: FixedClock

    @property
    def books(self) -> list[Rulebook]:
        return self.status.rulebooks

    def furnish(self, authority: str, row: dict[str, Any]) -> int:
        seq = self.ledger.furnish(authority, row).seq
        self.status.catch_up()
        return seq

    def day(self, d: str) -> None:
        self.clock.set(f"{d}T09:00:00")

    def measures(self, subject: str) -> set[str]:
        import sqlalchemy as sa

        from socialcredit.status.schema import measure_index

        with self.ledger.engine.connect() as conn:
            return {
                r[0]
                for r in conn.execute(
                    sa.select(measure_index.c.measure).where(measure_index.c.subject == subject)
                )
            }

    def status_of(self, subject: str) -> dict[str, Any]:
        rows = self.status.current(subject)
        assert len(rows) == 1
        st: dict[str, Any] = rows[0]["status"]
        return st

    def lists(self, subject: str) -> set[str]:
        return {m["list"] for m in self.status_of(subject)["memberships"]}
