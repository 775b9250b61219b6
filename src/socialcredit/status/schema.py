"""Tables for enforcement: materialised status, the eligibility index, the decision log and API access.

They live on the ledger's ``metadata`` (migration ``0002_status_and_api`` creates exactly these).
Everything here except ``decisions``, ``access_log``, ``status_history``, ``api_keys`` and
``relying_parties`` is a projection of the ledger that :meth:`StatusService.rebuild` can recompute.

* ``active_rulebooks`` — the rulebooks whose outcomes are enforced (id, version, where it is loaded
  from, when it was activated).
* ``status_watermark`` — the highest ledger ``seq`` whose effects are reflected in the status
  tables. It only ever moves in the same transaction as the status it stands for.
* ``status_current`` — one row per (subject, rulebook): the status JSON (``Status.as_dict()``
  without ``as_of``), the day it was evaluated for, the next day it changes, and the last ledger
  entry about the subject it reflects.
* ``status_history`` — append-only: a row each time a subject's status under a rulebook changes.
* ``measure_index`` — one row per measure in force for a subject (via which memorandum and list or
  grade, on which records): what eligibility checks are answered from.
* ``status_changes`` — a counter of changed subjects (``subject`` NULL: everything changed). API
  workers poll it to keep their in-memory index current.
* ``relying_parties`` — registered relying parties, their type and the measure domains they may ask
  about.
* ``api_keys`` — hashed API keys with a role and a scope.
* ``decision_requests`` — every answer given to a relying party (and every refused question),
  one row per request (per 100 answers of a batch), written before the answer is sent.
* ``decisions`` / ``decision_subjects`` / ``decision_index_mark`` — one row per answer and who it
  was about: the requests expanded in bulk behind the log (readers project the rest first).
* ``access_log`` — refused requests and reads of personal data by staff (ASVS V16).
"""

from __future__ import annotations

import sqlalchemy as sa

from socialcredit.ledger.schema import metadata

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

active_rulebooks = sa.Table(
    "active_rulebooks",
    metadata,
    sa.Column("rulebook_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(140), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("activated_at", sa.DateTime, nullable=False),
)

status_watermark = sa.Table(
    "status_watermark",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

status_current = sa.Table(
    "status_current",
    metadata,
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("rulebook_id", sa.String(64), primary_key=True),
    sa.Column("rulebook_ref", sa.String(140), nullable=False),
    sa.Column("evaluated_for", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("next_change", sa.Date),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index("ix_status_current_next_change", "next_change"),
)

status_history = sa.Table(
    "status_history",
    metadata,
    sa.Column("id", _AUTO_ID, primary_key=True),
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("rulebook_id", sa.String(64), nullable=False),
    sa.Column("rulebook_ref", sa.String(140), nullable=False),
    sa.Column("from_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index("ix_status_history_subject", "subject", "id"),
)

measure_index = sa.Table(
    "measure_index",
    metadata,
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

status_changes = sa.Table(
    "status_changes",
    metadata,
    sa.Column("change_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("subject", sa.String(80)),
    sa.Column("at", sa.DateTime, nullable=False),
)

relying_parties = sa.Table(
    "relying_parties",
    metadata,
    sa.Column("party_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("domains", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # answers a day (UTC) it may be given, all its keys together; NULL: no limit
    sa.Column("daily_limit", sa.BigInteger),
    # answers a second on average, all its keys and the server's workers together; NULL: no limit
    sa.Column("rate_limit", sa.BigInteger),
)

# Answers given to each relying party each day (UTC), counted in the decision log's own
# transaction (``DecisionLog.commit_batch``): what the daily limits are enforced against, and
# kept when the answers themselves pass their retention period (no subject in it).
party_usage = sa.Table(
    "party_usage",
    metadata,
    sa.Column("party_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("answers", sa.BigInteger, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("scope", sa.String(80)),
    sa.Column("label", sa.String(200)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
)

decisions = sa.Table(
    "decisions",
    metadata,
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

# The decision log as written with the answers: one row per request, or per ROW_ANSWERS answers of
# a batch (its answers as a JSON array of [subject, measure, decision, reason, basis], decision
# ids first_id .. first_id + n - 1).
decision_requests = sa.Table(
    "decision_requests",
    metadata,
    sa.Column("first_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("party_id", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("purpose", sa.String(200), nullable=False),
    sa.Column("rulebooks", sa.String(300), nullable=False),
    sa.Column("items", sa.Text, nullable=False),
)

# Which decisions are about whom, filled with ``decisions`` by
# ``socialcredit.status.decisions.project_decisions`` in bulk and in subject order: an index on
# ``decisions.subject`` maintained with every answer writes one random page per decision.
decision_subjects = sa.Table(
    "decision_subjects",
    metadata,
    sa.Column("subject", sa.String(80), primary_key=True),
    sa.Column("decision_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# How far ``decisions`` and ``decision_subjects`` reach: the last request projected.
decision_index_mark = sa.Table(
    "decision_index_mark",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("upto", sa.BigInteger, nullable=False),
)

access_log = sa.Table(
    "access_log",
    metadata,
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
