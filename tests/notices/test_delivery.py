"""Delivery: a real SMTP server and real HTTP endpoints receive notices; failures are retried with
exponential backoff, end up ``dead`` but listed and re-drivable, and the inbox always has them."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from socialcredit.cases.delivery import (
    DeliverySettings,
    list_deliveries,
    pump,
    redrive,
    set_contact,
)
from socialcredit.cases.notices import Notifier, list_notices
from socialcredit.clock import FixedClock
from socialcredit.errors import InputError
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService
from tests.notices.conftest import SECRET, Hook, Mailbox, free_port
from tests.status.helpers import PEOPLE, late, setup_authorities, write_rulebook

A, B, C = PEOPLE


@pytest.fixture
def led(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        StatusService(led).activate(write_rulebook(tmp_path / "rb"))
        yield led


def one_notice(led: Ledger, subject: str = A, ref: str = "w1") -> dict[str, Any]:
    """Furnish a late payment about ``subject`` and write its notice (no status change)."""
    led.furnish("water-1", late(ref, subject, "2026-01-02"))
    Notifier(led).run()
    [n] = [x for x in list_notices(led.engine, subject=subject) if x["kind"] == "record-added"]
    return n


def settings(**kw: Any) -> DeliverySettings:
    base: dict[str, Any] = {"backoff": dt.timedelta(seconds=10), "max_attempts": 5, "timeout": 3}
    base.update(kw)
    return DeliverySettings(**base)


def test_email_reaches_a_real_smtp_server(led: Ledger, smtp_server: Mailbox) -> None:
    set_contact(led.engine, led.clock, A, email="zhang.san@example.org")
    n = one_notice(led)
    [d] = n["deliveries"]
    assert (d["channel"], d["target"], d["state"]) == ("email", "zhang.san@example.org", "pending")
    s = settings(
        smtp_host=smtp_server.host, smtp_port=smtp_server.port, mail_from="reg@example.org"
    )
    report = pump(led.engine, led.clock, s)
    assert report.sent == 1
    [msg] = smtp_server.wait(1)
    assert msg["To"] == "zhang.san@example.org" and msg["From"] == "reg@example.org"
    assert msg["Subject"] == n["title"]
    text = msg.get_payload(decode=True).decode()
    assert "decision W-w1 of 2026-01-02" in text and "How to respond:" in text
    [d] = list_deliveries(led.engine, notice_id=n["notice_id"])
    assert d["state"] == "sent" and d["attempts"] == 1 and d["sent_at"]


def test_webhook_is_signed_with_the_contacts_secret(
    led: Ledger, webhook_server: Callable[[], Hook]
) -> None:
    hook = webhook_server()
    set_contact(led.engine, led.clock, A, webhook_url=hook.url, webhook_secret=SECRET)
    n = one_notice(led)
    assert pump(led.engine, led.clock, settings()).sent == 1
    [got] = hook.received
    assert got["signed"] is True
    assert got["json"]["notice_id"] == n["notice_id"]
    assert got["json"]["body"]["conduct"] == n["body"]["conduct"]
    assert got["headers"]["X-Socialcredit-Notice"] == str(n["notice_id"])
    # a receiver with another secret would refuse it
    other = Hook(secret="not-the-secret-at-all")
    from socialcredit.cases.delivery import verify_signature

    assert not verify_signature(
        other.secret, got["body"], got["headers"]["X-Socialcredit-Signature"]
    )


def test_failures_are_retried_with_exponential_backoff(
    led: Ledger, clock: FixedClock, webhook_server: Callable[[], Hook]
) -> None:
    hook = webhook_server()
    hook.statuses = [500, 503, 500]
    set_contact(led.engine, led.clock, A, webhook_url=hook.url, webhook_secret=SECRET)
    n = one_notice(led)
    s = settings()
    start = clock.now()
    waits = []
    for expected_wait in (10, 20, 40):
        assert pump(led.engine, clock, s).failed == 1
        [d] = list_deliveries(led.engine, notice_id=n["notice_id"])
        assert d["state"] == "failed" and "HTTP 5" in d["last_error"]
        due = dt.datetime.fromisoformat(d["next_attempt_at"].rstrip("Z"))
        waits.append((due - clock.now().replace(tzinfo=None)).total_seconds())
        # not due yet: nothing is tried
        assert pump(led.engine, clock, s) == pump(led.engine, clock, s)
        assert len(hook.received) == len(waits)
        clock.advance(seconds=expected_wait)
        # the notice is readable all along
        assert [x["notice_id"] for x in list_notices(led.engine, subject=A)] == [n["notice_id"]]
    assert waits == [10, 20, 40]
    assert pump(led.engine, clock, s).sent == 1
    [d] = list_deliveries(led.engine, notice_id=n["notice_id"])
    assert d["state"] == "sent" and d["attempts"] == 4 and d["last_error"] is None
    assert [r["answered"] for r in hook.received] == [500, 503, 500, 204]
    assert clock.now() - start == dt.timedelta(seconds=70)


def test_dead_after_the_last_attempt_but_listed_and_redrivable(
    led: Ledger, clock: FixedClock, webhook_server: Callable[..., Hook]
) -> None:
    port = free_port()  # nothing listens there: connection refused
    set_contact(
        led.engine, led.clock, A, webhook_url=f"http://127.0.0.1:{port}/x", webhook_secret=SECRET
    )
    n = one_notice(led)
    s = settings(max_attempts=2)
    assert pump(led.engine, clock, s).failed == 1
    clock.advance(seconds=10)
    assert pump(led.engine, clock, s).dead == 1
    [d] = list_deliveries(led.engine, state="dead")
    assert d["notice_id"] == n["notice_id"] and d["attempts"] == 2 and d["next_attempt_at"] is None
    assert "ConnectError" in d["last_error"]
    clock.advance(days=1)
    assert pump(led.engine, clock, s).dead == 0  # a dead delivery is not retried by itself
    assert list_notices(led.engine, subject=A)[0]["deliveries"][0]["state"] == "dead"
    # the endpoint comes back; an officer re-drives the delivery
    hook = webhook_server(port)
    assert redrive(led.engine, clock, d["delivery_id"])["state"] == "pending"
    assert pump(led.engine, clock, s).sent == 1
    assert hook.received[0]["signed"] is True
    with pytest.raises(InputError) as e:
        redrive(led.engine, clock, d["delivery_id"])
    assert e.value.problems[0].rule == "already-sent"


def test_email_waits_without_an_smtp_server(led: Ledger) -> None:
    set_contact(led.engine, led.clock, A, email="a@example.org")
    n = one_notice(led)
    r = pump(led.engine, led.clock, settings(smtp_host=None))
    assert r.waiting == 1 and r.sent == r.failed == 0
    [d] = list_deliveries(led.engine, notice_id=n["notice_id"])
    assert d["state"] == "pending" and d["attempts"] == 0
    assert "SOCIALCREDIT_SMTP" in d["last_error"]


def test_two_pumps_send_each_delivery_once(led: Ledger, webhook_server: Callable[[], Hook]) -> None:
    hook = webhook_server()
    for i, s in enumerate(PEOPLE):
        set_contact(led.engine, led.clock, s, webhook_url=hook.url, webhook_secret=SECRET)
        led.furnish("water-1", late(f"w{i}", s, "2026-01-02"))
        led.furnish("water-1", late(f"v{i}", s, "2026-01-03"))
    Notifier(led).run()
    total = len(list_deliveries(led.engine))
    assert total == 6
    threads = [
        threading.Thread(target=pump, args=(led.engine, led.clock, settings())) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = sorted(r["json"]["notice_id"] for r in hook.received)
    assert len(ids) == total and len(set(ids)) == total
    assert {d["state"] for d in list_deliveries(led.engine)} == {"sent"}


def test_contacts_are_checked(led: Ledger) -> None:
    with pytest.raises(InputError) as e:
        set_contact(led.engine, led.clock, A, email="nobody", webhook_url="http://x.example/h")
    assert {(p.field, p.rule) for p in e.value.problems} == {
        ("email", "format"),
        ("webhook_secret", "required"),
    }
    with pytest.raises(InputError):
        DeliverySettings.from_env({"SOCIALCREDIT_SMTP": "no-port"})
    s = DeliverySettings.from_env(
        {"SOCIALCREDIT_SMTP": "mail.example:2525", "SOCIALCREDIT_MAIL_FROM": "n@example.org"}
    )
    assert (s.smtp_host, s.smtp_port, s.mail_from) == ("mail.example", 2525, "n@example.org")
    assert [s.delay(k).total_seconds() for k in (1, 2, 3)] == [30, 60, 120]
