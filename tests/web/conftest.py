"""A registry with one key per role, the app over it, and a live server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.decisions import project_decisions
from socialcredit.status.parties import add_party
from socialcredit.status.schema import access_log, decisions
from socialcredit.status.service import StatusService
from socialcredit.web import create_app
from socialcredit.web.keys import create_key
from tests.status.helpers import PEOPLE, setup_authorities, write_rulebook

warnings.filterwarnings("ignore", message=".*httpx2.*")
from fastapi.testclient import TestClient  # noqa: E402

A, B, C = PEOPLE


@dataclass
class Registry:
    db: str
    clock: FixedClock
    keys: dict[str, str] = field(default_factory=dict)
    key_ids: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def engine(self) -> sa.Engine:
        from socialcredit.ledger.db import make_engine, resolve_url

        return make_engine(resolve_url(self.db))

    def access(self) -> list[dict[str, Any]]:
        eng = self.engine()
        try:
            with eng.connect() as conn:
                return [dict(r) for r in conn.execute(sa.select(access_log)).mappings()]
        finally:
            eng.dispose()

    def decisions(self) -> list[dict[str, Any]]:
        """One row per answer (the log's requests projected first, as every reader does)."""
        eng = self.engine()
        try:
            project_decisions(eng)
            with eng.connect() as conn:
                return [
                    dict(r)
                    for r in conn.execute(
                        sa.select(decisions).order_by(decisions.c.decision_id)
                    ).mappings()
                ]
        finally:
            eng.dispose()


@pytest.fixture
def registry(db_url: str, clock: FixedClock, tmp_path: Path) -> Registry:
    reg = Registry(db_url, clock)
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        StatusService(led).activate(write_rulebook(tmp_path / "rb"))
        now = clock.now()
        add_party(led.engine, led.catalogue, now, "air-1", "Test Air", "airline")
        add_party(led.engine, led.catalogue, now, "bank-1", "Test Bank", "bank")
        add_party(led.engine, led.catalogue, now, "reg-1", "Test Inspectorate", "regulator")
        scoped = {
            "court": ("provider", "court-1"),
            "water": ("provider", "water-1"),
            "airline": ("relying-party", "air-1"),
            "bank": ("relying-party", "bank-1"),
            "inspector": ("relying-party", "reg-1"),
            "subject_a": ("subject", A),
            "subject_b": ("subject", B),
            "officer": ("officer", None),
            "reviewer": ("reviewer", None),
            "auditor": ("auditor", None),
            "public": ("public", None),
            "revoked": ("auditor", None),
        }
        for name, (role, scope) in scoped.items():
            key, token = create_key(led.engine, now, role, scope, name)
            reg.keys[name] = token
            reg.key_ids[name] = key.key_id
    return reg


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    app = create_app(registry.db, registry.clock, poll_interval=0.01, log_process=True)
    with TestClient(app) as c:
        yield c


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
