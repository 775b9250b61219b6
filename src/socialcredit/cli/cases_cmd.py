"""``socialcredit cases``: the officer's and auditor's operations on cases (``--json`` everywhere).

Officers name themselves with ``--officer`` (their own subject key: officers are subjects too);
every action is appended to the ledger's hash chain with who, what and why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer
from rich.table import Table

from socialcredit.cli.common import console, db_option, emit_json, refusals
from socialcredit.ledger import Ledger

app = typer.Typer(
    help="Cases: objections, repair applications, reviews and tips.", no_args_is_help=True
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of tables.")
OFFICER_OPT = typer.Option(..., "--officer", help="Your own subject key (cn-rid:...).")
REASON_OPT = typer.Option(..., "--reason", help="Why (recorded in the audit log).")


def _ledger(ctx: typer.Context) -> Ledger:
    return Ledger.open(db_option(ctx))


def _status(ledger: Ledger) -> Any:
    from socialcredit.status.service import StatusService

    return StatusService(ledger)


def _show_cases(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    if as_json:
        emit_json({"items": rows})
        return
    t = Table(title=title)
    for col in ("case", "type", "state", "subject", "list", "deadline", "late", "outcome"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(
            str(r["case_id"]),
            r["case_type"],
            r["state"] + (" (missed)" if r.get("missed") else ""),
            r["subject_key"],
            r.get("list_id") or "",
            r.get("deadline") or "",
            "late" if r.get("late") or r.get("overdue") else "",
            r.get("outcome") or "",
        )
    console.print(t)


def _done(case: dict[str, Any], as_json: bool, what: str) -> None:
    from socialcredit.cases.actions import case_json

    out = case_json(case)
    if as_json:
        emit_json({"ok": True, "case": out})
    else:
        console.print(
            f"[green]{what}[/green]: case {out['case_id']} is {out['state']}"
            + (f" ({out['outcome']})" if out.get("outcome") else "")
            + (" [yellow]late[/yellow]" if out.get("late") else "")
        )


@app.command("sweep")
def sweep_cmd(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Process due deadlines (suspend unanswered objections, flag late decisions) and open
    review cases for new proposals. Idempotent."""
    from socialcredit.cases.sweep import sweep

    with refusals(as_json), _ledger(ctx) as ledger:
        report = sweep(_status(ledger))
    if as_json:
        emit_json({"ok": True, **report.as_dict()})
    else:
        console.print(
            f"suspended {len(report.suspended)}, late {len(report.missed)}, "
            f"closed {len(report.closed)}, review cases opened {len(report.reviews_opened)}"
        )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    type: str | None = typer.Option(None, "--type", help="objection, repair, review or tip"),
    state: str | None = typer.Option(None, "--state", help="open (default), decided, ..."),
    all_states: bool = typer.Option(False, "--all", help="Every state."),
    subject: str | None = typer.Option(None, "--subject"),
    due_before: str | None = typer.Option(None, "--due-before", help="YYYY-MM-DD"),
    limit: int = typer.Option(200, "--limit"),
    as_json: bool = JSON_OPT,
) -> None:
    """The case queue, earliest deadline first."""
    from socialcredit.cases.actions import case_json, list_cases
    from socialcredit.cases.objections import subject_key

    with refusals(as_json), _ledger(ctx) as ledger:
        rows = list_cases(
            ledger.engine,
            subject=subject_key(subject) if subject else None,
            case_type=type,
            state=None if all_states else (state or "open"),
            due_before=dt.date.fromisoformat(due_before) if due_before else None,
            limit=limit,
        )
        today = ledger.today()
    _show_cases([case_json(r, today) for r in rows], as_json, "Cases")


@app.command("show")
def show_cmd(ctx: typer.Context, case_id: int, as_json: bool = JSON_OPT) -> None:
    """One case, with its actions."""
    from socialcredit.cases.actions import case_json, get_case, list_actions

    with refusals(as_json), _ledger(ctx) as ledger:
        case = case_json(get_case(ledger.engine, case_id), ledger.today())
        case["actions"] = list_actions(ledger.engine, case_id=case_id, limit=10_000)
    if as_json:
        emit_json(case)
        return
    _show_cases([case], False, f"Case {case_id}")
    for a in case["actions"]:
        console.print(
            f"  {a['recorded_at']}  {a['action']:<18} {a['actor']:<28} {a['reason'] or ''}"
        )


