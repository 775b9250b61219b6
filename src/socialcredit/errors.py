"""Errors shared by every room: one :class:`Problem` names exactly what was wrong with an input."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input.

    ``field`` is the input field (``subject``, ``decision_date``, ``attributes.ground`` ...),
    ``rule`` a short stable machine name for the rule that was broken (``check-character``,
    ``not-accredited``, ``required`` ...), ``value`` the offending value as received, ``message`` a
    sentence for people, and ``row`` the 1-based line or row number when the input is a file.
    """

    field: str
    rule: str
    value: Any
    message: str
    row: int | None = None

    def at_row(self, row: int) -> Problem:
        return Problem(self.field, self.rule, self.value, self.message, row)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["value"] is not None and not isinstance(d["value"], (str, int, float, bool)):
            d["value"] = str(d["value"])
        return d

    def __str__(self) -> str:
        where = f"row {self.row}: " if self.row is not None else ""
        return f"{where}{self.field}: {self.message} [{self.rule}] (value: {self.value!r})"


class InputError(ValueError):
    """An input was refused. Nothing was changed. ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid input")


class ConflictError(InputError):
    """The same authority reference was furnished before with different content."""


class NotFoundError(LookupError):
    """A named thing (subject, record, authority, kind) does not exist."""
