"""Python clients for the socialcredit API (sync and async, on httpx).

::

    from socialcredit.client import RelyingPartyClient

    with RelyingPartyClient("http://127.0.0.1:8000", key) as rp:
        result = rp.check("cn-rid:11010519491231002X", "travel.flights", purpose="boarding")
        if result["decision"] == "deny":
            ...

Requests are retried on connection errors, 429 and 5xx, with exponential backoff honouring
``Retry-After``, except a relying party's daily limit (:class:`QuotaExceeded`, raised at once: it
lifts at midnight UTC). That is safe: record writes are idempotent by the authority's reference
(a retried write answers ``duplicate``), and checks are reads (a retried check may log one more
decision, never a different answer). Refusals raise :class:`ApiError` subclasses carrying the RFC 9457
problem document (``type``, ``title``, ``status``, ``detail``, ``problems``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx

from socialcredit.decision_ids import decode_id, encode_id

__all__ = [
    "ApiError",
    "AsyncProviderClient",
    "AsyncRelyingPartyClient",
    "AsyncSubjectClient",
    "AuthError",
    "ConflictError",
    "ForbiddenError",
    "InputRefused",
    "NotFound",
    "ProviderClient",
    "QuotaExceeded",
    "RelyingPartyClient",
    "ServerError",
    "SubjectClient",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """A problem document from the API."""

    def __init__(self, status: int, problem: Mapping[str, Any]):
        self.status = status
        self.problem = dict(problem)
        self.type: str = str(problem.get("type", "about:blank"))
        self.title: str = str(problem.get("title", ""))
        self.detail: str = str(problem.get("detail", ""))
        self.problems: list[dict[str, Any]] = list(problem.get("problems", []))
        super().__init__(f"{status} {self.title}: {self.detail}")


class AuthError(ApiError):
    """401: no key, or the key is unknown or revoked."""


class ForbiddenError(ApiError):
    """403: the key's role or scope does not allow it (the refusal was logged)."""


class NotFound(ApiError):
    """404."""


class ConflictError(ApiError):
    """409: the same reference was used for other content."""


class InputRefused(ApiError):
    """400/413/422: the input was refused; ``problems`` names every field, rule and value."""


class ServerError(ApiError):
    """5xx or 429 after the retries ran out."""


class QuotaExceeded(ApiError):
    """429: the relying party's daily limit of answers would be passed; nothing was answered.
    ``resets_at`` (ISO 8601, UTC) is when the next day begins. Not retried."""

    def __init__(self, status: int, problem: Mapping[str, Any]):
        super().__init__(status, problem)
        self.daily_limit: int | None = problem.get("daily_limit")
        self.used_today: int | None = problem.get("used_today")
        self.resets_at: str | None = problem.get("resets_at")


_QUOTA_TYPE = "/quota-exceeded"


def _retryable(response: httpx.Response) -> bool:
    if response.status_code not in RETRY_STATUSES:
        return False
    if response.status_code == 429:
        try:
            doc = response.json()
        except ValueError:
            return True
        return not (isinstance(doc, dict) and str(doc.get("type", "")).endswith(_QUOTA_TYPE))
    return True


def _error(response: httpx.Response) -> ApiError:
    try:
        doc = response.json()
        if not isinstance(doc, dict):
            raise ValueError
    except ValueError:
        doc = {"title": response.reason_phrase, "detail": response.text[:500]}
    cls: type[ApiError]
    s = response.status_code
    if s == 401:
        cls = AuthError
    elif s == 403:
        cls = ForbiddenError
    elif s == 404:
        cls = NotFound
    elif s == 409:
        cls = ConflictError
    elif s in (400, 413, 422):
        cls = InputRefused
    elif s == 429 and str(doc.get("type", "")).endswith(_QUOTA_TYPE):
        cls = QuotaExceeded
    elif s >= 500 or s == 429:
        cls = ServerError
    else:
        cls = ApiError
    return cls(s, doc)


def _delay(attempt: int, response: httpx.Response | None, base: float) -> float:
    if response is not None:
        ra = response.headers.get("retry-after")
        if ra:
            try:
                return min(float(str(ra)), 30.0)
            except ValueError:
                pass
    return min(base * (1 << attempt), 5.0) * (0.5 + random.random() / 2)


def _columns_body(
    subjects: Iterable[str], measure: str, purpose: str, answers: str = "all"
) -> dict[str, Any]:
    body: dict[str, Any] = {"purpose": purpose, "measure": measure, "subjects": list(subjects)}
    if answers != "all":  # "all" is the server's default: the body stays as it always was
        body["answers"] = answers
    return body


