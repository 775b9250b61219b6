"""``socialcredit watch``: watchlists (partners to monitor) and their signed webhook alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from socialcredit.cli.common import console, db_option, emit_json, refusals

app = typer.Typer(
    help="Watchlists: partners an enterprise monitors, with signed webhook alerts.",
    no_args_is_help=True,
)

if TYPE_CHECKING:
    from socialcredit.ledger import Ledger
    from socialcredit.publish.watchlists import Watcher

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
OWNER_HELP = "org:SCHEME:VALUE (an organisation) or party:PARTY_ID (a relying party)."


def _watcher(ledger: Ledger) -> Watcher:
    from socialcredit.publish.reports import registry_name
    from socialcredit.publish.signing import registry_signer
    from socialcredit.publish.watchlists import Watcher
    from socialcredit.status.service import StatusService

    status = StatusService(ledger)
    return Watcher(
        ledger.engine,
        lambda: status.rulebooks,
        ledger.clock,
        lambda: registry_signer(ledger.engine, ledger.clock.now()),
        registry=registry_name(),
    )


@app.command("add")
def add(
    ctx: typer.Context,
    owner: str = typer.Argument(..., help=OWNER_HELP),
    subject: str = typer.Argument(..., help="SCHEME:VALUE of the partner to watch."),
    webhook: str = typer.Option(..., "--webhook", help="Where alerts are POSTed."),
    as_json: bool = JSON_OPT,
) -> None:
    """Watch SUBJECT for OWNER: alerts go to the webhook when its public status changes."""
    from socialcredit.ledger import Ledger
    from socialcredit.publish.watchlists import parse_owner

    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        out = _watcher(ledger).add(parse_owner(owner), subject, webhook)
    if as_json:
        emit_json({"ok": True, **out})
    else:
        console.print(
            f"[green]{out['owner']} watches {out['subject']}[/green] "
            f"({len(out['public'])} public entries now) → {out['webhook_url']}"
        )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    owner: str | None = typer.Argument(None, help=OWNER_HELP),
    alerts: bool = typer.Option(False, "--alerts", help="List alerts instead of watches."),
    as_json: bool = JSON_OPT,
) -> None:
    """List watches (or alerts, with their delivery state), optionally of one owner."""
    from socialcredit.ledger import Ledger
    from socialcredit.publish.watchlists import list_alerts, list_watches, parse_owner

    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        who = parse_owner(owner) if owner else None
        rows = list_alerts(ledger.engine, who) if alerts else list_watches(ledger.engine, who)
    if as_json:
        emit_json(rows)
        return
    if alerts:
        t = Table(title="Watchlist alerts")
        for c in ("id", "owner", "subject", "status", "attempts", "next try", "last error"):
            t.add_column(c)
        for a in rows:
            t.add_row(
                str(a["alert_id"]),
                a["owner"],
                a["subject"],
                a["status"],
                str(a["attempts"]),
                a["next_attempt_at"] or "",
                a["last_error"] or "",
            )
    else:
        t = Table(title="Watchlists")
        for c in ("owner", "subject", "webhook", "since"):
            t.add_column(c)
        for w in rows:
            t.add_row(w["owner"], w["subject"], w["webhook_url"], w["created_at"])
    console.print(t)


@app.command("remove")
def remove(
    ctx: typer.Context,
    owner: str = typer.Argument(..., help=OWNER_HELP),
    subject: str = typer.Argument(..., help="SCHEME:VALUE of the partner."),
    as_json: bool = JSON_OPT,
) -> None:
    """Stop watching SUBJECT for OWNER."""
    from socialcredit.ledger import Ledger
    from socialcredit.publish.watchlists import parse_owner, remove_watch

    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        remove_watch(ledger.engine, parse_owner(owner), subject)
    if as_json:
        emit_json({"ok": True})
    else:
        console.print("[green]Removed.[/green]")


@app.command("pump")
def pump(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Find public status changes of watched subjects and deliver due alerts (once)."""
    from socialcredit.ledger import Ledger
    from socialcredit.status.service import StatusService

    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        StatusService(ledger).catch_up()
        report = _watcher(ledger).pump()
    if as_json:
        emit_json({"ok": True, **report.as_dict()})
    else:
        console.print(
            f"checked {report.checked} watched subject(s); {report.alerts} new alert(s); "
            f"{report.delivered} delivered, {report.failed} failed (retried later)"
        )
