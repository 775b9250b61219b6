"""The notifier: notices derived from the ledger and the status history, written exactly once.

Two streams are tailed, each behind its own watermark in ``notice_watermarks``:

* ``ledger`` — entries after the watermark: a record furnished about a subject (``record-added``),
  corrected, retracted, overturned, suspended or reinstated (and, for the first four, a correction
  notice to every relying party that checked the subject while the record was wrong — see
  :mod:`socialcredit.cases.propagation`), and the cases helper's ``action`` entries (case opened,
  answered, decided, extended, deadline missed; reviews proposed, confirmed, halted, lifted).
* ``status`` — ``status_history`` rows after the watermark, each compared with the subject's
  previous row under the same rulebook: a new *pending* listing (``intent-to-list``: the listing
  takes effect at the end of its grace period unless the obligation is fulfilled), a new membership
  (``listed``), a membership gone (``removed``).

A batch is computed from a snapshot (no lock held), then written under the notice lock **only if
the watermark has not moved**, in the same transaction that moves it: a crash or an error leaves
neither notices nor a moved watermark, and two notifiers never write the same event twice (each
notice also carries a unique ``dedupe_key`` naming its event). Deliveries (e-mail, webhook) for each
notice are created in the same transaction from the recipient's contacts; the pump in
:mod:`socialcredit.cases.delivery` sends them.

Every notice states the conduct, the legal basis, the consequences, a deadline and how to respond,
with record ids, rule ids and dates — never a generic reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from socialcredit import ids
from socialcredit.cases.notices_schema import (
    notice_contacts,
    notice_deliveries,
    notice_watermarks,
    notices,
    party_webhooks,
)
from socialcredit.catalog import Catalogue
from socialcredit.clock import Clock
from socialcredit.engine.reference import Status, evaluate
from socialcredit.ledger import Ledger, RecordView
from socialcredit.ledger.db import sole_round
from socialcredit.ledger.schema import entries
from socialcredit.ledger.store import apply_entry, newest_seq, subject_entries
from socialcredit.rulebooks import Rulebook
from socialcredit.rulebooks.durations import Duration, add
from socialcredit.rulebooks.model import dur
from socialcredit.status.db import locked_transaction, naive_utc
from socialcredit.status.schema import status_history

log = logging.getLogger(__name__)

NOTICE_LOCK_KEY = 0x5C0C0071  # notices / deliveries / notifier watermarks
NOTIFIER_ROUND_KEY = 0x5C0C0072  # one notifier round at a time (a session lock: not the above)
LEDGER_STREAM = "ledger"
STATUS_STREAM = "status"
BATCH = 200

#: The default window to respond to a notice when the rulebook's procedure names none
#: (due-process reference §9: ``listing.response_window_days: 30``, FAR 9.406-3(c)).
RESPONSE_WINDOW = Duration(days=30)
#: Procedure deadline names read as the subject's window to object, first found wins.
OBJECTION_DEADLINE_NAMES = ("objection_window", "response_window", "objection")

RECORD_EVENTS = {
    "furnish": "record-added",
    "correct": "record-corrected",
    "retract": "record-retracted",
    "overturn": "record-overturned",
    "suspend": "record-suspended",
    "reinstate": "record-reinstated",
}
#: ops after which every relying party that checked the subject while the record was wrong is told
PROPAGATING_OPS = ("correct", "retract", "overturn", "suspend")
ACTION_KINDS = {
    "case-opened": "case-opened",
    "case-answered": "case-answered",
    "case-decided": "case-decided",
    "case-extended": "case-extended",
    "deadline-missed": "deadline-missed",
    "review-proposed": "review-proposed",
    "review-confirmed": "review-confirmed",
    "review-halted": "review-halted",
    "review-lifted": "review-lifted",
}
KINDS = (
    *RECORD_EVENTS.values(),
    *ACTION_KINDS.values(),
    "intent-to-list",
    "intent-withdrawn",
    "listed",
    "removed",
    "correction",  # to a relying party
)

# How to respond: the routes and commands a subject uses (docs/due-process.md lists them).
API_FILE = "GET /v1/me/file"
API_NOTICES = "GET /v1/me/notices"
API_OBJECT = "POST /v1/me/objections"
API_REPAIR = "POST /v1/me/repairs"
CLI_FILE = "socialcredit notices file {subject} --json"


# ---------------------------------------------------------------------- drafts


@dataclass(slots=True)
class NoticeDraft:
    """A notice before it is written: who gets it, about whom, what it says."""

    recipient_kind: str  # subject | party
    recipient: str
    subject: str
    kind: str
    dedupe_key: str
    title: str
    body: dict[str, Any]
    source_seq: int | None = None


@dataclass(frozen=True, slots=True)
class NotifierReport:
    ledger_watermark: int
    status_watermark: int
    notices: int
    deliveries: int


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _human_list(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def render_text(title: str, body: Mapping[str, Any]) -> str:
    """The notice as plain text (the e-mail body; also stored as ``body.text``)."""
    out = [title, ""]
    out.append("What happened: " + str(body.get("conduct", "")))
    lb = body.get("legal_basis") or []
    if lb:
        out.append("")
        out.append("Legal basis:")
        out += [f"  - {x}" for x in lb]
    cons = body.get("consequences") or []
    if cons:
        out.append("")
        out.append("Consequences:")
        out += [f"  - {x}" for x in cons]
    dl = body.get("deadline") or {}
    out.append("")
    out.append(
        "Deadline: "
        + (f"{dl['date']} — " if dl.get("date") else "")
        + str(dl.get("meaning", "no deadline applies"))
    )
    how = body.get("how_to_respond") or []
    if how:
        out.append("")
        out.append("How to respond:")
        for h in how:
            line = f"  - {h['action']}"
            if h.get("by"):
                line += f" (by {h['by']})"
            if h.get("api"):
                line += f" — API: {h['api']}"
            if h.get("cli"):
                line += f" — CLI: {h['cli']}"
            out.append(line)
    links = body.get("links") or {}
    if links:
        out.append("")
        out.append(
            "References: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(links.items()) if v not in (None, [], ""))
        )
    return "\n".join(out) + "\n"


def _finish(d: NoticeDraft) -> NoticeDraft:
    d.title = d.title[:300]
    d.body.setdefault("kind", d.kind)
    d.body.setdefault("subject", d.subject)
    d.body["title"] = d.title
    d.body["text"] = render_text(d.title, d.body)
    return d


# ---------------------------------------------------------------------- context


class Context:
    """What composing a notice needs: catalogue, authorities, active rulebooks, today."""

    def __init__(
        self,
        catalogue: Catalogue,
        authorities: Mapping[str, str],
        rulebooks: Sequence[Rulebook],
        today: dt.date,
    ):
        self.catalogue = catalogue
        self.authorities = authorities
        self.rulebooks = list(rulebooks)
        self.today = today
        #: every record view of a subject as the batch ends (for "as things stand" summaries)
        self.current: dict[str, Sequence[RecordView]] = {}
        #: the action entries of a subject read so far (for the review gate)
        self.actions: dict[str, list[Mapping[str, Any]]] = {}

    def authority(self, authority_id: str | None) -> str:
        if not authority_id:
            return "the registry"
        name = self.authorities.get(authority_id)
        return f"{name} ({authority_id})" if name else authority_id

    def kind_title(self, kind: str | None) -> str:
        k = self.catalogue.record_kinds.get(kind or "")
        return k.title if k else (kind or "record")

    def measure_title(self, measure_id: str) -> str:
        m = self.catalogue.measures.get(measure_id)
        return f"{m.title} ({measure_id})" if m else measure_id

    def rulebook(self, rulebook_id: str) -> Rulebook | None:
        return next((rb for rb in self.rulebooks if rb.id == rulebook_id), None)

    def objection_deadline(self, rb: Rulebook | None, start: dt.date) -> tuple[dt.date, str]:
        """The day by which to object to something noticed on ``start``, and where it comes from."""
        if rb is not None:
            for name in OBJECTION_DEADLINE_NAMES:
                raw = rb.procedure.deadlines.get(name)
                if raw is None:
                    continue
                d = dur(raw)
                if d is None:
                    continue
                if d.working_days:
                    from socialcredit.rulebooks.loader import load_calendar

                    cal = load_calendar(rb.procedure.calendar)
                    return (
                        cal.add_working_days(start, d.working_days),
                        f"{rb.ref} procedure deadline '{name}' ({d.describe()}, "
                        f"{rb.procedure.calendar} calendar)",
                    )
                return add(start, d), f"{rb.ref} procedure deadline '{name}' ({d.describe()})"
        return (
            add(start, RESPONSE_WINDOW),
            "the registry's default response window (30 days; FAR 9.406-3(c), "
            "due-process defaults §9)",
        )


def answer_deadline(
    rulebooks: Sequence[Rulebook], kind: str | None, start: dt.date
) -> tuple[dt.date, str] | None:
    """When the furnishing authority must answer an objection opened on ``start`` (the cases
    room's ``objection_response`` deadline: strictest of the rulebooks reading ``kind``)."""
    try:
        from socialcredit.cases.deadlines import compute
    except ImportError:  # the cases room is not there
        return None
    try:
        d = compute(rulebooks, "objection_response", start, kind=kind)
    except Exception:
        log.debug("objection_response deadline", exc_info=True)
        return None
    return d.due, f"{d.duration} ({d.rulebook}, {d.calendar} calendar)"


def record_conduct(v: RecordView, ctx: Context) -> str:
    bits = [
        f"{ctx.kind_title(v.kind)} ({v.kind})",
        f"decision {v.decision_no} of {v.decision_date.isoformat()}",
        f"furnished by {ctx.authority(v.authority_id)}",
    ]
    if v.severity:
        bits.append(f"severity {v.severity}")
    if v.amount_minor is not None:
        bits.append(f"amount {v.amount_minor / 100:.2f} yuan")
    if v.attributes:
        bits.append(
            "details: " + ", ".join(f"{k} = {v.attributes[k]}" for k in sorted(v.attributes))
        )
    return f"record #{v.record_id}: " + "; ".join(bits)


def _status_of(
    rb: Rulebook, views: Iterable[RecordView], subject: str, ctx: Context
) -> tuple[Status, list[dict[str, Any]]]:
    """The status as the live status has it: evaluated, then the review gate of the cases room
    (memberships awaiting human review or halted are withheld, and returned second)."""
    from socialcredit.status.service import rec_of

    recs = [rec_of(v) for v in views]
    kind = next((r.subject_kind for r in reversed(recs) if r.subject_kind), None)
    if kind is None:
        try:
            kind = ids.parse_key(subject).subject_kind
        except ids.IdError:
            kind = None
    st = evaluate(rb, recs, ctx.today, subject=subject, subject_kind=kind)
    try:
        from socialcredit.cases.gate import gate
    except ImportError:  # no cases room: nothing is gated
        return st, []
    return gate(rb, st, ctx.actions.get(subject, []))


def _list_measures(rb: Rulebook, list_id: str) -> list[tuple[str, str, str]]:
    """(measure id, memorandum id, memorandum legal basis) bound to a list."""
    out = []
    for memo in rb.memoranda:
        for b in memo.bindings:
            if b.when.list_ == list_id:
                for m in b.measures:
                    out.append((m, memo.id, " ".join(memo.legal_basis.split())))
    return out


def record_effects(
    record_ids: set[int], views: Sequence[RecordView], subject: str, ctx: Context
) -> tuple[list[str], list[str], dt.date | None]:
    """(consequences, legal bases, first day a pending listing they bring takes effect) of
    records under every active rulebook, as of today."""
    cons: list[str] = []
    bases: list[str] = []
    first: dt.date | None = None
    for rb in ctx.rulebooks:
        st, withheld = _status_of(rb, views, subject, ctx)
        for w in withheld:
            if record_ids & set(w.get("basis", [])):
                lst = rb.get_list(w["list"])
                state = {
                    "proposed": "is proposed and takes effect only once a human reviewer "
                    "confirms it",
                    "halted": "was halted by an officer and does not take effect",
                }.get(w.get("state", ""), "is withheld")
                cons.append(
                    f"{rb.ref}: a listing on '{lst.title}' ({lst.id}) from {w.get('since')} {state}"
                )
                bases.append(f"{rb.ref} list {lst.id}: {' '.join(lst.legal_basis.split())}")
        for m in st.memberships:
            if record_ids & set(m.basis):
                lst = rb.get_list(m.list_id)
                until = f"until {m.until.isoformat()}" if m.until else "with no fixed end"
                cons.append(
                    f"{rb.ref}: you are listed on '{lst.title}' ({lst.id}) since "
                    f"{m.since.isoformat()}, {until}"
                )
                bases.append(f"{rb.ref} list {lst.id}: {' '.join(lst.legal_basis.split())}")
                for mid, memo, basis in _list_measures(rb, m.list_id):
                    cons.append(
                        f"{rb.ref}: measure {ctx.measure_title(mid)} applies through "
                        f"memorandum {memo}"
                    )
                    bases.append(f"{rb.ref} memorandum {memo}: {basis}")
        for p in st.pending:
            if record_ids & set(p.basis):
                first = p.effective if first is None else min(first, p.effective)
                lst = rb.get_list(p.list_id)
                cons.append(
                    f"{rb.ref}: you will be listed on '{lst.title}' ({lst.id}) from "
                    f"{p.effective.isoformat()} (end of the grace period) unless the obligation "
                    "is fulfilled or the record is successfully contested before then"
                )
                bases.append(f"{rb.ref} list {lst.id}: {' '.join(lst.legal_basis.split())}")
                for mid, memo, basis in _list_measures(rb, p.list_id):
                    cons.append(
                        f"{rb.ref}: from {p.effective.isoformat()} measure "
                        f"{ctx.measure_title(mid)} would apply through memorandum {memo}"
                    )
                    bases.append(f"{rb.ref} memorandum {memo}: {basis}")
        for sr in st.schemes:
            for c in sr.contributions:
                if c.record_id in record_ids:
                    cons.append(
                        f"{rb.ref}: {c.points:+g} points in scheme {sr.scheme_id} (rule {c.rule_id}) "
                        f"until {c.counts_until.isoformat()}; now {sr.points:g} points, "
                        f"grade {sr.grade}"
                    )
    if not cons:
        refs = ", ".join(rb.ref for rb in ctx.rulebooks) or "no rulebook is active"
        cons.append(
            f"as of {ctx.today.isoformat()}, under {refs}, this record by itself lists you on "
            "nothing, changes no score and brings no measure; it stays on your file and may "
            "count together with later records"
        )
    return _dedupe(cons), _dedupe(bases), first


def _dedupe(xs: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(xs))


def _first_rb(ctx: Context) -> Rulebook | None:
    return ctx.rulebooks[0] if ctx.rulebooks else None


# ---------------------------------------------------------------------- ledger events


def record_notice(
    e: Mapping[str, Any],
    before: RecordView | None,
    after: RecordView,
    views: Sequence[RecordView],
    ctx: Context,
    notified_parties: Sequence[Mapping[str, Any]] = (),
) -> NoticeDraft:
    """The notice to the subject about one record entry (furnish / correct / retract / ...)."""
    op = e["op"]
    kind = RECORD_EVENTS[op]
    subject = after.subject
    rid = after.record_id
    when = e["recorded_at"].date().isoformat()
    by = ctx.authority(e["authority_id"])
    reason = (e.get("reason") or "").strip()
    conduct = record_conduct(after, ctx)
    deadline_day, why = ctx.objection_deadline(_first_rb(ctx), ctx.today)
    cons, bases, takes_effect = record_effects(
        {after.record_id, after.origin_id}, views, subject, ctx
    )
    if takes_effect is not None and takes_effect < deadline_day:
        # a listing in its grace period: object before it takes effect
        deadline_day = takes_effect
        why = "a listing based on this record takes effect that day unless it is contested"
    legal = [f"the record: {' '.join(after.legal_basis.split())}", *bases]
    how: list[dict[str, Any]] = []
    deadline: dict[str, Any]
    object_action: dict[str, Any] = {
        "action": f"object to record #{rid} if it is wrong: it is marked disputed at once and "
        "the authority must confirm or correct it",
        "api": API_OBJECT + f' {{"record": {rid}, "grounds": "..."}}',
        "cli": None,
        "by": deadline_day.isoformat(),
    }
    read_file: dict[str, Any] = {
        "action": "read your whole file (records, status with explanations, who checked you)",
        "api": API_FILE,
        "cli": CLI_FILE.format(subject=subject),
        "by": None,
    }
    answer = answer_deadline(ctx.rulebooks, after.kind, ctx.today)
    if answer is not None and op in ("furnish", "correct", "reinstate"):
        object_action["action"] += (
            f"; objecting today, the authority must answer by {answer[0].isoformat()} "
            f"({answer[1]}) or the record is suspended from evaluation"
        )
    if op == "furnish":
        title = f"A record was added to your file: {ctx.kind_title(after.kind)}, decision {after.decision_no} by {by}"
        what = f"On {when} {by} furnished {conduct}."
        how = [object_action, read_file]
        deadline = {
            "date": deadline_day.isoformat(),
            "meaning": f"object by this day ({why}); you may object later too, but an objection "
            "made before a listing takes effect can stop it",
        }
    elif op == "correct":
        changes = _diff(before, after)
        title = f"Record #{after.origin_id} on your file was corrected by {by}"
        what = (
            f"On {when} {by} corrected record #{after.origin_id} (now version {after.versions}, "
            f"entry #{rid})"
            + (f": {'; '.join(changes)}" if changes else "")
            + (f". Reason given: {reason}" if reason else "")
            + f". The record now reads: {conduct}."
        )
        how = [object_action, read_file]
        deadline = {
            "date": deadline_day.isoformat(),
            "meaning": f"object to the corrected version by this day ({why})",
        }
    elif op in ("retract", "overturn"):
        verb = "retracted" if op == "retract" else "overturned"
        title = f"Record #{after.origin_id} was {verb}: it no longer counts against you"
        what = (
            f"On {when} {by} {verb} {conduct}"
            + (f". Reason given: {reason}" if reason else "")
            + ". It is no longer read by any rule."
        )
        cons = [
            f"record #{after.origin_id} no longer counts under "
            f"{', '.join(rb.ref for rb in ctx.rulebooks) or 'any rulebook'}; "
            "any listing, points or measure that rested only on it ends",
            *_current_summary(views, subject, ctx),
        ]
        how = [read_file]
        deadline = {
            "date": None,
            "meaning": "nothing to do: the record no longer counts; if a listing or measure "
            "that rested on it still shows, object (see how to respond)",
        }
    elif op == "suspend":
        title = f"Record #{after.origin_id} is suspended from evaluation"
        what = (
            f"On {when} {by} suspended {conduct}"
            + (f". Reason given: {reason}" if reason else "")
            + ". While suspended it is read by no rule and no check."
        )
        cons = [
            f"record #{after.origin_id} does not count until it is reinstated",
            *_current_summary(views, subject, ctx),
        ]
        how = [read_file]
        deadline = {
            "date": None,
            "meaning": "nothing to do now; you will be told if the record is reinstated",
        }
    else:  # reinstate
        title = f"Record #{after.origin_id} counts again (reinstated)"
        what = f"On {when} {by} reinstated {conduct}" + (
            f". Reason given: {reason}" if reason else ""
        )
        how = [object_action, read_file]
        deadline = {
            "date": deadline_day.isoformat(),
            "meaning": f"object by this day if the reinstatement is wrong ({why})",
        }
    if notified_parties:
        names = [f"{p['party_name'] or p['party']} ({p['party']})" for p in notified_parties]
        n = sum(len(p["decision_ids"]) for p in notified_parties)
        cons.append(
            f"{len(names)} relying part{'y' if len(names) == 1 else 'ies'} that checked you while "
            f"the record was wrong {'was' if len(names) == 1 else 'were'} notified "
            f"({n} decision{'s' if n != 1 else ''}): {_human_list(names)}"
        )
    body = {
        "conduct": what,
        "legal_basis": _dedupe(legal),
        "consequences": cons,
        "deadline": deadline,
        "how_to_respond": how,
        "links": {
            "entry": e["seq"],
            "record": after.origin_id,
            "record_version": rid,
            "rulebooks": [rb.ref for rb in ctx.rulebooks],
            "notified_parties": [p["party"] for p in notified_parties],
        },
    }
    return _finish(
        NoticeDraft(
            "subject",
            subject,
            subject,
            kind,
            f"entry:{e['seq']}:{kind}",
            title,
            body,
            e["seq"],
        )
    )


_FIELDS = (
    ("kind", "kind"),
    ("decision_no", "decision number"),
    ("decision_date", "decision date"),
    ("severity", "severity"),
    ("amount_minor", "amount"),
    ("legal_basis", "legal basis"),
)


def _diff(before: RecordView | None, after: RecordView) -> list[str]:
    if before is None:
        return []
    out = []
    for f, label in _FIELDS:
        a, b = getattr(before, f), getattr(after, f)
        if a != b:
            if f == "amount_minor":
                a = None if a is None else f"{a / 100:.2f}"
                b = None if b is None else f"{b / 100:.2f}"
            out.append(f"{label} {a} → {b}")
    for k in sorted(set(before.attributes) | set(after.attributes)):
        if before.attributes.get(k) != after.attributes.get(k):
            out.append(f"{k} {before.attributes.get(k)} → {after.attributes.get(k)}")
    return out


def _current_summary(views: Sequence[RecordView], subject: str, ctx: Context) -> list[str]:
    out = []
    for rb in ctx.rulebooks:
        st, withheld = _status_of(rb, views, subject, ctx)
        lists = [m.list_id for m in st.memberships]
        lists += [f"{w['list']} (withheld: {w.get('state')})" for w in withheld]
        measures = sorted(st.measure_ids())
        out.append(
            f"{rb.ref} now: "
            + (f"listed on {', '.join(lists)}" if lists else "on no list")
            + (f"; measures {', '.join(measures)}" if measures else "; no measure applies")
        )
    return out


def action_notice(
    e: Mapping[str, Any], attrs: Mapping[str, Any], record: RecordView | None, ctx: Context
) -> NoticeDraft | None:
    """The notice to the subject about one ``action`` entry (CONTRACT.md), or None (tips)."""
    action = str(attrs.get("action") or "")
    kind = ACTION_KINDS.get(action)
    subject = e["subject_key"]
    if kind is None or not subject:
        return None
    case_id = attrs.get("case_id")
    case_type = str(attrs.get("case_type") or "case")
    case = f"{case_type} case {case_id}" if case_id is not None else f"a {case_type} case"
    deadline = attrs.get("deadline")
    outcome = attrs.get("outcome")
    reason = (e.get("reason") or "").strip()
    when = e["recorded_at"].date().isoformat()
    by = ctx.authority(e["authority_id"])
    actor = attrs.get("actor")
    rb = ctx.rulebook(str(attrs["rulebook_id"])) if attrs.get("rulebook_id") else _first_rb(ctx)
    list_id = attrs.get("list_id")
    about = record_conduct(record, ctx) if record is not None else None
    rec_ref = f"record #{record.origin_id}" if record is not None else "your file"
    legal: list[str] = []
    if record is not None:
        legal.append(f"the record: {' '.join(record.legal_basis.split())}")
    if rb is not None and list_id:
        try:
            lst = rb.get_list(str(list_id))
            legal.append(f"{rb.ref} list {lst.id}: {' '.join(lst.legal_basis.split())}")
        except KeyError:
            pass
    if rb is not None:
        legal.append(
            f"{rb.ref} procedure ({rb.procedure.calendar} calendar): "
            + (
                ", ".join(f"{k} {dur(v)}" for k, v in sorted(rb.procedure.deadlines.items()))
                or "no deadlines set"
            )
        )
    cons: list[str] = []
    how: list[dict[str, Any]] = [
        {
            "action": f"follow {case} and read your file",
            "api": API_FILE,
            "cli": CLI_FILE.format(subject=subject),
            "by": None,
        }
    ]
    dl: dict[str, Any] = {"date": deadline, "meaning": ""}
    if action == "case-opened":
        title = f"Your {case_type} ({case}) was opened about {rec_ref}"
        what = f"On {when} {case} was opened about {about or rec_ref}" + (
            f". Grounds given: {reason}" if reason else ""
        )
        if case_type == "objection":
            furnisher = by if record is None else ctx.authority(record.authority_id)
            cons.append(
                f"{rec_ref} is marked disputed; if {furnisher} does not confirm or correct it by "
                f"{deadline or 'the deadline'}, it is suspended from evaluation until answered"
            )
        else:
            cons.append(f"{case} will be decided by {deadline or 'the procedure deadline'}")
        dl["meaning"] = "the day by which the case must be answered or decided"
    elif action == "case-answered" and case_type != "objection":
        title = f"{case.capitalize()} was answered by {by}"
        what = (
            f"On {when} {by} answered {case} about {about or rec_ref}"
            + (f": {outcome}" if outcome else "")
            + (f". {reason}" if reason else "")
        )
        cons.append(f"the answer is {outcome or 'recorded'}; the case continues until decided")
        dl["meaning"] = "the day by which the case must be decided"
    elif action in ("case-decided", "case-answered"):
        # an objection ends with the furnisher's answer: confirmed, corrected or retracted
        verb = "answered" if action == "case-answered" else "decided"
        title = f"{case.capitalize()} was {verb}: {outcome or 'see the decision'}"
        what = (
            f"On {when} {by} {verb} {case} about {about or rec_ref}"
            + (f": outcome {outcome}" if outcome else "")
            + (f". Reasons: {reason}" if reason else "")
        )
        if record is not None:
            state = record.state + (", suspended" if record.suspended else "")
            cons.append(f"{rec_ref} is now {state}" + (", disputed" if record.disputed else ""))
        if attrs.get("late"):
            cons.append(
                f"the {'answer' if verb == 'answered' else 'decision'} came after the "
                f"deadline {deadline}: it is flagged late"
            )
        cons += _current_summary_for(record, ctx)
        deadline = None  # the case's own deadline has passed its use: what is left is review
        dl["date"] = None
        if rb is not None:
            raw = rb.procedure.deadlines.get("reconsideration_application")
            d = dur(raw) if raw is not None else None
            if d is not None and d.is_calendar:
                deadline = add(e["recorded_at"].date(), d).isoformat()
                dl["date"] = deadline
        dl["meaning"] = (
            f"ask for reconsideration by this day if you disagree ({rb.ref if rb else ''} "
            "procedure 'reconsideration_application')"
            if deadline
            else "no further step is due in this registry; you may object again with new "
            "evidence, and a court remains open to you"
        )
        how.append(
            {
                "action": "if you disagree, object again with new evidence"
                + (" or ask for reconsideration" if deadline else ""),
                "api": API_OBJECT,
                "cli": None,
                "by": deadline,
            }
        )
    elif action == "case-extended":
        title = f"The deadline of {case} was extended to {deadline}"
        what = f"On {when} {by} extended {case} about {about or rec_ref}" + (
            f". Reason: {reason}" if reason else ""
        )
        cons.append(f"{case} must now be decided by {deadline}")
        dl["meaning"] = "the new deadline for the decision"
    elif action == "deadline-missed":
        title = f"The deadline of {case} was missed ({deadline})"
        what = (
            f"{case.capitalize()} about {about or rec_ref} was not answered by its deadline {deadline}"
            + (f". {reason}" if reason else "")
        )
        cons.append(
            f"{rec_ref} is suspended from evaluation until the authority answers"
            if case_type == "objection"
            else "the late decision is flagged to auditors"
        )
        cons += _current_summary_for(record, ctx)
        dl["meaning"] = "the deadline that was missed"
    elif action == "review-proposed":
        title = f"A listing{f' on {list_id}' if list_id else ''} was proposed about you and waits for human review"
        what = (
            f"On {when} a listing{f' on {list_id}' if list_id else ''} based on {about or rec_ref} was proposed ({case}); an officer must review it before it takes effect"
            + (f". {reason}" if reason else "")
        )
        if rb is not None and list_id:
            for mid, memo, _basis in _list_measures(rb, str(list_id)):
                cons.append(f"if confirmed: measure {ctx.measure_title(mid)} (memorandum {memo})")
        cons.append("nothing changes until a reviewer confirms the listing")
        dl["meaning"] = (
            "the day by which the review must be done; object before it if the record is wrong"
        )
        if record is not None:
            how.append(
                {
                    "action": f"object to record #{record.record_id} before the review",
                    "api": API_OBJECT,
                    "cli": None,
                    "by": deadline,
                }
            )
    elif action == "review-confirmed":
        title = f"A reviewer confirmed the listing{f' on {list_id}' if list_id else ''} ({case})"
        what = f"On {when} {case} confirmed the proposed listing based on {about or rec_ref}" + (
            f". Reasons: {reason}" if reason else ""
        )
        cons += _current_summary_for(record, ctx)
        dl["meaning"] = (
            "object or ask for reconsideration by this day" if deadline else "see how to respond"
        )
    elif action == "review-halted":
        title = f"An officer halted the listing{f' on {list_id}' if list_id else ''} ({case})"
        what = f"On {when} an officer halted the automated listing based on {about or rec_ref}" + (
            f". Reasons: {reason}" if reason else ""
        )
        cons.append("the listing does not take effect while halted")
        dl["meaning"] = "nothing to do" if not deadline else "the halt is reviewed by this day"
    else:  # review-lifted
        title = f"The halt on the listing{f' on {list_id}' if list_id else ''} was lifted ({case})"
        what = (
            f"On {when} an officer lifted the halt on the listing based on {about or rec_ref}"
            + (f". Reasons: {reason}" if reason else "")
        )
        cons += _current_summary_for(record, ctx)
        dl["meaning"] = (
            "object by this day if the listing is wrong" if deadline else "see how to respond"
        )
    if actor and actor not in ("system", "subject", e["authority_id"]):
        legal.append(f"acting: {actor} for {by}")
    body = {
        "conduct": what,
        "legal_basis": _dedupe(legal) or ["the registry's due-process procedure"],
        "consequences": cons,
        "deadline": dl,
        "how_to_respond": how,
        "links": {
            "entry": e["seq"],
            "case": case_id,
            "case_type": case_type,
            "record": record.origin_id if record is not None else None,
            "rulebook": rb.ref if rb is not None else None,
            "list": list_id,
        },
    }
    return _finish(
        NoticeDraft(
            "subject", subject, subject, kind, f"entry:{e['seq']}:{kind}", title, body, e["seq"]
        )
    )


def _current_summary_for(record: RecordView | None, ctx: Context) -> list[str]:
    views = ctx.current.get(record.subject) if record is not None else None
    if record is None or views is None:
        return []
    return _current_summary(views, record.subject, ctx)


# ---------------------------------------------------------------------- status events


def _load_status(text: str) -> dict[str, Any]:
    d: dict[str, Any] = orjson.loads(text)
    return d


def status_notices(
    row: Mapping[str, Any],
    prev: Mapping[str, Any] | None,
    views: Sequence[RecordView],
    ctx: Context,
    rb: Rulebook | None,
) -> list[NoticeDraft]:
    """Notices for one status-history row compared with the previous one (same subject, rulebook)."""
    new = _load_status(row["status"])
    old = _load_status(prev["status"]) if prev is not None else {}
    subject = row["subject"]
    ref = row["rulebook_ref"]
    by_id = {v.record_id: v for v in views}
    by_id.update({v.origin_id: v for v in views})
    out: list[NoticeDraft] = []

    def conduct_of(basis: Iterable[int]) -> str:
        parts = []
        for b in basis:
            v = by_id.get(int(b))
            parts.append(record_conduct(v, ctx) if v is not None else f"record #{b}")
        return "; ".join(parts) or "records on your file"

    def list_info(list_id: str) -> tuple[str, str, list[tuple[str, str, str]]]:
        if rb is None:
            return list_id, "", []
        try:
            lst = rb.get_list(list_id)
        except KeyError:
            return list_id, "", []
        return lst.title, " ".join(lst.legal_basis.split()), _list_measures(rb, list_id)

    old_pending = {(p["list"], p["effective"]) for p in old.get("pending", [])}
    for p in new.get("pending", []):
        if (p["list"], p["effective"]) in old_pending:
            continue
        title_l, basis_l, measures = list_info(p["list"])
        effective = p["effective"]
        avoid: list[str] = []
        if rb is not None:
            try:
                lst = rb.get_list(p["list"])
                from socialcredit.engine.explain import removal_text

                recs = [
                    {
                        "id": b,
                        "kind": by_id[b].kind if b in by_id else None,
                        "attributes": by_id[b].attributes if b in by_id else {},
                    }
                    for b in p["basis"]
                ]
                avoid = [f"{removal_text(rm, lst, recs)} (removal '{rm.id}')" for rm in lst.removal]
            except Exception:
                log.debug("removal text", exc_info=True)
        cons = [
            f"from {effective} you will be listed on '{title_l}' ({p['list']}) under {ref} "
            f"(entry rule {p['rule']})"
        ]
        cons += [
            f"from {effective} measure {ctx.measure_title(mid)} would apply (memorandum {memo})"
            for mid, memo, _b in measures
        ]
        if avoid:
            cons.append(
                "the listing never takes effect if, before " + effective + ": " + " or ".join(avoid)
            )
        how: list[dict[str, Any]] = []
        if avoid:
            how.append(
                {
                    "action": "fulfil the obligation: " + " or ".join(avoid),
                    "api": None,
                    "cli": None,
                    "by": effective,
                }
            )
        for b in p["basis"]:
            how.append(
                {
                    "action": f"object to record #{b} if it is wrong (an objection can suspend it)",
                    "api": API_OBJECT + f' {{"record": {b}, "grounds": "..."}}',
                    "cli": None,
                    "by": effective,
                }
            )
        how.append(
            {
                "action": "read the explanation of your status",
                "api": API_FILE,
                "cli": CLI_FILE.format(subject=subject),
                "by": None,
            }
        )
        legal = [f"{ref} list {p['list']}: {basis_l}"] if basis_l else []
        legal += [f"{ref} memorandum {memo}: {b}" for _m, memo, b in measures]
        legal += [
            f"the record #{b}: {' '.join(by_id[b].legal_basis.split())}"
            for b in p["basis"]
            if b in by_id
        ]
        body = {
            "conduct": f"Because of {conduct_of(p['basis'])}, {ref} lists you on '{title_l}' "
            f"after a grace period: the listing takes effect on {effective}.",
            "legal_basis": _dedupe(legal),
            "consequences": cons,
            "deadline": {
                "date": effective,
                "meaning": "the grace period ends and the listing takes effect on this day unless "
                "the obligation is fulfilled or the record is successfully contested before it",
            },
            "how_to_respond": how,
            "links": {
                "status_history": row["id"],
                "rulebook": ref,
                "list": p["list"],
                "rule": p["rule"],
                "records": list(p["basis"]),
                "grace_end": effective,
            },
        }
        out.append(
            _finish(
                NoticeDraft(
                    "subject",
                    subject,
                    subject,
                    "intent-to-list",
                    f"status:{row['id']}:intent-to-list:{p['list']}:{effective}",
                    f"Notice of intent to list you on '{title_l}' from {effective}",
                    body,
                )
            )
        )

    new_pending_lists = {p["list"] for p in new.get("pending", [])}
    listed_now = {m["list"] for m in new.get("memberships", [])}
    listed_now |= {w["list"] for w in new.get("review", [])}
    for p in old.get("pending", []):
        if p["list"] in new_pending_lists or p["list"] in listed_now:
            continue  # rescheduled (a new intent notice says when) or in effect (listed)
        title_l, basis_l, _measures = list_info(p["list"])
        why = _why_removed(
            {"basis": p.get("basis", [])},
            by_id,
            row["from_date"],
            "a removal trigger of the list was recorded during the grace period",
        )
        body = {
            "conduct": f"The listing on '{title_l}' under {ref} that was to take effect on "
            f"{p['effective']} (records {', '.join(f'#{b}' for b in p.get('basis', []))}) will "
            f"not happen: {why}.",
            "legal_basis": [f"{ref} list {p['list']}: {basis_l}"] if basis_l else [ref],
            "consequences": [
                f"you will not be listed on '{title_l}' ({p['list']}) on {p['effective']}; "
                "no measure of that listing applies"
            ],
            "deadline": {"date": None, "meaning": "nothing to do"},
            "how_to_respond": [
                {
                    "action": "read your file to see your status now",
                    "api": API_FILE,
                    "cli": CLI_FILE.format(subject=subject),
                    "by": None,
                }
            ],
            "links": {
                "status_history": row["id"],
                "rulebook": ref,
                "list": p["list"],
                "records": list(p.get("basis", [])),
                "was_to_take_effect": p["effective"],
            },
        }
        out.append(
            _finish(
                NoticeDraft(
                    "subject",
                    subject,
                    subject,
                    "intent-withdrawn",
                    f"status:{row['id']}:intent-withdrawn:{p['list']}:{p['effective']}",
                    f"The intended listing on '{title_l}' from {p['effective']} will not happen",
                    body,
                )
            )
        )

    old_m = {m["list"]: m for m in old.get("memberships", [])}
    new_m = {m["list"]: m for m in new.get("memberships", [])}
    measures_now = new.get("measures", [])
    for list_id, m in new_m.items():
        if list_id in old_m:
            continue
        title_l, basis_l, measures = list_info(list_id)
        in_force = sorted({x["measure"] for x in measures_now if x["via"] == f"list:{list_id}"})
        cons = [
            f"you are listed on '{title_l}' ({list_id}) under {ref} since {m['since']}"
            + (
                f", until {m['until']}"
                if m.get("until")
                else ", with no fixed end (until a removal trigger)"
            )
        ]
        cons += [f"measure {ctx.measure_title(x)} applies" for x in in_force]
        how = []
        if m.get("repair_from"):
            how.append(
                {
                    "action": f"apply for credit repair (possible from {m['repair_from']})",
                    "api": API_REPAIR
                    + f' {{"rulebook": "{row["rulebook_id"]}", "list": "{list_id}", '
                    '"statement": "..."} (check first: GET /v1/me/repairs/eligibility)',
                    "cli": None,
                    "by": None,
                }
            )
        for b in m.get("basis", []):
            how.append(
                {
                    "action": f"object to record #{b} if it is wrong",
                    "api": API_OBJECT + f' {{"record": {b}, "grounds": "..."}}',
                    "cli": None,
                    "by": None,
                }
            )
        how.append(
            {
                "action": "read the explanation of your listing",
                "api": API_FILE,
                "cli": CLI_FILE.format(subject=subject),
                "by": None,
            }
        )
        deadline_day, why = ctx.objection_deadline(rb, ctx.today)
        legal = [f"{ref} list {list_id}: {basis_l}"] if basis_l else []
        legal += [f"{ref} memorandum {memo}: {b}" for _m, memo, b in measures]
        body = {
            "conduct": f"Because of {conduct_of(m.get('basis', []))}, you are listed on "
            f"'{title_l}' under {ref} (rules {', '.join(m.get('rules', [])) or 'via other lists'}).",
            "legal_basis": _dedupe(legal),
            "consequences": cons,
            "deadline": {
                "date": deadline_day.isoformat(),
                "meaning": f"object by this day ({why})"
                + (f"; repair possible from {m['repair_from']}" if m.get("repair_from") else ""),
            },
            "how_to_respond": how,
            "links": {
                "status_history": row["id"],
                "rulebook": ref,
                "list": list_id,
                "records": list(m.get("basis", [])),
            },
        }
        out.append(
            _finish(
                NoticeDraft(
                    "subject",
                    subject,
                    subject,
                    "listed",
                    f"status:{row['id']}:listed:{list_id}",
                    f"You are listed on '{title_l}' since {m['since']}",
                    body,
                )
            )
        )
    for list_id, m in old_m.items():
        if list_id in new_m:
            continue
        title_l, basis_l, measures = list_info(list_id)
        ended = sorted(
            {x["measure"] for x in old.get("measures", []) if x["via"] == f"list:{list_id}"}
            - {x["measure"] for x in measures_now}
        )
        why_ended = _why_removed(m, by_id, row["from_date"])
        cons = [f"you are no longer on '{title_l}' ({list_id}) under {ref}"]
        cons += [f"measure {ctx.measure_title(x)} no longer applies" for x in ended]
        procedure = rb.procedure.deadlines.get("display_stop_after_removal") if rb else None
        shown = (
            f"; public display must stop within {dur(procedure).describe()}"  # type: ignore[union-attr]
            if procedure is not None and dur(procedure) is not None
            else ""
        )
        body = {
            "conduct": f"Your listing on '{title_l}' (since {m['since']}, records "
            f"{', '.join(f'#{b}' for b in m.get('basis', []))}) ended on "
            f"{_iso(row['from_date'])}: {why_ended}.",
            "legal_basis": [f"{ref} list {list_id}: {basis_l}"] if basis_l else [ref],
            "consequences": cons,
            "deadline": {
                "date": None,
                "meaning": "nothing to do" + shown,
            },
            "how_to_respond": [
                {
                    "action": "if a relying party still applies a measure, show them this notice "
                    "and read your file",
                    "api": API_FILE,
                    "cli": CLI_FILE.format(subject=subject),
                    "by": None,
                }
            ],
            "links": {
                "status_history": row["id"],
                "rulebook": ref,
                "list": list_id,
                "records": list(m.get("basis", [])),
            },
        }
        out.append(
            _finish(
                NoticeDraft(
                    "subject",
                    subject,
                    subject,
                    "removed",
                    f"status:{row['id']}:removed:{list_id}",
                    f"You were removed from '{title_l}'",
                    body,
                )
            )
        )
    return out


def _why_removed(
    m: Mapping[str, Any],
    by_id: Mapping[int, RecordView],
    day: Any,
    fallback: str = "a removal trigger or the end of the term",
) -> str:
    reasons = []
    for b in m.get("basis", []):
        v = by_id.get(int(b))
        if v is None:
            continue
        if v.state != "active":
            reasons.append(f"record #{b} was {v.state}")
        elif v.suspended:
            reasons.append(f"record #{b} is suspended")
    if not reasons and m.get("until") and str(m["until"]) <= str(_iso(day) if day else ""):
        reasons.append(f"the term ended on {m['until']}")
    return _human_list(reasons) or fallback


# ---------------------------------------------------------------------- the notifier


def _wm(conn: sa.Connection, name: str) -> int:
    v = conn.execute(
        sa.select(notice_watermarks.c.position).where(notice_watermarks.c.name == name)
    ).scalar()
    return int(v or 0)


class Notifier:
    """Tails the ledger and the status history and writes notices, exactly once each."""

    def __init__(
        self,
        ledger: Ledger,
        rulebooks: Callable[[], Sequence[Rulebook]] | Sequence[Rulebook] | None = None,
        *,
        clock: Clock | None = None,
        batch: int = BATCH,
    ):
        self.ledger = ledger
        self.engine = ledger.engine
        self.clock = clock or ledger.clock
        self.batch = batch
        if rulebooks is None:
            from socialcredit.status.service import StatusService

            svc = StatusService(ledger)
            self._rulebooks: Callable[[], Sequence[Rulebook]] = lambda: svc.rulebooks
        elif callable(rulebooks):
            self._rulebooks = rulebooks
        else:
            fixed = list(rulebooks)
            self._rulebooks = lambda: fixed
        #: a test hook: called between computing a batch and writing it
        self.before_write: Callable[[str], None] | None = None

    def context(self) -> Context:
        names = {a.authority_id: a.name for a in self.ledger.authorities()}
        return Context(self.ledger.catalogue, names, self._rulebooks(), self.clock.now().date())

    def watermarks(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {s: _wm(conn, s) for s in (LEDGER_STREAM, STATUS_STREAM)}

    def run(self, *, max_batches: int | None = None) -> NotifierReport:
        """Catch up with both streams. Returns the watermarks and what was written."""
        n_notices = n_deliveries = 0
        batches = 0
        for stream in (LEDGER_STREAM, STATUS_STREAM):
            while max_batches is None or batches < max_batches:
                got = self._step(stream)
                if got is None:
                    continue  # another notifier moved the watermark: read again
                batches += 1
                done, k, d = got
                n_notices += k
                n_deliveries += d
                if done:
                    break
        wms = self.watermarks()
        return NotifierReport(wms[LEDGER_STREAM], wms[STATUS_STREAM], n_notices, n_deliveries)

    def _step(self, stream: str) -> tuple[bool, int, int] | None:
        """One batch. (caught up?, notices, deliveries) or None if the watermark moved under us."""
        with self.engine.connect() as conn:
            wm = _wm(conn, stream)
            if stream == LEDGER_STREAM:
                new_wm, drafts = self._ledger_batch(conn, wm)
            else:
                new_wm, drafts = self._status_batch(conn, wm)
        if new_wm == wm:
            return True, 0, 0
        if self.before_write is not None:
            self.before_write(stream)
        wrote = self._write(stream, wm, new_wm, drafts)
        if wrote is None:
            return None
        return False, wrote[0], wrote[1]

    # -------------------------------------------------------------- reading the streams

    def _ledger_batch(self, conn: sa.Connection, wm: int) -> tuple[int, list[NoticeDraft]]:
        raw = (
            conn.execute(
                sa.select(entries)
                .where(entries.c.seq > wm)
                .order_by(entries.c.seq)
                .limit(self.batch)
            )
            .mappings()
            .all()
        )
        rows = [dict(r) for r in raw]
        if not rows:
            return wm, []
        last = int(rows[-1]["seq"])
        wanted = [
            r
            for r in rows
            if r["subject_key"] and (r["op"] in RECORD_EVENTS or r["op"] == "action")
        ]
        if not wanted:
            return last, []
        ctx = self.context()
        by_subject = subject_entries(conn, {r["subject_key"] for r in wanted}, upto=last)
        interesting = {r["seq"] for r in wanted}
        drafts: list[NoticeDraft] = []
        from socialcredit.cases.propagation import affected_parties, party_notice

        for subject, es in by_subject.items():
            views: dict[int, RecordView] = {}
            # the final views, for summaries "as things stand" (read-only)
            final: dict[int, RecordView] = {}
            for e in es:
                apply_entry(final, e)
            ctx.current[subject] = list(final.values())
            acts = ctx.actions[subject] = []
            for e in es:
                if e["op"] == "action":
                    acts.append(e)
                before = None
                if e["seq"] in interesting and e["op"] in RECORD_EVENTS and e["op"] != "furnish":
                    old = views.get(e["origin_seq"])
                    before = _copy(old) if old is not None else None
                apply_entry(views, e)
                if e["seq"] not in interesting:
                    continue
                if e["op"] == "action":
                    attrs = _attrs(e)
                    origin = e["origin_seq"]
                    rec = views.get(origin) if origin is not None else None
                    d = action_notice(e, attrs, rec, ctx)
                    if d is not None:
                        drafts.append(d)
                    continue
                origin = e["seq"] if e["op"] == "furnish" else e["origin_seq"]
                after = views.get(origin)
                if after is None:
                    continue
                snapshot = list(views.values())
                parties: list[dict[str, Any]] = []
                if e["op"] in PROPAGATING_OPS and before is not None:
                    parties = affected_parties(conn, e, before, after)
                    for p in parties:
                        drafts.append(party_notice(e, before, after, p, ctx))
                drafts.append(record_notice(e, before, after, snapshot, ctx, parties))
        return last, drafts

    def _status_batch(self, conn: sa.Connection, wm: int) -> tuple[int, list[NoticeDraft]]:
        raw = (
            conn.execute(
                sa.select(status_history)
                .where(status_history.c.id > wm)
                .order_by(status_history.c.id)
                .limit(self.batch)
            )
            .mappings()
            .all()
        )
        rows = [dict(r) for r in raw]
        if not rows:
            return wm, []
        ctx = self.context()
        subjects = sorted({r["subject"] for r in rows})
        first = int(rows[0]["id"])
        top = max(int(r["ledger_seq"]) for r in rows)
        # the row before the batch for each (subject, rulebook); later ones come from the batch
        last: dict[tuple[str, str], dict[str, Any]] = {}
        by_subject: dict[str, list[Mapping[Any, Any]]] = {s: [] for s in subjects}
        for i in range(0, len(subjects), 500):
            chunk = subjects[i : i + 500]
            latest = (
                sa.select(sa.func.max(status_history.c.id))
                .where(status_history.c.subject.in_(chunk), status_history.c.id < first)
                .group_by(status_history.c.subject, status_history.c.rulebook_id)
                .scalar_subquery()
            )
            for r in conn.execute(
                sa.select(status_history).where(status_history.c.id.in_(latest))
            ).mappings():
                last[(r["subject"], r["rulebook_id"])] = dict(r)
            for s, es in subject_entries(conn, chunk, upto=top).items():
                by_subject[s].extend(es)
        views: dict[str, dict[int, RecordView]] = {s: {} for s in subjects}
        cursor: dict[str, int] = dict.fromkeys(subjects, 0)
        drafts: list[NoticeDraft] = []
        for row in rows:
            s = row["subject"]
            es = by_subject[s]
            while cursor[s] < len(es) and es[cursor[s]]["seq"] <= row["ledger_seq"]:
                ev = es[cursor[s]]
                if ev["op"] == "action":
                    ctx.actions.setdefault(s, []).append(ev)
                else:
                    apply_entry(views[s], ev)
                cursor[s] += 1
            prev = last.get((s, row["rulebook_id"]))
            rb = ctx.rulebook(row["rulebook_id"])
            drafts += status_notices(row, prev, list(views[s].values()), ctx, rb)
            last[(s, row["rulebook_id"])] = row
        return int(rows[-1]["id"]), drafts

    # -------------------------------------------------------------- writing

    def _write(
        self, stream: str, expect: int, new: int, drafts: Sequence[NoticeDraft]
    ) -> tuple[int, int] | None:
        now = naive_utc(self.clock.now())
        # one notice per event: a batch can draft the same event twice (two records behind one
        # listing); the first draft stands, as a later batch's would be skipped by the key
        unique: dict[str, NoticeDraft] = {}
        for d in drafts:
            unique.setdefault(d.dedupe_key, d)
        drafts = list(unique.values())
        with locked_transaction(self.engine, NOTICE_LOCK_KEY) as conn:
            if _wm(conn, stream) != expect:
                return None
            n_del = 0
            contacts = _contacts(conn, drafts)
            if drafts:
                conn.execute(
                    notices.insert(),
                    [
                        {
                            "recipient_kind": d.recipient_kind,
                            "recipient": d.recipient,
                            "subject": d.subject,
                            "kind": d.kind,
                            "dedupe_key": d.dedupe_key,
                            "source_seq": d.source_seq,
                            "created_at": now,
                            "title": d.title,
                            "body": json.dumps(d.body, ensure_ascii=False, default=str),
                        }
                        for d in drafts
                    ],
                )
            told = [d for d in drafts if contacts.get((d.recipient_kind, d.recipient))]
            ids_of: dict[str, int] = {}
            for i in range(0, len(told), 500):
                keys = [d.dedupe_key for d in told[i : i + 500]]
                for nid, key in conn.execute(
                    sa.select(notices.c.notice_id, notices.c.dedupe_key).where(
                        notices.c.dedupe_key.in_(keys)
                    )
                ):
                    ids_of[key] = int(nid)
            rows = [
                {
                    "notice_id": ids_of[d.dedupe_key],
                    "channel": ch,
                    "target": tgt,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for d in told
                for ch, tgt in contacts[(d.recipient_kind, d.recipient)]
            ]
            if rows:
                conn.execute(notice_deliveries.insert(), rows)
            n_del = len(rows)
            updated = conn.execute(
                notice_watermarks.update()
                .where(notice_watermarks.c.name == stream)
                .values(position=new)
            ).rowcount
            if not updated:
                conn.execute(notice_watermarks.insert().values(name=stream, position=new))
            return len(drafts), n_del


def baseline(engine: sa.Engine) -> dict[str, int]:
    """Start both notifier streams at their heads: nothing already in the ledger or the status
    history is noticed (for a registry that existed before notices, or a demo with years of
    decided history). Returns the new watermarks."""
    with locked_transaction(engine, NOTICE_LOCK_KEY) as conn:
        heads = {
            LEDGER_STREAM: newest_seq(conn),
            STATUS_STREAM: int(
                conn.execute(sa.select(sa.func.max(status_history.c.id))).scalar() or 0
            ),
        }
        for name, position in heads.items():
            n = conn.execute(
                notice_watermarks.update()
                .where(notice_watermarks.c.name == name)
                .values(position=position)
            ).rowcount
            if not n:
                conn.execute(notice_watermarks.insert().values(name=name, position=position))
    return heads


def _copy(v: RecordView) -> RecordView:
    import copy

    return copy.deepcopy(v)


def _attrs(e: Mapping[str, Any]) -> dict[str, Any]:
    try:
        d = json.loads(e["attributes"]) if e["attributes"] else {}
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def _contacts(
    conn: sa.Connection, drafts: Sequence[NoticeDraft]
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(recipient kind, recipient) → [(channel, target)] for the recipients of ``drafts``."""
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    subjects = sorted({d.recipient for d in drafts if d.recipient_kind == "subject"})
    parties = sorted({d.recipient for d in drafts if d.recipient_kind == "party"})
    for i in range(0, len(subjects), 500):
        for r in conn.execute(
            sa.select(notice_contacts).where(notice_contacts.c.subject.in_(subjects[i : i + 500]))
        ).mappings():
            t = out.setdefault(("subject", r["subject"]), [])
            if r["email"]:
                t.append(("email", r["email"]))
            if r["webhook_url"]:
                t.append(("webhook", r["webhook_url"]))
    for i in range(0, len(parties), 500):
        for r in conn.execute(
            sa.select(party_webhooks).where(party_webhooks.c.party_id.in_(parties[i : i + 500]))
        ).mappings():
            t = out.setdefault(("party", r["party_id"]), [])
            if r["email"]:
                t.append(("email", r["email"]))
            if r["url"]:
                t.append(("webhook", r["url"]))
    return out


# ---------------------------------------------------------------------- reading notices


def _notice_dict(r: Mapping[str, Any], deliveries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "notice_id": int(r["notice_id"]),
        "recipient_kind": r["recipient_kind"],
        "recipient": r["recipient"],
        "subject": r["subject"],
        "kind": r["kind"],
        "created_at": r["created_at"].isoformat(timespec="microseconds") + "Z",
        "title": r["title"],
        "body": json.loads(r["body"]),
        "deliveries": [delivery_dict(d) for d in deliveries],
    }


def delivery_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    def stamp(t: dt.datetime | None) -> str | None:
        return None if t is None else t.isoformat(timespec="microseconds") + "Z"

    return {
        "delivery_id": int(d["delivery_id"]),
        "notice_id": int(d["notice_id"]),
        "channel": d["channel"],
        "target": d["target"],
        "state": d["state"],
        "attempts": int(d["attempts"]),
        "next_attempt_at": stamp(d["next_attempt_at"])
        if d["state"] in ("pending", "failed")
        else None,
        "last_error": d["last_error"],
        "sent_at": stamp(d["sent_at"]),
    }


def list_notices(
    engine: sa.Engine,
    *,
    subject: str | None = None,
    party: str | None = None,
    about: str | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Notices, newest first: a subject's inbox (``subject``), a party's (``party``), or all
    notices about a subject to anyone (``about``), with their deliveries."""
    q = sa.select(notices)
    if subject is not None:
        q = q.where(notices.c.recipient_kind == "subject", notices.c.recipient == subject)
    if party is not None:
        q = q.where(notices.c.recipient_kind == "party", notices.c.recipient == party)
    if about is not None:
        q = q.where(notices.c.subject == about)
    if kind is not None:
        q = q.where(notices.c.kind == kind)
    if before is not None:
        q = q.where(notices.c.notice_id < before)
    q = q.order_by(notices.c.notice_id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
        ids_ = [r["notice_id"] for r in rows]
        dels: dict[int, list[Mapping[str, Any]]] = {}
        if ids_:
            for d in conn.execute(
                sa.select(notice_deliveries)
                .where(notice_deliveries.c.notice_id.in_(ids_))
                .order_by(notice_deliveries.c.delivery_id)
            ).mappings():
                dels.setdefault(int(d["notice_id"]), []).append(dict(d))
    return [_notice_dict(dict(r), dels.get(int(r["notice_id"]), [])) for r in rows]


def get_notice(engine: sa.Engine, notice_id: int) -> dict[str, Any]:
    from socialcredit.errors import NotFoundError

    with engine.connect() as conn:
        r = (
            conn.execute(sa.select(notices).where(notices.c.notice_id == notice_id))
            .mappings()
            .first()
        )
        if r is None:
            raise NotFoundError(f"no notice {notice_id}")
        dels = (
            conn.execute(
                sa.select(notice_deliveries)
                .where(notice_deliveries.c.notice_id == notice_id)
                .order_by(notice_deliveries.c.delivery_id)
            )
            .mappings()
            .all()
        )
    return _notice_dict(dict(r), [dict(d) for d in dels])


# ---------------------------------------------------------------------- the service


class NoticeService:
    """Notifier + delivery pump for a running API (``Runtime.tick`` calls :meth:`tick`).

    The notifier runs in the caller's thread; the pump (network I/O) runs in a background thread
    so a slow SMTP server or webhook never delays status catch-up.
    """

    def __init__(
        self,
        ledger: Ledger,
        rulebooks: Callable[[], Sequence[Rulebook]] | Sequence[Rulebook] | None = None,
        settings: Any = None,
    ):
        from socialcredit.cases.delivery import DeliverySettings

        self.ledger = ledger
        self.notifier = Notifier(ledger, rulebooks)
        self.settings = settings or DeliverySettings.from_env()
        self.last_error: str | None = None
        self.batches_per_tick = 25
        self._pump_thread: Any = None
        self._idle_heads: tuple[int, int] | None = None

    def _heads(self) -> tuple[int, int]:
        """The newest ledger entry and status-history row (both streams the notifier tails)."""
        q = sa.select(
            sa.select(sa.func.max(entries.c.seq)).scalar_subquery(),
            sa.select(sa.func.max(status_history.c.id)).scalar_subquery(),
        )
        with self.ledger.engine.connect() as conn:
            a, b = conn.execute(q).one()
        return int(a or 0), int(b or 0)

    def run_notifier(self) -> NotifierReport:
        return self.notifier.run()

    def pump(self) -> Any:
        from socialcredit.cases.delivery import pump

        return pump(self.ledger.engine, self.ledger.clock, self.settings)

    def _round(self) -> None:
        # Nothing appended to either stream since a run that caught up: nothing to notice (the
        # notices depend only on new rows), so skip the notifier's queries.
        heads = self._heads()
        if heads != self._idle_heads:
            # a bounded share per tick: a large import is noticed over several ticks and never
            # holds up the API's maintenance loop for long
            rep = self.notifier.run(max_batches=self.batches_per_tick)
            caught_up = rep.ledger_watermark >= heads[0] and rep.status_watermark >= heads[1]
            self._idle_heads = heads if caught_up else None

    def tick(self, *, wait: bool = False) -> None:
        """Write the notices due, then send deliveries (in the background unless ``wait``)."""
        import threading

        try:
            # Every server worker ticks; one round at a time does the work (the others would
            # render the same notices, to find them written: the watermarks keep each once).
            with sole_round(self.ledger.engine, "notices", NOTIFIER_ROUND_KEY) as mine:
                if mine:
                    self._round()
            self.last_error = None
        except Exception as e:  # keep the API running; readiness and logs tell
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("notifier")
        if wait:
            self._pump_safely()
            return
        t = self._pump_thread
        if t is None or not t.is_alive():
            self._pump_thread = threading.Thread(
                target=self._pump_safely, name="notice-pump", daemon=True
            )
            self._pump_thread.start()

    def _pump_safely(self) -> None:
        try:
            self.pump()
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"
            log.exception("notice pump")

    def close(self, timeout: float = 10.0) -> None:
        t = self._pump_thread
        if t is not None:
            t.join(timeout)
