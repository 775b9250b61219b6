"""Publication: signing keys, the report log, watchlists and their alerts (see ``socialcredit.publish.schema``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("retired_at", sa.DateTime),
    )
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(40), primary_key=True),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_reports_subject", "reports", ["subject"])
    op.create_table(
        "watchlists",
        sa.Column("owner", sa.String(100), primary_key=True),
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("webhook_url", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_watchlists_subject", "watchlists", ["subject"])
    op.create_table(
        "watch_public",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("entries", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "watch_alerts",
        sa.Column("alert_id", _AUTO_ID, primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("webhook_url", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime),
        sa.Column("delivered_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_watch_alerts_due", "watch_alerts", ["status", "next_attempt_at"])
    op.create_index("ix_watch_alerts_owner", "watch_alerts", ["owner", "alert_id"])
    op.create_table(
        "publish_watermarks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("publish_watermarks")
    op.drop_index("ix_watch_alerts_owner", table_name="watch_alerts")
    op.drop_index("ix_watch_alerts_due", table_name="watch_alerts")
    op.drop_table("watch_alerts")
    op.drop_table("watch_public")
    op.drop_index("ix_watchlists_subject", table_name="watchlists")
    op.drop_table("watchlists")
    op.drop_index("ix_reports_subject", table_name="reports")
    op.drop_table("reports")
    op.drop_table("signing_keys")
