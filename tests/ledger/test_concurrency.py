"""Concurrent writers serialise on the chain head: the chain stays whole and nothing is lost."""

from __future__ import annotations

import threading

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger

from .helpers import PERSON, PERSON2, setup_authorities, utility_row

WRITERS, EACH = 4, 25


def test_concurrent_writers_keep_one_chain(db_url: str, clock: FixedClock) -> None:
    with Ledger.open(db_url, clock=clock) as first:
        setup_authorities(first)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Ledger.open(db_url, clock=clock) as led:  # its own engine, like another process
                for i in range(EACH):
                    subject = PERSON if i % 2 else PERSON2
                    led.furnish("water-1", utility_row(f"T{n}-{i}", subject=subject))
                    led.furnish("water-1", utility_row(f"T{n}-{i}", subject=subject))  # a retry
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with Ledger.open(db_url, clock=clock) as led:
        assert led.count()["furnish"] == WRITERS * EACH
        report = led.verify()
        assert report.ok, report.reason
