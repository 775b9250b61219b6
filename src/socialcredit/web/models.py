"""Request and response shapes, for validation where it is cheap and for the OpenAPI document.

The bulk endpoint (``POST /v1/checks``) does not validate through these models: its body is read
with orjson and checked by hand (stack.md §6: pydantic ``list`` validation and the default
serializer cost 3x on bulk requests). The models still describe it in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def _f(description: str, json_type: str | list[str]) -> Any:
    types = [json_type] if isinstance(json_type, str) else list(json_type)
    return Field(None, description=description, json_schema_extra={"type": [*types, "null"]})


class RecordIn(BaseModel):
    """One furnished record, in the importer's field names (``attr.NAME`` columns also work)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "ref": "ZX-2025-0001",
                "subject": "cn-rid:11010519491231002X",
                "subject_name": "Zhang San",
                "kind": "court.judgment-defaulter",
                "decision_no": "(2025) Jing 0105 Zhi 1234",
                "decision_date": "2025-06-01",
                "severity": "serious",
                "amount": "1000.50",
                "attributes": {
                    "ground": "able-but-refuses",
                    "case_no": "(2025) Jing 0105 Zhi 1234",
                },
            }
        },
    )

    # Typed loosely on purpose: the ledger's validator checks every field and names exactly what
    # is wrong (field, rule, value), the same way for the API, the CLI and file imports.
    ref: Any = _f("The authority's own reference (the idempotency key)", "string")
    subject: Any = _f("SCHEME:VALUE, e.g. cn-rid:11010519491231002X", "string")
    subject_scheme: Any = _f("Instead of subject: the scheme ...", "string")
    subject_id: Any = _f("... and the identifier", "string")
    subject_name: Any = _f("The subject's name as the decision gives it", "string")
    subject_kind: Any = _f("person, enterprise, ... (needed for generic schemes)", "string")
    kind: Any = _f("A record kind from the catalogue", "string")
    decision_no: Any = _f("The decision (document) number", "string")
    decision_date: Any = _f("YYYY-MM-DD, not after today", "string")
    severity: Any = _f("minor, general or serious, as the kind allows", "string")
    amount: Any = _f("In yuan, at most two decimals", ["string", "number"])
    legal_basis: Any = _f("Defaults to the kind's legal basis", "string")
    attributes: Any = _f("The kind's attributes", "object")


class RecordsBatchIn(BaseModel):
    records: list[RecordIn] = Field(min_length=1, max_length=10_000)


class WriteOut(BaseModel):
    seq: int = Field(
        description="The ledger entry holding the record (the existing one if duplicate)"
    )
    status: Literal["stored", "duplicate"]


class BatchItemOut(WriteOut):
    index: int


class BatchOut(BaseModel):
    stored: int
    duplicates: int
    results: list[BatchItemOut]


class LineageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="The authority's reference for this act (idempotency key)")
    reason: str


class CorrectIn(LineageIn):
    changes: dict[str, Any] = Field(
        description="Record fields to change (``attributes`` merges; ``attr.NAME`` sets one)"
    )


class CheckItem(BaseModel):
    subject: str = Field(description="SCHEME:VALUE")
    measure: str = Field(description="A measure id from the catalogue, in the party's domains")


class CheckRequest(BaseModel):
    """The object form: any mix of subjects and measures."""

    purpose: str = Field(min_length=1, max_length=200, description="Why the party asks (logged)")
    checks: list[CheckItem] = Field(min_length=1, max_length=10_000)


class CheckColumnsRequest(BaseModel):
    """The columnar form: many subjects, one measure (a passenger list, a bidder list)."""

    purpose: str = Field(min_length=1, max_length=200, description="Why the party asks (logged)")
    measure: str = Field(description="A measure id from the catalogue, in the party's domains")
    subjects: list[str] = Field(min_length=1, max_length=10_000, description="SCHEME:VALUE each")
    answers: Literal["all", "exceptions"] = Field(
        "all",
        description='"all": every answer, in arrays (CheckColumns); "exceptions": only the '
        "answers that are not the measure's default, and the subjects whose key was normalised "
        "(CheckExceptions). Every answer is logged either way",
    )


