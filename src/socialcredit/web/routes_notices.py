"""HTTP routes: notices, contacts, relying-party webhooks and subject access (thin: calls the rooms).

* subject — ``GET /v1/me/file`` (the whole file), ``GET /v1/me/notices`` (the inbox, every notice
  whatever became of its delivery), ``GET /v1/me/notices/{id}``, ``GET|PUT /v1/me/contact``;
* officer, reviewer, auditor — ``GET /v1/subjects/{subject}/file`` and ``.../notices`` (each read
  is logged and shown to the subject in its file's access log); a subject key may use these for
  itself only (another subject: 403, logged);
* relying-party — ``GET /v1/party/notices`` (correction notices), ``GET|PUT /v1/party/webhook``;
* officer, auditor — ``GET /v1/notices/deliveries`` (e.g. ``?state=dead``); officer —
  ``POST /v1/notices/deliveries/{id}:redrive``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from socialcredit.cases import delivery
from socialcredit.cases.access import subject_file
from socialcredit.cases.notices import KINDS, get_notice, list_notices
from socialcredit.errors import InputError, Problem
from socialcredit.web.problems import problem_responses
from socialcredit.web.routes import SECURITY, _json, _own_or_staff, _subject_key, need, rt_of
from socialcredit.web.runtime import Principal, Runtime

router = APIRouter()
_DOC: dict[str, Any] = {"openapi_extra": {"security": SECURITY}}
FILE_READERS = ("officer", "reviewer", "auditor")


class ContactIn(BaseModel):
    """How you want to be told (besides the inbox, which always has every notice)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "email": "zhang.san@example.org",
                "webhook_url": "https://example.org/hooks/socialcredit",
                "webhook_secret": "a-long-random-secret-of-yours",
            }
        },
    )
    email: str | None = Field(None, max_length=254)
    webhook_url: str | None = Field(None, max_length=500)
    webhook_secret: str | None = Field(
        None,
        max_length=200,
        description="16-200 characters; each webhook delivery carries "
        "X-Socialcredit-Signature: sha256=HMAC-SHA256(secret, body)",
    )


