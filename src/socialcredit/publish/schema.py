"""Tables of the publication room (on the ledger's ``metadata``; migration ``0005_publish``)."""

from __future__ import annotations

from socialcredit.ledger.schema import metadata  # noqa: F401
