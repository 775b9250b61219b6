"""Subject access: the whole file about one subject, as JSON, free and on demand.

:func:`subject_file` gathers, for one subject key:

* ``records`` — every record lineage with its provenance: the furnishing authority (id, name,
  type), reference, decision, legal basis, every entry of its history (who, when, why), statements,
  and whether it is disputed, suspended, retracted or overturned;
* ``status`` — per active rulebook, the live status with its explanation (every outcome with its
  records, rules, legal basis and the dates it ends or can be ended — :mod:`socialcredit.engine.
  explain`), listings withheld by the review gate, and the status history (the subject's path);
* ``decisions`` — every eligibility decision made about the subject: who asked (relying party id
  and name), why (purpose), when, for which measure, the answer, its reason and decision id; and
  ``recipients``, the same grouped by relying party; with ``decision_retention`` how long the log
  keeps them (each is deleted that long after it was made);
* ``cases`` — objections, repair applications, reviews about the subject (the cases room), and the
  ``actions`` (officer and system actions) recorded in the ledger about the subject;
* ``notices`` — every notice sent to the subject with its deliveries, and the correction notices
  sent to relying parties about the subject (who was told, which decisions);
* ``access_log`` — who read the file or was refused (staff reads, refusals), newest first; with
  ``access_log_retention`` how long the log keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from socialcredit import ids
from socialcredit.cases.notices import list_notices
from socialcredit.engine.reference import Status, evaluate
from socialcredit.ledger import Ledger, RecordView
from socialcredit.ledger.schema import entries
from socialcredit.rulebooks import Rulebook
from socialcredit.status.decisions import list_decisions
from socialcredit.status.retention import Retention
from socialcredit.status.schema import access_log, status_current, status_history

log = logging.getLogger(__name__)

SECTIONS = (
    "records",
    "status",
    "status_history",
    "decisions",
    "recipients",
    "cases",
    "actions",
    "notices",
    "party_notices",
    "access_log",
)
PAGE = 5000


def _stamp(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="microseconds") + "Z"


def _status(
    ledger: Ledger, rb: Rulebook, key: str, views: Sequence[RecordView], today: dt.date
) -> tuple[Status, list[dict[str, Any]]]:
    """The live status (review gate applied when the cases room provides it)."""
    try:
        from socialcredit.cases.repairs import gated_status
    except ImportError:
        gated_status = None  # type: ignore[assignment]
    if gated_status is not None:
        try:
            return gated_status(ledger, rb, key, today)
        except Exception:
            log.exception("gated status for %s", key)
    from socialcredit.status.service import rec_of

    recs = [rec_of(v) for v in views]
    kind = next((r.subject_kind for r in reversed(recs) if r.subject_kind), None)
    if kind is None:
        kind = ids.parse_key(key).subject_kind
    return evaluate(rb, recs, today, subject=key, subject_kind=kind), []


def _explain(
    st: Status, rb: Rulebook, views: Sequence[RecordView], ledger: Ledger
) -> dict[str, Any]:
    from socialcredit.engine.explain import explain

    try:
        return explain(
            st, rb, {v.record_id: v.as_dict(history=False) for v in views}, ledger.catalogue
        )
    except Exception:
        log.exception("explain failed for %s", st.subject)
        out: dict[str, Any] = st.as_dict()
        out["explanation_error"] = "the explanation could not be built; the status is shown"
        return out


def _cases(engine: sa.Engine, key: str, today: dt.date) -> dict[str, Any]:
    try:
        from socialcredit.cases.actions import case_json, list_cases
    except ImportError:
        return {"available": False, "items": [], "note": "the cases room is not installed"}
    try:
        rows = list_cases(engine, subject=key, limit=100_000)
    except sa.exc.DatabaseError as e:  # the cases table is not migrated yet
        return {"available": False, "items": [], "note": f"cases could not be read: {e}"[:300]}
    return {"available": True, "items": [case_json(r, today) for r in rows]}


def _actions(conn: sa.Connection, key: str) -> list[dict[str, Any]]:
    out = []
    for e in conn.execute(
        sa.select(entries)
        .where(entries.c.subject_key == key, entries.c.op == "action")
        .order_by(entries.c.seq)
    ).mappings():
        try:
            attrs = json.loads(e["attributes"]) if e["attributes"] else {}
        except ValueError:
            attrs = {}
        out.append(
            {
                "seq": e["seq"],
                "at": _stamp(e["recorded_at"]),
                "by": e["authority_id"],
                "ref": e["authority_ref"],
                "record": e["origin_seq"],
                "action": attrs.get("action"),
                "actor": attrs.get("actor"),
                "case_id": attrs.get("case_id"),
                "case_type": attrs.get("case_type"),
                "deadline": attrs.get("deadline"),
                "outcome": attrs.get("outcome"),
                "reason": e["reason"],
            }
        )
    return out


def all_decisions(engine: sa.Engine, key: str) -> list[dict[str, Any]]:
    """Every decision about ``key``, newest first (paged through the decision log)."""
    from socialcredit.decision_ids import decode_id

    out: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = list_decisions(engine, subject=key, before=before, limit=PAGE)
        out += page
        if len(page) < PAGE:
            return out
        before = decode_id(page[-1]["decision_id"])


def recipients(decisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Who checked the subject: per relying party, how often, first and last time, measures."""
    by: dict[str, dict[str, Any]] = {}
    for d in decisions:
        p = by.setdefault(
            d["party"],
            {
                "party": d["party"],
                "party_name": d["party_name"],
                "checks": 0,
                "first": d["at"],
                "last": d["at"],
                "measures": set(),
                "purposes": set(),
            },
        )
        p["checks"] += 1
        p["first"] = min(p["first"], d["at"])
        p["last"] = max(p["last"], d["at"])
        p["measures"].add(d["measure"])
        p["purposes"].add(d["purpose"])
    return [
        {**p, "measures": sorted(p["measures"]), "purposes": sorted(p["purposes"])}
        for p in sorted(by.values(), key=lambda x: x["last"], reverse=True)
    ]


