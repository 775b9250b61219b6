"""The initial ledger: entries (hash-chained), the authorities projection and the import log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("authority_id", sa.String(64)),
        sa.Column("authority_ref", sa.String(128)),
        sa.Column("target_seq", sa.BigInteger),
        sa.Column("origin_seq", sa.BigInteger),
        sa.Column("subject_key", sa.String(80)),
        sa.Column("subject_kind", sa.String(32)),
        sa.Column("subject_name", sa.String(200)),
        sa.Column("kind", sa.String(64)),
        sa.Column("decision_no", sa.String(128)),
        sa.Column("decision_date", sa.Date),
        sa.Column("severity", sa.String(8)),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("legal_basis", sa.Text),
        sa.Column("attributes", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("import_id", sa.BigInteger),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("authority_id", "authority_ref", name="uq_entries_authority_ref"),
    )
    op.create_index("ix_entries_subject_key", "entries", ["subject_key"])
    op.create_table(
        "authorities",
        sa.Column("authority_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "imports",
        sa.Column(
            "import_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
        ),
        sa.Column("authority_id", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("last_row", sa.BigInteger, nullable=False),
        sa.Column("rows_stored", sa.BigInteger, nullable=False),
        sa.Column("rows_duplicate", sa.BigInteger, nullable=False),
        sa.Column("rows_rejected", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_imports_file", "imports", ["authority_id", "file_sha256"])


def downgrade() -> None:
    op.drop_table("imports")
    op.drop_table("authorities")
    op.drop_index("ix_entries_subject_key", table_name="entries")
    op.drop_table("entries")
