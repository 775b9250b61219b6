"""A registry with public and private lists, persons and companies, for the portal tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import socialcredit.status.schema  # noqa: F401  (puts the status tables on the metadata)
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService

PERSON = "cn-rid:11010519491231002X"
PERSON_MASKED = "cn-rid:1101**********002X"
PERSON2 = "cn-rid:440524188001010014"
COMPANY = "cn-uscc:91510104261621489J"  # listed: public
COMPANY2 = "cn-uscc:911101017597306315"  # on the private list only
COMPANY3 = "cn-uscc:913201028019154891"  # listed long ago: publicity period over

RULEBOOK_YAML = """\
id: t-portal
title: Test rulebook for the portal
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
    repair:
      minimum: 6m
      source: test fixture
      confidence: U
    publicity:
      period: 2y
      fields: [subject_name, subject, kind, decision_no, decision_date]
      source: test fixture
      confidence: U
  - id: late-payers
    title: Late payers
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
        term: {length: 1y}
schemes:
  - id: points
    title: Points
    source: test fixture
    confidence: U
    subjects: [person]
    base: 100
    restore_after: 1y
    rules:
      - id: late
        when: {kinds: [utility.late-payment]}
        points: -5
    grades:
      order: [A, B, C]
      bands:
        - {grade: A, min: 105}
        - {grade: B, min: 90}
        - {grade: C}
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


def write_rulebook(folder: Path, text: str = RULEBOOK_YAML) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rulebook.yaml").write_text(text, encoding="utf-8")
    return folder


def defaulter(
    ref: str, subject: str, day: str, name: str, case: str = "C1", kind: str | None = None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ref": ref,
        "subject": subject,
        "subject_name": name,
        "kind": "court.judgment-defaulter",
        "decision_no": f"D-{ref}",
        "decision_date": day,
        "severity": "serious",
        "attributes": {"ground": "able-but-refuses", "case_no": case},
    }
    if kind:
        row["subject_kind"] = kind
    return row


def late(ref: str, subject: str, day: str, name: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "subject_name": name,
        "kind": "utility.late-payment",
        "decision_no": f"W-{ref}",
        "decision_date": day,
        "severity": "minor",
        "attributes": {"utility": "water"},
    }


def performed(ref: str, subject: str, day: str, case: str = "C1") -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "court.obligation-performed",
        "decision_no": f"P-{ref}",
        "decision_date": day,
        "attributes": {"trigger": "performed", "case_no": case},
    }


def setup_registry(
    db: str, clock: FixedClock, folder: Path, rulebook: str = RULEBOOK_YAML
) -> dict[str, int]:
    """Authorities, the rulebook (active), and records; returns record seqs by ref."""
    seqs: dict[str, int] = {}
    with Ledger.open(db, clock=clock) as led:
        led.register_authority(
            "court-1",
            "Test Court",
            "court",
            ["court.judgment-defaulter", "court.obligation-performed"],
        )
        led.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
        svc = StatusService(led)
        svc.activate(write_rulebook(folder, rulebook))
        rows = [
            ("court-1", defaulter("d1", PERSON, "2025-03-01", "Zhang San")),
            ("court-1", defaulter("d2", COMPANY, "2025-06-10", "Chengdu Bright Pipes Co., Ltd.")),
            ("court-1", defaulter("d3", COMPANY3, "2023-05-01", "Old Mill Trading Co., Ltd.")),
            ("water-1", late("w1", COMPANY2, "2025-10-01", "Quiet Water Co., Ltd.")),
            ("water-1", late("w2", COMPANY2, "2025-11-01", "Quiet Water Co., Ltd.")),
            ("water-1", late("w3", PERSON2, "2025-10-01", "Li Si")),
            ("water-1", late("w4", PERSON2, "2025-11-01", "Li Si")),
        ]
        for auth, row in rows:
            seqs[row["ref"]] = led.furnish(auth, row).seq
        svc.catch_up()
    return seqs
