"""Shared plumbing for the CLI: the ledger from ``--db``, JSON output and problem tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from socialcredit.errors import InputError, NotFoundError, Problem

console = Console()
err_console = Console(stderr=True)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def problems_table(problems: list[Problem], title: str = "Refused") -> Table:
    t = Table(title=title, title_style="bold red", show_lines=False)
    for col in ("row", "field", "rule", "value", "message"):
        t.add_column(col, overflow="fold")
    for p in problems:
        t.add_row(
            "" if p.row is None else str(p.row),
            p.field,
            p.rule,
            "" if p.value is None else str(p.value),
            p.message,
        )
    return t


def fail(problems: list[Problem], as_json: bool, title: str = "Refused", code: int = 2) -> NoReturn:
    if as_json:
        emit_json({"ok": False, "problems": [p.as_dict() for p in problems]})
    else:
        err_console.print(problems_table(problems, title))
        err_console.print("[red]Nothing was changed.[/red]")
    raise typer.Exit(code)


@contextmanager
def refusals(as_json: bool) -> Iterator[None]:
    """Turn refused input and missing things into a clear message and exit code 2."""
    try:
        yield
    except InputError as e:
        fail(e.problems, as_json)
    except NotFoundError as e:
        fail([Problem("target", "not-found", None, str(e))], as_json, "Not found")


def db_option(ctx: typer.Context) -> str | None:
    obj = ctx.find_root().obj
    return obj.get("db") if isinstance(obj, dict) else None
