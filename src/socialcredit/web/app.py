"""The HTTP service: ``create_app(db, clock=None)`` for tests, ``app_from_env`` for uvicorn.

OpenAPI 3.1 at ``/openapi.json`` (committed as ``docs/openapi.json``); errors as RFC 9457 problem
details; ``/healthz`` (alive), ``/readyz`` (database reachable, status caught up, a rulebook
active), ``/metrics`` (Prometheus).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from socialcredit import __version__
from socialcredit.clock import Clock
from socialcredit.errors import ConflictError, InputError, NotFoundError, Problem
from socialcredit.status.retention import ACCESS_DEFAULT_MONTHS, DEFAULT_MONTHS, Retention
from socialcredit.web import metrics, routes_cases, routes_notices, routes_portal, routes_publish
from socialcredit.web.models import CheckColumnsRequest, CheckRequest
from socialcredit.web.problems import PROBLEM_SCHEMA, ApiProblem, problem_responses
from socialcredit.web.routes import checks, router
from socialcredit.web.runtime import Runtime

log = logging.getLogger(__name__)

DESCRIPTION = """\
The eligibility API of a social credit registry with due process built in.

Authenticate with `Authorization: Bearer sck_<id>_<secret>` (keys are made with
`socialcredit keys create`). Each key has one role — provider, relying-party, subject, officer,
reviewer, auditor or public — and a scope. Every eligibility answer is written to the decision
log before it is sent, and every subject can read the decisions made about them. Errors are
RFC 9457 problem details. See docs/api.md.
"""


def _field_of(loc: Sequence[Any]) -> str:
    parts = [str(x) for x in loc if x not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def _validation_problems(exc: RequestValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        value = err.get("input")
        if not isinstance(value, (str, int, float, bool)) or isinstance(value, bool):
            value = None if not isinstance(value, bool) else value
        if err.get("type") == "json_invalid":
            out.append(Problem("body", "malformed-json", None, str(err.get("msg"))))
            continue
        field = _field_of(err.get("loc", ()))
        out.append(Problem(field, str(err.get("type")), value, str(err.get("msg"))))
    return out


SWITCH_INTERVAL = 0.0005  # seconds (serve): see app_from_env
GC_THRESHOLD = 100_000  # allocations between collections of the youngest generation (serve)
LaneHandler = Callable[[Request], Awaitable[Response]]


class ServiceApp(FastAPI):
    """FastAPI, plus a lane for the hot endpoints (``POST /v1/checks``).

    A request whose method and path are in :attr:`lane` is handed straight to its handler, without
    the route table, dependency solving and the middleware stack (about 160 µs a request here,
    more than the check's own work). The handler is the same function the routed endpoint calls,
    and its errors go through the app's own exception handlers, so the answer is the same either
    way; the routed endpoint stays in the OpenAPI document.
    """

    lane: dict[tuple[str, str], LaneHandler]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.lane.get((scope["method"], scope["path"]))
            if handler is not None:
                scope["app"] = self
                request = Request(scope, receive)
                try:
                    response = await handler(request)
                except Exception as exc:
                    response = await self.handle_error(request, exc)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def handle_error(self, request: Request, exc: Exception) -> Response:
        """What the exception handlers answer to ``exc`` (the most specific handler wins)."""
        for cls in type(exc).__mro__:
            handler = self.exception_handlers.get(cls)
            if handler is not None:
                response = handler(request, exc)
                return await response if inspect.isawaitable(response) else response
        raise exc


def create_app(
    db: str | None = None,
    clock: Clock | None = None,
    *,
    rulebooks: Sequence[str] = (),
    poll_interval: float = 0.02,
    maintenance_interval: float = 1.0,
    background: bool = True,
    bench_endpoints: bool = False,
    freeze_heap: bool = False,
    log_process: bool = False,
    notice_process: bool = False,
    decision_retention: Retention | None = None,
    access_log_retention: Retention | None = None,
    workers: int = 1,
) -> FastAPI:
    """The API over the registry at ``db``. Resources open in the lifespan (use ``with TestClient``).
    With ``log_process`` the decision log commits in a child process (as ``serve`` does:
    :mod:`socialcredit.status.logwriter`), otherwise in a thread of this one; with
    ``notice_process`` notices are written and delivered in a child process (as ``serve`` does:
    :mod:`socialcredit.cases.noticeproc`), otherwise by the background loop's thread. Answers
    are deleted from the decision log after ``decision_retention``, and entries from the access
    log after ``access_log_retention`` (none: kept; ``serve``'s defaults are 24 and 48 months).
    ``workers``: how many processes serve this registry's API (each takes its share of a relying
    party's rate limit)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = await asyncio.to_thread(
            Runtime,
            db,
            clock,
            rulebooks=rulebooks,
            poll_interval=poll_interval,
            maintenance_interval=maintenance_interval,
            background=background,
            decision_retention=decision_retention,
            access_log_retention=access_log_retention,
            workers=workers,
        )
        app.state.rt = rt
        app.state.inflight = asyncio.Semaphore(1024)
        if log_process:
            await rt.log_in_process()
        if notice_process:
            await asyncio.to_thread(rt.notices_in_process)
        if freeze_heap:
            # a server process: what start-up loaded (the eligibility index above all) lives as
            # long as the process, so keep it out of the collector's full passes, each of which
            # would walk every entry while every request waits
            gc.collect()
            gc.freeze()
            # and let a request's containers (a batch makes thousands) die of their reference
            # counts before any collection sees them: at the default threshold (700) collections
            # ran several times a batch and cost as much as answering it
            gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            await rt.log.stop_process()
            await asyncio.to_thread(rt.close)

    app = ServiceApp(
        title="socialcredit",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )

    @app.exception_handler(ApiProblem)
    async def _problem(_: Request, exc: ApiProblem) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = _validation_problems(exc)
        if any(p.rule == "malformed-json" for p in problems):
            return ApiProblem(
                400, "malformed-json", "the body is not valid JSON", problems
            ).response()
        return ApiProblem(
            422, "invalid-input", f"{len(problems)} problem(s); nothing was changed", problems
        ).response()

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> Response:
        return ApiProblem(409, "conflict", "nothing was changed", exc.problems).response()

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> Response:
        return ApiProblem(422, "invalid-input", "nothing was changed", exc.problems).response()

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, exc: NotFoundError) -> Response:
        return ApiProblem(404, "not-found", str(exc)).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "invalid-input")
        headers = dict(exc.headers) if exc.headers else None
        return ApiProblem(exc.status_code, slug, str(exc.detail), headers=headers).response()

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return ApiProblem(500, "internal", "an internal error occurred; it was logged").response()

    app.lane = {("POST", "/v1/checks"): checks}
    if bench_endpoints:
        _add_bench_endpoints(app)
    app.include_router(router)
    app.include_router(routes_cases.router)
    app.include_router(routes_notices.router)
    app.include_router(routes_publish.router)
    app.include_router(routes_portal.router)  # HTML pages last: they own the bare paths

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: database reachable, status caught up, a rulebook active",
        responses=problem_responses(503),
    )
    def readyz(request: Request) -> Response:
        rt: Runtime = request.app.state.rt
        info: dict[str, Any] = {}
        try:
            with rt.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            info["lag"] = rt.status.lag()
        except Exception as e:
            return ApiProblem(
                503, "not-ready", f"the database is not reachable: {type(e).__name__}"
            ).response()
        info["rulebooks"] = [rb.ref for rb in rt.status.rulebooks]
        info["index_subjects"] = len(rt.index)
        info["notices"] = rt.notices_error or "ok"  # reported; checks go on either way
        reasons = []
        if info["lag"] > 0:
            reasons.append(f"status is {info['lag']} ledger entries behind")
        if not info["rulebooks"]:
            reasons.append("no rulebook is active (socialcredit status activate NAME)")
        if rt.last_error:
            reasons.append(f"background refresh failing: {rt.last_error}")
        if rt.log.writer_error:
            reasons.append(f"decision log: {rt.log.writer_error}")
        if reasons:
            return ApiProblem(503, "not-ready", "; ".join(reasons), extra=info).response()
        return Response(orjson.dumps({"ready": True, **info}), media_type="application/json")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics_endpoint() -> Response:
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        doc = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version="3.1.0",
            description=app.description,
            routes=app.routes,
        )
        comps = doc.setdefault("components", {})
        schemas = comps.setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for model in (CheckRequest, CheckColumnsRequest):
            check_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in check_schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = check_schema
        comps["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: sck_<id>_<secret> (socialcredit keys create)",
            }
        }
        for path_item in doc.get("paths", {}).values():
            for op in path_item.values():
                resp = op.get("responses", {})
                if "422" in resp and _is_default_422(resp["422"]):
                    resp["422"] = problem_responses(422)[422]
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _is_default_422(r: dict[str, Any]) -> bool:
    content = r.get("content", {}).get("application/json", {})
    return "HTTPValidationError" in json.dumps(content)


