"""``socialcredit opendata``."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Open data: bulk downloads of the public lists and the change feed.", no_args_is_help=True
)
