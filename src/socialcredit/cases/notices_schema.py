"""Tables of the notice outbox (on the ledger's ``metadata``; migration ``0004_notices`` creates them)."""

from __future__ import annotations

from socialcredit.ledger.schema import metadata  # noqa: F401