def _column_results(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A columnar answer as one result per subject, shaped like the object form's results."""
    first = decode_id(doc["decision_ids"]["first"])
    out: list[dict[str, Any]] = []
    for i, (subject, decision, reason, basis) in enumerate(
        zip(doc["subjects"], doc["decisions"], doc["reasons"], doc["bases"], strict=True)
    ):
        res = {
            "subject": subject,
            "measure": doc["measure"],
            "decision": decision,
            "reason": reason,
        }
        if basis is not None:
            res["basis"] = basis
        res["decision_id"] = encode_id(first + i)
        out.append(res)
    return out


def _check_body(
    checks: Iterable[tuple[str, str] | Mapping[str, str]], purpose: str
) -> dict[str, Any]:
    items = [
        {"subject": c[0], "measure": c[1]}
        if isinstance(c, tuple)
        else {"subject": c["subject"], "measure": c["measure"]}
        for c in checks
    ]
    return {"purpose": purpose, "checks": items}


class _Sync:
    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.05,
        transport: httpx.BaseTransport | None = None,
    ):
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self._http.request(method, path, **kw)
            except (
                httpx.ConnectError,
                httpx.ReadError,
                httpx.RemoteProtocolError,
                httpx.WriteError,
                httpx.PoolTimeout,
                httpx.ConnectTimeout,
            ):
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 400:
                    return response.json()
                if attempt >= self.retries or not _retryable(response):
                    raise _error(response)
            time.sleep(_delay(attempt, response, self.backoff))
            attempt += 1

    def whoami(self) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", "/v1/whoami")
        return out


class _Async:
    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.05,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ):
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=100),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self._http.request(method, path, **kw)
            except (
                httpx.ConnectError,
                httpx.ReadError,
                httpx.RemoteProtocolError,
                httpx.WriteError,
                httpx.PoolTimeout,
                httpx.ConnectTimeout,
            ):
                if attempt >= self.retries:
                    raise
            else:
                if response.status_code < 400:
                    return response.json()
                if attempt >= self.retries or not _retryable(response):
                    raise _error(response)
            await asyncio.sleep(_delay(attempt, response, self.backoff))
            attempt += 1

    async def whoami(self) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("GET", "/v1/whoami")
        return out


# ---------------------------------------------------------------------- providers


class ProviderClient(_Sync):
    """Furnish, correct, retract and overturn records for the key's authority."""

    def furnish(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One record -> ``{"seq", "status": "stored" | "duplicate"}``."""
        out: dict[str, Any] = self.request("POST", "/v1/records", json=dict(record))
        return out

    def furnish_many(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Records in one all-or-nothing transaction -> ``{"stored", "duplicates", "results"}``."""
        out: dict[str, Any] = self.request(
            "POST", "/v1/records:batch", json={"records": [dict(r) for r in records]}
        )
        return out

    def correct(
        self, seq: int, ref: str, changes: Mapping[str, Any], reason: str
    ) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "POST",
            f"/v1/records/{seq}:correct",
            json={"ref": ref, "reason": reason, "changes": dict(changes)},
        )
        return out

    def retract(self, seq: int, ref: str, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "POST", f"/v1/records/{seq}:retract", json={"ref": ref, "reason": reason}
        )
        return out

    def overturn(self, seq: int, ref: str, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "POST", f"/v1/records/{seq}:overturn", json={"ref": ref, "reason": reason}
        )
        return out


