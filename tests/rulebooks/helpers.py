"""Fixtures for the rulebook tests: the clean rulebook as text, and small mutations of it."""

from __future__ import annotations

from pathlib import Path

from socialcredit.rulebooks.loader import Issue

DATA = Path(__file__).parent / "data"
CLEAN_DIR = DATA / "clean"
CLEAN = (CLEAN_DIR / "rulebook.yaml").read_text(encoding="utf-8")


def mutate(*pairs: tuple[str, str], text: str = CLEAN) -> str:
    """The clean rulebook with each ``old`` (which must occur exactly once) replaced by ``new``."""
    for old, new in pairs:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text


def write(root: Path, text: str, name: str = "rb") -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rulebook.yaml").write_text(text, encoding="utf-8")
    return folder


def line(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the ``nth`` line containing ``needle``."""
    hits = [n for n, s in enumerate(text.splitlines(), 1) if needle in s]
    assert len(hits) >= nth, f"{needle!r} found {len(hits)} times"
    return hits[nth - 1]


def by_rule(issues: list[Issue], rule: str) -> list[Issue]:
    return [i for i in issues if i.rule == rule]


def one(issues: list[Issue], rule: str) -> Issue:
    found = by_rule(issues, rule)
    assert len(found) == 1, f"expected one {rule}, got: " + "\n".join(map(str, issues))
    return found[0]
