"""Explanations: why a subject has the status it has, and what would change it (charter art. 5).

``explain(status, rulebook, records, catalogue)`` turns a :class:`~socialcredit.engine.reference.
Status` into a JSON-able dict that names, for every outcome, the records (by id, with kind, decision
number, date and authority where known), the rules (by id), the legal basis and the dates on which
it ends or can be ended; ``render(explanation)`` turns that dict into lines for people. Nothing is
ever explained by a generic reason: every sentence carries record ids and rule ids.

The next change of a scheme is computed, not guessed: the reference evaluator is run again as of
that day over the same records (no record decided after the as-of day is read), so the points and
grade shown for that day are what the subject will have if nothing new is recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from socialcredit.catalog import Catalogue, load_catalogue
from socialcredit.engine.records import Rec, canon
from socialcredit.engine.reference import Membership, Pending, SchemeResult, Status, evaluate
from socialcredit.rulebooks.model import (
    EntryRule,
    ListDef,
    Match,
    Removal,
    Rulebook,
    Scheme,
    dur,
    num,
)

__all__ = ["describe_match", "explain", "removal_text", "render"]


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _n(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:g}" if float(x).is_integer() or abs(x) >= 1e6 else f"{x:.2f}".rstrip("0")


def _signed(x: float) -> str:
    return f"+{_n(x)}" if x >= 0 else f"−{_n(-x)}"


# ---------------------------------------------------------------- rules in words


def describe_match(m: Match, *, article: bool = True) -> str:
    """``a court.obligation-performed record with trigger performed`` and the like."""
    kinds = " or ".join(m.kinds)
    out = f"{kinds} record"
    if article:
        out = ("an " if kinds[:1].lower() in "aeio" else "a ") + out
    quals = []
    if m.severity:
        quals.append(f"of severity {' or '.join(m.severity)}")
    for name, values in (m.attributes or {}).items():
        quals.append(f"with {name} {' or '.join(str(canon(v)) for v in values)}")
    lo, hi = num(m.amount_at_least), num(m.amount_below)
    if lo is not None:
        quals.append(f"of at least {_n(lo)} yuan")
    if hi is not None:
        quals.append(f"of less than {_n(hi)} yuan")
    return out + (" " + ", ".join(quals) if quals else "")


def removal_text(rm: Removal, lst: ListDef, entry_records: Sequence[Mapping[str, Any]] = ()) -> str:
    """A removal trigger in words, naming the attribute values it must share with the entry."""
    text = describe_match(rm.when)
    if rm.match_attributes:
        parts = []
        for a in rm.match_attributes:
            values = sorted(
                {
                    str(canon(r.get("attributes", {}).get(a)))
                    for r in entry_records
                    if r.get("attributes", {}).get(a) is not None
                }
            )
            parts.append(f"{a}" + (f" ({', '.join(values)})" if values else ""))
        text += f" for the same {' and '.join(parts)}"
    text += " removes you"
    within = dur(rm.within)
    if within is not None:
        text += (
            f"; the listing authority ({lst.authority}) must take the entry down within "
            f"{within.describe()}"
        )
    return text


def _term_text(e: EntryRule) -> str:
    grace = dur(e.grace)
    start = "from the decision date" + (
        f" plus a grace period of {grace.describe()}" if grace else ""
    )
    length = dur(e.term.length)
    if e.mode == "lists":
        return "while the lists it depends on hold"
    if length is None:
        return f"{start}, with no fixed end: until a removal trigger"
    text = f"for {length.describe()} {start}"
    if e.term.extend_by_attribute:
        text += f", extended by the years in the record's '{e.term.extend_by_attribute}' attribute"
    cap = dur(e.term.max)
    if cap is not None:
        text += f", at most {cap.describe()}"
    return text


def _entry_text(e: EntryRule) -> str:
    if e.when is not None:
        what = f"each {describe_match(e.when, article=False)} lists you"
    elif e.count is not None:
        c = e.count
        within = dur(c.within)
        weights = (
            " (weights: " + ", ".join(f"{k} {_n(num(v))}" for k, v in c.weights.items()) + ")"
            if c.weights
            else ""
        )
        what = (
            f"records like {describe_match(c.when)} weighing together at least "
            f"{_n(num(c.at_least))}{weights} within {within.describe() if within else '?'} list you"
        )
    else:
        assert e.lists is not None
        what = f"being on at least {e.lists.at_least} of the lists {', '.join(e.lists.any_of)} lists you"
    return f"{what}, {_term_text(e)}"


# ---------------------------------------------------------------- records


def _rows(
    records: Sequence[Rec] | Mapping[int, Mapping[str, Any]], status: Status
) -> tuple[dict[int, dict[str, Any]], list[Rec]]:
    rows: dict[int, dict[str, Any]] = {}
    recs: list[Rec] = []
    if isinstance(records, Mapping):
        for rid, row in records.items():
            d = dict(row)
            d.setdefault("record_id", rid)
            d.setdefault("subject", status.subject)
            d.setdefault("subject_kind", status.subject_kind)
            rows[int(rid)] = d
            recs.append(Rec.from_row(d))
    else:
        for r in records:
            recs.append(r)
            rows[r.record_id] = {
                "record_id": r.record_id,
                "subject": r.subject,
                "kind": r.kind,
                "decision_date": r.decision_date.isoformat(),
                "severity": r.severity,
                "amount": None if r.amount_minor is None else r.amount_minor / 100,
                "attributes": dict(r.attributes),
                "in_force": r.in_force,
            }
    return rows, recs


def _record(rid: int, rows: Mapping[int, Mapping[str, Any]], cat: Catalogue) -> dict[str, Any]:
    row = rows.get(rid, {})
    kind = row.get("kind")
    k = cat.record_kinds.get(str(kind)) if kind else None
    date = row.get("decision_date")
    if isinstance(date, dt.date):
        date = date.isoformat()
    amount = row.get("amount")
    if amount is None and row.get("amount_minor") is not None:
        amount = row["amount_minor"] / 100
    return {
        "id": rid,
        "kind": kind,
        "kind_title": k.title if k else kind,
        "decision_no": row.get("decision_no"),
        "decision_date": date,
        "authority": row.get("authority_id") or row.get("authority"),
        "severity": row.get("severity"),
        "amount": amount,
        "attributes": dict(row.get("attributes") or {}),
    }


def record_text(r: Mapping[str, Any]) -> str:
    """``record #3: <kind title> (court.judgment-defaulter), decision (2024) X 1, decided 2024-06-01, by
    court-1, severity serious, amount 1200.50 yuan``."""
    text = f"record #{r['id']}: {r.get('kind_title') or r.get('kind')}"
    if r.get("kind") and r.get("kind_title") != r.get("kind"):
        text += f" ({r['kind']})"
    bits = []
    if r.get("decision_no"):
        bits.append(f"decision {r['decision_no']}")
    if r.get("decision_date"):
        bits.append(f"decided {r['decision_date']}")
    if r.get("authority"):
        bits.append(f"by {r['authority']}")
    if r.get("severity"):
        bits.append(f"severity {r['severity']}")
    if r.get("amount") is not None:
        bits.append(f"amount {float(r['amount']):.2f} yuan")
    return text + "".join(f", {b}" for b in bits)


# ---------------------------------------------------------------- the parts


def _membership(
    m: Membership,
    rb: Rulebook,
    rows: Mapping[int, Mapping[str, Any]],
    recs: Sequence[Rec],
    as_of: dt.date,
    cat: Catalogue,
) -> dict[str, Any]:
    lst = rb.get_list(m.list_id)
    rules = {e.id: e for e in lst.entry}
    records = [_record(rid, rows, cat) for rid in m.basis]
    entry = [
        {
            "id": rid,
            "mode": rules[rid].mode if rid in rules else None,
            "description": rules[rid].description if rid in rules else None,
            "text": _entry_text(rules[rid]) if rid in rules else rid,
        }
        for rid in m.rules
    ]
    changes: list[str] = []
    if m.until is not None:
        changes.append(f"the listing ends on {m.until.isoformat()} (end of the term)")
    else:
        changes.append("the listing has no fixed end: it lasts until a removal trigger")
    if m.via:
        changes.append(f"it holds only while you are on {', '.join(m.via)}")
    removal = []
    for rm in lst.removal:
        text = removal_text(rm, lst, records)
        within = dur(rm.within)
        removal.append({"id": rm.id, "text": text, "within": str(within) if within else None})
        changes.append(f"removal '{rm.id}': {text}")
    repair: dict[str, Any] | None = None
    if lst.repair is not None:
        have = {r.kind for r in recs if r.in_force and r.decision_date <= as_of}
        conds: list[dict[str, Any]] = [
            {
                "kind": k,
                "title": cat.record_kinds[k].title if k in cat.record_kinds else k,
                "on_file": k in have,
            }
            for k in lst.repair.conditions
        ]
        start = m.repair_from
        text = f"you may apply for credit repair from {_iso(start)}"
        if start is not None and start <= as_of:
            text += " (already open)"
        if conds:
            text += " once you have: " + "; ".join(
                f"a {c['title'][:1].lower() + c['title'][1:]} ({c['kind']} record)"
                + (" — on file" if c["on_file"] else " — not yet on file")
                for c in conds
            )
        repair = {
            "from": _iso(start),
            "minimum": str(dur(lst.repair.minimum)),
            "conditions": conds,
            "description": lst.repair.description,
            "text": text,
        }
        changes.append(text)
    return {
        "list": lst.id,
        "title": lst.title,
        "type": lst.type,
        "authority": lst.authority,
        "legal_basis": lst.legal_basis,
        "rulebook": rb.ref,
        "since": m.since.isoformat(),
        "until": _iso(m.until),
        "rules": entry,
        "records": records,
        "via": list(m.via),
        "removal": removal,
        "repair": repair,
        "what_would_change_it": changes,
    }


def _pending(
    p: Pending, rb: Rulebook, rows: Mapping[int, Mapping[str, Any]], cat: Catalogue
) -> dict[str, Any]:
    lst = rb.get_list(p.list_id)
    records = [_record(rid, rows, cat) for rid in p.basis]
    avoid = []
    for rm in lst.removal:
        avoid.append(
            f"removal '{rm.id}': {removal_text(rm, lst, records)} — decided before "
            f"{p.effective.isoformat()}, the listing never takes effect"
        )
    avoid.append(
        f"you may object to record(s) {', '.join(f'#{b}' for b in p.basis)} before "
        f"{p.effective.isoformat()}: an objection can suspend them"
    )
    for name, d in rb.procedure.deadlines.items():
        avoid.append(f"procedure deadline {name}: {dur(d)}")
    return {
        "list": lst.id,
        "title": lst.title,
        "type": lst.type,
        "legal_basis": lst.legal_basis,
        "rule": p.rule,
        "effective": p.effective.isoformat(),
        "records": records,
        "how_to_avoid": avoid,
    }


def _scheme(
    sr: SchemeResult,
    rb: Rulebook,
    rows: Mapping[int, Mapping[str, Any]],
    recs: Sequence[Rec],
    status: Status,
    cat: Catalogue,
) -> dict[str, Any]:
    s: Scheme = rb.get_scheme(sr.scheme_id)
    rules = {r.id: r for r in s.rules}
    base = num(s.base) or 0.0
    out: dict[str, Any] = {
        "scheme": s.id,
        "title": s.title,
        "rulebook": rb.ref,
        "consent": sr.consent,
        "consent_kind": s.consent_kind,
        "incentive_only": s.incentive_only,
        "base": base,
        "min": num(s.min),
        "max": num(s.max),
        "points": sr.points,
        "band": sr.band_grade,
        "grade": sr.grade,
    }
    if not sr.consent:
        out["text"] = (
            f"not scored: scheme {s.id} needs an in-force {s.consent_kind} record (consent), "
            "and there is none"
        )
        out.update(contributions=[], capped=[], limits=[], next_change=None)
        return out
    contributions = [
        {
            "record": _record(c.record_id, rows, cat),
            "rule": c.rule_id,
            "rule_description": rules[c.rule_id].description if c.rule_id in rules else None,
            "points": c.points,
            "counts_until": c.counts_until.isoformat(),
        }
        for c in sr.contributions
    ]
    out["contributions"] = contributions
    out["capped"] = [{"rule": r, "raw": raw, "capped": capped} for r, raw, capped in sr.capped]
    unclamped = (
        base
        + sum(c.points for c in sr.contributions)
        - sum(raw - capped for _, raw, capped in sr.capped)
    )
    out["clamped"] = sr.points is not None and abs(unclamped - sr.points) > 1e-9
    out["unclamped"] = unclamped
    if s.grades is not None and sr.band_grade is not None:
        band = next((b for b in s.grades.bands if b.grade == sr.band_grade), None)
        out["band_min"] = num(band.min) if band else None
    limits = {x.id: x for x in (s.grades.limits if s.grades else [])}
    out["limits"] = [
        {
            "limit": lid,
            "at_best": limits[lid].at_best if lid in limits else None,
            "description": limits[lid].description if lid in limits else None,
            "record": _record(rid, rows, cat),
            "until": until.isoformat(),
        }
        for lid, rid, until in sr.limits
    ]
    out["next_change"] = None
    if sr.next_change is not None:
        later = evaluate(
            rb,
            [r for r in recs if r.decision_date <= status.as_of],
            sr.next_change,
            subject=status.subject,
            subject_kind=status.subject_kind,
        ).scheme(s.id)
        why = [
            f"record #{c.record_id} (rule {c.rule_id}) stops counting"
            for c in sr.contributions
            if c.counts_until == sr.next_change
        ]
        why += [
            f"limit {lid} from record #{rid} ends"
            for lid, rid, until in sr.limits
            if until == sr.next_change
        ]
        if not why:
            why.append("a new scoring cycle starts")
        out["next_change"] = {
            "date": sr.next_change.isoformat(),
            "points": later.points if later else None,
            "grade": later.grade if later else None,
            "because": why,
        }
    return out


def _measures(status: Status, rb: Rulebook, cat: Catalogue) -> list[dict[str, Any]]:
    """One entry per active measure, with every listing or grade that brings it."""
    memos = {m.id: m for m in rb.memoranda}
    out: dict[str, dict[str, Any]] = {}
    for mr in status.measures:
        measure = cat.measures.get(mr.measure_id)
        memo = memos.get(mr.memorandum_id)
        kind, _, rest = mr.via.partition(":")
        if kind == "list":
            m = status.membership(rest)
            brings = f"your listing on {rest}"
            ends = _iso(m.until) if m else None
        else:
            scheme_id, _, grade = rest.partition(":")
            brings = f"your grade {grade} in scheme {scheme_id}"
            ends = None
        entry = out.setdefault(
            mr.measure_id,
            {
                "measure": mr.measure_id,
                "title": measure.title if measure else mr.measure_id,
                "type": measure.type if measure else None,
                "domain": measure.domain if measure else None,
                "legal_basis": measure.legal_basis if measure else None,
                "brought_by": [],
            },
        )
        entry["brought_by"].append(
            {
                "memorandum": mr.memorandum_id,
                "memorandum_title": memo.title if memo else None,
                "memorandum_legal_basis": memo.legal_basis if memo else None,
                "via": mr.via,
                "brings": brings,
                "records": list(mr.basis),
                "ends": ends,
            }
        )
    return list(out.values())


def _diff(before: Status, after: Status) -> list[str]:
    out = []
    b = {m.list_id for m in before.memberships}
    a = {m.list_id for m in after.memberships}
    out += [f"you come off {x}" for x in sorted(b - a)]
    out += [f"you are listed on {x}" for x in sorted(a - b)]
    for m in after.memberships:
        old = before.membership(m.list_id)
        if old is None:
            continue
        new = sorted(set(m.basis) - set(old.basis))
        if new:
            out.append(f"{m.list_id}: now also because of {', '.join(f'record #{x}' for x in new)}")
        if old.until != m.until:
            out.append(f"{m.list_id}: listed until {_iso(m.until) or 'no fixed end'}")
    for s in after.schemes:
        was = before.scheme(s.scheme_id)
        if was is None:
            continue
        if was.points != s.points:
            out.append(f"{s.scheme_id}: points {_n(was.points)} → {_n(s.points)}")
        if was.grade != s.grade:
            out.append(f"{s.scheme_id}: grade {was.grade} → {s.grade}")
    mb, ma = before.measure_ids(), after.measure_ids()
    out += [f"measure {x} ends" for x in sorted(mb - ma)]
    out += [f"measure {x} starts" for x in sorted(ma - mb)]
    return out


# ---------------------------------------------------------------- the whole explanation


def explain(
    status: Status,
    rulebook: Rulebook,
    records: Sequence[Rec] | Mapping[int, Mapping[str, Any]],
    catalogue: Catalogue | None = None,
) -> dict[str, Any]:
    """Explain ``status`` (computed with ``rulebook`` over ``records``) as a JSON-able dict.

    ``records`` are the engine's :class:`Rec` objects or record dicts keyed by record id (as from
    ``RecordView.as_dict()``, which also carry decision numbers and authorities).
    """
    cat = catalogue or load_catalogue()
    rows, recs = _rows(records, status)
    nxt: dict[str, Any] | None = None
    if status.next_change is not None:
        later = evaluate(
            rulebook,
            [r for r in recs if r.decision_date <= status.as_of],
            status.next_change,
            subject=status.subject,
            subject_kind=status.subject_kind,
        )
        nxt = {
            "date": status.next_change.isoformat(),
            "changes": _diff(status, later) or ["(a term, restoration or cycle boundary)"],
        }
    return {
        "subject": status.subject,
        "subject_kind": status.subject_kind,
        "as_of": status.as_of.isoformat(),
        "rulebook": status.rulebook,
        "rulebook_title": rulebook.title,
        "historical": rulebook.historical,
        "memberships": [
            _membership(m, rulebook, rows, recs, status.as_of, cat) for m in status.memberships
        ],
        "pending": [_pending(p, rulebook, rows, cat) for p in status.pending],
        "schemes": [_scheme(s, rulebook, rows, recs, status, cat) for s in status.schemes],
        "measures": _measures(status, rulebook, cat),
        "next_change": nxt,
    }


def render(explanation: Mapping[str, Any]) -> list[str]:
    """The explanation as lines for people (plain text, no markup)."""
    e = explanation
    out = [
        f"Status of {e['subject']}"
        + (f" ({e['subject_kind']})" if e.get("subject_kind") else "")
        + f" as of {e['as_of']} under {e['rulebook']}"
        + (f" — {e['rulebook_title']}" if e.get("rulebook_title") else ""),
    ]
    if e.get("historical"):
        out.append("  (a historical rulebook: for the simulator only, never applied to anyone)")
    if not (e["memberships"] or e["pending"] or e["schemes"] or e["measures"]):
        out.append("  Nothing in this rulebook applies: no listing, no score, no measure.")
    for m in e["memberships"]:
        out.append("")
        until = f"until {m['until']}" if m["until"] else "with no fixed end"
        out.append(
            f"Listed on {m['list']} — {m['title']} ({m['type']} list) since {m['since']}, {until}"
        )
        out.append(
            f"  authority: {m['authority']}; legal basis: {m['legal_basis']}; rulebook {m['rulebook']}"
        )
        for r in m["rules"]:
            out.append(f"  entry rule {r['id']}: {r['text']}")
        for rec in m["records"]:
            out.append(f"  because of {record_text(rec)}")
        if m["via"]:
            out.append(f"  via lists: {', '.join(m['via'])}")
        out.append("  What would change it:")
        out.extend(f"    - {c}" for c in m["what_would_change_it"])
    for p in e["pending"]:
        out.append("")
        out.append(
            f"Pending: listing on {p['list']} — {p['title']} takes effect on {p['effective']} "
            f"(entry rule {p['rule']})"
        )
        for rec in p["records"]:
            out.append(f"  because of {record_text(rec)}")
        out.append("  How to avoid it:")
        out.extend(f"    - {a}" for a in p["how_to_avoid"])
    for s in e["schemes"]:
        out.append("")
        out.append(f"Scheme {s['scheme']} — {s['title']}")
        if not s["consent"]:
            out.append(f"  {s['text']}")
            continue
        terms = [f"base {_n(s['base'])}"] + [
            f"{_signed(c['points'])} (record #{c['record']['id']}, rule {c['rule']})"
            for c in s["contributions"]
        ]
        out.append(f"  points = {' '.join(terms)}")
        for c in s["capped"]:
            out.append(
                f"  cap: rule {c['rule']} totals {_n(c['raw'])}, capped to {_n(c['capped'])}"
            )
        if s.get("clamped"):
            out.append(
                f"  the sum {_n(s['unclamped'])} is held within the scheme's range "
                f"[{_n(s['min'])}, {_n(s['max'])}]"
            )
        out.append(f"  = {_n(s['points'])} points")
        for c in s["contributions"]:
            out.append(
                f"    record #{c['record']['id']} ({c['record']['kind']}, {c['record']['decision_date']}) "
                f"counts until {c['counts_until']}"
            )
        if s.get("band") is not None:
            mn = s.get("band_min")
            out.append(
                f"  band reached: {s['band']}"
                + (f" (from {_n(mn)} points)" if mn is not None else " (the bottom band)")
            )
        for lim in s["limits"]:
            out.append(
                f"  limit {lim['limit']}: grade at best {lim['at_best']} until {lim['until']} "
                f"because of record #{lim['record']['id']} ({lim['record']['kind']})"
            )
        if s.get("grade") is not None:
            out.append(
                f"  grade: {s['grade']}"
                + (
                    " (incentive-only: never a ground for a sanction)"
                    if s.get("incentive_only")
                    else ""
                )
            )
        nc = s.get("next_change")
        if nc:
            out.append(
                f"  next change on {nc['date']}: {'; '.join(nc['because'])} — then "
                f"{_n(nc['points'])} points, grade {nc['grade']}"
            )
    if e["measures"]:
        out.append("")
        out.append("Measures in force:")
        for m in e["measures"]:
            out.append(f"  {m['measure']} — {m['title']} ({m['type']}, {m['domain']})")
            for by in m["brought_by"]:
                ends = f", until {by['ends']}" if by.get("ends") else ""
                out.append(
                    f"    brought by {by['brings']} under memorandum {by['memorandum']}"
                    + (f" ({by['memorandum_title']})" if by.get("memorandum_title") else "")
                    + f"{ends}; records {', '.join(f'#{r}' for r in by['records']) or 'none'}"
                )
            if m.get("legal_basis"):
                out.append(f"    legal basis: {m['legal_basis']}")
    nxt = e.get("next_change")
    out.append("")
    if nxt:
        out.append(f"Next change: {nxt['date']}: {'; '.join(nxt['changes'])}")
    else:
        out.append("Next change: none scheduled (only a new record changes this status)")
    return out
