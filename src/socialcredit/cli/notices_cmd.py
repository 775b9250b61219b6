"""``socialcredit notices``."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Notices to subjects and relying parties: the outbox and its deliveries.",
    no_args_is_help=True,
)
