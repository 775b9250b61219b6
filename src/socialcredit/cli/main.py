"""The ``socialcredit`` command: one command group per noun."""

from __future__ import annotations

from pathlib import Path

import typer

from socialcredit import __version__, ids
from socialcredit.cli import (
    cases_cmd,
    evaluate_cmd,
    ids_cmd,
    notices_cmd,
    opendata_cmd,
    report_cmd,
    rulebook_cmd,
    serve_cmd,
    watch_cmd,
)
from socialcredit.cli.common import console, emit_json
from socialcredit.cli.ledger_cmds import (
    audit_app,
    authorities_app,
    export_cmd,
    records_app,
    render_file,
    subject_app,
)
from socialcredit.engine import Rec, evaluate
from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import ImportReport
from socialcredit.rulebooks import load

DEMO_RULEBOOK = "cn-national"

app = typer.Typer(
    name="socialcredit",
    help="A social credit registry with due process built in. See README.md for a tour.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"socialcredit {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="SOCIALCREDIT_DB",
        help="The registry: a SQLite file path (default socialcredit.db) or a postgresql:// URL.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    ctx.obj = {"db": db}


@app.command()
def init(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Create a registry (or bring an existing one to the newest schema)."""
    with Ledger.open(ctx.obj["db"]) as ledger:
        url = ledger.url
    if as_json:
        emit_json({"ok": True, "db": url})
    else:
        console.print(f"[green]Registry ready[/green] at {url}")


@app.command()
def demo(
    ctx: typer.Context,
    subject: str = typer.Option(
        "", "--subject", help="Whose file to print (default: a featured subject)."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Delete the demo SQLite file first."),
) -> None:
    """The main job: create a registry, load the bundled sample from several authorities, show a file."""
    from socialcredit.sample import FEATURED_SUBJECT, load_sample

    db = ctx.obj["db"] or "socialcredit-demo.db"
    if fresh and "://" not in db:
        for suffix in ("", "-wal", "-shm"):
            Path(db + suffix).unlink(missing_ok=True)
    with Ledger.open(db) as ledger:
        console.rule("[bold]socialcredit demo")
        console.print(f"Registry: {ledger.url}")

        def on_file(name: str, r: ImportReport) -> None:
            console.print(
                f"  imported {name:<14} {r.stored:>3} stored, {r.duplicates:>3} already there, "
                f"{r.rejected} rejected"
            )

        load_sample(ledger, on_file)
        counts = ledger.count()
        console.print(
            f"Ledger: {sum(counts.values())} entries ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
        )
        report = ledger.verify()
        console.print(
            f"Hash chain: {'[green]intact' if report.ok else '[red]BROKEN'}[/] — head {report.head_hash[:16]}…"
        )
        key = ids.parse_key(subject or FEATURED_SUBJECT)
        console.rule(f"The file of {key.key}")
        views = ledger.subject_records(key.key)
        render_file(key.key, views, ids.describe(key))
        status = evaluate(
            load(DEMO_RULEBOOK),
            [Rec.from_row(v.as_dict(history=False)) for v in views],
            ledger.today(),
            subject=key.key,
            subject_kind=key.subject_kind,
        )
        console.rule(f"Status under {status.rulebook} as of {status.as_of}")
        for m in status.memberships:
            until = m.until.isoformat() if m.until else "no fixed end (until a removal trigger)"
            console.print(
                f"  listed on [bold]{m.list_id}[/bold] since {m.since}, until {until}; records {list(m.basis)}"
            )
        for sc in status.schemes:
            console.print(f"  {sc.scheme_id}: {sc.points} points, grade {sc.grade}")
        sanctions = sorted(status.measure_ids())
        if sanctions:
            console.print(f"  {len(sanctions)} measures in force: {', '.join(sanctions)}")
        if not (status.memberships or status.schemes or sanctions):
            console.print("  nothing: no list, score or measure applies")
    console.print(
        f"\nTry: socialcredit --db {db} explain {key.key} --rulebook {DEMO_RULEBOOK}\n"
        f"     socialcredit --db {db} subject show cn-uscc:91110108MA7BX9K28A\n"
        f"     socialcredit --db {db} audit verify\n"
        f"     socialcredit rulebook lint && socialcredit rulebook test\n"
        f"     socialcredit ids check cn-rid 11010519491231002X"
    )


app.add_typer(ids_cmd.app, name="ids")
app.add_typer(authorities_app, name="authorities")
app.add_typer(records_app, name="records")
app.add_typer(subject_app, name="subject")
app.add_typer(audit_app, name="audit")
app.command("export")(export_cmd)
app.add_typer(rulebook_cmd.app, name="rulebook")
rulebook_cmd.app.command("diff")(evaluate_cmd.diff_cmd)
app.command("explain")(rulebook_cmd.explain_cmd)
app.command("evaluate")(evaluate_cmd.evaluate_cmd)
app.command("serve")(serve_cmd.app_serve)
app.add_typer(serve_cmd.keys_app, name="keys")
app.add_typer(serve_cmd.parties_app, name="parties")
app.add_typer(serve_cmd.status_app, name="status")
app.add_typer(cases_cmd.app, name="cases")
app.add_typer(notices_cmd.app, name="notices")
app.add_typer(report_cmd.app, name="report")
app.add_typer(opendata_cmd.app, name="opendata")
app.add_typer(watch_cmd.app, name="watch")

if __name__ == "__main__":
    app()
