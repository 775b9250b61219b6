"""Human review of listings, and halts (the gate itself is :mod:`socialcredit.cases.gate`).

* **Proposal**: for a list with ``review.required``, the sweep opens a review case for each
  membership the engine proposes (``review-proposed``, actor ``system``, deadline
  ``review_decision``). An officer may also propose one (actor: the officer).
* **Confirmation**: officers confirm (``review-confirmed``); the listing takes effect after one
  confirmation, or two by different officers when the list has ``four_eyes``. Nobody reviews
  their own proposal (the proposing officer, or an officer of the agency that furnished the
  records, cannot confirm), the same officer cannot give both reviews, and nobody reviews a
  listing of themselves.
* **Halt**: an officer may halt any automated listing (``review-halted``, reason required): the
  membership is withheld, its measures gone, until an officer lifts the halt (``review-lifted``).

Every step is an ``action`` entry about the subject, so the live status re-evaluates it at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from socialcredit.cases import actions as act
from socialcredit.cases.deadlines import compute
from socialcredit.cases.gate import review_cases
from socialcredit.cases.objections import _text, subject_key
from socialcredit.cases.repairs import _book, _list, gated_status, subject_file
from socialcredit.cases.schema import cases
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import write_transaction
from socialcredit.rulebooks.model import Rulebook


def _membership_basis(
    conn: sa.Connection, ledger: Ledger, rb: Rulebook, key: str, list_id: str, today: dt.date
) -> tuple[int, ...]:
    st, withheld = gated_status(ledger, rb, key, today, conn)
    m = st.membership(list_id)
    if m is not None:
        return m.basis
    for w in withheld:
        if w["list"] == list_id:
            return tuple(w["basis"])
    raise InputError(
        [Problem("list", "not-listed", list_id, f"the engine does not list {key} on '{list_id}'")]
    )


def _furnishers(conn: sa.Connection, ledger: Ledger, key: str, records: Sequence[int]) -> list[str]:
    views, _ = subject_file(conn, key)
    wanted = set(records)
    return sorted({v.authority_id for v in views if v.record_id in wanted or v.origin_id in wanted})


def propose_review(
    ledger: Ledger,
    books: Sequence[Rulebook],
    subject: str,
    rulebook_id: str,
    list_id: str,
    *,
    actor: str = act.SYSTEM,
    reason: str | None = None,
    records: Sequence[int] | None = None,
) -> dict[str, Any] | None:
    """Open a review case for a listing; None if one is already open for those records."""
    key = subject_key(subject)
    rb = _book(books, rulebook_id)
    _list(rb, list_id)
    who = actor if actor == act.SYSTEM else subject_key(actor, "officer")
    if who == key:
        raise InputError([Problem("officer", "own-case", who, "nobody proposes their own listing")])
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        basis = (
            tuple(records) if records else _membership_basis(conn, ledger, rb, key, list_id, today)
        )
        _, acts = subject_file(conn, key)
        for c in review_cases(acts).values():
            if (
                c.rulebook_id == rb.id
                and c.list_id == list_id
                and c.records & set(basis)
                and not c.halted
                and not c.final
            ):
                return None
        due = compute(books, "review_decision", today, rulebook_id=rb.id)
        case_id = act.next_seq(conn, ledger)
        draft = act.action_draft(
            action="review-proposed",
            actor=who,
            subject=key,
            ref=f"case:{case_id}:opened",
            reason=reason
            or f"the engine lists {key} on '{list_id}' of {rb.ref}; a human review is required",
            case_id=case_id,
            case_type="review",
            rulebook_id=rb.id,
            list_id=list_id,
            records=sorted(basis),
            proposed_by=_furnishers(conn, ledger, key, basis),
            deadline=due.due.isoformat(),
            deadline_key=due.key,
            deadline_rulebook=due.rulebook,
        )
        seqs = act.commit(conn, ledger, [draft])
        assert seqs[0] == case_id
        return act.get_case(conn, case_id)


def confirm_review(
    ledger: Ledger,
    books: Sequence[Rulebook],
    case_id: int,
    officer: str,
    reason: str,
    *,
    agency: str = act.REGISTRY,
) -> dict[str, Any]:
    """An officer confirms a proposed listing (first or second of four eyes)."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the confirmation")
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        case = act.get_case(conn, case_id)
        if case["case_type"] != "review":
            raise NotFoundError(f"case {case_id} is not a review")
        if case["state"] != "open":
            raise ConflictError(
                [Problem("case", "closed", case_id, f"review {case_id} is {case['state']}")]
            )
        problems = []
        if who == case["subject_key"]:
            problems.append(
                Problem("officer", "own-case", who, "nobody reviews a listing of themselves")
            )
        if who == case["opened_by"] or agency in case["detail"].get("proposed_by", []):
            problems.append(
                Problem(
                    "officer",
                    "own-proposal",
                    who,
                    "nobody reviews their own proposal (or their own agency's records)",
                )
            )
        done = [r["actor"] for r in case["detail"].get("reviews", [])]
        if who in done:
            problems.append(
                Problem(
                    "officer",
                    "same-reviewer",
                    who,
                    "the second review must come from a different officer (four eyes)",
                )
            )
        if problems:
            raise InputError(problems)
        need = 1
        rb = next((b for b in books if b.id == case["rulebook_id"]), None)
        if rb is not None:
            lst = _list(rb, case["list_id"])
            if lst.review is not None and lst.review.four_eyes:
                need = 2
        final = len(done) + 1 >= need
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="review-confirmed",
                    actor=who,
                    authority_id=agency,
                    subject=case["subject_key"],
                    ref=f"case:{case_id}:confirmed:{len(done) + 1}",
                    reason=why,
                    case_id=case_id,
                    case_type="review",
                    rulebook_id=case["rulebook_id"],
                    list_id=case["list_id"],
                    records=case["detail"].get("records"),
                    review=len(done) + 1,
                    needed=need,
                    final=final or None,
                    outcome="confirmed" if final else None,
                    late=(final and today > case["deadline"]) or None,
                )
            ],
        )
        return act.get_case(conn, case_id)


