"""The /v1 API. Thin: every route calls the rooms below (ledger, status, decision log).

Roles (``socialcredit keys create --role ...``):

* provider — ``POST /v1/records``, ``POST /v1/records:batch``, ``POST /v1/records/{seq}:correct``,
  ``:retract``, ``:overturn`` (for its own authority, record kinds it is accredited for);
* relying-party — ``POST /v1/checks`` (measures in its domains only);
* subject — ``GET /v1/me``, ``GET /v1/me/decisions`` (its own file, and who checked it);
* officer, reviewer — ``GET /v1/subjects/{subject}``;
* auditor — the above plus ``GET /v1/subjects/{subject}/decisions``, ``GET /v1/decisions``,
  ``GET /v1/audit/verify``;
* public — nothing yet beyond ``/healthz``.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from collections.abc import Callable, Container, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from socialcredit import ids
from socialcredit.cases.repairs import gated_status
from socialcredit.catalog import Measure
from socialcredit.decision_ids import decode_id, encode_id, encode_ids
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.ids.bulk import Scan, sift
from socialcredit.ledger import write_transaction
from socialcredit.ledger.schema import entries
from socialcredit.status.db import naive_utc
from socialcredit.status.decisions import Answers, Columns, Header, list_decisions
from socialcredit.status.index import answer
from socialcredit.status.parties import Party, get_party, list_parties, usage, usage_history
from socialcredit.status.quotas import Throttled, next_midnight
from socialcredit.web import metrics
from socialcredit.web.models import (
    BatchOut,
    CheckColumns,
    CheckExceptions,
    CheckRequest,
    CheckResponse,
    CorrectIn,
    DecisionPage,
    LineageIn,
    RecordIn,
    RecordsBatchIn,
    WriteOut,
)
from socialcredit.web.problems import ApiProblem, problem_responses
from socialcredit.web.runtime import Principal, Runtime, header_value

log = logging.getLogger(__name__)
router = APIRouter()
SECURITY: list[dict[str, list[str]]] = [{"apiKey": []}]
MAX_CHECKS = 10_000
MAX_BODY = 8 << 20  # bytes: 10,000 checks in the object form take about 1 MB
MAX_PROBLEMS = 200
STAFF = ("officer", "reviewer", "auditor")


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def need(*roles: str) -> Callable[[Request], Principal]:
    """A dependency: the caller's key, which must have one of ``roles`` (checked before the body)."""

    def dependency(request: Request) -> Principal:
        return rt_of(request).authenticate(request, roles)

    return dependency


def _json(obj: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(obj, default=str), status_code=status, media_type="application/json"
    )


# ---------------------------------------------------------------------- relying parties
# (first: routes are matched in order, and this is the hot one)

_CHECK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/CheckRequest"},
                        {"$ref": "#/components/schemas/CheckColumnsRequest"},
                    ]
                },
                "examples": {
                    "objects": {
                        "summary": "Any mix of subjects and measures",
                        "value": {
                            "purpose": "boarding: flight CA1234 on 2026-02-01",
                            "checks": [
                                {
                                    "subject": "cn-rid:11010519491231002X",
                                    "measure": "travel.flights",
                                }
                            ],
                        },
                    },
                    "columns": {
                        "summary": "Many subjects, one measure (answered in arrays)",
                        "value": {
                            "purpose": "manifest: flight CA1234 on 2026-02-01",
                            "measure": "travel.flights",
                            "subjects": ["cn-rid:11010519491231002X", "cn-rid:110105194912310021"],
                        },
                    },
                    "exceptions": {
                        "summary": "Many subjects, one measure: only the answers that are not the "
                        "default",
                        "value": {
                            "purpose": "manifest: flight CA1234 on 2026-02-01",
                            "measure": "travel.flights",
                            "subjects": ["cn-rid:11010519491231002X", "cn-rid:110105194912310021"],
                            "answers": "exceptions",
                        },
                    },
                },
            }
        },
    },
    "security": SECURITY,
}


def _purpose(doc: dict[str, Any], fields: tuple[str, ...], problems: list[Problem]) -> str:
    """The purpose, after reporting fields the body should not have."""
    for name in doc:
        if name not in fields:
            problems.append(Problem(name, "unknown-field", None, f"'{name}' is not a field"))
    purpose = doc.get("purpose")
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 200:
        problems.append(
            Problem(
                "purpose",
                "required",
                purpose if isinstance(purpose, str) else None,
                "say why you ask (1-200 characters); it is logged and shown to the subject",
            )
        )
        return ""
    return purpose.strip()