class WebhookIn(BaseModel):
    """Where correction notices to your relying party are delivered."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "url": "https://air.example/hooks/corrections",
                "secret": "a-long-random-secret-of-yours",
                "email": "compliance@air.example",
            }
        },
    )
    url: str | None = Field(None, max_length=500)
    secret: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=254)


def _page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    return {"items": items, "next": items[-1]["notice_id"] if len(items) == limit else None}


def _kind(kind: str | None) -> str | None:
    if kind is not None and kind not in KINDS:
        raise InputError(
            [Problem("kind", "enum", kind, f"a notice kind is one of {', '.join(KINDS)}")]
        )
    return kind


def _file(rt: Runtime, key: str) -> dict[str, Any]:
    return subject_file(
        rt.ledger,
        rt.status.rulebooks,
        key,
        decision_retention=rt.decision_retention,
        access_log_retention=rt.access_log_retention,
    )


# ---------------------------------------------------------------------- subjects


@router.get(
    "/v1/me/file",
    tags=["subjects"],
    summary="Your whole file: records with provenance, status with explanations, every decision "
    "about you (who asked, why, when, the answer), cases, notices, who read your file",
    responses=problem_responses(401, 403),
    **_DOC,
)
def my_file(request: Request, who: Principal = Depends(need("subject"))) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    out = _file(rt, who.scope)
    rt.log.write([], [rt.access_row(request, 200, "own-file", who, subject=who.scope)])
    return _json(out)


@router.get(
    "/v1/me/notices",
    tags=["subjects"],
    summary="Your inbox: every notice to you, newest first, with its deliveries",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def my_notices(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None, description="A notice id: list older ones"),
    kind: str | None = Query(None, description="Only notices of this kind"),
    who: Principal = Depends(need("subject")),
) -> Response:
    rt = rt_of(request)
    items = list_notices(rt.engine, subject=who.scope, kind=_kind(kind), before=before, limit=limit)
    return _json(_page(items, limit))


@router.get(
    "/v1/me/notices/{notice_id}",
    tags=["subjects"],
    summary="One notice to you",
    responses=problem_responses(401, 403, 404),
    **_DOC,
)
def my_notice(
    request: Request, notice_id: int, who: Principal = Depends(need("subject"))
) -> Response:
    rt = rt_of(request)
    n = get_notice(rt.engine, notice_id)
    if n["recipient_kind"] != "subject" or n["recipient"] != who.scope:
        raise rt.refuse(
            request,
            404,
            "not-found",
            "other-notice",
            f"no notice {notice_id} in your inbox",
            who,
            subject=n["subject"],
        )
    return _json(n)


@router.get(
    "/v1/me/contact",
    tags=["subjects"],
    summary="How you are told besides the inbox (e-mail, webhook)",
    responses=problem_responses(401, 403),
    **_DOC,
)
def my_contact(request: Request, who: Principal = Depends(need("subject"))) -> Response:
    assert who.scope is not None
    return _json(delivery.get_contact(rt_of(request).engine, who.scope))


@router.put(
    "/v1/me/contact",
    tags=["subjects"],
    summary="Set your e-mail address and/or webhook (new notices are delivered there too)",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def put_my_contact(
    request: Request, body: ContactIn, who: Principal = Depends(need("subject"))
) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    return _json(
        delivery.set_contact(
            rt.engine,
            rt.clock,
            who.scope,
            email=body.email,
            webhook_url=body.webhook_url,
            webhook_secret=body.webhook_secret,
        )
    )


# ---------------------------------------------------------------------- staff


@router.get(
    "/v1/subjects/{subject}/file",
    tags=["staff"],
    summary="A subject's whole file (officers, reviewers, auditors; logged and shown to the "
    "subject; a subject key for itself only)",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def staff_file(
    request: Request, subject: str, who: Principal = Depends(need(*FILE_READERS, "subject"))
) -> Response:
    rt = rt_of(request)
    key = _subject_key(rt, request, who, subject)
    _own_or_staff(rt, request, who, key, FILE_READERS)
    return _json(_file(rt, key))


@router.get(
    "/v1/subjects/{subject}/notices",
    tags=["staff"],
    summary="Every notice about a subject, to it or to relying parties (staff; a subject for "
    "itself)",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def staff_notices(
    request: Request,
    subject: str,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None),
    who: Principal = Depends(need(*FILE_READERS, "subject")),
) -> Response:
    rt = rt_of(request)
    key = _subject_key(rt, request, who, subject)
    _own_or_staff(rt, request, who, key, FILE_READERS)
    if who.role == "subject":
        items = list_notices(rt.engine, subject=key, before=before, limit=limit)
    else:
        items = list_notices(rt.engine, about=key, before=before, limit=limit)
    return _json(_page(items, limit))


@router.get(
    "/v1/notices/deliveries",
    tags=["staff"],
    summary="Deliveries of notices, newest first (e.g. state=dead to find the ones to re-drive)",
    responses=problem_responses(401, 403, 422),
    **_DOC,
)
def deliveries(
    request: Request,
    state: str | None = Query(None, description="pending | sent | failed | dead"),
    notice: int | None = Query(None, description="Only the deliveries of this notice"),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(need("officer", "auditor")),
) -> Response:
    rt = rt_of(request)
    return _json(
        {"items": delivery.list_deliveries(rt.engine, state=state, notice_id=notice, limit=limit)}
    )


@router.post(
    "/v1/notices/deliveries/{delivery_id}:redrive",
    tags=["staff"],
    summary="Put a failed or dead delivery back in the queue (attempts reset, due now)",
    responses=problem_responses(401, 403, 404, 422),
    **_DOC,
)
def redrive(
    request: Request, delivery_id: int, who: Principal = Depends(need("officer"))
) -> Response:
    rt = rt_of(request)
    out = delivery.redrive(rt.engine, rt.clock, delivery_id)
    rt.log.write([], [rt.access_row(request, 200, "redrive", who, detail=str(delivery_id))])
    return _json(out)


# ---------------------------------------------------------------------- relying parties


@router.get(
    "/v1/party/notices",
    tags=["relying parties"],
    summary="Correction notices to your relying party: answers you received while a record "
    "was wrong, with the decision ids affected",
    responses=problem_responses(401, 403),
    **_DOC,
)
def party_notices(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: int | None = Query(None),
    who: Principal = Depends(need("relying-party")),
) -> Response:
    rt = rt_of(request)
    items = list_notices(rt.engine, party=who.scope, before=before, limit=limit)
    return _json(_page(items, limit))


@router.get(
    "/v1/party/webhook",
    tags=["relying parties"],
    summary="Where your correction notices are delivered",
    responses=problem_responses(401, 403),
    **_DOC,
)
def party_webhook(request: Request, who: Principal = Depends(need("relying-party"))) -> Response:
    assert who.scope is not None
    return _json(delivery.get_party_webhook(rt_of(request).engine, who.scope))


@router.put(
    "/v1/party/webhook",
    tags=["relying parties"],
    summary="Register the webhook (URL + signing secret) and/or e-mail for correction notices",
    responses=problem_responses(401, 403, 404, 422),
    **_DOC,
)
def put_party_webhook(
    request: Request, body: WebhookIn, who: Principal = Depends(need("relying-party"))
) -> Response:
    rt = rt_of(request)
    assert who.scope is not None
    return _json(
        delivery.set_party_webhook(
            rt.engine, rt.clock, who.scope, url=body.url, secret=body.secret, email=body.email
        )
    )
