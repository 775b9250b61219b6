"""``socialcredit watch``."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Watchlists: partners an enterprise monitors, with signed webhook alerts.",
    no_args_is_help=True,
)