def access_rows(conn: sa.Connection, key: str, limit: int = 10_000) -> list[dict[str, Any]]:
    return [
        {
            "at": _stamp(r["at"]),
            "role": r["role"],
            "key_id": r["key_id"],
            "method": r["method"],
            "path": r["path"],
            "status": r["status"],
            "rule": r["rule"],
            "detail": r["detail"],
        }
        for r in conn.execute(
            sa.select(access_log)
            .where(access_log.c.subject == key)
            .order_by(access_log.c.id.desc())
            .limit(limit)
        ).mappings()
    ]


def subject_file(
    ledger: Ledger,
    rulebooks: Sequence[Rulebook],
    subject: str,
    *,
    today: dt.date | None = None,
    decision_retention: Retention | None = None,
    access_log_retention: Retention | None = None,
) -> dict[str, Any]:
    """The whole file about ``subject`` (any accepted spelling of its key) as JSON-able dict;
    with ``decision_retention`` and ``access_log_retention``, how long its decisions and the
    access log's entries about it are kept (the server's settings)."""
    key = ids.parse_key(subject).key
    engine = ledger.engine
    today = today or ledger.today()
    views = ledger.subject_records(key)
    names = {a.authority_id: a for a in ledger.authorities()}
    records = []
    for v in views:
        d = v.as_dict()
        a = names.get(v.authority_id)
        d["provenance"] = {
            "authority": v.authority_id,
            "authority_name": a.name if a else None,
            "authority_type": a.type if a else None,
            "reference": v.authority_ref,
            "decision_no": v.decision_no,
            "decision_date": v.decision_date.isoformat(),
            "legal_basis": v.legal_basis,
            "first_recorded": d["history"][0]["recorded_at"] if d["history"] else None,
            "entries": [h["seq"] for h in d["history"]],
        }
        for h in d["history"]:
            b = names.get(h["by"] or "")
            h["by_name"] = b.name if b else None
        records.append(d)
    status = []
    with engine.connect() as conn:
        current = {
            r["rulebook_id"]: r
            for r in conn.execute(
                sa.select(status_current).where(status_current.c.subject == key)
            ).mappings()
        }
        history = [
            {
                "rulebook": r["rulebook_ref"],
                "from": r["from_date"].isoformat(),
                "ledger_seq": r["ledger_seq"],
                "recorded_at": _stamp(r["recorded_at"]),
                "status": json.loads(r["status"]),
            }
            for r in conn.execute(
                sa.select(status_history)
                .where(status_history.c.subject == key)
                .order_by(status_history.c.id)
            ).mappings()
        ]
        actions = _actions(conn, key)
        accesses = access_rows(conn, key)
    for rb in rulebooks:
        st, withheld = _status(ledger, rb, key, views, today)
        cur = current.get(rb.id)
        status.append(
            {
                "rulebook": rb.ref,
                "rulebook_title": rb.title,
                "explanation": _explain(st, rb, views, ledger),
                "withheld_pending_review": withheld,
                "live": None
                if cur is None
                else {
                    "evaluated_for": cur["evaluated_for"].isoformat(),
                    "next_change": cur["next_change"].isoformat() if cur["next_change"] else None,
                    "ledger_seq": cur["ledger_seq"],
                },
            }
        )
    decisions = all_decisions(engine, key)
    party_notices = [
        {
            "notice_id": n["notice_id"],
            "party": n["recipient"],
            "kind": n["kind"],
            "created_at": n["created_at"],
            "title": n["title"],
            "decision_ids": n["body"].get("decision_ids", []),
            # whether it reached the party, not where (a party's endpoints are its own)
            "delivered": any(d["state"] == "sent" for d in n["deliveries"]),
        }
        for n in list_notices(engine, about=key, limit=100_000)
        if n["recipient_kind"] == "party"
    ]
    out = {
        "subject": key,
        "as_of": today.isoformat(),
        "free_of_charge": True,
        "records": records,
        "status": status,
        "status_history": history,
        "decisions": decisions,
        "recipients": recipients(decisions),
        "cases": _cases(engine, key, today),
        "actions": actions,
        "notices": list_notices(engine, subject=key, limit=100_000),
        "party_notices": party_notices,
        "access_log": accesses,
    }
    if decision_retention is not None:
        out["decision_retention"] = decision_retention.describe(ledger.clock.now())
    if access_log_retention is not None:
        out["access_log_retention"] = describe_access(access_log_retention, ledger.clock.now())
    return out


def describe_access(retention: Retention, now: dt.datetime) -> dict[str, Any]:
    """What a subject is told of how long the access log keeps an entry."""
    return retention.describe(now, "access-log entry", "Access-log entries")
