"""Real receivers for notices: an SMTP server (aiosmtpd) and an HTTP webhook server, both local;
and the web registry (one key per role) with an app whose maintenance tick the test drives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from socialcredit.cases.delivery import SIGNATURE_HEADER, verify_signature
from socialcredit.clock import FixedClock
from socialcredit.ledger import Ledger
from socialcredit.status.service import StatusService
from socialcredit.web import create_app
from tests.status.helpers import setup_authorities, write_rulebook
from tests.web.conftest import Registry, registry  # noqa: F401  (fixture)

SECRET = "test-secret-0123456789"


@pytest.fixture
def reg(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[tuple[Ledger, StatusService]]:
    """A registry with the test authorities and the test rulebook active."""
    with Ledger.open(db_url, clock=clock) as led:
        setup_authorities(led)
        svc = StatusService(led)
        svc.activate(write_rulebook(tmp_path / "rb"))
        yield led, svc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"

    def wait(self, n: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    """A webhook receiver: records each POST, verifies its signature, answers ``statuses`` in turn
    (then 204)."""

    url: str = ""
    secret: str = SECRET
    received: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 204

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


def _handler(hook: Hook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = hook.next_status()
            hook.received.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "json": json.loads(body),
                    "signed": verify_signature(
                        hook.secret, body, self.headers.get(SIGNATURE_HEADER)
                    ),
                    "answered": status,
                }
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_server() -> Iterator[Callable[..., Hook]]:
    servers: list[ThreadingHTTPServer] = []

    def make(port: int = 0) -> Hook:
        hook = Hook()
        srv = ThreadingHTTPServer(("127.0.0.1", port), _handler(hook))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        hook.url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        return hook

    try:
        yield make
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def api(registry: Registry) -> Iterator[TestClient]:  # noqa: F811
    """The API without its background thread: tests call ``rt.tick(maintenance=True)``."""
    app = create_app(registry.db, registry.clock, background=False)
    with TestClient(app) as c:
        yield c
