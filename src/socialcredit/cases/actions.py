"""Action entries: every case event and officer action, in the ledger's hash chain.

An action is a ledger entry with ``op = "action"`` (see ``/work/helpers/CONTRACT.md``):

* ``authority_id`` — the acting body ("registry" for the registry and its officers, or the
  furnishing authority's id), ``authority_ref`` — a unique idempotency reference
  (``case:42:decided``);
* ``subject_key`` — the subject concerned; ``origin_seq`` / ``target_seq`` — the record, if any;
* ``reason`` — the human "why";
* ``attributes`` — JSON with ``action``, ``actor`` (an officer's subject key, ``"system"``,
  ``"subject"``, a reporter ``public:<key id>`` or an authority id) and, where relevant,
  ``case_id``, ``case_type``, ``deadline``, ``outcome``, ``rulebook_id``, ``list_id``.

The ``cases`` table is folded from these entries by :func:`fold` — in the same transaction as the
append (:func:`commit`), and from scratch by :func:`rebuild_cases`. :func:`list_actions` is the
auditor's query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit.cases.schema import cases
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.db import write_transaction
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import ACTION_OP, Appended

REGISTRY = "registry"  # the registry itself (and its officers) as the acting body
SYSTEM = "system"  # the registry's own automatic actor (the sweep)
SUBJECT = "subject"  # the subject acting for itself

ACTIONS = (
    "case-opened",
    "case-answered",
    "case-decided",
    "case-extended",
    "deadline-missed",
    "review-proposed",
    "review-confirmed",
    "review-halted",
    "review-lifted",
    "tip-verified",
    "tip-rejected",
    "tip-flagged",
)
CASE_TYPES = ("objection", "repair", "review", "tip")
OPENING = ("case-opened", "review-proposed")


def opens_case(a: Mapping[Any, Any], seq: int) -> bool:
    """Whether an action (attributes, seq) opens a case (its seq is then the case id)."""
    return a.get("action") in OPENING or (
        a.get("action") == "review-halted" and a.get("case_id") in (None, seq)
    )


def attrs_json(attrs: Mapping[Any, Any]) -> str:
    return orjson.dumps(dict(attrs), option=orjson.OPT_SORT_KEYS).decode()


def action_draft(
    *,
    action: str,
    actor: str,
    subject: str,
    ref: str,
    reason: str | None,
    authority_id: str = REGISTRY,
    record: int | None = None,
    target: int | None = None,
    **attrs: Any,
) -> dict[str, Any]:
    """A draft ``action`` entry (append it with :meth:`Ledger.append` or :func:`commit`)."""
    if action not in ACTIONS:
        raise ValueError(f"'{action}' is not an action ({', '.join(ACTIONS)})")
    body = {k: v for k, v in attrs.items() if v is not None}
    body.update({"action": action, "actor": actor})
    return {
        "op": ACTION_OP,
        "authority_id": authority_id,
        "authority_ref": ref,
        "target_seq": target,
        "origin_seq": record,
        "subject_key": subject,
        "attributes": attrs_json(body),
        "reason": reason,
    }


def record_action(ledger: Ledger, **kw: Any) -> int:
    """Append one action entry on its own (see :func:`action_draft`); returns its seq."""
    with write_transaction(ledger.engine) as conn:
        return commit(conn, ledger, [action_draft(**kw)])[0]


def commit(conn: sa.Connection, ledger: Ledger, drafts: Sequence[dict[str, Any]]) -> list[int]:
    """Append drafts (inside the caller's write transaction) and fold the actions into ``cases``.

    Returns the seqs in draft order. A conflict (same reference, other content) raises
    :class:`ConflictError`; a duplicate returns the existing seq and folds nothing twice.
    """
    result: Appended = ledger.append(conn, list(drafts))
    if result.conflicts:
        raise ConflictError([p for _, p in result.conflicts])
    seqs = dict(result.stored)
    seqs.update(result.duplicates)
    stored = sorted(s for _, s in result.stored)
    if stored:
        rows = (
            conn.execute(
                sa.select(entries)
                .where(entries.c.seq.in_(stored), entries.c.op == ACTION_OP)
                .order_by(entries.c.seq)
            )
            .mappings()
            .all()
        )
        project(conn, rows)
    return [seqs[i] for i in range(len(drafts))]


def next_seq(conn: sa.Connection, ledger: Ledger) -> int:
    """The seq the next appended entry gets (call inside the write transaction)."""
    return ledger.head(conn)[0] + 1


# ---------------------------------------------------------------------- the projection


def _attrs(e: Mapping[Any, Any]) -> dict[str, Any]:
    raw = e["attributes"]
    out: dict[str, Any] = orjson.loads(raw) if raw else {}
    return out


def _date(v: Any) -> dt.date | None:
    return dt.date.fromisoformat(v) if isinstance(v, str) else None


def fold(rows: dict[int, dict[str, Any]], e: Mapping[Any, Any]) -> int | None:
    """Fold one action entry into case rows (keyed by case id). Returns the case id touched."""
    a = _attrs(e)
    action = a.get("action")
    case_id = a.get("case_id")
    opening = opens_case(a, e["seq"])
    if opening:
        case_id = e["seq"]
        rows[case_id] = {
            "case_id": case_id,
            "case_type": a.get("case_type", "review"),
            "state": "halted" if action == "review-halted" else "open",
            "subject_key": e["subject_key"],
            "record_seq": e["origin_seq"],
            "rulebook_id": a.get("rulebook_id"),
            "list_id": a.get("list_id"),
            "opened_by": a.get("actor", SYSTEM),
            "opened_at": e["recorded_at"],
            "opened_on": e["recorded_at"].date(),
            "deadline_key": a.get("deadline_key"),
            "deadline": _date(a.get("deadline")),
            "deadline_rulebook": a.get("deadline_rulebook"),
            "missed": False,
            "late": False,
            "outcome": "halted" if action == "review-halted" else None,
            "closed_by": a.get("actor") if action == "review-halted" else None,
            "closed_at": e["recorded_at"] if action == "review-halted" else None,
            "reason": e["reason"],
            "detail": {
                k: v
                for k, v in a.items()
                if k
                in ("records", "reporter", "proposed_by", "kind", "rewardable", "evidence", "halt")
            },
            "last_seq": e["seq"],
        }
        if action == "review-halted":
            rows[case_id]["detail"]["halts"] = [{"actor": a.get("actor"), "seq": e["seq"]}]
        return int(case_id)
    if case_id is None or case_id not in rows:
        return None
    row = rows[case_id]
    row["last_seq"] = e["seq"]
    detail = row["detail"]
    actor = a.get("actor")
    if action == "deadline-missed":
        row["missed"] = True
        return int(case_id)
    if action == "case-extended":
        row["deadline"] = _date(a.get("deadline"))
        detail.setdefault("extensions", []).append({"actor": actor, "seq": e["seq"]})
        return int(case_id)
    if action == "tip-flagged":
        detail["flagged"] = True
        return int(case_id)
    if action == "review-confirmed":
        detail.setdefault("reviews", []).append({"actor": actor, "seq": e["seq"]})
        if not a.get("final"):
            return int(case_id)
    if action == "review-lifted":
        row["state"] = "lifted"
        row["outcome"] = "lifted"
        detail.setdefault("lifts", []).append({"actor": actor, "seq": e["seq"]})
        row["closed_by"], row["closed_at"] = actor, e["recorded_at"]
        return int(case_id)
    if action == "review-halted":
        row["state"] = "halted"
        row["outcome"] = "halted"
        detail.setdefault("halts", []).append({"actor": actor, "seq": e["seq"]})
        row["closed_by"], row["closed_at"] = actor, e["recorded_at"]
        return int(case_id)
    row["state"] = "answered" if action == "case-answered" else "decided"
    row["outcome"] = a.get("outcome") or {
        "review-confirmed": "confirmed",
        "tip-verified": "verified",
        "tip-rejected": "rejected",
    }.get(str(action))
    row["late"] = bool(a.get("late"))
    row["closed_by"], row["closed_at"] = actor, e["recorded_at"]
    if action == "tip-verified":
        detail["rewardable"] = True
    return int(case_id)


def _stored(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = dict(row)
    out["detail"] = attrs_json(row["detail"])
    return out


def _loaded(r: Mapping[Any, Any]) -> dict[str, Any]:
    out = {str(k): v for k, v in r.items()}  # plain str keys (orjson refuses str subclasses)
    out["detail"] = orjson.loads(r["detail"]) if r["detail"] else {}
    return out


def project(conn: sa.Connection, action_entries: Iterable[Mapping[Any, Any]]) -> None:
    """Fold action entries into the stored ``cases`` rows they touch."""
    todo = list(action_entries)
    if not todo:
        return
    wanted = {int(_attrs(e).get("case_id") or 0) for e in todo} - {0}
    rows: dict[int, dict[str, Any]] = {}
    if wanted:
        for r in conn.execute(
            sa.select(cases).where(cases.c.case_id.in_(sorted(wanted)))
        ).mappings():
            rows[r["case_id"]] = _loaded(r)
    existing = set(rows)
    touched: set[int] = set()
    for e in todo:
        cid = fold(rows, e)
        if cid is not None:
            touched.add(cid)
    for cid in sorted(touched):
        if cid in existing:
            conn.execute(cases.update().where(cases.c.case_id == cid).values(**_stored(rows[cid])))
        else:
            conn.execute(cases.insert().values(**_stored(rows[cid])))


def rebuild_cases(ledger: Ledger) -> int:
    """Recompute the ``cases`` table from the ledger's action entries. Returns the case count."""
    with write_transaction(ledger.engine) as conn:
        rows: dict[int, dict[str, Any]] = {}
        for e in conn.execute(
            sa.select(entries).where(entries.c.op == ACTION_OP).order_by(entries.c.seq)
        ).mappings():
            fold(rows, e)
        conn.execute(cases.delete())
        if rows:
            conn.execute(cases.insert(), [_stored(r) for r in rows.values()])
        return len(rows)


def verify_cases(ledger: Ledger) -> list[int]:
    """Case ids whose stored row differs from the fold of the ledger's action entries.

    The ledger itself is proven by ``audit verify``; this proves the projection against it (an
    edit of the ``cases`` table behind the program's back shows up here; ``rebuild_cases`` fixes
    it).
    """
    rows: dict[int, dict[str, Any]] = {}
    with ledger.engine.connect() as conn:
        for e in conn.execute(
            sa.select(entries).where(entries.c.op == ACTION_OP).order_by(entries.c.seq)
        ).mappings():
            fold(rows, e)
    stored = {r["case_id"]: r for r in cases_snapshot(ledger.engine)}
    bad = []
    for cid in sorted(set(rows) | set(stored)):
        want = rows.get(cid)
        if want is None or cid not in stored:
            bad.append(cid)
            continue
        if _loaded(_stored(want)) != stored[cid]:
            bad.append(cid)
    return bad


def cases_snapshot(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every case row (for comparing the projection with a rebuild)."""
    with engine.connect() as conn:
        return [
            _loaded(r) for r in conn.execute(sa.select(cases).order_by(cases.c.case_id)).mappings()
        ]


# ---------------------------------------------------------------------- reading cases


def get_case(engine_or_conn: sa.Engine | sa.Connection, case_id: int) -> dict[str, Any]:
    q = sa.select(cases).where(cases.c.case_id == case_id)
    if isinstance(engine_or_conn, sa.Connection):
        r = engine_or_conn.execute(q).mappings().first()
    else:
        with engine_or_conn.connect() as conn:
            r = conn.execute(q).mappings().first()
    if r is None:
        raise NotFoundError(f"no case {case_id}")
    return _loaded(r)


def case_json(row: Mapping[Any, Any], today: dt.date | None = None) -> dict[str, Any]:
    """A case as JSON (dates as ISO text; ``overdue`` if still open after its deadline)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dt.datetime):
            out[str(k)] = v.isoformat() + "Z"
        elif isinstance(v, dt.date):
            out[str(k)] = v.isoformat()
        else:
            out[str(k)] = v
    if today is not None:
        out["overdue"] = bool(
            row["state"] == "open" and row["deadline"] is not None and today > row["deadline"]
        )
    return out


def list_cases(
    engine: sa.Engine,
    *,
    subject: str | None = None,
    case_type: str | None = None,
    state: str | None = None,
    open_only: bool = False,
    record_seq: int | None = None,
    rulebook_id: str | None = None,
    list_id: str | None = None,
    authority_id: str | None = None,
    due_before: dt.date | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Cases, ordered by deadline (earliest first; no deadline last), then case id."""
    q = sa.select(cases)
    if subject is not None:
        q = q.where(cases.c.subject_key == subject)
    if case_type is not None:
        q = q.where(cases.c.case_type == case_type)
    if state is not None:
        q = q.where(cases.c.state == state)
    if open_only:
        q = q.where(cases.c.state == "open")
    if record_seq is not None:
        q = q.where(cases.c.record_seq == record_seq)
    if rulebook_id is not None:
        q = q.where(cases.c.rulebook_id == rulebook_id)
    if list_id is not None:
        q = q.where(cases.c.list_id == list_id)
    if due_before is not None:
        q = q.where(cases.c.deadline <= due_before)
    if authority_id is not None:
        furnished = sa.select(entries.c.origin_seq).where(
            entries.c.authority_id == authority_id, entries.c.op.in_(("furnish", "correct"))
        )
        q = q.where(cases.c.record_seq.in_(furnished))
    q = q.order_by(cases.c.deadline.is_(None), cases.c.deadline, cases.c.case_id).limit(limit)
    with engine.connect() as conn:
        return [_loaded(r) for r in conn.execute(q).mappings()]


# ---------------------------------------------------------------------- the auditor's query


@dataclass(frozen=True, slots=True)
class ActionFilter:
    actor: str | None = None
    action: str | None = None
    subject: str | None = None
    case_id: int | None = None
    since: dt.datetime | None = None  # recorded at or after (naive UTC)
    until: dt.datetime | None = None  # recorded before
    after_seq: int | None = None  # paging: entries after this seq
    limit: int = 100


def action_json(e: Mapping[Any, Any]) -> dict[str, Any]:
    a = _attrs(e)
    return {
        "seq": e["seq"],
        "recorded_at": e["recorded_at"].isoformat() + "Z",
        "action": a.get("action"),
        "actor": a.get("actor"),
        "authority_id": e["authority_id"],
        "ref": e["authority_ref"],
        "subject": e["subject_key"],
        "record": e["origin_seq"],
        "case_id": a.get("case_id", e["seq"] if opens_case(a, e["seq"]) else None),
        "case_type": a.get("case_type"),
        "reason": e["reason"],
        "attributes": a,
        "entry_hash": e["entry_hash"],
    }


def list_actions(
    engine: sa.Engine, f: ActionFilter | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """Action entries (oldest first) filtered by actor, action, subject, case and time range.

    Every item carries its ledger ``seq`` and ``entry_hash``: ``audit verify`` proves the chain.
    """
    f = f or ActionFilter(**kw)
    if f.action is not None and f.action not in ACTIONS:
        raise InputError(
            [Problem("action", "unknown-action", f.action, f"one of: {', '.join(ACTIONS)}")]
        )
    q = sa.select(entries).where(entries.c.op == ACTION_OP)
    if f.subject is not None:
        q = q.where(entries.c.subject_key == f.subject)
    if f.since is not None:
        q = q.where(entries.c.recorded_at >= f.since)
    if f.until is not None:
        q = q.where(entries.c.recorded_at < f.until)
    if f.after_seq is not None:
        q = q.where(entries.c.seq > f.after_seq)
    # narrow in SQL on the canonical attribute text, then check exactly
    if f.actor is not None:
        q = q.where(entries.c.attributes.contains(attrs_json({"actor": f.actor})[1:-1]))
    if f.action is not None:
        q = q.where(entries.c.attributes.contains(attrs_json({"action": f.action})[1:-1]))
    out: list[dict[str, Any]] = []
    last = f.after_seq or 0
    with engine.connect() as conn:
        while len(out) < f.limit:
            rows = (
                conn.execute(q.where(entries.c.seq > last).order_by(entries.c.seq).limit(1000))
                .mappings()
                .all()
            )
            if not rows:
                break
            for e in rows:
                last = e["seq"]
                item = action_json(e)
                if f.actor is not None and item["actor"] != f.actor:
                    continue
                if f.action is not None and item["action"] != f.action:
                    continue
                if f.case_id is not None and item["case_id"] != f.case_id:
                    continue
                out.append(item)
                if len(out) >= f.limit:
                    break
    return out
