"""CLI for the ledger: authorities, records, subjects, exports and the audit chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from socialcredit import ids
from socialcredit.cli.common import (
    console,
    db_option,
    emit_json,
    err_console,
    fail,
    problems_table,
    refusals,
)
from socialcredit.engine.records import canon
from socialcredit.errors import Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.export import EXPORT_FORMATS, export
from socialcredit.ledger.importer import FORMATS, import_file

authorities_app = typer.Typer(
    help="Authorities that furnish records, and what they are accredited for.", no_args_is_help=True
)
records_app = typer.Typer(
    help="Furnish, import, correct, retract and overturn records.", no_args_is_help=True
)
subject_app = typer.Typer(help="A subject's whole file.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident hash chain.", no_args_is_help=True)

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of tables.")


def open_ledger(ctx: typer.Context) -> Ledger:
    return Ledger.open(db_option(ctx))


# ---------------------------------------------------------------- authorities


@authorities_app.command("add")
def authorities_add(
    ctx: typer.Context,
    authority_id: str = typer.Argument(..., help="A short stable id, e.g. bj-chaoyang-court."),
    name: str = typer.Option(..., "--name", help="The authority's full name."),
    type: str = typer.Option(
        ..., "--type", help="An authority type from the catalogue (court, tax, ...)."
    ),
    kind: list[str] = typer.Option(..., "--kind", help="A record kind it may furnish (repeat)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Register an authority, or re-accredit it (the new list of kinds replaces the old)."""
    with refusals(as_json), open_ledger(ctx) as ledger:
        seq = ledger.register_authority(authority_id, name, type, kind)
    if as_json:
        emit_json({"ok": True, "authority_id": authority_id, "seq": seq})
    else:
        console.print(
            f"[green]Registered[/green] {authority_id} ({type}) for {', '.join(sorted(kind))} "
            f"— ledger entry {seq}"
        )


