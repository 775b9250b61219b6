"""Tables of the notice outbox (on the ledger's ``metadata``; migration ``0004_notices`` creates them).

* ``notices`` — one message to one recipient: a subject (``recipient_kind = 'subject'``, recipient =
  the subject key) or a relying party (``'party'``, recipient = the party id; ``subject`` is then
  the subject the message is about). ``dedupe_key`` names the event it was derived from (a ledger
  entry, a status-history row), so the notifier can never write the same notice twice. ``body`` is
  JSON: conduct, legal basis, consequences, deadline, how to respond and links.
* ``notice_deliveries`` — one row per notice × channel (``email`` | ``webhook``) × target, with its
  state (``pending`` → ``sent``; ``failed`` while retries remain; ``dead`` after the last one, still
  listed and re-drivable), attempts, next attempt and last error.
* ``notice_contacts`` — how a subject wants to be told (e-mail address, webhook URL + secret).
* ``party_webhooks`` — where a relying party receives correction notices (URL + secret, e-mail).
* ``notice_watermarks`` — how far the notifier has read each stream (``ledger``: entries.seq;
  ``status``: status_history.id). A watermark moves only in the transaction that writes the notices
  it stands for.
"""

from __future__ import annotations

import sqlalchemy as sa

from socialcredit.ledger.schema import metadata

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

notices = sa.Table(
    "notices",
    metadata,
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
    sa.Index("ix_notices_recipient", "recipient_kind", "recipient", "notice_id"),
    sa.Index("ix_notices_subject", "subject", "notice_id"),
)

notice_deliveries = sa.Table(
    "notice_deliveries",
    metadata,
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
    sa.Index("ix_notice_deliveries_due", "state", "next_attempt_at"),
)

notice_contacts = sa.Table(
    "notice_contacts",
    metadata,
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("email", sa.String(254)),
    sa.Column("webhook_url", sa.String(500)),
    sa.Column("webhook_secret", sa.String(200)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

party_webhooks = sa.Table(
    "party_webhooks",
    metadata,
    sa.Column("party_id", sa.String(64), primary_key=True),
    sa.Column("url", sa.String(500)),
    sa.Column("secret", sa.String(200)),
    sa.Column("email", sa.String(254)),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

notice_watermarks = sa.Table(
    "notice_watermarks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