class Basis(BaseModel):
    rulebook: str = Field(description="id@version of the rulebook")
    memorandum: str
    via: str = Field(description="list:LIST or scheme:SCHEME:GRADE")
    legal_basis: str | None
    records: list[int] = Field(description="Ledger record ids the outcome rests on")


class CheckResult(BaseModel):
    subject: str
    measure: str
    decision: Literal["allow", "deny", "grant", "standard"]
    reason: Literal[
        "no-restriction",
        "restricted-by-list",
        "restricted-by-grade",
        "no-reward",
        "reward-by-list",
        "reward-by-grade",
    ]
    basis: Basis | None = Field(None, description="Only when denied or granted")
    decision_id: str = Field(description="13 Crockford base-32 characters, time-ordered")


class CheckResponse(BaseModel):
    """The answer to the object form."""

    purpose: str
    results: list[CheckResult]


class DecisionIdRange(BaseModel):
    first: str = Field(description="The decision id of the first subject's answer")
    count: int = Field(description="How many answers: the i-th (from 0) has id first + i")


class CheckColumns(BaseModel):
    """The answer to the columnar form: arrays in the order of ``subjects``."""

    purpose: str
    measure: str
    subjects: list[str] = Field(description="Each subject as given, in canonical form")
    decisions: list[Literal["allow", "deny", "grant", "standard"]]
    reasons: list[str] = Field(description="As in CheckResult.reason")
    bases: list[Basis | None] = Field(description="Only when denied or granted, else null")
    decision_ids: DecisionIdRange = Field(
        description="Consecutive ids: decode ``first`` (13 Crockford base-32 characters, a 64-bit "
        "number), add i, encode again; the client SDK does this for you"
    )


class CheckDefault(BaseModel):
    decision: Literal["allow", "standard"]
    reason: Literal["no-restriction", "no-reward"]


class CheckException(BaseModel):
    index: int = Field(description="The subject's position in the request, from 0")
    subject: str = Field(description="In canonical form")
    decision: Literal["deny", "grant"]
    reason: Literal[
        "restricted-by-list", "restricted-by-grade", "reward-by-list", "reward-by-grade"
    ]
    basis: Basis
    decision_id: str = Field(description="``decision_ids.first`` + ``index``")


class NormalisedSubject(BaseModel):
    index: int = Field(description="The subject's position in the request, from 0")
    subject: str = Field(description="The canonical form of the key sent there")


class CheckExceptions(BaseModel):
    """The answer to the columnar form with ``answers: "exceptions"``: every subject not listed
    in ``exceptions`` got ``default``."""

    purpose: str
    measure: str
    count: int = Field(description="How many subjects were asked about (and answers logged)")
    default: CheckDefault = Field(description="The answer of every subject not in exceptions")
    exceptions: list[CheckException] = Field(
        description="The answers that are not the default, in the order of subjects"
    )
    normalised: list[NormalisedSubject] = Field(
        description="The subjects whose canonical key is not the one sent, in order (empty if "
        "every key was sent canonical)"
    )
    decision_ids: DecisionIdRange = Field(
        description="Consecutive ids, one per subject, as in CheckColumns"
    )


class DecisionOut(BaseModel):
    decision_id: str
    at: str
    party: str
    party_name: str | None
    purpose: str
    subject: str
    measure: str
    decision: Literal["allow", "deny", "grant", "standard", "refused"]
    reason: str
    basis: Basis | None
    rulebooks: list[str]


class DecisionRetention(BaseModel):
    """How long the decision log keeps an answer (``serve --decision-retention``)."""

    months: int | None = Field(description="Months an answer is kept; null: without limit")
    deleted_before: str | None = Field(
        description="Answers made before this instant (UTC) are deleted, or about to be"
    )
    note: str


class DecisionPage(BaseModel):
    items: list[DecisionOut]
    next: str | None = Field(description="Pass as ``before`` for the next (older) page")
    retention: DecisionRetention
