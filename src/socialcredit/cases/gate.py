"""The review gate: human review and halts applied to the engine's status.

:meth:`socialcredit.status.service.StatusService.evaluate_subjects` calls :func:`gate` for every
subject and rulebook, with the subject's ``action`` entries from the ledger — nothing else — so
the live status stays a pure function of the ledger, the rulebook and the day, and the incremental
path still equals a rebuild.

* A membership of a list whose ``review.required`` is set (an adverse list) is only **proposed**
  until officers confirm it: one confirmation, or two by different officers when ``four_eyes``.
  A confirmation covers the membership while one of the records it was given on is still in its
  basis; a membership on records nobody reviewed is proposed again.
* A **halted** membership (any list) is withheld until the halt is lifted.
* A list built on other lists (``lists`` rules) is withheld while a list it rests on is withheld
  (conservative: an adverse listing never rests on an unreviewed one).

A withheld membership carries no measures and is shown under ``review`` in the status JSON
(``state``: ``proposed`` | ``halted`` | ``withheld``), with its case and confirmations so far.
The batch plan (researchers' whole-population runs) does not apply this gate: it evaluates what
the rules say, not what officers decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from socialcredit.engine.reference import Status
from socialcredit.rulebooks.model import Rulebook

REVIEW_ACTIONS = ("review-proposed", "review-confirmed", "review-halted", "review-lifted")


@dataclass
class ReviewCase:
    case_id: int
    rulebook_id: str
    list_id: str
    records: frozenset[int]
    proposer: str
    confirmers: list[str] = field(default_factory=list)
    final: bool = False
    halted: bool = False
    lifted: bool = False


def review_cases(actions: Sequence[Mapping[Any, Any]]) -> dict[int, ReviewCase]:
    """The review cases of one subject, folded from its action entries (oldest first)."""
    out: dict[int, ReviewCase] = {}
    for e in actions:
        raw = e["attributes"]
        if not raw or '"review-' not in raw:
            continue
        a = orjson.loads(raw)
        action = a.get("action")
        if action not in REVIEW_ACTIONS:
            continue
        cid = a.get("case_id")
        if action == "review-proposed" or (action == "review-halted" and cid in (None, e["seq"])):
            c = ReviewCase(
                e["seq"],
                str(a.get("rulebook_id")),
                str(a.get("list_id")),
                frozenset(int(x) for x in a.get("records") or ()),
                str(a.get("actor")),
            )
            out[c.case_id] = c
            if action == "review-halted":
                c.halted = True
            continue
        c_or_none = out.get(int(cid)) if cid is not None else None
        if c_or_none is None:
            continue
        c = c_or_none
        if action == "review-confirmed":
            if a.get("actor") not in c.confirmers:
                c.confirmers.append(str(a.get("actor")))
            c.final = c.final or bool(a.get("final"))
        elif action == "review-halted":
            c.halted, c.lifted = True, False
        elif action == "review-lifted":
            c.lifted = True
    return out


def gate(
    rb: Rulebook, st: Status, actions: Sequence[Mapping[Any, Any]]
) -> tuple[Status, list[dict[str, Any]]]:
    """The status with unreviewed and halted memberships withheld, and what was withheld."""
    needs = {
        lst.id: (2 if lst.review.four_eyes else 1)
        for lst in rb.lists
        if lst.review is not None and lst.review.required and lst.adverse
    }
    if not st.memberships or (not needs and not actions):
        return st, []
    all_cases = review_cases(actions) if actions else {}
    mine = [c for c in all_cases.values() if c.rulebook_id == rb.id]
    withheld: dict[str, dict[str, Any]] = {}
    kept = []
    for m in st.memberships:
        basis = set(m.basis)
        touching = [c for c in mine if c.list_id == m.list_id and c.records & basis]
        halt = next((c for c in touching if c.halted and not c.lifted), None)
        info: dict[str, Any] | None = None
        if halt is not None:
            info = {"state": "halted", "case": halt.case_id}
        elif m.list_id in needs:
            need = needs[m.list_id]
            done = next((c for c in touching if len(set(c.confirmers)) >= need), None)
            if done is None:
                open_case = next(
                    (c for c in touching if not c.halted and len(set(c.confirmers)) < need),
                    None,
                )
                info = {
                    "state": "proposed",
                    "case": open_case.case_id if open_case else None,
                    "confirmations": list(open_case.confirmers) if open_case else [],
                    "needed": need,
                }
        if info is None and set(m.via) & set(withheld):
            info = {
                "state": "withheld",
                "case": None,
                "because": sorted(set(m.via) & set(withheld)),
            }
        if info is None:
            kept.append(m)
            continue
        info.update(
            {
                "list": m.list_id,
                "since": m.since.isoformat(),
                "until": m.until.isoformat() if m.until else None,
                "basis": list(m.basis),
            }
        )
        withheld[m.list_id] = info
    if not withheld:
        return st, []
    gone = {f"list:{x}" for x in withheld}
    measures = tuple(x for x in st.measures if x.via not in gone)
    return (
        dataclasses.replace(st, memberships=tuple(kept), measures=measures),
        list(withheld.values()),
    )
