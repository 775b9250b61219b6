"""Repair applications (credit restoration): apply after the minimum period, an officer decides.

* A subject may apply for a list whose rulebook gives it a ``repair`` section, from the day the
  membership's ``repair_from`` comes (``since`` + ``repair.minimum``: exactly on that day, not the
  day before), when every record kind in ``repair.conditions`` is present and in force
  (obligations performed, a credit commitment letter).
* An officer (not the subject itself) decides within ``repair_decision`` (working days on the
  rulebook's calendar); a decision after the deadline is accepted and flagged ``late``.
* **Approval ends the membership through the engine**: the registry furnishes a
  ``credit.repair-approved`` record naming the list, and the loader gives every list with a
  ``repair`` section an implicit removal rule reading it
  (:func:`socialcredit.rulebooks.loader.with_repair_removals`). The reference evaluator, the batch
  plan and the live status therefore agree; the approval is an ordinary record with provenance.
* Where a rulebook's own removal rules need no application (a term ends, a performance record
  arrives), the engine removes the listing by itself; no case is involved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.cases import actions as act
from socialcredit.cases.deadlines import compute
from socialcredit.cases.gate import gate
from socialcredit.cases.objections import _text, subject_key
from socialcredit.cases.schema import cases
from socialcredit.engine.reference import Membership, Status, evaluate
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger, RecordView
from socialcredit.ledger.db import write_transaction
from socialcredit.ledger.store import fold_subject, subject_entries
from socialcredit.rulebooks.model import REPAIR_APPROVED_KIND, ListDef, Rulebook

REPAIR_AUTHORITY_TYPE = "credit-office"


def subject_file(
    conn: sa.Connection, subject: str
) -> tuple[list[RecordView], list[Mapping[Any, Any]]]:
    """(record views, action entries) of one subject, from the ledger."""
    return fold_subject(subject_entries(conn, [subject])[subject])


def gated_status(
    ledger: Ledger,
    rb: Rulebook,
    subject: str,
    today: dt.date | None = None,
    conn: sa.Connection | None = None,
) -> tuple[Status, list[dict[str, Any]]]:
    """A subject's status under ``rb`` as the live status has it (review gate applied)."""
    from socialcredit.status.service import rec_of

    key = subject_key(subject)
    if conn is None:
        with ledger.engine.connect() as c:
            views, acts = subject_file(c, key)
    else:
        views, acts = subject_file(conn, key)
    recs = [rec_of(v) for v in views]
    kind = next((r.subject_kind for r in reversed(recs) if r.subject_kind), None)
    if kind is None:
        try:
            kind = ids.parse_key(key).subject_kind
        except ids.IdError:
            kind = None
    st = evaluate(rb, recs, today or ledger.today(), subject=key, subject_kind=kind)
    return gate(rb, st, acts)


@dataclass
class Eligibility:
    ok: bool
    rulebook_id: str
    list_id: str
    membership: Membership | None = None
    repair_from: dt.date | None = None
    conditions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rulebook": self.rulebook_id,
            "list": self.list_id,
            "since": self.membership.since.isoformat() if self.membership else None,
            "repair_from": self.repair_from.isoformat() if self.repair_from else None,
            "conditions": self.conditions,
            "missing": self.missing,
            "problems": [p.as_dict() for p in self.problems],
        }


def _book(books: Sequence[Rulebook], rulebook_id: str) -> Rulebook:
    for rb in books:
        if rb.id == rulebook_id:
            return rb
    raise NotFoundError(f"rulebook '{rulebook_id}' is not active")


def _list(rb: Rulebook, list_id: str) -> ListDef:
    try:
        return rb.get_list(list_id)
    except KeyError:
        raise NotFoundError(f"rulebook {rb.id} has no list '{list_id}'") from None


def repair_eligibility(
    ledger: Ledger,
    books: Sequence[Rulebook],
    subject: str,
    rulebook_id: str,
    list_id: str,
    *,
    conn: sa.Connection | None = None,
) -> Eligibility:
    """Whether the subject may apply for repair of ``list_id`` today, and why not."""
    key = subject_key(subject)
    rb = _book(books, rulebook_id)
    lst = _list(rb, list_id)
    today = ledger.today()
    out = Eligibility(False, rb.id, lst.id)
    if lst.repair is None:
        out.problems.append(
            Problem(
                "list",
                "no-repair",
                list_id,
                f"list '{list_id}' of {rb.ref} has no repair procedure: it ends by its own "
                "removal rules or term",
            )
        )
        return out
    out.conditions = list(lst.repair.conditions)
    st, _ = gated_status(ledger, rb, key, today, conn)
    m = st.membership(list_id)
    if m is None:
        out.problems.append(
            Problem("list", "not-listed", list_id, f"{key} is not on list '{list_id}' today")
        )
        return out
    out.membership, out.repair_from = m, m.repair_from
    if m.repair_from is not None and today < m.repair_from:
        out.problems.append(
            Problem(
                "list",
                "too-early",
                m.repair_from.isoformat(),
                f"repair of '{list_id}' may be applied for from {m.repair_from.isoformat()} "
                f"({lst.repair.minimum} after the listing of {m.since.isoformat()})",
            )
        )
    if conn is None:
        with ledger.engine.connect() as c:
            views, _ = subject_file(c, key)
    else:
        views, _ = subject_file(conn, key)
    have = {v.kind for v in views if v.in_force and v.decision_date <= today}
    out.missing = [k for k in lst.repair.conditions if k not in have]
    for k in out.missing:
        out.problems.append(
            Problem(
                "conditions",
                "missing-condition",
                k,
                f"repair of '{list_id}' needs an in-force '{k}' record first",
            )
        )
    out.ok = not out.problems
    return out


