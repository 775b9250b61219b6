"""HTTP routes: publication (thin: calls :mod:`socialcredit.publish`).

Public, no key:

* ``GET /.well-known/socialcredit-report-keys.json`` — the registry's public keys (JWKS);
  ``GET /.well-known/socialcredit-report-key.pem`` — the current key as PEM;
* ``GET /reports/enterprise/{subject}`` — a signed public report on an organisation (PDF);
* ``GET /verify/{report_id}`` — the verification page (HTML; JSON with ``Accept: application/json``),
  ``GET /reports/{report_id}`` (JSON), ``POST /verify`` (upload a PDF: is it genuine?);
* ``GET /open-data/index.json`` and ``/open-data/{file}`` — bulk downloads of the public lists;
* ``GET /feeds/changes.atom`` and ``/feeds/changes.json`` — the change feed.

With a key:

* subject — ``GET /v1/me/report`` (the subject's own report, PDF);
* organisation subject or relying party — ``GET/PUT/DELETE /v1/watchlist...`` (watchlists and
  their alerts).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import jinja2
import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, Response

from socialcredit.errors import InputError, NotFoundError, Problem
from socialcredit.ledger.store import newest_seq
from socialcredit.publish import feeds, opendata, watchlists
from socialcredit.publish.reports import (
    issue_report,
    registry_name,
    report_record,
    verify_report,
)
from socialcredit.publish.signing import (
    current_public_pem,
    jwks,
    keys_from_db,
    registry_signer,
)
from socialcredit.status.schema import status_changes
from socialcredit.web.problems import ApiProblem, problem_responses
from socialcredit.web.routes import SECURITY, need, rt_of
from socialcredit.web.runtime import Principal, Runtime

router = APIRouter()
PUBLIC_URL_ENV = "SOCIALCREDIT_PUBLIC_URL"
MAX_UPLOAD = 10 * 1024 * 1024

_templates = jinja2.Environment(
    loader=jinja2.ChoiceLoader(
        [
            jinja2.DictLoader(
                {
                    "verify_report.html": """{% extends "base.html" %}
{% block content %}
<h1>Verify a credit report</h1>
{% if rec %}
<p class="ok" role="status">Report <strong>{{ rec.report_id }}</strong> was issued by this registry.</p>
<dl class="facts">
  <dt>Kind</dt><dd>{{ "Public report on an organisation" if rec.kind == "enterprise" else "A subject's own file (for the subject)" }}</dd>
  {% if rec.subject %}<dt>Subject</dt><dd>{{ rec.subject }}</dd>{% else %}<dt>Subject</dt><dd>not shown (a personal report: compare the SHA-256 of the file you were given)</dd>{% endif %}
  {% if rec.name %}<dt>Name</dt><dd>{{ rec.name }}</dd>{% endif %}
  <dt>Issued</dt><dd>{{ rec.issued_at }}</dd>
  <dt>Status as of</dt><dd>{{ rec.summary.as_of }}</dd>
  <dt>Rulebooks</dt><dd>{{ rec.summary.rulebooks | join(", ") }}</dd>
  {% if rec.kind == "enterprise" %}
  <dt>Public entries on that day</dt><dd>{{ rec.summary.public_entries }} ({{ rec.summary.adverse }} adverse, {{ rec.summary.red }} red)</dd>
  {% endif %}
  <dt>SHA-256 of the signed file</dt><dd><code>{{ rec.sha256 }}</code></dd>
  <dt>Signing key</dt><dd><code>{{ rec.key_id }}</code> (<a href="/.well-known/socialcredit-report-keys.json">published keys</a>)</dd>
</dl>
<p>The file you hold is genuine only if its SHA-256 is the one above, or if it passes
<code>socialcredit report verify FILE --keys socialcredit-report-keys.json</code>
(offline, with the published keys). You can also upload it here:</p>
{% else %}
<p class="error" role="alert">No report with id <strong>{{ report_id }}</strong> was issued by this registry.</p>
{% endif %}
<form method="post" action="/verify" enctype="multipart/form-data">
  <label for="file">Report (PDF)</label>
  <input id="file" name="file" type="file" accept="application/pdf" required>
  <button type="submit">Check the file</button>