@authorities_app.command("list")
def authorities_list(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """List registered authorities and their accreditations."""
    with open_ledger(ctx) as ledger:
        rows = ledger.authorities()
    if as_json:
        emit_json(
            [
                {
                    "authority_id": a.authority_id,
                    "name": a.name,
                    "type": a.type,
                    "kinds": sorted(a.kinds),
                }
                for a in rows
            ]
        )
        return
    t = Table(title="Authorities")
    for c in ("id", "name", "type", "accredited kinds"):
        t.add_column(c, overflow="fold")
    for a in rows:
        t.add_row(a.authority_id, a.name, a.type, ", ".join(sorted(a.kinds)))
    console.print(t)


# ---------------------------------------------------------------- records


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


@records_app.command("import")
def records_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A CSV, NDJSON or Parquet file of records."),
    authority: str = typer.Option(..., "--authority", help="The furnishing authority's id."),
    fmt: str | None = typer.Option(
        None, "--format", help=f"One of {', '.join(FORMATS)} (default: from the name)."
    ),
    all_or_nothing: bool = typer.Option(
        False, "--all-or-nothing", help="Reject the whole file on any error."
    ),
    errors: Path | None = typer.Option(
        None, "--errors", help="Where to write the per-row error report."
    ),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, help="Rows per transaction."),
    as_json: bool = JSON_OPT,
) -> None:
    """Import records: streamed, batched, resumable; rejected rows go to an error report."""
    with refusals(as_json), open_ledger(ctx) as ledger:
        show = not as_json and err_console.is_terminal
        with _progress() as bar:
            task = bar.add_task(f"import {file.name}", total=None, visible=show)
            report = import_file(
                ledger,
                file,
                authority,
                fmt=fmt,
                batch_size=batch_size,
                all_or_nothing=all_or_nothing,
                errors_path=errors,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    if as_json:
        emit_json(report.as_dict())
    else:
        colour = {"done": "green", "partial": "yellow"}.get(report.status, "red")
        console.print(
            f"[{colour}]{report.status}[/{colour}]: {report.rows_read} rows read, {report.stored} stored, "
            f"{report.duplicates} already in the ledger, {report.rejected} rejected"
            + (f" (resumed after row {report.resumed_after})" if report.resumed_after else "")
        )
        if report.problems:
            console.print(problems_table(report.problems, "First problems"))
        if report.errors_file:
            console.print(f"Error report: {report.errors_file}")
        if report.status == "rejected":
            console.print("[red]All or nothing: nothing was stored.[/red]")
    if report.status == "rejected":
        raise typer.Exit(2)
    if report.status == "partial":
        raise typer.Exit(1)


def _parse_pairs(pairs: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        if "=" not in p:
            raise typer.BadParameter(f"{what} must look like NAME=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v
    return out


@records_app.command("add")
def records_add(
    ctx: typer.Context,
    authority: str = typer.Option(..., "--authority", help="The furnishing authority's id."),
    subject: str = typer.Option(
        ..., "--subject", help="SCHEME:VALUE, e.g. cn-rid:11010519491231002X."
    ),
    kind: str = typer.Option(..., "--kind", help="A record kind from the catalogue."),
    ref: str = typer.Option(
        ..., "--ref", help="The authority's own reference (makes retries safe)."
    ),
    decision_no: str = typer.Option(..., "--decision-no", help="The decision document number."),
    decision_date: str = typer.Option(..., "--decision-date", help="YYYY-MM-DD."),
    severity: str | None = typer.Option(None, "--severity", help="minor, general or serious."),
    amount: str | None = typer.Option(None, "--amount", help="Amount in yuan."),
    name: str | None = typer.Option(None, "--name", help="The subject's name."),
    subject_kind: str | None = typer.Option(
        None, "--subject-kind", help="Needed for generic identifiers."
    ),
    legal_basis: str | None = typer.Option(
        None, "--legal-basis", help="Defaults to the kind's legal basis."
    ),
    attr: list[str] = typer.Option([], "--attr", help="NAME=VALUE attribute (repeat)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Furnish one record."""
    row: dict[str, Any] = {
        "ref": ref,
        "subject": subject,
        "kind": kind,
        "decision_no": decision_no,
        "decision_date": decision_date,
        "severity": severity,
        "amount": amount,
        "subject_name": name,
        "subject_kind": subject_kind,
        "legal_basis": legal_basis,
        "attributes": _parse_pairs(attr, "--attr"),
    }
    with refusals(as_json), open_ledger(ctx) as ledger:
        out = ledger.furnish(authority, row)
    if as_json:
        emit_json({"ok": True, "seq": out.seq, "status": out.status})
    else:
        word = "Stored" if out.status == "stored" else "Already in the ledger (no change):"
        console.print(f"[green]{word}[/green] record {out.seq}")


@records_app.command("correct")
def records_correct(
    ctx: typer.Context,
    record: int = typer.Argument(..., help="The id of the record's current version."),
    authority: str = typer.Option(..., "--authority"),
    ref: str = typer.Option(..., "--ref", help="A new reference for this correction."),
    reason: str = typer.Option(..., "--reason"),
    set_: list[str] = typer.Option([], "--set", help="FIELD=VALUE or attr.NAME=VALUE (repeat)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Correct a record: a new version that supersedes the old one (which stays in the ledger)."""
    with refusals(as_json), open_ledger(ctx) as ledger:
        out = ledger.correct(authority, record, ref, _parse_pairs(set_, "--set"), reason)
    _done(out.seq, out.status, "Corrected: new version", as_json)


def _done(seq: int, status: str, word: str, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, "seq": seq, "status": status})
    elif status == "duplicate":
        console.print(f"Already in the ledger (no change): entry {seq}")
    else:
        console.print(f"[green]{word}[/green] entry {seq}")


@records_app.command("retract")
def records_retract(
    ctx: typer.Context,
    record: int = typer.Argument(..., help="The id of the record's current version."),
    authority: str = typer.Option(..., "--authority"),
    ref: str = typer.Option(..., "--ref"),
    reason: str = typer.Option(..., "--reason"),
    as_json: bool = JSON_OPT,
) -> None:
    """Retract a record furnished in error (by the authority that furnished it)."""
    with refusals(as_json), open_ledger(ctx) as ledger:
        out = ledger.retract(authority, record, ref, reason)
    _done(out.seq, out.status, "Retracted:", as_json)


@records_app.command("overturn")
def records_overturn(
    ctx: typer.Context,
    record: int = typer.Argument(..., help="The id of the record's current version."),
    authority: str = typer.Option(..., "--authority", help="The furnishing authority or a court."),
    ref: str = typer.Option(..., "--ref"),
    reason: str = typer.Option(..., "--reason"),
    as_json: bool = JSON_OPT,
) -> None:
    """Record that the decision behind a record was overturned (on appeal, review or by a court)."""
    with refusals(as_json), open_ledger(ctx) as ledger:
        out = ledger.overturn(authority, record, ref, reason)
    _done(out.seq, out.status, "Overturned:", as_json)


# ---------------------------------------------------------------- subjects


def render_file(subject: str, records: list[Any], facts: dict[str, Any]) -> None:
    """A subject's file for people: one row per record lineage, then the legal bases cited."""
    name = next((r.subject_name for r in reversed(records) if r.subject_name), None)
    console.print(f"[bold]{subject}[/bold]" + (f"  {name}" if name else ""))
    if facts:
        console.print("  " + ", ".join(f"{k}: {v}" for k, v in facts.items()))
    if not records:
        console.print("No records about this subject.")
        return
    t = Table(title=f"{len(records)} records")
    for c in (
        "id",
        "kind",
        "decided",
        "severity",
        "amount",
        "by",
        "decision no.",
        "details",
        "standing",
    ):
        t.add_column(c, overflow="fold", no_wrap=c in ("id", "decided", "amount"))
    bases: dict[str, list[str]] = {}
    for r in records:
        standing = r.state
        if r.disputed:
            standing += ", disputed"
        if r.suspended:
            standing += ", suspended"
        if r.versions > 1:
            standing += f", v{r.versions}"
        details = ", ".join(f"{k}={canon(v)}" for k, v in sorted(r.attributes.items()))
        amount = "" if r.amount is None else f"{r.amount:,.2f}"
        t.add_row(
            str(r.record_id),
            r.kind,
            r.decision_date.isoformat(),
            r.severity or "",
            amount,
            r.authority_id,
            r.decision_no,
            details,
            standing,
        )
        bases.setdefault(r.legal_basis, []).append(str(r.record_id))
    console.print(t)
    console.print("[bold]Legal bases[/bold]")
    for basis, ids_ in bases.items():
        console.print(f"  [{', '.join(ids_)}] {basis}")


@subject_app.command("show")
def subject_show(
    ctx: typer.Context,
    subject: str = typer.Argument(..., help="SCHEME:VALUE, e.g. cn-uscc:91110108551385082Q."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show everything the ledger holds about a subject, with provenance and history."""
    try:
        ident = ids.parse_key(subject)
    except ids.IdError as e:
        fail([e.problem("subject")], as_json)
    with open_ledger(ctx) as ledger:
        records = ledger.subject_records(ident.key)
    facts = ids.describe(ident)
    if as_json:
        emit_json(
            {
                "subject": ident.key,
                "subject_kind": ident.subject_kind,
                "facts": facts,
                "records": [r.as_dict() for r in records],
            }
        )
    else:
        render_file(ident.key, records, facts)


# ---------------------------------------------------------------- export and audit


def export_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="The file to write."),
    fmt: str = typer.Option("parquet", "--format", help=f"One of {', '.join(EXPORT_FORMATS)}."),
    table: str = typer.Option(
        "records", "--table", help="records (current state) or entries (raw chain)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Write a snapshot of the ledger (streamed; the file appears whole or not at all)."""
    if fmt not in EXPORT_FORMATS or table not in ("records", "entries"):
        fail(
            [
                Problem(
                    "format" if fmt not in EXPORT_FORMATS else "table",
                    "enum",
                    fmt if fmt not in EXPORT_FORMATS else table,
                    "unknown value",
                )
            ],
            as_json,
        )
    with open_ledger(ctx) as ledger, _progress() as bar:
        task = bar.add_task(
            f"export {table}", total=None, visible=not as_json and err_console.is_terminal
        )
        n = export(ledger, out, fmt, table=table, progress=lambda k: bar.update(task, completed=k))
    if as_json:
        emit_json({"ok": True, "rows": n, "out": str(out)})
    else:
        console.print(f"[green]Wrote[/green] {n} {table} to {out}")


@audit_app.command("verify")
def audit_verify(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Walk the hash chain and name the first entry that does not match. Exit 1 if one doesn't."""
    with open_ledger(ctx) as ledger, _progress() as bar:
        total = sum(ledger.count().values())
        task = bar.add_task(
            "verify chain", total=total, visible=not as_json and err_console.is_terminal
        )
        report = ledger.verify(progress=lambda k: bar.advance(task, k))
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "first_bad_seq": report.first_bad_seq,
                "reason": report.reason,
            }
        )
    elif report.ok:
        console.print(
            f"[green]OK[/green]: {report.entries} entries; head {report.head_seq} {report.head_hash}"
        )
    else:
        console.print(f"[red]BROKEN[/red] at entry {report.first_bad_seq}: {report.reason}")
        console.print(
            f"The chain is intact up to entry {report.entries} (hash {report.head_hash})."
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(ctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Print the newest entry's sequence number and hash, to publish or compare later."""
    with open_ledger(ctx) as ledger:
        seq, h = ledger.head()
    if as_json:
        emit_json({"seq": seq, "hash": h})
    else:
        console.print(f"{seq} {h}")
