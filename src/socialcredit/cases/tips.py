"""Rewarded reporting: tips from the public, verified by an officer before anything is a record.

* Anyone with a ``public`` key submits a tip about a subject (``case-opened``, case type ``tip``,
  actor ``public:<key id>``); it waits in the officers' queue with the ``tip_decision`` deadline.
* A tip **never changes a status**: it is an ``action`` entry, which the engine never reads. An
  officer who verifies it (``tip-verified``, the tip becomes *rewardable*) must then have the
  competent authority furnish a record through the ordinary provider route; only that record
  counts, with its own legal basis and provenance.
* An officer rejects a tip (``tip-rejected``, outcome ``rejected`` or ``duplicate``).
* Abuse: a reporter is **flagged** (``tip-flagged``) when at least :data:`REJECTED_LIMIT` of its
  tips about the same subject were rejected within :data:`REJECTED_WINDOW_DAYS` days, or when it
  sends more than :data:`BURST_LIMIT` tips within 24 hours. Flagged reporters' tips are still
  queued (and marked), so an officer decides; the flag is in the audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from socialcredit.cases import actions as act
from socialcredit.cases.deadlines import compute
from socialcredit.cases.objections import _text, subject_key
from socialcredit.cases.schema import cases
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import write_transaction
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import ACTION_OP
from socialcredit.rulebooks.model import Rulebook
from socialcredit.status.db import naive_utc

REJECTED_LIMIT = 3
REJECTED_WINDOW_DAYS = 30
BURST_LIMIT = 10  # tips per reporter within 24 hours
MAX_TIP = 2000


def _reporter_tips(conn: sa.Connection, reporter: str) -> list[dict[str, Any]]:
    needle = act.attrs_json({"reporter": reporter})[1:-1]
    return [
        act._loaded(r)
        for r in conn.execute(
            sa.select(cases).where(cases.c.case_type == "tip", cases.c.detail.contains(needle))
        ).mappings()
        if act._loaded(r)["detail"].get("reporter") == reporter
    ]


def is_flagged(engine: sa.Engine, reporter: str) -> bool:
    """Whether a reporter was ever flagged for abusive tips."""
    return any(f["reporter"] == reporter for f in flagged_reporters(engine))


def _flag(
    conn: sa.Connection, ledger: Ledger, case: dict[str, Any], reporter: str, why: str, rule: str
) -> None:
    act.commit(
        conn,
        ledger,
        [
            act.action_draft(
                action="tip-flagged",
                actor=act.SYSTEM,
                subject=case["subject_key"],
                ref=f"case:{case['case_id']}:flagged:{rule}",
                reason=why,
                case_id=case["case_id"],
                case_type="tip",
                reporter=reporter,
                rule=rule,
            )
        ],
    )


def submit_tip(
    ledger: Ledger,
    books: Sequence[Rulebook],
    reporter: str,
    subject: str,
    text: str,
    *,
    kind: str | None = None,
) -> dict[str, Any]:
    """Queue a tip about ``subject`` for an officer. Changes no record and no status."""
    key = subject_key(subject)
    body = _text(text, "text", "the tip")
    assert body is not None
    if len(body) > MAX_TIP:
        raise InputError([Problem("text", "too-long", body[:40], f"at most {MAX_TIP} characters")])
    if not reporter or len(reporter) > 100:
        raise InputError([Problem("reporter", "required", reporter, "who reports is required")])
    if kind is not None and kind not in ledger.catalogue.record_kinds:
        raise InputError(
            [
                Problem(
                    "kind", "unknown-kind", kind, f"'{kind}' is not a record kind in the catalogue"
                )
            ]
        )
    now = naive_utc(ledger.clock.now())
    today = now.date()
    with write_transaction(ledger.engine) as conn:
        due = compute(books, "tip_decision", today, kind=kind)
        case_id = act.next_seq(conn, ledger)
        draft = act.action_draft(
            action="case-opened",
            actor=reporter,
            subject=key,
            ref=f"case:{case_id}:opened",
            reason=body,
            case_id=case_id,
            case_type="tip",
            reporter=reporter,
            kind=kind,
            deadline=due.due.isoformat(),
            deadline_key=due.key,
            deadline_rulebook=due.rulebook,
        )
        act.commit(conn, ledger, [draft])
        case = act.get_case(conn, case_id)
        recent = [
            t for t in _reporter_tips(conn, reporter) if t["opened_at"] > now - dt.timedelta(days=1)
        ]
        if len(recent) > BURST_LIMIT:
            _flag(
                conn,
                ledger,
                case,
                reporter,
                f"{len(recent)} tips within 24 hours (more than {BURST_LIMIT})",
                "burst",
            )
            case = act.get_case(conn, case_id)
        return case


def _open_tip(conn: sa.Connection, case_id: int) -> dict[str, Any]:
    case = act.get_case(conn, case_id)
    if case["case_type"] != "tip":
        raise NotFoundError(f"case {case_id} is not a tip")
    if case["state"] != "open":
        raise ConflictError(
            [Problem("case", "closed", case_id, f"tip {case_id} was already {case['outcome']}")]
        )
    return case


def verify_tip(ledger: Ledger, case_id: int, officer: str, reason: str) -> dict[str, Any]:
    """An officer verifies a tip (rewardable). The record must still come from an authority."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the verification")
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        case = _open_tip(conn, case_id)
        if who == case["subject_key"]:
            raise InputError(
                [Problem("officer", "own-case", who, "nobody decides a tip about themselves")]
            )
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="tip-verified",
                    actor=who,
                    subject=case["subject_key"],
                    ref=f"case:{case_id}:decided",
                    reason=why,
                    case_id=case_id,
                    case_type="tip",
                    outcome="verified",
                    rewardable=True,
                    reporter=case["detail"].get("reporter"),
                    late=(today > case["deadline"]) or None,
                )
            ],
        )
        return act.get_case(conn, case_id)


