"""The rulebook model: lists, point schemes, grades, memoranda and procedure, as data.

The YAML format is documented in ``docs/rulebooks.md``; the JSON Schema published in
``rulebooks/rulebook.schema.json`` is generated from these classes. Numbers and durations carry
their source: either the enclosing object has ``source`` and ``confidence`` (covering every number
in it), or a single value is written ``{value: 2y, source: ..., confidence: P}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from socialcredit.rulebooks.durations import Duration
from socialcredit.subjects import SubjectKind

Confidence = Literal["P", "S", "W", "U"]
Severity = Literal["minor", "general", "serious"]
ListType = Literal["black", "red", "key-attention", "warning"]
Scalar = str | int | float | bool


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(Model):
    """A single value with its own source."""

    value: int | float | str
    source: str
    confidence: Confidence


Num = int | float | Param
Dur = str | int | Param


def num(x: Num | None) -> float | None:
    if x is None:
        return None
    v = x.value if isinstance(x, Param) else x
    return float(v)  # type: ignore[arg-type]


def dur(x: Dur | None) -> Duration | None:
    if x is None:
        return None
    return Duration.parse(x.value if isinstance(x, Param) else x)  # type: ignore[arg-type]


class Sourced(Model):
    source: str | None = None
    confidence: Confidence | None = None


class Match(Model):
    """Which records a rule reads: kinds, and optionally severity, attribute values, amounts."""

    kinds: list[str] = Field(min_length=1)
    severity: list[Severity] | None = None
    attributes: dict[str, list[Scalar]] | None = None
    amount_at_least: Num | None = None  # yuan
    amount_below: Num | None = None


# ---------------------------------------------------------------- lists


class Term(Sourced):
    length: Dur | None = None  # None: until a removal trigger
    extend_by_attribute: str | None = None  # an integer attribute: years added (e.g. 1-3)
    max: Dur | None = None


class Count(Model):
    when: Match
    weights: dict[Severity, Num] | None = (
        None  # e.g. general 1, serious 3 ("3 general = 1 serious")
    )
    at_least: Num
    within: Dur


class ListsCount(Model):
    any_of: list[str] = Field(min_length=1)
    at_least: int = Field(ge=1)


class EntryRule(Sourced):
    """One way onto a list. Exactly one of ``when`` (each record lists), ``count`` or ``lists``."""

    id: str
    description: str | None = None
    when: Match | None = None
    count: Count | None = None
    lists: ListsCount | None = None
    grace: Dur | None = None
    term: Term = Term()

    @model_validator(mode="after")
    def _one_mode(self) -> EntryRule:
        modes = [m for m in ("when", "count", "lists") if getattr(self, m) is not None]
        if len(modes) != 1:
            raise ValueError("an entry rule needs exactly one of 'when', 'count' or 'lists'")
        return self

    @property
    def mode(self) -> str:
        return "each" if self.when is not None else ("count" if self.count is not None else "lists")


class Removal(Sourced):
    """A record that ends a listing: e.g. the judgment was performed."""

    id: str
    when: Match
    match_attributes: list[str] = []  # the removal record must share these with the entry record
    within: Dur | None = None  # the procedural deadline to take the entry down (e.g. 3wd)
    description: str | None = None


REPAIR_APPROVED_KIND = "credit.repair-approved"
"""The record kind the registry furnishes when an officer approves a repair application."""
REPAIR_REMOVAL_ID = "repair-approved"
"""The id of the implicit removal rule the loader adds to every list with a ``repair`` section."""


class Repair(Sourced):
    minimum: Dur  # earliest application after listing
    conditions: list[str] = []  # record kinds that must be present (performance, credit commitment)
    description: str | None = None


class Publicity(Sourced):
    period: Dur | None = None  # None: not published
    fields: list[str] = ["subject_name", "subject", "kind", "decision_no", "decision_date"]
    mask_person_identifiers: bool = True


class Review(Model):
    required: bool = True  # a human confirms each adverse listing the engine proposes
    four_eyes: bool = False  # two different officers


class ListDef(Sourced):
    id: str
    title: str
    type: ListType
    description: str | None = None
    authority: str
    legal_basis: str
    field: str | None = None  # the regulatory field, for "lists in N fields" rules
    subjects: list[SubjectKind] | None = None
    entry: list[EntryRule] = Field(min_length=1)
    removal: list[Removal] = []
    repair: Repair | None = None
    publicity: Publicity | None = None
    review: Review | None = None

    @property
    def adverse(self) -> bool:
        return self.type != "red"


# ---------------------------------------------------------------- schemes


class Bracket(Model):
    amount_at_least: Num
    points: Num


class FromAttribute(Model):
    attribute: str
    factor: Num = 1


class Cap(Model):
    total: Num  # the most a rule may add or take away (absolute)
    per: Literal["year"] | None = None  # per calendar year of the decision date, or overall


class PointsRule(Sourced):
    """Points for records matched by ``when``. A record is scored by the first rule that matches."""

    id: str
    description: str | None = None
    when: Match
    points: Num | None = None
    brackets: list[Bracket] | None = None  # by amount; the highest bracket reached applies
    from_attribute: FromAttribute | None = None
    restore_after: Dur | None = None  # stops counting after this; default: the scheme's
    once_per: str | None = None  # count once per distinct value of this attribute (cycles)
    cap: Cap | None = None

    @model_validator(mode="after")
    def _one_source_of_points(self) -> PointsRule:
        n = sum(x is not None for x in (self.points, self.brackets, self.from_attribute))
        if n != 1:
            raise ValueError(
                "a points rule needs exactly one of 'points', 'brackets' or 'from_attribute'"
            )
        return self


class Band(Model):
    grade: str
    min: Num | None = None  # None: the bottom band


class Limit(Sourced):
    """A grade no better than ``at_best`` while a matching record is younger than ``for``.

    Direct assignment ("direct D") and caps ("cannot be A") are both limits.
    """

    id: str
    at_best: str
    when: Match
    for_: Dur = Field(alias="for")
    description: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Grades(Sourced):
    order: list[str] = Field(min_length=1)  # best first
    bands: list[Band] = Field(min_length=1)
    limits: list[Limit] = []


class Cycle(Model):
    length: Literal["1y"] = "1y"
    anchor: str = "01-01"  # MM-DD the cycle starts on each year


class Scheme(Sourced):
    id: str
    title: str
    description: str | None = None
    subjects: list[SubjectKind] = Field(min_length=1)
    base: Num
    min: Num | None = None
    max: Num | None = None
    consent_kind: str | None = None  # no score without an in-force record of this kind
    incentive_only: bool = False  # a low score is never a ground for a sanction
    cycle: Cycle | None = None
    restore_after: Dur  # default for rules without their own
    rules: list[PointsRule] = Field(min_length=1)
    grades: Grades | None = None


# ---------------------------------------------------------------- memoranda and procedure


class BindingWhen(Model):
    list_: str | None = Field(default=None, alias="list")
    scheme: str | None = None
    grades: list[str] | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> BindingWhen:
        if (self.list_ is None) == (self.scheme is None):
            raise ValueError("a binding names either a 'list' or a 'scheme' with 'grades'")
        if self.scheme is not None and not self.grades:
            raise ValueError("a scheme binding needs the 'grades' it applies to")
        return self


class Binding(Model):
    when: BindingWhen
    subjects: list[SubjectKind] | None = None
    measures: list[str] = Field(min_length=1)


class Memorandum(Sourced):
    id: str
    title: str
    legal_basis: str
    signatories: list[str] = []
    bindings: list[Binding] = Field(min_length=1)
    description: str | None = None


STANDARD_DEADLINES: dict[str, str] = {
    "objection_acknowledge": "acknowledge an objection and notify the furnishing authority",
    "objection_response": "the furnishing authority confirms, corrects or retracts a disputed record",
    "repair_decision": "an officer decides a repair application",
    "review_decision": "officers confirm or halt a listing the engine proposes",
    "tip_decision": "an officer verifies or rejects a tip",
}
"""The procedure deadlines the cases room reads (``socialcredit.cases.deadlines``); a rulebook may
name others (informational, e.g. ``theory_test_after_full_score``)."""


class Procedure(Sourced):
    calendar: str = "plain"
    deadlines: dict[str, Dur] = {}  # STANDARD_DEADLINES and any informational ones


class Effective(Model):
    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Rulebook(Model):
    id: str
    title: str
    jurisdiction: str
    version: str
    description: str | None = None
    effective: Effective
    historical: bool = False
    extends: str | None = None
    overrides: dict[str, Any] = {}
    lists: list[ListDef] = []
    schemes: list[Scheme] = []
    memoranda: list[Memorandum] = []
    procedure: Procedure = Procedure()

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def get_list(self, list_id: str) -> ListDef:
        for x in self.lists:
            if x.id == list_id:
                return x
        raise KeyError(f"rulebook {self.id} has no list '{list_id}'")

    def get_scheme(self, scheme_id: str) -> Scheme:
        for x in self.schemes:
            if x.id == scheme_id:
                return x
        raise KeyError(f"rulebook {self.id} has no scheme '{scheme_id}'")

    def read_kinds(self) -> dict[str, list[str]]:
        """Every record kind a rule reads -> the rule paths that read it (for the charter lint)."""
        out: dict[str, list[str]] = {}

        def add(m: Match | None, where: str) -> None:
            if m is not None:
                for k in m.kinds:
                    out.setdefault(k, []).append(where)

        for lst in self.lists:
            for e in lst.entry:
                add(e.when, f"lists[{lst.id}].entry[{e.id}]")
                add(e.count.when if e.count else None, f"lists[{lst.id}].entry[{e.id}].count")
            for r in lst.removal:
                add(r.when, f"lists[{lst.id}].removal[{r.id}]")
        for s in self.schemes:
            for pr in s.rules:
                add(pr.when, f"schemes[{s.id}].rules[{pr.id}]")
            for lim in s.grades.limits if s.grades else []:
                add(lim.when, f"schemes[{s.id}].grades.limits[{lim.id}]")
            if s.consent_kind:
                out.setdefault(s.consent_kind, []).append(f"schemes[{s.id}].consent_kind")
        return out
