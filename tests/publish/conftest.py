from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from socialcredit.clock import FixedClock
from tests.publish.helpers import (
    ORG_CLEAN,
    PERSON_PRIVATE,
    PERSON_PUBLIC,
    World,
    build_world,
)

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture
def world(tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("SOCIALCREDIT_SIGNING_KEY", str(tmp_path / "keys" / "signing-key.pem"))
    return build_world(str(tmp_path / "registry.db"), clock, tmp_path)


@pytest.fixture
def world_any(
    db_url: str, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> World:
    """The same world on every backend (SQLite and PostgreSQL)."""
    monkeypatch.setenv("SOCIALCREDIT_SIGNING_KEY", str(tmp_path / "keys" / "signing-key.pem"))
    return build_world(db_url, clock, tmp_path)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    from socialcredit.status.parties import add_party
    from socialcredit.web import create_app
    from socialcredit.web.keys import create_key

    with world.open() as led:
        now = world.clock.now()
        add_party(led.engine, led.catalogue, now, "bank-1", "Test Bank", "bank")
        for name, role, scope in (
            ("person", "subject", PERSON_PRIVATE),
            ("person_public", "subject", PERSON_PUBLIC),
            ("org", "subject", ORG_CLEAN),
            ("bank", "relying-party", "bank-1"),
            ("officer", "officer", None),
        ):
            _, token = create_key(led.engine, now, role, scope, name)
            world.keys[name] = token
    app = create_app(world.db, world.clock, poll_interval=0.01, background=False)
    with TestClient(app, base_url="http://registry.test") as c:
        yield c
