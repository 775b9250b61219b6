"""Tables of the cases room (on the ledger's ``metadata``; migration ``0003_cases`` creates them)."""

from __future__ import annotations

from socialcredit.ledger.schema import metadata  # noqa: F401
