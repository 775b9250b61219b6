"""``socialcredit demo``: build the synthetic demo city, print a key for each role, serve it.

Registered in :mod:`socialcredit.cli.main` as ``app.command("demo")(demo_cmd.demo)``.

* ``socialcredit demo`` — generate the city (:mod:`socialcredit.sim.city`) into a fresh
  ``socialcredit-demo.db``, load it through the bulk importer, activate the national and the city
  rulebook, open some cases, print a summary and one API key per role, then serve the portal and
  the API (the same app as ``socialcredit serve``) until Ctrl-C.
* ``--no-serve`` — build, print the summary, the keys and a featured subject's file, and exit.
* ``--keep`` — reuse a city already in the file (new keys are printed; nothing is re-imported).
* ``--sample`` — the old demo: the small bundled Beijing sample (``--fresh`` to start over).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import socket
import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from socialcredit import ids
from socialcredit.cli.common import console, emit_json, err_console, refusals
from socialcredit.cli.ledger_cmds import render_file
from socialcredit.engine import Rec, evaluate
from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import ImportReport
from socialcredit.rulebooks import load

DEMO_DB = "socialcredit-demo.db"
SAMPLE_RULEBOOK = "cn-national"
CITY_RULEBOOK = "cn-sd-rongcheng"

PHASES = {
    "rulebooks": "Activating rulebooks",
    "import": "Importing records",
    "corrections": "Corrections and retractions",
    "status": "Evaluating every subject",
    "search": "Indexing names for search",
}


def demo(
    ctx: typer.Context,
    people: int = typer.Option(5000, "--people", min=10, help="People in the city."),
    companies: int = typer.Option(
        1000, "--companies", min=10, help="Organisations (companies, public bodies ...)."
    ),
    seed: int = typer.Option(2026, "--seed", help="Random seed: the same seed, the same city."),
    years: int = typer.Option(6, "--years", min=1, max=20, help="Calendar years of records."),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Start the service after building (until Ctrl-C)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to serve on."),
    port: int = typer.Option(8000, "--port", help="TCP port to serve on."),
    fresh: bool | None = typer.Option(
        None,
        "--fresh/--keep",
        help="Delete the demo SQLite file first (default for the city) or keep what is there "
        "(default for --sample).",
    ),
    sample: bool = typer.Option(
        False, "--sample", help="The small bundled Beijing sample instead of the city; no server."
    ),
    subject: str = typer.Option(
        "", "--subject", help="Whose file to print with --no-serve/--sample (default: featured)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the build report (keys included) as JSON."
    ),
) -> None:
    """The main job: build a synthetic demo city, print a key per role, and serve it."""
    db = ctx.obj["db"] or DEMO_DB
    if sample:
        _sample_demo(db, subject, bool(fresh))
        return
    if serve:
        _check_port(host, port)
    if fresh is not False:
        _delete_sqlite(db)
    with refusals(as_json), Ledger.open(db) as ledger:
        try:
            report, city = _build(ledger, people, companies, seed, years, quiet=as_json)
        except KeyboardInterrupt:
            err_console.print(
                f"\n[yellow]Interrupted.[/yellow] {db} holds a partly built city: run the demo "
                "again (it starts fresh)."
            )
            raise typer.Exit(130) from None
        if as_json:
            emit_json(report.as_dict())
        else:
            _print_summary(report, city)
            _print_keys(report, host, port, serve)
        if not serve:
            if not as_json:
                _show_subject(ledger, subject or report.featured["person"], CITY_RULEBOOK)
                console.print(
                    f"\nServe it: socialcredit --db {shlex.quote(db)} serve --port {port}\n"
                    f"     or: socialcredit demo --keep   (reuses this city, prints new keys)"
                )
            return
    _serve(db, host, port)


# ---------------------------------------------------------------------- building


def _build(
    ledger: Ledger, people: int, companies: int, seed: int, years: int, *, quiet: bool
) -> tuple[Any, Any]:
    from socialcredit.sim.build import build_city, city_loaded, reuse_city
    from socialcredit.sim.city import CityConfig, generate_city

    t0 = time.perf_counter()
    config = CityConfig(people=people, companies=companies, seed=seed, years=years)
    if not quiet:
        console.rule("[bold]socialcredit demo: a synthetic city")
        console.print(f"Registry: {ledger.url}")
        console.print(
            f"Generating {config.name}: {people:,} people, {companies:,} organisations, "
            f"{years} years of records (seed {seed}) ..."
        )
    city = generate_city(config, ledger.today(), ledger.catalogue)
    if city_loaded(ledger):
        if not quiet:
            console.print("[yellow]A city is already in this file: reusing it (--fresh rebuilds).")
        report = reuse_city(ledger, city)
    else:
        with Progress(
            TextColumn("{task.description:<30}"),
            BarColumn(),
            TextColumn("{task.fields[count]:>15}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int) -> None:
                # total 0: a step without a measure of its own (a pulsing bar until it is done)
                count = f"{done:,}/{total:,}" if total else ""
                if phase not in tasks:
                    tasks[phase] = bar.add_task(
                        PHASES.get(phase, phase), total=total or None, count=count
                    )
                bar.update(tasks[phase], completed=done, total=total or None, count=count)

            report = build_city(ledger, city, progress=progress)
    report.seconds["generate+build"] = time.perf_counter() - t0
    return report, city


def _delete_sqlite(db: str) -> None:
    if "://" in db and not db.startswith("sqlite"):
        return  # a server database is not deleted; the build reuses it if it holds a city
    path = db.split("///", 1)[1] if db.startswith("sqlite") else db
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            why = "is in use" if e.errno == errno.EADDRINUSE else f"cannot be used ({e.strerror})"
            err_console.print(
                f"[red]Port {port} on {host} {why}.[/red] Choose another with --port N "
                "(or build only with --no-serve). Nothing was built."
            )
            raise typer.Exit(2) from None


# ---------------------------------------------------------------------- printing


def _print_summary(report: Any, city: Any) -> None:
    subjects = report.subjects
    console.print(
        f"\n[bold]{city.config.name}[/bold] as of {report.today}: "
        f"{report.people:,} people ({subjects.get('person', 0):,} with records), "
        f"{report.organisations:,} organisations ({subjects.get('organisation', 0):,} with "
        f"records), {len(city.authorities)} authorities"
    )
    lineage = ", ".join(f"{n} {op}" for op, n in report.lineage.items()) or "none"
    console.print(
        f"Records: {report.stored:,} imported from {city.start} to {report.today}, "
        f"{report.rejected} rejected; {lineage}; {report.entries:,} ledger entries"
    )
    if report.rejected:
        for p in report.problems[:5]:
            err_console.print(f"  [red]rejected[/red] row {p.row}: {p.field} {p.rule}: {p.message}")
    t = Table(title="Lists (members today, all active rulebooks)", title_justify="left")
    t.add_column("list")
    t.add_column("members", justify="right")
    t.add_column("awaiting review", justify="right")
    t.add_column("in grace", justify="right")
    for lid in sorted(set(report.lists) | set(report.review) | set(report.pending)):
        t.add_row(
            lid,
            str(report.lists.get(lid, 0)),
            str(report.review.get(lid, "")),
            str(report.pending.get(lid, "")),
        )
    console.print(t)
    g = Table(title="Grades", title_justify="left")
    g.add_column("scheme")
    g.add_column("subjects per grade")
    for scheme, grades in report.grades.items():
        g.add_row(scheme, "  ".join(f"{k} {v:,}" for k, v in grades.items()))
    console.print(g)
    if report.cases:
        by: dict[str, int] = {}
        for c in report.cases:
            by[c["type"]] = by.get(c["type"], 0) + 1
        console.print("Cases opened: " + ", ".join(f"{n} {k}" for k, n in sorted(by.items())))
    if report.cases_note:
        console.print(f"[yellow]Cases: {report.cases_note}")
    secs = report.seconds
    console.print(
        "Built in "
        + f"{secs.get('generate+build', secs.get('total', 0.0)):.1f} s ("
        + ", ".join(
            f"{k} {v:.1f} s" for k, v in secs.items() if k not in ("total", "generate+build")
        )
        + ")"
    )


def _curl(role: str, token: str, base: str, feat: dict[str, Any]) -> str:
    auth = f'-H "Authorization: Bearer {token}"'
    post = f"{auth} -H 'Content-Type: application/json'"
    if role == "relying-party":
        body = json.dumps(
            {
                "purpose": "ticket sale",
                "checks": [{"subject": feat["person"], "measure": "travel.flights"}],
            }
        )
        return f"curl -s {post} -d '{body}' {base}/v1/checks"
    if role == "reviewer" and feat.get("review_case"):
        body = json.dumps({"reason": "Heavier penalty in a focus field; second review."})
        return f"curl -s {post} -d '{body}' {base}/v1/cases/{feat['review_case']}:confirm"
    path = {
        "provider": "/v1/objections",
        "subject": "/v1/me/file",
        "officer": "/v1/cases",
        "reviewer": f"/v1/subjects/{feat['company']}",
        "auditor": "/v1/audit/actions",
    }.get(role, "/v1/whoami")
    return f"curl -s {auth} {base}{path}"


def _print_keys(report: Any, host: str, port: int, serve: bool) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    base = f"http://{shown}:{port}"
    feat = report.featured
    console.rule("[bold]Demo keys (shown once; sign in on the portal with any of them)")
    for k in report.keys:
        console.print(f"[bold]{k.role:<14}[/bold] {k.token}")
        console.print(f"  {k.label}" + (f" — scope {k.scope}" if k.scope else ""))
        console.print(f"  [dim]{_curl(k.role, k.token, base, feat)}[/dim]", soft_wrap=True)
    console.print(
        f"\nFeatured: {feat['person_name']} ({feat['person']}), a judgment defaulter with a "
        f"pending objection; {feat['company_name']} ({feat['company']}), a serious listing "
        "awaiting its second review."
    )
    if serve:
        console.rule("[bold]Serving")
        console.print(f"Portal:   {base}/        (sign in at {base}/login with a key above)")
        console.print(f"API docs: {base}/docs    (OpenAPI: {base}/openapi.json)")
        console.print(f"Ready:    {base}/readyz")
        console.print("Press Ctrl-C to stop.", highlight=False)


def _show_subject(ledger: Ledger, subject: str, rulebook: str) -> None:
    key = ids.parse_key(subject)
    console.rule(f"The file of {key.key}")
    views = ledger.subject_records(key.key)
    render_file(key.key, views, ids.describe(key))
    status = evaluate(
        load(rulebook),
        [Rec.from_row(v.as_dict(history=False)) for v in views],
        ledger.today(),
        subject=key.key,
        subject_kind=key.subject_kind,
    )
    console.rule(f"Status under {status.rulebook} as of {status.as_of}")
    for m in status.memberships:
        until = m.until.isoformat() if m.until else "no fixed end (until a removal trigger)"
        console.print(
            f"  listed on [bold]{m.list_id}[/bold] since {m.since}, until {until}; "
            f"records {list(m.basis)}"
        )
    for sc in status.schemes:
        console.print(f"  {sc.scheme_id}: {sc.points} points, grade {sc.grade}")
    sanctions = sorted(status.measure_ids())
    if sanctions:
        console.print(f"  {len(sanctions)} measures in force: {', '.join(sanctions)}")
    if not (status.memberships or status.schemes or sanctions):
        console.print("  nothing: no list, score or measure applies")


# ---------------------------------------------------------------------- serving


def _warm_search(db: str) -> None:
    """Build the portal's name index while the server starts (the first search is then fast)."""
    from socialcredit.sim.build import warm_search

    try:
        with Ledger.open(db) as ledger:
            warm_search(ledger)
    except Exception:  # the portal builds it on first use anyway
        logging.getLogger(__name__).exception("building the search index in the background")