def halt_listing(
    ledger: Ledger,
    books: Sequence[Rulebook],
    subject: str,
    rulebook_id: str,
    list_id: str,
    officer: str,
    reason: str,
    *,
    agency: str = act.REGISTRY,
) -> dict[str, Any]:
    """An officer halts an automated listing: withheld (no measures) until lifted."""
    key = subject_key(subject)
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the halt")
    if who == key:
        raise InputError([Problem("officer", "own-case", who, "nobody acts on their own listing")])
    rb = _book(books, rulebook_id)
    _list(rb, list_id)
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        basis = _membership_basis(conn, ledger, rb, key, list_id, today)
        _, acts = subject_file(conn, key)
        touching = [
            c
            for c in review_cases(acts).values()
            if c.rulebook_id == rb.id and c.list_id == list_id and c.records & set(basis)
        ]
        if any(c.halted and not c.lifted for c in touching):
            raise ConflictError(
                [
                    Problem(
                        "list", "halted", list_id, f"the listing on '{list_id}' is already halted"
                    )
                ]
            )
        target = next((c for c in touching if not c.halted), None)
        case_id = target.case_id if target else act.next_seq(conn, ledger)
        draft = act.action_draft(
            action="review-halted",
            actor=who,
            authority_id=agency,
            subject=key,
            ref=f"case:{case_id}:halted",
            reason=why,
            case_id=case_id,
            case_type="review",
            rulebook_id=rb.id,
            list_id=list_id,
            records=sorted(basis),
            outcome="halted",
        )
        seqs = act.commit(conn, ledger, [draft])
        assert target is not None or seqs[0] == case_id
        return act.get_case(conn, case_id)


def lift_halt(
    ledger: Ledger, case_id: int, officer: str, reason: str, *, agency: str = act.REGISTRY
) -> dict[str, Any]:
    """An officer lifts a halt: the listing is back (subject to review where required)."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for lifting the halt")
    with write_transaction(ledger.engine) as conn:
        case = act.get_case(conn, case_id)
        if case["case_type"] != "review" or case["state"] != "halted":
            raise ConflictError(
                [Problem("case", "not-halted", case_id, f"case {case_id} is not a halted listing")]
            )
        if who == case["subject_key"]:
            raise InputError(
                [Problem("officer", "own-case", who, "nobody acts on their own listing")]
            )
        n = len(case["detail"].get("lifts", [])) + 1
        act.commit(
            conn,
            ledger,
            [
                act.action_draft(
                    action="review-lifted",
                    actor=who,
                    authority_id=agency,
                    subject=case["subject_key"],
                    ref=f"case:{case_id}:lifted:{n}",
                    reason=why,
                    case_id=case_id,
                    case_type="review",
                    rulebook_id=case["rulebook_id"],
                    list_id=case["list_id"],
                    records=case["detail"].get("records"),
                    outcome="lifted",
                )
            ],
        )
        return act.get_case(conn, case_id)


def open_review_cases(ledger: Ledger, engine: sa.Engine | None = None) -> list[dict[str, Any]]:
    """Open review cases, earliest deadline first (the reviewers' queue)."""
    from socialcredit.cases.actions import list_cases

    return list_cases(engine or ledger.engine, case_type="review", open_only=True)


__all__ = [
    "cases",
    "confirm_review",
    "halt_listing",
    "lift_halt",
    "open_review_cases",
    "propose_review",
]
