"""CLI for whole-population evaluation: ``evaluate`` and ``rulebook diff``."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from socialcredit.cli.common import console, db_option, emit_json, err_console, fail
from socialcredit.errors import Problem
from socialcredit.ledger import Ledger
from socialcredit.ledger.export import export
from socialcredit.rulebooks import RulebookError, load

ENGINES = ("duckdb", "sql", "spark")


def _as_of(value: str | None, ledger: Ledger, as_json: bool) -> dt.date:
    if value is None:
        return ledger.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail([Problem("as_of", "type:date", value, "is not a date in YYYY-MM-DD form")], as_json)


@contextmanager
def _steps(show: bool) -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show,
    ) as bar:
        yield bar


def _source(ledger: Ledger, engine: str, work: Path, bar: Progress) -> str:
    """What the batch plan reads: a Parquet snapshot (DuckDB, Spark) or the ledger database (sql)."""
    if engine == "sql":
        return str(ledger.engine.url.render_as_string(hide_password=False))
    total = sum(n for op, n in ledger.count().items() if op == "furnish")
    task = bar.add_task("snapshot the ledger", total=total)
    out = work / "snapshot.parquet"
    export(ledger, out, "parquet", progress=lambda n: bar.update(task, completed=n))
    return str(out)


def _run(rulebook: Any, engine: str, source: str, as_of: dt.date) -> Any:
    from socialcredit.engine.batch import evaluate_population

    return evaluate_population(rulebook, engine=engine, source=source, as_of=as_of)


def _engine_ready(engine: str, as_json: bool) -> None:
    if engine == "spark":
        from socialcredit.engine.batch_spark import available

        if not available():
            fail(
                [
                    Problem(
                        "engine",
                        "extra:spark",
                        engine,
                        "the spark engine needs pyspark: uv sync --extra spark "
                        "(or pip install 'socialcredit[spark]') and Java 17",
                    )
                ],
                as_json,
            )


def _load(name: str, as_json: bool) -> Any:
    try:
        return load(name)
    except RulebookError as e:
        fail(
            [
                Problem(i.path or "rulebook", i.rule, i.file, f"{i.file}:{i.line}: {i.message}")
                for i in e.issues
            ],
            as_json,
            "Rulebook refused",
        )


def summary(result: Any) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.register("m", result.memberships)
    con.register("p", result.pending)
    con.register("s", result.schemes)
    con.register("x", result.measures)
    grades: dict[str, dict[str, int]] = {}
    for scheme, grade, n in con.execute(
        "SELECT scheme, grade, count(*) FROM s GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        grades.setdefault(scheme, {})[grade or "not scored"] = n
    return {
        "lists": {
            k: v
            for k, v in con.execute("SELECT list, count(*) FROM m GROUP BY 1 ORDER BY 1").fetchall()
        },
        "pending": {
            k: v
            for k, v in con.execute("SELECT list, count(*) FROM p GROUP BY 1 ORDER BY 1").fetchall()
        },
        "grades": grades,
        "measures": {
            k: v
            for k, v in con.execute(
                "SELECT measure, count(DISTINCT subject) FROM x GROUP BY 1 ORDER BY 1"
            ).fetchall()
        },
    }


def evaluate_cmd(
    ctx: typer.Context,
    rulebook: str = typer.Option(
        ..., "--rulebook", help="A shipped rulebook's name or a rulebook folder."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (default: today)."),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help=(
            "duckdb (a Parquet snapshot; fastest on one machine), sql (the ledger's own "
            "database) or spark (the Parquet snapshot in a SparkSession: for populations that "
            "outgrow one machine; needs the `spark` extra and Java 17; local[2] unless "
            "SC_SPARK_MASTER is set; ~8-10x slower than duckdb on one machine)."
        ),
    ),
    out: Path | None = typer.Option(
        None, "--out", help="A folder for memberships/pending/schemes/measures .parquet."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the whole population with the compiled batch plan; print counts per list and grade.

    On Spark the run uses the active SparkSession, or starts a local one (see docs/rulebooks.md).
    """
    if engine not in ENGINES:
        fail(
            [Problem("engine", "enum", engine, f"the engine must be one of {', '.join(ENGINES)}")],
            as_json,
        )
    _engine_ready(engine, as_json)
    rb = _load(rulebook, as_json)
    with (
        Ledger.open(db_option(ctx)) as ledger,
        tempfile.TemporaryDirectory() as tmp,
        _steps(not as_json and err_console.is_terminal) as bar,
    ):
        day = _as_of(as_of, ledger, as_json)
        source = _source(ledger, engine, Path(tmp), bar)
        task = bar.add_task(f"evaluate {rb.ref} on {engine}", total=1)
        result = _run(rb, engine, source, day)
        bar.update(task, completed=1)
    if out is not None:
        import pyarrow.parquet as pq

        out.mkdir(parents=True, exist_ok=True)
        for name in ("memberships", "pending", "schemes", "measures"):
            pq.write_table(getattr(result, name), out / f"{name}.parquet")
    facts = summary(result)
    if as_json:
        emit_json({"rulebook": rb.ref, "as_of": day.isoformat(), "engine": engine, **facts})
        return
    console.print(f"[bold]{rb.ref}[/bold] as of {day} ({engine})")
    t = Table(title="Lists")
    for c in ("list", "members", "pending"):
        t.add_column(c, justify="right" if c != "list" else "left")
    for lst in rb.lists:
        t.add_row(
            lst.id, f"{facts['lists'].get(lst.id, 0):,}", f"{facts['pending'].get(lst.id, 0):,}"
        )
    console.print(t)
    for scheme in rb.schemes:
        g = Table(title=f"Grades: {scheme.id}")
        g.add_column("grade")
        g.add_column("subjects", justify="right")
        dist = facts["grades"].get(scheme.id, {})
        for grade in [*(scheme.grades.order if scheme.grades else []), "not scored"]:
            if grade in dist:
                g.add_row(grade, f"{dist[grade]:,}")
        console.print(g)
    if facts["measures"]:
        m = Table(title="Measures in force")
        m.add_column("measure")
        m.add_column("subjects", justify="right")
        for k, v in facts["measures"].items():
            m.add_row(k, f"{v:,}")
        console.print(m)
    if out is not None:
        console.print(f"Results written to {out}/")


