"""The decision log's subject index moves off the answer path (``decision_subjects``).

An index on ``decisions(subject, decision_id)`` maintained with every commit writes one random
page per decision; ``decision_subjects`` is filled in bulk, in subject order, behind the log, and
``decision_index_mark`` says how far it reaches (see ``socialcredit.status.decisions``).

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
