"""HTML pages: the public portal, subject self-service (``/me``) and the officer console (``/console``).

Server-rendered Jinja2, usable without JavaScript. Nothing here decides what is public: the public
pages read :mod:`socialcredit.publish.public` (entries) and :mod:`socialcredit.publish.search`
(the name index). Signing in: a pasted API key is checked once (``KeyCache.check``) and exchanged
for a signed, HttpOnly, SameSite=Strict session cookie naming the key; every request re-checks that
the key still exists and is not revoked. Forms that change something carry a CSRF token derived
from the session. None of these routes is in the OpenAPI document.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from socialcredit import ids
from socialcredit.ledger.schema import entries as ledger_entries
from socialcredit.publish import search as search_index
from socialcredit.publish.public import (
    PublicEntry,
    is_public_list,
    mask_subject,
    public_entries,
    subject_is_person,
)
from socialcredit.publish.stats import compute_stats, svg_chart
from socialcredit.rulebooks.model import ListDef, Param, Rulebook
from socialcredit.status.schema import status_changes
from socialcredit.web.keys import ApiKey, get_key
from socialcredit.web.runtime import Principal, Runtime

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).parent
STATIC = HERE / "static"
COOKIE = "sc_session"
SESSION_HOURS = 8
PAGE_SIZE = 50
STAFF_ROLES = ("officer", "reviewer", "auditor")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.ChainableUndefined,
    auto_reload=False,  # templates ship with the package: no stat() per render
)


def _p(x: Any) -> str:
    """A rulebook number or duration, with its own source if it has one."""
    if isinstance(x, Param):
        return f"{x.value} (source: {x.source}, confidence {x.confidence})"
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _period(lst: ListDef) -> str:
    if lst.publicity is None or lst.publicity.period is None:
        return "not published"
    from socialcredit.rulebooks.model import dur

    d = dur(lst.publicity.period)
    return d.describe() if d else "not published"


_env.globals.update(p=_p, period=_period)
_env.filters["last_day"] = lambda d: (d - dt.timedelta(days=1)).isoformat()


# ---------------------------------------------------------------------- sessions


settings_table = sa.Table(
    "portal_settings",
    search_index.search_metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
)

_SECRETS: dict[str, bytes] = {}


def _secret(rt: Runtime) -> bytes:
    """The registry's session-signing secret (made once, shared by every worker via the database)."""
    url = str(rt.engine.url)
    got = _SECRETS.get(url)
    if got is not None:
        return got
    search_index.ensure_index(rt.engine)
    with search_index.writing(rt.engine) as conn:
        settings_table.create(conn, checkfirst=True)
        row = conn.execute(
            sa.select(settings_table.c.value).where(settings_table.c.name == "session-secret")
        ).first()
        if row is None:
            value = secrets.token_hex(32)
            with contextlib.suppress(sa.exc.IntegrityError):  # made concurrently by another worker
                conn.execute(settings_table.insert().values(name="session-secret", value=value))
    with rt.engine.connect() as conn:
        value = conn.execute(
            sa.select(settings_table.c.value).where(settings_table.c.name == "session-secret")
        ).scalar_one()
    _SECRETS[url] = bytes.fromhex(value)
    return _SECRETS[url]


@dataclass(frozen=True)
class User:
    key_id: str
    role: str
    scope: str | None
    cookie: str

    @property
    def scope_ref(self) -> str | None:
        return mask_subject(self.scope) if self.scope else None


def _sign(secret: bytes, text: str) -> str:
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def _session_value(rt: Runtime, key: ApiKey) -> str:
    issued = int(rt.clock.now().timestamp())
    body = f"{key.key_id}.{issued}"
    return f"{body}.{_sign(_secret(rt), body + '.' + key.secret_sha256)}"


def current_user(request: Request) -> User | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    parts = raw.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    key_id, issued, sig = parts
    rt = _rt(request)
    key = get_key(rt.engine, key_id)
    if key is None or key.revoked:
        return None
    want = _sign(_secret(rt), f"{key_id}.{issued}.{key.secret_sha256}")
    if not hmac.compare_digest(want, sig):
        return None
    age = rt.clock.now().timestamp() - int(issued)
    if age < -300 or age > SESSION_HOURS * 3600:
        return None
    return User(key.key_id, key.role, key.scope, raw)


