"""A registry with persons and organisations on public and private lists (publication tests)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socialcredit.publish.schema  # noqa: F401  (puts the publication tables on the metadata)
from socialcredit import ids
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService

RULEBOOK_YAML = """\
id: t-publish
title: Test rulebook for publication
jurisdiction: XX
version: "1"
effective: {from: 2020-01-01}
lists:
  - id: defaulters
    title: Dishonest judgment defaulters
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
    removal:
      - id: performed
        when: {kinds: [court.obligation-performed]}
        match_attributes: [case_no]
    publicity:
      period: 3y
      source: test fixture
      confidence: U
  - id: late-payers
    title: Late payers (not published)
    type: key-attention
    authority: Test utilities
    legal_basis: Test basis for the late payers list
    source: test fixture
    confidence: U
    entry:
      - id: twice-a-year
        count:
          when: {kinds: [utility.late-payment]}
          at_least: 2
          within: 1y
        term: {length: 6m}
  - id: tax-arrears
    title: Tax arrears (published for 30 days)
    type: black
    authority: Test tax bureau
    legal_basis: Test basis for the tax arrears list
    source: test fixture
    confidence: U
    entry:
      - id: arrears
        when: {kinds: [tax.arrears]}
        term: {length: 3y}
    publicity:
      period: 30d
      source: test fixture
      confidence: U
  - id: honours
    title: Commended
    type: red
    authority: Test government
    legal_basis: Test basis for the red list
    source: test fixture
    confidence: U
    entry:
      - id: commended
        when: {kinds: [honour.commendation]}
        term: {length: 2y}
    publicity:
      period: 1y
      source: test fixture
      confidence: U
memoranda:
  - id: m-defaulters
    title: Defaulters may not fly
    legal_basis: Test memorandum basis
    source: test fixture
    confidence: U
    bindings:
      - when: {list: defaulters}
        measures: [travel.flights]
      - when: {list: late-payers}
        measures: [consumption.star-hotels]
"""

_rng = random.Random(20260115)
ORG_PUBLIC = "cn-uscc:" + ids.random_uscc(_rng)
ORG_PAST = "cn-uscc:" + ids.random_uscc(_rng)
ORG_RED = "cn-uscc:" + ids.random_uscc(_rng)
ORG_CLEAN = "cn-uscc:" + ids.random_uscc(_rng)
PERSON_PUBLIC = "cn-rid:11010519491231002X"  # on the public defaulter list (masked)
PERSON_PRIVATE = "cn-rid:440524188001010014"  # a private list, and a public one past its period
PERSON_CLEAN = "cn-rid:110101199003074477"
PERSONS = (PERSON_PUBLIC, PERSON_PRIVATE, PERSON_CLEAN)
NAMES = {
    PERSON_PUBLIC: "张三丰",
    PERSON_PRIVATE: "李四海",
    PERSON_CLEAN: "王五",
    ORG_PUBLIC: "Acme Trading Co., Ltd.",
    ORG_PAST: "Old Debts Ltd.",
    ORG_RED: "Honest Works Ltd.",
    ORG_CLEAN: "Quiet Co.",
}


def write_rulebook(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rulebook.yaml").write_text(RULEBOOK_YAML, encoding="utf-8")
    return folder


def _row(ref: str, subject: str, kind: str, day: str, **kw: Any) -> dict[str, Any]:
    org = subject.startswith("cn-uscc:")
    row = {
        "ref": ref,
        "subject": subject,
        "subject_name": NAMES[subject],
        "subject_kind": "enterprise" if org else "person",
        "kind": kind,
        "decision_no": f"DN-{ref}",
        "decision_date": day,
    }
    row.update(kw)
    return row


def defaulter(ref: str, subject: str, day: str, case: str = "C1") -> dict[str, Any]:
    return _row(
        ref,
        subject,
        "court.judgment-defaulter",
        day,
        severity="serious",
        attributes={"ground": "able-but-refuses", "case_no": case},
    )


def performed(ref: str, subject: str, day: str, case: str = "C1") -> dict[str, Any]:
    return _row(
        ref,
        subject,
        "court.obligation-performed",
        day,
        attributes={"trigger": "performed", "case_no": case},
    )


def late(ref: str, subject: str, day: str) -> dict[str, Any]:
    return _row(
        ref, subject, "utility.late-payment", day, severity="minor", attributes={"utility": "water"}
    )


def arrears(ref: str, subject: str, day: str) -> dict[str, Any]:
    return _row(
        ref,
        subject,
        "tax.arrears",
        day,
        severity="general",
        amount="500.00",
        attributes={"deadline": day},
    )


def commendation(ref: str, subject: str, day: str) -> dict[str, Any]:
    return _row(ref, subject, "honour.commendation", day, attributes={"level": "city"})


@dataclass
class World:
    db: str
    clock: FixedClock
    rulebook_dir: Path
    keys: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def open(self) -> Ledger:
        return Ledger.open(self.db, clock=self.clock)


def setup_authorities(ledger: Ledger) -> None:
    ledger.register_authority(
        "court-1",
        "Test Court",
        "court",
        ["court.judgment-defaulter", "court.obligation-performed"],
    )
    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    ledger.register_authority("tax-1", "Test Tax Bureau", "tax", ["tax.arrears"])
    ledger.register_authority(
        "gov-1", "Test Government", "people-government", ["honour.commendation"]
    )


def build_world(db: str, clock: FixedClock, tmp: Path) -> World:
    """Today is 2026-01-15 (the ``clock`` fixture)."""
    world = World(db, clock, write_rulebook(tmp / "rb-publish"))
    with world.open() as led:
        setup_authorities(led)
        led.furnish("court-1", defaulter("d-a", PERSON_PUBLIC, "2025-06-01"))
        led.furnish("water-1", late("w-b1", PERSON_PRIVATE, "2025-12-01"))
        led.furnish("water-1", late("w-b2", PERSON_PRIVATE, "2025-12-20"))
        led.furnish("tax-1", arrears("t-b", PERSON_PRIVATE, "2025-01-02"))
        led.furnish("court-1", defaulter("d-x", ORG_PUBLIC, "2025-09-01", case="C9"))
        led.furnish("tax-1", arrears("t-y", ORG_PAST, "2024-05-01"))
        led.furnish("gov-1", commendation("h-z", ORG_RED, "2025-10-01"))
        led.furnish("water-1", late("w-c", ORG_CLEAN, "2025-11-01"))
        StatusService(led).activate(world.rulebook_dir)
    return world