def _serve(db: str, host: str, port: int) -> None:
    import uvicorn

    threading.Thread(target=_warm_search, args=(db,), name="search-index", daemon=True).start()
    os.environ["SOCIALCREDIT_DB"] = db
    os.environ.setdefault("SOCIALCREDIT_SERVE_POLL", "0.02")
    uvicorn.run(
        "socialcredit.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


# ---------------------------------------------------------------------- the bundled sample


def _sample_demo(db: str, subject: str, fresh: bool) -> None:
    """The original demo: the bundled Beijing sample from several authorities, and one file."""
    from socialcredit.sample import FEATURED_SUBJECT, load_sample

    if fresh:
        _delete_sqlite(db)
    with Ledger.open(db) as ledger:
        console.rule("[bold]socialcredit demo (bundled sample)")
        console.print(f"Registry: {ledger.url}")

        def on_file(name: str, r: ImportReport) -> None:
            console.print(
                f"  imported {name:<14} {r.stored:>3} stored, {r.duplicates:>3} already there, "
                f"{r.rejected} rejected"
            )

        load_sample(ledger, on_file)
        counts = ledger.count()
        console.print(
            f"Ledger: {sum(counts.values())} entries "
            f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})"
        )
        report = ledger.verify()
        console.print(
            f"Hash chain: {'[green]intact' if report.ok else '[red]BROKEN'}[/] — "
            f"head {report.head_hash[:16]}…"
        )
        key = ids.parse_key(subject or FEATURED_SUBJECT)
        _show_subject(ledger, key.key, SAMPLE_RULEBOOK)
    console.print(
        f"\nTry: socialcredit --db {db} explain {key.key} --rulebook {SAMPLE_RULEBOOK}\n"
        f"     socialcredit --db {db} subject show cn-uscc:91110108MA7BX9K28A\n"
        f"     socialcredit --db {db} audit verify\n"
        f"     socialcredit rulebook lint && socialcredit rulebook test\n"
        f"     socialcredit ids check cn-rid 11010519491231002X"
    )
