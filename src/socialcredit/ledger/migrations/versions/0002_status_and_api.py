"""Enforcement: active rulebooks, materialised status, the eligibility index, relying parties,
API keys, the decision log and the access log (see ``socialcredit.status.schema``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "active_rulebooks",
        sa.Column("rulebook_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(140), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("activated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "status_watermark",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "status_current",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("rulebook_id", sa.String(64), primary_key=True),
        sa.Column("rulebook_ref", sa.String(140), nullable=False),
        sa.Column("evaluated_for", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("next_change", sa.Date),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_status_current_next_change", "status_current", ["next_change"])
    op.create_table(
        "status_history",
        sa.Column("id", _AUTO_ID, primary_key=True),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("rulebook_id", sa.String(64), nullable=False),
        sa.Column("rulebook_ref", sa.String(140), nullable=False),
        sa.Column("from_date", sa.Date, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_status_history_subject", "status_history", ["subject", "id"])
    op.create_table(
        "measure_index",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("rulebook_id", sa.String(64), primary_key=True),
        sa.Column("measure", sa.String(64), primary_key=True),
        sa.Column("memorandum", sa.String(64), primary_key=True),
        sa.Column("via", sa.String(140), primary_key=True),
        sa.Column("rulebook_ref", sa.String(140), nullable=False),
        sa.Column("domain", sa.String(32), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("since", sa.Date),
    )
    op.create_table(
        "status_changes",
        sa.Column("change_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("subject", sa.String(80)),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "relying_parties",
        sa.Column("party_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("domains", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(80)),
        sa.Column("label", sa.String(200)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("revoked_at", sa.DateTime),
    )
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("party_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("measure", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("basis", sa.Text),
        sa.Column("rulebooks", sa.String(300), nullable=False),
    )
    op.create_index("ix_decisions_subject", "decisions", ["subject", "decision_id"])
    op.create_table(
        "access_log",
        sa.Column("id", _AUTO_ID, primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("role", sa.String(16)),
        sa.Column("scope", sa.String(80)),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(80)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_index("ix_decisions_subject", table_name="decisions")
    op.drop_table("decisions")
    op.drop_table("api_keys")
    op.drop_table("relying_parties")
    op.drop_table("status_changes")
    op.drop_table("measure_index")
    op.drop_index("ix_status_history_subject", table_name="status_history")
    op.drop_table("status_history")
    op.drop_index("ix_status_current_next_change", table_name="status_current")
    op.drop_table("status_current")
    op.drop_table("status_watermark")
    op.drop_table("active_rulebooks")
