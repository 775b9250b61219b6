"""How long the decision log keeps an answer.

The decision log is a record of every check about a person: every flight or train they tried to
board, every loan they applied for. Kept without end it becomes a movement history. So each answer
is deleted once it is older than the retention period (``socialcredit serve
--decision-retention``), by the log's projector in its quiet moments
(:func:`~socialcredit.status.decisions.purge_decisions`), and the subject is told the period
wherever their decisions are listed.

* **Default 24 months**: the look-back of a subject's list of recipients (due-process defaults
  §9, ``subject_access.recipients_last_24_months``; FCRA 1681g(a)(3): two years for employment)
  and of correction notices to past recipients (FCRA 1681i(d): up to two years), which both read
  the log.
* **At least 6 months**: the AI Act's floor for the logs of a high-risk system, kept by its
  provider and its deployer (Art. 19(1), 26(6); reference/due-process.md §3).
* ``forever`` keeps every answer (a deployment whose law requires it, say); the subject is told.

The access log (refusals, staff reads of a subject's data) has a period of its own (``serve
--access-log-retention``), **48 months by default**: it is the security audit, kept, as the
reference's defaults say of audit logs, at least as long as a listing can last plus the time to
contest it (three years, FAR 9.406-4 and ``expiry.list_default_max_years``, plus a year), so that
what officers read about a subject while a listing ran can still be checked when it is contested.
The same floor of 6 months applies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from socialcredit.errors import InputError, Problem
from socialcredit.rulebooks.durations import add_months

DEFAULT_MONTHS = 24
ACCESS_DEFAULT_MONTHS = 48  # the access log's
MIN_MONTHS = 6
FOREVER = "forever"


@dataclass(frozen=True, slots=True)
class Retention:
    """Answers are kept ``months`` months (None: without limit)."""

    months: int | None = DEFAULT_MONTHS

    def __post_init__(self) -> None:
        if self.months is not None and self.months < MIN_MONTHS:
            raise InputError([_too_short(str(self.months))])

    @classmethod
    def parse(cls, text: str, field: str = "decision_retention") -> Retention:
        """``"24"`` (months) or ``"forever"``; anything else is a problem naming ``field``."""
        value = text.strip().lower()
        if value == FOREVER:
            return cls(None)
        if not value.isdigit():
            raise InputError(
                [
                    Problem(
                        field,
                        "format",
                        text,
                        f"a whole number of months (at least {MIN_MONTHS}) or '{FOREVER}'",
                    )
                ]
            )
        if int(value) < MIN_MONTHS:
            raise InputError([_too_short(text, field)])
        return cls(int(value))

    def cutoff(self, now: dt.datetime) -> dt.datetime | None:
        """The instant (naive UTC, as the log stores it) before which answers are deleted at
        ``now``; None when they are kept without limit. Calendar months: 24 months before
        31 March is 31 March two years earlier, 6 months before 31 August is 28 or 29 February."""
        if self.months is None:
            return None
        if now.tzinfo is not None:
            now = now.astimezone(dt.UTC).replace(tzinfo=None)
        day = add_months(now.date(), -self.months)
        return dt.datetime.combine(day, now.time())

    def describe(
        self, now: dt.datetime, what: str = "decision", plural: str = "Decisions"
    ) -> dict[str, Any]:
        """What a subject (or an auditor) is told with a listing of decisions (or of ``what``:
        ``"access-log entry"``, ``"Access-log entries"``)."""
        before = self.cutoff(now)
        if before is None:
            return {
                "months": None,
                "deleted_before": None,
                "note": f"{plural} are kept without a time limit.",
            }
        return {
            "months": self.months,
            "deleted_before": before.isoformat(timespec="seconds") + "Z",
            "note": f"Each {what} is deleted {self.months} months after it was made.",
        }


def _too_short(value: str, field: str = "decision_retention") -> Problem:
    return Problem(
        field,
        "minimum",
        value,
        f"at least {MIN_MONTHS} months: the AI Act's floor for the logs of a high-risk system "
        "(Art. 19(1), 26(6))",
    )
