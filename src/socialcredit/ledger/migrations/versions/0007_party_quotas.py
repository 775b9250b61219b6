"""Limits of answers per relying party (a day, a second), and the answers counted per party and
day.

``relying_parties.daily_limit`` and ``rate_limit`` (NULL: no limit) and ``party_usage`` (party,
day, answers), which the decision log counts in the same transaction as the answers. The count
starts from the answers still in the log (``decision_requests``), so a limit set on the day of
the upgrade counts the answers already given that day.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("relying_parties", sa.Column("daily_limit", sa.BigInteger))
    op.add_column("relying_parties", sa.Column("rate_limit", sa.BigInteger))
    op.create_table(
        "party_usage",
        sa.Column("party_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("answers", sa.BigInteger, nullable=False),
    )
    day = "date(at)" if op.get_bind().dialect.name == "sqlite" else "CAST(at AS DATE)"
    op.execute(
        f"INSERT INTO party_usage (party_id, day, answers) "
        f"SELECT party_id, {day}, SUM(n) FROM decision_requests GROUP BY party_id, {day}"
    )


def downgrade() -> None:
    op.drop_table("party_usage")
    op.drop_column("relying_parties", "rate_limit")
    op.drop_column("relying_parties", "daily_limit")
