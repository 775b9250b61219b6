"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error body has ``type`` (a stable URI naming the kind of problem), ``title`` (the same for
every occurrence of that type), ``status``, ``detail`` (this occurrence, for people) and, for
refused input, ``problems``: one entry per thing wrong, each with ``field``, ``rule``, ``value``
and ``message`` (the same :class:`~socialcredit.errors.Problem` the CLI and importer report).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response

from socialcredit.errors import Problem

TYPE_BASE = "tag:socialcredit,2026:problems/"
MEDIA_TYPE = "application/problem+json"

TITLES: dict[str, str] = {
    "unauthenticated": "No valid API key",
    "forbidden": "Not allowed for this key",
    "invalid-input": "The input was refused",
    "malformed-json": "The body is not valid JSON",
    "conflict": "Conflicts with what is already recorded",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "too-large": "The request is too large",
    "quota-exceeded": "Over the relying party's daily limit of answers",
    "rate-limited": "Over the relying party's rate of answers",
    "not-ready": "The service is not ready",
    "unavailable": "The service cannot answer now",
    "internal": "Internal error",
}


class ApiProblem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        problems: Iterable[Problem] = (),
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.status = status
        self.slug = slug
        self.detail = detail
        self.problems = list(problems)
        self.headers = headers
        self.extra = extra or {}
        super().__init__(detail)

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": TITLES.get(self.slug, self.slug.replace("-", " ").capitalize()),
            "status": self.status,
            "detail": self.detail,
        }
        if self.problems:
            doc["problems"] = [p.as_dict() for p in self.problems]
        doc.update(self.extra)
        return doc

    def response(self) -> Response:
        return Response(
            orjson.dumps(self.body(), default=str),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": TYPE_BASE + "forbidden"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "rule", "value", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "value": {},
                    "message": {"type": "string"},
                    "row": {"type": ["integer", "null"]},
                },
            },
        },
    },
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route can answer with."""
    return {
        s: {
            "description": _DESCRIPTIONS.get(s, "Problem"),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid API key (missing, malformed, unknown or revoked)",
    403: "The key's role or scope does not allow this (the refusal is logged)",
    404: "Not found",
    409: "Conflicts with the ledger (same reference, other content)",
    413: "Too many items in one request",
    422: "Refused input: `problems` lists every field, rule and value",
    429: "Over the relying party's daily limit of answers (`quota-exceeded`: `Retry-After` and "
    "`resets_at` say when the next day begins, UTC) or its rate (`rate-limited`: retry after "
    "`Retry-After`); logged, nothing was answered",
    503: "Not ready, or the decision log could not be written (nothing was answered)",
}
