"""``socialcredit notices``: the outbox, its deliveries, contacts, party webhooks, subject access."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from socialcredit import ids
from socialcredit.cli.common import console, db_option, emit_json, fail, refusals
from socialcredit.ledger import Ledger

app = typer.Typer(
    help="Notices to subjects and relying parties: the outbox and its deliveries.",
    no_args_is_help=True,
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of tables.")


def _ledger(ctx: typer.Context) -> Ledger:
    return Ledger.open(db_option(ctx))


def _key(raw: str, as_json: bool) -> str:
    try:
        return ids.parse_key(raw).key
    except ids.IdError as e:
        fail([e.problem("subject")], as_json)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    batch: int = typer.Option(200, "--batch", min=1, help="Events per transaction."),
    as_json: bool = JSON_OPT,
) -> None:
    """Write the notices due: tail the ledger and the status history once (exactly once each)."""
    from socialcredit.cases.notices import Notifier

    with refusals(as_json), _ledger(ctx) as ledger:
        r = Notifier(ledger, batch=batch).run()
    out = {
        "notices": r.notices,
        "deliveries": r.deliveries,
        "ledger_watermark": r.ledger_watermark,
        "status_watermark": r.status_watermark,
    }
    if as_json:
        emit_json(out)
    else:
        console.print(
            f"{r.notices} notice(s) written, {r.deliveries} deliveries queued; read up to ledger "
            f"entry {r.ledger_watermark} and status change {r.status_watermark}"
        )


@app.command("baseline")
def baseline_cmd(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Start the notifier at the current heads: nothing already decided is noticed (use once when
    notices are switched on for an existing registry)."""
    from socialcredit.cases.notices import baseline

    with refusals(as_json), _ledger(ctx) as ledger:
        heads = baseline(ledger.engine)
    if as_json:
        emit_json(heads)
    else:
        console.print(
            f"notices start after ledger entry {heads['ledger']} and status change "
            f"{heads['status']}"
        )


