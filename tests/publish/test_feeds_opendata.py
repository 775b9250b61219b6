"""The change feed over time, and ``socialcredit opendata export``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import orjson
from typer.testing import CliRunner

from socialcredit.cli.main import app as cli
from socialcredit.publish.feeds import feed_items
from socialcredit.status.service import StatusService
from tests.publish.helpers import ORG_PUBLIC, ORG_RED, World, performed


def _events(world: World) -> set[tuple[str, str, str]]:
    with world.open() as led:
        items = feed_items(led.engine, StatusService(led).rulebooks, world.clock.now().date())
    return {(i.subject, i.list_id, i.event) for i in items}


def test_feed_shows_leaving_and_forgets_after_the_publicity_period(world: World) -> None:
    assert (ORG_PUBLIC, "defaulters", "entered") in _events(world)
    world.clock.set("2026-02-01T08:00:00")
    with world.open() as led:
        led.furnish("court-1", performed("p-x", ORG_PUBLIC, "2026-01-30", case="C9"))
        StatusService(led).catch_up()
    events = _events(world)
    assert {(ORG_PUBLIC, "defaulters", "entered"), (ORG_PUBLIC, "defaulters", "left")} <= events
    # the honours entry (1 year from 2025-10-01) and the defaulter entry (3 years) both lapse
    world.clock.set("2026-10-01T08:00:00")
    assert (ORG_RED, "honours", "entered") not in _events(world)
    assert (ORG_PUBLIC, "defaulters", "left") in _events(world)
    world.clock.set("2028-09-01T08:00:00")
    assert not any(s == ORG_PUBLIC for s, _, _ in _events(world))


def test_opendata_export_cli(world: World, tmp_path: Path) -> None:
    out = tmp_path / "od"
    r = CliRunner().invoke(
        cli,
        ["--db", world.db, "opendata", "export", "--dir", str(out), "--json"],
        env={"SOCIALCREDIT_PUBLIC_URL": "https://registry.example"},
    )
    assert r.exit_code == 0, r.output
    doc = orjson.loads(r.output)
    # the CLI runs on the wall clock: count what is still inside its publicity period today
    today = dt.datetime.now(dt.UTC).date().isoformat()
    expected = sum(today < end for end in ("2028-06-01", "2028-09-01", "2026-10-01"))
    assert doc["entries"] == expected and doc["feed_items"] == expected
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "changes.atom",
            "changes.json",
            "datapackage.json",
            "entities.ftm.json",
            "entries.csv",
            "entries.ndjson",
            "entries.parquet",
        ]
    )
    rows = list(csv.DictReader(io.StringIO((out / "entries.csv").read_text())))
    assert len(rows) == expected
    pkg = orjson.loads((out / "datapackage.json").read_bytes())
    assert pkg["resources"][0]["path"].startswith("https://registry.example/open-data/")
    assert pkg["licenses"][0]["name"] == "CC-BY-4.0"