def _canonical(
    subjects: list[str],
    field: str,
    found: list[tuple[int, int, Problem]],
    text: str | None = None,
    placeholders: Container[int] = (),
) -> tuple[list[int], Scan | None]:
    """Make ``subjects`` canonical in place; an identifier that is not (the empty string
    included) becomes "" and a problem on ``field`` (formatted with its index). ``placeholders``
    are the positions of the "" the caller put in place of something that was not a string,
    already reported. Keys already canonical are recognised together (:func:`sift`: a batch's
    cost is otherwise its identifier checks); the rest are for :func:`ids.parse_key` to
    normalise or refuse. ``text`` is the subjects joined by newlines, if the caller has it.
    Returns the positions given to :func:`ids.parse_key` (the only ones whose key may have been
    rewritten), and the scan of a batch (each canonical key's code, for the index), None for a
    handful of keys."""
    others, keys = sift(subjects, text)
    for i in others:
        s = subjects[i]
        if not s and i in placeholders:
            continue
        try:
            subjects[i] = ids.parse_key(s).key
        except ids.IdError as e:
            subjects[i] = ""
            found.append((i, 0, dataclasses.replace(e.problem(field.format(i)), value=s)))
    return others, keys


def _report(found: list[tuple[int, int, Problem]], problems: list[Problem]) -> None:
    """Problems found per item, in the order of the items."""
    if found:
        found.sort(key=lambda f: (f[0], f[1]))
        problems.extend(p for _, _, p in found[: max(0, MAX_PROBLEMS - len(problems))])


def _too_many(n: int) -> None:
    if n > MAX_CHECKS:
        raise ApiProblem(413, "too-large", f"{n} checks in one request; at most {MAX_CHECKS}")


def _parse_checks(
    rt: Runtime, doc: dict[str, Any]
) -> tuple[str, list[tuple[str, str, Measure]], list[Problem]]:
    """The object form: ``{"purpose", "checks": [{"subject", "measure"}, ...]}``."""
    problems: list[Problem] = []
    purpose = _purpose(doc, ("purpose", "checks"), problems)
    checks = doc.get("checks")
    if not isinstance(checks, list) or not checks:
        problems.append(Problem("checks", "required", None, "give a non-empty list of checks"))
        return purpose, [], problems
    _too_many(len(checks))
    measures = rt.catalogue.measures
    # One pass for shape and measures, then the subjects together.
    found: list[tuple[int, int, Problem]] = []
    subjects: list[str] = []
    metas: list[Measure | None] = []
    placeholders: set[int] = set()  # items whose subject was not a string (reported)
    for i, c in enumerate(checks):
        if len(found) >= MAX_PROBLEMS:
            break
        if type(c) is not dict:
            found.append((i, 0, Problem(f"checks[{i}]", "type:object", None, "must be an object")))
            placeholders.add(i)
            subjects.append("")
            metas.append(None)
            continue
        s = c.get("subject")
        m = c.get("measure")
        if type(s) is not str:
            found.append((i, 0, Problem(f"checks[{i}].subject", "required", None, "SCHEME:VALUE")))
            placeholders.add(i)
            s = ""
        meas = measures.get(m) if type(m) is str else None
        if meas is None:
            found.append(
                (
                    i,
                    1,
                    Problem(
                        f"checks[{i}].measure",
                        "unknown-measure",
                        m if isinstance(m, str) else None,
                        "not a measure in the catalogue",
                    ),
                )
            )
        if len(c) > 2:
            for name in c:
                if name not in ("subject", "measure"):
                    found.append(
                        (i, 2, Problem(f"checks[{i}].{name}", "unknown-field", None, "not a field"))
                    )
        subjects.append(s)
        metas.append(meas)
    _canonical(subjects, "checks[{}].subject", found, placeholders=placeholders)
    _report(found, problems)
    items: list[tuple[str, str, Measure]] = [
        (key, meas.id, meas)
        for key, meas in zip(subjects, metas, strict=True)
        if meas is not None and key
    ]
    return purpose, items, problems


ANSWER_FORMS = ("all", "exceptions")


@dataclasses.dataclass(frozen=True, slots=True)
class ColumnsIn:
    """A columnar request, parsed: ``keys`` canonical (in place of what was sent), ``scanned``
    as :func:`_canonical` returns it, and for ``answers="exceptions"`` the positions whose key
    is not the one sent (``normalised``; None for ``"all"``, which sends every key anyway)."""

    purpose: str
    measure: Measure | None
    keys: list[str]
    scanned: Scan | None
    normalised: list[int] | None


