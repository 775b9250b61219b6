"""CLI for rulebooks: ``rulebook lint|test|show|schema`` and the top-level ``explain``."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from socialcredit import ids
from socialcredit.catalog import load_catalogue
from socialcredit.cli.common import console, db_option, emit_json, err_console, fail, refusals
from socialcredit.engine.explain import describe_match, explain, removal_text, render
from socialcredit.engine.records import Rec
from socialcredit.engine.reference import evaluate
from socialcredit.errors import Problem
from socialcredit.ledger import Ledger
from socialcredit.rulebooks.lint import lint, lint_warnings, parameters
from socialcredit.rulebooks.loader import (
    Issue,
    Loaded,
    RulebookError,
    load_folder,
    shipped_names,
)
from socialcredit.rulebooks.model import Dur, Num, Param, Rulebook, Sourced, dur
from socialcredit.rulebooks.schema import schema_text, write_schema
from socialcredit.rulebooks.testing import run_tests

app = typer.Typer(
    help="Rulebooks: lint them (the charter included), run their tests, show them, publish the schema.",
    no_args_is_help=True,
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of text.")
PATHS_ARG = typer.Argument(
    None,
    help="Rulebook folders, rulebook.yaml files or shipped rulebook names (default: every shipped rulebook).",
)


def _targets(paths: list[str] | None) -> list[str]:
    return list(paths) if paths else shipped_names()


def _issue_problems(issues: list[Issue], value: str) -> list[Problem]:
    return [Problem(i.path or "rulebook", i.rule, value, str(i)) for i in issues]


def _load(name: str, as_json: bool) -> Loaded:
    try:
        return load_folder(name)
    except RulebookError as e:
        fail(_issue_problems(e.issues, name), as_json, "Rulebook refused")


# ---------------------------------------------------------------- lint


@app.command("lint")
def lint_cmd(
    paths: list[str] | None = PATHS_ARG,
    warnings: bool = typer.Option(
        False, "--warnings", help="Also show warnings (they never fail the run)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Check rulebooks: catalogue references, grades, sources, durations and the charter.

    Exit code 0 when clean, 1 when any rulebook has an issue.
    """
    targets = _targets(paths)
    if not targets:
        err_console.print("[red]No rulebooks to lint: name a folder.[/red]")
        raise typer.Exit(2)
    cat = load_catalogue()
    results: list[dict[str, Any]] = []
    for t in targets:
        warn: list[Issue] = []
        try:
            loaded = load_folder(t)
        except RulebookError as e:
            issues = list(e.issues)
            ref = None
        else:
            issues = lint(loaded, cat)
            ref = loaded.rulebook.ref
            if warnings:
                warn = lint_warnings(loaded, cat)
        results.append({"path": t, "rulebook": ref, "issues": issues, "warnings": warn})
    total = sum(len(r["issues"]) for r in results)
    if as_json:
        emit_json(
            {
                "ok": total == 0,
                "rulebooks": [
                    {
                        "path": r["path"],
                        "rulebook": r["rulebook"],
                        "ok": not r["issues"],
                        "issues": [asdict(i) for i in r["issues"]],
                        "warnings": [asdict(i) for i in r["warnings"]],
                    }
                    for r in results
                ],
            }
        )
    else:
        for r in results:
            name = r["rulebook"] or r["path"]
            if r["issues"]:
                console.print(
                    f"[red]✗[/red] {escape(name)}: {len(r['issues'])} issue(s)", highlight=False
                )
                for i in r["issues"]:
                    console.print(f"  {i}", markup=False, highlight=False, soft_wrap=True)
            else:
                console.print(f"[green]✓[/green] {escape(name)}: clean", highlight=False)
            for w in r["warnings"]:
                console.print(
                    f"  warning: {w}", markup=False, highlight=False, style="yellow", soft_wrap=True
                )
        bad = sum(1 for r in results if r["issues"])
        console.print(
            f"{len(results)} rulebook(s) checked: {len(results) - bad} clean, {bad} with "
            f"{total} issue(s)",
            highlight=False,
        )
    raise typer.Exit(1 if total else 0)


# ---------------------------------------------------------------- test


@app.command("test")
def test_cmd(
    paths: list[str] | None = PATHS_ARG,
    as_json: bool = JSON_OPT,
) -> None:
    """Run rulebooks' YAML tests (tests/*.yaml). Exit code 1 when any test fails."""
    targets = _targets(paths)
    if not targets:
        err_console.print("[red]No rulebooks to test: name a folder.[/red]")
        raise typer.Exit(2)
    cat = load_catalogue()
    results = [r for t in targets for r in run_tests(t, cat)]
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if as_json:
        emit_json(
            {
                "ok": failed == 0,
                "passed": passed,
                "failed": failed,
                "results": [r.as_dict() for r in results],
            }
        )
    else:
        for r in results:
            where = f"{r.file}:{r.line}" if r.line else r.file
            if r.passed:
                console.print(f"[green]PASS[/green] {escape(r.name)}", highlight=False)
            else:
                console.print(
                    f"[red]FAIL[/red] {escape(r.name)} [dim]({escape(where)})[/dim]",
                    highlight=False,
                )
                for f in r.failures:
                    console.print(f"     {f}", markup=False, highlight=False, soft_wrap=True)
        colour = "green" if failed == 0 else "red"
        console.print(f"[{colour}]{passed} passed, {failed} failed[/{colour}]")
    raise typer.Exit(1 if failed else 0)