class AsyncProviderClient(_Async):
    async def furnish(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("POST", "/v1/records", json=dict(record))
        return out

    async def furnish_many(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = await self.request(
            "POST", "/v1/records:batch", json={"records": [dict(r) for r in records]}
        )
        return out


# ---------------------------------------------------------------------- relying parties


class RelyingPartyClient(_Sync):
    """Eligibility checks for the key's relying party."""

    def quota(self) -> dict[str, Any]:
        """The party's limits: ``{"daily_limit", "used_today", "remaining", "resets_at",
        "rate_limit"}`` (limits and ``remaining`` None without a limit)."""
        out: dict[str, Any] = self.whoami()["quota"]
        return out

    def usage(self, days: int = 14) -> list[dict[str, Any]]:
        """The party's answers per day (UTC), oldest first: ``[{"day", "answers"}]``."""
        party = self.whoami()["scope"]
        out: list[dict[str, Any]] = self.request(
            "GET", f"/v1/parties/{party}/usage", params={"days": days}
        )["days"]
        return out

    def check(self, subject: str, measure: str, *, purpose: str) -> dict[str, Any]:
        """One check -> ``{"subject", "measure", "decision", "reason", "basis"?, "decision_id"}``."""
        return self.check_many([(subject, measure)], purpose=purpose)[0]

    def check_many(
        self, checks: Iterable[tuple[str, str] | Mapping[str, str]], *, purpose: str
    ) -> list[dict[str, Any]]:
        doc = self.request("POST", "/v1/checks", json=_check_body(checks, purpose))
        results: list[dict[str, Any]] = doc["results"]
        return results

    def check_subjects(
        self, subjects: Iterable[str], measure: str, *, purpose: str
    ) -> list[dict[str, Any]]:
        """Many subjects, one measure (a passenger list): sent in the columnar form, which costs
        the server a fraction of the object form; answered as :meth:`check_many` answers."""
        doc = self.request("POST", "/v1/checks", json=_columns_body(subjects, measure, purpose))
        return _column_results(doc)

    def check_exceptions(
        self, subjects: Iterable[str], measure: str, *, purpose: str
    ) -> dict[str, Any]:
        """Many subjects, one measure, answered with the exceptions alone: the server's document
        ``{"purpose", "measure", "count", "default": {"decision", "reason"}, "exceptions":
        [{"index", "subject", "decision", "reason", "basis", "decision_id"}], "normalised":
        [{"index", "subject"}], "decision_ids": {"first", "count"}}``. Every subject not in
        ``exceptions`` got ``default``, under the id ``decision_ids.nth_id(first, i)``: for a
        passenger list nearly all of them, which this form does not spell out. Every answer is
        logged, as for :meth:`check_subjects`."""
        out: dict[str, Any] = self.request(
            "POST", "/v1/checks", json=_columns_body(subjects, measure, purpose, "exceptions")
        )
        return out


class AsyncRelyingPartyClient(_Async):
    async def quota(self) -> dict[str, Any]:
        """As :meth:`RelyingPartyClient.quota`."""
        out: dict[str, Any] = (await self.whoami())["quota"]
        return out

    async def usage(self, days: int = 14) -> list[dict[str, Any]]:
        """As :meth:`RelyingPartyClient.usage`."""
        party = (await self.whoami())["scope"]
        doc = await self.request("GET", f"/v1/parties/{party}/usage", params={"days": days})
        out: list[dict[str, Any]] = doc["days"]
        return out

    async def check(self, subject: str, measure: str, *, purpose: str) -> dict[str, Any]:
        return (await self.check_many([(subject, measure)], purpose=purpose))[0]

    async def check_many(
        self, checks: Iterable[tuple[str, str] | Mapping[str, str]], *, purpose: str
    ) -> list[dict[str, Any]]:
        doc = await self.request("POST", "/v1/checks", json=_check_body(checks, purpose))
        results: list[dict[str, Any]] = doc["results"]
        return results

    async def check_subjects(
        self, subjects: Iterable[str], measure: str, *, purpose: str
    ) -> list[dict[str, Any]]:
        doc = await self.request(
            "POST", "/v1/checks", json=_columns_body(subjects, measure, purpose)
        )
        return _column_results(doc)

    async def check_exceptions(
        self, subjects: Iterable[str], measure: str, *, purpose: str
    ) -> dict[str, Any]:
        """As :meth:`RelyingPartyClient.check_exceptions`."""
        out: dict[str, Any] = await self.request(
            "POST", "/v1/checks", json=_columns_body(subjects, measure, purpose, "exceptions")
        )
        return out


# ---------------------------------------------------------------------- subjects


class SubjectClient(_Sync):
    """A subject's own file and the decisions made about them."""

    def file(self) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", "/v1/me")
        return out

    def decisions(self, *, limit: int = 100, before: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        out: dict[str, Any] = self.request("GET", "/v1/me/decisions", params=params)
        return out

    def all_decisions(self) -> list[dict[str, Any]]:
        """Every decision about the subject, newest first (follows the pages)."""
        out: list[dict[str, Any]] = []
        before: str | None = None
        while True:
            page = self.decisions(limit=1000, before=before)
            out.extend(page["items"])
            before = page["next"]
            if not before:
                return out


class AsyncSubjectClient(_Async):
    async def file(self) -> dict[str, Any]:
        out: dict[str, Any] = await self.request("GET", "/v1/me")
        return out

    async def decisions(self, *, limit: int = 100, before: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        out: dict[str, Any] = await self.request("GET", "/v1/me/decisions", params=params)
        return out