def csrf_token(request: Request, user: User | None) -> str:
    if user is None:
        return ""
    return _sign(_secret(_rt(request)), "csrf:" + user.cookie)[:32]


def _check_csrf(request: Request, user: User, form: Any) -> bool:
    return hmac.compare_digest(str(form.get("csrf", "")), csrf_token(request, user))


# ---------------------------------------------------------------------- rendering


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def _today(request: Request) -> dt.date:
    return _rt(request).clock.now().date()


_WARMING: set[str] = set()


def _warm(rt: Runtime) -> None:
    """On a process's first page: build the search index and load the chart library, in the
    background, so the first search and the first statistics page do not wait for them."""
    url = str(rt.engine.url)
    if url in _WARMING or url in _LAST_SYNC:
        return
    _WARMING.add(url)

    def run() -> None:
        try:
            search_index.sync(rt.engine, rt.status.rulebooks, rt.clock.now().date())
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # seconds on a cold start: not on a visitor's time
        except Exception:
            log.exception("portal warm-up failed")

    threading.Thread(target=run, name="portal-search-warm", daemon=True).start()


def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    rt = _rt(request)
    _warm(rt)
    user = ctx.pop("user", None) or current_user(request)
    base = {
        "request": request,
        "user": user,
        "csrf": csrf_token(request, user),
        "today": _today(request).isoformat(),
        "rulebook_refs": ", ".join(rb.ref for rb in rt.status.rulebooks),
    }
    base.update(ctx)
    html = _env.get_template(template).render(**base)
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store" if user else "no-cache",
        },
    )


def error_page(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status, heading=heading, message=message, title=heading)


_SLUGS: dict[str, str] = {}


def _slug_of(e: PublicEntry) -> str:
    """Entity page path: the code for organisations, the search index's opaque id for persons."""
    if not e.masked:
        return e.subject_key
    return _SLUGS.get(e.subject_key, "")


_env.globals["slug_of"] = _slug_of


# ---------------------------------------------------------------------- static


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


# ---------------------------------------------------------------------- public portal


_ENTRIES: dict[tuple[Any, ...], list[PublicEntry]] = {}
_ENTRIES_LOCK = threading.Lock()


def _all_entries(request: Request) -> list[PublicEntry]:
    """Every public entry today, cached until the ledger or the status moves or the day turns."""
    rt = _rt(request)
    today = _today(request)
    with rt.engine.connect() as conn:
        mark = conn.execute(sa.select(sa.func.max(status_changes.c.change_seq))).scalar()
        head = conn.execute(sa.select(sa.func.max(ledger_entries.c.seq))).scalar()
    key = (str(rt.engine.url), today, mark, head, rt.rulebook_refs)
    with _ENTRIES_LOCK:
        got = _ENTRIES.get(key)
    if got is None:
        got = list(public_entries(rt.engine, rt.status.rulebooks, today))
        with _ENTRIES_LOCK:
            if len(_ENTRIES) > 4:
                _ENTRIES.clear()
            _ENTRIES[key] = got
    return got


def _list_counts(request: Request) -> list[tuple[Rulebook, ListDef, int]]:
    """Public entries per list."""
    rt = _rt(request)
    counts: dict[tuple[str, str], int] = {}
    for e in _all_entries(request):
        counts[(e.rulebook_id, e.list_id)] = counts.get((e.rulebook_id, e.list_id), 0) + 1
    return [
        (rb, lst, counts.get((rb.id, lst.id), 0))
        for rb in rt.status.rulebooks
        for lst in rb.lists
        if is_public_list(lst)
    ]


def _remember_slugs(request: Request, rows: list[PublicEntry]) -> None:
    persons = [e.subject_key for e in rows if e.masked and e.subject_key not in _SLUGS]
    if not persons:
        return
    rt = _rt(request)
    for attempt in range(2):
        _sync(request, force=attempt > 0)  # a person listed in the last 0.25 s: sync now
        for key in persons:
            hit = search_index.by_subject(rt.engine, key)
            if hit is not None:
                _SLUGS[key] = hit.slug
        persons = [k for k in persons if k not in _SLUGS]
        if not persons:
            break
    if len(_SLUGS) > 100_000:
        _SLUGS.clear()


