"""Small builders shared by the ledger tests."""

from __future__ import annotations

from typing import Any

from socialcredit.ledger import Ledger

PERSON = "cn-rid:11010519491231002X"
PERSON2 = "cn-rid:440524188001010014"
COMPANY = "cn-uscc:91110105MA01AB3CXM"


def setup_authorities(ledger: Ledger) -> None:
    ledger.register_authority(
        "court-1",
        "Test District Court",
        "court",
        ["court.judgment-defaulter", "court.spending-restriction", "court.obligation-performed"],
    )
    ledger.register_authority(
        "tax-1", "Test Tax Bureau", "tax", ["tax.arrears", "tax.credit-rating"]
    )
    ledger.register_authority("water-1", "Test Waterworks", "utility", ["utility.late-payment"])


def defaulter_row(ref: str = "R-1", subject: str = PERSON, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ref": ref,
        "subject": subject,
        "subject_name": "Test Person",
        "kind": "court.judgment-defaulter",
        "decision_no": "(2025) Test Zhi 1",
        "decision_date": "2025-06-01",
        "severity": "serious",
        "amount": "1000.50",
        "attributes": {"ground": "able-but-refuses", "case_no": "(2025) Test Zhi 1"},
    }
    row.update(over)
    return row


def utility_row(ref: str, subject: str = PERSON, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ref": ref,
        "subject": subject,
        "kind": "utility.late-payment",
        "decision_no": f"W-{ref}",
        "decision_date": "2025-02-01",
        "severity": "minor",
        "amount": "12.30",
        "attr.utility": "water",
    }
    row.update(over)
    return row
