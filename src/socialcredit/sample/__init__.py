"""The bundled sample: a handful of Beijing authorities and the records they furnished.

All subjects are fictional; their identifiers are valid but made up. The sample shows each part
of a file: a judgment defaulter with a spending-restriction order, a defaulter who performed the
judgment, a government organ on the defaulter list (no one is exempt), enterprises with penalties,
tax ratings and abnormal-operations entries, and people with volunteering and blood donations.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from socialcredit.ledger import Ledger
from socialcredit.ledger.importer import ImportReport, import_file

FEATURED_SUBJECT = "cn-rid:110105198203150412"


def sample_dir() -> Path:
    return Path(str(files("socialcredit.sample")))


def sample_authorities() -> list[dict[str, Any]]:
    data = yaml.safe_load((sample_dir() / "authorities.yaml").read_text(encoding="utf-8"))
    return list(data)


def load_sample(
    ledger: Ledger, on_file: Callable[[str, ImportReport], None] | None = None
) -> list[ImportReport]:
    """Register the sample authorities and import their files (idempotent: safe to run twice)."""
    reports = []
    for a in sample_authorities():
        ledger.register_authority(a["id"], a["name"], a["type"], a["kinds"])
        for name in a["files"]:
            errors = Path(tempfile.gettempdir()) / f"socialcredit-sample-{name}.errors.csv"
            report = import_file(ledger, sample_dir() / name, a["id"], errors_path=errors)
            reports.append(report)
            if on_file:
                on_file(name, report)
    return reports
