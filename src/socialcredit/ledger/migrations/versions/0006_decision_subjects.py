"""The decision log is written one row per request, and expanded per answer behind it.

``decision_requests`` holds each request's answers as written before the response (one row, not
one per answer); ``decisions`` (one row per answer) and ``decision_subjects`` (who each answer was
about, in place of the index on ``decisions.subject`` that wrote one random page per answer) are
filled from it in bulk, and ``decision_index_mark`` says how far (see
``socialcredit.status.decisions``). Decisions logged row by row before this stay as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_requests",
        sa.Column("first_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("party_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("rulebooks", sa.String(300), nullable=False),
        sa.Column("items", sa.Text, nullable=False),
    )
    op.create_table(
        "decision_subjects",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("decision_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "decision_index_mark",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("upto", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO decision_subjects (subject, decision_id) "
        "SELECT subject, decision_id FROM decisions ORDER BY subject, decision_id"
    )
    op.execute(
        "INSERT INTO decision_index_mark (id, upto) "
        "SELECT 1, COALESCE(MAX(decision_id), 0) FROM decisions"
    )
    op.drop_index("ix_decisions_subject", table_name="decisions")


def downgrade() -> None:
    op.create_index("ix_decisions_subject", "decisions", ["subject", "decision_id"])
    op.drop_table("decision_index_mark")
    op.drop_table("decision_subjects")
    op.drop_table("decision_requests")
