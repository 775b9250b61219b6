from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService
from tests.cases.helpers import World, setup_authorities, write_rulebook


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    clock = FixedClock("2026-01-05T09:00:00")
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        status = StatusService(led)
        status.activate(write_rulebook(tmp_path / "rb"))
        yield World(led, status, clock)
