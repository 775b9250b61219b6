"""Tables of the publication room (on the ledger's ``metadata``; migration ``0005_publish``).

* ``signing_keys`` — every public key the registry ever signed with (Ed25519, raw 32 bytes as
  base64url), by key id, so reports issued before a rotation stay verifiable. The private key
  lives in a file, never in the database.
* ``reports`` — the log of issued credit reports: id, subject, kind, sha256 of the signed PDF, the
  key id, when, and a summary safe to show on the public verification page.
* ``watchlists`` — partners an owner (an organisation's subject key or a relying party) monitors,
  with the webhook URL alerts go to.
* ``watch_public`` — the last public status seen per watched subject (to detect changes).
* ``watch_alerts`` — every alert: its exact signed body, delivery attempts and outcome. Alerts are
  never deleted; undelivered ones are retried with backoff.
* ``publish_watermarks`` — the watcher's position in ``status_changes`` (and the day it last
  re-checked every watched subject).
"""

from __future__ import annotations

import sqlalchemy as sa

from socialcredit.ledger.schema import metadata

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("public_key", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("retired_at", sa.DateTime),
)

reports = sa.Table(
    "reports",
    metadata,
    sa.Column("report_id", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.DateTime, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Index("ix_reports_subject", "subject"),
)

watchlists = sa.Table(
    "watchlists",
    metadata,
    sa.Column("owner", sa.String(100), primary_key=True),
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("webhook_url", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_watchlists_subject", "subject"),
)

watch_public = sa.Table(
    "watch_public",
    metadata,
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("entries", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

watch_alerts = sa.Table(
    "watch_alerts",
    metadata,
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
    sa.Index("ix_watch_alerts_due", "status", "next_attempt_at"),
    sa.Index("ix_watch_alerts_owner", "owner", "alert_id"),
)

publish_watermarks = sa.Table(
    "publish_watermarks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)
