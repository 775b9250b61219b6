"""Due process: the notice outbox, deliveries, contacts and correction propagation (see ``socialcredit.cases.notices_schema``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("notice_id", _AUTO_ID, primary_key=True),
        sa.Column("recipient_kind", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("source_seq", sa.BigInteger),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_notices_dedupe_key"),
    )
    op.create_index("ix_notices_recipient", "notices", ["recipient_kind", "recipient", "notice_id"])
    op.create_index("ix_notices_subject", "notices", ["subject", "notice_id"])
    op.create_table(
        "notice_deliveries",
        sa.Column("delivery_id", _AUTO_ID, primary_key=True),
        sa.Column("notice_id", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("notice_id", "channel", "target", name="uq_notice_deliveries_target"),
    )
    op.create_index("ix_notice_deliveries_due", "notice_deliveries", ["state", "next_attempt_at"])
    op.create_table(
        "notice_contacts",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("email", sa.String(254)),
        sa.Column("webhook_url", sa.String(500)),
        sa.Column("webhook_secret", sa.String(200)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "party_webhooks",
        sa.Column("party_id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(500)),
        sa.Column("secret", sa.String(200)),
        sa.Column("email", sa.String(254)),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "notice_watermarks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for name in (
        "notice_watermarks",
        "party_webhooks",
        "notice_contacts",
        "notice_deliveries",
        "notices",
    ):
        op.drop_table(name)
