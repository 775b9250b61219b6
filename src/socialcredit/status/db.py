"""Transactions for the enforcement tables.

Status writers, the decision log and the ledger each serialise on their own lock on PostgreSQL
(transaction-scoped advisory locks with different keys), so a status refresh never waits for a
ledger import and checks never wait for either. SQLite has one writer at a time whatever we do:
there the lock is ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from socialcredit.ledger.db import is_sqlite, write_turn

STATUS_LOCK_KEY = 0x5C0C57A7  # status_current / measure_index / watermark / status_changes
DECISION_LOCK_KEY = 0x5C0CDEC1  # decision ids
DECISION_INDEX_LOCK_KEY = 0x5C0CDEC2  # decision_subjects / decision_index_mark


@contextmanager
def locked_transaction(engine: sa.Engine, key: int) -> Iterator[sa.Connection]:
    """A write transaction holding ``key`` (PostgreSQL) or the database write lock (SQLite,
    after its :func:`~socialcredit.ledger.db.write_turn`)."""
    with write_turn(engine), engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if not is_sqlite(engine):
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield conn


def naive_utc(t: dt.datetime) -> dt.datetime:
    """Datetimes are stored as naive UTC (the ledger's convention)."""
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t
