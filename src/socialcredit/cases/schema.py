"""Tables of the cases room (on the ledger's ``metadata``; migration ``0003_cases`` creates them).

* ``cases`` — one row per case (objection, repair application, review, tip): a **projection** of
  the ledger's ``action`` entries. Every change to a case is an action entry appended in the same
  transaction that updates the row, and :func:`socialcredit.cases.actions.rebuild_cases` recomputes
  the whole table from the entries (a test proves the two equal). ``case_id`` is the ``seq`` of the
  entry that opened the case. ``last_seq`` is the last action entry folded into the row.
"""

from __future__ import annotations

import sqlalchemy as sa

from socialcredit.ledger.schema import metadata

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("case_type", sa.String(16), nullable=False),  # objection | repair | review | tip
    sa.Column("state", sa.String(16), nullable=False),  # open | answered | decided | closed ...
    sa.Column("subject_key", sa.String(80), nullable=False),
    sa.Column("record_seq", sa.BigInteger),  # the record (lineage origin) concerned, if any
    sa.Column("rulebook_id", sa.String(64)),
    sa.Column("list_id", sa.String(64)),
    sa.Column("opened_by", sa.String(120), nullable=False),  # actor
    sa.Column("opened_at", sa.DateTime, nullable=False),
    sa.Column("opened_on", sa.Date, nullable=False),
    sa.Column("deadline_key", sa.String(64)),
    sa.Column("deadline", sa.Date),
    sa.Column("deadline_rulebook", sa.String(64)),  # whose procedure set it ("default": §9)
    sa.Column("missed", sa.Boolean, nullable=False),  # the deadline passed unanswered
    sa.Column("late", sa.Boolean, nullable=False),  # answered or decided after the deadline
    sa.Column("outcome", sa.String(32)),
    sa.Column("closed_by", sa.String(120)),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("reason", sa.Text),  # the opening "why" (objection grounds, tip text, ...)
    sa.Column("detail", sa.Text, nullable=False),  # JSON: everything else (reviews, reporter...)
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Index("ix_cases_subject", "subject_key"),
    sa.Index("ix_cases_state_deadline", "state", "deadline"),
)
