"""The reference evaluator: one subject, as of one day, in plain Python, with its reasons.

This is the definition of what a rulebook means. The batch plan must give exactly the same
memberships, scores, grades and measures for every subject (a property test checks it).

Semantics, in brief (``docs/rulebooks.md`` has the long form):

* Only records **in force** (not retracted, overturned or suspended) and **decided on or before
  the as-of day** are read. Status is a pure function of (records, rulebook, as-of day).
* **Lists.** An ``each`` rule lists the subject once per matching record, from the decision date
  plus ``grace`` until the term ends (``length`` + ``extend_by_attribute`` years, at most ``max``;
  no length: until removed) or until a removal record (decided on or after the entry, sharing the
  ``match_attributes``) is decided. A ``count`` rule triggers on each matching record whose
  trailing window (``within``, up to and including its day) weighs at least ``at_least``; each
  trigger lists the subject for ``term.length`` from its day plus ``grace``. A ``lists`` rule holds
  while at least ``at_least`` of the named lists hold. A membership's ``since`` is the earliest start
  among the active entries, ``until`` the latest end (``None``: no fixed end).
* **Schemes.** Each matching record is scored by the first rule that matches it, counts until its
  restoration period has passed (and, with a cycle, only within the current cycle), once per
  distinct ``once_per`` value, with ``cap`` clipping a rule's total per calendar year or overall.
  ``points = clamp(base + sum)``. The grade is the first band reached, made no better than any
  ``limit`` whose record is younger than its ``for``.
* **Memoranda** bind active memberships and grades to measures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from socialcredit.engine.records import Rec, canon
from socialcredit.rulebooks.durations import Duration, add, add_months
from socialcredit.rulebooks.model import (
    EntryRule,
    ListDef,
    Match,
    PointsRule,
    Rulebook,
    Scheme,
    dur,
    num,
)

FOREVER = None


@dataclass(frozen=True)
class Membership:
    list_id: str
    since: dt.date
    until: dt.date | None
    basis: tuple[int, ...]  # record ids
    rules: tuple[str, ...]  # entry rules that hold
    via: tuple[str, ...] = ()  # lists, for rules over other lists
    repair_from: dt.date | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_id,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "basis": list(self.basis),
            "rules": list(self.rules),
            "via": list(self.via),
            "repair_from": self.repair_from.isoformat() if self.repair_from else None,
        }


@dataclass(frozen=True)
class Pending:
    """A listing decided but not yet in effect (grace period): the subject is given notice."""

    list_id: str
    effective: dt.date
    basis: tuple[int, ...]
    rule: str


@dataclass(frozen=True)
class Contribution:
    record_id: int
    rule_id: str
    points: float
    counts_until: dt.date


@dataclass(frozen=True)
class SchemeResult:
    scheme_id: str
    points: float | None  # None: not scored (no consent)
    grade: str | None
    band_grade: str | None
    basis: tuple[int, ...]
    contributions: tuple[Contribution, ...] = ()
    limits: tuple[tuple[str, int, dt.date], ...] = ()  # (limit id, record id, until)
    capped: tuple[tuple[str, float, float], ...] = ()  # (rule id, raw total, capped total)
    consent: bool = True
    next_change: dt.date | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme_id,
            "points": self.points,
            "grade": self.grade,
            "band_grade": self.band_grade,
            "basis": list(self.basis),
            "consent": self.consent,
            "contributions": [
                {
                    "record_id": c.record_id,
                    "rule": c.rule_id,
                    "points": c.points,
                    "counts_until": c.counts_until.isoformat(),
                }
                for c in self.contributions
            ],
            "limits": [
                {"limit": li, "record_id": r, "until": u.isoformat()} for li, r, u in self.limits
            ],
            "capped": [{"rule": r, "raw": a, "capped": b} for r, a, b in self.capped],
            "next_change": self.next_change.isoformat() if self.next_change else None,
        }


@dataclass(frozen=True)
class MeasureResult:
    measure_id: str
    memorandum_id: str
    via: str  # "list:ID" or "scheme:ID:GRADE"
    basis: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure_id,
            "memorandum": self.memorandum_id,
            "via": self.via,
            "basis": list(self.basis),
        }


@dataclass(frozen=True)
class Status:
    subject: str
    subject_kind: str | None
    as_of: dt.date
    rulebook: str
    memberships: tuple[Membership, ...] = ()
    pending: tuple[Pending, ...] = ()
    schemes: tuple[SchemeResult, ...] = ()
    measures: tuple[MeasureResult, ...] = ()
    next_change: dt.date | None = None

    def membership(self, list_id: str) -> Membership | None:
        return next((m for m in self.memberships if m.list_id == list_id), None)

    def scheme(self, scheme_id: str) -> SchemeResult | None:
        return next((s for s in self.schemes if s.scheme_id == scheme_id), None)

    def measure_ids(self) -> set[str]:
        return {m.measure_id for m in self.measures}

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "subject_kind": self.subject_kind,
            "as_of": self.as_of.isoformat(),
            "rulebook": self.rulebook,
            "memberships": [m.as_dict() for m in self.memberships],
            "pending": [
                {
                    "list": p.list_id,
                    "effective": p.effective.isoformat(),
                    "basis": list(p.basis),
                    "rule": p.rule,
                }
                for p in self.pending
            ],
            "schemes": [s.as_dict() for s in self.schemes],
            "measures": [m.as_dict() for m in self.measures],
            "next_change": self.next_change.isoformat() if self.next_change else None,
        }


# ---------------------------------------------------------------- matching


def matches(m: Match, r: Rec) -> bool:
    if r.kind not in m.kinds:
        return False
    if m.severity is not None and r.severity not in m.severity:
        return False
    if m.attributes:
        for name, values in m.attributes.items():
            if r.attr(name) not in {canon(v) for v in values}:
                return False
    lo, hi = num(m.amount_at_least), num(m.amount_below)
    if lo is not None or hi is not None:
        if r.amount_minor is None:
            return False
        if lo is not None and r.amount_minor < round(lo * 100):
            return False
        if hi is not None and r.amount_minor >= round(hi * 100):
            return False
    return True


def _min(dates: Iterable[dt.date | None]) -> dt.date | None:
    ds = [d for d in dates if d is not None]
    return min(ds) if ds else None


# ---------------------------------------------------------------- lists


@dataclass
class _Interval:
    start: dt.date
    end: dt.date | None  # exclusive; None: open-ended
    basis: tuple[int, ...]
    rule: str


def _each_intervals(rule: EntryRule, lst: ListDef, recs: Sequence[Rec]) -> list[_Interval]:
    assert rule.when is not None
    grace = dur(rule.grace) or Duration()
    length, cap = dur(rule.term.length), dur(rule.term.max)
    out = []
    for r in recs:
        if not matches(rule.when, r):
            continue
        start = add(r.decision_date, grace)
        end: dt.date | None = None
        if length is not None:
            end = add(start, length)
            if rule.term.extend_by_attribute:
                years = r.number(rule.term.extend_by_attribute)
                if years:
                    end = add_months(end, int(years) * 12)
            if cap is not None:
                end = min(end, add(start, cap))
        for rm in lst.removal:
            for x in recs:
                if (
                    matches(rm.when, x)
                    and x.decision_date >= r.decision_date
                    and all(
                        x.attr(a) is not None and x.attr(a) == r.attr(a)
                        for a in rm.match_attributes
                    )
                ):
                    end = x.decision_date if end is None else min(end, x.decision_date)
        out.append(_Interval(start, end, (r.record_id,), rule.id))
    return out


def _count_intervals(rule: EntryRule, recs: Sequence[Rec]) -> list[_Interval]:
    c = rule.count
    assert c is not None
    within = dur(c.within)
    assert within is not None
    grace = dur(rule.grace) or Duration()
    length = dur(rule.term.length)
    threshold = num(c.at_least) or 0
    weights: dict[str, float] = {k: num(v) or 0.0 for k, v in (c.weights or {}).items()}
    window = [r for r in recs if matches(c.when, r)]
    out = []
    for r1 in window:
        lo = r1.decision_date
        members = [
            r2 for r2 in window if add(r2.decision_date, within) > lo and r2.decision_date <= lo
        ]
        total = sum((weights.get(r2.severity or "", 1.0) if weights else 1.0) for r2 in members)
        if total >= threshold:
            start = add(r1.decision_date, grace)
            end = add(start, length) if length is not None else None
            out.append(_Interval(start, end, tuple(sorted(r.record_id for r in members)), rule.id))
    return out


def _fold(intervals: list[_Interval], as_of: dt.date) -> tuple[list[_Interval], list[_Interval]]:
    # an interval that ends before it starts (removed during its grace period) never happens
    real = [i for i in intervals if i.end is None or i.end > i.start]
    active = [i for i in real if i.start <= as_of and (i.end is None or as_of < i.end)]
    pending = [i for i in real if i.start > as_of]
    return active, pending


def list_order(rb: Rulebook) -> list[ListDef]:
    """Lists in dependency order (rules over other lists come after those lists)."""
    by_id = {lst.id: lst for lst in rb.lists}
    done: dict[str, ListDef] = {}

    def visit(lst: ListDef, stack: tuple[str, ...]) -> None:
        if lst.id in done:
            return
        if lst.id in stack:
            raise ValueError(
                f"lists depend on each other in a circle: {' -> '.join((*stack, lst.id))}"
            )
        for e in lst.entry:
            for dep in e.lists.any_of if e.lists else []:
                if dep in by_id:
                    visit(by_id[dep], (*stack, lst.id))
        done[lst.id] = lst

    for lst in rb.lists:
        visit(lst, ())
    return list(done.values())


def _memberships(
    rb: Rulebook, recs: Sequence[Rec], kind: str | None, as_of: dt.date
) -> tuple[list[Membership], list[Pending]]:
    found: dict[str, Membership] = {}
    pending: list[Pending] = []
    for lst in list_order(rb):
        if lst.subjects is not None and kind not in lst.subjects:
            continue
        active: list[_Interval] = []
        via: set[str] = set()
        for rule in lst.entry:
            if rule.mode == "each":
                a, p = _fold(_each_intervals(rule, lst, recs), as_of)
            elif rule.mode == "count":
                a, p = _fold(_count_intervals(rule, recs), as_of)
            else:
                assert rule.lists is not None
                deps = [found[d] for d in rule.lists.any_of if d in found]
                p = []
                a = []
                if len(deps) >= rule.lists.at_least:
                    k = rule.lists.at_least
                    since = sorted(d.since for d in deps)[k - 1]
                    # the k-th latest end is when fewer than k remain (open-ended ends last longest)
                    ends_desc = sorted(
                        deps, key=lambda d: (d.until is None, d.until or dt.date.min), reverse=True
                    )
                    until = ends_desc[k - 1].until
                    basis = tuple(sorted({b for d in deps for b in d.basis}))
                    a = [_Interval(since, until, basis, rule.id)]
                    via.update(d.list_id for d in deps)
            active.extend(a)
            pending.extend(Pending(lst.id, i.start, i.basis, i.rule) for i in p)
        if not active:
            continue
        since = min(i.start for i in active)
        until = None if any(i.end is None for i in active) else max(i.end for i in active if i.end)
        repair = dur(lst.repair.minimum) if lst.repair else None
        found[lst.id] = Membership(
            lst.id,
            since,
            until,
            tuple(sorted({b for i in active for b in i.basis})),
            tuple(sorted({i.rule for i in active})),
            tuple(sorted(via)),
            add(since, repair) if repair else None,
        )
    order = {lst.id: n for n, lst in enumerate(rb.lists)}
    return sorted(found.values(), key=lambda m: order[m.list_id]), pending


# ---------------------------------------------------------------- schemes


def cycle_bounds(scheme: Scheme, as_of: dt.date) -> tuple[dt.date, dt.date] | None:
    if scheme.cycle is None:
        return None
    mm, dd = (int(x) for x in scheme.cycle.anchor.split("-"))

    def anchor(year: int) -> dt.date:
        return add_months(dt.date(year, mm, 1), 0).replace(day=min(dd, _month_len(year, mm)))

    start = anchor(as_of.year)
    if start > as_of:
        start = anchor(as_of.year - 1)
    return start, anchor(start.year + 1)


def _month_len(y: int, m: int) -> int:
    import calendar

    return calendar.monthrange(y, m)[1]


def rule_points(rule: PointsRule, r: Rec) -> float | None:
    if rule.points is not None:
        return num(rule.points)
    if rule.brackets is not None:
        if r.amount_minor is None:
            return None
        best = None
        for b in sorted(rule.brackets, key=lambda b: num(b.amount_at_least) or 0):
            if r.amount_minor >= round((num(b.amount_at_least) or 0) * 100):
                best = num(b.points)
        return best
    assert rule.from_attribute is not None
    v = r.number(rule.from_attribute.attribute)
    return None if v is None else v * (num(rule.from_attribute.factor) or 0)


def _scheme(s: Scheme, recs: Sequence[Rec], as_of: dt.date) -> SchemeResult:
    if s.consent_kind and not any(r.kind == s.consent_kind for r in recs):
        return SchemeResult(s.id, None, None, None, (), consent=False)
    bounds = cycle_bounds(s, as_of)
    default_restore = dur(s.restore_after)
    assert default_restore is not None
    counted: list[tuple[Rec, PointsRule, float, dt.date]] = []
    for r in recs:
        if bounds and r.decision_date < bounds[0]:
            continue
        rule = next((x for x in s.rules if matches(x.when, r)), None)
        if rule is None:
            continue
        until = add(r.decision_date, dur(rule.restore_after) or default_restore)
        if until <= as_of:
            continue
        pts = rule_points(rule, r)
        if pts is None:
            continue
        counted.append((r, rule, pts, until))
    # once per distinct attribute value: the earliest record of each value counts
    kept: list[tuple[Rec, PointsRule, float, dt.date]] = []
    seen: set[tuple[str, str]] = set()
    for item in sorted(counted, key=lambda t: (t[0].decision_date, t[0].record_id)):
        r, rule = item[0], item[1]
        if rule.once_per:
            v = r.attr(rule.once_per)
            if v is not None:
                if (rule.id, v) in seen:
                    continue
                seen.add((rule.id, v))
        kept.append(item)
    total = 0.0
    capped = []
    groups: dict[tuple[str, int | None], float] = {}
    for r, rule, pts, _ in kept:
        year = r.decision_date.year if rule.cap and rule.cap.per == "year" else None
        groups[(rule.id, year)] = groups.get((rule.id, year), 0.0) + pts
    rules = {x.id: x for x in s.rules}
    for (rule_id, _year), raw in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        cap = rules[rule_id].cap
        value = raw
        if cap is not None:
            limit = num(cap.total) or 0.0
            if abs(raw) > limit:
                value = limit if raw > 0 else -limit
                capped.append((rule_id, raw, value))
        total += value
    points = (num(s.base) or 0.0) + total
    lo, hi = num(s.min), num(s.max)
    if lo is not None:
        points = max(points, lo)
    if hi is not None:
        points = min(points, hi)
    grade = band = None
    limits: list[tuple[str, int, dt.date]] = []
    next_changes: list[dt.date | None] = [u for *_, u in kept]
    if s.grades:
        for b in sorted(s.grades.bands, key=lambda b: (num(b.min) is None, -(num(b.min) or 0))):
            m = num(b.min)
            if m is None or points >= m:
                band = b.grade
                break
        grade = band
        rank = {g: i for i, g in enumerate(s.grades.order)}
        for lim in s.grades.limits:
            for r in recs:
                if matches(lim.when, r):
                    end = add(r.decision_date, dur(lim.for_) or Duration())
                    if r.decision_date <= as_of < end:
                        limits.append((lim.id, r.record_id, end))
                        next_changes.append(end)
                        if grade is None or rank[lim.at_best] > rank[grade]:
                            grade = lim.at_best
    if bounds:
        next_changes.append(bounds[1])
    return SchemeResult(
        s.id,
        points,
        grade,
        band,
        tuple(sorted({r.record_id for r, *_ in kept} | {rid for _, rid, _ in limits})),
        tuple(Contribution(r.record_id, rule.id, pts, u) for r, rule, pts, u in kept),
        tuple(limits),
        tuple(capped),
        True,
        _min(next_changes),
    )


# ---------------------------------------------------------------- the whole status


def evaluate(
    rb: Rulebook,
    records: Iterable[Rec],
    as_of: dt.date,
    *,
    subject: str | None = None,
    subject_kind: str | None = None,
) -> Status:
    """The status of one subject as of the end of ``as_of``."""
    all_recs = list(records)
    if subject is None:
        subjects = {r.subject for r in all_recs}
        if len(subjects) != 1:
            raise ValueError(
                "evaluate() takes the records of exactly one subject (or name the subject)"
            )
        subject = subjects.pop()
    if subject_kind is None:
        subject_kind = next((r.subject_kind for r in all_recs if r.subject_kind), None)
    recs = sorted(
        (r for r in all_recs if r.in_force and r.decision_date <= as_of and r.subject == subject),
        key=lambda r: (r.decision_date, r.record_id),
    )
    memberships, pending = _memberships(rb, recs, subject_kind, as_of)
    schemes = [_scheme(s, recs, as_of) for s in rb.schemes if subject_kind in s.subjects]
    measures: list[MeasureResult] = []
    active = {m.list_id: m for m in memberships}
    grades = {s.scheme_id: s for s in schemes}
    for memo in rb.memoranda:
        for b in memo.bindings:
            if b.subjects is not None and subject_kind not in b.subjects:
                continue
            if b.when.list_ is not None:
                mem = active.get(b.when.list_)
                if mem is None:
                    continue
                via, basis = f"list:{mem.list_id}", mem.basis
            else:
                res = grades.get(b.when.scheme or "")
                if res is None or res.grade is None or res.grade not in (b.when.grades or []):
                    continue
                via, basis = f"scheme:{res.scheme_id}:{res.grade}", res.basis
            measures.extend(MeasureResult(m, memo.id, via, basis) for m in b.measures)
    measures = sorted(set(measures), key=lambda m: (m.measure_id, m.memorandum_id, m.via))
    nxt = _min(
        [
            *(m.until for m in memberships),
            *(p.effective for p in pending),
            *(s.next_change for s in schemes),
        ]
    )
    return Status(
        subject,
        subject_kind,
        as_of,
        rb.ref,
        tuple(memberships),
        tuple(pending),
        tuple(schemes),
        tuple(measures),
        nxt,
    )
