"""The enforcement CLI groups (keys, parties, status, serve --print-openapi) on a SQLite file.

main.py wires them; here they hang off a small app of their own with the same ``--db`` option.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from socialcredit.cli import serve_cmd
from socialcredit.errors import InputError
from socialcredit.ledger import Ledger
from tests.status.helpers import defaulter, setup_authorities, write_rulebook
from tests.web.conftest import A

app = typer.Typer()


@app.callback()
def main(ctx: typer.Context, db: str = typer.Option(..., "--db")) -> None:
    ctx.obj = {"db": db}


app.command("serve")(serve_cmd.app_serve)
app.add_typer(serve_cmd.keys_app, name="keys")
app.add_typer(serve_cmd.parties_app, name="parties")
app.add_typer(serve_cmd.status_app, name="status")
runner = CliRunner()


def run(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--db", str(db), *args])
    return result.exit_code, result.output


def test_parties_keys_and_status(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with Ledger.open(str(db)) as led:
        setup_authorities(led)
        led.furnish("court-1", defaulter("d1", A, "2025-06-01"))
    code, out = run(db, "parties", "add", "air-1", "--name", "Air", "--type", "airline", "--json")
    assert code == 0 and json.loads(out)["domains"] == ["travel"]
    code, out = run(
        db,
        "parties",
        "add",
        "air-2",
        "--name",
        "Air",
        "--type",
        "airline",
        "--domain",
        "finance",
        "--json",
    )
    assert code == 2 and json.loads(out)["problems"][0]["rule"] == "not-in-type"
    code, out = run(db, "parties", "list", "--json")
    assert [p["party_id"] for p in json.loads(out)] == ["air-1"]

    code, out = run(
        db, "keys", "create", "--role", "relying-party", "--relying-party", "air-1", "--json"
    )
    assert code == 0
    made = json.loads(out)
    assert made["key"].startswith(f"sck_{made['key_id']}_") and made["scope"] == "air-1"
    code, out = run(db, "keys", "create", "--role", "subject", "--subject", "cn-rid:123", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["field"] == "scope"
    code, out = run(db, "keys", "create", "--role", "provider", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["rule"] == "required"
    code, out = run(db, "keys", "create", "--role", "auditor")
    assert code == 0 and "not shown again" in out
    code, out = run(db, "keys", "list", "--json")
    listed = json.loads(out)
    assert len(listed) == 2 and all("key" not in k and "secret_sha256" not in k for k in listed)
    code, out = run(db, "keys", "revoke", made["key_id"], "--json")
    assert code == 0 and json.loads(out)["revoked_at"]
    code, out = run(db, "keys", "revoke", "nope", "--json")
    assert code == 2

    code, out = run(db, "status", "activate", "cn-js-suining-2010", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["rule"] == "historical"
    code, out = run(db, "status", "activate", str(write_rulebook(tmp_path / "rb")), "--json")
    assert code == 0 and json.loads(out)["subjects"] == 1
    code, out = run(db, "status", "list", "--json")
    assert json.loads(out)["active"][0]["rulebook"] == "t-status@1"
    for what in ("catch-up", "sweep", "rebuild"):
        code, out = run(db, "status", what, "--json")
        assert code == 0 and json.loads(out)["ok"], out
    code, out = run(db, "status", "show", A)
    assert code == 0 and "travel.flights" in out
    code, out = run(db, "status", "deactivate", "t-status", "--json")
    assert code == 0


def test_parties_limit_list_and_usage(tmp_path: Path) -> None:
    """A daily limit is set, shown, kept by ``parties add``, lifted, and refused when malformed;
    the answers a party was given are counted per day by the decision log and listed."""
    import datetime as dt

    from socialcredit.status.decisions import DecisionLog

    db = tmp_path / "r.db"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Ledger.open(str(db)) as led:
        setup_authorities(led)
        log = DecisionLog(led.engine)
        for when, n in ((dt.datetime(2026, 1, 14, 23), 3), (dt.datetime(2026, 1, 15, 1), 8),
                        (now, 2)):  # fmt: skip
            answer = (when, "air-1", "k", "p", A, "travel.flights", "allow", "no-restriction")
            log.write([(*answer, None, "r@1")] * n)
        log.close()
    code, out = run(db, "parties", "add", "air-1", "--name", "Air", "--type", "airline")
    assert code == 0
    code, out = run(db, "parties", "limit", "air-1", "--daily", "10", "--json")
    assert code == 0 and json.loads(out)["daily_limit"] == 10
    assert json.loads(out)["rate_limit"] is None
    code, out = run(db, "parties", "limit", "air-1", "--per-second", "500")
    assert code == 0 and "10 answers a day (UTC)" in out and "500 a second" in out
    code, out = run(db, "parties", "limit", "air-1", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["rule"] == "required"
    code, out = run(db, "parties", "add", "air-1", "--name", "Air China", "--type", "airline")
    code, out = run(db, "parties", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["name"] == "Air China" and listed["daily_limit"] == 10  # kept by add
    assert listed["rate_limit"] == 500
    assert listed["used_today"] == 2
    code, out = run(db, "parties", "limit", "air-1", "--daily", "5", "--per-second", "x", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["field"] == "--per-second"
    code, out = run(db, "parties", "limit", "air-1", "--daily", "5", "--per-second", "0", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["rule"] == "min:1"
    code, out = run(db, "parties", "limit", "air-1", "--daily", "1" + "0" * 19, "--json")
    assert code == 2 and json.loads(out)["problems"][0]["rule"].startswith("max:")
    code, out = run(db, "parties", "list", "--json")
    assert json.loads(out)[0]["daily_limit"] == 10  # none of them changed anything
    code, out = run(db, "parties", "limit", "nobody", "--daily", "10", "--json")
    assert code == 2 and "nobody" in out
    code, out = run(db, "parties", "usage", "air-1", "--days", "3", "--as-of", "2026-01-15")
    assert code == 0 and "Daily limit: 10 answers" in out
    code, out = run(
        db, "parties", "usage", "air-1", "--days", "3", "--as-of", "2026-01-15", "--json"
    )
    assert json.loads(out)["days"] == [
        {"day": "2026-01-13", "answers": 0},
        {"day": "2026-01-14", "answers": 3},
        {"day": "2026-01-15", "answers": 8},
    ]
    code, out = run(db, "parties", "usage", "air-1", "--as-of", "15/01/2026", "--json")
    assert code == 2 and json.loads(out)["problems"][0]["field"] == "as_of"
    code, out = run(db, "parties", "limit", "air-1", "--daily", "none", "--per-second", "none")
    assert code == 0 and "no daily limit, no rate limit" in out
    code, out = run(db, "parties", "list")
    assert code == 0 and "none" in out and "Air China" in out


def test_print_openapi(tmp_path: Path) -> None:
    code, out = run(tmp_path / "unused.db", "serve", "--print-openapi")
    assert code == 0 and json.loads(out)["openapi"].startswith("3.1")


def test_serve_refuses_an_unknown_log_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt SOCIALCREDIT_SERVE_LOG stops the server with the variable and the choices named,
    rather than quietly running the other writer."""
    from socialcredit.web.app import app_from_env

    monkeypatch.setenv("SOCIALCREDIT_SERVE_LOG", "proces")
    with pytest.raises(ValueError, match=r"SOCIALCREDIT_SERVE_LOG='proces'.*'process'.*'thread'"):
        app_from_env()


