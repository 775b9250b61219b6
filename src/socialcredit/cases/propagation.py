"""Correction propagation: tell every relying party that checked a subject while a record was wrong.

When a record is corrected, retracted, overturned or suspended, the version it replaces was wrong
from the moment it was recorded (``recorded_at`` of the entry holding that version) until the
correcting entry was recorded. Every decision about the subject logged in that window — whatever
the answer, since a wrong record can wrongly allow as well as wrongly deny — is affected; a party
that checked only before or only after the window is not told (GDPR Art. 19; FCRA 1681i(d)).

A party's notice names the subject it asked about, the decisions affected (ids, times, measures,
answers, and whether the record was among the basis it was shown) and asks it to check again. It
says nothing else about the record: a relying party never learns the file (invariant 5).
The notifier (:mod:`socialcredit.cases.notices`) calls this in the same transaction that writes
the subject's own notice, which lists the parties told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit.decision_ids import encode_id
from socialcredit.ledger import RecordView
from socialcredit.status.decisions import decisions_about
from socialcredit.status.schema import relying_parties

PUBLISH_UPDATE = "5 working days"  # due-process defaults §9 propagation.publish_update_working_days

_VERB = {
    "correct": "corrected",
    "retract": "retracted",
    "overturn": "overturned",
    "suspend": "suspended from evaluation",
}


def _stamp(t: dt.datetime) -> str:
    return t.isoformat(timespec="microseconds") + "Z"


def wrong_window(before: RecordView, e: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """From the recording of the wrong version to the recording of the correcting entry."""
    return before.recorded_at, e["recorded_at"]


def affected_decisions(
    conn: sa.Connection, subject: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Decisions about ``subject`` logged in [start, end], oldest first, with the party's name
    (projected or not yet: :func:`decisions_about`)."""
    d = decisions_about(conn.engine, subject)
    q = (
        sa.select(d, relying_parties.c.name.label("party_name"))
        .join(relying_parties, relying_parties.c.party_id == d.c.party_id, isouter=True)
        .where(d.c.at >= start, d.c.at <= end, d.c.decision != "refused")
        .order_by(d.c.decision_id)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def affected_parties(
    conn: sa.Connection, e: Mapping[str, Any], before: RecordView, after: RecordView
) -> list[dict[str, Any]]:
    """Per relying party: the decisions made while ``before`` (replaced by entry ``e``) was wrong."""
    start, end = wrong_window(before, e)
    versions = {before.record_id, before.origin_id}
    out: dict[str, dict[str, Any]] = {}
    for d in affected_decisions(conn, before.subject, start, end):
        basis = orjson.loads(d["basis"]) if d["basis"] else None
        recs = set(basis.get("records", [])) if isinstance(basis, dict) else set()
        p = out.setdefault(
            d["party_id"],
            {
                "party": d["party_id"],
                "party_name": d["party_name"],
                "decision_ids": [],
                "decisions": [],
            },
        )
        did = encode_id(int(d["decision_id"]))
        p["decision_ids"].append(did)
        p["decisions"].append(
            {
                "decision_id": did,
                "at": _stamp(d["at"]),
                "purpose": d["purpose"],
                "measure": d["measure"],
                "decision": d["decision"],
                "reason": d["reason"],
                "relied_on_record": bool(recs & versions),
            }
        )
    return [out[k] for k in sorted(out)]


def party_notice(
    e: Mapping[str, Any],
    before: RecordView,
    after: RecordView,
    party: Mapping[str, Any],
    ctx: Any,
) -> Any:
    """The correction notice to one relying party (a :class:`~socialcredit.cases.notices.NoticeDraft`)."""
    from socialcredit.cases.notices import NoticeDraft, _finish

    op = e["op"]
    verb = _VERB[op]
    subject = before.subject
    start, end = wrong_window(before, e)
    ds = party["decisions"]
    relied = [d["decision_id"] for d in ds if d["relied_on_record"]]
    n = len(ds)
    lines = [
        f"decision {d['decision_id']} at {d['at']}: {d['measure']} → {d['decision']} "
        f"({d['reason']}; purpose: {d['purpose']})"
        + (f"; its basis included record #{before.record_id}" if d["relied_on_record"] else "")
        for d in ds
    ]
    conduct = (
        f"On {end.date().isoformat()} a record about {subject} was {verb} by the authority that "
        f"furnished it (or a court). It had been in the registry in that form since "
        f"{_stamp(start)}. You checked {subject} {n} time{'s' if n != 1 else ''} in that period."
    )
    cons = [
        "these answers may have rested on wrong information: " + "; ".join(lines),
        f"{len(relied)} of them named record #{before.record_id} in their basis"
        if relied
        else "none of them named the record in their basis, but the status they were answered "
        "from included it",
        f"the subject has been told that you were notified ({subject} can read it in their file)",
    ]
    body = {
        "conduct": conduct,
        "legal_basis": [
            "correction propagation to every recipient (GDPR Art. 19; FCRA 1681i(d)); "
            f"the registry's {op} entry #{e['seq']} ({e['authority_ref']})",
        ],
        "consequences": cons,
        "deadline": {
            "date": None,
            "meaning": f"check {subject} again before relying on these answers; update what you "
            f"did on their basis (registry practice: within {PUBLISH_UPDATE})",
        },
        "how_to_respond": [
            {
                "action": f"check {subject} again for the same measures",
                "api": "POST /v1/checks",
                "cli": None,
                "by": None,
            },
            {
                "action": "read this notice again at any time",
                "api": "GET /v1/party/notices",
                "cli": None,
                "by": None,
            },
        ],
        "links": {
            "entry": e["seq"],
            "decision_ids": list(party["decision_ids"]),
            "window_start": _stamp(start),
            "window_end": _stamp(end),
        },
        "decisions": ds,
        "decision_ids": list(party["decision_ids"]),
    }
    title = (
        f"Correction: {n} eligibility answer{'s' if n != 1 else ''} you received about "
        f"{subject} may rest on a record since {verb}"
    )
    return _finish(
        NoticeDraft(
            "party",
            str(party["party"]),
            subject,
            "correction",
            f"entry:{e['seq']}:correction:{party['party']}",
            title,
            body,
            e["seq"],
        )
    )