@app.command("pump")
def pump_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(100, "--limit", min=1, help="Deliveries to try at most."),
    smtp: str | None = typer.Option(
        None, "--smtp", envvar="SOCIALCREDIT_SMTP", help="SMTP server host:port."
    ),
    mail_from: str | None = typer.Option(
        None, "--from", envvar="SOCIALCREDIT_MAIL_FROM", help="Sender address of notice e-mails."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Send the deliveries that are due once (e-mail, webhook); failures retry with backoff."""
    from socialcredit.cases.delivery import DeliverySettings, pump

    with refusals(as_json):
        env: dict[str, str] = {}
        if smtp:
            env["SOCIALCREDIT_SMTP"] = smtp
        if mail_from:
            env["SOCIALCREDIT_MAIL_FROM"] = mail_from
        settings = DeliverySettings.from_env(env)
        with _ledger(ctx) as ledger:
            r = pump(ledger.engine, ledger.clock, settings, limit=limit)
    out = {"sent": r.sent, "failed": r.failed, "dead": r.dead, "waiting": r.waiting}
    if as_json:
        emit_json(out)
    else:
        console.print(
            f"sent {r.sent}, failed {r.failed} (will retry), dead {r.dead}, "
            f"waiting {r.waiting} (no SMTP server)"
        )


def _notice_table(items: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    for col in ("id", "created", "to", "about", "kind", "title", "delivery"):
        t.add_column(col, overflow="fold")
    for n in items:
        t.add_row(
            str(n["notice_id"]),
            n["created_at"][:19],
            f"{n['recipient_kind']}:{n['recipient']}",
            n["subject"],
            n["kind"],
            n["title"],
            ", ".join(f"{d['channel']} {d['state']}" for d in n["deliveries"]) or "inbox only",
        )
    return t


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    subject: str | None = typer.Option(None, "--subject", help="A subject's inbox."),
    party: str | None = typer.Option(None, "--party", help="A relying party's inbox."),
    about: str | None = typer.Option(None, "--about", help="Every notice about a subject."),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = JSON_OPT,
) -> None:
    """List notices, newest first."""
    from socialcredit.cases.notices import list_notices

    with refusals(as_json), _ledger(ctx) as ledger:
        items = list_notices(
            ledger.engine,
            subject=_key(subject, as_json) if subject else None,
            party=party,
            about=_key(about, as_json) if about else None,
            limit=limit,
        )
    if as_json:
        emit_json(items)
    else:
        console.print(_notice_table(items, f"{len(items)} notice(s)"))


@app.command("show")
def show_cmd(ctx: typer.Context, notice_id: int, as_json: bool = JSON_OPT) -> None:
    """One notice in full."""
    from socialcredit.cases.notices import get_notice

    with refusals(as_json), _ledger(ctx) as ledger:
        n = get_notice(ledger.engine, notice_id)
    if as_json:
        emit_json(n)
    else:
        console.print(n["body"]["text"], markup=False, highlight=False)
        for d in n["deliveries"]:
            console.print(
                f"delivery {d['delivery_id']}: {d['channel']} → {d['target']}: {d['state']} "
                f"after {d['attempts']} attempt(s)"
                + (f" — {d['last_error']}" if d["last_error"] else ""),
                markup=False,
            )


@app.command("deliveries")
def deliveries_cmd(
    ctx: typer.Context,
    state: str | None = typer.Option(None, "--state", help="pending | sent | failed | dead"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = JSON_OPT,
) -> None:
    """List deliveries, newest first (``--state dead`` to find the ones to re-drive)."""
    from socialcredit.cases.delivery import list_deliveries

    with refusals(as_json), _ledger(ctx) as ledger:
        items = list_deliveries(ledger.engine, state=state, limit=limit)
    if as_json:
        emit_json(items)
        return
    t = Table(title=f"{len(items)} deliveries")
    for col in ("id", "notice", "channel", "target", "state", "attempts", "last error"):
        t.add_column(col, overflow="fold")
    for d in items:
        t.add_row(
            str(d["delivery_id"]),
            str(d["notice_id"]),
            d["channel"],
            d["target"],
            d["state"],
            str(d["attempts"]),
            d["last_error"] or "",
        )
    console.print(t)


@app.command("redrive")
def redrive_cmd(ctx: typer.Context, delivery_id: int, as_json: bool = JSON_OPT) -> None:
    """Put a failed or dead delivery back in the queue (attempts reset, due now)."""
    from socialcredit.cases.delivery import redrive

    with refusals(as_json), _ledger(ctx) as ledger:
        d = redrive(ledger.engine, ledger.clock, delivery_id)
    if as_json:
        emit_json(d)
    else:
        console.print(f"delivery {delivery_id} is pending again")


@app.command("contact")
def contact_cmd(
    ctx: typer.Context,
    subject: str,
    email: str | None = typer.Option(None, "--email"),
    webhook: str | None = typer.Option(None, "--webhook", help="Webhook URL."),
    secret: str | None = typer.Option(None, "--secret", help="Webhook signing secret."),
    as_json: bool = JSON_OPT,
) -> None:
    """Set how a subject is told (e-mail, webhook); without options, show it."""
    from socialcredit.cases.delivery import get_contact, set_contact

    key = _key(subject, as_json)
    with refusals(as_json), _ledger(ctx) as ledger:
        if email is None and webhook is None:
            out = get_contact(ledger.engine, key)
        else:
            out = set_contact(
                ledger.engine,
                ledger.clock,
                key,
                email=email,
                webhook_url=webhook,
                webhook_secret=secret,
            )
    if as_json:
        emit_json(out)
    else:
        console.print(out)


@app.command("webhook")
def webhook_cmd(
    ctx: typer.Context,
    party: str,
    url: str | None = typer.Option(None, "--url", help="Webhook URL for correction notices."),
    secret: str | None = typer.Option(None, "--secret", help="Signing secret (16-200 chars)."),
    email: str | None = typer.Option(None, "--email"),
    as_json: bool = JSON_OPT,
) -> None:
    """Register where a relying party receives correction notices; without options, show it."""
    from socialcredit.cases.delivery import get_party_webhook, set_party_webhook

    with refusals(as_json), _ledger(ctx) as ledger:
        if url is None and email is None:
            out = get_party_webhook(ledger.engine, party)
        else:
            out = set_party_webhook(
                ledger.engine, ledger.clock, party, url=url, secret=secret, email=email
            )
    if as_json:
        emit_json(out)
    else:
        console.print(out)


@app.command("file")
def file_cmd(ctx: typer.Context, subject: str, as_json: bool = JSON_OPT) -> None:
    """A subject's whole file: records, status with explanations, decisions, cases, notices."""
    from socialcredit.cases.access import subject_file
    from socialcredit.status.service import StatusService

    key = _key(subject, as_json)
    with refusals(as_json), _ledger(ctx) as ledger:
        out = subject_file(ledger, StatusService(ledger).rulebooks, key)
    if as_json:
        emit_json(out)
        return
    console.rule(f"The file of {key} (as of {out['as_of']})")
    console.print(f"{len(out['records'])} record(s)")
    for r in out["records"]:
        console.print(
            f"  #{r['record_id']} {r['kind']} {r['decision_no']} ({r['decision_date']}) by "
            f"{r['provenance']['authority_name'] or r['authority_id']}: {r['state']}"
            + (", disputed" if r["disputed"] else "")
            + (", suspended" if r["suspended"] else ""),
            markup=False,
        )
    for s in out["status"]:
        e = s["explanation"]
        lists = ", ".join(m["list"] for m in e.get("memberships", [])) or "no list"
        pending = ", ".join(f"{p['list']} from {p['effective']}" for p in e.get("pending", []))
        console.print(
            f"{s['rulebook']}: {lists}" + (f"; pending {pending}" if pending else ""), markup=False
        )
    console.print(f"{len(out['decisions'])} decision(s) about you by:")
    for p in out["recipients"]:
        console.print(
            f"  {p['party_name'] or p['party']} ({p['party']}): {p['checks']} check(s), last "
            f"{p['last'][:19]}",
            markup=False,
        )
    cases = out["cases"]["items"]
    console.print(f"{len(cases)} case(s), {len(out['notices'])} notice(s)")
    console.print(f"{len(out['access_log'])} logged read(s) or refusal(s) of your file")
