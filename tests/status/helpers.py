"""A small rulebook over real catalogue kinds, and the authorities that furnish them."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import socialcredit.status.schema  # noqa: F401  (puts the status tables on the metadata)
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import turn_file
from socialcredit.ledger.schema import metadata

PEOPLE = (
    "cn-rid:11010519491231002X",
    "cn-rid:440524188001010014",
    "cn-rid:110101199003074477",
)

RULEBOOK_YAML = """\
id: t-status
title: Test rulebook for live status
jurisdiction: XX
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
        grace: 10d
        term: {length: 6m}
  - id: both
    title: On both lists
    type: black
    authority: Test office
    legal_basis: Test basis for the combined list
    source: test fixture
    confidence: U
    entry:
      - id: two-lists
        lists: {any_of: [defaulters, late-payers], at_least: 2}
schemes:
  - id: points
    title: Points
    source: test fixture
    confidence: U
    subjects: [person]
    base: 100
    restore_after: 1y
    rules:
      - id: arrears
        when: {kinds: [tax.arrears]}
        points: -15
        restore_after: 6m
      - id: late
        when: {kinds: [utility.late-payment]}
        points: -5
      - id: honour
        when: {kinds: [honour.commendation]}
        points: 10
    grades:
      order: [A, B, C]
      bands:
        - {grade: A, min: 105}
        - {grade: B, min: 90}
        - {grade: C}
      limits:
        - id: defaulter-cap
          at_best: B
          when: {kinds: [court.judgment-defaulter]}
          for: 1y
memoranda:
  - id: m-defaulters
    title: Defaulters may not fly
    legal_basis: Test memorandum basis
    source: test fixture
    confidence: U
    bindings:
      - when: {list: defaulters}
        measures: [travel.flights, travel.g-trains]
      - when: {list: late-payers}
        measures: [consumption.star-hotels]
      - when: {list: both}
        measures: [finance.loan-restriction]
  - id: m-grades
    title: Grades bind procurement and inspections
    legal_basis: Test grade memorandum basis
    source: test fixture
    confidence: U
    bindings:
      - when: {scheme: points, grades: [C]}
        measures: [procurement.exclusion]
      - when: {scheme: points, grades: [A]}
        measures: [inspection.reduced]
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
        ["court.judgment-defaulter", "court.obligation-performed", "utility.late-payment"],
    )
    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])
    ledger.register_authority("tax-1", "Test Tax Bureau", "tax", ["tax.arrears"])
    ledger.register_authority(
        "gov-1", "Test Government", "people-government", ["honour.commendation"]
    )


def wipe(ledger: Ledger) -> None:
    """Empty every table (tests only: the ledger itself is append-only)."""
    with ledger.engine.begin() as conn:
        for t in reversed(metadata.sorted_tables):
            conn.execute(t.delete())


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


def performed(ref: str, subject: str, day: str, case: str = "C1") -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "court.obligation-performed",
        "decision_no": f"P-{ref}",
        "decision_date": day,
        "attributes": {"trigger": "performed", "case_no": case},
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


def arrears(ref: str, subject: str, day: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "tax.arrears",
        "decision_no": f"T-{ref}",
        "decision_date": day,
        "severity": "general",
        "amount": "500.00",
        "attributes": {"deadline": day},
    }


def commendation(ref: str, subject: str, day: str) -> dict[str, Any]:
    return {
        "ref": ref,
        "subject": subject,
        "kind": "honour.commendation",
        "decision_no": f"H-{ref}",
        "decision_date": day,
        "attributes": {"level": "city"},
    }


@contextmanager
def turn_held_elsewhere(engine: sa.Engine) -> Iterator[Callable[[], None]]:
    """Hold the SQLite file's write turn (``ledger.db.write_turn``) as another process would, on
    a file descriptor of its own, so this process's writers wait for it too. Yields ``release``
    (to let go before the block ends); it is let go at the end in any case."""
    turn = turn_file(engine)
    assert turn is not None, "a SQLite file has a turn; PostgreSQL and memory have none"
    fd = os.open(turn, os.O_RDWR | os.O_CREAT)
    held = True

    def release() -> None:
        nonlocal held
        if held:
            fcntl.flock(fd, fcntl.LOCK_UN)
            held = False

    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield release
    finally:
        release()
        os.close(fd)
