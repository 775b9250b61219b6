"""The append-only, hash-chained ledger of records furnished by accredited authorities."""

from socialcredit.ledger.db import migrate, resolve_url, write_transaction
from socialcredit.ledger.store import Appended, Ledger, Outcome, RecordView, VerifyReport
from socialcredit.ledger.validate import Authority, RecordValidator

__all__ = [
    "Appended",
    "Authority",
    "Ledger",
    "Outcome",
    "RecordValidator",
    "RecordView",
    "VerifyReport",
    "migrate",
    "resolve_url",
    "write_transaction",
]