def diff_cmd(
    ctx: typer.Context,
    old: str = typer.Argument(..., help="The rulebook in force (name or folder)."),
    new: str = typer.Argument(..., help="The proposed rulebook (name or folder)."),
    as_of: str | None = typer.Option(None, "--as-of", help="YYYY-MM-DD (default: today)."),
    engine: str = typer.Option(
        "duckdb", "--engine", help="duckdb, sql or spark (as for `socialcredit evaluate`)."
    ),
    examples: int = typer.Option(5, "--examples", min=0, help="Example subjects per change."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Impact before adoption: who would enter or leave each list, and whose grade would change."""
    from socialcredit.engine.impact import compare

    _engine_ready(engine, as_json)
    a, b = _load(old, as_json), _load(new, as_json)
    with (
        Ledger.open(db_option(ctx)) as ledger,
        tempfile.TemporaryDirectory() as tmp,
        _steps(not as_json and err_console.is_terminal) as bar,
    ):
        day = _as_of(as_of, ledger, as_json)
        source = _source(ledger, engine, Path(tmp), bar)
        task = bar.add_task("evaluate both rulebooks", total=2)
        ra = _run(a, engine, source, day)
        bar.advance(task)
        rb_ = _run(b, engine, source, day)
        bar.advance(task)
    impact = compare(ra.memberships, rb_.memberships, ra.schemes, rb_.schemes, examples)
    if as_json:
        emit_json({"old": a.ref, "new": b.ref, "as_of": day.isoformat(), **impact.as_dict()})
        return
    console.print(f"[bold]{a.ref} → {b.ref}[/bold] as of {day}")
    t = Table(title="Lists")
    for c in ("list", "before", "after", "entering", "leaving", "examples"):
        t.add_column(c, overflow="fold")
    for li in impact.lists:
        ex = ", ".join(
            [*(f"+{s}" for s in li.examples_entering), *(f"-{s}" for s in li.examples_leaving)]
        )
        t.add_row(
            li.list_id, f"{li.before:,}", f"{li.after:,}", f"{li.entering:,}", f"{li.leaving:,}", ex
        )
    console.print(t)
    for g in impact.grades:
        gt = Table(title=f"Grade changes: {g.scheme_id}")
        for c in ("from", "to", "subjects"):
            gt.add_column(c)
        for before, after, n in g.transitions:
            gt.add_row(before or "—", after or "—", f"{n:,}")
        if not g.transitions:
            gt.add_row("no change", "", "")
        console.print(gt)
