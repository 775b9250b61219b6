"""CLI for enforcement: ``serve``, ``keys``, ``parties`` and ``status``.

Wire into the main app as::

    app.command("serve")(serve_cmd.app_serve)
    app.add_typer(serve_cmd.keys_app, name="keys")
    app.add_typer(serve_cmd.parties_app, name="parties")
    app.add_typer(serve_cmd.status_app, name="status")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer
from rich.table import Table

from socialcredit.cli.common import console, db_option, emit_json, refusals
from socialcredit.errors import InputError, Problem
from socialcredit.ledger import Ledger
from socialcredit.status.retention import (
    ACCESS_DEFAULT_MONTHS,
    DEFAULT_MONTHS,
    FOREVER,
    MIN_MONTHS,
    Retention,
)

keys_app = typer.Typer(help="API keys: one role and scope each.", no_args_is_help=True)
parties_app = typer.Typer(
    help="Relying parties and the measure domains they may ask about.", no_args_is_help=True
)
status_app = typer.Typer(
    help="Live status: active rulebooks, catch-up, sweep, rebuild.", no_args_is_help=True
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _ledger(ctx: typer.Context) -> Ledger:
    return Ledger.open(db_option(ctx))


# ---------------------------------------------------------------------- serve


def app_serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    rulebook: list[str] = typer.Option(
        [], "--rulebook", help="Activate this rulebook first if it is not active (repeat)."
    ),
    poll: float = typer.Option(
        0.02, "--poll", help="Seconds between index refreshes in each worker."
    ),
    decision_retention: str = typer.Option(
        str(DEFAULT_MONTHS),
        "--decision-retention",
        help=f"Months an answer stays in the decision log (at least {MIN_MONTHS}), "
        "or 'forever'. Told to subjects with their decisions.",
    ),
    access_log_retention: str = typer.Option(
        str(ACCESS_DEFAULT_MONTHS),
        "--access-log-retention",
        help=f"Months an entry stays in the access log (refusals, staff reads; at least "
        f"{MIN_MONTHS}), or 'forever'. Told to subjects in their file.",
    ),
    print_openapi: bool = typer.Option(
        False, "--print-openapi", help="Print the OpenAPI document and exit."
    ),
) -> None:
    """Serve the HTTP API (eligibility checks, records, subject access, audit)."""
    if print_openapi:
        from socialcredit.web.app import openapi_text

        typer.echo(openapi_text(), nl=False)
        return
    import uvicorn

    periods: dict[str, Retention] = {}
    for option, text in (
        ("--decision-retention", decision_retention),
        ("--access-log-retention", access_log_retention),
    ):
        try:
            periods[option] = Retention.parse(text, option)
        except InputError as e:
            raise typer.BadParameter(e.problems[0].message, param_hint=option) from None
    retention, access = periods["--decision-retention"], periods["--access-log-retention"]
    db = db_option(ctx)
    with refusals(False), _ledger(ctx) as ledger:
        from socialcredit.rulebooks import load
        from socialcredit.status.service import StatusService

        svc = StatusService(ledger)
        active = {a.rulebook.id: a.rulebook.version for a in svc.active()}
        for name in rulebook:
            rb = load(name)
            if active.get(rb.id) != rb.version:
                report = svc.activate(name)
                console.print(f"Activated {rb.ref}: {report.subjects} subjects evaluated")
        svc.catch_up()
        url = ledger.url
        if not svc.active():
            console.print(
                "[yellow]No rulebook is active:[/yellow] every check answers no-restriction and "
                "/readyz reports not ready. Use --rulebook NAME or `socialcredit status activate`."
            )
    if db is not None:
        os.environ["SOCIALCREDIT_DB"] = db
    os.environ["SOCIALCREDIT_SERVE_POLL"] = str(poll)
    os.environ["SOCIALCREDIT_SERVE_DECISION_RETENTION"] = str(retention.months or FOREVER)
    os.environ["SOCIALCREDIT_SERVE_ACCESS_LOG_RETENTION"] = str(access.months or FOREVER)
    os.environ["SOCIALCREDIT_SERVE_WORKERS"] = str(workers)  # each takes its share of a rate
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="socialcredit-metrics-")
    kept, kept_access = (
        "without limit" if r.months is None else f"{r.months} months" for r in (retention, access)
    )
    console.print(
        f"Serving {url} on http://{host}:{port} with {workers} worker(s); decisions are kept "
        f"{kept}, the access log {kept_access}"
    )
    uvicorn.run(
        "socialcredit.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


# ---------------------------------------------------------------------- keys


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: str = typer.Option(
        ...,
        "--role",
        help="provider, relying-party, subject, officer, reviewer, auditor or public.",
    ),
    authority: str | None = typer.Option(None, "--authority", help="Scope of a provider key."),
    relying_party: str | None = typer.Option(
        None, "--relying-party", help="Scope of a relying-party key."
    ),
    subject: str | None = typer.Option(None, "--subject", help="Scope of a subject key."),
    label: str | None = typer.Option(None, "--label", help="A note on whose key it is."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create an API key. The key is printed once and never stored: keep it."""
    from socialcredit.web.keys import create_key

    scopes = [s for s in (authority, relying_party, subject) if s]
    with refusals(as_json), _ledger(ctx) as ledger:
        if len(scopes) > 1:
            from socialcredit.errors import InputError, Problem

            raise InputError(
                [Problem("scope", "one-scope", ", ".join(scopes), "give at most one scope")]
            )
        key, token = create_key(
            ledger.engine, ledger.clock.now(), role, scopes[0] if scopes else None, label
        )
    if as_json:
        emit_json({"ok": True, **key.as_dict(), "key": token})
    else:
        console.print(f"[green]Created[/green] {role} key {key.key_id} (scope: {key.scope or '-'})")
        console.print("Keep this key; it is not shown again:")
        typer.echo(token)


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List API keys (never their secrets)."""
    from socialcredit.web.keys import list_keys

    with _ledger(ctx) as ledger:
        keys = list_keys(ledger.engine)
    if as_json:
        emit_json([k.as_dict() for k in keys])
        return
    t = Table(title="API keys")
    for col in ("key id", "role", "scope", "label", "created", "revoked"):
        t.add_column(col)
    for k in keys:
        t.add_row(
            k.key_id,
            k.role,
            k.scope or "",
            k.label or "",
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )
    console.print(t)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key id (the part after sck_)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Revoke a key. Running API workers refuse it within one poll interval."""
    from socialcredit.web.keys import revoke_key

    with refusals(as_json), _ledger(ctx) as ledger:
        key = revoke_key(ledger.engine, key_id, ledger.clock.now())
    if as_json:
        emit_json({"ok": True, **key.as_dict()})
    else:
        console.print(f"[green]Revoked[/green] {key.key_id} ({key.role})")


