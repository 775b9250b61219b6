"""``socialcredit rulebook lint|test|show|schema`` and ``socialcredit explain``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from socialcredit.cli import rulebook_cmd
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.rulebooks.loader import shipped_dir
from socialcredit.rulebooks.schema import rulebook_json_schema, schema_text
from tests.ledger.helpers import PERSON, defaulter_row, setup_authorities
from tests.rulebooks.helpers import CLEAN, CLEAN_DIR, line, mutate, write
from tests.rulebooks.test_lint import PETITIONING_RULE


def make_app() -> typer.Typer:
    """Mounted the way the main app mounts them, with its ``--db`` callback."""
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context, db: str | None = typer.Option(None, "--db")) -> None:
        ctx.obj = {"db": db}

    app.add_typer(rulebook_cmd.app, name="rulebook")
    app.command("explain")(rulebook_cmd.explain_cmd)
    return app


runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(make_app(), list(args))
    return result.exit_code, result.output


def test_lint_exit_codes_and_output(tmp_path: Path) -> None:
    code, out = run("rulebook", "lint", str(CLEAN_DIR))
    assert code == 0, out
    assert "test-clean@1: clean" in out
    text = mutate(PETITIONING_RULE)
    bad = write(tmp_path, text)
    code, out = run("rulebook", "lint", str(bad), str(CLEAN_DIR))
    assert code == 1
    flat = " ".join(out.split())
    assert f"{bad / 'rulebook.yaml'}:{line(text, 'history.petitioning')}:" in flat
    assert "[charter-protected]" in flat and "Charter art. 2 (petition)" in flat
    assert "2 rulebook(s) checked: 1 clean, 1 with 1 issue(s)" in flat


def test_lint_json(tmp_path: Path) -> None:
    bad = write(tmp_path, mutate(PETITIONING_RULE))
    code, out = run("rulebook", "lint", str(bad), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False
    [issue] = data["rulebooks"][0]["issues"]
    assert issue["rule"] == "charter-protected" and issue["line"] > 0


def test_lint_reports_a_rulebook_that_does_not_load(tmp_path: Path) -> None:
    bad = write(tmp_path, CLEAN.replace("type: black", "type: blak"))
    code, out = run("rulebook", "lint", str(bad))
    assert code == 1 and "[schema]" in out


def test_test_command(tmp_path: Path) -> None:
    code, out = run("rulebook", "test", str(CLEAN_DIR))
    assert code == 0, out
    assert "6 passed, 0 failed" in out
    folder = write(tmp_path, CLEAN)
    (folder / "tests").mkdir()
    (folder / "tests" / "t.yaml").write_text(
        "- name: wrong\n  as_of: 2024-01-01\n  records: []\n  expect:\n    points: {civic: 1}\n"
    )
    code, out = run("rulebook", "test", str(folder))
    assert code == 1
    assert "FAIL wrong" in out and "points.civic: expected 1, got 1000" in out
    assert "0 passed, 1 failed" in out
    code, out = run("rulebook", "test", str(folder), "--json")
    data = json.loads(out)
    assert (data["ok"], data["passed"], data["failed"]) == (False, 0, 1)
    # no tests at all is a failure
    code, out = run("rulebook", "test", str(write(tmp_path, CLEAN, "bare")))
    assert code == 1 and "no tests" in out


def test_show(tmp_path: Path) -> None:
    code, out = run("rulebook", "show", str(CLEAN_DIR), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "test-clean" and data["effective"]["from"] == "2020-01-01"
    assert data["schemes"][0]["grades"]["limits"][0]["for"] == "1y"
    code, out = run("rulebook", "show", str(CLEAN_DIR))
    assert code == 0
    for words in ("defaulters", "refuses", "performed", "civic", "Parameters and their sources"):
        assert words in out
    code, out = run("rulebook", "show", str(tmp_path / "nowhere"))
    assert code == 2


def test_schema_command_and_the_committed_file_is_current(tmp_path: Path) -> None:
    code, out = run("rulebook", "schema")
    assert code == 0 and json.loads(out) == rulebook_json_schema()
    target = tmp_path / "s.json"
    code, _ = run("rulebook", "schema", "--out", str(target))
    assert code == 0 and target.read_text() == schema_text()
    committed = shipped_dir() / "rulebook.schema.json"
    assert committed.read_text(encoding="utf-8") == schema_text(), (
        "rulebooks/rulebook.schema.json is stale: run "
        "`socialcredit rulebook schema --out rulebooks/rulebook.schema.json`"
    )
    schema = json.loads(committed.read_text(encoding="utf-8"))
    assert schema["$id"].endswith("rulebook.schema.json")
    assert "for" in schema["$defs"]["Limit"]["properties"]


def test_explain_reads_the_ledger(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    with Ledger.open(db, clock=FixedClock("2025-07-01T09:00:00")) as ledger:
        setup_authorities(ledger)
        ledger.furnish("court-1", defaulter_row())
    code, out = run(
        "--db",
        db,
        "explain",
        PERSON,
        "--rulebook",
        str(CLEAN_DIR),
        "--as-of",
        "2025-07-01",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    [m] = data["memberships"]
    assert m["list"] == "defaulters" and m["since"] == "2025-06-11"
    [rec] = m["records"]
    assert rec["decision_no"] == "(2025) Test Zhi 1" and rec["authority"] == "court-1"
    assert data["next_change"]["date"] == "2026-06-01"  # the grade limit from the record ends
    assert data["status"]["subject"] == PERSON
    code, out = run(
        "--db", db, "explain", PERSON, "--rulebook", str(CLEAN_DIR), "--as-of", "2025-07-01"
    )
    assert code == 0
    flat = " ".join(out.split())
    assert f"record #{rec['id']}" in flat and "entry rule refuses" in flat
    assert "removal 'performed'" in flat and "credit repair from 2026-06-11" in flat


def test_explain_refuses_bad_input(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    code, out = run("--db", db, "explain", "cn-rid:123", "--rulebook", str(CLEAN_DIR), "--json")
    assert code == 2 and json.loads(out)["ok"] is False
    code, out = run("--db", db, "explain", PERSON, "--rulebook", str(CLEAN_DIR), "--as-of", "July")
    assert code == 2
    code, out = run("--db", db, "explain", PERSON, "--rulebook", str(tmp_path / "none"))
    assert code == 2
