"""Objections: a subject disputes a record; its furnisher must answer before the deadline.

State machine (every transition is one append: the ``action`` entry and the record's own entries
together, in one transaction)::

    open ──answer (confirm | correct | retract), in time──────────▶ answered
      │
      └─deadline passes (sweep): record ``suspend`` + deadline-missed ─▶ open, missed
                                   └─late answer ────────────────────▶ answered (late)
                                        confirm: ``reinstate`` + ``confirm`` (reinsertion)
                                        correct: ``correct`` + ``reinstate`` of the new version
                                        retract: ``retract``

* Opening writes ``dispute`` at once (the record is flagged disputed but still read by rules,
  as the reference's FCRA practice; while it is **suspended** it is out of evaluation).
* The deadline is ``objection_response`` of the rulebooks that read the record's kind, on their
  calendars (:mod:`socialcredit.cases.deadlines`); the acknowledgement deadline
  (``objection_acknowledge``) is stored alongside for the notices.
* An officer may extend a running objection once, by 15 days, when the subject brings new
  evidence, never beyond 45 days from opening (due-process §9 ``extension_days_if_new_evidence``).
* A subject's statement (at most 100 words, §9 ``subject_statement_max_words``) is a
  ``statement`` entry: it travels with the record in every view.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.cases import actions as act
from socialcredit.cases.deadlines import compute
from socialcredit.cases.schema import cases
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger, RecordView
from socialcredit.ledger.db import write_transaction
from socialcredit.rulebooks.model import Rulebook

OUTCOMES = ("confirm", "correct", "retract")
STATEMENT_MAX_WORDS = 100  # due-process §9 subject_statement_max_words (FCRA 1681i(b))
EXTENSION_DAYS = 15  # due-process §9 extension_days_if_new_evidence
EXTENSION_CAP_DAYS = 45  # "never beyond 45"
MAX_TEXT = 4000


def subject_key(raw: str, field: str = "subject") -> str:
    try:
        return ids.parse_key(raw).key
    except ids.IdError as e:
        raise InputError([e.problem(field)]) from None


def _text(value: str | None, field: str, what: str, *, required: bool = True) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InputError([Problem(field, "required", value, f"{what} is required")])
        return None
    if len(value) > MAX_TEXT:
        raise InputError(
            [Problem(field, "too-long", value[:40], f"{what}: at most {MAX_TEXT} characters")]
        )
    return value.strip()


def _record(conn: sa.Connection, ledger: Ledger, record_id: int) -> RecordView:
    try:
        return ledger._current(conn, record_id)
    except NotFoundError:
        raise NotFoundError(f"no record {record_id}") from None


def open_objection(
    ledger: Ledger,
    books: Sequence[Rulebook],
    subject: str,
    record_id: int,
    grounds: str,
    *,
    evidence: str | None = None,
) -> dict[str, Any]:
    """The subject disputes one of its records: ``dispute`` + an objection case, at once."""
    key = subject_key(subject)
    why = _text(grounds, "grounds", "the grounds of the objection")
    ev = _text(evidence, "evidence", "the evidence", required=False)
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        rec = _record(conn, ledger, record_id)
        if rec.subject != key:
            raise NotFoundError(f"record {record_id} is not about {key}")
        if rec.state != "active":
            raise InputError(
                [
                    Problem(
                        "record",
                        "ended",
                        record_id,
                        f"record {rec.origin_id} was {rec.state}: nothing to object to",
                    )
                ]
            )
        running = conn.execute(
            sa.select(cases.c.case_id).where(
                cases.c.case_type == "objection",
                cases.c.record_seq == rec.origin_id,
                cases.c.state == "open",
            )
        ).first()
        if running is not None:
            raise ConflictError(
                [
                    Problem(
                        "record",
                        "objection-open",
                        record_id,
                        f"objection case {running[0]} about record {rec.origin_id} is still open",
                    )
                ]
            )
        due = compute(books, "objection_response", today, kind=rec.kind)
        ack = compute(books, "objection_acknowledge", today, kind=rec.kind)
        case_id = act.next_seq(conn, ledger)
        opened = act.action_draft(
            action="case-opened",
            actor=act.SUBJECT,
            subject=key,
            ref=f"case:{case_id}:opened",
            reason=why,
            record=rec.origin_id,
            target=rec.record_id,
            case_id=case_id,
            case_type="objection",
            kind=rec.kind,
            furnisher=rec.authority_id,
            deadline=due.due.isoformat(),
            deadline_key=due.key,
            deadline_rulebook=due.rulebook,
            acknowledge_by=ack.due.isoformat(),
            evidence=ev,
        )
        dispute = ledger.lineage_draft(
            conn, "dispute", act.REGISTRY, rec.record_id, f"case:{case_id}:dispute", why
        )
        seqs = act.commit(conn, ledger, [opened, dispute])
        assert seqs[0] == case_id, (seqs, case_id)
        return act.get_case(conn, case_id)


def _open_objection(conn: sa.Connection, case_id: int) -> dict[str, Any]:
    case = act.get_case(conn, case_id)
    if case["case_type"] != "objection":
        raise NotFoundError(f"case {case_id} is not an objection")
    if case["state"] != "open":
        raise ConflictError(
            [
                Problem(
                    "case",
                    "closed",
                    case_id,
                    f"objection {case_id} was already {case['state']} ({case['outcome']})",
                )
            ]
        )
    return case


def answer_objection(
    ledger: Ledger,
    case_id: int,
    authority_id: str,
    outcome: str,
    reason: str,
    *,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The furnishing authority answers: ``confirm``, ``correct`` (with ``changes``) or ``retract``.

    An answer after the deadline is accepted and flagged ``late``; a confirmation of a suspended
    record reinstates it (reinsertion, certified by the furnisher's confirmation).
    """
    if outcome not in OUTCOMES:
        raise InputError(
            [Problem("outcome", "unknown-outcome", outcome, f"one of: {', '.join(OUTCOMES)}")]
        )
    why = _text(reason, "reason", "the reason for the answer")
    if outcome == "correct" and not changes:
        raise InputError([Problem("changes", "required", None, "a correction needs changes")])
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        case = _open_objection(conn, case_id)
        rec = _record(conn, ledger, int(case["record_seq"]))
        if rec.authority_id != authority_id:
            raise InputError(
                [
                    Problem(
                        "authority",
                        "not-furnisher",
                        authority_id,
                        f"only '{rec.authority_id}', which furnished record {rec.origin_id}, "
                        "may answer this objection",
                    )
                ]
            )
        late = today > case["deadline"]
        pre = f"case:{case_id}"
        if outcome == "confirm":
            drafts = []
            if rec.suspended:
                drafts.append(
                    ledger.lineage_draft(
                        conn, "reinstate", authority_id, rec.record_id, f"{pre}:reinstate", why
                    )
                )
            drafts.append(
                ledger.lineage_draft(
                    conn, "confirm", authority_id, rec.record_id, f"{pre}:confirm", why
                )
            )
            act.commit(conn, ledger, drafts)
        elif outcome == "correct":
            draft = ledger.lineage_draft(
                conn, "correct", authority_id, rec.record_id, f"{pre}:correct", why, changes
            )
            new_seq = act.commit(conn, ledger, [draft])[0]
            if rec.suspended:
                act.commit(
                    conn,
                    ledger,
                    [
                        ledger.lineage_draft(
                            conn, "reinstate", authority_id, new_seq, f"{pre}:reinstate", why
                        )
                    ],
                )
        else:
            act.commit(
                conn,
                ledger,
                [
                    ledger.lineage_draft(
                        conn, "retract", authority_id, rec.record_id, f"{pre}:retract", why
                    )
                ],
            )
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="case-answered",
                    actor=authority_id,
                    authority_id=authority_id,
                    subject=rec.subject,
                    ref=f"{pre}:answered",
                    reason=why,
                    record=rec.origin_id,
                    target=rec.record_id,
                    case_id=case_id,
                    case_type="objection",
                    outcome={"confirm": "confirmed", "correct": "corrected"}.get(
                        outcome, "retracted"
                    ),
                    deadline=case["deadline"].isoformat(),
                    late=late or None,
                    reinstated=(rec.suspended and outcome != "retract") or None,
                )
            ],
        )
        return act.get_case(conn, case_id)