def _add_bench_endpoints(app: ServiceApp) -> None:
    """Baselines for benchmarks/checks.py (not in the schema): a hello world and a raw id lookup,
    served in the lane as ``/v1/checks`` is, and the same hello world as a routed endpoint."""

    async def hello(_: Request) -> Response:
        return Response(b'{"hello":"world"}', media_type="application/json")

    async def raw(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        found = request.app.state.rt.index
        hits = [s in found for s in doc["ids"]]
        return Response(orjson.dumps({"found": hits}), media_type="application/json")

    app.lane[("GET", "/bench/hello")] = hello
    app.lane[("POST", "/bench/raw")] = raw
    # first among the routes: it must not pay for walking the whole route table
    app.add_api_route("/bench/hello-routed", hello, methods=["GET"], include_in_schema=False)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: reads SOCIALCREDIT_DB and SOCIALCREDIT_SERVE_* vars
    (``SOCIALCREDIT_SERVE_LOG=thread`` keeps the decision log's commits in the worker,
    ``SOCIALCREDIT_SERVE_NOTICES=thread`` the notifier; ``SOCIALCREDIT_SERVE_DECISION_RETENTION``
    and ``SOCIALCREDIT_SERVE_ACCESS_LOG_RETENTION`` are months or ``forever``, 24 and 48 by
    default; ``SOCIALCREDIT_SERVE_WORKERS``, the server's workers, divides rate limits)."""
    # The background threads (status poller, projector) hand the interpreter back to the event
    # loop after 0.5 ms instead of 5: a maintenance round holds it for ~5 ms, in pieces, and the
    # requests that came in meanwhile waited for it (a single check's p99 was 1-2 ms higher).
    writer = os.environ.get("SOCIALCREDIT_SERVE_LOG", "process")
    if writer not in ("process", "thread"):
        raise ValueError(
            f"SOCIALCREDIT_SERVE_LOG={writer!r}: the decision log's writer is 'process' (the "
            "default) or 'thread'"
        )
    workers = os.environ.get("SOCIALCREDIT_SERVE_WORKERS", "1")
    if not (workers.isascii() and workers.isdigit() and int(workers) >= 1):
        raise ValueError(
            f"SOCIALCREDIT_SERVE_WORKERS={workers!r}: the number of the server's worker "
            "processes (serve sets it), a whole number of at least 1"
        )
    sys.setswitchinterval(SWITCH_INTERVAL)
    return create_app(
        os.environ.get("SOCIALCREDIT_DB"),
        poll_interval=float(os.environ.get("SOCIALCREDIT_SERVE_POLL", "0.02")),
        bench_endpoints=os.environ.get("SOCIALCREDIT_SERVE_BENCH") == "1",
        freeze_heap=True,
        log_process=writer == "process",
        notice_process=os.environ.get("SOCIALCREDIT_SERVE_NOTICES", "process") != "thread",
        decision_retention=Retention.parse(
            os.environ.get("SOCIALCREDIT_SERVE_DECISION_RETENTION", str(DEFAULT_MONTHS)),
            "SOCIALCREDIT_SERVE_DECISION_RETENTION",
        ),
        access_log_retention=Retention.parse(
            os.environ.get("SOCIALCREDIT_SERVE_ACCESS_LOG_RETENTION", str(ACCESS_DEFAULT_MONTHS)),
            "SOCIALCREDIT_SERVE_ACCESS_LOG_RETENTION",
        ),
        workers=int(workers),
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, without opening a database."""
    return create_app(":memory-unused:").openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
