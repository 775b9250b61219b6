"""The ``socialcredit`` command: one command group per noun."""

from __future__ import annotations

import typer

from socialcredit import __version__
from socialcredit.cli import (
    cases_cmd,
    demo_cmd,
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
    subject_app,
)
from socialcredit.ledger import Ledger

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


app.command("demo")(demo_cmd.demo)
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
