"""HTTP routes: cases (thin: calls ``socialcredit.cases``). See ``docs/due-process.md``.

Roles:

* subject — ``POST /v1/me/objections``, ``POST /v1/me/records/{seq}/statement``,
  ``GET /v1/me/repairs/eligibility``, ``POST /v1/me/repairs``, ``GET /v1/me/cases``;
* provider — ``GET /v1/objections`` (about its records), ``POST /v1/objections/{id}:answer``;
* officer, reviewer (key scoped to the officer's own subject key) — ``GET /v1/cases`` (the queue,
  earliest deadline first), ``GET /v1/cases/{id}``, ``POST /v1/cases/{id}:confirm``,
  ``POST /v1/reviews:halt``, ``POST /v1/reviews:propose``, ``POST /v1/cases/{id}:lift``;
  officer only — ``:decide`` (repair), ``:extend`` (objection), ``:verify`` / ``:reject`` (tips);
* public — ``POST /v1/tips``;
* auditor — ``GET /v1/audit/actions``, ``GET /v1/cases``, ``GET /v1/cases/{id}``.

Every refusal is an RFC 9457 problem and is written to the access log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from socialcredit import ids
from socialcredit.cases import objections, repairs, reviews, tips
from socialcredit.cases.actions import (
    ACTIONS,
    CASE_TYPES,
    ActionFilter,
    case_json,
    get_case,
    list_actions,
    list_cases,
)
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.web.problems import ApiProblem, problem_responses
from socialcredit.web.routes import SECURITY, _json, need, rt_of
from socialcredit.web.runtime import Principal, Runtime

router = APIRouter()
_DOC: dict[str, Any] = {"openapi_extra": {"security": SECURITY}}
_WRITE = problem_responses(401, 403, 404, 409, 422)
_FORBIDDEN_RULES = {"not-furnisher", "own-case", "own-proposal", "same-reviewer"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectionIn(_In):
    record: int = Field(description="The record (entry seq) you dispute")
    grounds: str = Field(description="Why the record is wrong, in your words")
    evidence: str | None = Field(None, description="Your evidence, in full (forwarded as is)")


class StatementIn(_In):
    text: str = Field(description="Your statement on the record (at most 100 words)")


class RepairIn(_In):
    rulebook: str
    list: str
    statement: str = Field(description="What you did (obligations performed, commitment)")


class AnswerIn(_In):
    outcome: str = Field(description="confirm | correct | retract")
    reason: str
    changes: dict[str, Any] | None = Field(None, description="For correct: record fields")


class ReasonIn(_In):
    reason: str


class DecideIn(_In):
    approve: bool
    reason: str


class RejectIn(_In):
    reason: str
    duplicate: bool = False


class ListingIn(_In):
    subject: str
    rulebook: str
    list: str
    reason: str


class TipIn(_In):
    subject: str
    text: str
    kind: str | None = Field(None, description="The record kind the tip is about, if known")


def _refuse(rt: Runtime, request: Request, who: Principal, e: Exception) -> ApiProblem:
    if isinstance(e, NotFoundError):
        return rt.refuse(request, 404, "not-found", "not-found", str(e), who)
    assert isinstance(e, InputError)
    rules = {p.rule for p in e.problems}
    if rules & _FORBIDDEN_RULES:
        return rt.refuse(
            request,
            403,
            "forbidden",
            sorted(rules & _FORBIDDEN_RULES)[0],
            "you may not do this: see problems (nothing was changed)",
            who,
            problems=e.problems,
        )
    if isinstance(e, ConflictError):
        return rt.refuse(
            request, 409, "conflict", "conflict", "nothing was changed", who, problems=e.problems
        )
    return rt.refuse(
        request,
        422,
        "invalid-input",
        "invalid-input",
        f"{len(e.problems)} problem(s); nothing was changed",
        who,
        problems=e.problems,
    )


def _officer(rt: Runtime, request: Request, who: Principal) -> str:
    if not who.scope:
        raise rt.refuse(
            request,
            403,
            "forbidden",
            "officer-unscoped",
            f"a {who.role} key acts in cases only when scoped to the officer's own subject key "
            "(socialcredit keys create --role officer --scope cn-rid:...)",
            who,
        )
    return who.scope


def _today(rt: Runtime) -> dt.date:
    return rt.clock.now().date()


def _case_out(rt: Runtime, row: dict[str, Any], status: int = 200) -> Response:
    return _json(case_json(row, _today(rt)), status)


def _run(rt: Runtime, request: Request, who: Principal, fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        out = fn(*args, **kw)
    except (InputError, NotFoundError) as e:
        raise _refuse(rt, request, who, e) from None
    rt.after_write()
    return out


# ---------------------------------------------------------------------- subjects


@router.post(
    "/v1/me/objections",
    tags=["cases: subjects"],
    summary="Dispute one of your records: it is marked disputed at once; the furnisher must answer",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def object_to_record(
    request: Request, body: ObjectionIn, who: Principal = Depends(need("subject"))
) -> Response:
    rt = rt_of(request)
    case = _run(
        rt,
        request,
        who,
        objections.open_objection,
        rt.ledger,
        rt.status.rulebooks,
        who.scope,
        body.record,
        body.grounds,
        evidence=body.evidence,
    )
    return _case_out(rt, case, 201)


@router.post(
    "/v1/me/records/{seq}/statement",
    tags=["cases: subjects"],
    summary="Add your statement (at most 100 words) to one of your records",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def add_statement(
    request: Request, seq: int, body: StatementIn, who: Principal = Depends(need("subject"))
) -> Response:
    rt = rt_of(request)
    out = _run(rt, request, who, objections.add_statement, rt.ledger, who.scope, seq, body.text)
    return _json({"seq": out}, 201)


@router.get(
    "/v1/me/repairs/eligibility",
    tags=["cases: subjects"],
    summary="Whether you may apply for repair of a listing today, and from when",
    responses=problem_responses(401, 403, 404, 422),
    **_DOC,
)
def repair_eligibility(
    request: Request,
    rulebook: str = Query(...),
    list: str = Query(...),
    who: Principal = Depends(need("subject")),
) -> Response:
    rt = rt_of(request)
    try:
        el = repairs.repair_eligibility(
            rt.ledger, rt.status.rulebooks, str(who.scope), rulebook, list
        )
    except (InputError, NotFoundError) as e:
        raise _refuse(rt, request, who, e) from None
    return _json(el.as_dict())


@router.post(
    "/v1/me/repairs",
    tags=["cases: subjects"],
    summary="Apply for repair (credit restoration) of a listing",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def apply_for_repair(
    request: Request, body: RepairIn, who: Principal = Depends(need("subject"))
) -> Response:
    rt = rt_of(request)
    case = _run(
        rt,
        request,
        who,
        repairs.apply_for_repair,
        rt.ledger,
        rt.status.rulebooks,
        who.scope,
        body.rulebook,
        body.list,
        body.statement,
    )
    return _case_out(rt, case, 201)


@router.get(
    "/v1/me/cases",
    tags=["cases: subjects"],
    summary="Your cases (objections, repair applications, reviews of your listings, tips about you)",
    responses=problem_responses(401, 403),
    **_DOC,
)
def my_cases(request: Request, who: Principal = Depends(need("subject"))) -> Response:
    rt = rt_of(request)
    today = _today(rt)
    rows = list_cases(rt.engine, subject=who.scope)
    out = []
    for r in rows:
        item = case_json(r, today)
        if r["case_type"] == "tip":  # who reported a subject is not disclosed to it
            item["detail"] = {k: v for k, v in item["detail"].items() if k != "reporter"}
            item["opened_by"] = "public"
        out.append(item)
    return _json({"items": out})


# ---------------------------------------------------------------------- providers


@router.get(
    "/v1/objections",
    tags=["cases: providers"],
    summary="Objections about the records you furnished (open ones unless all=true)",
    responses=problem_responses(401, 403),
    **_DOC,
)
def provider_objections(
    request: Request,
    all: bool = Query(False),
    who: Principal = Depends(need("provider")),
) -> Response:
    rt = rt_of(request)
    rows = list_cases(rt.engine, case_type="objection", open_only=not all, authority_id=who.scope)
    today = _today(rt)
    return _json({"items": [case_json(r, today) for r in rows]})


@router.post(
    "/v1/objections/{case_id}:answer",
    tags=["cases: providers"],
    summary="Answer an objection: confirm, correct (with changes) or retract the record",
    responses=_WRITE,
    **_DOC,
)
def answer(
    request: Request, case_id: int, body: AnswerIn, who: Principal = Depends(need("provider"))
) -> Response:
    rt = rt_of(request)
    case = _run(
        rt,
        request,
        who,
        objections.answer_objection,
        rt.ledger,
        case_id,
        who.scope,
        body.outcome,
        body.reason,
        changes=body.changes,
    )
    return _case_out(rt, case)


# ---------------------------------------------------------------------- officers and reviewers

STAFF = ("officer", "reviewer", "auditor")


@router.get(
    "/v1/cases",
    tags=["cases: officers"],
    summary="The case queue, earliest deadline first (filters: type, state, subject, due)",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def case_queue(
    request: Request,
    type: str | None = Query(None, description="objection | repair | review | tip"),
    state: str | None = Query(None, description="open (default), answered, decided, halted, ..."),
    all: bool = Query(False, description="every state"),
    subject: str | None = Query(None),
    rulebook: str | None = Query(None),
    list: str | None = Query(None),
    due_before: dt.date | None = Query(None),
    limit: int = Query(200, ge=1, le=5000),
    who: Principal = Depends(need(*STAFF)),
) -> Response:
    rt = rt_of(request)
    problems = []
    if type is not None and type not in CASE_TYPES:
        problems.append(Problem("type", "unknown-type", type, f"one of {', '.join(CASE_TYPES)}"))
    key = None
    if subject is not None:
        try:
            key = ids.parse_key(subject).key
        except ids.IdError as e:
            problems.append(e.problem("subject"))
    if problems:
        raise rt.refuse(
            request, 422, "invalid-input", "invalid-input", "bad filter", who, problems=problems
        )
    if key is not None:
        rt.logged_read(request, who, key)
    rows = list_cases(
        rt.engine,
        subject=key,
        case_type=type,
        state=None if all else (state or "open"),
        rulebook_id=rulebook,
        list_id=list,
        due_before=due_before,
        limit=limit,
    )
    today = _today(rt)
    return _json({"items": [case_json(r, today) for r in rows]})


@router.get(
    "/v1/cases/{case_id}",
    tags=["cases: officers"],
    summary="One case",
    responses=problem_responses(401, 403, 404),
    **_DOC,
)
def one_case(request: Request, case_id: int, who: Principal = Depends(need(*STAFF))) -> Response:
    rt = rt_of(request)
    try:
        row = get_case(rt.engine, case_id)
    except NotFoundError as e:
        raise _refuse(rt, request, who, e) from None
    rt.logged_read(request, who, row["subject_key"])
    return _case_out(rt, row)


def _case_type(rt: Runtime, request: Request, who: Principal, case_id: int, want: str) -> None:
    try:
        row = get_case(rt.engine, case_id)
    except NotFoundError as e:
        raise _refuse(rt, request, who, e) from None
    if row["case_type"] != want:
        raise _refuse(rt, request, who, NotFoundError(f"case {case_id} is not a {want} case"))


@router.post(
    "/v1/cases/{case_id}:decide",
    tags=["cases: officers"],
    summary="Decide a repair application (approval ends the listing through the engine)",
    responses=_WRITE,
    **_DOC,
)
def decide(
    request: Request, case_id: int, body: DecideIn, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    _case_type(rt, request, who, case_id, "repair")
    case = _run(
        rt,
        request,
        who,
        repairs.decide_repair,
        rt.ledger,
        case_id,
        officer,
        body.approve,
        body.reason,
    )
    return _case_out(rt, case)


@router.post(
    "/v1/cases/{case_id}:extend",
    tags=["cases: officers"],
    summary="Extend a running objection once by 15 days (new evidence; at most 45 days in all)",
    responses=_WRITE,
    **_DOC,
)
def extend(
    request: Request, case_id: int, body: ReasonIn, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(
        rt, request, who, objections.extend_objection, rt.ledger, case_id, officer, body.reason
    )
    return _case_out(rt, case)


@router.post(
    "/v1/cases/{case_id}:confirm",
    tags=["cases: officers"],
    summary="Confirm a proposed listing (a second, different officer where four eyes apply)",
    responses=_WRITE,
    **_DOC,
)
def confirm(
    request: Request,
    case_id: int,
    body: ReasonIn,
    who: Principal = Depends(need("officer", "reviewer")),
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(
        rt,
        request,
        who,
        reviews.confirm_review,
        rt.ledger,
        rt.status.rulebooks,
        case_id,
        officer,
        body.reason,
    )
    return _case_out(rt, case)


@router.post(
    "/v1/reviews:halt",
    tags=["cases: officers"],
    summary="Halt an automated listing: withheld (no measures) until lifted; reason recorded",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def halt(
    request: Request, body: ListingIn, who: Principal = Depends(need("officer", "reviewer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(
        rt,
        request,
        who,
        reviews.halt_listing,
        rt.ledger,
        rt.status.rulebooks,
        body.subject,
        body.rulebook,
        body.list,
        officer,
        body.reason,
    )
    return _case_out(rt, case, 201)


@router.post(
    "/v1/reviews:propose",
    tags=["cases: officers"],
    summary="Propose a listing for human review (you cannot confirm your own proposal)",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def propose(
    request: Request, body: ListingIn, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(
        rt,
        request,
        who,
        reviews.propose_review,
        rt.ledger,
        rt.status.rulebooks,
        body.subject,
        body.rulebook,
        body.list,
        actor=officer,
        reason=body.reason,
    )
    if case is None:
        raise _refuse(
            rt,
            request,
            who,
            ConflictError(
                [Problem("list", "review-open", body.list, "a review case is already open")]
            ),
        )
    return _case_out(rt, case, 201)


@router.post(
    "/v1/cases/{case_id}:lift",
    tags=["cases: officers"],
    summary="Lift a halt",
    responses=_WRITE,
    **_DOC,
)
def lift(
    request: Request,
    case_id: int,
    body: ReasonIn,
    who: Principal = Depends(need("officer", "reviewer")),
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(rt, request, who, reviews.lift_halt, rt.ledger, case_id, officer, body.reason)
    return _case_out(rt, case)


@router.post(
    "/v1/cases/{case_id}:verify",
    tags=["cases: officers"],
    summary="Verify a tip (rewardable); a record must still be furnished by an authority",
    responses=_WRITE,
    **_DOC,
)
def verify(
    request: Request, case_id: int, body: ReasonIn, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(rt, request, who, tips.verify_tip, rt.ledger, case_id, officer, body.reason)
    return _case_out(rt, case)


@router.post(
    "/v1/cases/{case_id}:reject",
    tags=["cases: officers"],
    summary="Reject a tip (or mark it a duplicate); repeated rejections flag the reporter",
    responses=_WRITE,
    **_DOC,
)
def reject(
    request: Request, case_id: int, body: RejectIn, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    officer = _officer(rt, request, who)
    case = _run(
        rt,
        request,
        who,
        tips.reject_tip,
        rt.ledger,
        case_id,
        officer,
        body.reason,
        duplicate=body.duplicate,
    )
    return _case_out(rt, case)


# ---------------------------------------------------------------------- public and auditors


@router.post(
    "/v1/tips",
    tags=["cases: public"],
    summary="Report a tip about a subject (queued for an officer; it changes nothing by itself)",
    status_code=201,
    responses=_WRITE,
    **_DOC,
)
def submit_tip(request: Request, body: TipIn, who: Principal = Depends(need("public"))) -> Response:
    rt = rt_of(request)
    case = _run(
        rt,
        request,
        who,
        tips.submit_tip,
        rt.ledger,
        rt.status.rulebooks,
        f"public:{who.key_id}",
        body.subject,
        body.text,
        kind=body.kind,
    )
    return _json(
        {
            "case_id": case["case_id"],
            "state": case["state"],
            "deadline": case["deadline"].isoformat() if case["deadline"] else None,
        },
        201,
    )


@router.get(
    "/v1/audit/actions",
    tags=["auditors"],
    summary="Officer actions and case events from the hash-chained ledger, filtered",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def audit_actions(
    request: Request,
    actor: str | None = Query(None, description="an officer's subject key, system, an authority"),
    action: str | None = Query(None, description=", ".join(ACTIONS)),
    subject: str | None = Query(None),
    case: int | None = Query(None),
    since: dt.datetime | None = Query(None, description="recorded at or after (UTC)"),
    until: dt.datetime | None = Query(None, description="recorded before (UTC)"),
    after: int | None = Query(None, description="paging: entries after this seq"),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(need("auditor")),
) -> Response:
    rt = rt_of(request)
    key = None
    if subject is not None:
        try:
            key = ids.parse_key(subject).key
        except ids.IdError as e:
            raise rt.refuse(
                request,
                422,
                "invalid-input",
                "invalid-input",
                "bad filter",
                who,
                problems=[e.problem("subject")],
            ) from None
        rt.logged_read(request, who, key)

    def naive(t: dt.datetime | None) -> dt.datetime | None:
        if t is None or t.tzinfo is None:
            return t
        return t.astimezone(dt.UTC).replace(tzinfo=None)

    try:
        items = list_actions(
            rt.engine,
            ActionFilter(actor, action, key, case, naive(since), naive(until), after, limit),
        )
    except InputError as e:
        raise _refuse(rt, request, who, e) from None
    return _json({"items": items, "next": items[-1]["seq"] if len(items) == limit else None})
