"""The ledger's tables (SQLAlchemy Core). Migrations under ``migrations/`` create exactly these.

``entries`` is the ledger itself: append-only and hash-chained. Every furnished record, correction,
retraction, overturn, state change and authority registration is one entry. The other tables are
projections or job logs that can be rebuilt from ``entries``.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

entries = sa.Table(
    "entries",
    metadata,
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
    sa.Index("ix_entries_subject_key", "subject_key"),
)

authorities = sa.Table(
    "authorities",
    metadata,
    sa.Column("authority_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("kinds", sa.Text, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("import_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
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
    sa.Index("ix_imports_file", "authority_id", "file_sha256"),
)
