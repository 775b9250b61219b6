"""docs/due-process.md holds the tables generated from the shipped rulebooks."""

from __future__ import annotations

from pathlib import Path

from socialcredit.cases.deadlines import markdown, shipped_live

DOC = Path(__file__).resolve().parents[2] / "docs" / "due-process.md"
BEGIN = "<!-- generated: socialcredit.cases.deadlines.markdown(shipped_live()) -->\n"
END = "<!-- end generated -->"


def test_deadline_tables_are_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert generated == markdown(shipped_live()), (
        "docs/due-process.md is stale: regenerate the tables between the markers"
    )
    assert "| cn-national | cn |" in generated and "**3wd**" in generated