def extend_objection(ledger: Ledger, case_id: int, officer: str, reason: str) -> dict[str, Any]:
    """An officer extends a running objection once by 15 days (new evidence), capped at 45."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the extension")
    with write_transaction(ledger.engine) as conn:
        case = _open_objection(conn, case_id)
        if who == case["subject_key"]:
            raise InputError(
                [Problem("officer", "own-case", who, "nobody acts on a case about themselves")]
            )
        if case["detail"].get("extensions"):
            raise ConflictError(
                [Problem("case", "extended", case_id, f"objection {case_id} was already extended")]
            )
        if case["missed"]:
            raise ConflictError(
                [
                    Problem(
                        "case", "missed", case_id, "the deadline has passed: it cannot be extended"
                    )
                ]
            )
        cap = case["opened_on"] + dt.timedelta(days=EXTENSION_CAP_DAYS)
        new = min(case["deadline"] + dt.timedelta(days=EXTENSION_DAYS), cap)
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="case-extended",
                    actor=who,
                    subject=case["subject_key"],
                    ref=f"case:{case_id}:extended",
                    reason=why,
                    record=case["record_seq"],
                    case_id=case_id,
                    case_type="objection",
                    deadline=new.isoformat(),
                    previous_deadline=case["deadline"].isoformat(),
                )
            ],
        )
        return act.get_case(conn, case_id)


def add_statement(ledger: Ledger, subject: str, record_id: int, text: str) -> int:
    """The subject's own statement on a record (≤ 100 words). Returns the entry's seq."""
    key = subject_key(subject)
    body = _text(text, "statement", "the statement")
    assert body is not None
    words = len(body.split())
    if words > STATEMENT_MAX_WORDS:
        raise InputError(
            [
                Problem(
                    "statement",
                    "too-long",
                    words,
                    f"a statement has at most {STATEMENT_MAX_WORDS} words (this one has {words})",
                )
            ]
        )
    with write_transaction(ledger.engine) as conn:
        rec = _record(conn, ledger, record_id)
        if rec.subject != key:
            raise NotFoundError(f"record {record_id} is not about {key}")
        digest = hashlib.sha256(body.encode()).hexdigest()[:24]
        draft = ledger.lineage_draft(
            conn,
            "statement",
            act.REGISTRY,
            rec.record_id,
            f"statement:{rec.origin_id}:{digest}",
            body,
        )
        return act.commit(conn, ledger, [draft])[0]