@app.command("decide")
def decide_cmd(
    ctx: typer.Context,
    case_id: int,
    approve: bool = typer.Option(..., "--approve/--reject", help="Approve or reject the repair."),
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Decide a repair application (approval ends the listing through the engine)."""
    from socialcredit.cases.repairs import decide_repair

    with refusals(as_json), _ledger(ctx) as ledger:
        case = decide_repair(ledger, case_id, officer, approve, reason)
        _status(ledger).catch_up()
    _done(case, as_json, "Decided")


@app.command("extend")
def extend_cmd(
    ctx: typer.Context,
    case_id: int,
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Extend a running objection once by 15 days (new evidence; never beyond 45 days)."""
    from socialcredit.cases.objections import extend_objection

    with refusals(as_json), _ledger(ctx) as ledger:
        case = extend_objection(ledger, case_id, officer, reason)
    _done(case, as_json, "Extended")


@app.command("confirm")
def confirm_cmd(
    ctx: typer.Context,
    case_id: int,
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Confirm a proposed listing (four eyes: a second, different officer)."""
    from socialcredit.cases.reviews import confirm_review

    with refusals(as_json), _ledger(ctx) as ledger:
        status = _status(ledger)
        case = confirm_review(ledger, status.rulebooks, case_id, officer, reason)
        status.catch_up()
    _done(case, as_json, "Confirmed")


@app.command("halt")
def halt_cmd(
    ctx: typer.Context,
    subject: str,
    rulebook: str,
    list_id: str = typer.Argument(..., metavar="LIST"),
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Halt an automated listing (withheld, no measures, until lifted)."""
    from socialcredit.cases.reviews import halt_listing

    with refusals(as_json), _ledger(ctx) as ledger:
        status = _status(ledger)
        case = halt_listing(ledger, status.rulebooks, subject, rulebook, list_id, officer, reason)
        status.catch_up()
    _done(case, as_json, "Halted")


@app.command("lift")
def lift_cmd(
    ctx: typer.Context,
    case_id: int,
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Lift a halt."""
    from socialcredit.cases.reviews import lift_halt

    with refusals(as_json), _ledger(ctx) as ledger:
        case = lift_halt(ledger, case_id, officer, reason)
        _status(ledger).catch_up()
    _done(case, as_json, "Lifted")


@app.command("verify")
def verify_cmd(
    ctx: typer.Context,
    case_id: int,
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Verify a tip (rewardable). A record must still be furnished by the competent authority."""
    from socialcredit.cases.tips import verify_tip

    with refusals(as_json), _ledger(ctx) as ledger:
        case = verify_tip(ledger, case_id, officer, reason)
    _done(case, as_json, "Verified")


@app.command("reject")
def reject_cmd(
    ctx: typer.Context,
    case_id: int,
    officer: str = OFFICER_OPT,
    reason: str = REASON_OPT,
    duplicate: bool = typer.Option(False, "--duplicate", help="The tip repeats an earlier one."),
    as_json: bool = JSON_OPT,
) -> None:
    """Reject a tip; repeated rejections flag the reporter."""
    from socialcredit.cases.tips import reject_tip

    with refusals(as_json), _ledger(ctx) as ledger:
        case = reject_tip(ledger, case_id, officer, reason, duplicate=duplicate)
    _done(case, as_json, "Rejected")


@app.command("actions")
def actions_cmd(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor"),
    action: str | None = typer.Option(None, "--action"),
    subject: str | None = typer.Option(None, "--subject"),
    case: int | None = typer.Option(None, "--case"),
    since: str | None = typer.Option(None, "--since", help="ISO date or time (UTC)"),
    until: str | None = typer.Option(None, "--until", help="ISO date or time (UTC), exclusive"),
    limit: int = typer.Option(1000, "--limit"),
    as_json: bool = JSON_OPT,
) -> None:
    """The auditor's view: officer actions and case events from the hash-chained ledger."""
    from socialcredit.cases.actions import ActionFilter, list_actions
    from socialcredit.cases.objections import subject_key
    from socialcredit.clock import to_utc

    def when(v: str | None) -> dt.datetime | None:
        return None if v is None else to_utc(v).replace(tzinfo=None)

    with refusals(as_json), _ledger(ctx) as ledger:
        items = list_actions(
            ledger.engine,
            ActionFilter(
                actor,
                action,
                subject_key(subject) if subject else None,
                case,
                when(since),
                when(until),
                None,
                limit,
            ),
        )
    if as_json:
        emit_json({"items": items})
        return
    t = Table(title="Actions")
    for col in ("seq", "at", "action", "actor", "subject", "case", "why"):
        t.add_column(col, overflow="fold")
    for a in items:
        t.add_row(
            str(a["seq"]),
            a["recorded_at"],
            a["action"],
            a["actor"],
            a["subject"] or "",
            str(a["case_id"] or ""),
            a["reason"] or "",
        )
    console.print(t)


@app.command("rebuild")
def rebuild_cmd(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Recompute the cases table from the ledger's action entries."""
    from socialcredit.cases.actions import rebuild_cases

    with refusals(as_json), _ledger(ctx) as ledger:
        n = rebuild_cases(ledger)
    if as_json:
        emit_json({"ok": True, "cases": n})
    else:
        console.print(f"[green]Rebuilt[/green] {n} cases from the ledger")


@app.command("check")
def check_cmd(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Check the cases table against the ledger's action entries (exit 1 if they differ)."""
    from socialcredit.cases.actions import verify_cases

    with refusals(as_json), _ledger(ctx) as ledger:
        bad = verify_cases(ledger)
    if as_json:
        emit_json({"ok": not bad, "differ": bad})
    elif bad:
        console.print(f"[red]{len(bad)} case(s) differ from the ledger[/red]: {bad[:20]}")
    else:
        console.print("[green]The cases table agrees with the ledger[/green]")
    if bad:
        raise typer.Exit(1)


@app.command("deadlines")
def deadlines_cmd(
    ctx: typer.Context,
    rulebook: list[str] = typer.Option(
        [], "--rulebook", help="Shipped name or folder (default: the active rulebooks)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """The standard procedure deadlines of rulebooks (their own figure or the §9 default)."""
    from socialcredit.cases.deadlines import table
    from socialcredit.rulebooks import load

    if rulebook:
        books = [load(n) for n in rulebook]
    else:
        with _ledger(ctx) as ledger:
            books = _status(ledger).rulebooks
    rows = table(books)
    if as_json:
        emit_json({"items": rows})
        return
    t = Table(title="Procedure deadlines")
    for col in ("rulebook", "key", "value", "calendar", "from", "source"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*(r[c] for c in ("rulebook", "key", "value", "calendar", "from", "source")))
    console.print(t)
