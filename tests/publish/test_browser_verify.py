"""The verification page in real Chromium: scan-and-check a report without JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialcredit.web import create_app
from tests.publish.helpers import ORG_PUBLIC, World
from tests.web.conftest import live_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_verify_page_and_upload_in_chromium(world: World, browser: Any, tmp_path: Path) -> None:
    app = create_app(world.db, world.clock, poll_interval=0.05)
    with live_server(app) as base:
        r = httpx.get(f"{base}/reports/enterprise/{ORG_PUBLIC}", timeout=60)
        assert r.status_code == 200
        rid = r.headers["socialcredit-report-id"]
        good = tmp_path / "report.pdf"
        good.write_bytes(r.content)
        bad = tmp_path / "forged.pdf"
        bad.write_bytes(r.content.replace(b"/Producer", b"/Producex", 1))
        assert bad.read_bytes() != good.read_bytes()
        page = browser.new_page()
        page.goto(f"{base}/verify/{rid}")  # where the QR code leads
        assert rid in page.inner_text("main") and "Acme Trading" in page.inner_text("main")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "verify-report.png"), full_page=True)
        page.set_input_files("#file", str(good))
        page.click("button[type=submit]")
        assert "Valid: report " + rid in page.inner_text("main")
        page.screenshot(path=str(SHOTS / "verify-upload-valid.png"), full_page=True)
        page.goto(f"{base}/verify/{rid}")
        page.set_input_files("#file", str(bad))
        page.click("button[type=submit]")
        assert "Not valid" in page.inner_text("main")
        page.close()
