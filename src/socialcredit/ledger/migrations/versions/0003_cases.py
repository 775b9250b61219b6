"""Due process: cases (objections, repair applications, reviews), tips (see ``socialcredit.cases.schema``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("case_type", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("subject_key", sa.String(80), nullable=False),
        sa.Column("record_seq", sa.BigInteger),
        sa.Column("rulebook_id", sa.String(64)),
        sa.Column("list_id", sa.String(64)),
        sa.Column("opened_by", sa.String(120), nullable=False),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("deadline_key", sa.String(64)),
        sa.Column("deadline", sa.Date),
        sa.Column("deadline_rulebook", sa.String(64)),
        sa.Column("missed", sa.Boolean, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(32)),
        sa.Column("closed_by", sa.String(120)),
        sa.Column("closed_at", sa.DateTime),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_cases_subject", "cases", ["subject_key"])
    op.create_index("ix_cases_state_deadline", "cases", ["state", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_cases_state_deadline", "cases")
    op.drop_index("ix_cases_subject", "cases")
    op.drop_table("cases")