def reject_tip(
    ledger: Ledger, case_id: int, officer: str, reason: str, *, duplicate: bool = False
) -> dict[str, Any]:
    """An officer rejects a tip (or marks it a duplicate); repeated rejections flag the reporter."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the rejection")
    now = naive_utc(ledger.clock.now())
    with write_transaction(ledger.engine) as conn:
        case = _open_tip(conn, case_id)
        if who == case["subject_key"]:
            raise InputError(
                [Problem("officer", "own-case", who, "nobody decides a tip about themselves")]
            )
        reporter = str(case["detail"].get("reporter"))
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="tip-rejected",
                    actor=who,
                    subject=case["subject_key"],
                    ref=f"case:{case_id}:decided",
                    reason=why,
                    case_id=case_id,
                    case_type="tip",
                    outcome="duplicate" if duplicate else "rejected",
                    reporter=reporter,
                    late=(now.date() > case["deadline"]) or None,
                )
            ],
        )
        since = now - dt.timedelta(days=REJECTED_WINDOW_DAYS)
        rejected = [
            t
            for t in _reporter_tips(conn, reporter)
            if t["subject_key"] == case["subject_key"]
            and t["outcome"] in ("rejected", "duplicate")
            and t["closed_at"] is not None
            and t["closed_at"] >= since
        ]
        if len(rejected) >= REJECTED_LIMIT:
            _flag(
                conn,
                ledger,
                act.get_case(conn, case_id),
                reporter,
                f"{len(rejected)} tips about {case['subject_key']} rejected within "
                f"{REJECTED_WINDOW_DAYS} days",
                "repeated-rejected",
            )
        return act.get_case(conn, case_id)


def flagged_reporters(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every flag raised, newest last (reporter, rule, reason, when)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(entries)
            .where(entries.c.op == ACTION_OP, entries.c.attributes.contains('"tip-flagged"'))
            .order_by(entries.c.seq)
        ).mappings()
        out = []
        for e in rows:
            a = act.action_json(e)
            if a["action"] == "tip-flagged":
                out.append(
                    {
                        "reporter": a["attributes"].get("reporter"),
                        "rule": a["attributes"].get("rule"),
                        "reason": a["reason"],
                        "case_id": a["case_id"],
                        "recorded_at": a["recorded_at"],
                    }
                )
        return out