def _parse_columns(rt: Runtime, doc: dict[str, Any]) -> tuple[ColumnsIn, list[Problem]]:
    """The columnar form: ``{"purpose", "measure", "subjects": [...], "answers"?}``, one measure
    for all; ``answers`` is "all" (the default) or "exceptions" (see :func:`_answer_columns`)."""
    problems: list[Problem] = []
    purpose = _purpose(doc, ("purpose", "measure", "subjects", "answers"), problems)
    m = doc.get("measure")
    meas = rt.catalogue.measures.get(m) if type(m) is str else None
    if meas is None:
        problems.append(
            Problem(
                "measure",
                "unknown-measure",
                m if isinstance(m, str) else None,
                "not a measure in the catalogue",
            )
        )
    form = doc.get("answers", "all")
    if form not in ANSWER_FORMS:  # no JSON value but these strings equals one
        problems.append(
            Problem(
                "answers",
                "enum",
                form if isinstance(form, str) else None,
                '"all" (every answer) or "exceptions" (only the answers that are not the '
                "measure's default)",
            )
        )
    sent = doc.get("subjects")
    if not isinstance(sent, list) or not sent:
        problems.append(Problem("subjects", "required", None, "give a non-empty list of subjects"))
        return ColumnsIn(purpose, meas, [], None, None), problems
    _too_many(len(sent))
    found: list[tuple[int, int, Problem]] = []
    placeholders: set[int] = set()
    try:  # joining is the type check (it refuses anything but strings), and the scan's input
        text: str | None = "\n".join(sent)
        subjects = list(sent)
    except TypeError:
        text = None
        for i, s in enumerate(sent):
            if type(s) is not str:
                found.append((i, 0, Problem(f"subjects[{i}]", "type:string", None, "SCHEME:VALUE")))
                placeholders.add(i)
        subjects = [s if type(s) is str else "" for s in sent]
    others, scanned = _canonical(subjects, "subjects[{}]", found, text, placeholders)
    _report(found, problems)
    # only the keys given to parse_key can differ from what was sent: compare those alone
    normalised = [i for i in others if subjects[i] != sent[i]] if form == "exceptions" else None
    return ColumnsIn(purpose, meas, subjects, scanned, normalised), problems


@router.post(
    "/v1/checks",
    tags=["relying parties"],
    summary="Eligibility checks: may these subjects receive these services?",
    response_model=CheckResponse | CheckColumns | CheckExceptions,
    responses=problem_responses(400, 401, 403, 413, 422, 429, 503),
    openapi_extra=_CHECK_BODY,
)
async def checks(request: Request) -> Response:
    """Two forms of body. **Objects** (`checks`: a list of `{subject, measure}`): any mix;
    answered as `results`, one object per check. **Columns** (`measure` and `subjects`: many
    subjects, one measure, e.g. a passenger list): answered as arrays in the order of `subjects`
    (`decisions`, `reasons`, `bases`) and a range of consecutive decision ids; with `answers:
    "exceptions"`, only the answers that are not the measure's default (`exceptions`, each with
    its index) and the subjects whose key was normalised. Every answer is in the decision log
    before the response is sent; nothing is answered if any check is invalid or outside the
    party's domains, or if the answers would take the party past its daily limit or its rate
    (429)."""
    # Served from the app's lane (ServiceApp): this route is its entry in the schema.
    rt = rt_of(request)
    who = await rt.authenticate_async(request, ("relying-party",))
    metrics.CHECK_REQUESTS.inc()
    body = await _body(request, who)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise await rt.refuse_async(
            request, 400, "malformed-json", "malformed-json", f"not valid JSON: {e}", who
        ) from None
    if not isinstance(doc, dict):
        raise await rt.refuse_async(
            request,
            422,
            "invalid-input",
            "invalid-input",
            "1 problem(s); nothing was answered",
            who,
            problems=[Problem("body", "type:object", None, "the body must be a JSON object")],
        )
    columns = "subjects" in doc
    if columns:
        cols, problems = _parse_columns(rt, doc)
        purpose = cols.purpose
    else:
        purpose, items, problems = _parse_checks(rt, doc)
    if problems:
        raise await rt.refuse_async(
            request,
            422,
            "invalid-input",
            "invalid-input",
            f"{len(problems)} problem(s); nothing was answered",
            who,
            problems=problems,
        )
    assert who.scope is not None
    try:
        party = rt.party(who.scope)
    except NotFoundError:
        raise await rt.refuse_async(
            request, 403, "forbidden", "unknown-party", f"no relying party '{who.scope}'", who
        ) from None
    if columns:
        meas = cols.measure
        assert meas is not None
        if meas.domain in party.domains:
            return await _answer_columns(rt, request, who, party, cols, meas)
        items = [(key, meas.id, meas) for key in cols.keys]
    at = naive_utc(rt.clock.now())
    header: Header = (at, party.party_id, who.key_id, purpose, rt.rulebook_refs)
    outside = [i for i, it in enumerate(items) if it[2].domain not in party.domains]
    if outside:
        raise await _refuse_outside(rt, request, who, party, header, items, outside, columns)
    subjects = rt.index.subjects
    results: list[dict[str, Any]] = []
    answers: list[tuple[str, str, str, str, str | None]] = []
    for key, m, meas in items:
        per = subjects.get(key)
        hit = None if per is None else per.get(m)
        decision, reason = answer(meas.type == "sanction", hit)
        res: dict[str, Any] = {"subject": key, "measure": m, "decision": decision, "reason": reason}
        if hit is not None:
            res["basis"] = hit.basis
        results.append(res)
        answers.append((key, m, decision, reason, None if hit is None else hit.basis_json))
    decision_ids = await _log(rt, request, who, party, header, answers)
    for res, text in zip(results, encode_ids(decision_ids), strict=True):
        res["decision_id"] = text
    if len(answers) == 1:
        _CHECKS[answers[0][2]].inc()
    else:
        for decision, count in collections.Counter(a[2] for a in answers).items():
            _CHECKS[decision].inc(count)
    return Response(
        orjson.dumps({"purpose": purpose, "results": results}), media_type="application/json"
    )


