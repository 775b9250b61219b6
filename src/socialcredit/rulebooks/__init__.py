"""Rulebooks as code: jurisdiction packages of lists, schemes, memoranda and procedure."""

from socialcredit.rulebooks.loader import (
    Issue,
    RulebookError,
    load,
    load_folder,
    locate,
    shipped_names,
)
from socialcredit.rulebooks.model import Rulebook

__all__ = ["Issue", "Rulebook", "RulebookError", "load", "load_folder", "locate", "shipped_names"]