@pytest.mark.parametrize("option", ["--decision-retention", "--access-log-retention"])
@pytest.mark.parametrize(
    ("value", "says"), [("3", "at least 6 months"), ("two years", "whole number of months")]
)
def test_serve_refuses_a_retention_it_cannot_keep(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    """Below the AI Act's floor for logs, or not a number of months: refused before anything
    starts, with the option named."""
    db = tmp_path / "r.db"
    code, out = run(db, "serve", option, value)
    assert code == 2 and option in out and says in out
    assert not db.exists()  # nothing was opened, let alone served


@pytest.mark.parametrize("value", ["0", "two", ""])
def test_a_worker_refuses_a_worker_count_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """The worker count divides each party's rate: a worker started with a bad one refuses to
    start, naming the variable."""
    from socialcredit.web.app import app_from_env

    monkeypatch.setenv("SOCIALCREDIT_SERVE_WORKERS", value)
    with pytest.raises(ValueError, match=r"SOCIALCREDIT_SERVE_WORKERS=.*at least 1"):
        app_from_env()


@pytest.mark.parametrize(
    "variable",
    ["SOCIALCREDIT_SERVE_DECISION_RETENTION", "SOCIALCREDIT_SERVE_ACCESS_LOG_RETENTION"],
)
def test_the_server_refuses_a_retention_below_the_floor_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """``serve`` passes the periods to its workers in the environment; a worker started another
    way with a period below the floor refuses to start, naming the variable."""
    from socialcredit.web.app import app_from_env

    monkeypatch.setenv(variable, "5")
    with pytest.raises(InputError) as e:
        app_from_env()
    assert e.value.problems[0].field == variable