SYNC_EVERY = 0.25  # seconds: the search index lags the ledger by at most this much
_LAST_SYNC: dict[str, float] = {}


def _sync(request: Request, *, force: bool = False) -> None:
    """Bring the search index up to the ledger (at most every SYNC_EVERY seconds per process)."""
    rt = _rt(request)
    url = str(rt.engine.url)
    now = time.monotonic()
    if not force and now - _LAST_SYNC.get(url, -1e9) < SYNC_EVERY:
        return
    try:
        search_index.sync(rt.engine, rt.status.rulebooks, _today(request))
        _LAST_SYNC[url] = now
    except Exception:  # the index is a projection: a failure must not take the page down
        log.exception("search index sync failed")


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    return render(
        request, "home.html", lists=_list_counts(request), title="Public credit information"
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: str = "") -> Response:
    rt = _rt(request)
    q = q.strip()[:200]
    hits: list[search_index.SearchHit] = []
    if q:
        _sync(request)
        hits = search_index.search(rt.engine, q, _today(request), limit=20)
    return render(request, "search.html", q=q, hits=hits, title="Search")


@router.get("/entity/{slug}", response_class=HTMLResponse)
def entity(request: Request, slug: str) -> Response:
    rt = _rt(request)
    today = _today(request)
    hit: search_index.SearchHit | None = None
    key: str | None = None
    if slug[:1] == "p" and slug[1:].isdigit():
        _sync(request)
        hit = search_index.by_rid(rt.engine, int(slug[1:]))
        key = hit.subject_key if hit else None
    else:
        try:
            key = ids.parse_key(slug).key
        except ids.IdError:
            key = None
        if key is not None:
            _sync(request)
            hit = search_index.by_subject(rt.engine, key)
    if key is None:
        return error_page(request, 404, "Not found", "There is no such subject.")
    rows = list(public_entries(rt.engine, rt.status.rulebooks, today, subject=key))
    person = hit.person if hit else subject_is_person(key)
    if person and not rows:
        # a person without a public entry is not shown at all (not even that they exist)
        return error_page(
            request, 404, "Not found", "There is no public information about this subject."
        )
    if hit is None and not rows:
        return error_page(request, 404, "Not found", "There is no such subject.")
    ref = mask_subject(key, hit.kind if hit else None) if person else key
    name = rows[0].subject_name if rows else (hit.name if hit else None)
    return render(
        request,
        "entity.html",
        ref=ref,
        name=name,
        kind=(hit.kind if hit else None) or (rows[0].subject_kind if rows else None),
        rows=rows,
        report_url=None if person else f"/reports/enterprise/{key}",
        title=name or ref,
    )


@router.get("/lists", response_class=HTMLResponse)
def lists_page(request: Request) -> Response:
    rt = _rt(request)
    private = [
        (rb, lst) for rb in rt.status.rulebooks for lst in rb.lists if not is_public_list(lst)
    ]
    return render(
        request,
        "lists.html",
        lists=_list_counts(request),
        private=private,
        rulebooks=rt.status.rulebooks,
        title="Public lists",
    )


def _date_arg(v: str | None) -> dt.date | None:
    if not v:
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def _entries_page(
    request: Request,
    *,
    rulebook: str | None,
    list_id: str | None,
    lst: ListDef | None,
    heading: str,
    action: str,
) -> Response:
    rt = _rt(request)
    qp = request.query_params
    frm, to = _date_arg(qp.get("from")), _date_arg(qp.get("to"))
    needle = search_index.normalise_name(qp.get("q", ""))
    try:
        page = max(1, int(qp.get("page", "1")))
    except ValueError:
        page = 1
    rows: list[PublicEntry] = []
    for e in _all_entries(request):
        if (list_id and e.list_id != list_id) or (rulebook and e.rulebook_id != rulebook):
            continue
        if frm and e.since < frm:
            continue
        if to and e.since > to:
            continue
        if needle and needle not in search_index.normalise_name(e.subject_name or ""):
            continue
        rows.append(e)
    rows.sort(key=lambda e: (e.since, e.subject_ref), reverse=True)
    total = len(rows)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    _remember_slugs(request, shown)

    def page_url(n: int) -> str:
        params = dict(qp)
        params["page"] = str(n)
        return f"{action}?{urllib.parse.urlencode(params)}"

    return render(
        request,
        "entries.html",
        rows=shown,
        total=total,
        page=page,
        pages=pages,
        page_url=page_url,
        lst=lst,
        heading=heading,
        action=action,
        f={
            "rulebook": rulebook,
            "list": list_id,
            "from": qp.get("from"),
            "to": qp.get("to"),
            "q": qp.get("q"),
        },
        rulebooks=rt.status.rulebooks,
        lists=_list_counts(request) if lst is None else [],
        title=heading,
    )