# ---------------------------------------------------------------------- parties


@parties_app.command("add")
def parties_add(
    ctx: typer.Context,
    party_id: str = typer.Argument(..., help="A short stable id, e.g. air-china."),
    name: str = typer.Option(..., "--name", help="The relying party's name."),
    type: str = typer.Option(..., "--type", help="A relying-party type from the catalogue."),
    domain: list[str] = typer.Option(
        [], "--domain", help="A domain it may ask about (repeat; default: all of its type's)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Register a relying party (or change its name, type or domains)."""
    from socialcredit.status.parties import add_party

    with refusals(as_json), _ledger(ctx) as ledger:
        party = add_party(
            ledger.engine, ledger.catalogue, ledger.clock.now(), party_id, name, type, domain
        )
    if as_json:
        emit_json({"ok": True, **party.as_dict()})
    else:
        console.print(
            f"[green]Registered[/green] {party.party_id} ({party.type}) for "
            f"{', '.join(sorted(party.domains))}"
        )


@parties_app.command("limit")
def parties_limit(
    ctx: typer.Context,
    party_id: str = typer.Argument(..., help="A registered relying party."),
    daily: str | None = typer.Option(
        None,
        "--daily",
        help="Answers it may be given a day (UTC), all its keys together; 'none': no limit.",
    ),
    per_second: str | None = typer.Option(
        None,
        "--per-second",
        help="Answers a second on average, all its keys and the workers together; 'none'.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Limit the answers a relying party is given: past its daily limit its checks are refused
    (429) until midnight UTC; past its rate they wait (429 with Retry-After). Every running worker
    applies a change within a second."""
    from socialcredit.status.parties import parse_limit, set_limits

    with refusals(as_json), _ledger(ctx) as ledger:
        if daily is None and per_second is None:
            raise InputError(
                [Problem("limit", "required", None, "give --daily N, --per-second N, or both")]
            )
        limits = {
            column: parse_limit(text, option)
            for column, text, option in (
                ("daily_limit", daily, "--daily"),
                ("rate_limit", per_second, "--per-second"),
            )
            if text is not None
        }
        party = set_limits(ledger.engine, party_id, ledger.clock.now(), limits)
    if as_json:
        emit_json({"ok": True, **party.as_dict()})
        return
    said = [
        "no daily limit"
        if party.daily_limit is None
        else f"{party.daily_limit:,} answers a day (UTC)",
        "no rate limit" if party.rate_limit is None else f"{party.rate_limit:,} a second",
    ]
    console.print(f"[green]Limits of {party.party_id}[/green]: {', '.join(said)}")


@parties_app.command("list")
def parties_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List relying parties, with their limits and the answers given today (UTC)."""
    from socialcredit.status.db import naive_utc
    from socialcredit.status.parties import list_parties, usage

    with _ledger(ctx) as ledger:
        parties = list_parties(ledger.engine)
        today = naive_utc(ledger.clock.now()).date()
        used = usage(ledger.engine, today)
    if as_json:
        emit_json([{**p.as_dict(), "used_today": used.get(p.party_id, 0)} for p in parties])
        return
    t = Table(title=f"Relying parties (answers on {today.isoformat()}, UTC)")
    numbers = ("daily limit", "today", "a second")
    for col in ("id", "name", "type", "domains", *numbers):
        t.add_column(col, justify="right" if col in numbers else "left")
    for p in parties:
        t.add_row(
            p.party_id,
            p.name,
            p.type,
            ", ".join(sorted(p.domains)),
            "none" if p.daily_limit is None else f"{p.daily_limit:,}",
            f"{used.get(p.party_id, 0):,}",
            "none" if p.rate_limit is None else f"{p.rate_limit:,}",
        )
    console.print(t)


@parties_app.command("usage")
def parties_usage(
    ctx: typer.Context,
    party_id: str = typer.Argument(..., help="A registered relying party."),
    days: int = typer.Option(14, "--days", min=1, max=366, help="Days up to the last (UTC)."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="The last day shown, YYYY-MM-DD (default: today, UTC)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """The answers a relying party was given each day, against its daily limit."""
    import datetime as dt

    from socialcredit.status.db import naive_utc
    from socialcredit.status.parties import get_party, usage_history

    with refusals(as_json), _ledger(ctx) as ledger:
        try:
            last = dt.date.fromisoformat(as_of) if as_of else naive_utc(ledger.clock.now()).date()
        except ValueError:
            raise InputError(
                [Problem("as_of", "date", as_of, "--as-of must be a date written YYYY-MM-DD")]
            ) from None
        party = get_party(ledger.engine, party_id)
        rows = usage_history(ledger.engine, party_id, days, last)
    if as_json:
        days_out = [{"day": d.isoformat(), "answers": n} for d, n in rows]
        emit_json({**party.as_dict(), "days": days_out})
        return
    limit = party.daily_limit
    top = max([limit or 0, *(n for _, n in rows)]) or 1
    t = Table(title=f"Answers given to {party.party_id} a day (UTC)")
    for col in ("day", "answers", "of the limit", ""):
        t.add_column(col, justify="left" if col in ("day", "") else "right")
    for d, n in rows:
        share = "" if limit is None else (f"{n / limit:.0%}" if limit else "-")
        bar = "█" * round(30 * n / top)
        full = limit is not None and n >= limit
        t.add_row(d.isoformat(), f"{n:,}", share, f"[red]{bar}[/red]" if full else bar)
    console.print(t)
    console.print(
        "No daily limit." if limit is None else f"Daily limit: {limit:,} answers (UTC days)."
    )


# ---------------------------------------------------------------------- status


@status_app.command("activate")
def status_activate(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A shipped rulebook name or a rulebook folder."),
    as_json: bool = JSON_OPT,
) -> None:
    """Enforce a rulebook: lint it (historical ones are refused) and rebuild the status."""
    from socialcredit.status.service import StatusService

    with refusals(as_json), _ledger(ctx) as ledger:
        report = StatusService(ledger).activate(Path(name) if Path(name).exists() else name)
    if as_json:
        emit_json({"ok": True, "subjects": report.subjects, "watermark": report.watermark})
    else:
        console.print(f"[green]Active[/green]: {name}; {report.subjects} subjects evaluated")


@status_app.command("deactivate")
def status_deactivate(
    ctx: typer.Context,
    rulebook_id: str = typer.Argument(..., help="The rulebook id."),
    as_json: bool = JSON_OPT,
) -> None:
    """Stop enforcing a rulebook (its measures are lifted at once)."""
    from socialcredit.status.service import StatusService

    with refusals(as_json), _ledger(ctx) as ledger:
        report = StatusService(ledger).deactivate(rulebook_id)
    if as_json:
        emit_json({"ok": True, "subjects": report.subjects})
    else:
        console.print(f"[green]Deactivated[/green] {rulebook_id}")


@status_app.command("list")
def status_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List active rulebooks and how far the status has caught up with the ledger."""
    from socialcredit.status.service import StatusService

    with _ledger(ctx) as ledger:
        svc = StatusService(ledger)
        rows = [
            {
                "rulebook": a.rulebook.ref,
                "source": a.source,
                "activated_at": a.activated_at.isoformat(),
            }
            for a in svc.active()
        ]
        lag = svc.lag()
    if as_json:
        emit_json({"active": rows, "lag": lag})
        return
    t = Table(title=f"Active rulebooks (status {lag} entries behind the ledger)")
    for col in ("rulebook", "source", "activated at"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["rulebook"], r["source"], r["activated_at"])
    console.print(t)


def _run(ctx: typer.Context, what: str, as_json: bool) -> None:
    from socialcredit.status.service import StatusService

    with refusals(as_json), _ledger(ctx) as ledger:
        svc = StatusService(ledger)
        report = getattr(svc, what)()
    if as_json:
        emit_json(
            {
                "ok": True,
                "subjects": report.subjects,
                "changed": report.changed,
                "watermark": report.watermark,
            }
        )
    else:
        console.print(
            f"{what}: {report.subjects} subjects evaluated, {report.changed} changed; "
            f"watermark {report.watermark}"
        )


@status_app.command("catch-up")
def status_catch_up(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Reflect every ledger entry not yet reflected (the API does this continuously)."""
    _run(ctx, "catch_up", as_json)


@status_app.command("sweep")
def status_sweep(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Re-evaluate subjects whose status changes today (terms ending, points restored)."""
    _run(ctx, "sweep", as_json)


@status_app.command("rebuild")
def status_rebuild(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Recompute all status from the ledger."""
    _run(ctx, "rebuild", as_json)


@status_app.command("show")
def status_show(
    ctx: typer.Context,
    subject: str = typer.Argument(..., help="SCHEME:VALUE"),
    as_json: bool = JSON_OPT,
) -> None:
    """A subject's materialised status and its history."""
    from socialcredit.status.service import StatusService

    with refusals(as_json), _ledger(ctx) as ledger:
        svc = StatusService(ledger)
        current, history = svc.current(subject), svc.history(subject)
    if as_json:
        emit_json({"current": current, "history": history})
        return
    for row in current:
        st = row["status"]
        console.print(
            f"[bold]{row['rulebook']}[/bold] evaluated for {row['evaluated_for']}, "
            f"next change {row['next_change'] or '-'}"
        )
        for m in st["memberships"]:
            console.print(f"  listed on {m['list']} since {m['since']} (records {m['basis']})")
        for m in st["measures"]:
            console.print(f"  measure {m['measure']} via {m['via']} ({m['memorandum']})")
    console.print(f"{len(history)} status change(s) recorded")