# ---------------------------------------------------------------- show


def _src(obj: Sourced) -> str:
    if obj.source is None and obj.confidence is None:
        return ""
    return f" [dim]\\[{escape(obj.source or 'no source')}; {obj.confidence or '?'}][/dim]"


def _v(x: Num | Dur | None) -> str:
    if x is None:
        return "—"
    if isinstance(x, Param):
        return f"{x.value} [dim]\\[{escape(x.source)}; {x.confidence}][/dim]"
    return escape(str(x))


def _tree(rb: Rulebook) -> Tree:
    eff = rb.effective
    head = (
        f"[bold]{escape(rb.ref)}[/bold] — {escape(rb.title)} ({escape(rb.jurisdiction)}), "
        f"effective {eff.from_}" + (f" to {eff.to}" if eff.to else "")
    )
    if rb.historical:
        head += " [yellow](historical: simulator only)[/yellow]"
    if rb.extends:
        head += f", extends {escape(rb.extends)}"
    tree = Tree(head)
    if rb.lists:
        lists = tree.add("[bold]lists[/bold]")
        for lst in rb.lists:
            node = lists.add(
                f"[cyan]{escape(lst.id)}[/cyan] ({lst.type}) — {escape(lst.title)}{_src(lst)}"
            )
            node.add(f"authority: {escape(lst.authority)}; legal basis: {escape(lst.legal_basis)}")
            if lst.subjects:
                node.add(f"subjects: {', '.join(lst.subjects)}")
            for e in lst.entry:
                if e.when is not None:
                    how = f"each {escape(describe_match(e.when, article=False))}"
                elif e.count is not None:
                    c = e.count
                    w = (
                        " weights " + ", ".join(f"{k} {_v(v)}" for k, v in c.weights.items())
                        if c.weights
                        else ""
                    )
                    how = (
                        f"count {escape(describe_match(c.when, article=False))}{w}: at least {_v(c.at_least)} "
                        f"within {_v(c.within)}"
                    )
                else:
                    assert e.lists is not None
                    how = f"on at least {e.lists.at_least} of {', '.join(e.lists.any_of)}"
                term = f"term {_v(e.term.length) if e.term.length is not None else 'until removed'}"
                if e.term.extend_by_attribute:
                    term += f" + years in '{escape(e.term.extend_by_attribute)}'"
                if e.term.max is not None:
                    term += f", at most {_v(e.term.max)}"
                grace = f", grace {_v(e.grace)}" if e.grace is not None else ""
                node.add(
                    f"entry [cyan]{escape(e.id)}[/cyan]: {how}; {term}{grace}{_src(e)}{_src(e.term)}"
                )
            for rm in lst.removal:
                node.add(
                    f"removal [cyan]{escape(rm.id)}[/cyan]: {escape(removal_text(rm, lst))}{_src(rm)}"
                )
            if lst.repair is not None:
                conds = ", ".join(lst.repair.conditions) or "no conditions"
                node.add(
                    f"repair: after {_v(lst.repair.minimum)}, with {escape(conds)}{_src(lst.repair)}"
                )
            if lst.publicity is not None:
                p = lst.publicity
                node.add(
                    f"publicity: {'for ' + _v(p.period) if p.period is not None else 'not published'}; "
                    f"fields {', '.join(p.fields)}; person ids {'masked' if p.mask_person_identifiers else 'shown'}"
                    f"{_src(p)}"
                )
            if lst.review is not None:
                node.add(
                    f"review: {'required' if lst.review.required else 'not required'}"
                    + (", four eyes" if lst.review.four_eyes else "")
                )
    if rb.schemes:
        schemes = tree.add("[bold]schemes[/bold]")
        for s in rb.schemes:
            node = schemes.add(f"[cyan]{escape(s.id)}[/cyan] — {escape(s.title)}{_src(s)}")
            node.add(
                f"subjects {', '.join(s.subjects)}; base {_v(s.base)}; range [{_v(s.min)}, {_v(s.max)}]; "
                f"restore after {_v(s.restore_after)}"
                + (f"; consent: {escape(s.consent_kind)}" if s.consent_kind else "")
                + ("; [green]incentive only[/green]" if s.incentive_only else "")
                + (f"; cycle from {s.cycle.anchor} each year" if s.cycle else "")
            )
            rules = node.add("rules (first match scores a record)")
            for r in s.rules:
                if r.points is not None:
                    pts = _v(r.points)
                elif r.brackets is not None:
                    pts = "brackets " + ", ".join(
                        f"≥{_v(b.amount_at_least)}: {_v(b.points)}" for b in r.brackets
                    )
                else:
                    assert r.from_attribute is not None
                    pts = f"{escape(r.from_attribute.attribute)} × {_v(r.from_attribute.factor)}"
                extra = ""
                if r.restore_after is not None:
                    extra += f", restore after {_v(r.restore_after)}"
                if r.once_per:
                    extra += f", once per {escape(r.once_per)}"
                if r.cap is not None:
                    extra += f", cap {_v(r.cap.total)}" + (f" per {r.cap.per}" if r.cap.per else "")
                rules.add(
                    f"[cyan]{escape(r.id)}[/cyan]: {escape(describe_match(r.when))} → {pts}{extra}{_src(r)}"
                )
            if s.grades is not None:
                g = s.grades
                gn = node.add(f"grades {' > '.join(g.order)}{_src(g)}")
                for b in g.bands:
                    gn.add(
                        f"band {escape(b.grade)}: "
                        + (f"from {_v(b.min)}" if b.min is not None else "bottom band")
                    )
                for lim in g.limits:
                    gn.add(
                        f"limit [cyan]{escape(lim.id)}[/cyan]: at best {escape(lim.at_best)} for {_v(lim.for_)} after "
                        f"{escape(describe_match(lim.when))}{_src(lim)}"
                    )
    if rb.memoranda:
        memos = tree.add("[bold]memoranda[/bold]")
        for m in rb.memoranda:
            node = memos.add(f"[cyan]{escape(m.id)}[/cyan] — {escape(m.title)}{_src(m)}")
            node.add(f"legal basis: {escape(m.legal_basis)}")
            if m.signatories:
                node.add(f"signatories: {escape(', '.join(m.signatories))}")
            for bd in m.bindings:
                when = (
                    f"list {bd.when.list_}"
                    if bd.when.list_
                    else f"scheme {bd.when.scheme} grades {', '.join(bd.when.grades or [])}"
                )
                who = f" ({', '.join(bd.subjects)})" if bd.subjects else ""
                node.add(f"{escape(when)}{who} → {escape(', '.join(bd.measures))}")
    proc = tree.add(
        f"[bold]procedure[/bold] (calendar {escape(rb.procedure.calendar)}){_src(rb.procedure)}"
    )
    for name, d in rb.procedure.deadlines.items():
        proc.add(f"{escape(name)}: {_v(d)}")
    return tree


