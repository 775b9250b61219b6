"""``socialcredit report``."""

from __future__ import annotations

import typer

app = typer.Typer(help="Signed credit reports: issue and verify.", no_args_is_help=True)
