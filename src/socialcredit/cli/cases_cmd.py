"""``socialcredit cases``."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Cases: objections, repair applications, reviews and tips.", no_args_is_help=True
)