def _params_table(rb: Rulebook) -> Table:
    t = Table(title="Parameters and their sources")
    for c in ("parameter", "value", "source", "confidence"):
        t.add_column(c, overflow="fold")
    for p in parameters(rb):
        shown = str(p.value)
        if p.is_duration:
            try:
                d = dur(p.value)
                shown = f"{p.value} ({d.describe()})" if d else shown
            except ValueError:
                pass
        t.add_row(
            escape(p.where),
            escape(shown),
            escape(p.source or "— none —"),
            p.confidence or "—",
        )
    return t


@app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="A rulebook folder or a shipped rulebook's name."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show the resolved rulebook (base merged, overrides applied) with every parameter's source."""
    loaded = _load(name, as_json)
    rb = loaded.rulebook
    if as_json:
        emit_json(rb.model_dump(mode="json", by_alias=True))
        return
    console.print(_tree(rb))
    console.print(_params_table(rb))


# ---------------------------------------------------------------- schema


@app.command("schema")
def schema_cmd(
    out: Path | None = typer.Option(
        None, "--out", help="Write the schema to this file (default: print it)."
    ),
) -> None:
    """The JSON Schema of rulebook files (published as rulebooks/rulebook.schema.json)."""
    if out is None:
        sys.stdout.write(schema_text())
        return
    path = write_schema(out)
    console.print(f"[green]Wrote[/green] {escape(str(path))}")


# ---------------------------------------------------------------- explain (a top-level command)


def explain_cmd(
    ctx: typer.Context,
    subject: str = typer.Argument(..., help="SCHEME:VALUE, e.g. cn-rid:11010519491231002X."),
    rulebook: str = typer.Option(
        ..., "--rulebook", help="A rulebook folder or a shipped rulebook's name."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="The day to evaluate, YYYY-MM-DD (default: today)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Explain a subject's status under a rulebook: every listing, score, grade and measure, with
    the records and rules behind it and what would change it."""
    try:
        key = ids.parse_key(subject)
    except ids.IdError as e:
        fail([Problem("subject", e.rule, subject, e.message)], as_json)
    day: dt.date | None = None
    if as_of is not None:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            fail(
                [Problem("as_of", "date", as_of, "--as-of must be a date written YYYY-MM-DD")],
                as_json,
            )
    loaded = _load(rulebook, as_json)
    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        views = ledger.subject_records(key.key)
        day = day or ledger.today()
        cat = ledger.catalogue
    rows = {v.record_id: v.as_dict(history=False) for v in views}
    recs = [Rec.from_row(r) for r in rows.values()]
    kind = next((v.subject_kind for v in views if v.subject_kind), None) or key.subject_kind
    status = evaluate(loaded.rulebook, recs, day, subject=key.key, subject_kind=kind)
    ex = explain(status, loaded.rulebook, rows, cat)
    if as_json:
        emit_json({**ex, "records_read": len(rows), "status": status.as_dict()})
        return
    if not rows:
        console.print(f"No records about {escape(key.key)} in the registry.", highlight=False)
    for line in render(ex):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
