"""``socialcredit cases`` on a SQLite file (the system clock; dates are in the past)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from socialcredit.cases import tips
from socialcredit.cli import cases_cmd
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService
from tests.cases.helpers import (
    OFFICER_1,
    OFFICER_2,
    SUBJ,
    defaulter,
    setup_authorities,
    write_rulebook,
)

app = typer.Typer()


@app.callback()
def main(ctx: typer.Context, db: str = typer.Option(..., "--db")) -> None:
    ctx.obj = {"db": db}


app.add_typer(cases_cmd.app, name="cases")
runner = CliRunner()


def run(db: Path, *args: str) -> tuple[int, object]:
    result = runner.invoke(app, ["--db", str(db), "cases", *args, "--json"])
    try:
        return result.exit_code, json.loads(result.output)
    except json.JSONDecodeError:
        return result.exit_code, result.output


def test_officer_and_auditor_operations(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Ledger.open(str(db)) as led:
        setup_authorities(led)
        status = StatusService(led)
        status.activate(write_rulebook(tmp_path / "rb"))
        led.furnish("court-1", defaulter("d1", SUBJ, "2025-06-02"))
        status.catch_up()
        tip = tips.submit_tip(led, status.rulebooks, "public:k1", SUBJ, "a tip")
    code, out = run(db, "list", "--type", "tip")
    assert code == 0 and [c["case_id"] for c in out["items"]] == [tip["case_id"]]  # type: ignore[index]
    code, out = run(db, "verify", str(tip["case_id"]), "--officer", OFFICER_1, "--reason", "seen")
    assert code == 0 and out["case"]["outcome"] == "verified"  # type: ignore[index]
    code, out = run(db, "verify", str(tip["case_id"]), "--officer", OFFICER_1, "--reason", "again")
    assert code == 2 and out["problems"][0]["rule"] == "closed"  # type: ignore[index]
    code, out = run(
        db, "halt", SUBJ, "t-cases", "defaulters", "--officer", OFFICER_2, "--reason", "check"
    )
    assert code == 0 and out["case"]["state"] == "halted"  # type: ignore[index]
    halted = out["case"]["case_id"]  # type: ignore[index]
    code, out = run(db, "halt", SUBJ, "t-cases", "defaulters", "--officer", SUBJ, "--reason", "me")
    assert code == 2 and out["problems"][0]["rule"] == "own-case"  # type: ignore[index]
    code, out = run(db, "lift", str(halted), "--officer", OFFICER_1, "--reason", "ok")
    assert code == 0 and out["case"]["state"] == "lifted"  # type: ignore[index]
    code, out = run(db, "actions", "--actor", OFFICER_1)
    assert [a["action"] for a in out["items"]] == ["tip-verified", "review-lifted"]  # type: ignore[index]
    code, out = run(db, "show", str(halted))
    assert [a["action"] for a in out["actions"]] == ["review-halted", "review-lifted"]  # type: ignore[index]
    code, out = run(db, "sweep")
    assert code == 0 and out["ok"]  # type: ignore[index]
    code, out = run(db, "check")
    assert code == 0 and out == {"ok": True, "differ": []}
    code, out = run(db, "rebuild")
    assert code == 0 and out["cases"] == 2  # type: ignore[index]
    code, out = run(db, "deadlines")
    rows = {(r["key"], r["value"]) for r in out["items"]}  # type: ignore[index]
    assert ("repair_decision", "3wd") in rows and ("objection_acknowledge", "5wd") in rows
