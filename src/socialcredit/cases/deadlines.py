"""Case deadlines: the active rulebooks' ``procedure.deadlines`` on their working-day calendars.

A case's deadline is computed once, when the case opens, and stored with it (in the action entry
and the ``cases`` row), so a later change of rulebook never moves a running deadline.

* Every active rulebook that **reads the record's kind** (or, for a listing, the rulebook whose
  list it is) offers a due date: its own figure for the key if it names one, else the default
  below, counted on its own calendar (``3wd`` skips the weekends and public holidays of the
  ``cn`` or ``de`` calendar; calendar durations ignore them).
* The **strictest** (earliest) due date wins.
* When no active rulebook concerns the record, the default is counted on the plain calendar
  (Saturday and Sunday off).

A deadline is the last day to act: an answer on the deadline day is in time; the sweep acts from
the next day.

Defaults — ``../shared/reference/due-process.md`` §9 ("encodable defaults, strictest-of"):

======================== ====== ===============================================================
key                      value  anchor
======================== ====== ===============================================================
objection_acknowledge    5wd    §9 dispute.acknowledge_and_notify_source_business_days: 5
                                (FCRA 1681i(a)(2): furnisher notified within 5 business days)
objection_response       30d    §9 dispute.resolve_days: 30 (FCRA 1681i(a)(1); GDPR Art. 12(3))
repair_decision          30wd   §6 removal/reduction on request: reconsideration decided within
                                30 working days (36 CFR 223.139; FAR 9.406-3(d))
review_decision          45d    §9 listing.decision_deadline_days: 45 (2 CFR 180.870)
tip_decision             30d    no anchor for tips; §9 dispute.resolve_days (30) by analogy
======================== ====== ===============================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from socialcredit.rulebooks.calendar import PLAIN, Calendar
from socialcredit.rulebooks.durations import Duration, add
from socialcredit.rulebooks.loader import load_calendar
from socialcredit.rulebooks.model import STANDARD_DEADLINES, Param, Rulebook


@dataclass(frozen=True, slots=True)
class Default:
    value: str
    source: str


DEFAULTS: dict[str, Default] = {
    "objection_acknowledge": Default(
        "5wd",
        "due-process §9 dispute.acknowledge_and_notify_source_business_days: 5 (FCRA 1681i(a)(2))",
    ),
    "objection_response": Default(
        "30d", "due-process §9 dispute.resolve_days: 30 (FCRA 1681i(a)(1); GDPR Art. 12(3))"
    ),
    "repair_decision": Default(
        "30wd",
        "due-process §6: requests for removal or reduction decided within 30 working days "
        "(36 CFR 223.139; FAR 9.406-3(d))",
    ),
    "review_decision": Default(
        "45d", "due-process §9 listing.decision_deadline_days: 45 (2 CFR 180.870)"
    ),
    "tip_decision": Default(
        "30d", "no anchor for tips; due-process §9 dispute.resolve_days (30) by analogy"
    ),
}
assert set(DEFAULTS) == set(STANDARD_DEADLINES)


@dataclass(frozen=True, slots=True)
class Deadline:
    key: str
    start: dt.date
    due: dt.date
    rulebook: str  # the rulebook id whose figure won, or "default"
    duration: str  # e.g. "3wd"
    calendar: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "start": self.start.isoformat(),
            "due": self.due.isoformat(),
            "rulebook": self.rulebook,
            "duration": self.duration,
            "calendar": self.calendar,
            "source": self.source,
        }


def due_date(start: dt.date, duration: Duration, calendar: Calendar) -> dt.date:
    """``start`` plus ``duration``: working days on ``calendar``, calendar time plainly."""
    if duration.working_days:
        return calendar.add_working_days(start, duration.working_days)
    return add(start, duration)


def rulebook_figure(rb: Rulebook, key: str) -> tuple[Duration, str, str]:
    """(duration, its text, its source) of ``key`` in ``rb``, or the default with its source."""
    raw = rb.procedure.deadlines.get(key)
    if raw is None:
        d = DEFAULTS[key]
        return Duration.parse(d.value), d.value, f"default: {d.source}"
    if isinstance(raw, Param):
        return Duration.parse(raw.value), str(raw.value), raw.source  # type: ignore[arg-type]
    src = rb.procedure.source or f"{rb.id} procedure"
    return Duration.parse(raw), str(raw), src


def concerned(
    books: Sequence[Rulebook], *, kind: str | None = None, rulebook_id: str | None = None
) -> list[Rulebook]:
    """The rulebooks a case concerns: the one named, or those that read ``kind``."""
    if rulebook_id is not None:
        return [rb for rb in books if rb.id == rulebook_id]
    if kind is not None:
        return [rb for rb in books if kind in rb.read_kinds()]
    return []


def compute(
    books: Sequence[Rulebook],
    key: str,
    start: dt.date,
    *,
    kind: str | None = None,
    rulebook_id: str | None = None,
) -> Deadline:
    """The strictest deadline for ``key`` among the rulebooks concerned (see the module doc)."""
    if key not in DEFAULTS:
        raise KeyError(f"'{key}' is not a standard deadline ({', '.join(sorted(DEFAULTS))})")
    best: Deadline | None = None
    for rb in concerned(books, kind=kind, rulebook_id=rulebook_id):
        duration, text, source = rulebook_figure(rb, key)
        cal = load_calendar(rb.procedure.calendar)
        d = Deadline(
            key,
            start,
            due_date(start, duration, cal),
            rb.id if key in rb.procedure.deadlines else "default",
            text,
            cal.id,
            source,
        )
        if (
            best is None
            or d.due < best.due
            or (d.due == best.due and best.rulebook == "default" != d.rulebook)
        ):
            best = d
    if best is None:
        dflt = DEFAULTS[key]
        best = Deadline(
            key,
            start,
            due_date(start, Duration.parse(dflt.value), PLAIN),
            "default",
            dflt.value,
            PLAIN.id,
            f"default: {dflt.source}",
        )
    return best


def table(books: Sequence[Rulebook]) -> list[dict[str, str]]:
    """One row per (rulebook, standard key): the figure, calendar and source (for the docs)."""
    rows = []
    for rb in books:
        for key in STANDARD_DEADLINES:
            _, text, source = rulebook_figure(rb, key)
            rows.append(
                {
                    "rulebook": rb.id,
                    "key": key,
                    "value": text,
                    "calendar": rb.procedure.calendar,
                    "from": "rulebook" if key in rb.procedure.deadlines else "default",
                    "source": source,
                }
            )
    return rows


def shipped_live() -> list[Rulebook]:
    """The shipped rulebooks that can be enforced (historical ones run only in the simulator)."""
    from socialcredit.rulebooks.loader import load, shipped_dir

    books = []
    for folder in sorted(shipped_dir().iterdir()):
        if (folder / "rulebook.yaml").is_file():
            rb = load(folder)
            if not rb.historical:
                books.append(rb)
    return books


def markdown(books: Sequence[Rulebook]) -> str:
    """The deadline and list tables of ``docs/due-process.md`` (a test keeps the doc equal)."""
    keys = list(STANDARD_DEADLINES)
    out = [
        "| rulebook | calendar | " + " | ".join(f"`{k}`" for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for rb in books:
        cells = []
        for k in keys:
            _, text, _ = rulebook_figure(rb, k)
            cells.append(f"**{text}**" if k in rb.procedure.deadlines else f"{text} (default)")
        out.append(f"| {rb.id} | {rb.procedure.calendar} | " + " | ".join(cells) + " |")
    out += [
        "",
        "| rulebook | list | type | grace | repair from | repair conditions | human review |",
        "|---|---|---|---|---|---|---|",
    ]
    by_id = {rb.id: rb for rb in books}
    for rb in books:
        base = by_id.get(rb.extends or "")
        inherited = {x.id: x for x in base.lists} if base is not None else {}
        for lst in rb.lists:
            if inherited.get(lst.id) == lst:
                continue  # shown under the base rulebook
            graces = sorted(
                {
                    str(e.grace.value if hasattr(e.grace, "value") else e.grace)
                    for e in lst.entry
                    if e.grace is not None
                }
            )
            rep = lst.repair
            review = "-"
            if lst.review is not None and lst.review.required and lst.adverse:
                review = "two officers (four eyes)" if lst.review.four_eyes else "one officer"
            out.append(
                f"| {rb.id} | {lst.id} | {lst.type} | {', '.join(graces) or '-'} | "
                + (
                    f"{rep.minimum.value if isinstance(rep.minimum, Param) else rep.minimum}"
                    if rep
                    else "- (no application: ends by its term or removal rules)"
                )
                + f" | {', '.join(rep.conditions) if rep and rep.conditions else '-'} | {review} |"
            )
    return "\n".join(out) + "\n"