def apply_for_repair(
    ledger: Ledger,
    books: Sequence[Rulebook],
    subject: str,
    rulebook_id: str,
    list_id: str,
    statement: str,
) -> dict[str, Any]:
    """The subject applies for repair of one listing; opens a repair case with its deadline."""
    key = subject_key(subject)
    why = _text(statement, "statement", "the application's statement")
    today = ledger.today()
    with write_transaction(ledger.engine) as conn:
        el = repair_eligibility(ledger, books, key, rulebook_id, list_id, conn=conn)
        if not el.ok:
            raise InputError(el.problems)
        assert el.membership is not None
        running = conn.execute(
            sa.select(cases.c.case_id).where(
                cases.c.case_type == "repair",
                cases.c.subject_key == key,
                cases.c.rulebook_id == rulebook_id,
                cases.c.list_id == list_id,
                cases.c.state == "open",
            )
        ).first()
        if running is not None:
            raise ConflictError(
                [
                    Problem(
                        "list",
                        "repair-open",
                        list_id,
                        f"repair case {running[0]} for '{list_id}' is still open",
                    )
                ]
            )
        due = compute(books, "repair_decision", today, rulebook_id=rulebook_id)
        case_id = act.next_seq(conn, ledger)
        draft = act.action_draft(
            action="case-opened",
            actor=act.SUBJECT,
            subject=key,
            ref=f"case:{case_id}:opened",
            reason=why,
            case_id=case_id,
            case_type="repair",
            rulebook_id=rulebook_id,
            list_id=list_id,
            records=list(el.membership.basis),
            deadline=due.due.isoformat(),
            deadline_key=due.key,
            deadline_rulebook=due.rulebook,
            since=el.membership.since.isoformat(),
            repair_from=el.repair_from.isoformat() if el.repair_from else None,
        )
        seqs = act.commit(conn, ledger, [draft])
        assert seqs[0] == case_id
        return act.get_case(conn, case_id)


def ensure_registry_authority(ledger: Ledger) -> None:
    """The registry furnishes repair approvals as a credit office (idempotent)."""
    ledger.register_authority(
        act.REGISTRY,
        "The registry (due-process decisions)",
        REPAIR_AUTHORITY_TYPE,
        [REPAIR_APPROVED_KIND],
        reason="furnishes the outcome of repair cases it decides",
    )


def decide_repair(
    ledger: Ledger,
    case_id: int,
    officer: str,
    approve: bool,
    reason: str,
) -> dict[str, Any]:
    """An officer approves (the listing ends today, through the engine) or rejects."""
    who = subject_key(officer, "officer")
    why = _text(reason, "reason", "the reason for the decision")
    today = ledger.today()
    if approve:
        try:
            current = ledger.authority(act.REGISTRY)
        except NotFoundError:
            current = None
        if current is None or REPAIR_APPROVED_KIND not in current.kinds:
            ensure_registry_authority(ledger)
    with write_transaction(ledger.engine) as conn:
        case = act.get_case(conn, case_id)
        if case["case_type"] != "repair":
            raise NotFoundError(f"case {case_id} is not a repair application")
        if case["state"] != "open":
            raise ConflictError(
                [Problem("case", "closed", case_id, f"repair case {case_id} was already decided")]
            )
        if who == case["subject_key"]:
            raise InputError(
                [Problem("officer", "own-case", who, "nobody decides a case about themselves")]
            )
        late = today > case["deadline"]
        drafts = []
        if approve:
            validator = ledger.validator(act.REGISTRY)
            draft, problems = validator.validate(
                {
                    "ref": f"case:{case_id}:repair-approved",
                    "subject": case["subject_key"],
                    "kind": REPAIR_APPROVED_KIND,
                    "decision_no": f"repair-case-{case_id}",
                    "decision_date": today.isoformat(),
                    "attributes": {
                        "list": case["list_id"],
                        "rulebook": case["rulebook_id"],
                        "case_no": str(case_id),
                    },
                }
            )
            if draft is None:
                raise InputError(problems)
            drafts.append(draft)
        drafts.append(
            act.action_draft(
                action="case-decided",
                actor=who,
                subject=case["subject_key"],
                ref=f"case:{case_id}:decided",
                reason=why,
                case_id=case_id,
                case_type="repair",
                rulebook_id=case["rulebook_id"],
                list_id=case["list_id"],
                outcome="approved" if approve else "rejected",
                deadline=case["deadline"].isoformat(),
                late=late or None,
            )
        )
        act.commit(conn, ledger, drafts)
        return act.get_case(conn, case_id)
