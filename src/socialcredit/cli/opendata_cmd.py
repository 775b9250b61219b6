"""``socialcredit opendata``: write the open-data files and the change feed to a folder."""

from __future__ import annotations

from pathlib import Path

import typer

from socialcredit.cli.common import console, db_option, emit_json, refusals

app = typer.Typer(
    help="Open data: bulk downloads of the public lists and the change feed.", no_args_is_help=True
)


@app.command("export")
def export(
    ctx: typer.Context,
    folder: Path = typer.Option(..., "--dir", help="Folder to write the files into."),
    base_url: str = typer.Option(
        "",
        "--base-url",
        envvar="SOCIALCREDIT_PUBLIC_URL",
        help="The public URL of this registry (used in datapackage.json and the feeds).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write entries.csv/.parquet/.ndjson, entities.ftm.json, datapackage.json and the feeds."""
    import orjson

    from socialcredit.ledger import Ledger
    from socialcredit.publish import feeds, opendata
    from socialcredit.publish.reports import registry_name
    from socialcredit.publish.signing import registry_signer
    from socialcredit.status.service import StatusService

    with refusals(as_json), Ledger.open(db_option(ctx)) as ledger:
        now = ledger.clock.now()
        rulebooks = StatusService(ledger).rulebooks
        data = opendata.build(
            ledger.engine,
            rulebooks,
            now,
            registry_signer(ledger.engine, now),
            registry=registry_name(),
            base_url=base_url,
        )
        paths = opendata.export(data, folder)
        items = feeds.feed_items(ledger.engine, rulebooks, now.date())
        kw = {"registry": registry_name(), "base_url": base_url, "generated_at": now}
        (folder / "changes.atom").write_bytes(feeds.atom_feed(items, **kw))  # type: ignore[arg-type]
        (folder / "changes.json").write_bytes(
            orjson.dumps(feeds.json_feed(items, **kw))  # type: ignore[arg-type]
        )
        paths += [folder / "changes.atom", folder / "changes.json"]
    if as_json:
        emit_json(
            {
                "ok": True,
                "entries": len(data.entries),
                "files": [str(p) for p in paths],
                "feed_items": len(items),
            }
        )
        return
    console.print(
        f"[green]{len(data.entries)} public entries[/green] and {len(items)} feed items "
        f"written to {folder}:"
    )
    for p in paths:
        console.print(f"  {p.name} ({p.stat().st_size} bytes)")
