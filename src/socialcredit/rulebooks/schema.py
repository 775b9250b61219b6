"""The JSON Schema of a rulebook file, generated from the pydantic model.

Published as ``rulebooks/rulebook.schema.json`` (regenerate with ``socialcredit rulebook schema
--out rulebooks/rulebook.schema.json``; a test checks the committed file is current). Editors use
it for completion and validation: add ``# yaml-language-server: $schema=../rulebook.schema.json``
at the top of a ``rulebook.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from socialcredit.rulebooks.loader import shipped_dir
from socialcredit.rulebooks.model import Rulebook

__all__ = ["SCHEMA_ID", "rulebook_json_schema", "schema_path", "schema_text", "write_schema"]

SCHEMA_ID = "https://socialcredit.invalid/schemas/rulebook.schema.json"


def rulebook_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rulebook file, as written (aliases: ``for``, ``list``,
    ``from``)."""
    body = Rulebook.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "socialcredit rulebook",
        "description": (
            "One jurisdiction's dated, versioned package of lists, point schemes, memoranda and "
            "procedure. Generated from socialcredit.rulebooks.model; see docs/rulebooks.md. The "
            "schema checks shape only: run `socialcredit rulebook lint` for references, sources "
            "and the charter."
        ),
        **{k: v for k, v in body.items() if k not in ("title", "description")},
    }


def schema_text() -> str:
    return json.dumps(rulebook_json_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_path() -> Path:
    """Where the published schema lives: ``rulebooks/rulebook.schema.json``."""
    return shipped_dir() / "rulebook.schema.json"


def write_schema(path: str | Path | None = None) -> Path:
    out = Path(path) if path is not None else schema_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(schema_text(), encoding="utf-8")
    return out