async def _body(request: Request, who: Principal) -> bytes:
    """The request body, refused (413) past ``MAX_BODY`` bytes without reading the rest. Read from
    the ASGI messages directly (Starlette's ``request.stream()`` is an async generator, a few
    microseconds a request more on the check lane)."""
    declared = header_value(request, b"content-length")
    chunks: list[bytes] = []
    size = 0
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        size = int(declared)
    else:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                break
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    if size > MAX_BODY:
        raise await rt_of(request).refuse_async(
            request, 413, "too-large", "too-large", f"the body is over {MAX_BODY:,} bytes", who
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_CHECKS = {d: metrics.CHECKS.labels(d) for d in ("allow", "deny", "grant", "standard")}


async def _log(
    rt: Runtime,
    request: Request,
    who: Principal,
    party: Party,
    header: Header,
    answers: Answers,
) -> Sequence[int]:
    """The answers' decision ids, once durably logged: refused (429, logged) if they would take
    the party past its daily limit or its rate, 503 if the log cannot be written."""
    asked = len(answers)
    over = rt.quotas.admit(party, asked, header[0])
    if over is not None:
        if isinstance(over, Throttled):
            slug, rule, wait = "rate-limited", "rate", over.retry_after
        else:
            slug, rule = "quota-exceeded", "quota"
            wait = (over.resets_at - header[0]).total_seconds()
        raise await rt.refuse_async(
            request,
            429,
            slug,
            rule,
            over.detail(),
            who,
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
            extra=over.as_dict(),
        )
    logged = False
    try:
        async with request.app.state.inflight:
            ids = await rt.log.submit_answers_async(header, answers)
            logged = True
            return ids
    except Exception:
        log.exception("decision log")
        raise ApiProblem(
            503,
            "unavailable",
            "the decision log could not be written, so nothing was answered; retry",
            headers={"Retry-After": "1"},
        ) from None
    finally:
        rt.quotas.settle(party, asked, header[0], logged=logged)


async def _answer_columns(
    rt: Runtime, request: Request, who: Principal, party: Party, cols: ColumnsIn, meas: Measure
) -> Response:
    """The columnar answer: one array per field, in the order of ``subjects``; the decision ids
    are consecutive, ``first`` + i for the i-th subject. With ``answers="exceptions"``
    (``cols.normalised`` set), only the answers that are not the measure's default (every hit
    of the index: a measure in force is a deny or a grant), each with its index and id, and the
    keys that are not the ones sent: for a passenger list, a few entries instead of thousands,
    built by a loop over the hits alone. Either way every answer is logged, the same way."""
    keys = cols.keys
    m = meas.id
    sanction = meas.type == "sanction"
    default, default_reason = answer(sanction, None)
    n = len(keys)
    logged: list[tuple[int, str, str, str | None]] = []
    hits = rt.index.find(keys, m, cols.scanned)
    for i, hit in hits:
        decision, reason = answer(sanction, hit)
        logged.append((i, decision, reason, hit.basis_json))
    at = naive_utc(rt.clock.now())
    header: Header = (at, party.party_id, who.key_id, cols.purpose, rt.rulebook_refs)
    decision_ids = await _log(
        rt, request, who, party, header, Columns.of(keys, m, default, default_reason, logged)
    )
    _CHECKS[default].inc(n - len(hits))
    if hits:  # every hit has the same decision (deny for a sanction, grant for a reward)
        _CHECKS[logged[0][1]].inc(len(hits))
    id_range = {"first": encode_id(decision_ids[0]), "count": n}
    if cols.normalised is not None:
        # ids of one commit share their first characters: together, ~2.5x faster than one by one
        texts = encode_ids([decision_ids[i] for i, _ in hits])
        doc: dict[str, Any] = {
            "purpose": cols.purpose,
            "measure": m,
            "count": n,
            "default": {"decision": default, "reason": default_reason},
            "exceptions": [
                {
                    "index": i,
                    "subject": keys[i],
                    "decision": decision,
                    "reason": reason,
                    "basis": hit.basis,
                    "decision_id": text,
                }
                for (i, hit), (_, decision, reason, _), text in zip(
                    hits, logged, texts, strict=True
                )
            ],
            "normalised": [{"index": i, "subject": keys[i]} for i in cols.normalised],
            "decision_ids": id_range,
        }
        return Response(orjson.dumps(doc), media_type="application/json")
    decisions = [default] * n
    reasons = [default_reason] * n
    bases: list[dict[str, Any] | None] = [None] * n
    for (i, hit), (_, decision, reason, _) in zip(hits, logged, strict=True):
        decisions[i], reasons[i], bases[i] = decision, reason, hit.basis
    return Response(
        orjson.dumps(
            {
                "purpose": cols.purpose,
                "measure": m,
                "subjects": keys,
                "decisions": decisions,
                "reasons": reasons,
                "bases": bases,
                "decision_ids": id_range,
            }
        ),
        media_type="application/json",
    )


async def _refuse_outside(
    rt: Runtime,
    request: Request,
    who: Principal,
    party: Party,
    header: Header,
    items: list[tuple[str, str, Measure]],
    outside: list[int],
    columns: bool,
) -> ApiProblem:
    """Nothing is answered when any check is outside the party's domains; every check is logged
    as refused."""
    bad = set(outside)
    answers = [
        (key, m, "refused", "measure-outside-domain" if i in bad else "request-refused", None)
        for i, (key, m, _) in enumerate(items)
    ]
    problems = (
        [
            Problem(
                "measure",
                "outside-domain",
                items[0][1],
                f"'{items[0][1]}' is a {items[0][2].domain} measure",
            )
        ]
        if columns
        else [
            Problem(
                f"checks[{i}].measure",
                "outside-domain",
                items[i][1],
                f"'{items[i][1]}' is a {items[i][2].domain} measure",
            )
            for i in outside[:MAX_PROBLEMS]
        ]
    )
    exc, access = rt.refusal(
        request,
        403,
        "forbidden",
        "outside-domain",
        f"relying party '{party.party_id}' may ask only about measures in "
        f"{', '.join(sorted(party.domains))}; nothing was answered (the refusal is logged)",
        who,
        problems=problems,
    )
    await rt.log.submit_async([(*header[:4], *a, header[4]) for a in answers], [access])
    return exc


# ---------------------------------------------------------------------- providers


def _write_refusal(
    rt: Runtime, request: Request, who: Principal, e: InputError | NotFoundError
) -> ApiProblem:
    if isinstance(e, NotFoundError):
        return rt.refuse(request, 404, "not-found", "not-found", str(e), who)
    rules = {p.rule for p in e.problems}
    if rules & {"not-accredited", "not-furnisher"}:
        return rt.refuse(
            request,
            403,
            "forbidden",
            "not-accredited",
            f"authority '{who.scope}' may not do this: see problems",
            who,
            problems=e.problems,
        )
    if isinstance(e, ConflictError):
        return rt.refuse(
            request, 409, "conflict", "conflict", "nothing was stored", who, problems=e.problems
        )
    return rt.refuse(
        request,
        422,
        "invalid-input",
        "invalid-input",
        f"{len(e.problems)} problem(s); nothing was stored",
        who,
        problems=e.problems,
    )


@router.post(
    "/v1/records",
    tags=["providers"],
    summary="Furnish one record (idempotent by the authority's reference)",
    status_code=201,
    response_model=WriteOut,
    responses={
        200: {"description": "Already stored (same reference, same content)", "model": WriteOut},
        **problem_responses(401, 403, 409, 422),
    },
    openapi_extra={"security": SECURITY},
)
def furnish(
    request: Request, body: RecordIn, who: Principal = Depends(need("provider"))
) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    try:
        out = rt.ledger.furnish(who.scope, body.model_dump(exclude_unset=True))
    except (InputError, NotFoundError) as e:
        raise _write_refusal(rt, request, who, e) from None
    metrics.RECORDS.labels(out.status).inc()
    if out.status == "stored":
        rt.after_write()
    return _json({"seq": out.seq, "status": out.status}, 201 if out.status == "stored" else 200)


@router.post(
    "/v1/records:batch",
    tags=["providers"],
    summary="Furnish many records in one transaction (all or nothing)",
    response_model=BatchOut,
    responses=problem_responses(401, 403, 409, 422),
    openapi_extra={"security": SECURITY},
)
def furnish_batch(
    request: Request, body: RecordsBatchIn, who: Principal = Depends(need("provider"))
) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    try:
        validator = rt.ledger.validator(who.scope)
        drafts: list[dict[str, Any]] = []
        problems: list[Problem] = []
        for i, rec in enumerate(body.records):
            draft, found = validator.validate(rec.model_dump(exclude_unset=True))
            if draft is None:
                problems.extend(
                    dataclasses.replace(p, field=f"records[{i}].{p.field}") for p in found
                )
            else:
                drafts.append(draft)
        if problems:
            raise InputError(problems)
        with write_transaction(rt.ledger.engine) as conn:
            result = rt.ledger.append(conn, drafts)
            if result.conflicts:
                raise ConflictError(
                    dataclasses.replace(p, field=f"records[{i}].{p.field}")
                    for i, p in result.conflicts
                )
    except (InputError, NotFoundError) as e:
        raise _write_refusal(rt, request, who, e) from None
    items: list[dict[str, Any]] = sorted(
        [{"index": i, "seq": s, "status": "stored"} for i, s in result.stored]
        + [{"index": i, "seq": s, "status": "duplicate"} for i, s in result.duplicates],
        key=lambda d: d["index"],
    )
    metrics.RECORDS.labels("stored").inc(len(result.stored))
    metrics.RECORDS.labels("duplicate").inc(len(result.duplicates))
    if result.stored:
        rt.after_write()
    return _json(
        {"stored": len(result.stored), "duplicates": len(result.duplicates), "results": items}
    )


def _lineage(
    request: Request,
    who: Principal,
    seq: int,
    op: str,
    body: LineageIn,
    changes: dict[str, Any] | None = None,
) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    ref = body.ref.strip()
    with rt.engine.connect() as conn:
        seen = conn.execute(
            sa.select(entries.c.seq, entries.c.op, entries.c.target_seq).where(
                entries.c.authority_id == who.scope, entries.c.authority_ref == ref
            )
        ).first()
    if seen is not None:
        if seen.op == op and seen.target_seq == seq:
            return _json({"seq": seen.seq, "status": "duplicate"})
        raise _write_refusal(
            rt,
            request,
            who,
            ConflictError(
                [
                    Problem(
                        "ref",
                        "conflict",
                        ref,
                        f"reference '{ref}' is already entry {seen.seq} ({seen.op} of "
                        f"{seen.target_seq}); use a new reference",
                    )
                ]
            ),
        )
    try:
        if op == "correct":
            out = rt.ledger.correct(who.scope, seq, ref, changes or {}, body.reason)
        elif op == "retract":
            out = rt.ledger.retract(who.scope, seq, ref, body.reason)
        else:
            out = rt.ledger.overturn(who.scope, seq, ref, body.reason)
    except (InputError, NotFoundError) as e:
        raise _write_refusal(rt, request, who, e) from None
    metrics.RECORDS.labels(op).inc()
    rt.after_write()
    return _json({"seq": out.seq, "status": out.status}, 201 if out.status == "stored" else 200)


_LINEAGE_DOC: dict[str, Any] = {
    "tags": ["providers"],
    "status_code": 201,
    "response_model": WriteOut,
    "responses": problem_responses(401, 403, 404, 409, 422),
    "openapi_extra": {"security": SECURITY},
}


@router.post("/v1/records/{seq}:correct", summary="Correct a record you furnished", **_LINEAGE_DOC)
def correct(
    request: Request, seq: int, body: CorrectIn, who: Principal = Depends(need("provider"))
) -> Response:
    return _lineage(request, who, seq, "correct", body, body.changes)


@router.post("/v1/records/{seq}:retract", summary="Retract a record you furnished", **_LINEAGE_DOC)
def retract(
    request: Request, seq: int, body: LineageIn, who: Principal = Depends(need("provider"))
) -> Response:
    return _lineage(request, who, seq, "retract", body)


@router.post(
    "/v1/records/{seq}:overturn",
    summary="Overturn a record (its furnisher, or a court)",
    **_LINEAGE_DOC,
)
def overturn(
    request: Request, seq: int, body: LineageIn, who: Principal = Depends(need("provider"))
) -> Response:
    return _lineage(request, who, seq, "overturn", body)


# ---------------------------------------------------------------------- subjects and staff


def _explain(rt: Runtime, st: Any, rb: Any, views: Sequence[Any]) -> dict[str, Any]:
    try:
        from socialcredit.engine.explain import explain
    except ImportError:  # the explainer is optional
        out: dict[str, Any] = st.as_dict()
        return out
    try:
        return explain(st, rb, {v.record_id: v.as_dict(history=False) for v in views}, rt.catalogue)
    except Exception:
        log.exception("explain failed for %s", st.subject)
        fallback: dict[str, Any] = st.as_dict()
        fallback["explanation_error"] = "the explanation could not be built; the status is shown"
        return fallback


def subject_file(rt: Runtime, key: str) -> dict[str, Any]:
    """A subject's whole file: records, status with explanations, history of status."""
    views = rt.ledger.subject_records(key)
    today = rt.clock.now().date()
    statuses = []
    for rb in rt.status.rulebooks:
        # as the live status has it: listings awaiting human review (or halted) are withheld
        st, withheld = gated_status(rt.ledger, rb, key, today)
        statuses.append(
            {
                "rulebook": rb.ref,
                "explanation": _explain(rt, st, rb, views),
                "withheld": withheld,
            }
        )
    return {
        "subject": key,
        "as_of": today.isoformat(),
        "records": [v.as_dict() for v in views],
        "status": statuses,
        "history": rt.status.history(key),
    }


def _subject_key(rt: Runtime, request: Request, who: Principal, raw: str) -> str:
    try:
        return ids.parse_key(raw).key
    except ids.IdError as e:
        raise rt.refuse(
            request,
            422,
            "invalid-input",
            "invalid-input",
            "not a subject key",
            who,
            problems=[dataclasses.replace(e.problem("subject"), value=raw)],
        ) from None


def _own_or_staff(
    rt: Runtime, request: Request, who: Principal, key: str, staff: Sequence[str]
) -> None:
    if who.role == "subject":
        if who.scope != key:
            raise rt.refuse(
                request,
                403,
                "forbidden",
                "other-subject",
                "a subject key reads only its own subject's file",
                who,
                subject=key,
            )
        return
    if who.role not in staff:
        raise rt.refuse(
            request,
            403,
            "forbidden",
            "role",
            f"a {who.role} key cannot read this",
            who,
            subject=key,
        )
    rt.logged_read(request, who, key)


def _page(rt: Runtime, items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page of decisions, and how long the log keeps them (the subject is told)."""
    return {
        "items": items,
        "next": items[-1]["decision_id"] if len(items) == limit else None,
        "retention": rt.decision_retention.describe(rt.clock.now()),
    }


def _before(rt: Runtime, request: Request, who: Principal, before: str | None) -> int | None:
    if before is None:
        return None
    try:
        return decode_id(before)
    except ValueError as e:
        raise rt.refuse(
            request,
            422,
            "invalid-input",
            "invalid-input",
            str(e),
            who,
            problems=[Problem("before", "format", before, str(e))],
        ) from None


_READ_DOC: dict[str, Any] = {"openapi_extra": {"security": SECURITY}}


@router.get(
    "/v1/me",
    tags=["subjects"],
    summary="Your own file: records, status with explanations, status history",
    responses=problem_responses(401, 403),
    **_READ_DOC,
)
def me(request: Request, who: Principal = Depends(need("subject"))) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    return _json(subject_file(rt, who.scope))


@router.get(
    "/v1/me/decisions",
    tags=["subjects"],
    summary="Every eligibility decision made about you (who asked, why, what they were told)",
    response_model=DecisionPage,
    responses=problem_responses(401, 403, 422),
    **_READ_DOC,
)
def my_decisions(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = Query(None, description="A decision id: list older ones"),
    who: Principal = Depends(need("subject")),
) -> Response:
    rt = rt_of(request)
    items = list_decisions(
        rt.engine, subject=who.scope, before=_before(rt, request, who, before), limit=limit
    )
    return _json(_page(rt, items, limit))


@router.get(
    "/v1/subjects/{subject}",
    tags=["staff"],
    summary="A subject's file (officers, reviewers, auditors; a subject for itself)",
    responses=problem_responses(401, 403, 422),
    **_READ_DOC,
)
def subject(
    request: Request, subject: str, who: Principal = Depends(need(*STAFF, "subject"))
) -> Response:
    rt = rt_of(request)
    key = _subject_key(rt, request, who, subject)
    _own_or_staff(rt, request, who, key, STAFF)
    return _json(subject_file(rt, key))


@router.get(
    "/v1/subjects/{subject}/decisions",
    tags=["staff"],
    summary="Decisions about a subject (auditors; a subject for itself)",
    response_model=DecisionPage,
    responses=problem_responses(401, 403, 422),
    **_READ_DOC,
)
def subject_decisions(
    request: Request,
    subject: str,
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = Query(None),
    who: Principal = Depends(need("auditor", "subject")),
) -> Response:
    rt = rt_of(request)
    key = _subject_key(rt, request, who, subject)
    _own_or_staff(rt, request, who, key, ("auditor",))
    items = list_decisions(
        rt.engine, subject=key, before=_before(rt, request, who, before), limit=limit
    )
    return _json(_page(rt, items, limit))


@router.get(
    "/v1/decisions",
    tags=["auditors"],
    summary="The decision log, newest first, filtered by subject and/or relying party",
    response_model=DecisionPage,
    responses=problem_responses(401, 403, 422),
    **_READ_DOC,
)
def decisions(
    request: Request,
    subject: str | None = Query(None),
    party: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = Query(None),
    who: Principal = Depends(need("auditor")),
) -> Response:
    rt = rt_of(request)
    key = _subject_key(rt, request, who, subject) if subject is not None else None
    if key is not None:
        rt.logged_read(request, who, key)
    items = list_decisions(
        rt.engine,
        subject=key,
        party=party,
        before=_before(rt, request, who, before),
        limit=limit,
    )
    return _json(_page(rt, items, limit))


@router.get(
    "/v1/parties",
    tags=["auditors"],
    summary="Relying parties: their domains, limits and answers today (UTC)",
    responses=problem_responses(401, 403),
    **_READ_DOC,
)
def parties(request: Request, who: Principal = Depends(need(*STAFF))) -> Response:
    rt = rt_of(request)
    today = naive_utc(rt.clock.now()).date()
    used = usage(rt.engine, today)
    items = [
        {**p.as_dict(), "used_today": used.get(p.party_id, 0)} for p in list_parties(rt.engine)
    ]
    return _json({"day": today.isoformat(), "items": items})


@router.get(
    "/v1/parties/{party_id}/usage",
    tags=["relying parties", "auditors"],
    summary="A relying party's answers per day (UTC), oldest first, with its limits",
    responses=problem_responses(401, 403, 404, 422),
    **_READ_DOC,
)
def party_usage(
    request: Request,
    party_id: str,
    days: int = Query(14, ge=1, le=366),
    who: Principal = Depends(need("relying-party", *STAFF)),
) -> Response:
    """Staff read any party's; a relying party its own."""
    rt = rt_of(request)
    if who.role == "relying-party" and who.scope != party_id:
        raise rt.refuse(
            request,
            403,
            "forbidden",
            "scope",
            f"a relying party's key reads only its own party's usage ('{who.scope}')",
            who,
        )
    party = get_party(rt.engine, party_id)
    history = usage_history(rt.engine, party_id, days, naive_utc(rt.clock.now()).date())
    return _json(
        {**party.as_dict(), "days": [{"day": d.isoformat(), "answers": n} for d, n in history]}
    )


@router.get(
    "/v1/audit/verify",
    tags=["auditors"],
    summary="Walk the ledger's hash chain and report the first bad entry, if any",
    responses=problem_responses(401, 403),
    **_READ_DOC,
)
def audit_verify(request: Request, who: Principal = Depends(need("auditor"))) -> Response:
    rt = rt_of(request)
    return _json(dataclasses.asdict(rt.ledger.verify()))


@router.get(
    "/v1/whoami",
    tags=["keys"],
    summary="The role and scope of the key you send (a relying party's: its limits too)",
    responses=problem_responses(401),
    **_READ_DOC,
)
def whoami(
    request: Request,
    who: Principal = Depends(need("provider", "relying-party", "subject", *STAFF, "public")),
) -> Response:
    doc: dict[str, Any] = {"key_id": who.key_id, "role": who.role, "scope": who.scope}
    if who.role == "relying-party" and who.scope is not None:
        doc["quota"] = _quota(rt_of(request), who.scope)
    return _json(doc)


def _quota(rt: Runtime, party_id: str) -> dict[str, Any]:
    """A relying party's limits and the answers counted today, as this worker holds them (the
    database's count if it holds none)."""
    try:
        party = rt.party(party_id)
    except NotFoundError:
        return {
            "daily_limit": None,
            "used_today": 0,
            "remaining": None,
            "resets_at": None,
            "rate_limit": None,
        }
    today = naive_utc(rt.clock.now()).date()
    used = rt.quotas.used(party_id, today)
    if used is None:
        used = usage(rt.engine, today, [party_id]).get(party_id, 0)
    limit = party.daily_limit
    return {
        "daily_limit": limit,
        "used_today": used,
        "remaining": None if limit is None else max(0, limit - used),
        "resets_at": next_midnight(today).isoformat() + "Z",
        "rate_limit": party.rate_limit,
    }


__all__ = ["CheckRequest", "router"]