@router.get("/entries", response_class=HTMLResponse)
def entries_page(request: Request) -> Response:
    qp = request.query_params
    return _entries_page(
        request,
        rulebook=qp.get("rulebook") or None,
        list_id=qp.get("list") or None,
        lst=None,
        heading="Public entries",
        action="/entries",
    )


@router.get("/lists/{rulebook_id}/{list_id}", response_class=HTMLResponse)
def list_page(request: Request, rulebook_id: str, list_id: str) -> Response:
    rt = _rt(request)
    rb = next((r for r in rt.status.rulebooks if r.id == rulebook_id), None)
    lst = next((x for x in rb.lists if x.id == list_id), None) if rb else None
    if rb is None or lst is None:
        return error_page(request, 404, "Not found", "There is no such list in an active rulebook.")
    if not is_public_list(lst):
        return error_page(
            request,
            404,
            "Not published",
            f"The rulebook {rb.ref} does not publish the list {lst.title}.",
        )
    return _entries_page(
        request,
        rulebook=rb.id,
        list_id=lst.id,
        lst=lst,
        heading=lst.title,
        action=f"/lists/{rb.id}/{lst.id}",
    )


@router.get("/rulebooks", response_class=HTMLResponse)
def rulebooks_page(request: Request) -> Response:
    return render(
        request, "rulebooks.html", rulebooks=_rt(request).status.rulebooks, title="Rulebooks"
    )


@router.get("/rulebooks/{rulebook_id}", response_class=HTMLResponse)
def rulebook_page(request: Request, rulebook_id: str) -> Response:
    rb = next((r for r in _rt(request).status.rulebooks if r.id == rulebook_id), None)
    if rb is None:
        return error_page(request, 404, "Not found", "There is no such active rulebook.")
    return render(request, "rulebook.html", rb=rb, title=rb.title)


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request) -> Response:
    rt = _rt(request)
    stats = compute_stats(rt.engine, _today(request))
    titles = {rb.id: rb for rb in rt.status.rulebooks}
    charts = []
    for rb_id, series in stats.lists.items():
        rb = titles.get(rb_id)
        names = {lst.id: lst.title for lst in rb.lists} if rb else {}
        labelled = [type(s)(names.get(s.label, s.label), s.values) for s in series]
        title = f"Subjects per list — {rb.title if rb else rb_id}"
        charts.append(
            {
                "title": title,
                "days": stats.days,
                "series": labelled,
                "svg": svg_chart(title, stats.days, labelled),
            }
        )
    for key, series in stats.grades.items():
        title = f"Subjects per grade — {key}"
        charts.append(
            {
                "title": title,
                "days": stats.days,
                "series": series,
                "svg": svg_chart(title, stats.days, series),
            }
        )
    return render(request, "stats.html", stats=stats, charts=charts, title="Statistics")


# ---------------------------------------------------------------------- signing in


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> Response:
    return render(request, "login.html", hours=SESSION_HOURS, next=next, title="Sign in")


