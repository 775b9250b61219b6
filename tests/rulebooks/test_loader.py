"""Loader behaviour the linter builds on: file:line on schema errors, extends and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.rulebooks.lint import lint_path
from socialcredit.rulebooks.loader import RulebookError, load_folder
from tests.rulebooks.helpers import CLEAN, line, mutate, write

CHILD = """id: child
title: A city on top of the clean rulebook
jurisdiction: test-city
version: "2"
effective: {from: 2021-01-01}
extends: base
overrides:
  lists[defaulters].entry[refuses].term.length: 3y
procedure:
  deadlines:
    notice_before_listing: {value: 10d, source: city rules, confidence: S}
lists:
  - id: city-list
    title: City list
    type: black
    authority: city
    legal_basis: city rules
    source: city rules
    confidence: S
    entry:
      - id: fines
        when: {kinds: [admin.penalty], severity: [serious]}
        term: {length: 1y}
"""


def refused(folder: Path) -> RulebookError:
    with pytest.raises(RulebookError) as e:
        load_folder(folder)
    return e.value


def test_schema_errors_carry_file_and_line(tmp_path: Path) -> None:
    text = mutate(("type: black", "type: blak"))
    folder = write(tmp_path, text)
    [issue] = refused(folder).issues
    assert issue.rule == "schema"
    assert issue.file == str(folder / "rulebook.yaml")
    assert issue.line == line(text, "type: blak")
    assert issue.path == "lists[defaulters].type"


def test_extends_merges_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, CLEAN.replace("id: test-clean", "id: base"), "base")
    rb = load_folder(write(tmp_path, CHILD, "child")).rulebook
    assert rb.ref == "child@2" and rb.jurisdiction == "test-city"
    assert [x.id for x in rb.lists] == ["defaulters", "utility-arrears", "city-list"]
    assert rb.get_list("defaulters").entry[0].term.length == "3y"
    assert rb.get_list("defaulters").entry[0].grace == "10d"  # untouched base content
    assert set(rb.procedure.deadlines) == {"objection_response", "notice_before_listing"}
    assert [s.id for s in rb.schemes] == ["civic"]


def test_an_override_must_name_something_in_the_base(tmp_path: Path) -> None:
    write(tmp_path, CLEAN.replace("id: test-clean", "id: base"), "base")
    text = CHILD.replace("lists[defaulters].entry[refuses]", "lists[defaulters].entry[nope]")
    folder = write(tmp_path, text, "child")
    [issue] = refused(folder).issues
    assert issue.rule == "unknown-override"
    assert issue.line == line(text, "entry[nope]")
    assert "does not exist in the base rulebook 'base'" in issue.message


def test_a_child_may_not_redefine_a_base_list(tmp_path: Path) -> None:
    write(tmp_path, CLEAN.replace("id: test-clean", "id: base"), "base")
    text = CHILD.replace("  - id: city-list", "  - id: defaulters")
    [issue] = refused(write(tmp_path, text, "child")).issues
    assert issue.rule == "duplicate-id" and issue.line == line(text, "- id: defaulters")


def test_overrides_need_a_base(tmp_path: Path) -> None:
    text = mutate(('version: "1"', 'version: "1"\noverrides:\n  lists[defaulters].title: X'))
    [issue] = refused(write(tmp_path, text)).issues
    assert issue.rule == "unknown-override" and "extends" in issue.message


def test_a_cycle_in_extends_is_refused(tmp_path: Path) -> None:
    a = CHILD.replace("id: child", "id: a").replace("extends: base", "extends: b")
    b = CHILD.replace("id: child", "id: b").replace("extends: base", "extends: a")
    write(tmp_path, a, "a")
    write(tmp_path, b, "b")
    issues = refused(tmp_path / "a").issues
    assert [i.rule for i in issues] == ["cycle"]
    assert "extend each other in a circle" in issues[0].message
    assert issues[0].line == line(b, "extends: a")


def test_a_cycle_between_folders_named_unlike_their_ids_is_an_issue(tmp_path: Path) -> None:
    # the loader follows `extends` by folder, so a circle is found whatever the rulebooks' ids
    write(tmp_path, CHILD.replace("id: child", "id: a").replace("extends: base", "extends: y"), "x")
    write(tmp_path, CHILD.replace("id: child", "id: b").replace("extends: base", "extends: x"), "y")
    [issue] = lint_path(tmp_path / "x")
    assert issue.rule == "cycle" and "x -> y -> x" in issue.message
    assert issue.file == str(tmp_path / "y" / "rulebook.yaml") and issue.line == line(
        CHILD, "extends"
    )
