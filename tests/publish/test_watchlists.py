"""Watchlists: signed alerts to a real local HTTP server when a partner's public status changes."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
from cryptography.exceptions import InvalidSignature
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from socialcredit.cli.main import app as cli
from socialcredit.errors import InputError
from socialcredit.publish import watchlists
from socialcredit.publish.signing import keys_from_jwks, registry_signer, unb64url
from socialcredit.publish.watchlists import Watcher, list_alerts
from socialcredit.status.service import StatusService
from tests.publish.helpers import (
    ORG_CLEAN,
    ORG_PUBLIC,
    ORG_RED,
    PERSON_PRIVATE,
    World,
    defaulter,
    late,
    performed,
)


@dataclass
class Hook:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(state.delay)
            if state.fail_next:
                state.fail_next -= 1
                self.send_response(503)
                self.end_headers()
                return
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _watcher(world: World, led: object) -> Watcher:
    from socialcredit.ledger import Ledger

    assert isinstance(led, Ledger)
    status = StatusService(led)
    return Watcher(
        led.engine,
        lambda: status.rulebooks,
        world.clock,
        lambda: registry_signer(led.engine, world.clock.now()),
        registry="Test registry",
    )


def _verify(world: World, headers: dict[str, str], body: bytes) -> None:
    from socialcredit.publish.signing import jwks

    with world.open() as led:
        keys = keys_from_jwks(jwks(led.engine))
    pub = keys[headers["socialcredit-key-id"]]
    pub.verify(unb64url(headers["socialcredit-signature"]), body)  # raises if invalid


def test_alert_on_entering_and_leaving_a_public_list(world_any: World, hook: Hook) -> None:
    world = world_any
    with world.open() as led:
        w = _watcher(world, led)
        w.add("org:" + ORG_PUBLIC, ORG_CLEAN, hook.url)
        w.add("party:bank-1", ORG_CLEAN, hook.url)
        assert w.pump().alerts == 0  # nothing changed since the baseline
        led.furnish("court-1", defaulter("d-c", ORG_CLEAN, "2026-01-10", case="C7"))
        StatusService(led).catch_up()
        report = w.pump()
    assert report.alerts == 2 and report.delivered == 2
    assert len(hook.received) == 2
    for headers, body in hook.received:
        _verify(world, headers, body)
        doc = orjson.loads(body)
        assert doc["subject"] == ORG_CLEAN and doc["type"] == watchlists.ALERT_TYPE
        assert [(c["event"], c["list"]) for c in doc["changes"]] == [("entered", "defaulters")]
        assert headers["socialcredit-alert-id"] == str(doc["alert_id"])
    assert {orjson.loads(b)["owner"] for _, b in hook.received} == {
        "org:" + ORG_PUBLIC,
        "party:bank-1",
    }
    # a tampered body does not verify
    headers, body = hook.received[0]
    with pytest.raises(InvalidSignature):
        _verify(world, headers, body.replace(b"entered", b"Entered"))
    # the obligation is performed: the partner leaves the list
    hook.received.clear()
    with world.open() as led:
        led.furnish("court-1", performed("p-c", ORG_CLEAN, "2026-01-14", case="C7"))
        StatusService(led).catch_up()
        report = _watcher(world, led).pump()
    assert report.alerts == 2 and len(hook.received) == 2
    assert orjson.loads(hook.received[0][1])["changes"][0]["event"] == "left"


def test_no_alert_for_private_changes(world: World, hook: Hook) -> None:
    with world.open() as led:
        w = _watcher(world, led)
        w.add("party:bank-1", ORG_RED, hook.url)
        w.add("party:bank-1", PERSON_PRIVATE, hook.url)
        # two late payments put ORG_RED on the (private) late-payers list
        led.furnish("water-1", late("w-r1", ORG_RED, "2026-01-02"))
        led.furnish("water-1", late("w-r2", ORG_RED, "2026-01-09"))
        led.furnish("water-1", late("w-p3", PERSON_PRIVATE, "2026-01-12"))
        StatusService(led).catch_up()
        with led.engine.connect() as conn:
            import sqlalchemy as sa

            from socialcredit.status.schema import status_current

            text = conn.execute(
                sa.select(status_current.c.status).where(status_current.c.subject == ORG_RED)
            ).scalar_one()
        assert '"list":"late-payers"' in text  # the private change really happened
        report = w.pump()
    assert report.checked == 2 and report.alerts == 0 and hook.received == []


def test_failed_deliveries_are_retried_with_backoff_and_never_lost(
    world: World, hook: Hook
) -> None:
    hook.fail_next = 2
    with world.open() as led:
        w = _watcher(world, led)
        w.add("party:bank-1", ORG_CLEAN, hook.url)
        led.furnish("court-1", defaulter("d-c", ORG_CLEAN, "2026-01-10", case="C7"))
        StatusService(led).catch_up()
        first = w.pump()
        assert (first.alerts, first.delivered, first.failed) == (1, 0, 1)
        [a] = list_alerts(led.engine)
        assert a["status"] == "pending" and a["attempts"] == 1 and a["last_error"] == "HTTP 503"
        assert w.deliver() == (0, 0)  # not due yet
        world.clock.advance(seconds=31)
        assert w.deliver() == (0, 1)  # due, fails again; the next wait doubles
        [a] = list_alerts(led.engine)
        assert a["attempts"] == 2 and a["next_attempt_at"] == "2026-01-15T09:31:31Z"
        world.clock.advance(seconds=61)
        assert w.deliver() == (1, 0)
        [a] = list_alerts(led.engine)
        assert a["status"] == "delivered" and a["attempts"] == 3
    assert len(hook.received) == 1
    _verify(world, *hook.received[0])
    assert watchlists.backoff(30) == watchlists.BACKOFF_MAX


def test_two_deliverers_post_an_alert_once(world: World, hook: Hook) -> None:
    hook.delay = 0.3
    with world.open() as led:
        w1, w2 = _watcher(world, led), _watcher(world, led)
        w1.add("party:bank-1", ORG_CLEAN, hook.url)
        led.furnish("court-1", defaulter("d-c", ORG_CLEAN, "2026-01-10", case="C7"))
        StatusService(led).catch_up()
        assert w1.detect() == (1, 1)
        results: list[tuple[int, int]] = []
        threads = [
            threading.Thread(target=lambda w=w: results.append(w.deliver())) for w in (w1, w2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [(0, 0), (1, 0)] and len(hook.received) == 1


def test_publicity_period_ending_alerts_next_day(world: World, hook: Hook) -> None:
    """The honours list publishes for 1 year: when that ends, a watcher is told (no ledger entry)."""
    with world.open() as led:
        w = _watcher(world, led)
        w.add("party:bank-1", ORG_RED, hook.url)
        w.pump()
        world.clock.set("2026-10-02T08:00:00")
        report = w.pump()
    assert report.alerts == 1
    doc = orjson.loads(hook.received[0][1])
    assert doc["changes"][0]["event"] == "left" and doc["public_entries"] == []


def test_owners_and_urls_are_checked(world: World) -> None:
    with pytest.raises(InputError):
        watchlists.owner_for("subject", PERSON_PRIVATE)
    assert watchlists.owner_for("subject", ORG_CLEAN) == "org:" + ORG_CLEAN
    assert watchlists.parse_owner("party:bank-1") == "party:bank-1"
    with pytest.raises(InputError):
        watchlists.parse_owner("bank-1")
    with world.open() as led:
        w = _watcher(world, led)
        with pytest.raises(InputError) as e:
            w.add("party:bank-1", ORG_CLEAN, "file:///etc/passwd")
        assert e.value.problems[0].field == "webhook_url"
        with pytest.raises(InputError):
            w.add("party:bank-1", "cn-uscc:123", "http://127.0.0.1/x")
        assert watchlists.list_watches(led.engine) == []


def test_watchlist_api(client: TestClient, world: World, hook: Hook) -> None:
    # a person may not keep a watchlist
    r = client.put(
        f"/v1/watchlist/{ORG_PUBLIC}",
        json={"webhook_url": hook.url},
        headers=world.headers("person"),
    )
    assert r.status_code == 403
    r = client.put(
        f"/v1/watchlist/{ORG_CLEAN}", json={"webhook_url": hook.url}, headers=world.headers("org")
    )
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "org:" + ORG_CLEAN and r.json()["public"] == []
    r = client.put(
        f"/v1/watchlist/{ORG_PUBLIC}", json={"webhook_url": hook.url}, headers=world.headers("org")
    )
    assert [e["list"] for e in r.json()["public"]] == ["defaulters"]
    bad = client.put(
        f"/v1/watchlist/{ORG_PUBLIC}", json={"webhook_url": "ftp://x"}, headers=world.headers("org")
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "webhook_url"
    items = client.get("/v1/watchlist", headers=world.headers("org")).json()["items"]
    assert {i["subject"] for i in items} == {ORG_CLEAN, ORG_PUBLIC}
    assert client.get("/v1/watchlist", headers=world.headers("bank")).json()["items"] == []
    r = client.delete(f"/v1/watchlist/{ORG_CLEAN}", headers=world.headers("org"))
    assert r.status_code == 204
    assert (
        client.delete(f"/v1/watchlist/{ORG_CLEAN}", headers=world.headers("org")).status_code == 404
    )
    # a change to a watched partner, picked up by the runtime's tick (the alerter thread)
    with world.open() as led:
        led.furnish("court-1", performed("p-x", ORG_PUBLIC, "2026-01-14", case="C9"))
    rt = client.app.state.rt  # type: ignore[attr-defined]
    import time

    deadline = time.monotonic() + 20
    while not hook.received and time.monotonic() < deadline:
        rt.tick(maintenance=True)
        time.sleep(0.2)
    assert len(hook.received) == 1
    _verify(world, *hook.received[0])
    alerts = client.get("/v1/watchlist/alerts", headers=world.headers("org")).json()["items"]
    assert alerts[0]["status"] == "delivered" and alerts[0]["body"]["changes"][0]["event"] == "left"


def test_watch_cli(world: World, hook: Hook) -> None:
    runner = CliRunner()
    db = ["--db", world.db]
    r = runner.invoke(cli, [*db, "watch", "add", "party:bank-1", ORG_CLEAN, "--webhook", hook.url])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*db, "watch", "list", "--json"])
    assert r.exit_code == 0 and orjson.loads(r.output)[0]["subject"] == ORG_CLEAN
    with world.open() as led:
        led.furnish("court-1", defaulter("d-c", ORG_CLEAN, "2026-01-10", case="C7"))
    r = runner.invoke(cli, [*db, "watch", "pump", "--json"])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.output)["delivered"] == 1 and len(hook.received) == 1
    r = runner.invoke(cli, [*db, "watch", "list", "--alerts", "--json"])
    assert orjson.loads(r.output)[0]["status"] == "delivered"
    r = runner.invoke(cli, [*db, "watch", "remove", "party:bank-1", ORG_CLEAN])
    assert r.exit_code == 0
    r = runner.invoke(cli, [*db, "watch", "remove", "party:bank-1", ORG_CLEAN])
    assert r.exit_code == 2
    r = runner.invoke(cli, [*db, "watch", "add", "nobody", ORG_CLEAN, "--webhook", hook.url])
    assert r.exit_code == 2