def _safe_next(nxt: str, default: str) -> str:
    if nxt.startswith("/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return default


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token", "")).strip()
    rt = _rt(request)
    from starlette.concurrency import run_in_threadpool

    key, rule = await run_in_threadpool(rt.keys.check, token)
    if rule or key is None:
        row = rt.access_row(request, 401, rule or "no-key", None)
        await rt.log.submit_async([], [row])
        return render(
            request,
            "login.html",
            401,
            error="That key was not accepted (unknown, mistyped or revoked).",
            hours=SESSION_HOURS,
            title="Sign in",
        )
    if key.role != "subject" and key.role not in STAFF_ROLES:
        return render(
            request,
            "login.html",
            403,
            error=f"A {key.role} key cannot sign in to these pages (subject, officer, reviewer or auditor keys can).",
            hours=SESSION_HOURS,
            title="Sign in",
        )
    value = await run_in_threadpool(_session_value, rt, key)
    default = "/me" if key.role == "subject" else "/console"
    resp = RedirectResponse(_safe_next(str(form.get("next", "")), default), status_code=303)
    resp.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return resp


@router.post("/logout")
async def logout(request: Request) -> Response:
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


def require(request: Request, roles: tuple[str, ...]) -> tuple[User | None, Response | None]:
    """The signed-in user if their role is one of ``roles``; else a redirect or a 403 page."""
    user = current_user(request)
    if user is None:
        nxt = urllib.parse.quote(request.url.path)
        return None, RedirectResponse(f"/login?next={nxt}", status_code=303)
    if user.role not in roles:
        return None, error_page(
            request, 403, "Not allowed", f"A {user.role} key cannot open this page."
        )
    return user, None


PageFn = Callable[..., Response]


# ---------------------------------------------------------------------- subject self-service


def _problems_text(exc: Exception) -> list[str]:
    probs = getattr(exc, "problems", None)
    if probs:
        return [f"{p.field}: {p.message}" for p in probs]
    return [str(exc)]


def _flash(request: Request) -> dict[str, Any]:
    msg = request.query_params.get("done")
    texts = {
        "objection": "Your objection was recorded and the record is marked disputed. "
        "The authority has been asked to answer.",
        "statement": "Your statement was added to the record.",
        "repair": "Your repair application was recorded; an officer will decide it.",
        "decided": "The decision was recorded in the audit log.",
    }
    return {"flash": texts[msg]} if msg in texts else {}


def _my_file(request: Request, key: str) -> dict[str, Any]:
    rt = _rt(request)
    from socialcredit.cases.access import subject_file

    result: dict[str, Any] = subject_file(
        rt.ledger, rt.status.rulebooks, key, today=_today(request)
    )
    return result


@router.get("/me", response_class=HTMLResponse)
def me_page(request: Request) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    file = _my_file(request, user.scope)
    return render(
        request,
        "me/file.html",
        user=user,
        file=file,
        subject=user.scope,
        title="My file",
        **_flash(request),
    )


@router.get("/me/why", response_class=HTMLResponse)
def me_why(request: Request) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    from socialcredit.engine.explain import render as render_lines

    file = _my_file(request, user.scope)
    out = []
    for s in file["status"]:
        e = s["explanation"]
        try:
            lines = render_lines(e)
        except Exception:  # an explanation that cannot be rendered is shown as data
            lines = [orjson_text(e)]
        for w in s.get("withheld_pending_review") or []:
            lines.append("")
            lines.append(
                f"Withheld: the listing on {w.get('list')} is {w.get('state')} "
                "and has no effect until a human review decides."
            )
        out.append(
            {
                "title": f"{s.get('rulebook_title') or s['rulebook']} ({s['rulebook']})",
                "lines": lines,
            }
        )
    return render(request, "me/why.html", user=user, explanations=out, title="Why")


def orjson_text(obj: Any) -> str:
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()


@router.get("/me/checks", response_class=HTMLResponse)
def me_checks(request: Request) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    from socialcredit.cases.access import access_rows, all_decisions, describe_access, recipients

    rt = _rt(request)
    decisions = all_decisions(rt.engine, user.scope)
    with rt.engine.connect() as conn:
        accesses = access_rows(conn, user.scope, limit=500)
    return render(
        request,
        "me/checks.html",
        user=user,
        decisions=decisions[:500],
        recipients=recipients(decisions),
        retention=rt.decision_retention.describe(rt.clock.now()),
        accesses=accesses,
        access_retention=describe_access(rt.access_log_retention, rt.clock.now()),
        title="Who checked me",
    )


@router.get("/me/notices", response_class=HTMLResponse)
def me_notices(request: Request) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    from socialcredit.cases.notices import list_notices

    items = []
    for n in list_notices(_rt(request).engine, subject=user.scope, limit=200):
        body = n.get("body") or {}
        text = n.get("text") or (body.get("text") if isinstance(body, dict) else None)
        if not text:
            from socialcredit.cases.notices import render_text

            text = render_text(n.get("title", ""), body if isinstance(body, dict) else {})
        items.append({**n, "text": text})
    return render(request, "me/notices.html", user=user, notices=items, title="My notices")


def _my_record(request: Request, key: str, record_id: int) -> Any:
    for v in _rt(request).ledger.subject_records(key):
        if v.record_id == record_id or v.origin_id == record_id:
            return v
    return None


@router.get("/me/object/{record_id}", response_class=HTMLResponse)
def me_object_form(request: Request, record_id: int) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    rec = _my_record(request, user.scope, record_id)
    if rec is None:
        return error_page(request, 404, "Not found", "You have no such record.")
    return render(request, "me/object.html", user=user, record=rec, title="Object to a record")


@router.post("/me/object/{record_id}", response_class=HTMLResponse)
async def me_object(request: Request, record_id: int) -> Response:
    from starlette.concurrency import run_in_threadpool

    user, deny = await run_in_threadpool(require, request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    form = await request.form()
    if not await run_in_threadpool(_check_csrf, request, user, form):
        return error_page(request, 403, "Form expired", "Reload the page and send the form again.")
    rec = await run_in_threadpool(_my_record, request, user.scope, record_id)
    if rec is None:
        return error_page(request, 404, "Not found", "You have no such record.")
    rt = _rt(request)
    grounds = str(form.get("grounds", ""))
    evidence = str(form.get("evidence", "")).strip() or None
    from socialcredit.cases.objections import open_objection
    from socialcredit.errors import ConflictError, InputError, NotFoundError

    try:
        await run_in_threadpool(
            open_objection,
            rt.ledger,
            rt.status.rulebooks,
            user.scope,
            rec.origin_id,
            grounds,
            evidence=evidence,
        )
    except (InputError, ConflictError, NotFoundError) as e:
        return render(
            request,
            "me/object.html",
            422,
            user=user,
            record=rec,
            errors=_problems_text(e),
            grounds=grounds,
            title="Object to a record",
        )
    await run_in_threadpool(rt.after_write)
    return RedirectResponse("/me?done=objection", status_code=303)


@router.post("/me/statement/{record_id}", response_class=HTMLResponse)
async def me_statement(request: Request, record_id: int) -> Response:
    from starlette.concurrency import run_in_threadpool

    user, deny = await run_in_threadpool(require, request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    form = await request.form()
    if not await run_in_threadpool(_check_csrf, request, user, form):
        return error_page(request, 403, "Form expired", "Reload the page and send the form again.")
    rec = await run_in_threadpool(_my_record, request, user.scope, record_id)
    if rec is None:
        return error_page(request, 404, "Not found", "You have no such record.")
    from socialcredit.cases.objections import add_statement
    from socialcredit.errors import ConflictError, InputError, NotFoundError

    rt = _rt(request)
    try:
        await run_in_threadpool(
            add_statement, rt.ledger, user.scope, rec.origin_id, str(form.get("statement", ""))
        )
    except (InputError, ConflictError, NotFoundError) as e:
        return render(
            request,
            "me/object.html",
            422,
            user=user,
            record=rec,
            errors=_problems_text(e),
            title="Object to a record",
        )
    await run_in_threadpool(rt.after_write)
    return RedirectResponse("/me?done=statement", status_code=303)


def _repair_items(request: Request, key: str) -> list[dict[str, Any]]:
    rt = _rt(request)
    from socialcredit.cases.repairs import repair_eligibility

    file = _my_file(request, key)
    items = []
    books = {rb.ref: rb for rb in rt.status.rulebooks}
    for s in file["status"]:
        rb = books.get(s["rulebook"])
        if rb is None:
            continue
        for m in s["explanation"].get("memberships", []):
            lst = next((x for x in rb.lists if x.id == m["list"]), None)
            if lst is None or lst.repair is None:
                continue
            el = repair_eligibility(rt.ledger, rt.status.rulebooks, key, rb.id, lst.id)
            items.append(
                {
                    "title": lst.title,
                    "rulebook": rb.ref,
                    "rulebook_id": rb.id,
                    "list_id": lst.id,
                    "eligibility": el.as_dict(),
                }
            )
    return items


@router.get("/me/repair", response_class=HTMLResponse)
def me_repair_form(request: Request) -> Response:
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    return render(
        request,
        "me/repair.html",
        user=user,
        items=_repair_items(request, user.scope),
        title="Apply for repair",
    )


@router.post("/me/repair", response_class=HTMLResponse)
async def me_repair(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    user, deny = await run_in_threadpool(require, request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    form = await request.form()
    if not await run_in_threadpool(_check_csrf, request, user, form):
        return error_page(request, 403, "Form expired", "Reload the page and send the form again.")
    rt = _rt(request)
    from socialcredit.cases.repairs import apply_for_repair
    from socialcredit.errors import ConflictError, InputError, NotFoundError

    try:
        await run_in_threadpool(
            apply_for_repair,
            rt.ledger,
            rt.status.rulebooks,
            user.scope,
            str(form.get("rulebook", "")),
            str(form.get("list", "")),
            str(form.get("statement", "")),
        )
    except (InputError, ConflictError, NotFoundError) as e:
        items = await run_in_threadpool(_repair_items, request, user.scope)
        return render(
            request,
            "me/repair.html",
            422,
            user=user,
            items=items,
            errors=_problems_text(e),
            title="Apply for repair",
        )
    await run_in_threadpool(rt.after_write)
    return RedirectResponse("/me?done=repair", status_code=303)


@router.get("/me/report")
def me_report(request: Request) -> Response:
    """The subject's own signed report (the publication room's PDF, as ``GET /v1/me/report``)."""
    user, deny = require(request, ("subject",))
    if deny is not None:
        return deny
    assert user is not None and user.scope is not None
    from socialcredit.web.routes_publish import _issue

    return _issue(request, user.scope, "person")


# ---------------------------------------------------------------------- officer console


def _officer_of(user: User) -> str | None:
    """The officer's own subject key (the key's scope), needed to act: officers are subjects too."""
    if user.role in ("officer", "reviewer") and user.scope:
        return user.scope
    return None


def _staff_read(request: Request, user: User, subject: str) -> None:
    rt = _rt(request)
    rt.log.write(
        [],
        [
            rt.access_row(
                request, 200, "read", Principal(user.key_id, user.role, user.scope), subject=subject
            )
        ],
    )


@router.get("/console", response_class=HTMLResponse)
def console(request: Request) -> Response:
    user, deny = require(request, STAFF_ROLES)
    if deny is not None:
        return deny
    assert user is not None
    from socialcredit.cases.actions import case_json, list_cases

    qp = request.query_params
    case_type = qp.get("type") or None
    state = qp.get("state") or "open"
    rows = list_cases(
        _rt(request).engine,
        case_type=case_type if case_type in ("objection", "repair", "review", "tip") else None,
        state=None if state == "all" else state,
        limit=500,
    )
    today = _today(request)
    return render(
        request,
        "console/queue.html",
        user=user,
        cases=[case_json(r, today) for r in rows],
        case_type=case_type,
        state=state,
        officer=_officer_of(user),
        title="Case queue",
        **_flash(request),
    )


@router.get("/console/tips", response_class=HTMLResponse)
def console_tips(request: Request) -> Response:
    user, deny = require(request, STAFF_ROLES)
    if deny is not None:
        return deny
    from socialcredit.cases.actions import case_json, list_cases
    from socialcredit.cases.tips import flagged_reporters

    rt = _rt(request)
    today = _today(request)
    tips = [case_json(r, today) for r in list_cases(rt.engine, case_type="tip", open_only=True)]
    return render(
        request,
        "console/tips.html",
        user=user,
        tips=tips,
        flagged=flagged_reporters(rt.engine),
        title="Tips to verify",
    )


_CHOICES: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("review", "open"): [
        ("confirm", "Confirm the listing"),
        ("halt", "Halt the listing (it has no effect until lifted)"),
    ],
    ("review", "halted"): [("lift", "Lift the halt")],
    ("repair", "open"): [("approve", "Approve: the listing ends today"), ("reject", "Reject")],
    ("objection", "open"): [("extend", "Extend the deadline once (new evidence)")],
    ("tip", "open"): [
        ("verify", "Verified (the competent authority must still furnish any record)"),
        ("reject", "Reject"),
        ("duplicate", "Reject as a duplicate"),
    ],
}


def _case_page(
    request: Request, user: User, case_id: int, status: int = 200, errors: list[str] | None = None
) -> Response:
    from socialcredit.cases.actions import case_json, get_case
    from socialcredit.errors import NotFoundError

    rt = _rt(request)
    try:
        row = get_case(rt.engine, case_id)
    except NotFoundError:
        return error_page(request, 404, "Not found", f"There is no case {case_id}.")
    case = case_json(row, _today(request))
    _staff_read(request, user, case["subject_key"])
    wanted: set[int] = set()
    if case.get("record_seq"):
        wanted.add(int(case["record_seq"]))
    for r in (case.get("detail") or {}).get("records", []) or []:
        if isinstance(r, int):
            wanted.add(r)
    records = [
        v
        for v in rt.ledger.subject_records(case["subject_key"])
        if v.origin_id in wanted or v.record_id in wanted
    ]
    return render(
        request,
        "console/case.html",
        status,
        user=user,
        case=case,
        records=records,
        choices=_CHOICES.get((case["case_type"], case["state"]), []),
        officer=_officer_of(user),
        already=_officer_of(user) is not None
        and any(
            isinstance(r, dict) and r.get("actor") == _officer_of(user)
            for r in (case.get("detail") or {}).get("reviews", []) or []
        ),
        errors=errors,
        title=f"Case {case_id}",
    )


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
def console_case(request: Request, case_id: int) -> Response:
    user, deny = require(request, STAFF_ROLES)
    if deny is not None:
        return deny
    assert user is not None
    return _case_page(request, user, case_id)


def _decide(rt: Runtime, case: dict[str, Any], officer: str, decision: str, reason: str) -> None:
    from socialcredit.cases import objections, repairs, reviews, tips

    books = rt.status.rulebooks
    cid = int(case["case_id"])
    kind, state = case["case_type"], case["state"]
    if (kind, state) == ("review", "open") and decision == "confirm":
        reviews.confirm_review(rt.ledger, books, cid, officer, reason)
    elif (kind, state) == ("review", "open") and decision == "halt":
        reviews.halt_listing(
            rt.ledger,
            books,
            case["subject_key"],
            case["rulebook_id"],
            case["list_id"],
            officer,
            reason,
        )
    elif (kind, state) == ("review", "halted") and decision == "lift":
        reviews.lift_halt(rt.ledger, cid, officer, reason)
    elif (kind, state) == ("repair", "open") and decision in ("approve", "reject"):
        repairs.decide_repair(rt.ledger, cid, officer, decision == "approve", reason)
    elif (kind, state) == ("objection", "open") and decision == "extend":
        objections.extend_objection(rt.ledger, cid, officer, reason)
    elif (kind, state) == ("tip", "open") and decision == "verify":
        tips.verify_tip(rt.ledger, cid, officer, reason)
    elif (kind, state) == ("tip", "open") and decision in ("reject", "duplicate"):
        tips.reject_tip(rt.ledger, cid, officer, reason, duplicate=decision == "duplicate")
    else:
        from socialcredit.errors import InputError, Problem

        raise InputError(
            [
                Problem(
                    "decision", "not-allowed", decision, f"not a decision for a {state} {kind} case"
                )
            ]
        )


@router.post("/console/cases/{case_id}", response_class=HTMLResponse)
async def console_decide(request: Request, case_id: int) -> Response:
    from starlette.concurrency import run_in_threadpool

    user, deny = await run_in_threadpool(require, request, ("officer", "reviewer"))
    if deny is not None:
        return deny
    assert user is not None
    form = await request.form()
    if not await run_in_threadpool(_check_csrf, request, user, form):
        return error_page(request, 403, "Form expired", "Reload the page and send the form again.")
    officer = _officer_of(user)
    if officer is None:
        return error_page(
            request,
            403,
            "No officer identity",
            "This key is not scoped to an officer's subject key.",
        )
    from socialcredit.cases.actions import case_json, get_case
    from socialcredit.errors import ConflictError, InputError, NotFoundError

    rt = _rt(request)
    try:
        case = case_json(await run_in_threadpool(get_case, rt.engine, case_id))
        await run_in_threadpool(
            _decide, rt, case, officer, str(form.get("decision", "")), str(form.get("reason", ""))
        )
    except (InputError, ConflictError, NotFoundError) as e:
        return await run_in_threadpool(_case_page, request, user, case_id, 422, _problems_text(e))
    await run_in_threadpool(rt.after_write)
    return RedirectResponse(f"/console?done=decided&type={case['case_type']}", status_code=303)
