"""The migrations create exactly the tables the code describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import socialcredit.cases.notices_schema
import socialcredit.cases.schema
import socialcredit.publish.schema
import socialcredit.status.schema  # noqa: F401
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import schema_revision
from socialcredit.ledger.schema import metadata


def test_migrated_schema_matches_the_code(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_database_is_at_the_newest_revision(ledger: Ledger) -> None:
    current, head = schema_revision(ledger.engine)
    assert current == head and head


def test_opening_twice_is_harmless(db_url: str) -> None:
    with Ledger.open(db_url) as a:
        a.register_authority("t", "T", "court", [])
    with Ledger.open(db_url) as b:
        assert [x.authority_id for x in b.authorities()] == ["t"]
        assert b.verify().ok