</form>
{% endblock %}
""",
                    "open_data.html": """{% extends "base.html" %}
{% block content %}
<h1>Open data</h1>
<p>Every list membership that the active rulebooks make public today ({{ meta.as_of }}), only for
as long as each list's publicity period allows, with personal identifiers masked.
{{ meta.counts.entries }} entries. Generated {{ meta.created }}.</p>
<p>Licence: {% for l in meta.licenses %}{% if l.path %}<a href="{{ l.path }}">{{ l.title }}</a>{% else %}{{ l.title }}{% endif %} ({{ l.name }}){% endfor %}.
Source: {% for s in meta.sources %}{{ s.title }}{% if not loop.last %}; {% endif %}{% endfor %}.</p>
<h2>Downloads</h2>
<ul>
{% for name, media in files %}<li><a href="/open-data/{{ name }}">{{ name }}</a> <small>({{ media }})</small></li>
{% endfor %}</ul>
<h2>Change feed</h2>
<ul>
<li><a href="/feeds/changes.atom">changes.atom</a> (Atom 1.0)</li>
<li><a href="/feeds/changes.json">changes.json</a> (JSON Feed 1.1)</li>
</ul>
<h2>Public lists</h2>
<table>
<thead><tr><th scope="col">Rulebook</th><th scope="col">List</th><th scope="col">Type</th><th scope="col">Published for</th><th scope="col">Entries</th></tr></thead>
<tbody>
{% for l in meta.lists %}<tr><td>{{ l.rulebook }}</td><td>{{ l.title }}</td><td>{{ l.type }}</td><td>{{ l.publicity_period }}</td><td>{{ meta.counts.get(l.rulebook.split("@")[0] ~ "/" ~ l.list, 0) }}</td></tr>
{% endfor %}</tbody>
</table>
<p>Credit reports carry the registry's Ed25519 signature: the keys are at
<a href="/.well-known/socialcredit-report-keys.json">/.well-known/socialcredit-report-keys.json</a>.</p>
{% endblock %}
""",
                    "verify_result.html": """{% extends "base.html" %}
{% block content %}
<h1>Verify a credit report</h1>
{% if result.ok %}
<p class="ok" role="status">Valid: report <strong>{{ result.report_id }}</strong>, signed with key <code>{{ result.key_id }}</code>. <a href="/verify/{{ result.report_id }}">See the report's record</a>.</p>
{% else %}
<p class="error" role="alert">Not valid: {{ result.reason }}</p>
{% endif %}
{% endblock %}
""",
                }
            ),
            jinja2.PackageLoader("socialcredit.web", "templates"),
        ]
    ),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.ChainableUndefined,
)

_PDF = {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}


def _base_url(request: Request) -> str:
    return (os.environ.get(PUBLIC_URL_ENV) or str(request.base_url)).rstrip("/")


def _pdf(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _json(obj: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(obj, default=str), status_code=status, media_type="application/json"
    )


# ---------------------------------------------------------------------- keys


@router.get(
    "/.well-known/socialcredit-report-keys.json",
    tags=["publication"],
    summary="The registry's public signing keys (JWKS, Ed25519), old ones included",
)
def report_keys(request: Request) -> Response:
    rt = rt_of(request)
    registry_signer(rt.engine, rt.clock.now())  # makes the key on first use
    return Response(
        orjson.dumps(jwks(rt.engine)),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get(
    "/.well-known/socialcredit-report-key.pem",
    tags=["publication"],
    summary="The registry's current public signing key (PEM)",
)
def report_key_pem(request: Request) -> Response:
    rt = rt_of(request)
    registry_signer(rt.engine, rt.clock.now())
    cur = current_public_pem(rt.engine)
    assert cur is not None
    kid, pem = cur
    return Response(
        pem,
        media_type="application/x-pem-file",
        headers={"Socialcredit-Key-Id": kid, "Cache-Control": "public, max-age=300"},
    )


# ---------------------------------------------------------------------- reports


def issue_response(request: Request, subject: str, kind: str) -> Response:
    """Issue a report and answer with the PDF (also used by the portal's ``/me/report``).

    ``kind="person"`` gives a subject's whole file: call it only for the subject's own key.
    """
    rt = rt_of(request)
    rep = issue_report(
        rt.ledger,
        rt.status.rulebooks,
        subject,
        kind,
        signer=registry_signer(rt.engine, rt.clock.now()),
        base_url=_base_url(request),
    )
    name = f"socialcredit-report-{rep.report_id}.pdf"
    resp = _pdf(rep.pdf, name)
    resp.headers["Socialcredit-Report-Id"] = rep.report_id
    return resp


_issue = issue_response  # the name the portal first used


@router.get(
    "/v1/me/report",
    tags=["subjects"],
    summary="Your own credit report: a signed one-page PDF of your file",
    responses={200: _PDF, **problem_responses(401, 403, 404)},
    openapi_extra={"security": SECURITY},
)
def my_report(request: Request, who: Principal = Depends(need("subject"))) -> Response:
    assert who.scope is not None
    return issue_response(request, who.scope, "person")


@router.get(
    "/reports/enterprise/{subject}",
    tags=["publication"],
    summary="A signed public credit report on an organisation (PDF; public entries only)",
    responses={200: _PDF, **problem_responses(404, 422)},
)
def enterprise_report(request: Request, subject: str) -> Response:
    return issue_response(request, subject, "enterprise")


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@router.get(
    "/reports/{report_id}",
    tags=["publication"],
    summary="The registry's record of an issued report (for verification)",
    responses=problem_responses(404),
)
def report_json(request: Request, report_id: str) -> Response:
    rec = report_record(rt_of(request).engine, report_id)
    if rec is None:
        raise ApiProblem(404, "not-found", f"no report {report_id} was issued by this registry")
    return _json(rec)


@router.get(
    "/verify/{report_id}",
    tags=["publication"],
    summary="The verification page of a report (HTML; JSON when asked for)",
    response_class=HTMLResponse,
    responses=problem_responses(404),
)
def verify_page(request: Request, report_id: str) -> Response:
    rt = rt_of(request)
    rec = report_record(rt.engine, report_id)
    if _wants_json(request):
        if rec is None:
            raise ApiProblem(404, "not-found", f"no report {report_id} was issued by this registry")
        return _json(rec)
    html = _templates.get_template("verify_report.html").render(
        rec=rec,
        report_id=report_id,
        title="Verify a credit report",
        today=rt.clock.now().date().isoformat(),
        rulebook_refs=", ".join(rb.ref for rb in rt.status.rulebooks),
    )
    return HTMLResponse(html, status_code=200 if rec else 404)


@router.post(
    "/verify",
    tags=["publication"],
    summary="Check a report file against the registry's keys (PDF body or multipart 'file')",
    responses=problem_responses(413, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
            }
        }
    },
)
async def verify_upload(request: Request) -> Response:
    rt = rt_of(request)
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        f = form.get("file")
        if f is None or isinstance(f, str):
            raise ApiProblem(
                422,
                "invalid-input",
                "upload the report as the 'file' field",
                [Problem("file", "required", None, "a PDF file")],
            )
        data = await f.read(MAX_UPLOAD + 1)
    else:
        data = await request.body()
    if len(data) > MAX_UPLOAD:
        raise ApiProblem(413, "too-large", f"a report is at most {MAX_UPLOAD} bytes")
    result = verify_report(data, keys_from_db(rt.engine))
    if _wants_json(request) or not ctype.startswith("multipart/form-data"):
        return _json(result.as_dict())
    html = _templates.get_template("verify_result.html").render(
        result=result, title="Verify a credit report", today=rt.clock.now().date().isoformat()
    )
    return HTMLResponse(html)


# ---------------------------------------------------------------------- open data and feeds


_CACHE_LOCK = threading.Lock()


def _state_key(rt: Runtime) -> tuple[Any, ...]:
    with rt.engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
        head = newest_seq(conn)  # statements, disputes
    return (rt.clock.now().date(), last, head, tuple(rb.ref for rb in rt.status.rulebooks))


def _cached(request: Request, what: str, build: Any) -> Any:
    rt = rt_of(request)
    key = (what, _base_url(request), *_state_key(rt))
    cache: dict[str, tuple[tuple[Any, ...], Any]] = request.app.state.__dict__.setdefault(
        "publish_cache", {}
    )
    with _CACHE_LOCK:
        hit = cache.get(what)
        if hit is not None and hit[0] == key:
            return hit[1]
    value = build(rt)
    with _CACHE_LOCK:
        cache[what] = (key, value)
    return value


def _open_data(request: Request) -> opendata.OpenData:
    base = _base_url(request)

    def build(rt: Runtime) -> opendata.OpenData:
        return opendata.build(
            rt.engine,
            rt.status.rulebooks,
            rt.clock.now(),
            registry_signer(rt.engine, rt.clock.now()),
            registry=registry_name(),
            base_url=base,
        )

    data: opendata.OpenData = _cached(request, "open-data", build)
    return data


@router.get("/open-data/", response_class=HTMLResponse, include_in_schema=False)
def open_data_page(request: Request) -> Response:
    rt = rt_of(request)
    meta = _open_data(request).metadata()
    html = _templates.get_template("open_data.html").render(
        meta=meta,
        files=list(opendata.FILES.items()),
        title="Open data",
        today=rt.clock.now().date().isoformat(),
        rulebook_refs=", ".join(rb.ref for rb in rt.status.rulebooks),
    )
    return HTMLResponse(html)


@router.get(
    "/open-data/index.json",
    tags=["open data"],
    summary="The open-data files, with licence and sources",
)
def open_data_index(request: Request) -> Response:
    data = _open_data(request)
    base = _base_url(request)
    meta = data.metadata()
    return _json(
        {
            "files": [
                {"name": n, "url": f"{base}/open-data/{n}", "mediatype": m}
                for n, m in opendata.FILES.items()
            ],
            "licenses": meta["licenses"],
            "sources": meta["sources"],
            "created": meta["created"],
            "as_of": meta["as_of"],
            "counts": meta["counts"],
            "feeds": [f"{base}/feeds/changes.atom", f"{base}/feeds/changes.json"],
        }
    )


@router.get(
    "/open-data/{name}",
    tags=["open data"],
    summary="One open-data file: entries.csv, entries.parquet, entries.ndjson, "
    "entities.ftm.json (FollowTheMoney) or datapackage.json",
    responses=problem_responses(404),
)
def open_data_file(request: Request, name: str) -> Response:
    if name not in opendata.FILES:
        raise ApiProblem(404, "not-found", f"no open-data file {name!r}: see /open-data/index.json")
    data = _open_data(request)
    body = data.render(name)
    media = opendata.FILES[name]
    if media.startswith("text/"):
        media += "; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "Cache-Control": "public, max-age=300",
            "Link": f'<{_base_url(request)}/open-data/datapackage.json>; rel="describedby"',
        },
    )


def _feed_items(request: Request) -> list[feeds.FeedItem]:
    def build(rt: Runtime) -> list[feeds.FeedItem]:
        return feeds.feed_items(rt.engine, rt.status.rulebooks, rt.clock.now().date())

    items: list[feeds.FeedItem] = _cached(request, "feed", build)
    return items


@router.get(
    "/feeds/changes.atom",
    tags=["open data"],
    summary="Change feed of the public lists (Atom 1.0)",
)
def feed_atom(request: Request) -> Response:
    rt = rt_of(request)
    body = feeds.atom_feed(
        _feed_items(request),
        registry=registry_name(),
        base_url=_base_url(request),
        generated_at=rt.clock.now(),
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.get(
    "/feeds/changes.json",
    tags=["open data"],
    summary="Change feed of the public lists (JSON Feed 1.1)",
)
def feed_json(request: Request) -> Response:
    rt = rt_of(request)
    doc = feeds.json_feed(
        _feed_items(request),
        registry=registry_name(),
        base_url=_base_url(request),
        generated_at=rt.clock.now(),
    )
    return Response(orjson.dumps(doc), media_type="application/feed+json")


# ---------------------------------------------------------------------- watchlists


class WatchIn(BaseModel):
    webhook_url: str = Field(
        min_length=1, max_length=2000, description="Where alerts are POSTed (http or https)"
    )


def _owner(request: Request, who: Principal) -> str:
    try:
        return watchlists.owner_for(who.role, who.scope)
    except InputError as e:
        raise rt_of(request).refuse(
            request,
            403,
            "forbidden",
            "not-an-organisation",
            "watchlists are for organisations and relying parties",
            who,
            problems=e.problems,
        ) from None


def _watcher(rt: Runtime) -> watchlists.Watcher:
    return watchlists.Watcher(
        rt.engine,
        lambda: rt.status.rulebooks,
        rt.clock,
        lambda: registry_signer(rt.engine, rt.clock.now()),
        registry=registry_name(),
    )


_WATCH_DOC: dict[str, Any] = {"tags": ["watchlists"], "openapi_extra": {"security": SECURITY}}


@router.get(
    "/v1/watchlist",
    summary="The partners you watch",
    responses=problem_responses(401, 403),
    **_WATCH_DOC,
)
def watch_list(
    request: Request, who: Principal = Depends(need("subject", "relying-party"))
) -> Response:
    owner = _owner(request, who)
    return _json({"owner": owner, "items": watchlists.list_watches(rt_of(request).engine, owner)})


@router.put(
    "/v1/watchlist/{subject}",
    summary="Watch a partner: alerts go to the webhook when its public status changes",
    responses=problem_responses(401, 403, 422),
    **_WATCH_DOC,
)
def watch_add(
    request: Request,
    subject: str,
    body: WatchIn = Body(...),
    who: Principal = Depends(need("subject", "relying-party")),
) -> Response:
    owner = _owner(request, who)
    rt = rt_of(request)
    out = _watcher(rt).add(owner, subject, body.webhook_url)
    return _json(out)


@router.delete(
    "/v1/watchlist/{subject}",
    summary="Stop watching a partner",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
    **_WATCH_DOC,
)
def watch_remove(
    request: Request, subject: str, who: Principal = Depends(need("subject", "relying-party"))
) -> Response:
    owner = _owner(request, who)
    try:
        watchlists.remove_watch(rt_of(request).engine, owner, subject)
    except NotFoundError as e:
        raise ApiProblem(404, "not-found", str(e)) from None
    return Response(status_code=204)


@router.get(
    "/v1/watchlist/alerts",
    summary="Alerts sent (or still being retried) to you, newest first",
    responses=problem_responses(401, 403),
    **_WATCH_DOC,
)
def watch_alerts_list(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(need("subject", "relying-party")),
) -> Response:
    owner = _owner(request, who)
    return _json({"items": watchlists.list_alerts(rt_of(request).engine, owner, limit=limit)})


__all__ = ["router"]
