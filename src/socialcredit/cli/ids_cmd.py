"""``socialcredit ids``: check, describe, mask and generate identifiers (see :mod:`socialcredit.ids`).

Exit codes: 0 when the value is valid (or the command succeeded), 2 when it is not (or the
arguments are refused).
"""

from __future__ import annotations

import random
import sys
from typing import NoReturn, cast

import typer
from rich.table import Table
from rich.text import Text

from socialcredit import ids
from socialcredit.cli.common import console, emit_json, err_console
from socialcredit.subjects import ORGANISATION_KINDS, SUBJECT_KINDS, SubjectKind

app = typer.Typer(
    help="Identifier schemes: check, describe, mask, generate.",
    no_args_is_help=True,
)

_SCHEME_HELP = f"One of {', '.join(ids.SCHEMES)}."
_JSON_HELP = "Print one JSON object instead of a table."


def _error_json(e: ids.IdError, scheme: str, value: str) -> dict[str, object]:
    return {
        "valid": False,
        "scheme": e.scheme or scheme,
        "value": value,
        "rule": e.rule,
        "position": e.position,
        "expected": e.expected,
        "message": e.message,
    }


def _error_table(e: ids.IdError, scheme: str, value: str) -> Table:
    t = Table(title="Invalid identifier", title_style="bold red", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("scheme", Text(e.scheme or scheme))
    t.add_row("value", Text(value))
    t.add_row("rule", Text(e.rule))
    t.add_row("position", "" if e.position is None else str(e.position))
    t.add_row("expected", Text(e.expected or ""))
    t.add_row("message", Text(e.message))
    return t


def _parse_or_exit(scheme: str, value: str, as_json: bool) -> ids.Identifier:
    try:
        return ids.parse(scheme, value)
    except ids.IdError as e:
        if as_json:
            emit_json(_error_json(e, scheme, value))
        else:
            console.print(_error_table(e, scheme, value))
        raise typer.Exit(2) from None


@app.command()
def check(
    scheme: str = typer.Argument(..., help=_SCHEME_HELP),
    value: str = typer.Argument(
        ..., help="The identifier as written (spaces, full-width allowed)."
    ),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Validate VALUE under SCHEME: normalised value, subject kind and decoded facts, or the exact
    error (rule, position, expected character). Exit 0 if valid, 2 if not."""
    ident = _parse_or_exit(scheme, value, as_json)
    facts = ids.describe(ident)
    if as_json:
        emit_json(
            {
                "valid": True,
                "scheme": ident.scheme,
                "value": ident.value,
                "key": ident.key,
                "subject_kind": ident.subject_kind,
                "facts": facts,
            }
        )
        return
    t = Table(title="Valid identifier", title_style="bold green", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("scheme", Text(ident.scheme))
    t.add_row("value", Text(ident.value))
    t.add_row("key", Text(ident.key))
    t.add_row("subject kind", Text(ident.subject_kind or "-"))
    for name, fact in facts.items():
        t.add_row(name.replace("_", " "), Text(str(fact)))
    console.print(t)


@app.command()
def describe(
    scheme: str = typer.Argument(..., help=_SCHEME_HELP),
    value: str = typer.Argument(..., help="The identifier."),
    as_json: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Print only the facts decoded from a valid identifier. Exit 2 if it is not valid."""
    ident = _parse_or_exit(scheme, value, as_json)
    facts = ids.describe(ident)
    if as_json:
        emit_json(facts)
        return
    for name, fact in facts.items():
        typer.echo(f"{name}: {fact}")


@app.command()
def mask(
    scheme: str = typer.Argument(..., help=_SCHEME_HELP),
    value: str = typer.Argument(..., help="The identifier."),
) -> None:
    """Print VALUE masked for publication (cn-rid keeps the first and last 4 characters, cn-uscc is
    public, generic keeps the first and last 2)."""
    try:
        typer.echo(ids.mask(scheme, value))
    except ids.IdError as e:
        err_console.print(Text(e.message, style="red"))
        raise typer.Exit(2) from None


@app.command()
def generate(
    scheme: str = typer.Argument(..., help="cn-rid or cn-uscc."),
    count: int = typer.Option(1, "--count", "-n", min=0, help="How many to print."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for a reproducible sequence."),
    kind: str | None = typer.Option(
        None,
        "--kind",
        help=f"cn-uscc only: the subject kind ({', '.join(ORGANISATION_KINDS)}); "
        "default enterprise.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Print COUNT random valid identifiers, one per line (fake but well-formed test data)."""
    canonical = scheme.strip().lower()
    rng = random.Random(seed)
    codes: list[str]
    if canonical == "cn-rid":
        if kind not in (None, "person"):
            _refuse(f"a cn-rid always identifies a person, not {kind!r}")
        codes = [ids.random_rid(rng) for _ in range(count)]
    elif canonical == "cn-uscc":
        k = kind or "enterprise"
        if k not in ORGANISATION_KINDS:
            if k in SUBJECT_KINDS:
                _refuse(f"a {k} has no unified social credit code")
            _refuse(f"unknown kind {k!r}: use one of {', '.join(ORGANISATION_KINDS)}")
        subject_kind = cast(SubjectKind, k)
        codes = [ids.random_uscc(rng, kind=subject_kind) for _ in range(count)]
    elif canonical in ids.SCHEMES:
        _refuse(f"{canonical} identifiers have no structure to generate")
    else:
        _refuse(f"unknown identifier scheme {scheme!r}: use one of {', '.join(ids.SCHEMES)}")
    if as_json:
        emit_json(codes)
    elif codes:
        sys.stdout.write("\n".join(codes) + "\n")


def _refuse(message: str) -> NoReturn:
    err_console.print(Text(message, style="red"))
    raise typer.Exit(2)
